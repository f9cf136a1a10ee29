//! Dionaea's JSON log (the `log_json` ihandler: one flat object per line).
//!
//! Events of one attack share a `connection_root` (a child connection, say an FTP data channel,
//! points at its root). Roots are numbered per run of the honeypot, so a group is keyed by
//! (sensor, root) and named in reports with its first time as well. Each group gives:
//!
//! - the attacker's address (`remote_host` of its connections): port = the honeypot's
//!   `local_port`, protocol = the transport (`tcp`, `udp`, `tls`), observed from the group's
//!   first to last event, tags from what happened — `scanner` always, the service (`smb`,
//!   `mssql`, `mysql`, `sip`, `ftp`, `http`, `mqtt`, `dcerpc`, ...), `bruteforce` for logins,
//!   `commands` for SQL/MQTT commands, `exploit` when Dionaea names a vulnerability
//!   (`dcerpcserviceop_vuln`), `download` and `malware` when a file was captured, and
//!   `udp-only` when every connection was UDP (the source address could be spoofed);
//! - each download's URL (when Dionaea recorded one), its host, and its MD5 hash.
//!
//! Groups are handed out when the input ends (Dionaea writes no "closed" event). `listen`
//! connections (Dionaea's own data channels, no remote host) give no sighting. Lines that are
//! not JSON objects, or lack `connection_root`/`connection`, are counted with their numbers.

use std::collections::{BTreeMap, HashMap};

use apiary_core::{parse, IType, Indicator, ParseOptions};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{ProblemKind, ReadOptions, ReadStats, Source};
use crate::lines::decode_lossy;
use crate::{idempotency_key, Report};

/// Events a group keeps in its details (all are counted).
const KEPT_DETAILS: usize = 20;

pub struct Dionaea {
    opts: ReadOptions,
    parse: ParseOptions,
    groups: HashMap<(String, i64), Group>,
    order: u64,
    stats: ReadStats,
}

pub fn new(opts: ReadOptions) -> Box<dyn Source> {
    Box::new(Dionaea { opts, parse: ParseOptions::default(), groups: HashMap::new(), order: 0, stats: ReadStats::default() })
}

/// One attack: the events under one connection root.
#[derive(Default)]
struct Group {
    order: u64,
    sensor: String,
    root: i64,
    file: String,
    line: u64,
    remote: Option<String>,
    local_host: Option<String>,
    local_port: Option<u16>,
    transports: Vec<String>,
    services: Vec<String>,
    connections: Vec<i64>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    events: BTreeMap<String, u64>,
    credentials: Vec<(String, String)>,
    commands: Vec<String>,
    vulns: Vec<String>,
    downloads: Vec<Download>,
}

struct Download {
    url: Option<String>,
    md5: Option<String>,
    filetype: Option<String>,
    time: Option<DateTime<Utc>>,
}

