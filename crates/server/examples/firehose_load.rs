//! Firehose load: a hub in this process (SQLite in a temp dir), 100 feeds, N subscribers of one
//! feed each plus M unfiltered firehose subscribers (all on the native SSE stream, over real
//! loopback connections), and publishers over the native API. Prints one JSON line per phase:
//!
//! - `ingest_alone`: publish as fast as `--publishers` clients can (100 sightings per request,
//!   feeds in turn) with no subscriber — sightings/s;
//! - `ingest_with_subscribers`: the same with every subscriber connected and reading;
//! - `paced`: `--rate` sightings/s for `--seconds`: delivery latency p50/p99 (hub receive time
//!   → parsed by the subscriber), deliveries/s, lag notices;
//! - `paced_with_stalled`: the same with one more firehose subscriber that never reads.
//!
//! ```text
//! cargo run --release -p apiary-server --example firehose_load -- \
//!     --feed-subscribers 1000 --firehose-subscribers 10 --rate 10000 --seconds 10
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apiary_server::{app, AppState, Config};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, Scopes, Store};
use serde_json::{json, Value};

const FEEDS: usize = 100;
const BATCH: usize = 100;

struct Args {
    feed_subscribers: usize,
    firehose_subscribers: usize,
    rate: u64,
    seconds: u64,
    publishers: usize,
}

