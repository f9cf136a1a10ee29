//! Sign-up (`POST /api/v1/signup`): closed unless the admin opens it; when open, a user and a
//! read/write token per sign-up, rate limited per address, names checked like `apiary user add`.

mod common;

use apiary_server::{Config, SignupOptions};
use common::{error_code, json, Hub};
use reqwest::Method;
use serde_json::json;

async fn signup(hub: &Hub, body: serde_json::Value) -> (u16, serde_json::Value, Option<String>) {
    let resp = hub.req(Method::POST, "/api/v1/signup", None).json(&body).send().await.unwrap();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = json(resp).await;
    (status, body, retry)
}

#[tokio::test]
async fn closed_by_default() {
    let hub = Hub::start().await;
    let (status, body, _) = signup(&hub, json!({"name": "mallory"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "forbidden");
    assert!(hub.store.get_user("mallory").await.unwrap().is_none(), "no user made");
    // The account page says so.
    let page = hub.req(Method::GET, "/account", None).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("signup-closed") && !page.contains("signup-form"), "{page}");
}

#[tokio::test]
async fn open_signup_gives_a_working_token_and_is_rate_limited() {
    let config = Config { signup: SignupOptions { open: true, per_address_per_hour: 2.0 }, ..Config::default() };
    let hub = Hub::start_with(config).await;
    let page = hub.req(Method::GET, "/account", None).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("signup-form"), "the account page offers sign-up");

    let (status, body, _) = signup(&hub, json!({"name": "alice"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["name"], "alice");
    assert_eq!(body["scopes"], json!(["read", "write"]));
    let token = body["token"].as_str().unwrap().to_owned();
    // The token works: alice makes a feed and publishes to it; she is no admin.
    let (status, made) = json(hub.req(Method::POST, "/api/v1/feeds", Some(&token)).json(&json!({"name": "pots"})).send().await.unwrap()).await;
    assert_eq!(status, 201, "{made}");
    let (status, _) = json(hub.req(Method::GET, "/api/v1/users", Some(&token)).send().await.unwrap()).await;
    assert_eq!(status, 403, "a signed-up user is not an admin");
    // The hub keeps only the token's hash.
    let db = std::fs::read(hub.dir.path().join(apiary_store::sqlite::DB_FILE)).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()), "the token text is not stored");

    // A taken name is a 409; a bad name and a bad body are 422s and cost no sign-up.
    let (status, body, _) = signup(&hub, json!({"name": "alice"})).await;
    assert_eq!(status, 409, "{body}");
    for bad in [json!({"name": "a b/c"}), json!({"name": ""}), json!({"nom": "x"}), json!(["x"])] {
        let (status, body, _) = signup(&hub, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    // The third sign-up from this address within the hour is refused, with when to retry.
    let (status, body, _) = signup(&hub, json!({"name": "bob"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body, retry) = signup(&hub, json!({"name": "carol"})).await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!(retry > 60 && retry <= 3600, "retry after {retry} s");
    assert!(hub.store.get_user("carol").await.unwrap().is_none());
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let config = Config { signup: SignupOptions { open: true, per_address_per_hour: 2.0 }, ..Config::default() };
    let hub = Hub::start_with(config).await;
    let big = json!({"name": "x".repeat(10_000)});
    let (status, body, _) = signup(&hub, big).await;
    assert_eq!(status, 413, "{body}");
}
