//! `misp`: MISP event JSON (an event as exported, `{"Event": {...}}`, or a search reply
//! `{"response": [{"Event": ...}, ...]}`): the event's `Attribute`s and the attributes inside
//! its `Object`s.
//!
//! Attribute types read: `ip-src`, `ip-dst`, `ip-src|port`, `ip-dst|port`, `domain`,
//! `hostname`, `hostname|port`, `domain|ip` (two values), `url`, `uri`, `email`, `email-src`,
//! `email-dst`, `md5`, `sha1`, `sha256`, `sha512`, `filename|md5` (and the other
//! `filename|hash` pairs: the hash), `AS`. Only attributes marked `to_ids` (meant for
//! detection) are imported; others, deleted ones and types that name no indicator (`text`,
//! `link`, `filename`, `comment`, ...) are skipped and counted by reason.
//!
//! The event's and the attribute's tags are read: MISP galaxy clusters
//! (`misp-galaxy:threat-actor="Sofacy"`) become tags (`sofacy`), a `tlp:` tag the TLP, and
//! the full tag names are kept in `extra.misp_tags`. The description is the attribute's
//! comment, else the event's `info`; the time is the attribute's `first_seen` or `timestamp`;
//! the category, uuid, event id and object name are kept.

use super::stix::at_index;
use super::{read_document, rejected, scalar_text, Entry, Format, Locator, Options, Record};
use apiary_core::IType;
use serde_json::{Map, Value};
use std::io::{self, BufRead};

pub struct Misp;

impl Format for Misp {
    fn name(&self) -> &'static str {
        "misp"
    }

    fn about(&self) -> &'static str {
        "MISP event JSON: attributes and object attributes marked to_ids"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        let doc = read_document(input)?;
        let root: Value = match serde_json::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                out(rejected(e.line() as u64, "not_json", "", format!("the event is not JSON: {e}")));
                return Ok(());
            }
        };
        let mut locate = Locator::new(&doc);
        let events: Vec<&Map<String, Value>> = match &root {
            Value::Object(m) => match (m.get("Event"), m.get("response")) {
                (Some(Value::Object(e)), _) => vec![e],
                (_, Some(Value::Array(list))) => {
                    list.iter().filter_map(|x| x.get("Event").and_then(Value::as_object).or_else(|| x.as_object())).collect()
                }
                _ => vec![m],
            },
            Value::Array(list) => list.iter().filter_map(|x| x.get("Event").and_then(Value::as_object).or_else(|| x.as_object())).collect(),
            _ => Vec::new(),
        };
        if events.is_empty() || !events.iter().any(|e| e.contains_key("Attribute") || e.contains_key("Object")) {
            out(rejected(1, "not_misp", "", "no MISP event with `Attribute` or `Object` found"));
            return Ok(());
        }
        for ev in events {
            event(ev, &mut locate, out);
        }
        Ok(())
    }
}

/// What the event gives every attribute.
struct EventContext {
    info: Option<String>,
    tags: Vec<String>,
    tag_names: Vec<Value>,
    tlp: Option<String>,
    event_id: Option<String>,
    event_uuid: Option<String>,
}

