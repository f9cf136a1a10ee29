//! The CSIRTG v1 API as csirtgsdk 1.1.5 and Cowrie call it (shared/spec/csirtg-compat.md).

mod common;

use apiary_store::Visibility;
use common::{error_code, json, Hub};
use reqwest::Method;
use serde_json::{json, Value};

/// csirtg-indicator 1.x body, as csirtgsdk 1.1.5 was written for.
fn body_v1(value: &str) -> Value {
    json!({"indicator": {"indicator": value, "itype": "ipv4", "group": "everyone", "count": 1,
        "tags": ["scanner", "ssh"], "confidence": 0.0, "description": "random scanning activity",
        "uuid": "3f0c2f44-1c1e-4c59-9d0c-1f3c7a3b9a01", "portlist": 22, "protocol": "tcp",
        "firsttime": "2021-05-23T15:12:53.123456Z", "lasttime": "2021-05-23T15:14:00Z"},
        "comment": null, "content": null})
}

/// csirtg-indicator 3.x body, as a real Cowrie 3.1.4 sends it.
fn body_v3(value: &str) -> Value {
    json!({"indicator": {"indicator": value, "itype": "ipv4", "tlp": "amber", "group": "everyone", "count": 1,
        "tags": ["scanner", "ssh"], "confidence": 3.0, "description": "random scanning activity",
        "uuid": "9b2f6a1e-5d1c-4a7e-8f00-6c1d2e3f4a5b", "portlist": 22, "protocol": "tcp",
        "reported_at": "2026-12-03T16:11:07.808911Z"},
        "comment": null, "content": null})
}

#[tokio::test(flavor = "multi_thread")]
async fn create_accepts_both_body_shapes_through_the_double_slash() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "ssh", Visibility::Public).await;

    for (body, value, first) in [
        (body_v1("203.0.113.7"), "203.0.113.7", "2021-05-23T15:12:53.123456Z"),
        (body_v3("198.51.100.20"), "198.51.100.20", "2026-12-03T16:11:07.808911Z"),
    ] {
        let resp = hub.csirtg(Method::POST, "//users/alice/feeds/ssh/indicators", &alice).json(&body).send().await.unwrap();
        let (status, reply) = json(resp).await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["indicator"], value);
        assert_eq!(reply["itype"], "ipv4");
        assert_eq!(reply["user"], "alice");
        assert_eq!(reply["feed"], "ssh");
        assert_eq!(reply["tags"], json!(["scanner", "ssh"]));
        assert_eq!(reply["portlist"], "22");
        assert_eq!(reply["protocol"], "tcp");
        assert_eq!(reply["firsttime"], first);
        assert!(reply["license"].is_object());
        let id = reply["id"].as_i64().unwrap();
        let location = reply["location"].as_str().unwrap();
        assert_eq!(location, format!("{}/api/users/alice/feeds/ssh/indicators/{id}", hub.base));

        // The location answers, as GET and as csirtgsdk's POST-with-null.
        let shown = hub.client.get(location).header("Authorization", format!("Token token={alice}")).send().await.unwrap();
        let (status, shown) = json(shown).await;
        assert_eq!((status, shown["indicator"].as_str()), (200, Some(value)));
        let path = format!("/users/alice/feeds/ssh/indicators/{id}");
        let (status, shown) = json(hub.csirtg(Method::POST, &path, &alice).body("null").send().await.unwrap()).await;
        assert_eq!((status, shown["id"].as_i64()), (200, Some(id)));
    }

    // The publisher's claim and the unknown fields are kept with the sighting.
    let (status, detail) = json(hub.req(Method::GET, "/api/v1/indicators/198.51.100.20", Some(&alice)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{detail}");
    let sighting = &detail["sightings"][0];
    assert_eq!(sighting["claimed_confidence"], 3.0);
    assert_eq!(sighting["tlp"], "amber");
    assert_eq!(sighting["extra"]["group"], "everyone");
    assert_eq!(sighting["extra"]["uuid"], "9b2f6a1e-5d1c-4a7e-8f00-6c1d2e3f4a5b");
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_is_accepted_and_marked_reserved() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "ssh", Visibility::Public).await;
    let resp = hub.csirtg(Method::POST, "//users/alice/feeds/ssh/indicators", &alice).json(&body_v3("127.0.0.1")).send().await.unwrap();
    let (status, reply) = json(resp).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["reserved"], "loopback");
    let (_, page) = json(hub.req(Method::GET, "/api/v1/indicators?q=127.0.0.1", None).send().await.unwrap()).await;
    assert_eq!(page["items"][0]["reserved"], "loopback");
}

