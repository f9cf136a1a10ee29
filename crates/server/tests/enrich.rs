//! Network enrichment and network filters end to end on a real hub: an ip2asn table generated
//! here (never a real one), the CSIRTG `asn`/`asn_desc`/`cc` fields, the native views, streamed
//! events, the stream and webhook filters `cidr=` and `asn=`, and reloading the table.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apiary_server::enrich::AsnDb;
use apiary_server::{app, AppState, Config};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, Scopes, Store, Visibility};
use serde_json::{json, Value};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

/// The test table: documentation ranges with made-up private AS numbers, and filler ranges
/// so the search runs over more than a handful. Returns the number of routed ranges written.
fn write_table(path: &Path, provider_a_name: &str) -> usize {
    let mut lines = vec![
        format!("198.51.100.0\t198.51.100.255\t64501\tNL\t{provider_a_name}"),
        "203.0.113.0\t203.0.113.127\t64502\tDE\tEXAMPLE-B Backbone".to_string(),
        format!("203.0.113.128\t203.0.113.255\t64501\tNL\t{provider_a_name}"),
        "192.0.2.0\t192.0.2.255\t0\tNone\tNot routed".to_string(),
        format!("2001:db8::\t2001:db8:7fff:ffff:ffff:ffff:ffff:ffff\t64501\tNL\t{provider_a_name}"),
        "2001:db8:8000::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64503\tNone\tEXAMPLE-V6".to_string(),
    ];
    // Filler: 11.0.0.0 upwards in /20 steps, 2,000 ranges over 50 AS numbers.
    for i in 0..2000u32 {
        let start = (11u32 << 24) + (i << 12);
        let end = start + (1 << 12) - 1;
        let ip = |n: u32| std::net::Ipv4Addr::from(n).to_string();
        lines.push(format!("{}\t{}\t{}\tUS\tFILLER-{}", ip(start), ip(end), 65000 + i % 50, i % 50));
    }
    let mut f = std::fs::File::create(path).unwrap();
    for l in &lines {
        writeln!(f, "{l}").unwrap();
    }
    lines.len() - 1
}

struct Hub {
    base: String,
    admin: String,
    http: reqwest::Client,
    db: Arc<AsnDb>,
    table: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("ip2asn-combined.tsv");
    let routed = write_table(&table, "EXAMPLE-A Provider");
    let (db, reports) = AsnDb::open(vec![table.clone()]).unwrap();
    assert_eq!((reports[0].ranges, reports[0].bad_lines), (routed, 0));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("data")).unwrap());
    store.create_user("admin", true).await.unwrap();
    let (_, admin) = store.create_token("admin", Scopes { read: true, write: true, admin: true }, None, None).await.unwrap();
    store.create_user("alice", false).await.unwrap();
    store.create_feed(NewFeed { owner: "alice".into(), name: "pots".into(), visibility: Visibility::Public, ..Default::default() }).await.unwrap();
    let mut config = Config { asn: db.clone(), ..Config::default() };
    config.streams.heartbeat = Duration::from_millis(500);
    config.streams.webhooks.reconcile = Duration::from_millis(200);
    config.streams.webhooks.linger = Duration::from_millis(50);
    let state = AppState::new(config, store);
    state.streams.start(&state).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(state);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Hub { base: format!("http://{addr}"), admin, http: reqwest::Client::new(), db, table, _dir: dir }
}

