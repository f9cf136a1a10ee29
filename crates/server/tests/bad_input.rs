//! Bad input found by breaking the hub on purpose: each test is a refusal that used to be a
//! silent, wrong success.

mod common;

use apiary_store::Visibility;
use common::{error_code, json, Hub};
use reqwest::Method;
use serde_json::json;

/// CSIRTG feed create: a `visibility` that is neither `public` nor `private` (a typo, a boolean)
/// used to make a *public* feed. It is refused now, and nothing is created.
#[tokio::test]
async fn csirtg_feed_create_refuses_an_unknown_visibility_instead_of_publishing() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;

    for (i, bad) in [json!("privat"), json!("private-ish"), json!(true), json!(1), json!({"private": true})].into_iter().enumerate() {
        let name = format!("typo{i}");
        let body = json!({"feed": {"name": name, "visibility": bad}});
        let (status, reply) = json(hub.csirtg(Method::POST, "/users/alice/feeds", &alice).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 422, "visibility {bad}: {reply}");
        assert_eq!(error_code(&reply), "invalid_visibility");
        assert!(hub.store.get_feed("alice", &name).await.unwrap().is_none(), "visibility {bad} created a feed");
    }

    // The forms that mean something still work; case and spaces are forgiven.
    for (name, v, want) in [
        ("p1", json!("private"), "private"),
        ("p2", json!(" Private "), "private"),
        ("p3", json!("PUBLIC"), "public"),
        ("p4", json!(null), "public"),
    ] {
        let body = json!({"feed": {"name": name, "visibility": v}});
        let (status, reply) = json(hub.csirtg(Method::POST, "/users/alice/feeds", &alice).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 201, "visibility {v}: {reply}");
        assert_eq!(reply["visibility"], want, "visibility {v}");
    }
    let (status, reply) = json(hub.csirtg(Method::POST, "/users/alice/feeds", &alice).json(&json!({"feed": {"name": "p5"}})).send().await.unwrap()).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["visibility"], "public");

    // A private feed made this way stays invisible to others.
    let bob = hub.user("bob", "read,write").await;
    let (status, _) = json(hub.req(Method::GET, "/api/v1/feeds/alice/p2", Some(&bob)).send().await.unwrap()).await;
    assert_eq!(status, 404);
}

/// ipset export: a `set` name ipset cannot use used to fall back to `apiary` without a word, so
/// `ipset restore` replaced the default set instead of the one asked for. It is a 422 now.
#[tokio::test]
async fn ipset_export_refuses_an_unusable_set_name() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "scan", Visibility::Public).await;
    let (status, _) = json(
        hub.req(Method::POST, "/api/v1/feeds/alice/scan/indicators", Some(&alice))
            .header("Content-Type", "text/plain")
            .body("45.155.205.61\n")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);

    for bad in ["a%3Brm", "bad%20name", "a%0Acreate%20x", "aaaaaaaaaaaaaaaaaaaaaaaaa", "s%C3%A9t"] {
        let (status, reply) =
            json(hub.req(Method::GET, &format!("/api/v1/feeds/alice/scan/export?format=ipset&window=all&set={bad}"), None).send().await.unwrap()).await;
        assert_eq!(status, 422, "set={bad}: {reply}");
        assert_eq!(error_code(&reply), "invalid_set");
    }

    let resp = hub.req(Method::GET, "/api/v1/feeds/alice/scan/export?format=ipset&window=all&set=my_list.v2", None).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("create my_list.v2-v4 hash:net") && text.contains("add my_list.v2-v4-tmp 45.155.205.61"), "{text}");
    assert!(!text.contains("apiary-v4"), "{text}");

    // No `set` (or an empty one) is still the default name.
    let text = hub.req(Method::GET, "/api/v1/feeds/alice/scan/export?format=ipset&window=all&set=", None).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("create apiary-v4 hash:net"), "{text}");
}

