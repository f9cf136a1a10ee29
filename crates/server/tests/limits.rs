//! Load and size limits: 413 for big bodies, 429 with Retry-After for rate limits and a full
//! store queue — never a 5xx for load.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use apiary_server::{Config, Rate};
use apiary_store::sqlite::SqliteStore;
use apiary_store::*;
use async_trait::async_trait;
use common::{error_code, json, Hub};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_413_in_json() {
    let hub = Hub::start_with(Config { max_body_bytes: 4096, ..Config::default() }).await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "f", Visibility::Public).await;
    let big: Vec<_> = (0..400).map(|i| json!({"indicator": format!("203.0.113.{}", i % 250)})).collect();
    for path in ["/api/v1/feeds/alice/f/indicators", "/api//users/alice/feeds/f/indicators"] {
        let (status, body) = json(hub.req(Method::POST, path, Some(&alice)).json(&big).send().await.unwrap()).await;
        assert_eq!((status, error_code(&body)), (413, "too_large".to_string()), "{path}");
    }
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/f/indicators", Some(&alice)).json(&big[..10]).send().await.unwrap()).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn per_token_and_per_address_rate_limits_answer_429_with_retry_after() {
    let slow = Rate { per_second: 0.5, burst: 3.0 };
    let hub = Hub::start_with(Config { token_rate: slow, anonymous_rate: slow, ..Config::default() }).await;
    let alice = hub.user("alice", "read").await;
    let bob = hub.user("bob", "read").await;

    for who in [Some(alice.as_str()), None] {
        for _ in 0..3 {
            let resp = hub.req(Method::GET, "/api/v1/feeds", who).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        let resp = hub.req(Method::GET, "/api/v1/feeds", who).send().await.unwrap();
        let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "retry after {retry}");
        let (status, body) = json(resp).await;
        assert_eq!((status, error_code(&body)), (429, "rate_limited".to_string()));
    }
    // Another token has its own bucket; health is never limited.
    assert_eq!(hub.req(Method::GET, "/api/v1/feeds", Some(&bob)).send().await.unwrap().status(), 200);
    assert_eq!(hub.req(Method::GET, "/health", None).send().await.unwrap().status(), 200);
    let metrics = hub.req(Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("apiary_rate_limited_total 2"), "{metrics}");
}

/// A real SqliteStore whose write queue can be made to report full.
struct Saturable {
    inner: SqliteStore,
    full: AtomicBool,
}