impl Hub {
    async fn publish(&self, values: &[&str]) {
        let items: Vec<Value> = values.iter().map(|v| json!({"indicator": v, "tags": ["scanner"]})).collect();
        let resp = self.http.post(format!("{}/api/v1/feeds/alice/pots/indicators", self.base)).bearer_auth(&self.admin).json(&items).send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.admin).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    async fn csirtg(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/api{path}", self.base))
            .header("Accept", "application/vnd.csirtg.v1")
            .header("Authorization", format!("Token token={}", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }
}

/// CSIRTG views: `asn_desc` and `cc` are strings, empty when unknown.
fn network(v: &Value) -> (Value, String, String) {
    (v["asn"].clone(), v["asn_desc"].as_str().unwrap().to_string(), v["cc"].as_str().unwrap().to_string())
}

/// Native views: each field null when unknown.
fn native_network(v: &Value) -> (Value, Value, Value) {
    (v["asn"].clone(), v["asn_desc"].clone(), v["cc"].clone())
}

fn or_null(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        json!(s)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_carry_asn_name_and_country_from_the_table() {
    let h = hub().await;
    h.publish(&["198.51.100.7", "203.0.113.5", "2001:db8:8000::9", "192.0.2.1", "http://203.0.113.200:8080/x.sh", "evil.example", "11.0.16.1"]).await;

    let want: [(&str, Value, &str, &str); 7] = [
        ("198.51.100.7", json!(64501), "EXAMPLE-A Provider", "NL"),
        ("203.0.113.5", json!(64502), "EXAMPLE-B Backbone", "DE"),
        ("2001:db8:8000::9", json!(64503), "EXAMPLE-V6", ""),
        ("192.0.2.1", Value::Null, "", ""),
        ("http://203.0.113.200:8080/x.sh", json!(64501), "EXAMPLE-A Provider", "NL"),
        ("evil.example", Value::Null, "", ""),
        ("11.0.16.1", json!(65001), "FILLER-1", "US"),
    ];
    // CSIRTG feed show (what the csirtg CLI and its users read).
    let feed = h.csirtg("/users/alice/feeds/pots?limit=100").await;
    let items = feed["indicators"].as_array().unwrap();
    for (value, asn, desc, cc) in &want {
        let item = items.iter().find(|i| i["indicator"] == *value).unwrap_or_else(|| panic!("{value} in {feed}"));
        assert_eq!(network(item), (asn.clone(), desc.to_string(), cc.to_string()), "csirtg {value}");
    }
    // CSIRTG search, native query, native detail (records and sightings).
    let found = h.csirtg("/search?q=198.51.100.7").await;
    assert_eq!(network(&found[0]).0, json!(64501));
    let page = h.get("/api/v1/indicators?feed=alice/pots&limit=100").await;
    for (value, asn, desc, cc) in &want {
        let item = page["items"].as_array().unwrap().iter().find(|i| i["indicator"] == *value).unwrap();
        assert_eq!(native_network(item), (asn.clone(), or_null(desc), or_null(cc)), "native {value}");
    }
    let detail = h.get("/api/v1/indicators/2001:db8:8000::9").await;
    assert_eq!(native_network(&detail["records"][0]), (json!(64503), json!("EXAMPLE-V6"), Value::Null));
    assert_eq!(native_network(&detail["sightings"][0]), (json!(64503), json!("EXAMPLE-V6"), Value::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_table_applies_to_what_is_already_stored() {
    let h = hub().await;
    h.publish(&["198.51.100.7"]).await;
    let before = h.get("/api/v1/indicators?q=198.51.100.7").await;
    assert_eq!(before["items"][0]["asn_desc"], "EXAMPLE-A Provider");
    write_table(&h.table, "EXAMPLE-A Renamed");
    h.db.reload().unwrap();
    let after = h.get("/api/v1/indicators?q=198.51.100.7").await;
    assert_eq!(after["items"][0]["asn_desc"], "EXAMPLE-A Renamed");
    // A broken file leaves the old table in place.
    std::fs::write(&h.table, "garbage\n").unwrap();
    assert!(h.db.reload().is_err());
    let kept = h.get("/api/v1/indicators?q=198.51.100.7").await;
    assert_eq!(kept["items"][0]["asn_desc"], "EXAMPLE-A Renamed");
}

/// The `sighting` events of an SSE stream, read until `last` arrives.
async fn stream_until(resp: reqwest::Response, last: &str) -> Vec<Value> {
    let mut resp = resp;
    let mut buf = String::new();
    let mut out: Vec<Value> = Vec::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if !block.lines().any(|l| l == "event: sighting") {
                continue;
            }
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            let v: Value = serde_json::from_str(&data).unwrap();
            let done = v["indicator"] == last;
            out.push(v);
            if done {
                return out;
            }
        }
        let chunk = timeout(WAIT, resp.chunk()).await.expect("an event in time").unwrap().expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

fn indicators(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["indicator"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_deliver_only_addresses_in_the_asked_networks() {
    let h = hub().await;
    let open = |q: &'static str| {
        let req = h.http.get(format!("{}/api/v1/stream?{q}", h.base)).bearer_auth(&h.admin);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200, "{q}");
            resp
        }
    };
    let by_cidr = open("cidr=198.51.100.0/24,2001:db8::/33").await;
    let by_asn = open("asn=AS64501").await;
    let by_both = open("asn=64502,64503&cidr=203.0.113.0/25").await;
    let everything = open("itype=ipv4,ipv6,url,fqdn").await;
    let sent = [
        "198.51.100.7",                    // A, in the cidr
        "203.0.113.5",                     // B
        "203.0.113.200",                   // A (second range), not in the cidr
        "2001:db8::5",                     // A v6, in the cidr
        "2001:db8:8000::9",                // AS64503
        "192.0.2.1",                       // not routed
        "http://198.51.100.9/bins/x86",    // a URL whose host is in A
        "http://evil.example/bins/x86",    // a URL with a name: never passes a network filter
        "evil.example",                    // a domain: never
        "198.51.100.0/28",                 // a CIDR inside the cidr; no single AS
        "11.0.0.1",                        // filler
        "2001:db8::ffff",                  // last: A v6, in the cidr
    ];
    h.publish(&sent).await;
    let last = "2001:db8::ffff";
    assert_eq!(
        indicators(&stream_until(by_cidr, last).await),
        ["198.51.100.7", "2001:db8::5", "http://198.51.100.9/bins/x86", "198.51.100.0/28", last]
    );
    let asn_events = stream_until(by_asn, last).await;
    assert_eq!(indicators(&asn_events), ["198.51.100.7", "203.0.113.200", "2001:db8::5", "http://198.51.100.9/bins/x86", last]);
    assert!(asn_events.iter().all(|e| e["asn"] == 64501 && e["cc"] == "NL"), "streamed events carry the network fields");
    // Both filters: the cidr and the AS list must each match.
    h.publish(&["203.0.113.6"]).await;
    assert_eq!(indicators(&stream_until(by_both, "203.0.113.6").await), ["203.0.113.5", "203.0.113.6"]);
    let all = stream_until(everything, last).await;
    assert_eq!(all.len(), sent.len(), "unfiltered streams see everything");
    let domain = all.iter().find(|e| e["indicator"] == "evil.example").unwrap();
    assert_eq!((domain["asn"].clone(), domain.get("cc")), (Value::Null, None), "no network fields without an address");

    // Refusals name the parameter.
    for q in ["asn=ASX", "cidr=evil.example", "asn=64501,nope"] {
        let r = h.http.get(format!("{}/api/v1/stream?{q}", h.base)).bearer_auth(&h.admin).send().await.unwrap();
        assert_eq!(r.status(), 422, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_filtered_by_asn_push_only_that_network() {
    let h = hub().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(100);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice::<Value>(&body).unwrap()).await;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let r = h
        .http
        .post(format!("{}/api/v1/webhooks", h.base))
        .bearer_auth(&h.admin)
        .json(&json!({"url": format!("http://{addr}/hook"), "filter": {"asn": "64502", "cidr": "203.0.113.0/24"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    h.publish(&["198.51.100.7", "203.0.113.5", "203.0.113.200", "2001:db8::5", "203.0.113.9"]).await;
    let mut got: Vec<Value> = Vec::new();
    while got.len() < 2 {
        let body = timeout(WAIT, rx.recv()).await.expect("a delivery in time").unwrap();
        got.extend(body["events"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(indicators(&got), ["203.0.113.5", "203.0.113.9"]);
    assert!(got.iter().all(|e| e["asn"] == 64502 && e["asn_desc"] == "EXAMPLE-B Backbone"));
    assert!(timeout(Duration::from_millis(700), rx.recv()).await.is_err(), "nothing else delivered");
}

#[tokio::test]
async fn without_a_table_the_asn_filter_is_refused_and_fields_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let state = AppState::new(Config::default(), store);
    let p = apiary_server::streams::filter::FilterParams { asn: Some("64501".into()), ..Default::default() };
    let e = apiary_server::streams::filter::StreamFilter::parse(&p, &state).unwrap_err();
    assert!(format!("{e:?}").contains("--asn-db"), "{e:?}");
}
