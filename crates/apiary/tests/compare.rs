//! The feed comparison on the real Cowrie logs: the four files of ../shared/data/cowrie imported
//! into four feeds (`apiary import cowrie`, one feed each), compared offline (`apiary feed compare
//! --data`) and by a running hub's job (`GET /api/v1/compare`, `apiary feed compare --hub`), checked
//! against a count made a second way, straight from the raw files.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The IPv4 addresses of one raw Cowrie log, read without Apiary: every event's `src_ip` (the
/// attackers), and the hosts of download URLs written as IPv4 literals (where payloads came from).
fn raw_ipv4(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let is_ipv4 = |h: &str| h.split('.').count() == 4 && h.split('.').all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    let mut out = BTreeSet::new();
    for v in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if let Some(ip) = v["src_ip"].as_str() {
            out.insert(ip.to_owned());
        }
        if let Some(url) = v["url"].as_str() {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            let host = rest.split(['/', ':', '?', '#']).next().unwrap_or("");
            if is_ipv4(host) {
                out.insert(host.to_owned());
            }
        }
    }
    out
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `sensor-a` from `.../sensor-a.2017-11-04.json`.
fn sensor_of(file: &Path) -> String {
    file.file_name().unwrap().to_str().unwrap().split('.').next().unwrap().to_owned()
}

#[test]
fn real_logs_four_feeds_overlap_as_the_raw_files_say_offline_and_through_a_hub() {
    let Some(files) = real_cowrie_logs() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = s(&data);
    ok(&["user", "add", "boss", "--admin", "--data", d]);
    let admin = ok(&["token", "create", "--user", "boss", "--scopes", "read,write,admin", "--data", d]).lines().last().unwrap().trim().to_owned();
    // sensor-d's feed is private: the hub must not show it to others.
    ok(&["user", "add", "sensor-d", "--data", d]);
    ok(&["feed", "create", "sensor-d/cowrie", "--private", "--data", d]);
    let mut raw: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let sensor = sensor_of(f);
        let feed = format!("{sensor}/cowrie");
        ok(&["import", "cowrie", "--feed", &feed, "--data", d, "--json", s(f)]);
        raw.insert(feed, raw_ipv4(f));
    }
    let names: Vec<&String> = raw.keys().collect();

    // Offline, addresses only: volumes, exclusive counts and every pairwise intersection.
    let rows = json_lines(&ok(&["feed", "compare", "--data", d, "--type", "ipv4", "--json"]));
    assert_eq!(rows.len(), 4, "{rows:?}");
    let matrix: Value =
        serde_json::from_str(ok(&["feed", "compare", "--data", d, "--type", "ipv4", "--overlap", "--json"]).trim()).unwrap();
    let feeds: Vec<String> = matrix["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    let mut shared_pairs = 0;
    for (a, fa) in feeds.iter().enumerate() {
        for (b, fb) in feeds.iter().enumerate() {
            let expected = raw[fa].intersection(&raw[fb]).count() as u64;
            assert_eq!(matrix["intersect"][a][b].as_u64(), Some(expected), "|{fa} ∩ {fb}|");
            if a < b && expected > 0 {
                shared_pairs += 1;
            }
        }
    }
    assert!(shared_pairs > 0, "the real logs share attackers between sensors");
    for r in &rows {
        let feed = r["feed"].as_str().unwrap();
        let mine = &raw[feed];
        let others: BTreeSet<&String> = names.iter().filter(|n| n.as_str() != feed).flat_map(|n| raw[*n].iter()).collect();
        let exclusive = mine.iter().filter(|ip| !others.contains(ip)).count() as u64;
        assert_eq!(r["volume"].as_u64(), Some(mine.len() as u64), "{feed} volume");
        assert_eq!(r["exclusive"].as_u64(), Some(exclusive), "{feed} exclusive");
        // No seed among the four (their owners are not admins): nothing trusted to compare with.
        assert_eq!(r["trusted"], false);
        assert_eq!(r["trusted_overlap"], 0);
    }

    // The table, all types: aligned, one line per feed, every feed at least its addresses.
    let table = ok(&["feed", "compare", "--data", d]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("FEED") && lines[1].ends_with("LIFT"), "{table}");
    assert_eq!(lines.len(), 2 + 4, "{table}");
    let lift_col = lines[1].len();
    assert!(
        lines[2..].iter().all(|l| l.len() == lift_col),
        "right-aligned columns end together:\n{table}"
    );

    // Seed sensor-a (an admin names it): the others' latency and recall are measured against it.
    let tiers_exist = apiary(&["source", "tier", "sensor-a/cowrie", "seed", "--data", d]).status.success();

    // Through a hub: its job computes the comparison soon after start; readers see their feeds.
    let hub = Hub::start(&data);
    let http = reqwest::blocking::Client::new();
    let get = |path: &str, token: Option<&str>| -> Value {
        let mut r = http.get(format!("{}{path}", hub.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = get("/api/v1/compare", Some(&admin));
        if body["pending"] != true {
            break body;
        }
        assert!(Instant::now() < deadline, "the hub did not compare its feeds within 60 s");
        std::thread::sleep(Duration::from_millis(300));
    };
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "an admin reads every feed: {body}");
    if tiers_exist {
        let a = items.iter().find(|r| r["feed"] == "sensor-a/cowrie").unwrap();
        assert_eq!(a["trusted"], true, "{body}");
        for r in items.iter().filter(|r| r["feed"] != "sensor-a/cowrie") {
            let feed = r["feed"].as_str().unwrap();
            // Not only addresses here: the hub compares every type, so at least the shared addresses.
            let shared = raw[feed].intersection(&raw["sensor-a/cowrie"]).count() as u64;
            assert!(r["trusted_overlap"].as_u64().unwrap() >= shared, "{feed}: {r}");
        }
    }
    let anonymous = get("/api/v1/compare", None);
    let seen: Vec<&str> = anonymous["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["feed"].as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), 3, "{anonymous}");
    assert!(!seen.contains(&"sensor-d/cowrie"), "a private feed stays private");
    let m = get("/api/v1/compare/overlap", None);
    assert_eq!(m["feeds"].as_array().unwrap().len(), 3);
    assert!(m["intersect"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row.as_array().unwrap().len() == 3));
    assert!(!m.to_string().contains("sensor-d"), "{m}");

    // The CLI against the hub prints the same rows.
    let out = ok(&["feed", "compare", "--hub", &hub.url, "--token", &admin, "--json"]);
    let from_hub = json_lines(&out);
    assert_eq!(from_hub.len(), 4);
    assert_eq!(from_hub, items.to_vec());
}