fn text(ev: &Map<String, Value>, key: &str) -> Option<String> {
    match ev.get(key)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(ev: &Map<String, Value>, key: &str) -> Option<i64> {
    match ev.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Dionaea's service names (its `connection_protocol`) as tags.
fn service_tag(protocol: &str) -> Option<&'static str> {
    Some(match protocol.to_ascii_lowercase().as_str() {
        "smbd" => "smb",
        "mssqld" => "mssql",
        "mysqld" => "mysql",
        "sipsession" | "sipcall" => "sip",
        "ftpd" | "ftpdatacon" | "ftpdatalisten" => "ftp",
        "httpd" => "http",
        "mqttd" => "mqtt",
        "epmapper" => "dcerpc",
        "upnpd" => "upnp",
        "pptpd" => "pptp",
        "mongod" => "mongodb",
        "memcache" | "memcached" => "memcached",
        "tftpd" => "tftp",
        "printerd" => "printer",
        _ => return None,
    })
}

impl Dionaea {
    fn problem(&mut self, file: &str, line: u64, kind: ProblemKind, msg: String) {
        let max = self.opts.max_problems;
        self.stats.problem(max, file, line, kind, msg);
    }

    fn reports_of(&mut self, g: Group, out: &mut dyn FnMut(Report)) {
        self.stats.sessions += 1;
        let start = g.first.map(|t| t.to_rfc3339()).unwrap_or_default();
        let key = |kind: &str, value: &str| idempotency_key(&["dionaea", &g.sensor, &g.root.to_string(), &start, kind, value]);
        let mut refused: Vec<(&'static str, String, String)> = Vec::new();
        let parse_as = |what: &'static str, raw: &str, hint: Option<IType>, refused: &mut Vec<(&'static str, String, String)>| -> Option<Indicator> {
            match parse(raw, hint, &self.parse) {
                Ok(ind) => Some(ind),
                Err(e) => {
                    refused.push((what, raw.to_owned(), e.to_string()));
                    None
                }
            }
        };
        let attacker = g.remote.as_deref().and_then(|r| parse_as("remote_host", r, None, &mut refused)).filter(|i| i.itype.is_address());
        let attacker_value = attacker.as_ref().map(|i| i.value.clone());
        if let Some(ind) = attacker {
            let mut tags = vec!["scanner".to_owned()];
            for s in &g.services {
                if let Some(t) = service_tag(s) {
                    push_unique(&mut tags, t.to_owned());
                }
            }
            if g.events.contains_key("login") || (g.events.contains_key("mqtt_fingerprint") && !g.credentials.is_empty()) {
                push_unique(&mut tags, "bruteforce".into());
            }
            if ["mssql_command", "mysql_command", "mqtt_subscribe_command"].iter().any(|e| g.events.contains_key(*e)) {
                push_unique(&mut tags, "commands".into());
            }
            if !g.vulns.is_empty() {
                push_unique(&mut tags, "exploit".into());
            }
            if !g.downloads.is_empty() {
                push_unique(&mut tags, "download".into());
                push_unique(&mut tags, "malware".into());
            }
            let udp_only = !g.transports.is_empty() && g.transports.iter().all(|t| t == "udp");
            if udp_only {
                push_unique(&mut tags, "udp-only".into());
            }
            let service = g.services.first().cloned().unwrap_or_default();
            let extra = json!({
                "source": "dionaea",
                "connection_root": g.root,
                "connections": g.connections,
                "services": g.services,
                "transports": g.transports,
                "local_host": g.local_host,
                "events": g.events,
                "credentials": g.credentials.iter().map(|(u, p)| json!([u, p])).collect::<Vec<_>>(),
                "commands": g.commands,
                "vulnerabilities": g.vulns,
                "downloads": g.downloads.iter().map(|d| json!({"url": d.url, "md5": d.md5, "filetype": d.filetype})).collect::<Vec<_>>(),
                "spoofable": udp_only,
            });
            out(Report {
                idempotency_key: key("attacker", &ind.value),
                source: None,
                tags,
                port: g.local_port,
                protocol: g.transports.first().cloned(),
                observed_at: g.first,
                observed_until: g.last,
                sensor: Some(g.sensor.clone()),
                description: Some(format!("dionaea {service} connection {}", g.root)),
                count: 1,
                extra,
                indicator: ind,
            });
        }
        for d in &g.downloads {
            let base = json!({"source": "dionaea", "connection_root": g.root, "attacker": attacker_value, "url": d.url, "md5": d.md5, "filetype": d.filetype});
            let report = |ind: Indicator, kind: &str, tags: &[&str], what: &str| Report {
                idempotency_key: key(kind, &ind.value),
                source: None,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                port: if kind == "url" { ind.port } else { None },
                protocol: None,
                observed_at: d.time.or(g.first),
                observed_until: None,
                sensor: Some(g.sensor.clone()),
                description: Some(format!("{what} in dionaea connection {}", g.root)),
                count: 1,
                extra: base.clone(),
                indicator: ind,
            };
            if let Some(url) = d.url.as_deref() {
                if let Some(ind) = parse_as("download_url", url, Some(IType::Url), &mut refused) {
                    for h in &ind.derived {
                        if let Some(host) = parse_as("download_url host", &h.value, Some(h.itype), &mut refused) {
                            out(report(host, "url-host", &["malware", "download"], "host of a URL downloaded"));
                        }
                    }
                    out(report(ind, "url", &["malware", "download"], "URL downloaded"));
                }
            }
            if let Some(md5) = d.md5.as_deref() {
                if let Some(ind) = parse_as("download_md5_hash", md5, Some(IType::Md5), &mut refused) {
                    out(report(ind, "payload", &["malware", "payload"], "payload captured"));
                }
            }
        }
        for (what, value, why) in refused {
            let msg = format!("connection {} ({}): `{what}` {value:?} refused: {why}", g.root, g.sensor);
            self.problem(&g.file.clone(), g.line, ProblemKind::RejectedValue, msg);
        }
    }
}

impl Source for Dionaea {
    fn push_line(&mut self, file: &str, default_sensor: &str, number: u64, bytes: &[u8], complete: bool, _out: &mut dyn FnMut(Report)) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            self.stats.blank_lines += 1;
            return;
        }
        let (line, lossy) = decode_lossy(bytes);
        let ev = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return self.problem(file, number, ProblemKind::NotJson, "not a JSON object; line skipped".into()),
            Err(e) if complete => return self.problem(file, number, ProblemKind::NotJson, format!("not JSON ({e}); line skipped")),
            Err(e) => {
                return self.problem(file, number, ProblemKind::IncompleteLine, format!("half line at the end of the file, no newline ({e}); skipped"))
            }
        };
        if lossy {
            self.stats.lines_invalid_utf8 += 1;
            self.problem(file, number, ProblemKind::InvalidUtf8, "invalid UTF-8, kept with replacement characters".into());
        }
        let Some(root) = int(&ev, "connection_root").or_else(|| int(&ev, "connection")) else {
            return self.problem(file, number, ProblemKind::NoSession, "event has no `connection_root` or `connection`; skipped".into());
        };
        self.stats.events += 1;
        let time = match text(&ev, "timestamp") {
            Some(ts) => match apiary_core::parse_time(&ts) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.stats.bad_timestamps += 1;
                    self.problem(file, number, ProblemKind::BadTimestamp, format!("unreadable `timestamp` {ts:?} ({e}); event read without a time"));
                    None
                }
            },
            None => {
                self.stats.bad_timestamps += 1;
                self.problem(file, number, ProblemKind::BadTimestamp, "no `timestamp`; event read without a time".into());
                None
            }
        };
        let sensor = self.opts.sensor.clone().or_else(|| text(&ev, "sensor")).unwrap_or_else(|| default_sensor.to_owned());
        self.order += 1;
        let order = self.order;
        let g = self.groups.entry((sensor.clone(), root)).or_insert_with(|| Group {
            order,
            sensor,
            root,
            file: file.to_owned(),
            line: number,
            ..Group::default()
        });
        g.first = match (g.first, time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        g.last = g.last.max(time);
        let eventid = text(&ev, "eventid").unwrap_or_default();
        *g.events.entry(eventid.clone()).or_insert(0) += 1;
        let ctype = text(&ev, "connection_type").unwrap_or_default();
        if ctype != "listen" {
            if let Some(remote) = text(&ev, "remote_host") {
                g.remote.get_or_insert(remote);
            }
            if g.local_port.is_none() {
                g.local_port = int(&ev, "local_port").and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0);
            }
            if let Some(t) = text(&ev, "connection_transport") {
                push_unique(&mut g.transports, t.to_ascii_lowercase());
            }
        }
        g.local_host = g.local_host.take().or_else(|| text(&ev, "local_host"));
        if let Some(p) = text(&ev, "connection_protocol") {
            push_unique(&mut g.services, p);
        }
        if let Some(c) = int(&ev, "connection") {
            if !g.connections.contains(&c) {
                g.connections.push(c);
            }
        }
        match eventid.as_str() {
            "connection" => {}
            "login" => {
                if g.credentials.len() < KEPT_DETAILS {
                    g.credentials.push((text(&ev, "login_username").unwrap_or_default(), text(&ev, "login_password").unwrap_or_default()));
                }
            }
            "mqtt_fingerprint" => {
                if let Some(u) = text(&ev, "mqtt_fingerprint_username") {
                    if g.credentials.len() < KEPT_DETAILS {
                        g.credentials.push((u, text(&ev, "mqtt_fingerprint_password").unwrap_or_default()));
                    }
                }
            }
            "mssql_command" | "mysql_command" | "mqtt_subscribe_command" => {
                let cmd = text(&ev, "mssql_command_cmd")
                    .or_else(|| text(&ev, "mysql_command_arg_data"))
                    .or_else(|| text(&ev, "mysql_command_op_name"))
                    .or_else(|| text(&ev, "mqtt_subscribe_command_topic"));
                if let Some(c) = cmd {
                    if g.commands.len() < KEPT_DETAILS {
                        g.commands.push(c.chars().take(1024).collect());
                    }
                }
            }
            "dcerpcbind" | "dcerpcrequest" => {
                if let Some(v) = text(&ev, "dcerpcserviceop_vuln") {
                    push_unique(&mut g.vulns, v);
                }
            }
            "download" => g.downloads.push(Download {
                url: text(&ev, "download_url"),
                md5: text(&ev, "download_md5_hash"),
                filetype: text(&ev, "download_filetype"),
                time,
            }),
            "mssql_fingerprint" | "sip_command" => {}
            other => *self.stats.unknown_eventids.entry(other.to_owned()).or_insert(0) += 1,
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(Report)) {
        let mut groups: Vec<Group> = self.groups.drain().map(|(_, g)| g).collect();
        groups.sort_by_key(|g| g.order);
        for g in groups {
            self.reports_of(g, out);
        }
    }

    fn stats(&self) -> &ReadStats {
        &self.stats
    }

    fn stats_mut(&mut self) -> &mut ReadStats {
        &mut self.stats
    }

    fn into_stats(self: Box<Self>) -> ReadStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Report>, ReadStats) {
        let mut src = new(ReadOptions::default());
        let mut reports = Vec::new();
        super::super::read(src.as_mut(), text.as_bytes(), "t.json", "pot1", &mut |_| {}, &mut |r| reports.push(r)).unwrap();
        src.finish(&mut |r| reports.push(r));
        (reports, src.into_stats())
    }

    const EV: &str = r#""connection_type": "accept", "connection_transport": "tcp", "local_host": "10.0.0.2", "remote_hostname": "", "connection_parent": null"#;

    #[test]
    fn a_connection_group_gives_the_attacker_with_what_happened_and_its_downloads() {
        let log = format!(
            "{{\"eventid\": \"connection\", \"connection\": 7, \"connection_root\": 7, \"connection_protocol\": \"mssqld\", \"local_port\": 1433, \"remote_host\": \"198.51.100.7\", \"remote_port\": 5000, \"timestamp\": \"2023-05-31T10:00:00.000000Z\", {EV}}}\n\
             {{\"eventid\": \"login\", \"connection\": 7, \"connection_root\": 7, \"connection_protocol\": \"mssqld\", \"local_port\": 1433, \"remote_host\": \"198.51.100.7\", \"login_username\": \"sa\", \"login_password\": \"\", \"timestamp\": \"2023-05-31T10:00:01.000000Z\", {EV}}}\n\
             not json at all\n\
             {{\"eventid\": \"download\", \"connection\": 8, \"connection_root\": 8, \"connection_protocol\": \"smbd\", \"local_port\": 445, \"remote_host\": \"203.0.113.9\", \"download_url\": \"http://203.0.113.9/x.exe\", \"download_md5_hash\": \"414a3594e4a822cfb97a4326e185f620\", \"timestamp\": \"2023-05-31T11:00:00.000000Z\", {EV}}}\n\
             {{\"eventid\": \"connection\", \"connection\": 9, \"connection_root\": 9, \"connection_type\": \"listen\", \"connection_protocol\": \"ftpdatalisten\", \"local_port\": 4000, \"remote_host\": \"\", \"timestamp\": \"2023-05-31T11:00:00.000000Z\"}}\n\
             {{\"eventid\": \"connection\", \"connection\": 10, \"connection_root\": 10, \"connection_type\": \"connect\", \"connection_transport\": \"udp\", \"connection_protocol\": \"SipSession\", \"local_port\": 5060, \"remote_host\": \"192.0.2.50\", \"timestamp\": \"2023-05-31T12:00:00.000000Z\"}}\n"
        );
        let (reports, stats) = read(&log);
        assert_eq!((stats.lines, stats.events, stats.lines_rejected, stats.sessions), (6, 5, 1, 4));
        assert_eq!(stats.problems[0].line, 3);
        let find = |v: &str| reports.iter().find(|r| r.indicator.value == v).unwrap_or_else(|| panic!("{v}"));
        let a = find("198.51.100.7");
        assert_eq!(a.tags, ["scanner", "mssql", "bruteforce"]);
        assert_eq!((a.port, a.protocol.as_deref(), a.sensor.as_deref()), (Some(1433), Some("tcp"), Some("pot1")));
        assert_eq!(a.extra["credentials"], json!([["sa", ""]]));
        assert!(a.observed_until > a.observed_at);
        let b = find("203.0.113.9");
        assert!(b.tags.contains(&"download".to_string()) && b.tags.contains(&"smb".to_string()), "{:?}", b.tags);
        assert_eq!(find("http://203.0.113.9/x.exe").indicator.itype, IType::Url);
        assert_eq!(find("414a3594e4a822cfb97a4326e185f620").tags, ["malware", "payload"]);
        assert!(find("192.0.2.50").tags.contains(&"udp-only".to_string()));
        // The listen connection gives nothing; the URL host is the attacker's address once more.
        assert_eq!(reports.len(), 6);
        // Keys are stable across reads.
        let (again, _) = read(&log);
        assert_eq!(reports.iter().map(|r| &r.idempotency_key).collect::<Vec<_>>(), again.iter().map(|r| &r.idempotency_key).collect::<Vec<_>>());
    }

    /// `../shared` beside the repository: required in CI, skipped with a message elsewhere.
    fn shared_dionaea_dir() -> Option<std::path::PathBuf> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dionaea");
        if dir.is_dir() {
            return Some(dir);
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {} is missing: the real Dionaea logs are required", dir.display());
        }
        eprintln!("skipping: {} not found (set CI=true to make this an error)", dir.display());
        None
    }

    /// The real logs, read by the source and counted a second way from generic JSON: events,
    /// connection groups, attacker sightings (groups with a remote address), downloads, logins.
    #[test]
    fn real_logs_match_an_independent_count() {
        let Some(dir) = shared_dionaea_dir() else { return };
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert!(!files.is_empty());
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            // Independent count.
            let (mut events, mut not_json) = (0u64, 0u64);
            let mut roots: std::collections::BTreeMap<i64, Option<String>> = Default::default();
            let (mut downloads, mut md5s, mut logins) = (0usize, 0usize, 0usize);
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
                let Ok(v) = serde_json::from_slice::<Value>(line) else {
                    not_json += 1;
                    continue;
                };
                events += 1;
                let root = v["connection_root"].as_i64().unwrap();
                let entry = roots.entry(root).or_default();
                let remote = v["remote_host"].as_str().filter(|r| !r.is_empty() && v["connection_type"] != "listen");
                if entry.is_none() {
                    *entry = remote.map(str::to_owned);
                }
                match v["eventid"].as_str().unwrap() {
                    "download" => {
                        downloads += 1;
                        md5s += usize::from(v["download_md5_hash"].as_str().is_some_and(|h| !h.is_empty()));
                    }
                    "login" => logins += 1,
                    _ => {}
                }
            }
            let with_remote = roots.values().filter(|r| r.is_some()).count();

            let mut src = new(ReadOptions::default());
            let mut reports = Vec::new();
            super::super::read(src.as_mut(), &bytes[..], "real", "dionaea", &mut |_| {}, &mut |r| reports.push(r)).unwrap();
            src.finish(&mut |r| reports.push(r));
            let stats = src.into_stats();
            let name = path.display();
            assert_eq!((stats.events, stats.lines_rejected), (events, not_json), "{name}: events");
            assert_eq!(stats.sessions as usize, roots.len(), "{name}: connection groups");
            let attackers: Vec<&Report> = reports.iter().filter(|r| r.extra.get("connection_root").is_some() && r.extra.get("events").is_some()).collect();
            assert_eq!(attackers.len(), with_remote, "{name}: attacker sightings");
            let payloads = reports.iter().filter(|r| r.indicator.itype == IType::Md5).count();
            assert_eq!(payloads, md5s, "{name}: payload hashes");
            let logged: usize = attackers.iter().map(|r| r.extra["credentials"].as_array().unwrap().len()).sum();
            assert_eq!(logged, logins, "{name}: logins");
            let dl: usize = attackers.iter().map(|r| r.extra["downloads"].as_array().unwrap().len()).sum();
            assert_eq!(dl, downloads, "{name}: downloads");
            assert!(stats.problems_by_kind.get(&ProblemKind::RejectedValue).is_none(), "{name}: {:?}", stats.problems);
            eprintln!("{name}: {events} events, {} groups, {with_remote} attackers, {downloads} downloads, {logins} logins", roots.len());
        }
    }
}