/// A UTF-8 byte order mark (what Windows editors and PowerShell write) used to make a JSON body a
/// 422 and cost a JSON-lines body its first record, while text and CSV bodies skipped it.
#[tokio::test]
async fn a_byte_order_mark_is_skipped_in_json_bodies() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "hp", Visibility::Public).await;
    let bom = "\u{feff}";
    for (ct, body, want) in [
        ("application/json", format!(r#"{bom}{{"indicator":"45.155.205.71"}}"#), 1),
        ("application/json", format!(r#"{bom}["45.155.205.72", {{"indicator":"45.155.205.73"}}]"#), 2),
        ("application/x-ndjson", format!("{bom}{{\"indicator\":\"45.155.205.74\"}}\n{{\"indicator\":\"45.155.205.75\"}}\n"), 2),
        ("text/plain", format!("{bom}45.155.205.76\n"), 1),
        ("text/csv", format!("{bom}indicator\n45.155.205.77\n"), 1),
    ] {
        let resp = hub.req(Method::POST, "/api/v1/feeds/alice/hp/indicators", Some(&alice)).header("Content-Type", ct).body(body.clone()).send().await.unwrap();
        let (status, reply) = json(resp).await;
        assert_eq!(status, 201, "{ct} {body:?}: {reply}");
        assert_eq!(reply["accepted"], want, "{ct} {body:?}: {reply}");
        assert_eq!(reply["rejected"].as_array().unwrap().len(), 0, "{ct} {body:?}: {reply}");
    }

    // The CSIRTG indicator create reads its body the same way.
    let body = format!(r#"{bom}{{"indicator":{{"indicator":"45.155.205.78"}}}}"#);
    let (status, reply) = json(hub.csirtg(Method::POST, "/users/alice/feeds/hp/indicators", &alice).body(body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["indicator"], "45.155.205.78");
}

/// A time far in the future used to be stored as the record's lasttime, so the value topped
/// every newest-first list and never left the export windows. It is refused per item now;
/// the good items of the same batch are stored.
#[tokio::test]
async fn times_far_in_the_future_are_refused_and_the_rest_of_the_batch_is_kept() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "scan", Visibility::Public).await;
    let body = json!([
        {"indicator": "45.7.7.132", "firsttime": "9999-12-31T23:59:59Z"},
        {"indicator": "45.7.7.133", "lasttime": 99999999999u64},
        {"indicator": "45.7.7.134", "firsttime": "2021-05-02T07:00:00Z"},
    ]);
    let (status, reply) = json(
        hub.req(Method::POST, "/api/v1/feeds/alice/scan/indicators", Some(&alice)).json(&body).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["accepted"], 1, "{reply}");
    let rejected = reply["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 2, "{reply}");
    for r in rejected {
        assert_eq!(r["code"], "in_future", "{reply}");
    }
    assert!(hub.store.get_indicator("45.7.7.134").await.unwrap().is_some());
    assert!(hub.store.get_indicator("45.7.7.132").await.unwrap().is_none());
}

/// Bodies of a type the API does not read were parsed as JSON: now a 415 naming the accepted
/// types. HTTP-level refusals on API paths have the JSON error body too.
#[tokio::test]
async fn foreign_media_types_are_415_and_http_errors_on_api_paths_are_json() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "f", Visibility::Public).await;
    for ct in ["image/png", "multipart/form-data; boundary=xyz"] {
        let resp = hub
            .req(Method::POST, "/api/v1/feeds/alice/f/indicators", Some(&alice))
            .header("Content-Type", ct)
            .body(r#"[{"indicator":"198.51.100.9"}]"#)
            .send()
            .await
            .unwrap();
        let (status, body) = json(resp).await;
        assert_eq!((status, error_code(&body)), (415, "unsupported_media_type".to_string()), "{ct}");
        assert!(body["error"]["message"].as_str().unwrap().contains("application/json"), "{body}");
    }
    assert_eq!(hub.store.stats().await.unwrap().sightings, 0);
    // JSON and text still go through.
    let resp = hub.req(Method::POST, "/api/v1/feeds/alice/f/indicators", Some(&alice)).header("Content-Type", "text/plain").body("198.51.100.9\n").send().await.unwrap();
    assert_eq!(resp.status(), 201);

    for (method, path, status) in [
        (Method::GET, "/api/v1/no-such-thing", 404),
        (Method::DELETE, "/api/v1/indicators", 405),
        (Method::GET, "/api/v1/indicators/%FF%FE", 400),
    ] {
        let (got, body) = json(hub.req(method.clone(), path, Some(&alice)).send().await.unwrap()).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        error_code(&body);
    }
}

/// A `javascript:` licence URL was stored and rendered as a link; `categories=maybe` counted
/// as yes. Both are refused now.
#[tokio::test]
async fn licence_urls_must_be_http_and_flags_boolean() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    for url in ["javascript:alert(1)", "data:text/html,x", "//evil.example/x", "http://"] {
        let body = json!({"name": "f", "license_name": "L", "license_url": url});
        let (status, b) = json(hub.req(Method::POST, "/api/v1/feeds", Some(&alice)).json(&body).send().await.unwrap()).await;
        assert_eq!((status, error_code(&b)), (422, "invalid_license_url".to_string()), "{url}");
        let csirtg = json!({"feed": {"name": "g", "license": {"name": "L", "url": url}}});
        let (status, _) = json(hub.csirtg(Method::POST, "/users/alice/feeds", &alice).json(&csirtg).send().await.unwrap()).await;
        assert_eq!(status, 422, "csirtg {url}");
    }
    assert!(hub.store.get_feed("alice", "f").await.unwrap().is_none());
    let body = json!({"name": "f", "license_name": "CC-BY", "license_url": "https://creativecommons.org/licenses/by/4.0/"});
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds", Some(&alice)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201);
    let (status, _) = json(hub.req(Method::PATCH, "/api/v1/feeds/alice/f", Some(&alice)).json(&json!({"license_url": "javascript:alert(1)"})).send().await.unwrap()).await;
    assert_eq!(status, 422);
    let page = hub.req(Method::GET, "/feeds/alice/f", None).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("href=\"https://creativecommons.org/licenses/by/4.0/\""));
    assert!(!page.contains("javascript:"));

    let path = "/api/v1/feeds/alice/f/export?format=suricata-iprep&categories=";
    for (v, want) in [("maybe", 422), ("true", 200), ("false", 200)] {
        let resp = hub.req(Method::GET, &format!("{path}{v}"), Some(&alice)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "categories={v}");
    }
}