#[async_trait]
impl Store for Saturable {
    async fn create_user(&self, name: &str, admin: bool) -> Result<User> {
        self.inner.create_user(name, admin).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        self.inner.get_user(name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.inner.list_users().await
    }
    async fn create_token(&self, user: &str, scopes: Scopes, expires: Option<Timestamp>, label: Option<&str>) -> Result<(TokenInfo, String)> {
        self.inner.create_token(user, scopes, expires, label).await
    }
    async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        self.inner.authenticate(token).await
    }
    async fn list_tokens(&self, user: &str) -> Result<Vec<TokenInfo>> {
        self.inner.list_tokens(user).await
    }
    async fn revoke_token(&self, user: &str, token_id: i64) -> Result<()> {
        self.inner.revoke_token(user, token_id).await
    }
    async fn create_feed(&self, new: NewFeed) -> Result<Feed> {
        self.inner.create_feed(new).await
    }
    async fn get_feed(&self, owner: &str, name: &str) -> Result<Option<Feed>> {
        self.inner.get_feed(owner, name).await
    }
    async fn list_feeds(&self, owner: Option<&str>) -> Result<Vec<Feed>> {
        self.inner.list_feeds(owner).await
    }
    async fn update_feed(&self, owner: &str, name: &str, update: FeedUpdate) -> Result<Feed> {
        self.inner.update_feed(owner, name, update).await
    }
    async fn delete_feed(&self, owner: &str, name: &str) -> Result<()> {
        self.inner.delete_feed(owner, name).await
    }
    async fn grant_feed_access(&self, owner: &str, name: &str, user: &str) -> Result<()> {
        self.inner.grant_feed_access(owner, name, user).await
    }
    async fn has_feed_access(&self, feed_id: i64, user_id: i64) -> Result<bool> {
        self.inner.has_feed_access(feed_id, user_id).await
    }
    async fn append_sightings(&self, batch: Vec<NewSighting>) -> Result<Vec<AppendOutcome>> {
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::Busy);
        }
        self.inner.append_sightings(batch).await
    }
    async fn query(&self, q: &Query) -> Result<Page<FeedRecord>> {
        self.inner.query(q).await
    }
    async fn get_record(&self, id: i64) -> Result<Option<FeedRecord>> {
        self.inner.get_record(id).await
    }
    async fn get_indicator(&self, value: &str) -> Result<Option<IndicatorSummary>> {
        self.inner.get_indicator(value).await
    }
    async fn sightings_of(&self, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>> {
        self.inner.sightings_of(value, feed_ids, limit).await
    }
    async fn stats(&self) -> Result<Stats> {
        self.inner.stats().await
    }
    async fn backup(&self, dest: &Path) -> Result<()> {
        self.inner.backup(dest).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_store_queue_is_429_never_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Saturable { inner: SqliteStore::open(dir.path()).unwrap(), full: AtomicBool::new(false) });
    let hub = Hub::serve(Config::default(), store.clone(), dir).await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "ssh", Visibility::Public).await;
    let body = json!({"indicator": {"indicator": "203.0.113.9", "tags": "ssh"}, "comment": null, "content": null});

    store.full.store(true, Ordering::SeqCst);
    let resp = hub.csirtg(Method::POST, "//users/alice/feeds/ssh/indicators", &alice).json(&body).send().await.unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let (status, reply) = json(resp).await;
    assert_eq!((status, error_code(&reply)), (429, "busy".to_string()));
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/ssh/indicators", Some(&alice)).json(&json!(["203.0.113.9"])).send().await.unwrap()).await;
    assert_eq!(status, 429);

    store.full.store(false, Ordering::SeqCst);
    let (status, _) = json(hub.csirtg(Method::POST, "//users/alice/feeds/ssh/indicators", &alice).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201);
    let metrics = hub.req(Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("apiary_store_busy_rejections_total 2"), "{metrics}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_bodies_are_inflated_and_the_limit_counts_inflated_bytes() {
    let hub = Hub::start_with(Config { max_body_bytes: 4096, ..Config::default() }).await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "f", Visibility::Public).await;
    let path = "/api/v1/feeds/alice/f/indicators";
    let post = |body: Vec<u8>, encoding: &'static str| {
        hub.req(Method::POST, path, Some(&alice))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
    };
    let small = serde_json::to_vec(&json!([{"indicator": "198.51.100.7"}, {"indicator": "example.com"}])).unwrap();
    let (status, body) = json(post(gzip(&small), "gzip").send().await.unwrap()).await;
    assert_eq!((status, body["accepted"].as_i64()), (201, Some(2)), "{body}");

    // A megabyte of spaces inflates far past the 4 KiB limit from a tiny body: 413, not an OOM.
    let mut bomb = b"[".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 1 << 20));
    bomb.extend(b"]");
    let packed = gzip(&bomb);
    assert!(packed.len() < 4096);
    let (status, body) = json(post(packed, "gzip").send().await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (413, "too_large".to_string()), "{body}");

    // Not gzip at all, and an encoding the hub does not read.
    let (status, body) = json(post(b"not gzip".to_vec(), "gzip").send().await.unwrap()).await;
    assert!((400..500).contains(&status), "{status} {body}");
    let (status, body) = json(post(small.clone(), "br").send().await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (415, "unsupported_media_type".to_string()), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn publishes_over_the_item_cap_are_413_naming_it() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "write").await;
    hub.feed("alice", "f", Visibility::Public).await;
    let cap = apiary_server::api::publish::MAX_ITEMS_PER_REQUEST;
    // 200,000 tiny items (the tester's 2M, scaled): refused whole, nothing stored.
    let huge = format!("[{}]", vec!["1"; 200_000].join(","));
    let (status, body) = json(
        hub.req(Method::POST, "/api/v1/feeds/alice/f/indicators", Some(&alice))
            .header("Content-Type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (413, "too_many_items".to_string()));
    assert!(body["error"]["message"].as_str().unwrap().contains(&cap.to_string()), "{body}");
    let bulk = format!("{{\"indicators\":{huge}}}");
    let (status, body) = json(
        hub.req(Method::POST, "/api//users/alice/feeds/f/indicators_bulk", Some(&alice))
            .header("Content-Type", "application/json")
            .body(bulk)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (413, "too_many_items".to_string()));
    assert_eq!(hub.store.stats().await.unwrap().sightings, 0);
    // At the cap it is accepted, and the reply lists each item once.
    let at_cap: Vec<_> = (0..cap).map(|i| json!(format!("10.{}.{}.1", i / 256, i % 256))).collect();
    let resp = hub.req(Method::POST, "/api/v1/feeds/alice/f/indicators", Some(&alice)).json(&at_cap).send().await.unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, 201);
    assert_eq!(body["accepted"].as_u64().unwrap() as usize + body["rejected"].as_array().unwrap().len(), cap);
}

/// The real accept loop (`apiary serve`'s) on an ephemeral port.
async fn serve_http(config: Config) -> std::net::SocketAddr {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let limits = apiary_server::ConnLimits { header_read_timeout: config.header_read_timeout, max_connections: config.max_connections };
    let router = apiary_server::app(apiary_server::AppState::new(config, store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _dir = dir;
        apiary_server::serve_http(listener, router, limits, std::future::pending()).await
    });
    addr
}

/// What the server sends before closing the connection (or within `wait`); `true` if it closed.
async fn read_until_closed(s: &mut tokio::net::TcpStream, wait: std::time::Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_heads_are_closed_oversized_declared_bodies_get_413_without_100_continue_and_connections_are_capped() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let addr = serve_http(Config {
        header_read_timeout: Duration::from_millis(800),
        max_connections: 4,
        max_body_bytes: 4096,
        ..Config::default()
    })
    .await;

    // Expect: 100-continue with a length over the limit: 413 at once, never 100 Continue.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /api/v1/feeds/alice/f/indicators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\nExpect: 100-continue\r\n\r\n").await.unwrap();
    let (reply, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(!reply.contains("100 Continue") && reply.contains("too_large"), "{reply}");

    // A head that never ends is closed after the header read timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "the slow connection is closed");
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());

    // At most 4 connections at once: a fifth is closed on accept; once they go, service resumes.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let _ = fifth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (reply, closed) = read_until_closed(&mut fifth, Duration::from_millis(500)).await;
    assert!(closed && reply.is_empty(), "over the cap: {reply:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(resp.status(), 200);
}
