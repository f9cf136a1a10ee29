//! The native API (docs/native-api.md) against a real SqliteStore.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use apiary_store::sqlite::SqliteStore;
use apiary_store::{Store, Visibility};
use common::{error_code, json, scopes, Hub};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn bulk_publish_stores_the_good_and_lists_the_rejected() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "bulk", Visibility::Public).await;
    let path = "/api/v1/feeds/alice/bulk/indicators";

    let body = json!([
        {"indicator": "203.0.113.10", "tags": "scanner", "portlist": 22},
        {"indicator": "300.1.2.3"},
        "evil.example.com",
        {"indicator": "hxxps://evil[.]example[.]com/payload.sh", "sensor": "pot-1", "campaign": "x"},
        {"tags": ["no value"]},
        {"indicator": "203.0.113.11", "portlist": "ssh"},
    ]);
    let (status, reply) = json(hub.req(Method::POST, path, Some(&alice)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["accepted"], 3);
    assert_eq!(reply["duplicates"], 0);
    let rejected: Vec<(u64, String)> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(rejected, vec![(1, "invalid_address".to_string()), (4, "missing_field".into()), (5, "invalid_port".into())]);
    assert_eq!(reply["rejected"][0]["input"], "300.1.2.3");
    let stored: Vec<&str> = reply["items"].as_array().unwrap().iter().map(|i| i["indicator"].as_str().unwrap()).collect();
    assert_eq!(stored, vec!["203.0.113.10", "evil.example.com", "https://evil.example.com/payload.sh"]);

    // The same again: nothing new but nothing refused → 200; all refused → 422 with the same shape.
    let again = json!([{"indicator": "203.0.113.10", "idempotency_key": "k1"}]);
    let (status, _) = json(hub.req(Method::POST, path, Some(&alice)).json(&again).send().await.unwrap()).await;
    assert_eq!(status, 201);
    let (status, reply) = json(hub.req(Method::POST, path, Some(&alice)).json(&again).send().await.unwrap()).await;
    assert_eq!((status, reply["duplicates"].as_u64()), (200, Some(1)), "{reply}");
    let (status, reply) = json(hub.req(Method::POST, path, Some(&alice)).json(&json!(["not a value!", {"x": 1}])).send().await.unwrap()).await;
    assert_eq!(status, 422);
    assert_eq!(reply["accepted"], 0);
    assert_eq!(reply["rejected"].as_array().unwrap().len(), 2);

    // JSON lines and text keep line numbers; CSV reads its `indicator` column.
    let nd = "{\"indicator\":\"203.0.113.20\"}\n\n{broken\n{\"indicator\":\"203.0.113.21\",\"tags\":\"a,b\"}\n";
    let (status, reply) = json(hub.req(Method::POST, path, Some(&alice)).header("Content-Type", "application/x-ndjson").body(nd).send().await.unwrap()).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["accepted"], 2);
    assert_eq!((reply["rejected"][0]["line"].as_u64(), reply["rejected"][0]["code"].as_str()), (Some(3), Some("invalid_json")));

    let text = "# exported list\n203.0.113.30\nnope nope\n";
    let (status, reply) = json(hub.req(Method::POST, path, Some(&alice)).header("Content-Type", "text/plain").body(text).send().await.unwrap()).await;
    assert_eq!((status, reply["accepted"].as_u64(), reply["rejected"][0]["line"].as_u64()), (201, Some(1), Some(3)), "{reply}");

    let csv = "indicator,tags,portlist\n203.0.113.40,\"scanner,telnet\",23\n";
    let (status, reply) = json(hub.req(Method::POST, path, Some(&alice)).header("Content-Type", "text/csv").body(csv).send().await.unwrap()).await;
    assert_eq!((status, reply["accepted"].as_u64()), (201, Some(1)), "{reply}");
    let (_, page) = json(hub.req(Method::GET, "/api/v1/indicators?q=203.0.113.40", None).send().await.unwrap()).await;
    assert_eq!(page["items"][0]["tags"], json!(["scanner", "telnet"]));
    assert_eq!(page["items"][0]["portlist"], json!([23]));

    // Unknown fields stay with the sighting; the value is stored normalised.
    let (_, detail) = json(hub.req(Method::GET, "/api/v1/indicators/https%3A%2F%2Fevil.example.com%2Fpayload.sh", None).send().await.unwrap()).await;
    assert_eq!(detail["itype"], "url");
    assert_eq!(detail["sightings"][0]["sensor"], "pot-1");
    assert_eq!(detail["sightings"][0]["extra"]["campaign"], "x");
}