#[tokio::test(flavor = "multi_thread")]
async fn field_forms_tags_ports_times_and_unknown_fields() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "mixed", Visibility::Public).await;
    let cases = [
        (json!({"indicator": "a.example.com", "tags": " scanner , ssh ", "portlist": "22,2222"}), json!(["scanner", "ssh"]), "22,2222"),
        (json!({"indicator": "b.example.com", "tags": "phishing", "portlist": ["443", 80], "first_at": "2024-01-02T03:04:05Z", "last_at": "2024-01-03T00:00:00Z"}), json!(["phishing"]), "80,443"),
        (json!({"indicator": "c.example.com", "lasttime": "1700000000", "portlist": null, "rdata": "x", "weird": {"nested": true}}), json!([]), ""),
    ];
    for (ind, tags, ports) in cases {
        let body = json!({"indicator": ind, "comment": "seen from the honeypot", "content": null});
        let (status, reply) = json(hub.csirtg(Method::POST, "/users/alice/feeds/mixed/indicators", &alice).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["itype"], "fqdn");
        assert_eq!(reply["tags"], tags);
        assert_eq!(reply["portlist"].as_str().unwrap_or(""), ports);
    }
    let (_, b) = json(hub.req(Method::GET, "/api/v1/indicators/b.example.com", Some(&alice)).send().await.unwrap()).await;
    assert_eq!(b["records"][0]["firsttime"], "2024-01-02T03:04:05Z");
    assert_eq!(b["records"][0]["lasttime"], "2024-01-03T00:00:00Z");
    let (_, c) = json(hub.req(Method::GET, "/api/v1/indicators/c.example.com", Some(&alice)).send().await.unwrap()).await;
    assert_eq!(c["records"][0]["lasttime"], "2023-11-14T22:13:20Z");
    let extra = &c["sightings"][0]["extra"];
    assert_eq!(extra["rdata"], "x");
    assert_eq!(extra["weird"], json!({"nested": true}));
    assert_eq!(extra["comment"], "seen from the honeypot");

    // Comments come back on the comments route.
    let id = c["records"][0]["id"].as_i64().unwrap();
    let path = format!("/users/alice/feeds/mixed/indicators/{id}/comments");
    let (status, comments) = json(hub.csirtg(Method::POST, &path, &alice).body("null").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(comments[0]["comment"], "seen from the honeypot");
}

