//! From a client's indicator object to a [`NewSighting`]: the one place the hub reads
//! publisher fields. The value itself is understood only by `apiary_core::parse`.
//!
//! Accepted field forms (both CSIRTG indicator body shapes and the native one):
//! - `indicator` (string, or a number for an ASN), `itype` (a hint: `ipv4`, `uri`, `fqdn`...);
//! - `tags` (or `tag_list`): a list, or a comma-separated string; trimmed, lowercased, deduplicated;
//! - `portlist`: an integer, a string `"22,2222"` (ranges `"8000-8080"` allowed), or a list;
//! - times: `firsttime`/`first_at`, `lasttime`/`last_at`, `reporttime`/`reported_at`, in any form
//!   `apiary_core::parse_time` reads (absent: the receive time);
//! - `claimed_confidence` (or `confidence`): the publisher's own claim, a number;
//! - `protocol`, `description`, `tlp`, `sensor`, `count`, `idempotency_key`.
//!
//! Every other field is kept as sent in the sighting's `extra`.

use apiary_core::{parse, parse_time, IType, ParseOptions};
use apiary_ingest::Report;
use apiary_store::{NewSighting, Timestamp, Tlp};
use serde::Serialize;
use serde_json::{Map, Value};

/// Most ports one sighting may list (a wide range is refused rather than stored as thousands).
const MAX_PORTS: usize = 1024;
/// Limits on free-text fields (a sighting is a fact, not a document).
const MAX_DESCRIPTION: usize = apiary_core::limits::MAX_DESCRIPTION;
const MAX_TAGS: usize = 64;
const MAX_TAG_LEN: usize = 128;

/// Why one item was refused: a machine code and a message naming the problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRejection {
    pub code: String,
    pub message: String,
}

fn reject(code: &str, message: impl Into<String>) -> ItemRejection {
    ItemRejection { code: code.to_string(), message: message.into() }
}

/// Everything about a publish that is the same for each of its items.
#[derive(Debug, Clone)]
pub struct Intake<'a> {
    pub feed_id: i64,
    pub reporter_id: i64,
    pub received_at: Timestamp,
    pub options: &'a ParseOptions,
    /// CSIRTG clients give each report a fresh `uuid`: use it as the idempotency key, so a
    /// client's retry of the same report is not counted twice.
    pub uuid_is_key: bool,
}