#[tokio::test(flavor = "multi_thread")]
async fn cidr_and_domain_queries_and_filters() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "mix", Visibility::Public).await;
    let body = json!([
        {"indicator": "198.51.100.7", "tags": "scanner"},
        {"indicator": "198.51.100.200", "tags": "bruteforce"},
        {"indicator": "203.0.113.5", "tags": "scanner"},
        {"indicator": "example.com"},
        {"indicator": "login.example.com"},
        {"indicator": "example.org"},
    ]);
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/mix/indicators", Some(&alice)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201);

    let values = |page: &serde_json::Value| -> HashSet<String> {
        page["items"].as_array().unwrap().iter().map(|i| i["indicator"].as_str().unwrap().to_string()).collect()
    };
    for (query, want) in [
        ("within=198.51.100.0/24", vec!["198.51.100.7", "198.51.100.200"]),
        ("within=198.51.100.0/25", vec!["198.51.100.7"]),
        ("domain=example.com", vec!["example.com", "login.example.com"]),
        ("tags=scanner", vec!["198.51.100.7", "203.0.113.5"]),
        ("itype=fqdn&feed=alice/mix", vec!["example.com", "login.example.com", "example.org"]),
        ("q=198.051.100.007", vec!["198.51.100.7"]),
    ] {
        let (status, page) = json(hub.req(Method::GET, &format!("/api/v1/indicators?{query}"), None).send().await.unwrap()).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(values(&page), want.into_iter().map(String::from).collect(), "{query}");
    }
    for bad in ["within=example.com", "itype=colour", "since=yesterday-ish", "limit=0", "q=", "feed=nofeed"] {
        let (status, body) = json(hub.req(Method::GET, &format!("/api/v1/indicators?{bad}"), None).send().await.unwrap()).await;
        if bad == "q=" {
            assert_eq!(status, 200, "an empty filter is no filter");
            continue;
        }
        assert_eq!(status, 422, "{bad}: {body}");
        error_code(&body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_walks_every_record_once() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "many", Visibility::Public).await;
    let body: Vec<_> = (1..=25).map(|i| json!({"indicator": format!("203.0.113.{i}")})).collect();
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/many/indicators", Some(&alice)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201);

    let mut seen = HashSet::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "/api/v1/feeds/alice/many/indicators?limit=10".to_string();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let (status, page) = json(hub.req(Method::GET, &url, None).send().await.unwrap()).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        pages.push(items.len());
        for i in items {
            assert!(seen.insert(i["indicator"].as_str().unwrap().to_string()), "seen twice: {i}");
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages.len() < 5, "pagination does not end");
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(pages, vec![10, 10, 5]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn private_feeds_are_invisible_to_others() {
    let hub = Hub::start().await;
    let bob = hub.user("bob", "read,write").await;
    let eve = hub.user("eve", "read,write").await;
    hub.feed("bob", "secret", Visibility::Private).await;
    let body = json!({"indicator": "203.0.113.66", "tlp": "red"});
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/bob/secret/indicators", Some(&bob)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201);

    for (who, token) in [("anonymous", None), ("eve", Some(eve.as_str()))] {
        for path in [
            "/api/v1/feeds/bob/secret",
            "/api/v1/feeds/bob/secret/indicators",
            "/api/v1/indicators/203.0.113.66",
            "/api/v1/indicators?feed=bob/secret",
        ] {
            let (status, body) = json(hub.req(Method::GET, path, token).send().await.unwrap()).await;
            assert_eq!(status, 404, "{who} {path}: {body}");
        }
        let (_, page) = json(hub.req(Method::GET, "/api/v1/indicators?q=203.0.113.66", token).send().await.unwrap()).await;
        assert_eq!(page["items"], json!([]), "{who}");
        let (_, feeds) = json(hub.req(Method::GET, "/api/v1/feeds", token).send().await.unwrap()).await;
        assert!(!feeds.to_string().contains("secret"), "{who} sees the feed in the list");
        // Writing to it is a 404 too: its existence is not revealed.
        if let Some(t) = token {
            let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/bob/secret/indicators", Some(t)).json(&body).send().await.unwrap()).await;
            assert_eq!(status, 404, "{who}");
        }
        let resp = hub.client.get(format!("{}/api/users/bob/feeds/secret", hub.base));
        let resp = match token { Some(t) => resp.header("Authorization", format!("Token token={t}")), None => resp };
        assert_eq!(resp.send().await.unwrap().status(), 404, "{who} via CSIRTG");
    }

    // The owner reads it, with the TLP it was published with; an admin reads the feed but not
    // its RED values (docs/exports.md rule 5: admin rights are no exception).
    let (status, detail) = json(hub.req(Method::GET, "/api/v1/indicators/203.0.113.66", Some(&bob)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(detail["records"][0]["tlp"], "red");
    let (status, _) = json(hub.req(Method::GET, "/api/v1/feeds/bob/secret", Some(&hub.admin)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let (status, _) = json(hub.req(Method::GET, "/api/v1/indicators/203.0.113.66", Some(&hub.admin)).send().await.unwrap()).await;
    assert_eq!(status, 404);
    // A granted user reads it.
    hub.store.grant_feed_access("bob", "secret", "eve").await.unwrap();
    let (status, _) = json(hub.req(Method::GET, "/api/v1/feeds/bob/secret", Some(&eve)).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_scopes_and_ownership() {
    let hub = Hub::start().await;
    let reader = hub.user("alice", "read").await;
    let writer = hub.user("alice", "read,write").await;
    let other = hub.user("mallory", "read,write").await;
    hub.feed("alice", "pub", Visibility::Public).await;
    let path = "/api/v1/feeds/alice/pub/indicators";
    let body = json!({"indicator": "203.0.113.77"});

    let cases = [(None, 401, "unauthorized"), (Some("garbage"), 401, "unauthorized"), (Some(reader.as_str()), 403, "forbidden"), (Some(other.as_str()), 403, "forbidden")];
    for (token, want, code) in cases {
        let (status, reply) = json(hub.req(Method::POST, path, token).json(&body).send().await.unwrap()).await;
        assert_eq!((status, error_code(&reply)), (want, code.to_string()), "{token:?}");
    }
    let (status, _) = json(hub.req(Method::POST, path, Some(&writer)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201);
    let (status, _) = json(hub.req(Method::POST, path, Some(&hub.admin)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201, "admins may write anywhere");

    // Users and feeds for others are admin business.
    let (status, _) = json(hub.req(Method::GET, "/api/v1/users", Some(&writer)).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds", Some(&writer)).json(&json!({"name": "x", "owner": "mallory"})).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, feed) = json(hub.req(Method::POST, "/api/v1/feeds", Some(&writer)).json(&json!({"name": "mine", "visibility": "private"})).send().await.unwrap()).await;
    assert_eq!((status, feed["feed"].as_str(), feed["visibility"].as_str()), (201, Some("alice/mine"), Some("private")));
    let (status, feed) = json(hub.req(Method::PATCH, "/api/v1/feeds/alice/mine", Some(&writer)).json(&json!({"visibility": "public"})).send().await.unwrap()).await;
    assert_eq!((status, feed["visibility"].as_str()), (200, Some("public")));
    let (status, body) = json(hub.req(Method::POST, "/api/v1/feeds", Some(&writer)).body("{\"name\": 3").send().await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_json".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_another_process_work_at_once_and_revocation_counts() {
    let hub = Hub::start().await;
    hub.store.create_user("carol", false).await.unwrap();
    // A second handle on the same data directory, as the admin CLI would open it.
    let cli = SqliteStore::open(hub.dir.path()).unwrap();
    let (info, token) = cli.create_token("carol", scopes("read,write"), None, Some("from the CLI")).await.unwrap();
    let (status, feeds) = json(hub.req(Method::GET, "/api/v1/tokens", Some(&token)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{feeds}");
    assert_eq!(feeds["items"][0]["label"], "from the CLI");

    // Tokens over the API: shown once, scopes never above the creator's.
    let (status, made) = json(hub.req(Method::POST, "/api/v1/tokens", Some(&token)).json(&json!({"scopes": "read", "label": "ro"})).send().await.unwrap()).await;
    assert_eq!(status, 201, "{made}");
    assert!(made["token"].as_str().is_some_and(|t| !t.is_empty()));
    let (status, _) = json(hub.req(Method::POST, "/api/v1/tokens", Some(&token)).json(&json!({"scopes": "read,admin"})).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, _) = json(hub.req(Method::POST, "/api/v1/tokens", Some(&token)).json(&json!({"scopes": "root"})).send().await.unwrap()).await;
    assert_eq!(status, 422);

    cli.revoke_token("carol", info.id).await.unwrap();
    let (status, _) = json(hub.req(Method::GET, "/api/v1/tokens", Some(&token)).send().await.unwrap()).await;
    assert_eq!(status, 401, "a revoked token stops working at once");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_openapi() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "f", Visibility::Public).await;
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/f/indicators", Some(&alice)).json(&json!(["203.0.113.1", "203.0.113.2"])).send().await.unwrap()).await;
    assert_eq!(status, 201);
    for path in ["/health", "/api/v1/health", "//api/v1/health"] {
        let (status, body) = json(hub.req(Method::GET, path, None).send().await.unwrap()).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{path}");
    }
    let (_, body) = json(hub.req(Method::GET, "/health?stats=true", None).send().await.unwrap()).await;
    assert_eq!(body["stats"]["sightings"], 2, "{body}");
    let metrics = hub.req(Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("apiary_http_requests_total{route=\"/api/v1/feeds/{owner}/{feed}/indicators\",method=\"POST\",status=\"201\"} 1"), "{metrics}");
    assert!(metrics.contains("apiary_sightings_appended_total 2"), "{metrics}");
    assert!(metrics.contains("apiary_store_busy_rejections_total 0"), "{metrics}");
    let (status, doc) = json(hub.req(Method::GET, "/api/v1/openapi.json", None).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/indicators"].is_object());
    let _ = hub.store.stats().await.unwrap();
}

/// Every list view carries the hub's own score of each value, the one the detail view shows:
/// null before the scoring job has scored it, then its confidence and tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_views_carry_the_hubs_score() {
    use apiary_server::trust::{self, TrustOptions};
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    hub.feed("alice", "more", Visibility::Public).await;
    let values = ["85.201.11.203", "evil.example.com"];
    for feed in ["alice/pots", "alice/more"] {
        let body = json!([
            {"indicator": values[0], "tags": ["bruteforce", "login"], "sensor": "pot-1", "confidence": 7},
            {"indicator": values[1], "sensor": "pot-1"},
        ]);
        let (status, reply) = json(hub.req(Method::POST, &format!("/api/v1/feeds/{feed}/indicators"), Some(&alice)).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{reply}");
    }
    let lists = [
        format!("/api/v1/indicators?q={}", values[0]),
        "/api/v1/indicators?feed=alice/pots".to_string(),
        "/api/v1/feeds/alice/more/indicators".to_string(),
        "/api/v1/indicators".to_string(),
    ];
    // Not scored yet: null, and the publisher's claim stays apart.
    let (_, page) = json(hub.req(Method::GET, &lists[0], Some(&alice)).send().await.unwrap()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    for item in page["items"].as_array().unwrap() {
        assert!(item["confidence"].is_null() && item["tier"].is_null(), "{item}");
        assert_eq!(item["claimed_confidence"], 7.0, "{item}");
    }

    let job = trust::start(hub.store.clone(), TrustOptions { poll: Duration::from_millis(200), ..TrustOptions::default() });
    let mut detail = std::collections::HashMap::new();
    for value in values {
        let start = std::time::Instant::now();
        loop {
            let (status, d) = json(hub.req(Method::GET, &format!("/api/v1/indicators/{value}"), Some(&alice)).send().await.unwrap()).await;
            assert_eq!(status, 200, "{d}");
            if d["confidence"].is_u64() {
                for r in d["records"].as_array().unwrap() {
                    assert_eq!((&r["confidence"], &r["tier"]), (&d["confidence"], &d["tier"]), "detail records: {d}");
                }
                detail.insert(value, (d["confidence"].clone(), d["tier"].clone()));
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{value} not scored: {d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for path in &lists {
        let (status, page) = json(hub.req(Method::GET, path, Some(&alice)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{path}");
        for item in items {
            let want = &detail[item["indicator"].as_str().unwrap()];
            assert_eq!((&item["confidence"], &item["tier"]), (&want.0, &want.1), "{path}: {item}");
            assert!(["OBSERVE", "SUSPICIOUS", "BLOCK"].contains(&item["tier"].as_str().unwrap()), "{item}");
        }
    }
    // The subscribed feeds' records too.
    let (status, _) = json(hub.req(Method::POST, "/api/v1/subscriptions", Some(&alice)).json(&json!({"feed": "alice/pots"})).send().await.unwrap()).await;
    assert!((200..300).contains(&status), "{status}");
    let (_, page) = json(hub.req(Method::GET, "/api/v1/subscriptions/indicators", Some(&alice)).send().await.unwrap()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    for item in page["items"].as_array().unwrap() {
        assert_eq!(item["confidence"], detail[item["indicator"].as_str().unwrap()].0, "{item}");
    }
    job.shutdown().await;
}
