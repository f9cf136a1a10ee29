//! The streams end to end on a real hub: the native SSE stream (resume, filters), the CSIRTG
//! firehose websocket (ActionCable), authorization on every route, a stalled consumer, and
//! webhooks (signature, retry, pause, resume). Waits are generous; nothing here is a benchmark.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiary_server::streams::webhooks::signature;
use apiary_server::{app, AppState, Config};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, Scopes, Store, Visibility};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

struct Hub {
    base: String,
    addr: SocketAddr,
    store: Arc<dyn Store>,
    admin: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A hub with fast stream timings and webhook deliveries running; `alice` owns the public
/// feed `alice/pots` and the private `alice/secret`.
async fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store.create_user("admin", true).await.unwrap();
    let (_, admin) = store.create_token("admin", Scopes { read: true, write: true, admin: true }, None, None).await.unwrap();
    store.create_user("alice", false).await.unwrap();
    for (name, visibility) in [("pots", Visibility::Public), ("secret", Visibility::Private)] {
        store.create_feed(NewFeed { owner: "alice".into(), name: name.into(), visibility, ..Default::default() }).await.unwrap();
    }
    let mut config = Config::default();
    config.streams.ping = Duration::from_millis(300);
    config.streams.heartbeat = Duration::from_millis(500);
    config.streams.access_refresh = Duration::from_millis(500);
    config.streams.webhooks.first_backoff = Duration::from_millis(50);
    config.streams.webhooks.max_attempts = 3;
    config.streams.webhooks.reconcile = Duration::from_millis(200);
    config.streams.webhooks.linger = Duration::from_millis(50);
    let state = AppState::new(config, store.clone());
    state.streams.start(&state).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(state);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Hub { base: format!("http://{addr}"), addr, store, admin, http: reqwest::Client::new(), _dir: dir }
}

impl Hub {
    async fn token(&self, user: &str, scopes: &str) -> String {
        if self.store.get_user(user).await.unwrap().is_none() {
            self.store.create_user(user, false).await.unwrap();
        }
        self.store.create_token(user, Scopes::parse(scopes).unwrap(), None, None).await.unwrap().1
    }

    /// Publish values to `feed` through the native API (as the admin).
    async fn publish(&self, feed: &str, items: Vec<Value>) {
        let resp = self
            .http
            .post(format!("{}/api/v1/feeds/{feed}/indicators", self.base))
            .bearer_auth(&self.admin)
            .json(&items)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }

    async fn publish_values(&self, feed: &str, values: impl IntoIterator<Item = String>) {
        self.publish(feed, values.into_iter().map(|v| json!({"indicator": v, "tags": ["scanner"]})).collect()).await;
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.get(format!("{}{path}", self.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

fn addr_value(i: u32) -> String {
    format!("198.51.{}.{}", (i >> 8) & 255, i & 255)
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// A reader of an SSE response.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(req: reqwest::RequestBuilder) -> SseReader {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "stream refused");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        SseReader { resp, buf: String::new() }
    }

    /// The next event (comments and heartbeats skipped).
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = Sse { id: None, event: None, data: String::new() };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if ev.event.is_some() || !ev.data.is_empty() {
                    return ev;
                }
                continue;
            }
            let chunk = timeout(WAIT, self.resp.chunk()).await.expect("an SSE event in time").unwrap().expect("stream open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `sighting` event's JSON (fails on anything else, lag notices included).
    async fn sighting(&mut self) -> (i64, Value) {
        let ev = self.next().await;
        assert_eq!(ev.event.as_deref(), Some("sighting"), "{ev:?}");
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        let seq: i64 = ev.id.unwrap().parse().unwrap();
        assert_eq!(v["seq"], seq);
        (seq, v)
    }

    /// Whether another sighting arrives within `wait`.
    async fn quiet_for(&mut self, wait: Duration) -> bool {
        timeout(wait, self.next()).await.is_err()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_last_event_id_replays_exactly_the_missed_ones_in_order() {
    let h = hub().await;
    let mut first = SseReader::open(h.get("/api/v1/stream", Some(&h.admin))).await;
    h.publish_values("alice/pots", ["192.0.2.1".to_string()]).await;
    let (seen, v) = first.sighting().await;
    assert_eq!((v["indicator"].as_str(), v["feed"].as_str(), v["provider"].as_str()), (Some("192.0.2.1"), Some("alice/pots"), Some("alice/pots")));
    drop(first);

    // 1,000 while disconnected.
    h.publish_values("alice/pots", (0..1000).map(addr_value)).await;
    let mut again = SseReader::open(h.get("/api/v1/stream", Some(&h.admin)).header("Last-Event-ID", seen.to_string())).await;
    let mut got = Vec::new();
    for _ in 0..1000 {
        let (seq, v) = again.sighting().await;
        got.push((seq, v["indicator"].as_str().unwrap().to_string()));
    }
    let seqs: Vec<i64> = got.iter().map(|g| g.0).collect();
    assert_eq!(seqs, (seen + 1..=seen + 1000).collect::<Vec<_>>(), "every missed seq once, in order");
    assert_eq!(got.iter().map(|g| g.1.clone()).collect::<Vec<_>>(), (0..1000).map(addr_value).collect::<Vec<_>>());
    // Then live, with nothing repeated in between.
    h.publish_values("alice/pots", ["192.0.2.2".to_string()]).await;
    let (seq, v) = again.sighting().await;
    assert_eq!((seq, v["indicator"].as_str()), (seen + 1001, Some("192.0.2.2")));

    // `?after=` is the same as the header; a bad cursor is a 400.
    let mut by_param = SseReader::open(h.get(&format!("/api/v1/stream?after={}", seen + 999), Some(&h.admin))).await;
    assert_eq!(by_param.sighting().await.0, seen + 1000);
    let bad = h.get("/api/v1/stream?after=x", Some(&h.admin)).send().await.unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_type_tags_confidence_network_and_feeds() {
    let h = hub().await;
    let stream = |q: &str| SseReader::open(h.get(&format!("/api/v1/stream?{q}"), Some(&h.admin)));
    let mut net = stream("network=203.0.113.0/24,2001:db8::/32").await;
    let mut fqdn = stream("itype=fqdn&tags=phishing").await;
    let mut conf = stream("confidence=7").await;
    let mut secret = stream("feeds=alice/secret").await;
    h.publish(
        "alice/pots",
        vec![
            json!({"indicator": "198.51.100.1", "confidence": 9}),
            json!({"indicator": "203.0.113.9", "confidence": 3}),
            json!({"indicator": "bad.example", "tags": ["phishing", "x"]}),
            json!({"indicator": "good.example", "tags": ["x"]}),
            json!({"indicator": "2001:db8::5"}),
        ],
    )
    .await;
    h.publish("alice/secret", vec![json!({"indicator": "203.0.113.10", "confidence": 8})]).await;
    let ind = |v: Value| v["indicator"].as_str().unwrap().to_string();
    assert_eq!(ind(net.sighting().await.1), "203.0.113.9");
    assert_eq!(ind(net.sighting().await.1), "2001:db8::5");
    assert_eq!(ind(net.sighting().await.1), "203.0.113.10");
    assert_eq!(ind(fqdn.sighting().await.1), "bad.example");
    assert_eq!(ind(conf.sighting().await.1), "198.51.100.1");
    assert_eq!(ind(conf.sighting().await.1), "203.0.113.10");
    assert_eq!(ind(secret.sighting().await.1), "203.0.113.10");
    for s in [&mut fqdn, &mut secret] {
        assert!(s.quiet_for(Duration::from_millis(500)).await, "nothing else matches");
    }
    // Refused filters name the problem.
    for (q, status) in [("asn=64496", 422), ("itype=nope", 422), ("network=example.com", 422), ("feeds=alice/nope", 404)] {
        let r = h.get(&format!("/api/v1/stream?{q}"), Some(&h.admin)).send().await.unwrap();
        assert_eq!(r.status(), status, "{q}");
    }
}

/// A websocket to `path` with the CSIRTG header form (no space after the colon is the
/// client's; the header value is the same).
async fn ws(h: &Hub, path: &str, token: Option<&str>) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{}{path}", h.addr).into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("Authorization", format!("Token token={t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.expect("websocket upgrade").0
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = timeout(WAIT, ws.next()).await.expect("a frame in time").expect("open").unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The next ActionCable data frame (pings skipped).
async fn next_message<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let v = next_json(ws).await;
        if v.get("message").is_some() && v.get("type").is_none() {
            return v;
        }
    }
}

const IDENT: &str = "{\"channel\":\"IndicatorsChannel\"}";

async fn subscribe<S>(ws: &mut S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    assert_eq!(next_json(ws).await, json!({"type": "welcome"}));
    ws.send(Message::Text(json!({"command": "subscribe", "identifier": IDENT}).to_string().into())).await.unwrap();
    loop {
        let v = next_json(ws).await;
        if v["type"] == "confirm_subscription" {
            assert_eq!(v["identifier"], IDENT);
            return;
        }
        assert_eq!(v["type"], "ping", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actioncable_firehose_speaks_the_protocol() {
    let h = hub().await;
    let mut fh = ws(&h, "/firehose", Some(&h.admin)).await;
    subscribe(&mut fh).await;
    // Pings carry an epoch.
    loop {
        let v = next_json(&mut fh).await;
        if v["type"] == "ping" {
            assert!(v["message"].as_i64().unwrap() > 1_600_000_000);
            break;
        }
    }
    h.publish("alice/pots", vec![json!({"indicator": "203.0.113.7", "tags": "scanner,ssh", "portlist": "22", "protocol": "tcp"})]).await;
    let v = next_message(&mut fh).await;
    assert_eq!(v["identifier"], IDENT);
    let m = &v["message"];
    assert!(m.is_object(), "message is a JSON object");
    assert_eq!(m["provider"], "alice/pots");
    assert_eq!((m["indicator"].as_str(), m["itype"].as_str()), (Some("203.0.113.7"), Some("ipv4")));
    assert_eq!(m["tags"], json!(["scanner", "ssh"]));
    assert_eq!((m["portlist"].clone(), m["protocol"].clone()), (json!([22]), json!("tcp")));
    assert!(m["firsttime"].is_string() && m["lasttime"].is_string());
    // /api/firehose is the same.
    let mut api = ws(&h, "/api/firehose", Some(&h.admin)).await;
    subscribe(&mut api).await;
    h.publish("alice/pots", vec![json!({"indicator": "203.0.113.8"})]).await;
    assert_eq!(next_message(&mut api).await["message"]["indicator"], "203.0.113.8");
    // A bad token is refused at the handshake.
    let mut req = format!("ws://{}/firehose", h.addr).into_client_request().unwrap();
    req.headers_mut().insert("Authorization", "Token token=wrong".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_sightings_never_reach_a_token_that_cannot_read_them() {
    let h = hub().await;
    let bob = h.token("bob", "read,write").await;
    let carol = h.token("carol", "read").await;
    h.store.grant_feed_access("alice", "secret", "carol").await.unwrap();

    let mut bob_sse = SseReader::open(h.get("/api/v1/stream", Some(&bob))).await;
    let mut anon_sse = SseReader::open(h.get("/api/v1/stream", None)).await;
    let mut carol_sse = SseReader::open(h.get("/api/v1/stream", Some(&carol))).await;
    let mut bob_ws = ws(&h, "/firehose", Some(&bob)).await;
    subscribe(&mut bob_ws).await;
    let mut bob_native_ws = ws(&h, "/api/v1/stream/ws", Some(&bob)).await;
    // Bob's webhook, and his attempts at the private feed by name.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(100);
    let receiver = receiver(tx, Arc::new(AtomicBool::new(true))).await;
    let r = h
        .http
        .post(format!("{}/api/v1/webhooks", h.base))
        .bearer_auth(&bob)
        .json(&json!({"url": format!("http://{receiver}/hook")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(h.get("/api/v1/stream?feeds=alice/secret", Some(&bob)).send().await.unwrap().status(), 404);
    for path in ["/api/v1/stream/ws?feeds=alice/secret", "/firehose?feeds=alice/secret"] {
        let mut req = format!("ws://{}{path}", h.addr).into_client_request().unwrap();
        req.headers_mut().insert("Authorization", format!("Token token={bob}").parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404, "{path}"),
            other => panic!("{path}: {:?}", other.map(|_| ())),
        }
    }
    let r = h
        .http
        .post(format!("{}/api/v1/webhooks", h.base))
        .bearer_auth(&bob)
        .json(&json!({"url": "http://127.0.0.1:9/x", "filter": {"feeds": "alice/secret"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = h.http.post(format!("{}/api/v1/subscriptions", h.base)).bearer_auth(&bob).json(&json!({"feed": "alice/secret"})).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Private first, then public: a reader that must not see the private one gets the public first.
    h.publish("alice/secret", vec![json!({"indicator": "192.0.2.66"})]).await;
    h.publish("alice/pots", vec![json!({"indicator": "192.0.2.77"})]).await;
    assert_eq!(bob_sse.sighting().await.1["indicator"], "192.0.2.77");
    assert_eq!(anon_sse.sighting().await.1["indicator"], "192.0.2.77");
    assert_eq!(next_message(&mut bob_ws).await["message"]["indicator"], "192.0.2.77");
    assert_eq!(next_json(&mut bob_native_ws).await["indicator"], "192.0.2.77");
    let delivery = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    let values: Vec<&str> = delivery["events"].as_array().unwrap().iter().map(|e| e["indicator"].as_str().unwrap()).collect();
    assert_eq!(values, vec!["192.0.2.77"]);
    // Carol was granted access: both, in order.
    assert_eq!(carol_sse.sighting().await.1["indicator"], "192.0.2.66");
    assert_eq!(carol_sse.sighting().await.1["indicator"], "192.0.2.77");

    // A revoked token ends the stream (within a refresh).
    let _ = receiver;
    let bob_info = h.store.list_tokens("bob").await.unwrap();
    h.store.revoke_token("bob", bob_info[0].id).await.unwrap();
    let end = bob_sse.next().await;
    assert_eq!(end.event.as_deref(), Some("end"), "{end:?}");
}

/// A webhook receiver: checks nothing itself, forwards each body (with its signature check
/// result) while `ok` is true, answers 500 otherwise.
async fn receiver(tx: tokio::sync::mpsc::Sender<Value>, ok: Arc<AtomicBool>) -> SocketAddr {
    receiver_with(tx, ok, None).await
}

async fn receiver_with(tx: tokio::sync::mpsc::Sender<Value>, ok: Arc<AtomicBool>, secret: Option<String>) -> SocketAddr {
    use axum::http::{HeaderMap, StatusCode};
    let attempts = Arc::new(Mutex::new(0u32));
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (tx, ok, secret, attempts) = (tx.clone(), ok.clone(), secret.clone(), attempts.clone());
            async move {
                *attempts.lock().unwrap() += 1;
                if !ok.load(Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                if let Some(secret) = secret {
                    let ts: i64 = headers["x-apiary-timestamp"].to_str().unwrap().parse().unwrap();
                    let sig = headers["x-apiary-signature"].to_str().unwrap();
                    assert_eq!(sig, signature(&secret, ts, &body), "signature");
                }
                let _ = tx.send(serde_json::from_slice(&body).unwrap()).await;
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_paused_and_resumed_from_their_cursor() {
    let h = hub().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(100);
    let ok = Arc::new(AtomicBool::new(true));
    let secret = "s3cret-s3cret-s3cret".to_string();
    let addr = receiver_with(tx, ok.clone(), Some(secret.clone())).await;
    let r = h
        .http
        .post(format!("{}/api/v1/webhooks", h.base))
        .bearer_auth(&h.admin)
        .json(&json!({"url": format!("http://{addr}/hook"), "secret": secret, "filter": {"feeds": "alice/pots", "itype": "ipv4"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    let id = hook["id"].as_i64().unwrap();
    assert_eq!(hook["secret"], secret);

    let mut delivered: Vec<String> = Vec::new();
    async fn collect(rx: &mut tokio::sync::mpsc::Receiver<Value>, out: &mut Vec<String>, n: usize) {
        while out.len() < n {
            let body = timeout(WAIT, rx.recv()).await.expect("a delivery in time").unwrap();
            for e in body["events"].as_array().unwrap() {
                out.push(e["indicator"].as_str().unwrap().to_string());
            }
        }
    }
    h.publish_values("alice/pots", (0..5).map(addr_value)).await;
    h.publish("alice/pots", vec![json!({"indicator": "filtered.example"})]).await;
    collect(&mut rx, &mut delivered, 5).await;
    assert_eq!(delivered, (0..5).map(addr_value).collect::<Vec<_>>());

    // The receiver fails: retried, then paused with the error.
    ok.store(false, Ordering::SeqCst);
    h.publish_values("alice/pots", (5..10).map(addr_value)).await;
    let paused = timeout(WAIT, async {
        loop {
            let v: Value = h.get(&format!("/api/v1/webhooks/{id}"), Some(&h.admin)).send().await.unwrap().json().await.unwrap();
            if v["state"] == "paused" {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("paused after repeated failure");
    assert_eq!(paused["failures"], 3);
    assert!(paused["last_error"].as_str().unwrap().contains("500"), "{paused}");
    // Published while paused, then resumed: everything after the cursor, once, in order.
    h.publish_values("alice/pots", (10..15).map(addr_value)).await;
    ok.store(true, Ordering::SeqCst);
    let r = h.http.post(format!("{}/api/v1/webhooks/{id}/resume", h.base)).bearer_auth(&h.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    collect(&mut rx, &mut delivered, 15).await;
    assert_eq!(delivered, (0..15).map(addr_value).collect::<Vec<_>>());
    assert!(timeout(Duration::from_millis(500), rx.recv()).await.is_err(), "nothing repeated");

    // Others may not see or delete it.
    let bob = h.token("bob", "read").await;
    assert_eq!(h.get(&format!("/api/v1/webhooks/{id}"), Some(&bob)).send().await.unwrap().status(), 404);
    let r = h.http.delete(format!("{}/api/v1/webhooks/{id}", h.base)).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = h.http.delete(format!("{}/api/v1/webhooks/{id}", h.base)).bearer_auth(&h.admin).send().await.unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_slows_neither_ingestion_nor_others() {
    let h = hub().await;
    // Stalled: connected, never read.
    let _stalled_sse = h.get("/api/v1/stream", Some(&h.admin)).send().await.unwrap();
    let mut stalled_ws = ws(&h, "/firehose", Some(&h.admin)).await;
    subscribe(&mut stalled_ws).await;
    let mut reader = SseReader::open(h.get("/api/v1/stream", Some(&h.admin))).await;

    const N: u32 = 20_000;
    let publishing = {
        let (base, admin, http) = (h.base.clone(), h.admin.clone(), h.http.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            for chunk in 0..(N / 1000) {
                let items: Vec<Value> = (chunk * 1000..(chunk + 1) * 1000).map(|i| json!({"indicator": addr_value(i), "description": "x".repeat(200)})).collect();
                let r = http.post(format!("{base}/api/v1/feeds/alice/pots/indicators")).bearer_auth(&admin).json(&items).send().await.unwrap();
                assert_eq!(r.status(), 201);
            }
            started.elapsed()
        })
    };
    let mut last = 0;
    let mut lagged = 0;
    let mut got = 0;
    while got < N {
        let ev = reader.next().await;
        match ev.event.as_deref() {
            Some("sighting") => {
                let seq: i64 = ev.id.unwrap().parse().unwrap();
                assert!(seq > last, "in order, no repeats");
                last = seq;
                got += 1;
            }
            Some("lagged") => lagged += 1,
            other => panic!("unexpected event {other:?}"),
        }
    }
    let took = timeout(WAIT, publishing).await.unwrap().unwrap();
    assert!(took < WAIT, "ingestion finished ({took:?}) while two consumers stalled");
    // The active reader may have lagged itself on a busy machine, but it got everything.
    let _ = lagged;
    assert_eq!(h.store.stats().await.unwrap().sightings, i64::from(N));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_feed_and_stream_their_union() {
    let h = hub().await;
    h.store.create_feed(NewFeed { owner: "alice".into(), name: "other".into(), ..Default::default() }).await.unwrap();
    let bob = h.token("bob", "read,write").await;
    for feed in ["alice/pots", "alice/other"] {
        let r = h.http.post(format!("{}/api/v1/subscriptions", h.base)).bearer_auth(&bob).json(&json!({"feed": feed})).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = h.http.delete(format!("{}/api/v1/subscriptions/alice/other", h.base)).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let list: Value = h.get("/api/v1/subscriptions", Some(&bob)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().iter().map(|f| f["feed"].as_str().unwrap()).collect::<Vec<_>>(), vec!["alice/pots"]);
    assert_eq!(h.get("/api/v1/subscriptions", None).send().await.unwrap().status(), 401);

    let mut mine = SseReader::open(h.get("/api/v1/stream?subscriptions=true", Some(&bob))).await;
    h.publish("alice/other", vec![json!({"indicator": "192.0.2.10"})]).await;
    h.publish("alice/pots", vec![json!({"indicator": "192.0.2.11"})]).await;
    assert_eq!(mine.sighting().await.1["indicator"], "192.0.2.11");
    let recs: Value = h.get("/api/v1/subscriptions/indicators", Some(&bob)).send().await.unwrap().json().await.unwrap();
    let values: Vec<&str> = recs["items"].as_array().unwrap().iter().map(|r| r["indicator"].as_str().unwrap()).collect();
    assert_eq!(values, vec!["192.0.2.11"]);
    assert_eq!(h.get("/api/v1/stream?subscriptions=true", None).send().await.unwrap().status(), 401);
}

/// Parameters are checked before a stream opens: a bad tier (a line break included) is a 422
/// naming the accepted values, never a panic, and nothing raw reaches the SSE lines; a cursor
/// past the log's head (which would deliver nothing until the log caught up) is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tier_and_cursors_beyond_the_head_are_refused() {
    let h = hub().await;
    for q in ["tier=x%0Ay", "tier=x%0Dy", "tier=x", "tier=block%0Ax", "tier=%0A%0Aevent:%20sighting"] {
        let r = h.get(&format!("/api/v1/stream?{q}"), Some(&h.admin)).send().await.unwrap();
        assert_eq!(r.status(), 422, "{q}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains("observe, suspicious, block"), "{body}");
        for path in ["/api/v1/stream/ws", "/firehose"] {
            assert_eq!(ws_refusal(&h, &format!("{path}?{q}")).await, 422, "{path}?{q}");
        }
    }
    // A valid tier in any case opens, and the opening comment names it canonically.
    let mut r = h.get("/api/v1/stream?tier=Block", Some(&h.admin)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let first = timeout(WAIT, r.chunk()).await.unwrap().unwrap().unwrap();
    let first = std::str::from_utf8(&first).unwrap();
    assert!(first.starts_with(": apiary stream from seq ") && first.contains("tier BLOCK"), "{first}");
    assert_eq!(first.matches('\n').count(), 2, "one comment line: {first:?}");

    h.publish_values("alice/pots", ["192.0.2.44".to_string()]).await;
    let head = {
        let mut s = SseReader::open(h.get("/api/v1/stream?after=0", Some(&h.admin))).await;
        let mut last = 0;
        while let Ok(ev) = timeout(Duration::from_millis(300), s.next()).await {
            last = ev.id.unwrap().parse::<i64>().unwrap();
        }
        last
    };
    assert!(head > 0);
    // The head itself is a valid cursor (nothing missed); one past it is not.
    let ok = h.get("/api/v1/stream", Some(&h.admin)).header("Last-Event-ID", head.to_string()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    for cursor in [(head + 1).to_string(), i64::MAX.to_string()] {
        let r = h.get("/api/v1/stream", Some(&h.admin)).header("Last-Event-ID", &cursor).send().await.unwrap();
        assert_eq!(r.status(), 422, "Last-Event-ID {cursor}");
        let r = h.get(&format!("/api/v1/stream?after={cursor}"), Some(&h.admin)).send().await.unwrap();
        assert_eq!(r.status(), 422, "after={cursor}");
        assert_eq!(ws_refusal(&h, &format!("/api/v1/stream/ws?after={cursor}")).await, 422, "ws after={cursor}");
    }
    for after in [json!(head + 1), json!(99_999_999_999i64)] {
        let r = h
            .http
            .post(format!("{}/api/v1/webhooks", h.base))
            .bearer_auth(&h.admin)
            .json(&json!({"url": "http://127.0.0.1:9/x", "after": after}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "webhook after {after}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_cursor", "{body}");
    }
}

/// The status of a websocket upgrade to `path` the hub refuses (as the admin).
async fn ws_refusal(h: &Hub, path: &str) -> u16 {
    let mut req = format!("ws://{}{path}", h.addr).into_client_request().unwrap();
    req.headers_mut().insert("Authorization", format!("Token token={}", h.admin).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("{path}: upgraded or failed otherwise: {:?}", other.map(|_| ())),
    }
}