#[tokio::test(flavor = "multi_thread")]
async fn feeds_list_create_show_and_delete_as_the_cli_calls_them() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;

    // Create: POST {"feed":{...}}; list: POST with body null (and GET).
    let body = json!({"feed": {"name": "scanners", "description": "port scanners"}});
    let (status, feed) = json(hub.csirtg(Method::POST, "/users/alice/feeds", &alice).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{feed}");
    assert_eq!(feed["name"], "scanners");
    assert!(feed["license"].is_object() && feed["created_at"].is_string() && feed["updated_at"].is_string());
    let (status, again) = json(hub.csirtg(Method::POST, "/users/alice/feeds", &alice).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 422, "a duplicate feed is a refused submission: {again}");

    for req in [
        hub.csirtg(Method::POST, "/users/alice/feeds", &alice).body("null"),
        hub.csirtg(Method::POST, "//users/alice/feeds", &alice),
        hub.csirtg(Method::GET, "/users/alice/feeds", &alice).header("Accept", "application/vnd.csirtg.v1+json"),
    ] {
        let (status, list) = json(req.send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["name"], "scanners");
        assert!(list[0]["license"].is_object());
    }

    // Feed show with its indicators; URLs are `uri` here.
    for v in ["198.51.100.9", "http://bad.example/login.php"] {
        let body = json!({"indicator": {"indicator": v}, "comment": null, "content": null});
        let (status, _) = json(hub.csirtg(Method::POST, "//users/alice/feeds/scanners/indicators", &alice).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 201);
    }
    let (status, shown) = json(hub.csirtg(Method::GET, "/users/alice/feeds/scanners?limit=25", &alice).send().await.unwrap()).await;
    assert_eq!(status, 200, "{shown}");
    let inds = shown["indicators"].as_array().unwrap();
    assert_eq!(inds.len(), 2);
    let url = inds.iter().find(|i| i["indicator"] == "http://bad.example/login.php").unwrap();
    assert_eq!(url["itype"], "uri");
    for field in ["id", "firsttime", "lasttime", "count", "created_at", "updated_at", "location"] {
        assert!(!url[field].is_null(), "{field} missing: {url}");
    }

    // Search (GET with params) and predict (POST with null).
    let (status, found) = json(hub.csirtg(Method::GET, "/search?q=198.51.100.9&limit=25", &alice).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(found[0]["user"], "alice");
    assert_eq!(found[0]["feed"], "scanners");
    assert!(found[0]["tags"].is_array() && found[0]["license"].is_object());
    // predict: 1 for a stored value that is not special-use; 0 for a documentation address
    // even when stored, and 0 for a value no readable feed holds.
    for (q, score) in [("http://bad.example/login.php", 1), ("198.51.100.9", 0), ("unknown.example.net", 0)] {
        let (status, p) = json(hub.csirtg(Method::POST, &format!("/predict?q={q}"), &alice).body("null").send().await.unwrap()).await;
        assert_eq!((status, p), (200, json!({"score": score})), "{q}");
    }

    let (status, _) = json(hub.csirtg(Method::DELETE, "/users/alice/feeds/scanners", &alice).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let (status, body) = json(hub.csirtg(Method::GET, "/users/alice/feeds/scanners", &alice).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_json_with_the_status_the_client_understands() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    let bob = hub.user("bob", "read,write").await;
    hub.feed("alice", "ssh", Visibility::Public).await;
    let path = "//users/alice/feeds/ssh/indicators";

    let (status, body) = json(hub.csirtg(Method::POST, path, "not-a-token").json(&body_v3("203.0.113.1")).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "unauthorized"));

    let (status, body) = json(hub.csirtg(Method::POST, path, &bob).json(&body_v3("203.0.113.1")).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (403, "forbidden"));

    let (status, body) = json(hub.csirtg(Method::POST, path, &alice).body("{\"indicator\": {").send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (422, "invalid_json"));
    assert!(body["error"]["message"].as_str().unwrap().contains("line 1"), "{body}");

    let (status, body) = json(hub.csirtg(Method::POST, path, &alice).json(&body_v3("999.1.1.1")).send().await.unwrap()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("999.1.1.1"), "names the value: {body}");

    let (status, body) = json(hub.csirtg(Method::POST, path, &alice).body("null").send().await.unwrap()).await;
    assert_eq!(status, 422, "{body}");

    let (status, body) = json(hub.csirtg(Method::POST, "//users/alice/feeds/nope/indicators", &alice).json(&body_v3("203.0.113.1")).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));

    let (status, body) = json(hub.csirtg(Method::GET, "/no/such/route", &alice).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));

    let (status, body) = json(hub.csirtg(Method::PUT, "/users/alice/feeds", &alice).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (405, "method_not_allowed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cli_without_a_token_reads_public_feeds_anonymously() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "pub", Visibility::Public).await;
    hub.feed("alice", "priv", Visibility::Private).await;
    for feed in ["pub", "priv"] {
        let path = format!("//users/alice/feeds/{feed}/indicators");
        let (status, _) = json(hub.csirtg(Method::POST, &path, &alice).json(&body_v1("203.0.113.99")).send().await.unwrap()).await;
        assert_eq!(status, 201);
    }
    // csirtgsdk sends `Token token=None` when CSIRTG_TOKEN is unset.
    let (status, found) = json(hub.csirtg(Method::GET, "/search?q=203.0.113.99", "None").send().await.unwrap()).await;
    assert_eq!(status, 200, "{found}");
    let feeds: Vec<&str> = found.as_array().unwrap().iter().map(|i| i["feed"].as_str().unwrap()).collect();
    assert_eq!(feeds, vec!["pub"], "only the public feed's record");
    let (status, list) = json(hub.csirtg(Method::POST, "/users/alice/feeds", "None").body("null").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Writing still needs a token.
    let (status, body) = json(hub.csirtg(Method::POST, "//users/alice/feeds/pub/indicators", "None").json(&body_v1("203.0.113.98")).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "unauthorized"));
}
