//! What changes state needs `write`; reports name only what their sender may see; a write
//! that is refused changes nothing.

mod common;

use apiary_store::Visibility;
use common::{error_code, json, Hub};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn read_only_tokens_cannot_make_webhooks_subscriptions_or_reports() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    let reader = hub.user("reader", "read").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    let r = hub.req(Method::POST, "/api/v1/feeds/alice/pots/indicators", Some(&alice)).json(&json!([{"indicator": "45.155.205.7"}])).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let hook = json!({"url": "http://127.0.0.1:9/hook"});
    let sub = json!({"feed": "alice/pots"});
    let fp = json!({"value": "45.155.205.7", "reason": "ours"});
    for (path, body) in [("/api/v1/webhooks", &hook), ("/api/v1/subscriptions", &sub), ("/api/v1/false-positives", &fp)] {
        let (status, b) = json(hub.req(Method::POST, path, Some(&reader)).json(body).send().await.unwrap()).await;
        assert_eq!((status, error_code(&b)), (403, "forbidden".to_string()), "{path}: {b}");
    }
    // Nothing was made; reading still works.
    let (status, list) = json(hub.req(Method::GET, "/api/v1/webhooks", Some(&reader)).send().await.unwrap()).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 0));
    let (_, list) = json(hub.req(Method::GET, "/api/v1/subscriptions", Some(&reader)).send().await.unwrap()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // A write token may.
    for (path, body) in [("/api/v1/webhooks", &hook), ("/api/v1/subscriptions", &sub), ("/api/v1/false-positives", &fp)] {
        let (status, b) = json(hub.req(Method::POST, path, Some(&alice)).json(body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{path}: {b}");
    }
    let (_, list) = json(hub.req(Method::GET, "/api/v1/webhooks", Some(&alice)).send().await.unwrap()).await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    // A read-only token of the same user may not delete it either.
    let alice_reader = hub.user("alice", "read").await;
    let r = hub.req(Method::DELETE, &format!("/api/v1/webhooks/{id}"), Some(&alice_reader)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = hub.req(Method::DELETE, "/api/v1/subscriptions/alice/pots", Some(&alice_reader)).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_on_values_one_cannot_see_are_404() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    let bob = hub.user("bob", "read,write").await;
    hub.feed("alice", "secret", Visibility::Private).await;
    hub.feed("alice", "pots", Visibility::Public).await;
    let body = json!([{"indicator": "198.51.100.77"}, {"indicator": "red-only.example", "tlp": "red"}]);
    let r = hub.req(Method::POST, "/api/v1/feeds/alice/secret/indicators", Some(&alice)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = hub.req(Method::POST, "/api/v1/feeds/alice/pots/indicators", Some(&alice)).json(&json!([{"indicator": "red-public.example", "tlp": "red"}])).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // Bob cannot read the private feed, nor RED in a public one; nobody lists 192.0.2.200.
    for value in ["198.51.100.77", "red-public.example", "192.0.2.200"] {
        let (status, b) = json(hub.req(Method::POST, "/api/v1/false-positives", Some(&bob)).json(&json!({"value": value, "reason": "x"})).send().await.unwrap()).await;
        assert_eq!((status, error_code(&b)), (404, "not_found".to_string()), "{value}");
    }
    let (status, _) = json(hub.req(Method::POST, "/api/v1/false-positives", Some(&alice)).json(&json!({"value": "198.51.100.77", "reason": "x"})).send().await.unwrap()).await;
    assert_eq!(status, 201);

    // Retracting: only what the feed listed (RED included, its owner sees it).
    let (status, b) = json(hub.req(Method::POST, "/api/v1/feeds/alice/pots/retractions", Some(&alice)).json(&json!({"value": "192.0.2.200", "reason": "x"})).send().await.unwrap()).await;
    assert_eq!((status, error_code(&b)), (404, "not_found".to_string()));
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/pots/retractions", Some(&alice)).json(&json!({"value": "red-public.example", "reason": "x"})).send().await.unwrap()).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_tier_change_writes_nothing() {
    let hub = Hub::start().await;
    hub.user("bob", "read,write").await;
    hub.feed("bob", "list", Visibility::Public).await;
    let (status, before) = json(hub.req(Method::GET, "/api/v1/sources", Some(&hub.admin)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let (status, b) = json(hub.req(Method::PUT, "/api/v1/sources/bob/list/tier", Some(&hub.admin)).json(&json!({"tier": "bogus", "asn": 64999})).send().await.unwrap()).await;
    assert_eq!((status, error_code(&b)), (422, "unknown_tier".to_string()));
    let (_, after) = json(hub.req(Method::GET, "/api/v1/sources", Some(&hub.admin)).send().await.unwrap()).await;
    assert_eq!(before, after, "nothing applied");
    assert!(!after.to_string().contains("64999"));
}
