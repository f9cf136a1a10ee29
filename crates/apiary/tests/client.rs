//! Client commands against a running hub: publish, search, and import through the hub.

mod common;
use common::*;
use serde_json::Value;

#[test]
fn publish_search_and_import_through_a_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = user_with_token(&data, "alice", "read,write");
    ok(&["feed", "create", "alice/scanners", "--data", s(&data)]);
    let hub = Hub::start(&data);
    let h = hub.url.as_str();

    // Publish: arguments, then a file; one bad value is listed, the rest stored.
    let o = apiary(&["publish", "alice/scanners", "198.051.100.007", "not a value", "--tags", "scanner,ssh", "--hub", h, "--token", &token]);
    assert_eq!(o.status.code(), Some(1), "a rejected value makes the exit status 1: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("accepted 1"), "{out}");
    assert!(out.contains("rejected \"not a value\""), "{out}");
    let list = tmp.path().join("values.txt");
    std::fs::write(&list, "# a comment\n\nhxxp://bad[.]example/x\n203.0.113.9\n").unwrap();
    let reply: Value = serde_json::from_str(
        ok(&["publish", "alice/scanners", "--file", s(&list), "--json", "--hub", h, "--token", &token]).trim(),
    )
    .unwrap();
    assert_eq!(reply["accepted"], 2, "{reply}");

    // Search: JSON lines with native names; the value is normalised by the hub.
    let lines = ok(&["search", "198.51.100.7", "--json", "--hub", h, "--token", &token]);
    let recs: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 1, "{lines}");
    assert_eq!(recs[0]["feed"], "alice/scanners");
    assert_eq!(recs[0]["indicator"], "198.51.100.7");
    assert_eq!(recs[0]["itype"], "ipv4");
    assert_eq!(recs[0]["tags"], serde_json::json!(["scanner", "ssh"]));
    let table = ok(&["search", "http://bad.example/x", "--hub", h, "--token", &token]);
    assert!(table.lines().next().unwrap().starts_with("FEED"), "{table}");
    assert!(table.contains("alice/scanners") && table.contains("url"), "{table}");
    assert!(ok(&["search", "192.0.2.200", "--hub", h, "--token", &token]).contains("was not found"));

    // Environment variables instead of flags.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_apiary"))
        .args(["search", "203.0.113.9", "--json"])
        .env("APIARY_HUB", h)
        .env("APIARY_TOKEN", &token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);

    // A bad token is refused with the hub's reason.
    let o = apiary(&["publish", "alice/scanners", "192.0.2.1", "--hub", h, "--token", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));

    // Import through the hub into a feed that does not exist yet: created on the way.
    let Some(files) = real_cowrie_logs() else { return };
    let mut args = vec!["import", "cowrie", "--feed", "alice/honeypot", "--hub", h, "--token", &token, "--json"];
    args.extend(files.iter().map(|f| s(f)));
    let sum: Value = serde_json::from_str(ok(&args).trim()).unwrap();
    assert_eq!(sum["mode"], "hub");
    assert_eq!(sum["created_feed"], true);
    assert_eq!(sum["events"], 11_946);
    let sightings = sum["sightings"].as_u64().unwrap();
    assert_eq!(sum["stored"].as_u64().unwrap(), sightings, "{sum}");
    assert_eq!(sum["values_rejected"], 0, "{sum}");
    let again: Value = serde_json::from_str(ok(&args).trim()).unwrap();
    assert_eq!(again["stored"], 0);
    assert_eq!(again["duplicates"].as_u64().unwrap(), sightings);

    // The busiest attacker of sensor-d is found in the imported feed.
    let recs: Vec<Value> = ok(&["search", "62.28.222.221", "--json", "--feed", "alice/honeypot", "--hub", h, "--token", &token])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["portlist"], serde_json::json!([2222]));
    assert_eq!(recs[0]["protocol"], "ssh");
    assert!(recs[0]["firsttime"].as_str().unwrap().starts_with("2022-07-17"));
}