impl Intake<'_> {
    /// A bare value (a line of a text upload).
    pub fn from_value(&self, value: &str) -> Result<NewSighting, ItemRejection> {
        let mut obj = Map::new();
        obj.insert("indicator".into(), Value::String(value.to_string()));
        self.from_object(obj)
    }

    /// One indicator object.
    pub fn from_object(&self, mut obj: Map<String, Value>) -> Result<NewSighting, ItemRejection> {
        let raw = match obj.remove("indicator") {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => return Err(reject("missing_field", "the item has no `indicator` field")),
            Some(_) => return Err(reject("invalid_field", "`indicator` must be a string")),
        };
        let hint = match string_field(&mut obj, "itype")? {
            None => None,
            Some(name) if name.trim().is_empty() => None,
            Some(name) => Some(
                IType::from_name(&name).ok_or_else(|| reject("unknown_type", format!("unknown itype `{name}`")))?,
            ),
        };
        // The core's message names the value; the reply's `input` echoes it too.
        let ind = parse(&raw, hint, self.options).map_err(|r| reject(r.code.as_str(), r.message))?;

        let mut tags = match obj.remove("tags") {
            Some(v) if !v.is_null() => parse_tags(v)?,
            _ => Vec::new(),
        };
        if let Some(v) = obj.remove("tag_list") {
            for t in parse_tags(v)? {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
        }
        let mut ports = parse_ports(obj.remove("portlist").unwrap_or(Value::Null))?;
        if let Some(p) = ind.port {
            if !ports.contains(&p) {
                ports.push(p);
                ports.sort_unstable();
            }
        }
        let protocol = string_field(&mut obj, "protocol")?
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty());
        let description = string_field(&mut obj, "description")?.filter(|d| !d.trim().is_empty());
        if let Some(d) = &description {
            if d.chars().count() > MAX_DESCRIPTION {
                return Err(reject(
                    "field_too_long",
                    format!("`description` is longer than {MAX_DESCRIPTION} characters"),
                ));
            }
        }
        let tlp = match string_field(&mut obj, "tlp")? {
            None => Tlp::default(),
            Some(t) if t.trim().is_empty() => Tlp::default(),
            Some(t) => Tlp::parse(&t).ok_or_else(|| {
                reject("invalid_tlp", format!("unknown tlp `{t}` (use clear/white, green, amber or red)"))
            })?,
        };
        let first = time_field(&mut obj, &["firsttime", "first_at"])?;
        let last = time_field(&mut obj, &["lasttime", "last_at"])?;
        let report = time_field(&mut obj, &["reporttime", "reported_at"])?;
        // A time far in the future would top every newest-first list and never leave the
        // export windows: the one rule of every path in (a day of clock skew allowed).
        for (name, t) in [("firsttime", first), ("lasttime", last), ("reporttime", report)] {
            if let Some(Err((code, message))) = t.map(|t| apiary_core::check_reported_time(name, t, self.received_at)) {
                return Err(reject(code, message));
            }
        }
        let observed_at = first.or(last).or(report).unwrap_or(self.received_at);
        let observed_until = match (first, last) {
            (Some(f), Some(l)) if l > f => Some(l),
            _ => None,
        };
        let claimed_confidence = confidence_field(&mut obj)?;
        let sensor = string_field(&mut obj, "sensor")?.filter(|s| !s.trim().is_empty());
        let ident = |field: &str, v: Option<&str>| match v.map(|v| apiary_core::limits::check_ident(field, v)) {
            Some(Err(message)) => Err(reject("field_too_long", message)),
            _ => Ok(()),
        };
        ident("sensor", sensor.as_deref())?;
        ident("protocol", protocol.as_deref())?;
        let count = count_field(&mut obj)?;
        let mut idempotency_key = string_field(&mut obj, "idempotency_key")?.filter(|k| !k.is_empty());
        if idempotency_key.is_none() && self.uuid_is_key {
            idempotency_key = obj.get("uuid").and_then(Value::as_str).filter(|u| !u.is_empty()).map(|u| format!("uuid:{u}"));
        }
        ident("idempotency_key", idempotency_key.as_deref())?;
        if raw.trim() != ind.value && !obj.contains_key("original_indicator") {
            // Nothing the client sent is lost: keep the value as written next to its normal form.
            obj.insert("original_indicator".into(), Value::String(raw));
        }

        Ok(NewSighting {
            feed_id: self.feed_id,
            reporter_id: self.reporter_id,
            itype: ind.itype,
            value: ind.value,
            reserved: ind.reserved.map(|r| r.as_str().to_string()),
            observed_at,
            observed_until,
            received_at: self.received_at,
            tags,
            ports,
            protocol,
            description,
            tlp,
            claimed_confidence,
            sensor,
            count,
            extra: Value::Object(obj),
            idempotency_key,
        })
    }
}

/// At most 200 characters of an input, for messages.
pub fn shorten(s: &str) -> String {
    if s.chars().count() <= 200 {
        s.to_string()
    } else {
        let head: String = s.chars().take(200).collect();
        format!("{head}…")
    }
}

/// A string field; numbers and booleans are taken as their text, lists and objects refused.
fn string_field(obj: &mut Map<String, Value>, name: &str) -> Result<Option<String>, ItemRejection> {
    match obj.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(reject("invalid_field", format!("`{name}` must be a string"))),
    }
}

/// Tags from a list or a comma-separated string.
pub fn parse_tags(v: Value) -> Result<Vec<String>, ItemRejection> {
    let mut raw: Vec<String> = Vec::new();
    match v {
        Value::Null => {}
        Value::String(s) => raw.extend(s.split(',').map(str::to_string)),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => raw.extend(s.split(',').map(str::to_string)),
                    Value::Number(n) => raw.push(n.to_string()),
                    Value::Null => {}
                    _ => return Err(reject("invalid_tags", "`tags` must be a list of strings or a comma-separated string")),
                }
            }
        }
        _ => return Err(reject("invalid_tags", "`tags` must be a list of strings or a comma-separated string")),
    }
    let mut tags: Vec<String> = Vec::new();
    for t in raw {
        let t = t.trim().to_lowercase();
        if t.chars().count() > MAX_TAG_LEN {
            return Err(reject("invalid_tags", format!("a tag is longer than {MAX_TAG_LEN} characters")));
        }
        if !t.is_empty() && !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(reject("invalid_tags", format!("more than {MAX_TAGS} tags")));
    }
    Ok(tags)
}

