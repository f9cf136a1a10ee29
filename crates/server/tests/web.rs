//! The web pages over real HTTP: visibility the same as the API's, the indicator address
//! redirect, escaping, the background figures, assets. (The browser tests in tests/browser
//! click through the same pages in Chromium.)

mod common;

use std::time::Duration;

use apiary_store::Visibility;
use common::Hub;
use reqwest::Method;
use serde_json::json;

async fn page(hub: &Hub, path: &str, token: Option<&str>) -> (u16, String) {
    let r = hub.req(Method::GET, path, token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

async fn publish(hub: &Hub, feed: &str, token: &str, body: serde_json::Value) {
    let r = hub.req(Method::POST, &format!("/api/v1/feeds/{feed}/indicators"), Some(token)).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "publish: {}", r.text().await.unwrap());
}

async fn setup() -> (Hub, String) {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "public", Visibility::Public).await;
    hub.feed("alice", "secret", Visibility::Private).await;
    publish(
        &hub,
        "alice/public",
        &alice,
        json!([
            {"indicator": "198.51.100.7", "tags": ["scanner"], "portlist": "22", "description": "<script>alert(1)</script>"},
            {"indicator": "http://evil.example/a", "tags": ["malware"]},
            {"indicator": "44d88612fea8a8f36de82e1278abb02f", "tags": ["payload"]},
        ]),
    )
    .await;
    publish(&hub, "alice/secret", &alice, json!({"indicator": "203.0.113.77", "tags": ["secret-tag"]})).await;
    (hub, alice)
}

#[tokio::test]
async fn private_feeds_are_shown_only_to_their_readers() {
    let (hub, alice) = setup().await;
    let (s, body) = page(&hub, "/feeds", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("alice/public"));
    assert!(!body.contains("alice/secret"), "anonymous feed list shows the private feed");
    let (_, body) = page(&hub, "/feeds", Some(&alice)).await;
    assert!(body.contains("alice/secret"));

    let (s, body) = page(&hub, "/feeds/alice/secret", None).await;
    assert_eq!(s, 404);
    assert!(body.contains("<html") && !body.contains("203.0.113.77"));
    let (s, body) = page(&hub, "/feeds/alice/secret", Some(&alice)).await;
    assert_eq!(s, 200);
    assert!(body.contains("203.0.113.77"));

    let (s, body) = page(&hub, "/indicators/203.0.113.77", None).await;
    assert_eq!(s, 404);
    assert!(body.contains("not in any feed you may read") && !body.contains("alice/secret") && !body.contains("secret-tag"));
    let (s, body) = page(&hub, "/indicators/203.0.113.77", Some(&alice)).await;
    assert_eq!(s, 200);
    assert!(body.contains("alice/secret"));

    // Another user cannot see it either.
    let bob = hub.user("bob", "read").await;
    let (s, _) = page(&hub, "/feeds/alice/secret", Some(&bob)).await;
    assert_eq!(s, 404);

    // The overview counts only readable feeds.
    let (_, anon) = settled(&hub, None).await;
    assert!(anon.contains("id=\"card-feeds\"><div class=\"label\">Feeds</div><div class=\"figure\" data-value=\"1\""), "{anon}");
    let (_, own) = settled(&hub, Some(&alice)).await;
    assert!(own.contains("id=\"card-feeds\"><div class=\"label\">Feeds</div><div class=\"figure\" data-value=\"2\""));
}

