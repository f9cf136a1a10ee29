//! From a session to reports: what a hub learns from one Cowrie session.
//!
//! - The attacker address (`src_ip`), once per session: port = the honeypot's port, protocol,
//!   observed from the session's start to its end, tagged by depth — `scanner` (connect or
//!   handshake only), `bruteforce` (credentials tried), `login`, `commands`, `download`/`upload`
//!   (a payload arrived), `tunnel` (used as a proxy). Its `extra` holds the session summary.
//! - Each download URL (`malware`, `download`) and the URL's host (`malware`, `download`).
//! - Each payload hash, sha256 (`malware`, `payload`; a redirect capture is `payload` only,
//!   since it is what the attacker wrote, such as an `authorized_keys` line).
//!
//! Every value goes through [`apiary_core::parse`]; a refused value is returned in
//! [`Derived::rejected`], never dropped silently. Each report's idempotency key is
//! `sha256("cowrie" ␟ sensor ␟ session ␟ kind ␟ value)`, so reading the same log again (or a
//! shipper resending it) adds nothing.

use super::session::{Depth, Session};
use crate::report::{idempotency_key, Report};
use apiary_core::{IType, Indicator, ParseOptions, Rejection};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// Options for deriving reports.
#[derive(Debug, Clone)]
pub struct DeriveOptions {
    pub parse: ParseOptions,
    /// At most this many credentials and commands are listed in the attacker report's `extra`
    /// (the totals are always given).
    pub max_listed: usize,
}

impl Default for DeriveOptions {
    fn default() -> Self {
        DeriveOptions { parse: ParseOptions::default(), max_listed: 100 }
    }
}

/// The reports of one session, and the values the core refused.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub reports: Vec<Report>,
    /// (what the value was, the value, why it was refused).
    pub rejected: Vec<(&'static str, String, Rejection)>,
}

/// Tags for an attacker address that reached `depth`.
pub fn depth_tags(s: &Session) -> Vec<String> {
    let depth = s.depth();
    let mut tags = Vec::new();
    if depth <= Depth::Handshake {
        tags.push("scanner");
    }
    if !s.credentials.is_empty() {
        tags.push("bruteforce");
    }
    if s.logged_in {
        tags.push("login");
    }
    if !s.commands.is_empty() {
        tags.push("commands");
    }
    if s.downloads.iter().any(|d| d.shasum.is_some() && d.url.is_some()) {
        tags.push("download");
    }
    if s.uploads.iter().any(|u| u.shasum.is_some()) {
        tags.push("upload");
    }
    if !s.tunnels.is_empty() {
        tags.push("tunnel");
    }
    tags.into_iter().map(str::to_owned).collect()
}