/// Ports from an integer, a string (`"22,2222"`, `"8000-8080"`) or a list of either.
pub fn parse_ports(v: Value) -> Result<Vec<u16>, ItemRejection> {
    let mut ports = Vec::new();
    collect_ports(&v, &mut ports)?;
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

fn collect_ports(v: &Value, ports: &mut Vec<u16>) -> Result<(), ItemRejection> {
    let bad = |what: &str| reject("invalid_port", format!("invalid port `{what}` in `portlist` (0–65535)"));
    match v {
        Value::Null => {}
        Value::Number(n) => {
            let p = n.as_u64().filter(|p| *p <= 65535).ok_or_else(|| bad(&n.to_string()))?;
            ports.push(p as u16);
        }
        Value::String(s) => {
            for part in s.split([',', ' ', ';']).map(str::trim).filter(|p| !p.is_empty()) {
                let one = |x: &str| x.trim().parse::<u16>().map_err(|_| bad(part));
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (one(a)?, one(b)?);
                        if a > b || usize::from(b - a) >= MAX_PORTS {
                            return Err(reject(
                                "invalid_port",
                                format!("port range `{part}` is reversed or wider than {MAX_PORTS} ports"),
                            ));
                        }
                        ports.extend(a..=b);
                    }
                    None => ports.push(one(part)?),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if item.is_array() || item.is_object() {
                    return Err(reject("invalid_port", "`portlist` items must be numbers or strings"));
                }
                collect_ports(item, ports)?;
            }
        }
        _ => return Err(reject("invalid_port", "`portlist` must be a number, a string or a list")),
    }
    if ports.len() > MAX_PORTS {
        return Err(reject("invalid_port", format!("`portlist` lists more than {MAX_PORTS} ports")));
    }
    Ok(())
}

/// The first present time among `names` (aliases of one field), all of them removed.
fn time_field(obj: &mut Map<String, Value>, names: &[&str]) -> Result<Option<Timestamp>, ItemRejection> {
    let mut found = None;
    for name in names {
        let text = match obj.remove(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(reject("invalid_time", format!("`{name}` must be a timestamp string"))),
        };
        let t = parse_time(&text).map_err(|r| reject(r.code.as_str(), format!("`{name}`: {}", r.message)))?;
        found = found.or(Some(t));
    }
    Ok(found)
}