fn event(ev: &Map<String, Value>, locate: &mut Locator, out: &mut dyn FnMut(Entry)) {
    let mut ctx = EventContext {
        info: ev.get("info").and_then(Value::as_str).map(str::to_owned),
        tags: Vec::new(),
        tag_names: Vec::new(),
        tlp: None,
        event_id: ev.get("id").and_then(scalar_text),
        event_uuid: ev.get("uuid").and_then(scalar_text),
    };
    read_tags(ev.get("Tag"), &mut ctx.tags, &mut ctx.tag_names, &mut ctx.tlp);
    if let Some(Value::Array(attrs)) = ev.get("Attribute") {
        for (i, a) in attrs.iter().enumerate() {
            let at = format!("Attribute[{i}]");
            match a.as_object() {
                Some(a) => attribute(a, None, &ctx, locate, &mut |e| out(at_index(e, &at))),
                None => out(not_an_object(a, &at)),
            }
        }
    }
    if let Some(Value::Array(objects)) = ev.get("Object") {
        for (j, o) in objects.iter().enumerate() {
            let Some(o) = o.as_object() else {
                out(not_an_object(o, &format!("Object[{j}]")));
                continue;
            };
            let name = o.get("name").and_then(Value::as_str);
            let deleted = o.get("deleted").and_then(Value::as_bool) == Some(true);
            if let Some(Value::Array(attrs)) = o.get("Attribute") {
                for (i, a) in attrs.iter().enumerate() {
                    let at = format!("Object[{j}].Attribute[{i}]");
                    let Some(a) = a.as_object() else {
                        out(not_an_object(a, &at));
                        continue;
                    };
                    if deleted {
                        let line = uuid_line(a, locate);
                        out(at_index(Entry::Skipped { line, reason: "MISP object deleted".into() }, &at));
                    } else {
                        attribute(a, name, &ctx, locate, &mut |e| out(at_index(e, &at)));
                    }
                }
            }
        }
    }
}

/// An entry of an attribute or object list that is not an object: counted, with its place.
fn not_an_object(v: &Value, at: &str) -> Entry {
    let text = v.to_string();
    rejected(0, "not_an_object", &text, format!("{at} is {text}, not a MISP object"))
}

fn uuid_line(a: &Map<String, Value>, locate: &mut Locator) -> u64 {
    a.get("uuid").and_then(Value::as_str).map_or(0, |u| locate.line_of(&format!("\"{u}\"")))
}

/// Tags as words: galaxy cluster values; `tlp:` tags set the TLP. Full names go to `names`.
fn read_tags(tags: Option<&Value>, words: &mut Vec<String>, names: &mut Vec<Value>, tlp: &mut Option<String>) {
    let Some(Value::Array(tags)) = tags else { return };
    for t in tags {
        let Some(name) = t.get("name").and_then(Value::as_str).or_else(|| t.as_str()) else { continue };
        names.push(Value::String(name.to_owned()));
        if let Some(level) = name.strip_prefix("tlp:") {
            let level = match level.to_ascii_lowercase().as_str() {
                "white" | "clear" => "clear",
                "green" => "green",
                "amber" | "amber+strict" => "amber",
                "red" => "red",
                _ => continue,
            };
            *tlp = Some(level.to_owned());
        } else if name.starts_with("misp-galaxy:") {
            if let Some((_, v)) = name.split_once('=') {
                words.push(v.trim_matches('"').to_owned());
            }
        }
    }
}

/// The indicator type of a MISP attribute type, and whether its value is `a|b` with the
/// indicator first (`ip-dst|port`) or last (`filename|md5`).
enum Shape {
    Plain(Option<IType>),
    /// `value|port` (the core reads both parts).
    WithPort,
    /// `filename|hash`: the hash.
    HashAfterName(IType),
    /// `domain|ip`: two indicators.
    DomainIp,
}

fn shape(t: &str) -> Option<Shape> {
    Some(match t {
        "ip-src" | "ip-dst" => Shape::Plain(None),
        "ip-src|port" | "ip-dst|port" => Shape::WithPort,
        "hostname|port" => Shape::WithPort,
        "domain" | "hostname" => Shape::Plain(Some(IType::Fqdn)),
        "domain|ip" => Shape::DomainIp,
        "url" | "uri" => Shape::Plain(Some(IType::Url)),
        "email" | "email-src" | "email-dst" | "email-reply-to" => Shape::Plain(Some(IType::Email)),
        "md5" => Shape::Plain(Some(IType::Md5)),
        "sha1" => Shape::Plain(Some(IType::Sha1)),
        "sha256" => Shape::Plain(Some(IType::Sha256)),
        "sha512" => Shape::Plain(Some(IType::Sha512)),
        "filename|md5" => Shape::HashAfterName(IType::Md5),
        "filename|sha1" => Shape::HashAfterName(IType::Sha1),
        "filename|sha256" => Shape::HashAfterName(IType::Sha256),
        "filename|sha512" => Shape::HashAfterName(IType::Sha512),
        "AS" | "as" => Shape::Plain(Some(IType::Asn)),
        _ => return None,
    })
}

