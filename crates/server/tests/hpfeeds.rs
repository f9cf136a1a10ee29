//! The hpfeeds broker over real TCP, with a raw client written here: authentication, the
//! ident and channel checks, the frame limits, slow subscribers, Cowrie sessions into a feed,
//! new sightings out on `apiary.sightings`, and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use apiary_ingest::hpfeeds::{self as codec, Frame, MAX_FRAME};
use apiary_server::hpfeeds::{Broker, BrokerConfig, Running, AUTH_FAILED, SIGHTINGS_CHANNEL};
use apiary_server::{app, AppState, Config};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, NewHpfeedsIdent, Scopes, Store, Visibility};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    broker: Option<Running>,
    addr: SocketAddr,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// A broker over a fresh store with user `alice`, public feed `alice/pots`, private feed
/// `alice/secret`, and idents: `pot` (publishes cowrie.sessions and `chan` into alice/pots),
/// `pot-private` (cowrie.sessions into alice/secret), `sub` (subscribes to `chan`,
/// cowrie.sessions and apiary.sightings).
async fn setup(adjust: impl FnOnce(&mut BrokerConfig)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store.create_user("alice", false).await.unwrap();
    for (name, visibility) in [("pots", Visibility::Public), ("secret", Visibility::Private)] {
        store
            .create_feed(NewFeed { owner: "alice".into(), name: name.into(), visibility, ..Default::default() })
            .await
            .unwrap();
    }
    let ident = |ident: &str, publish: &[&str], subscribe: &[&str], feed: Option<&str>| NewHpfeedsIdent {
        ident: ident.into(),
        secret: format!("{ident}-secret"),
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        feed: feed.map(str::to_string),
    };
    for new in [
        ident("pot", &["cowrie.sessions", "chan", SIGHTINGS_CHANNEL], &[], Some("alice/pots")),
        ident("pot-private", &["cowrie.sessions"], &[], Some("alice/secret")),
        ident("sub", &[], &["chan", "cowrie.sessions", SIGHTINGS_CHANNEL], None),
        ident("sub2", &[], &["chan"], None),
    ] {
        store.upsert_hpfeeds_ident(new).await.unwrap();
    }
    let mut config = BrokerConfig::new("127.0.0.1:0".parse().unwrap());
    adjust(&mut config);
    let broker = Broker::bind(config, store.clone(), Default::default()).await.unwrap();
    let store = broker.store();
    let running = broker.spawn();
    Setup { addr: running.local_addr(), broker: Some(running), store, _dir: dir }
}

/// A raw hpfeeds client.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    nonce: Vec<u8>,
    ident: String,
}

#[derive(Debug, PartialEq)]
enum Got {
    Error(String),
    Publish { ident: String, channel: String, payload: Vec<u8> },
    Closed,
}

