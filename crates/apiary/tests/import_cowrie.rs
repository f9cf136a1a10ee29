//! `apiary import cowrie`: the four real logs offline, re-import, the summary, bad input.

mod common;
use apiary_store::Store;
use common::*;
use serde_json::Value;

fn summary(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("--json printed no JSON object ({e}):\n{out}"))
}

fn stats(data: &std::path::Path) -> apiary_store::Stats {
    let store = apiary_store::sqlite::SqliteStore::open(data).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(store.stats()).unwrap()
}

#[test]
fn real_logs_import_offline_and_reimport_adds_nothing() {
    let Some(files) = real_cowrie_logs() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut args = vec!["import", "cowrie", "--feed", "ops/cowrie", "--data", s(&data), "--json"];
    args.extend(files.iter().map(|f| s(f)));

    let first = summary(&args);
    for field in [
        "events", "sessions", "sightings", "indicators", "stored", "duplicates", "lines_rejected",
        "lines_invalid_utf8", "values_rejected", "problems", "problems_by_kind", "unknown_eventids",
        "seconds", "events_per_second",
    ] {
        assert!(first.get(field).is_some(), "summary has no {field}: {first}");
    }
    assert_eq!(first["mode"], "offline");
    assert_eq!(first["events"], 11_946);
    assert_eq!(first["lines"], 11_946);
    assert_eq!(first["sessions"], 260 + 323 + 234 + 1206);
    assert_eq!(first["lines_rejected"], 0);
    assert_eq!(first["values_rejected"], 0);
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["created_user"], true, "the owner is created when missing");
    assert_eq!(first["created_feed"], true);
    let sightings = first["sightings"].as_u64().unwrap();
    assert!(sightings >= 2023, "at least one per session: {sightings}");
    assert_eq!(first["stored"].as_u64().unwrap(), sightings);
    assert_eq!(first["duplicates"], 0);
    let after_first = stats(&data);
    assert_eq!(after_first.sightings as u64, sightings);
    assert_eq!(after_first.records as u64, first["indicators"].as_u64().unwrap());

    // Same files again: nothing counted twice.
    let second = summary(&args);
    assert_eq!(second["stored"], 0);
    assert_eq!(second["duplicates"].as_u64().unwrap(), sightings);
    assert_eq!(second["created_feed"], false);
    let after_second = stats(&data);
    assert_eq!(after_second.sightings, after_first.sightings);
    assert_eq!(after_second.records, after_first.records);
    assert_eq!(after_second.indicators, after_first.indicators);

    // One file on its own (a subset) adds nothing either.
    let third = summary(&["import", "cowrie", "--feed", "ops/cowrie", "--data", s(&data), "--json", s(&files[3])]);
    assert_eq!(third["stored"], 0);
    assert_eq!(stats(&data).sightings, after_first.sightings);
}

#[test]
fn real_logs_human_summary() {
    let Some(files) = real_cowrie_logs() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ok(&["import", "cowrie", "--feed", "ops/c", "--data", s(&data), s(&files[2])]);
    assert!(out.contains("imported 1 file(s) into ops/c offline"), "{out}");
    assert!(out.contains("created feed ops/c"), "{out}");
    assert!(out.lines().any(|l| l.contains("events read") && l.contains("1,341")), "{out}");
    assert!(out.lines().any(|l| l.contains("sessions") && l.contains("234")), "{out}");
}

