//! Bad input found by breaking the CLI on purpose. Values from files, feeds and hubs are
//! untrusted: the CLI must never copy their control characters (terminal escape sequences, BEL,
//! NUL, newlines) raw to the terminal.

mod common;
use common::*;

/// ESC (CSI clear screen, OSC window title), BEL and NUL, as a hostile feed file would hold them.
const HOSTILE: &str = "x\u{1b}[2J\u{1b}]0;pwned\u{7}\u{0}y.example";

fn assert_no_control(out: &str, what: &str) {
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "{what} printed control characters raw:\n{}",
        out.escape_debug()
    );
}

#[test]
fn import_feed_problems_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.txt");
    std::fs::write(&file, format!("198.51.100.31\n{HOSTILE}\n198.51.100.32\n")).unwrap();
    let data = dir.path().join("data");
    let o = apiary(&["import", "feed", "--feed", "ops/hostile", "--data", s(&data), s(&file)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("\\u{1b}[2J"), "the problem line shows the value, escaped:\n{out}");
    assert_no_control(&out, "import feed");
    assert_no_control(&stderr(&o), "import feed (stderr)");
}

#[test]
fn import_cowrie_problems_escape_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cowrie.json");
    let bad = serde_json::json!({"eventid": "cowrie.session.connect", "src_ip": HOSTILE, "session": "s1",
        "timestamp": "2026-12-01T10:00:00Z"});
    let good = serde_json::json!({"eventid": "cowrie.session.connect", "src_ip": "198.51.100.33", "session": "s2",
        "timestamp": "2026-12-01T10:00:01Z"});
    std::fs::write(&file, format!("{bad}\n{good}\n")).unwrap();
    let data = dir.path().join("data");
    let o = apiary(&["import", "cowrie", "--feed", "ops/cowrie", "--data", s(&data), s(&file)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let stored = out.lines().find_map(|l| l.trim().strip_prefix("stored")).map(str::trim);
    assert_eq!(stored, Some("1"), "the good session is kept:\n{out}");
    assert!(out.contains("\\u{1b}"), "the refused value is shown, escaped:\n{out}");
    assert_no_control(&out, "import cowrie");
}

#[test]
fn parse_messages_escape_control_characters() {
    // An argument cannot hold a NUL; the rest of the hostile value can.
    let o = apiary(&["parse", &HOSTILE.replace('\0', "")]);
    assert_eq!(o.status.code(), Some(1));
    assert_no_control(&stdout(&o), "parse");
}

#[test]
fn search_table_escapes_what_a_publisher_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = user_with_token(&data, "alice", "read,write");
    ok(&["feed", "create", "alice/hp", "--data", s(&data)]);
    let hub = Hub::start(&data);
    let body = serde_json::json!({"indicator": "198.51.100.34", "tags": ["scanner", "\u{1b}]0;pwned\u{7}"]});
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/feeds/alice/hp/indicators", hub.url))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let out = ok(&["search", "198.51.100.34", "--hub", &hub.url]);
    assert!(out.contains("198.51.100.34") && out.contains("scanner"), "{out}");
    assert_no_control(&out, "search");
}

/// `--set` that ipset cannot use is an error, not a silent switch to the default set `apiary`.
#[test]
fn export_refuses_an_unusable_ipset_set_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&["user", "add", "alice", "--data", s(&data)]);
    ok(&["feed", "create", "alice/hp", "--data", s(&data)]);
    let o = apiary(&["export", "alice/hp", "--format", "ipset", "--set", "bad name!", "--data", s(&data)]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("`set`"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("apiary-v4"), "{}", stdout(&o));
    let out = ok(&["export", "alice/hp", "--format", "ipset", "--set", "scanners", "--data", s(&data)]);
    assert!(out.contains("create scanners-v4 hash:net"), "{out}");
}