/// The overview once the background digest has read the log.
async fn settled(hub: &Hub, token: Option<&str>) -> (u16, String) {
    for _ in 0..100 {
        let (s, body) = page(hub, "/", token).await;
        if !body.contains("data-state=\"computing\"") && body.contains("data-value=\"") && !body.contains("card-sightings\"><div class=\"label\">Sightings</div><div class=\"figure\" data-value=\"0\"") {
            return (s, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the overview never settled");
}

#[tokio::test]
async fn indicator_addresses_redirect_to_the_normalised_value() {
    let (hub, _) = setup().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (raw, want) in [
        ("/indicators/198.051.100.007", "/indicators/198.51.100.7"),
        ("/indicators/hxxp:%2F%2Fevil.example%2Fa", "/indicators/http:%2F%2Fevil.example%2Fa"),
        ("/indicators/http://evil.example/a", "/indicators/http:%2F%2Fevil.example%2Fa"),
        ("/indicators/44D88612FEA8A8F36DE82E1278ABB02F", "/indicators/44d88612fea8a8f36de82e1278abb02f"),
        ("/indicators?q=198.51.100.7", "/indicators/198.51.100.7"),
        ("/indicators/%32001:DB8::1", "/indicators/2001:db8::1"),
    ] {
        let r = client.get(format!("{}{raw}", hub.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 308, "{raw}");
        assert_eq!(r.headers()["location"].to_str().unwrap(), want, "{raw}");
    }
    let (s, body) = page(&hub, "/indicators/http:%2F%2Fevil.example%2Fa", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("alice/public") && body.contains("evil.example"), "related host listed");
    let (s, body) = page(&hub, "/indicators/not%20a%20value%20at%20all", None).await;
    assert_eq!(s, 422);
    assert!(body.contains("Not an indicator"));
    // Special-use values carry a note even when no feed lists them.
    let (s, body) = page(&hub, "/indicators/10.0.0.1", None).await;
    assert_eq!(s, 404);
    assert!(body.contains("Special-use address"), "{body}");
}

#[tokio::test]
async fn pages_escape_what_publishers_send() {
    let (hub, _) = setup().await;
    let (s, body) = page(&hub, "/indicators/198.51.100.7", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!body.contains("<script>alert(1)"));
    assert!(body.contains("id=\"timeline\"") && body.contains("id=\"score\""));
}

#[tokio::test]
async fn feed_page_lists_exports_filters_and_pages() {
    let (hub, alice) = setup().await;
    let values: Vec<_> = (1..=120).map(|i| json!({"indicator": format!("192.0.2.{i}")})).collect();
    publish(&hub, "alice/public", &alice, json!(values)).await;
    let (s, body) = page(&hub, "/feeds/alice/public", None).await;
    assert_eq!(s, 200);
    for f in apiary_core::export::FORMATS {
        assert!(body.contains(&format!("export?format={}\"", f.name)), "export link for {}", f.name);
    }
    assert_eq!(body.matches("<tr><td><a class=\"value\"").count(), 50);
    assert!(body.contains("id=\"next-page\""));
    let (s, body) = page(&hub, "/feeds/alice/public?itype=url", None).await;
    assert_eq!(s, 200);
    assert_eq!(body.matches("<tr><td><a class=\"value\"").count(), 1);
    let (s, body) = page(&hub, "/feeds/alice/public?within=nonsense", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("Filter refused"));
}

#[tokio::test]
async fn fragments_assets_and_other_pages() {
    let (hub, alice) = setup().await;
    let r = hub.req(Method::GET, "/account", Some(&alice)).header("X-Apiary-Fragment", "1").send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "private, no-cache");
    let body = r.text().await.unwrap();
    assert!(body.starts_with("<main") && body.contains("data-user=\"alice\""));
    let r = hub.req(Method::GET, "/assets/app.js", None).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    for path in ["/attackers", "/compare", "/live?feeds=alice/public", "/account", "/indicators"] {
        let (s, body) = page(&hub, path, None).await;
        assert_eq!(s, 200, "{path}");
        assert!(body.contains("<main"), "{path}");
    }
    // A bad token is refused as by the API.
    let (s, _) = page(&hub, "/", Some("nope")).await;
    assert_eq!(s, 401);
}

/// The overview tells an empty user from an empty password and leaves out empty command lines;
/// a feed of imported history shows no report latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_credentials_commands_and_imported_history_are_shown_plainly() {
    use apiary_store::{sqlite::SqliteStore, NewFeed, NewSession, Store};
    // The sessions are in the store before the hub starts (the overview counts them at start).
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    store.create_user("alice", false).await.unwrap();
    let pots = store
        .create_feed(NewFeed { owner: "alice".into(), name: "pots".into(), description: None, license_name: None, license_url: None, visibility: Visibility::Public })
        .await
        .unwrap();
    let session: apiary_core::sessions::SessionRecord = serde_json::from_value(json!({
        "sensor": "pot-1", "session": "a1", "attacker": "45.3.3.3", "depth": "commands",
        "start": "2026-01-01T00:00:00Z", "events": 5,
        "credentials": [{"username": "root", "password": ""}, {"username": "", "password": "root"}],
        "commands": ["", "uname -a", "  "],
    }))
    .unwrap();
    store.append_sessions(vec![NewSession { feed_id: pots.id, record: session }]).await.unwrap();
    let hub = Hub::serve(apiary_server::Config::default(), store, dir).await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "old", Visibility::Public).await;
    publish(&hub, "alice/pots", &alice, json!({"indicator": "45.3.3.3"})).await;
    publish(&hub, "alice/old", &alice, json!({"indicator": "45.3.3.4", "firsttime": "2022-07-17T00:00:00Z"})).await;
    let mut body = String::new();
    for _ in 0..100 {
        body = settled(&hub, None).await.1;
        if body.contains("uname -a") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("root / (empty)") && body.contains("(empty) / root"), "{body}");
    let commands = &body[body.find("id=\"top-commands\"").expect("top commands")..];
    let commands = &commands[..commands.find("</section>").unwrap()];
    assert!(commands.contains("uname -a") && !commands.contains("<code></code>") && !commands.contains("<code>  </code>"), "{commands}");
    let mut feed = String::new();
    for _ in 0..100 {
        feed = page(&hub, "/feeds/alice/old", None).await.1;
        if feed.contains("n/a for imported history") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(feed.contains("n/a for imported history") && !feed.contains(" days</dd>"), "{feed}");
}