impl Client {
    /// Connect and read INFO.
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut c = Client { stream, buf: Vec::new(), nonce: Vec::new(), ident: String::new() };
        let frame = c.read_raw().await.expect("INFO");
        match codec::decode(&frame).unwrap().unwrap().0 {
            Frame::Info { name, nonce } => {
                assert_eq!(name, "apiary");
                assert_eq!(nonce.len(), 4);
                c.nonce = nonce.to_vec();
            }
            other => panic!("expected INFO, got {other:?}"),
        }
        c
    }

    /// Connect and authenticate with the setup's secret for `ident`.
    async fn login(addr: SocketAddr, ident: &str) -> Client {
        let mut c = Client::connect(addr).await;
        c.auth(ident, &format!("{ident}-secret")).await;
        c
    }

    async fn auth(&mut self, ident: &str, secret: &str) {
        self.ident = ident.to_owned();
        let hash = codec::auth_hash(&self.nonce, secret.as_bytes());
        self.send(&Frame::Auth { ident, hash }).await;
    }

    async fn send(&mut self, frame: &Frame<'_>) {
        self.stream.write_all(&codec::encode_to_vec(frame).unwrap()).await.unwrap();
    }

    async fn publish(&mut self, channel: &str, payload: &[u8]) {
        let ident = self.ident.clone();
        self.send(&Frame::Publish { ident: &ident, channel, payload }).await;
    }

    async fn subscribe(&mut self, channel: &str) {
        let ident = self.ident.clone();
        self.send(&Frame::Subscribe { ident: &ident, channel }).await;
    }

    /// One whole frame, or None when the broker closed the connection.
    async fn read_raw(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Some((_, used))) = codec::decode(&self.buf) {
                return Some(self.buf.drain(..used).collect());
            }
            let mut chunk = vec![0u8; 65536];
            let n = self.stream.read(&mut chunk).await.unwrap_or_default();
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn next(&mut self) -> Got {
        let Some(frame) = timeout(WAIT, self.read_raw()).await.expect("the broker answers in time") else {
            return Got::Closed;
        };
        match codec::decode(&frame).unwrap().unwrap().0 {
            Frame::Error(text) => Got::Error(codec::error_text(text)),
            Frame::Publish { payload, .. } if payload.starts_with(b"sync-") => Box::pin(self.next()).await,
            Frame::Publish { ident, channel, payload } => {
                Got::Publish { ident: ident.into(), channel: channel.into(), payload: payload.to_vec() }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }

    /// Expect an ERROR containing `text`, then the end of the connection.
    async fn expect_error_then_close(&mut self, text: &str) {
        match self.next().await {
            Got::Error(e) => assert!(e.contains(text), "ERROR {e:?} should contain {text:?}"),
            other => panic!("expected ERROR {text:?}, got {other:?}"),
        }
        assert_eq!(self.next().await, Got::Closed);
    }
}

/// Subscriptions are asynchronous (no reply): make sure the broker has handled them by
/// publishing `sync-N` messages on `chan` until the subscriber sees one. [`Client::next`]
/// skips these markers wherever they arrive.
async fn settle(addr: SocketAddr, sub: &mut Client) {
    let mut p = Client::login(addr, "pot").await;
    for n in 0..200 {
        p.publish("chan", format!("sync-{n}").as_bytes()).await;
        if let Ok(Some(frame)) = timeout(Duration::from_millis(50), sub.read_raw()).await {
            if let Ok(Some((Frame::Publish { payload, .. }, _))) = codec::decode(&frame) {
                if payload.starts_with(b"sync-") {
                    return;
                }
            }
            panic!("unexpected frame while settling: {frame:?}");
        }
    }
    panic!("the subscription never took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_publish_reaches_subscribers_with_the_publishers_ident() {
    let s = setup(|_| {}).await;
    let mut sub = Client::login(s.addr, "sub").await;
    sub.subscribe("chan").await;
    let mut sub2 = Client::login(s.addr, "sub2").await;
    sub2.subscribe("chan").await;
    settle(s.addr, &mut sub).await;
    settle(s.addr, &mut sub2).await;

    let mut publisher = Client::login(s.addr, "pot").await;
    for i in 0..100u32 {
        publisher.publish("chan", format!("message {i}").as_bytes()).await;
    }
    for c in [&mut sub, &mut sub2] {
        for i in 0..100u32 {
            let want = Got::Publish { ident: "pot".into(), channel: "chan".into(), payload: format!("message {i}").into_bytes() };
            assert_eq!(c.next().await, want, "in order, with the publisher's ident");
        }
    }
    // Unsubscribed: no more deliveries to sub2; sub still gets them.
    sub2.send(&Frame::Unsubscribe { ident: "sub2", channel: "chan" }).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    publisher.publish("chan", b"after").await;
    assert!(matches!(sub.next().await, Got::Publish { payload, .. } if payload == b"after"));
    assert!(timeout(Duration::from_millis(300), sub2.read_raw()).await.is_err(), "nothing after unsubscribe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_unknown_ident_fail_alike() {
    let s = setup(|_| {}).await;
    let mut c = Client::connect(s.addr).await;
    c.auth("pot", "not-the-secret").await;
    c.expect_error_then_close(AUTH_FAILED).await;

    let mut c = Client::connect(s.addr).await;
    c.auth("nobody", "whatever").await;
    c.expect_error_then_close(AUTH_FAILED).await;

    // A hash for another connection's nonce is refused: the nonce is fresh per connection.
    let first = Client::connect(s.addr).await;
    let mut second = Client::connect(s.addr).await;
    assert_ne!(first.nonce, second.nonce);
    let hash = codec::auth_hash(&first.nonce, b"pot-secret");
    second.send(&Frame::Auth { ident: "pot", hash }).await;
    second.expect_error_then_close(AUTH_FAILED).await;

    let mut c = Client::connect(s.addr).await;
    c.send(&Frame::Subscribe { ident: "sub", channel: "chan" }).await;
    c.expect_error_then_close("First message was not AUTH").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_naming_another_ident_are_refused() {
    let s = setup(|_| {}).await;
    let mut sub = Client::login(s.addr, "sub").await;
    sub.subscribe("chan").await;
    settle(s.addr, &mut sub).await;

    let mut spoofer = Client::login(s.addr, "pot").await;
    spoofer.send(&Frame::Publish { ident: "sub", channel: "chan", payload: b"spoofed" }).await;
    spoofer.expect_error_then_close("Invalid authkey in message, ident=sub").await;

    let mut spoofer = Client::login(s.addr, "sub2").await;
    spoofer.send(&Frame::Subscribe { ident: "sub", channel: SIGHTINGS_CHANNEL }).await;
    spoofer.expect_error_then_close("Invalid authkey in message, ident=sub").await;

    assert!(timeout(Duration::from_millis(300), sub.read_raw()).await.is_err(), "the spoofed message was not relayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_limited_to_the_idents_lists() {
    let s = setup(|_| {}).await;
    let mut c = Client::login(s.addr, "pot").await;
    c.publish("dionaea.capture", b"x").await;
    c.expect_error_then_close("not allowed to pub here").await;

    let mut c = Client::login(s.addr, "sub").await;
    c.publish("chan", b"x").await;
    c.expect_error_then_close("not allowed to pub here").await;

    let mut c = Client::login(s.addr, "sub2").await;
    c.subscribe("cowrie.sessions").await;
    c.expect_error_then_close("not allowed to sub here").await;

    // Only the hub publishes sightings, even for an ident that lists the channel.
    let mut c = Client::login(s.addr, "pot").await;
    c.publish(SIGHTINGS_CHANNEL, b"{}").await;
    c.expect_error_then_close("not allowed to pub here").await;

    // AUTH twice is refused.
    let mut c = Client::login(s.addr, "pot").await;
    c.auth("pot", "pot-secret").await;
    c.expect_error_then_close("Already authenticated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_and_bad_opcodes_close_the_connection() {
    let s = setup(|_| {}).await;
    let header = |len: u32, op: u8| {
        let mut v = len.to_be_bytes().to_vec();
        v.push(op);
        v
    };
    // An oversize PUBLISH is refused from its header, before any body arrives.
    let mut c = Client::login(s.addr, "pot").await;
    c.stream.write_all(&header(MAX_FRAME as u32 + 1, 3)).await.unwrap();
    c.expect_error_then_close("over the limit").await;

    // AUTH over 281 bytes, before authentication.
    let mut c = Client::connect(s.addr).await;
    c.stream.write_all(&header(282, 2)).await.unwrap();
    c.expect_error_then_close("over the limit").await;

    for op in [6u8, 7, 255] {
        let mut c = Client::login(s.addr, "pot").await;
        c.stream.write_all(&header(5, op)).await.unwrap();
        c.expect_error_then_close("unknown opcode").await;
    }

    let mut c = Client::login(s.addr, "pot").await;
    c.stream.write_all(&header(3, 3)).await.unwrap();
    c.expect_error_then_close("shorter than its 5-byte header").await;

    // A PUBLISH whose channel string runs past the frame.
    let mut c = Client::login(s.addr, "pot").await;
    let mut bad = header(10, 3);
    bad.extend_from_slice(b"\x03pot\x09");
    c.stream.write_all(&bad).await.unwrap();
    c.expect_error_then_close("runs past the end").await;

    // The largest allowed PUBLISH goes through.
    let mut sub = Client::login(s.addr, "sub").await;
    sub.subscribe("chan").await;
    settle(s.addr, &mut sub).await;
    let mut p = Client::login(s.addr, "pot").await;
    let payload = vec![b'x'; MAX_FRAME - 5 - 1 - 3 - 1 - 4];
    p.publish("chan", &payload).await;
    assert!(matches!(sub.next().await, Got::Publish { payload: got, .. } if got.len() == payload.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_dropped_without_stalling_the_publisher() {
    let s = setup(|c| c.max_queued_bytes = 4 * 1024 * 1024).await;
    let mut slow = Client::login(s.addr, "sub2").await;
    slow.subscribe("chan").await;
    settle(s.addr, &mut slow).await;
    let mut fast = Client::login(s.addr, "sub").await;
    fast.subscribe("chan").await;
    settle(s.addr, &mut fast).await;

    // 48 MiB through the broker, far beyond the slow reader's socket buffers and its 4 MiB budget,
    // at a pace the fast reader keeps up with (even in a debug build).
    const N: usize = 12_288;
    let payload = vec![b'p'; 4096];
    let publisher = tokio::spawn(async move {
        let mut p = Client::login(s.addr, "pot").await;
        for i in 0..N {
            p.publish("chan", &payload).await;
            if i % 16 == 15 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        p.publish("chan", b"last").await;
        p
    });
    let reader = tokio::spawn(async move {
        let mut n = 0;
        loop {
            match fast.next().await {
                Got::Publish { payload, .. } if payload == b"last" => return n,
                Got::Publish { .. } => n += 1,
                other => panic!("fast subscriber got {other:?}"),
            }
        }
    });
    let _publisher = timeout(Duration::from_secs(60), publisher).await.expect("the publisher is not stalled").unwrap();
    let got = timeout(Duration::from_secs(60), reader).await.expect("the fast subscriber gets everything").unwrap();
    assert_eq!(got, N);

    // The slow one was disconnected: what it can still read ends with the connection closing.
    let closed = timeout(Duration::from_secs(30), async {
        loop {
            if slow.read_raw().await.is_none() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the slow subscriber's connection was closed");
}

/// A message as Cowrie's output_hpfeeds3 publishes it.
fn cowrie_session(session: &str, ip: &str) -> Vec<u8> {
    json!({
        "session": session, "startTime": "2026-12-01T10:00:00.000000Z", "endTime": "2026-12-01T10:00:05.000000Z",
        "peerIP": ip, "peerPort": 40001, "hostIP": "10.0.0.5", "hostPort": 22,
        "loggedin": ["root", "toor"], "credentials": [["root", "123456"]], "commands": ["uname -a"],
        "unknownCommands": [], "urls": [], "version": "SSH-2.0-libssh2_1.9.0", "ttylog": null,
        "hashes": [], "protocol": "ssh"
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cowrie_sessions_become_sightings_and_go_out_on_apiary_sightings() {
    let s = setup(|_| {}).await;
    let mut watcher = Client::login(s.addr, "sub").await;
    watcher.subscribe(SIGHTINGS_CHANNEL).await;
    watcher.subscribe("cowrie.sessions").await;
    watcher.subscribe("chan").await;
    settle(s.addr, &mut watcher).await;

    let mut pot = Client::login(s.addr, "pot").await;
    let msg = cowrie_session("aaaaaaaaaaaa", "203.0.113.50");
    pot.publish("cowrie.sessions", &msg).await;
    // The raw message is relayed, then the sighting follows as JSON.
    assert_eq!(
        watcher.next().await,
        Got::Publish { ident: "pot".into(), channel: "cowrie.sessions".into(), payload: msg.clone() }
    );
    let Got::Publish { ident, channel, payload } = watcher.next().await else { panic!("no sighting") };
    assert_eq!((ident.as_str(), channel.as_str()), ("apiary", SIGHTINGS_CHANNEL));
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["indicator"], "203.0.113.50");
    assert_eq!(v["itype"], "ipv4");
    assert_eq!(v["feed"], "alice/pots");
    // As stored (the channel is fed from the sightings log, which keeps tags sorted).
    assert_eq!(v["tags"], json!(["bruteforce", "commands", "login"]));
    assert_eq!(v["portlist"], json!([22]));
    assert_eq!(v["protocol"], "ssh");
    assert_eq!(v["sensor"], "pot");
    assert_eq!(v["firsttime"], "2026-12-01T10:00:00Z");
    assert_eq!(v["lasttime"], "2026-12-01T10:00:05Z");

    // Durable in the feed, with the sensor = the ident.
    let seen = s.store.sightings_of("203.0.113.50", None, 10).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].feed.as_str(), seen[0].sensor.as_deref()), ("alice/pots", Some("pot")));
    assert_eq!(seen[0].extra["loggedin"], json!(["root", "toor"]));

    // The same message again adds nothing (and announces nothing).
    pot.publish("cowrie.sessions", &msg).await;
    assert!(matches!(watcher.next().await, Got::Publish { channel, .. } if channel == "cowrie.sessions"));
    settle(s.addr, &mut watcher).await;
    assert_eq!(s.store.sightings_of("203.0.113.50", None, 10).await.unwrap().len(), 1);

    // A private feed's sightings are recorded but not announced: once it is stored, the next
    // announcement is of a later public session.
    let mut private = Client::login(s.addr, "pot-private").await;
    private.publish("cowrie.sessions", &cowrie_session("bbbbbbbbbbbb", "198.51.100.77")).await;
    assert!(matches!(watcher.next().await, Got::Publish { channel, .. } if channel == "cowrie.sessions"));
    let seen = timeout(WAIT, async {
        loop {
            let seen = s.store.sightings_of("198.51.100.77", None, 10).await.unwrap();
            if !seen.is_empty() {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the private session is recorded");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].feed, "alice/secret");
    pot.publish("cowrie.sessions", &cowrie_session("cccccccccccc", "203.0.113.51")).await;
    assert!(matches!(watcher.next().await, Got::Publish { channel, .. } if channel == "cowrie.sessions"));
    let Got::Publish { payload, .. } = watcher.next().await else { panic!("no sighting") };
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["indicator"], "203.0.113.51", "the private feed's sighting was not announced");

    // A message that is not a session is relayed but records nothing, and the broker goes on.
    pot.publish("cowrie.sessions", b"not json").await;
    assert!(matches!(watcher.next().await, Got::Publish { payload, .. } if payload == b"not json"));
    settle(s.addr, &mut watcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_published_over_http_reach_apiary_sightings() {
    let s = setup(|_| {}).await;
    s.store.create_user("admin", true).await.unwrap();
    let scopes = Scopes { read: true, write: true, admin: true };
    let (_, token) = s.store.create_token("admin", scopes, None, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let router = app(AppState::new(Config::default(), s.store.clone()));
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });

    let mut watcher = Client::login(s.addr, "sub").await;
    watcher.subscribe(SIGHTINGS_CHANNEL).await;
    watcher.subscribe("chan").await;
    settle(s.addr, &mut watcher).await;

    let resp = reqwest::Client::new()
        .post(format!("http://{http}/api/v1/feeds/alice/pots/indicators"))
        .bearer_auth(&token)
        .json(&json!({"indicator": "EXAMPLE-bad.net", "tags": ["phishing"], "portlist": "443"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let Got::Publish { channel, payload, .. } = watcher.next().await else { panic!("no sighting") };
    assert_eq!(channel, SIGHTINGS_CHANNEL);
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!((v["indicator"].as_str(), v["itype"].as_str()), (Some("example-bad.net"), Some("fqdn")));
    assert_eq!(v["tags"], json!(["phishing"]));
    assert_eq!(v["portlist"], json!([443]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_and_graceful_shutdown() {
    let mut s = setup(|c| c.max_connections = 2).await;
    let mut a = Client::login(s.addr, "sub").await;
    a.subscribe("chan").await;
    let b = Client::login(s.addr, "sub2").await;
    // A third connection waits for a free slot: no INFO yet.
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let mut byte = [0u8; 1];
    assert!(timeout(Duration::from_millis(300), third.read(&mut byte)).await.is_err(), "over the limit: not served yet");
    drop(b);
    let n = timeout(WAIT, third.read(&mut byte)).await.expect("served once a slot is free").unwrap();
    assert_eq!(n, 1);
    drop(third);

    let started = std::time::Instant::now();
    timeout(WAIT, s.broker.take().unwrap().shutdown()).await.expect("shutdown finishes");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(a.next().await, Got::Closed, "open connections are closed");
    assert!(TcpStream::connect(s.addr).await.is_err(), "no longer listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auths_are_limited_per_address() {
    let s = setup(|c| c.auth_failures = apiary_server::Rate { per_second: 0.01, burst: 5.0 }).await;
    for _ in 0..5 {
        let mut c = Client::connect(s.addr).await;
        c.auth("pot", "guess").await;
        c.expect_error_then_close(AUTH_FAILED).await;
    }
    // Past the burst even the right secret is refused unchecked, with an ERROR, then closed.
    for secret in ["guess", "pot-secret"] {
        let mut c = Client::connect(s.addr).await;
        c.auth("pot", secret).await;
        c.expect_error_then_close("Too many failed authentications").await;
    }
}