/// Bad lines are reported with their line numbers; the run still succeeds and reads the rest.
#[test]
fn bad_lines_are_listed_and_the_rest_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("cowrie.json");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(br#"{"eventid":"cowrie.session.connect","src_ip":"203.0.113.50","src_port":1,"dst_port":22,"protocol":"ssh","session":"a1b2c3d4e5f6","sensor":"s1","timestamp":"2016-10-04T10:00:00.000000Z"}"#);
    bytes.push(b'\n');
    bytes.extend_from_slice(b"{\"eventid\":\"cowrie.command.input\",\"src_ip\":\"203.0.113.50\",\"session\":\"a1b2c3d4e5f6\",\"sensor\":\"s1\",\"input\":\"echo \xA1\xFF > /tmp/x\",\"timestamp\":\"2016-10-04T10:00:01Z\"}\n");
    bytes.extend_from_slice(b"<<< not json >>>\n");
    bytes.extend_from_slice(br#"{"eventid":"cowrie.session.connect","src_ip":"999.1.2.3","session":"bbbbbbbbbbbb","sensor":"s1","timestamp":"2016-10-04T10:00:02Z"}"#);
    bytes.push(b'\n');
    bytes.extend_from_slice(br#"{"eventid":"cowrie.session.closed","src_ip":"203.0.113.50","session":"a1b2c3d4e5f6","sensor":"s1","duration":1.5,"timestamp":"2016-10-04T10:00:03Z"}"#);
    bytes.push(b'\n');
    bytes.extend_from_slice(br#"{"eventid":"cowrie.session.connect","src_ip":"203.0.1"#);
    std::fs::write(&log, &bytes).unwrap();

    let o = apiary(&["import", "cowrie", "--feed", "ops/bad", "--data", s(&data), "--json", s(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sum: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(sum["events"], 4);
    assert_eq!(sum["lines_rejected"], 2);
    assert_eq!(sum["lines_invalid_utf8"], 1);
    assert_eq!(sum["values_rejected"], 1);
    assert_eq!(sum["stored"], 1, "{sum}");
    let problems: Vec<(u64, &str)> = sum["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["line"].as_u64().unwrap(), p["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        problems,
        vec![(2, "invalid_utf8"), (3, "not_json"), (6, "incomplete_line"), (4, "rejected_value")]
    );

    // The human summary names them too.
    let out = ok(&["import", "cowrie", "--feed", "ops/bad", "--data", s(&data), s(&log)]);
    assert!(out.contains("line 3 of"), "{out}");
    assert!(out.contains("not a JSON object"), "{out}");
    assert!(out.contains("999.1.2.3"), "{out}");
}

#[test]
fn runs_that_cannot_start_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let missing = tmp.path().join("missing.json");
    let o = apiary(&["import", "cowrie", "--feed", "ops/x", "--data", s(&data), s(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
    let f = tmp.path().join("empty.json");
    std::fs::write(&f, b"").unwrap();
    let o = apiary(&["import", "cowrie", "--feed", "ops/x", "--data", s(&data), "--hub", "http://127.0.0.1:9", s(&f)]);
    assert_eq!(o.status.code(), Some(2), "both --data and --hub");
    let o = apiary(&["import", "cowrie", "--feed", "no-slash", "--data", s(&data), s(&f)]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sensor_override_names_every_session() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("tpot.json");
    std::fs::write(
        &log,
        concat!(
            r#"{"eventid":"cowrie.session.connect","src_ip":"198.51.100.61","src_port":5,"dest_ip":"172.20.0.2","dest_port":22,"session":"cccccccccccc","protocol":"ssh","timestamp":"2022-01-01T00:00:00+0000","t-pot_hostname":"hive"}"#,
            "\n",
            r#"{"eventid":"cowrie.session.closed","src_ip":"198.51.100.61","session":"cccccccccccc","duration_ms":2500,"timestamp":"2022-01-01T00:00:02.5"}"#,
            "\n"
        ),
    )
    .unwrap();
    let sum = summary(&["import", "cowrie", "--feed", "ops/tpot", "--data", s(&data), "--sensor", "fra1", "--json", s(&log)]);
    assert_eq!(sum["stored"], 1);
    let store = apiary_store::sqlite::SqliteStore::open(&data).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sightings = rt.block_on(store.sightings_of("198.51.100.61", None, 10)).unwrap();
    assert_eq!(sightings.len(), 1);
    let sg = &sightings[0];
    assert_eq!(sg.sensor.as_deref(), Some("fra1"));
    assert_eq!(sg.portlist, vec![22]);
    assert_eq!(sg.protocol.as_deref(), Some("ssh"));
    assert_eq!(sg.tags, vec!["scanner"]);
    assert_eq!(sg.observed_at.to_rfc3339(), "2022-01-01T00:00:00+00:00");
    assert_eq!(sg.extra["duration"], 2.5);
    assert_eq!(sg.extra["fields"]["t-pot_hostname"], "hive");
}
