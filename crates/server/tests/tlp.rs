//! TLP:RED on every read route (docs/exports.md rule 5): only the feed's owner and the users a
//! private feed was shared with see RED; readers of a public feed, anonymous callers and admins
//! do not. AMBER and GREEN go to every reader of the feed.

mod common;

use std::time::Duration;

use apiary_store::Visibility;
use common::{json, Hub};
use reqwest::Method;
use serde_json::{json, Value};

const RED: &str = "redvalue-evil.xyz";
const AMBER: &str = "ambervalue-evil.xyz";
const GREEN: &str = "greenvalue-evil.xyz";
const SHARED_RED: &str = "sharedred-evil.xyz";

struct Setup {
    hub: Hub,
    alice: String,
    bob: String,
    carol: String,
}

/// alice/pub (public): RED, AMBER, GREEN. alice/priv (private, shared with bob): SHARED_RED.
async fn setup() -> Setup {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    let bob = hub.user("bob", "read").await;
    let carol = hub.user("carol", "read").await;
    hub.feed("alice", "pub", Visibility::Public).await;
    hub.feed("alice", "priv", Visibility::Private).await;
    hub.store.grant_feed_access("alice", "priv", "bob").await.unwrap();
    let body = json!([{"indicator": RED, "tlp": "red"}, {"indicator": AMBER, "tlp": "amber"}, {"indicator": GREEN, "tlp": "green"}]);
    let r = hub.req(Method::POST, "/api/v1/feeds/alice/pub/indicators", Some(&alice)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let body = json!([{"indicator": SHARED_RED, "tlp": "red"}]);
    let r = hub.req(Method::POST, "/api/v1/feeds/alice/priv/indicators", Some(&alice)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    Setup { hub, alice, bob, carol }
}

fn values(items: &Value) -> Vec<String> {
    let mut v: Vec<String> = items.as_array().unwrap().iter().map(|r| r["indicator"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn native_list_search_and_detail_hide_red_from_all_but_owner_and_grantees() {
    let s = setup().await;
    let admin = s.hub.admin.clone();
    // (caller, sees RED of the public feed, sees SHARED_RED of the private feed)
    let cases: [(&str, Option<&str>, bool, bool); 5] = [
        ("anonymous", None, false, false),
        ("carol (reader)", Some(&s.carol), false, false),
        ("bob (grantee)", Some(&s.bob), false, true),
        ("admin", Some(&admin), false, false),
        ("alice (owner)", Some(&s.alice), true, true),
    ];
    for (who, token, red, shared) in cases {
        let (status, page) = json(s.hub.req(Method::GET, "/api/v1/indicators?limit=100", token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{who}");
        let got = values(&page["items"]);
        assert_eq!(got.contains(&RED.to_string()), red, "{who} list: {got:?}");
        assert_eq!(got.contains(&SHARED_RED.to_string()), shared, "{who} list: {got:?}");
        assert!(got.contains(&AMBER.to_string()) && got.contains(&GREEN.to_string()), "{who}: amber and green reach readers: {got:?}");

        let (_, page) = json(s.hub.req(Method::GET, &format!("/api/v1/indicators?q={RED}"), token).send().await.unwrap()).await;
        assert_eq!(page["items"].as_array().unwrap().len(), usize::from(red), "{who} ?q=");
        let (_, page) = json(s.hub.req(Method::GET, "/api/v1/feeds/alice/pub/indicators", token).send().await.unwrap()).await;
        assert_eq!(values(&page["items"]).contains(&RED.to_string()), red, "{who} feed records");

        let (status, detail) = json(s.hub.req(Method::GET, &format!("/api/v1/indicators/{RED}"), token).send().await.unwrap()).await;
        assert_eq!(status, if red { 200 } else { 404 }, "{who} detail: {detail}");
        if red {
            assert_eq!(detail["sightings"].as_array().unwrap().len(), 1, "{who}");
        }
        let (status, _) = json(s.hub.req(Method::GET, &format!("/api/v1/indicators/{SHARED_RED}"), token).send().await.unwrap()).await;
        assert_eq!(status, if shared { 200 } else { 404 }, "{who} detail of the shared value");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn csirtg_search_and_feed_views_hide_red() {
    let s = setup().await;
    for (who, token, red) in [("carol", &s.carol, false), ("alice", &s.alice, true)] {
        let (status, found) = json(s.hub.csirtg(Method::GET, &format!("/search?q={RED}"), token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{who}");
        assert_eq!(found.as_array().unwrap().len(), usize::from(red), "{who} search: {found}");
        let (_, feed) = json(s.hub.csirtg(Method::GET, "/users/alice/feeds/pub", token).send().await.unwrap()).await;
        assert_eq!(values(&feed["indicators"]).contains(&RED.to_string()), red, "{who} feed view");
        let (_, list) = json(s.hub.csirtg(Method::GET, "/users/alice/feeds/pub/indicators", token).send().await.unwrap()).await;
        let list = if list.is_array() { list } else { list["indicators"].clone() };
        assert_eq!(values(&list).contains(&RED.to_string()), red, "{who} feed indicators");
    }
    // Anonymous CSIRTG search (csirtgsdk sends `Token token=None`).
    let (_, found) = json(s.hub.csirtg(Method::GET, &format!("/search?q={RED}"), "None").send().await.unwrap()).await;
    assert_eq!(found, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn web_indicator_page_hides_red() {
    let s = setup().await;
    let page = |token: Option<&str>| s.hub.req(Method::GET, &format!("/indicators/{RED}"), token).send();
    let anon = page(None).await.unwrap();
    assert_eq!(anon.status(), 404);
    assert!(!anon.text().await.unwrap().contains("alice/pub"), "no feed named for a hidden value");
    assert_eq!(page(Some(&s.carol)).await.unwrap().status(), 404);
    let owner = page(Some(&s.alice)).await.unwrap();
    assert_eq!(owner.status(), 200);
    let feed_page = s.hub.req(Method::GET, "/feeds/alice/pub", None).send().await.unwrap().text().await.unwrap();
    assert!(feed_page.contains(GREEN) && !feed_page.contains(RED), "the feed page lists green, not red");
}

/// Sighting values of an SSE stream from `after=0`, read until `last` arrives.
async fn streamed_until(hub: &Hub, token: Option<&str>, last: &str) -> Vec<String> {
    let mut resp = hub.req(Method::GET, "/api/v1/stream?after=0", token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let mut seen = Vec::new();
    while !seen.iter().any(|v| v == last) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.expect("events in time").unwrap().expect("open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                        if let Some(i) = v["indicator"].as_str() {
                            seen.push(i.to_string());
                        }
                    }
                }
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_replay_red_only_to_owner_and_grantees() {
    let s = setup().await;
    // A last public GREEN marks the end of the replay.
    let end = "end-marker.example";
    let r = s.hub.req(Method::POST, "/api/v1/feeds/alice/pub/indicators", Some(&s.alice)).json(&json!([{"indicator": end}])).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let anon = streamed_until(&s.hub, None, end).await;
    assert!(!anon.contains(&RED.to_string()) && anon.contains(&AMBER.to_string()), "anonymous: {anon:?}");
    let carol = streamed_until(&s.hub, Some(&s.carol), end).await;
    assert!(!carol.contains(&RED.to_string()), "reader: {carol:?}");
    let bob = streamed_until(&s.hub, Some(&s.bob), end).await;
    assert!(!bob.contains(&RED.to_string()) && bob.contains(&SHARED_RED.to_string()), "grantee: {bob:?}");
    let admin = streamed_until(&s.hub, Some(&s.hub.admin), end).await;
    assert!(!admin.contains(&RED.to_string()) && !admin.contains(&SHARED_RED.to_string()), "admin: {admin:?}");
    let alice = streamed_until(&s.hub, Some(&s.alice), end).await;
    assert!(alice.contains(&RED.to_string()) && alice.contains(&SHARED_RED.to_string()), "owner: {alice:?}");
}