fn confidence_field(obj: &mut Map<String, Value>) -> Result<Option<f64>, ItemRejection> {
    let mut found = None;
    for name in ["claimed_confidence", "confidence"] {
        let v = match obj.remove(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        let v = v
            .filter(|c| c.is_finite() && (0.0..=100.0).contains(c))
            .ok_or_else(|| reject("invalid_confidence", format!("`{name}` must be a number from 0 to 100")))?;
        found = found.or(Some(v));
    }
    Ok(found)
}

fn count_field(obj: &mut Map<String, Value>) -> Result<i64, ItemRejection> {
    let n = match obj.remove("count") {
        None | Some(Value::Null) => return Ok(1),
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    n.filter(|n| (1..=1_000_000_000).contains(n))
        .ok_or_else(|| reject("invalid_count", "`count` must be a whole number from 1 to 1000000000"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_from_list_or_comma_string() {
        for (input, want) in [
            (json!(["scanner", "ssh"]), vec!["scanner", "ssh"]),
            (json!("scanner, ssh ,,SSH"), vec!["scanner", "ssh"]),
            (json!(null), vec![]),
            (json!(["a,b", "c"]), vec!["a", "b", "c"]),
        ] {
            assert_eq!(parse_tags(input.clone()).unwrap(), want, "{input}");
        }
        assert_eq!(parse_tags(json!({"a": 1})).unwrap_err().code, "invalid_tags");
    }

    #[test]
    fn free_text_and_confidence_have_limits() {
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert_eq!(parse_tags(json!(many)).unwrap_err().code, "invalid_tags");
        assert_eq!(parse_tags(json!("x".repeat(MAX_TAG_LEN + 1))).unwrap_err().code, "invalid_tags");
        assert_eq!(parse_tags(json!("x".repeat(MAX_TAG_LEN))).unwrap().len(), 1);
        let mut obj = json!({"confidence": 101}).as_object().unwrap().clone();
        assert_eq!(confidence_field(&mut obj).unwrap_err().code, "invalid_confidence");
        let mut obj = json!({"confidence": 100}).as_object().unwrap().clone();
        assert_eq!(confidence_field(&mut obj).unwrap(), Some(100.0));
    }

    #[test]
    fn ports_from_int_string_or_list() {
        for (input, want) in [
            (json!(22), vec![22u16]),
            (json!("22,2222"), vec![22, 2222]),
            (json!([2222, "22"]), vec![22, 2222]),
            (json!("8000-8002"), vec![8000, 8001, 8002]),
            (json!(null), vec![]),
            (json!(""), vec![]),
        ] {
            assert_eq!(parse_ports(input.clone()).unwrap(), want, "{input}");
        }
        for bad in [json!(70000), json!("ssh"), json!(-1), json!("1-65535"), json!({"p": 1})] {
            assert_eq!(parse_ports(bad.clone()).unwrap_err().code, "invalid_port", "{bad}");
        }
    }

    #[test]
    fn count_and_confidence_fields() {
        let mut obj = json!({"count": "3", "confidence": 7.5}).as_object().unwrap().clone();
        assert_eq!(count_field(&mut obj).unwrap(), 3);
        assert_eq!(confidence_field(&mut obj).unwrap(), Some(7.5));
        let mut obj = json!({"count": 0, "claimed_confidence": "high"}).as_object().unwrap().clone();
        assert_eq!(count_field(&mut obj).unwrap_err().code, "invalid_count");
        assert_eq!(confidence_field(&mut obj).unwrap_err().code, "invalid_confidence");
    }
}

/// A report from a source reader (a Cowrie session, a feed file, an hpfeeds message) as a
/// sighting of `feed_id` by `reporter_id`, received `now`. A TLP the source gave (a feed file's
/// marking) is kept in `extra`, where the API's publishes keep it too.
pub fn report_sighting(mut r: Report, feed_id: i64, reporter_id: i64, now: Timestamp) -> Result<NewSighting, ItemRejection> {
    check_report(&mut r, now)?;
    let tlp = r.extra.get("tlp").and_then(Value::as_str).and_then(Tlp::parse).unwrap_or_default();
    Ok(NewSighting {
        feed_id,
        reporter_id,
        itype: r.indicator.itype,
        reserved: r.indicator.reserved.map(|x| x.as_str().to_owned()),
        value: r.indicator.value,
        observed_at: r.observed_at.unwrap_or(now),
        observed_until: r.observed_until,
        received_at: now,
        tags: r.tags,
        ports: r.port.into_iter().collect(),
        protocol: r.protocol,
        description: r.description,
        tlp,
        claimed_confidence: None,
        sensor: r.sensor,
        count: r.count,
        extra: r.extra,
        idempotency_key: Some(r.idempotency_key),
    })
}

/// The rules every path applies to a report (the same as a publish): reported times within a
/// day of arrival and not before 1970 (`in_future`, `time_out_of_range`), identifiers at most
/// 128 bytes (`field_too_long`), a description cut to its limit.
pub fn check_report(r: &mut Report, now: Timestamp) -> Result<(), ItemRejection> {
    for (field, t) in [("observed_at", r.observed_at), ("observed_until", r.observed_until)] {
        if let Some(Err((code, message))) = t.map(|t| apiary_core::check_reported_time(field, t, now)) {
            return Err(reject(code, message));
        }
    }
    for (field, v) in [("sensor", r.sensor.as_deref()), ("protocol", r.protocol.as_deref()), ("idempotency_key", Some(r.idempotency_key.as_str()))] {
        if let Some(Err(message)) = v.map(|v| apiary_core::limits::check_ident(field, v)) {
            return Err(reject("field_too_long", message));
        }
    }
    if let Some(d) = r.description.as_mut() {
        apiary_core::limits::truncate_chars(d, apiary_core::limits::MAX_DESCRIPTION);
    }
    Ok(())
}