/// Derive the reports of one session.
pub fn reports(s: &Session, opts: &DeriveOptions) -> Derived {
    let mut out = Derived::default();
    let key = |kind: &str, value: &str| idempotency_key(&["cowrie", &s.sensor, &s.session, kind, value]);
    let parse = |what: &'static str, raw: &str, hint: Option<IType>, out: &mut Derived| -> Option<Indicator> {
        match apiary_core::parse(raw, hint, &opts.parse) {
            Ok(ind) => Some(ind),
            Err(e) => {
                out.rejected.push((what, raw.to_owned(), e));
                None
            }
        }
    };

    // The attacker.
    let mut attacker_value = None;
    if let Some(src) = s.src_ip.as_deref() {
        if let Some(ind) = parse("src_ip", src, None, &mut out) {
            if ind.itype.is_address() && !ind.is_cidr() {
                attacker_value = Some(ind.value.clone());
                let depth = s.depth();
                let proto = s.protocol.as_deref().unwrap_or("session");
                out.reports.push(Report {
                    idempotency_key: key("attacker", &ind.value),
                    source: None,
                    tags: depth_tags(s),
                    port: s.dst_port,
                    protocol: s.protocol.clone(),
                    observed_at: s.start,
                    observed_until: s.end,
                    sensor: Some(s.sensor.clone()),
                    description: Some(format!("cowrie {proto} {}: {}", s.session, depth.as_str())),
                    count: 1,
                    extra: session_extra(s, opts),
                    indicator: ind,
                });
            } else {
                let msg = format!("`src_ip` is a {}, not an address", ind.itype);
                out.rejected.push((
                    "src_ip",
                    src.to_owned(),
                    Rejection::new(apiary_core::RejectCode::TypeMismatch, msg),
                ));
            }
        }
    }

    // Download URLs and their hosts, in first-seen order.
    let mut urls: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, d) in s.downloads.iter().enumerate() {
        if let Some(u) = d.url.as_deref().filter(|u| !u.is_empty()) {
            match urls.iter_mut().find(|(x, _)| x == u) {
                Some((_, idx)) => idx.push(i),
                None => urls.push((u.to_owned(), vec![i])),
            }
        }
    }
    // A host serving several URLs of the session is one report.
    struct Host {
        ind: Indicator,
        count: i64,
        first: Option<DateTime<Utc>>,
        last: Option<DateTime<Utc>>,
        urls: Vec<String>,
    }
    let mut hosts: Vec<Host> = Vec::new();
    for (raw, idx) in &urls {
        let Some(ind) = parse("url", raw, Some(IType::Url), &mut out) else { continue };
        let first = idx.iter().filter_map(|&i| s.downloads[i].time).min().or(s.start);
        let last = idx.iter().filter_map(|&i| s.downloads[i].time).max();
        let shasums: Vec<&str> = idx.iter().filter_map(|&i| s.downloads[i].shasum.as_deref()).collect();
        let failed = shasums.is_empty();
        let mut extra = json!({
            "source": "cowrie",
            "session": s.session,
            "attacker": attacker_value,
            "shasums": shasums,
        });
        if failed {
            let errors: Vec<&str> = idx.iter().filter_map(|&i| s.downloads[i].error.as_deref()).collect();
            extra["failed"] = json!(true);
            extra["errors"] = json!(errors);
        }
        for d in &ind.derived {
            let Some(host) = parse("url host", &d.value, Some(d.itype), &mut out) else { continue };
            match hosts.iter_mut().find(|h| h.ind.value == host.value) {
                Some(h) => {
                    h.count += idx.len() as i64;
                    h.first = match (h.first, first) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    h.last = h.last.max(last);
                    h.urls.push(ind.value.clone());
                }
                None => hosts.push(Host { ind: host, count: idx.len() as i64, first, last, urls: vec![ind.value.clone()] }),
            }
        }
        out.reports.push(Report {
            idempotency_key: key("url", &ind.value),
            source: None,
            tags: vec!["malware".into(), "download".into()],
            port: ind.port,
            protocol: None,
            observed_at: first,
            observed_until: last,
            sensor: Some(s.sensor.clone()),
            description: Some(format!("URL fetched in cowrie session {}", s.session)),
            count: idx.len() as i64,
            extra,
            indicator: ind,
        });
    }

    for Host { ind: host, count, first, last, urls } in hosts {
        out.reports.push(Report {
            idempotency_key: key("url-host", &host.value),
            source: None,
            tags: vec!["malware".into(), "download".into()],
            port: None,
            protocol: None,
            observed_at: first,
            observed_until: last,
            sensor: Some(s.sensor.clone()),
            description: Some(format!("host of a URL fetched in cowrie session {}", s.session)),
            count,
            extra: json!({"source": "cowrie", "session": s.session, "attacker": attacker_value, "urls": urls}),
            indicator: host,
        });
    }

    // Payload hashes from downloads (with or without URL) and uploads.
    struct Payload<'a> {
        hash: &'a str,
        tags: Vec<&'static str>,
        count: i64,
        times: Vec<DateTime<Utc>>,
        names: Vec<&'a str>,
    }
    let mut payloads: Vec<Payload> = Vec::new();
    for (hash, tags, time, name) in s
        .downloads
        .iter()
        .filter_map(|d| {
            let h = d.shasum.as_deref()?;
            let tags: &[&'static str] = if d.url.is_some() { &["malware", "payload"] } else { &["payload", "redirect"] };
            Some((h, tags, d.time, d.url.as_deref().or(d.destfile.as_deref())))
        })
        .chain(s.uploads.iter().filter_map(|u| {
            let h = u.shasum.as_deref()?;
            Some((h, &["malware", "payload", "upload"][..], u.time, u.filename.as_deref()))
        }))
    {
        let p = match payloads.iter_mut().position(|p| p.hash == hash) {
            Some(i) => &mut payloads[i],
            None => {
                payloads.push(Payload { hash, tags: Vec::new(), count: 0, times: Vec::new(), names: Vec::new() });
                payloads.last_mut().expect("just pushed")
            }
        };
        p.count += 1;
        for t in tags {
            if !p.tags.contains(t) {
                p.tags.push(t);
            }
        }
        p.times.extend(time);
        if let Some(n) = name {
            if !p.names.contains(&n) {
                p.names.push(n);
            }
        }
    }
    for p in payloads {
        let Some(ind) = parse("shasum", p.hash, Some(IType::Sha256), &mut out) else { continue };
        out.reports.push(Report {
            idempotency_key: key("sha256", &ind.value),
            source: None,
            tags: p.tags.iter().map(|t| t.to_string()).collect(),
            port: None,
            protocol: None,
            observed_at: p.times.iter().min().copied().or(s.start),
            observed_until: p.times.iter().max().copied(),
            sensor: Some(s.sensor.clone()),
            description: Some(format!("payload of cowrie session {}", s.session)),
            count: p.count,
            extra: json!({"source": "cowrie", "session": s.session, "attacker": attacker_value, "names": p.names}),
            indicator: ind,
        });
    }
    out
}