fn attribute(a: &Map<String, Value>, object: Option<&str>, ctx: &EventContext, locate: &mut Locator, out: &mut dyn FnMut(Entry)) {
    let line = uuid_line(a, locate);
    let t = a.get("type").and_then(Value::as_str).unwrap_or("");
    if a.get("deleted").and_then(Value::as_bool) == Some(true) {
        return out(Entry::Skipped { line, reason: "MISP attribute deleted".into() });
    }
    let Some(shape) = shape(t) else {
        return out(Entry::Skipped { line, reason: format!("MISP type `{t}` is not an indicator") });
    };
    let to_ids = match a.get("to_ids") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => true,
    };
    if !to_ids {
        return out(Entry::Skipped { line, reason: "MISP to_ids off".into() });
    }
    let Some(value) = a.get("value").and_then(scalar_text) else {
        return out(rejected(line, "missing_field", t, format!("`{t}` attribute without a value")));
    };
    let mut base = Record::new(line, value.clone());
    base.description = a.get("comment").and_then(Value::as_str).filter(|c| !c.trim().is_empty()).map(str::to_owned).or_else(|| ctx.info.clone());
    base.first_seen = a.get("first_seen").and_then(scalar_text).or_else(|| a.get("timestamp").and_then(scalar_text));
    base.last_seen = a.get("last_seen").and_then(scalar_text);
    base.tags = ctx.tags.clone();
    let mut names = ctx.tag_names.clone();
    let mut tlp = ctx.tlp.clone();
    read_tags(a.get("Tag"), &mut base.tags, &mut names, &mut tlp);
    base.tlp = tlp;
    if !names.is_empty() {
        base.extra.insert("misp_tags".into(), Value::Array(names));
    }
    base.extra.insert("misp_type".into(), Value::String(t.to_owned()));
    for (k, v) in [("category", a.get("category").cloned()), ("uuid", a.get("uuid").cloned())] {
        if let Some(v) = v {
            base.extra.insert(k.into(), v);
        }
    }
    if let Some(o) = object {
        base.extra.insert("misp_object".into(), Value::String(o.to_owned()));
    }
    if let Some(id) = &ctx.event_id {
        base.extra.insert("misp_event_id".into(), Value::String(id.clone()));
    }
    if let Some(u) = &ctx.event_uuid {
        base.extra.insert("misp_event_uuid".into(), Value::String(u.clone()));
    }
    let split = |v: &str| v.split_once('|').map(|(a, b)| (a.to_owned(), b.to_owned()));
    match shape {
        Shape::Plain(hint) => {
            base.hint = hint;
            out(Entry::Record(base));
        }
        Shape::WithPort => match split(&value) {
            // The core reads `address|port` itself, and knows the address family.
            Some((_, port)) if port.trim().parse::<u16>().is_ok() => out(Entry::Record(base)),
            _ => out(rejected(line, "bad_composite", &value, format!("`{t}` value is not `value|port`"))),
        },
        Shape::HashAfterName(h) => match split(&value) {
            Some((name, hash)) => {
                base.value = hash;
                base.hint = Some(h);
                base.extra.insert("filename".into(), Value::String(name));
                out(Entry::Record(base));
            }
            None => out(rejected(line, "bad_composite", &value, format!("`{t}` value is not `filename|hash`"))),
        },
        Shape::DomainIp => match split(&value) {
            Some((domain, ip)) => {
                let mut d = base.clone();
                d.value = domain;
                d.hint = Some(IType::Fqdn);
                out(Entry::Record(d));
                base.value = ip;
                out(Entry::Record(base));
            }
            None => out(rejected(line, "bad_composite", &value, "`domain|ip` value is not `domain|ip`")),
        },
    }
}