fn args() -> Args {
    let mut a = Args { feed_subscribers: 1000, firehose_subscribers: 10, rate: 10_000, seconds: 10, publishers: 4 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < argv.len() {
        let v: u64 = argv[i + 1].parse().unwrap_or_else(|_| panic!("{}: a number", argv[i]));
        match argv[i].as_str() {
            "--feed-subscribers" => a.feed_subscribers = v as usize,
            "--firehose-subscribers" => a.firehose_subscribers = v as usize,
            "--rate" => a.rate = v,
            "--seconds" => a.seconds = v,
            "--publishers" => a.publishers = v as usize,
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    a
}

#[derive(Default)]
struct Stats {
    latencies_us: Mutex<Vec<u64>>,
    deliveries: AtomicU64,
    lags: AtomicU64,
    recording: AtomicBool,
}

/// One SSE subscriber: parse each event's `reporttime`, record the latency while recording.
async fn subscribe(http: reqwest::Client, url: String, token: String, stats: Arc<Stats>, ready: Arc<AtomicU64>) {
    let mut resp = http.get(&url).bearer_auth(&token).send().await.expect("stream");
    assert_eq!(resp.status(), 200);
    ready.fetch_add(1, Ordering::SeqCst);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut local = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        let now = chrono::Utc::now();
        let mut start = 0;
        while let Some(end) = buf[start..].windows(2).position(|w| w == b"\n\n") {
            let block = &buf[start..start + end];
            start += end + 2;
            if block.starts_with(b"event: lagged") || block.windows(13).any(|w| w == b"event: lagged") {
                stats.lags.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let text = std::str::from_utf8(block).unwrap_or("");
            if let Some(i) = text.find("\"reporttime\":\"") {
                let rest = &text[i + 14..];
                if let Some(t) = rest.split('"').next().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
                    stats.deliveries.fetch_add(1, Ordering::Relaxed);
                    if stats.recording.load(Ordering::Relaxed) {
                        local.push((now - t.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0).max(0) as u64);
                    }
                }
            }
        }
        buf.drain(..start);
        if local.len() >= 1024 {
            stats.latencies_us.lock().unwrap().append(&mut local);
        }
    }
}

/// Publish `rate` sightings/s (0: as fast as possible) for `secs`; returns sightings stored.
async fn publish(base: &str, token: &str, publishers: usize, rate: u64, secs: u64, counter: Arc<AtomicU64>) -> (u64, f64) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let stored = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (http, base, token, stored, counter) = (http.clone(), base.to_string(), token.to_string(), stored.clone(), counter.clone());
        // Each publisher sends BATCH per request; paced, it sends every `period`.
        let period = (rate > 0).then(|| Duration::from_secs_f64(BATCH as f64 * publishers as f64 / rate as f64));
        tasks.push(tokio::spawn(async move {
            let mut tick = period.map(|p| tokio::time::interval(p));
            let mut n = p;
            while Instant::now() < deadline {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let c = counter.fetch_add(BATCH as u64, Ordering::Relaxed);
                let items: Vec<Value> = (0..BATCH as u64)
                    .map(|i| {
                        let v = c + i;
                        json!({"indicator": format!("10.{}.{}.{}", (v >> 16) & 255, (v >> 8) & 255, v & 255), "tags": ["scanner"], "portlist": 22})
                    })
                    .collect();
                let feed = n % FEEDS;
                n += publishers;
                let r = http.post(format!("{base}/api/v1/feeds/bench/f{feed}/indicators")).bearer_auth(&token).json(&items).send().await;
                if let Ok(r) = r {
                    if r.status().is_success() {
                        stored.fetch_add(BATCH as u64, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = stored.load(Ordering::Relaxed);
    (n, n as f64 / secs)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store.create_user("bench", true).await.unwrap();
    let (_, token) = store.create_token("bench", Scopes { read: true, write: true, admin: true }, None, None).await.unwrap();
    for f in 0..FEEDS {
        store.create_feed(NewFeed { owner: "bench".into(), name: format!("f{f}"), ..Default::default() }).await.unwrap();
    }
    let config = Config { token_rate: apiary_server::Rate { per_second: 1e9, burst: 1e9 }, ..Config::default() };
    let state = AppState::new(config, store.clone());
    state.streams.start(&state).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(state);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let base = format!("http://{addr}");
    let counter = Arc::new(AtomicU64::new(0));

    let (n, rate) = publish(&base, &token, a.publishers, 0, a.seconds, counter.clone()).await;
    println!("{}", json!({"phase": "ingest_alone", "sightings": n, "per_s": rate.round()}));

    let stats = Arc::new(Stats::default());
    let ready = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for i in 0..a.feed_subscribers {
        let url = format!("{base}/api/v1/stream?feeds=bench/f{}", i % FEEDS);
        tokio::spawn(subscribe(http.clone(), url, token.clone(), stats.clone(), ready.clone()));
    }
    for _ in 0..a.firehose_subscribers {
        tokio::spawn(subscribe(http.clone(), format!("{base}/api/v1/stream"), token.clone(), stats.clone(), ready.clone()));
    }
    let total = (a.feed_subscribers + a.firehose_subscribers) as u64;
    while ready.load(Ordering::SeqCst) < total {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (n, rate) = publish(&base, &token, a.publishers, 0, a.seconds, counter.clone()).await;
    println!("{}", json!({"phase": "ingest_with_subscribers", "subscribers": total, "sightings": n, "per_s": rate.round()}));
    // Let the subscribers drain what that phase queued before the paced phases start.
    let mut last = u64::MAX;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stats.deliveries.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }

    for phase in ["paced", "paced_with_stalled"] {
        let _stalled = if phase == "paced_with_stalled" {
            // Connected, never read: its socket and its bus queue fill up.
            Some(http.get(format!("{base}/api/v1/stream")).bearer_auth(&token).send().await.unwrap())
        } else {
            None
        };
        stats.latencies_us.lock().unwrap().clear();
        stats.lags.store(0, Ordering::SeqCst);
        let before = stats.deliveries.load(Ordering::SeqCst);
        stats.recording.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let (n, rate) = publish(&base, &token, a.publishers, a.rate, a.seconds, counter.clone()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stats.recording.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let secs = started.elapsed().as_secs_f64();
        let mut l = std::mem::take(&mut *stats.latencies_us.lock().unwrap());
        l.sort_unstable();
        let delivered = stats.deliveries.load(Ordering::SeqCst) - before;
        println!(
            "{}",
            json!({
                "phase": phase, "subscribers": total, "target_per_s": a.rate, "sightings": n, "per_s": rate.round(),
                "deliveries": delivered, "deliveries_per_s": (delivered as f64 / secs).round(),
                "expected_deliveries": n * (a.feed_subscribers as u64 / FEEDS as u64 + a.firehose_subscribers as u64),
                "latency_samples": l.len(),
                "p50_ms": percentile(&l, 0.50) as f64 / 1000.0, "p99_ms": percentile(&l, 0.99) as f64 / 1000.0,
                "max_ms": l.last().copied().unwrap_or(0) as f64 / 1000.0,
                "lag_notices": stats.lags.load(Ordering::SeqCst),
            })
        );
    }
    std::process::exit(0);
}