/// The session summary kept with the attacker's report.
fn session_extra(s: &Session, opts: &DeriveOptions) -> Value {
    let mut m = Map::new();
    m.insert("source".into(), json!("cowrie"));
    m.insert("session".into(), json!(s.session));
    m.insert("depth".into(), json!(s.depth().as_str()));
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    put("src_port", json!(s.src_port));
    put("dst_ip", json!(s.dst_ip));
    if s.protocol_inferred {
        put("protocol_inferred", json!(true));
    }
    put("duration", json!(s.duration_secs()));
    put("client_version", json!(s.client_version));
    put("hassh", json!(s.hassh));
    put("sensor_uuid", json!(s.sensor_uuid));
    put("arch", json!(s.arch));
    if !s.credentials.is_empty() {
        let list: Vec<Value> = s
            .credentials
            .iter()
            .take(opts.max_listed)
            .map(|c| match &c.fingerprint {
                Some(fp) if c.password.is_none() => json!([c.username, {"fingerprint": fp}]),
                _ => json!([c.username, c.password]),
            })
            .collect();
        put("login_attempts", json!(s.credentials.len()));
        put("credentials", Value::Array(list));
        if let Some(c) = s.credentials.iter().find(|c| c.success) {
            put("loggedin", json!([c.username, c.password]));
        }
    }
    if !s.commands.is_empty() {
        let typed: Vec<&str> = s
            .commands
            .iter()
            .filter(|c| c.status == super::session::CommandStatus::Input)
            .map(|c| c.input.as_str())
            .collect();
        let unknown: Vec<&str> = s
            .commands
            .iter()
            .filter(|c| c.status == super::session::CommandStatus::Unknown)
            .map(|c| c.input.as_str())
            .collect();
        put("command_count", json!(typed.len()));
        put("commands", json!(typed.iter().take(opts.max_listed).collect::<Vec<_>>()));
        if !unknown.is_empty() {
            put("unknown_commands", json!(unknown.iter().take(opts.max_listed).collect::<Vec<_>>()));
        }
    }
    if !s.downloads.is_empty() {
        let list: Vec<Value> = s
            .downloads
            .iter()
            .take(opts.max_listed)
            .map(|d| json!({"url": d.url, "shasum": d.shasum, "error": d.error}))
            .collect();
        put("downloads", Value::Array(list));
    }
    if !s.uploads.is_empty() {
        let list: Vec<Value> =
            s.uploads.iter().take(opts.max_listed).map(|u| json!({"filename": u.filename, "shasum": u.shasum})).collect();
        put("uploads", Value::Array(list));
    }
    if !s.tunnels.is_empty() {
        let list: Vec<Value> =
            s.tunnels.iter().take(opts.max_listed).map(|t| json!({"host": t.host, "port": t.port})).collect();
        put("tunnels", Value::Array(list));
    }
    if let Some(h) = s.ttylog.as_ref().and_then(|t| t.shasum.as_deref()) {
        put("ttylog_shasum", json!(h));
    }
    if !s.other_fields.is_empty() {
        put("fields", json!(s.other_fields));
    }
    if !s.other_events.is_empty() {
        put("other_events", json!(s.other_events));
    }
    if !s.closed {
        put("unclosed", json!(true));
    }
    Value::Object(m)
}
