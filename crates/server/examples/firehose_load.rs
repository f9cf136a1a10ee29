//! Firehose load: the hub in a child process (SQLite in a temp dir, 100 feeds, default stream
//! settings) and the load generator in this one: N native SSE subscribers of one feed each
//! plus M unfiltered ones (real loopback connections), and publishers over the native API
//! (100 sightings per `POST /api/v1/feeds/{feed}/indicators`, feeds in turn). Both processes
//! share the machine's cores; each phase reports the CPU time each used.
//!
//! The subscribers are as cheap as a real client needs to be: raw TCP, the chunked body decoded
//! and the events counted by scanning lines; the latency (hub receive time `reporttime` → the
//! event read by the subscriber) is taken from every `--sample`-th seq. Phases, one JSON line
//! each:
//!
//! - `ingest_alone`: publish as fast as `--publishers` clients can with no subscriber;
//! - `ingest_with_subscribers`: the same with every subscriber connected and reading;
//! - `paced`: `--rate` sightings/s for `--seconds`: latency p50/p99, deliveries/s, lag notices;
//! - `paced_with_stalled`: the same with one more unfiltered subscriber that never reads.
//!
//! ```text
//! cargo build --release -p apiary-server --example firehose_load
//! ./target/release/examples/firehose_load --feed-subscribers 1000 --firehose-subscribers 10 --rate 10000 --seconds 10
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apiary_server::{app, AppState, Config};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, Scopes, Store};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FEEDS: usize = 100;
const BATCH: usize = 100;

struct Args {
    feed_subscribers: usize,
    firehose_subscribers: usize,
    rate: u64,
    seconds: u64,
    publishers: usize,
    sample: u64,
}

fn args(argv: &[String]) -> Args {
    let mut a = Args { feed_subscribers: 1000, firehose_subscribers: 10, rate: 10_000, seconds: 10, publishers: 4, sample: 4 };
    let mut i = 0;
    while i < argv.len() {
        let flag = argv[i].as_str();
        let Some(v) = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok()) else {
            eprintln!("{flag}: expected a number after it");
            std::process::exit(2);
        };
        match flag {
            "--feed-subscribers" => a.feed_subscribers = v as usize,
            "--firehose-subscribers" => a.firehose_subscribers = v as usize,
            "--rate" => a.rate = v,
            "--seconds" => a.seconds = v,
            "--publishers" => a.publishers = v.max(1) as usize,
            "--sample" => a.sample = v.max(1),
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("hub") {
        hub();
        return;
    }
    drive(args(&argv));
}

/// The child: a hub on a free port; prints `{"addr", "token"}`, serves until stdin closes.
fn hub() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
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
        println!("{}", json!({"addr": addr.to_string(), "token": token}));
        std::io::stdout().flush().unwrap();
        // Until the driver closes our stdin (or dies).
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
        drop(dir);
    });
    std::process::exit(0);
}

/// CPU seconds (user + system) a process has used, from /proc (Linux; 100 ticks a second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Stats {
    latencies_us: Mutex<Vec<u64>>,
    deliveries: AtomicU64,
    lags: AtomicU64,
    recording: AtomicBool,
}

/// A chunked transfer-encoding decoder (RFC 9112 §7.1), enough for a hub's SSE body.
enum Chunked {
    Size,
    Data(usize),
    Crlf,
    Done,
}

impl Chunked {
    /// Pass the data in `raw` to `out`; returns the bytes consumed.
    fn decode(&mut self, raw: &[u8], out: &mut impl FnMut(&[u8])) -> usize {
        let mut pos = 0;
        loop {
            match *self {
                Chunked::Size => {
                    let Some(nl) = raw[pos..].iter().position(|&b| b == b'\n') else { return pos };
                    let hex: String = raw[pos..pos + nl].iter().map(|&b| b as char).take_while(char::is_ascii_hexdigit).collect();
                    pos += nl + 1;
                    let n = usize::from_str_radix(&hex, 16).unwrap_or(0);
                    *self = if n == 0 { Chunked::Done } else { Chunked::Data(n) };
                }
                Chunked::Data(n) => {
                    let take = n.min(raw.len() - pos);
                    if take == 0 {
                        return pos;
                    }
                    out(&raw[pos..pos + take]);
                    pos += take;
                    *self = if take == n { Chunked::Crlf } else { Chunked::Data(n - take) };
                }
                Chunked::Crlf => {
                    if raw.len() - pos < 2 {
                        return pos;
                    }
                    pos += 2;
                    *self = Chunked::Size;
                }
                Chunked::Done => return raw.len(),
            }
        }
    }
}

/// Counts SSE events line by line; parses `reporttime` of every `sample`-th seq only.
struct SseScan {
    carry: Vec<u8>,
    sample: u64,
    sampled: bool,
    events: u64,
    lags: u64,
    latencies_us: Vec<u64>,
    now_us: i64,
}

impl SseScan {
    fn feed(&mut self, mut data: &[u8]) {
        if !self.carry.is_empty() {
            let Some(i) = data.iter().position(|&b| b == b'\n') else {
                self.carry.extend_from_slice(data);
                return;
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&data[..i]);
            self.line(&line);
            data = &data[i + 1..];
        }
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            self.line(&data[..i]);
            data = &data[i + 1..];
        }
        self.carry.extend_from_slice(data);
    }

    fn line(&mut self, line: &[u8]) {
        if let Some(id) = line.strip_prefix(b"id: ") {
            self.events += 1;
            let seq = std::str::from_utf8(id).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(1);
            self.sampled = seq % self.sample == 0;
        } else if self.sampled && line.starts_with(b"data: ") {
            self.sampled = false;
            let text = std::str::from_utf8(line).unwrap_or("");
            let Some(i) = text.find("\"reporttime\":\"") else { return };
            let rest = &text[i + 14..];
            let t = rest.split('"').next().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if let Some(t) = t {
                self.latencies_us.push((self.now_us - t.timestamp_micros()).max(0) as u64);
            }
        } else if line == b"event: lagged" {
            self.lags += 1;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One SSE subscriber over a raw connection.
async fn subscriber(addr: SocketAddr, path: String, token: String, stats: Arc<Stats>, ready: Arc<AtomicU64>, sample: u64) {
    let mut sock = TcpStream::connect(addr).await.expect("connect to the hub");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n");
    sock.write_all(req.as_bytes()).await.expect("send the request");
    let mut raw: Vec<u8> = Vec::with_capacity(256 * 1024);
    let chunked = loop {
        if sock.read_buf(&mut raw).await.expect("read the response") == 0 {
            panic!("the hub closed the stream before its headers");
        }
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "stream refused: {head}");
            raw.drain(..end + 4);
            break head.contains("transfer-encoding: chunked");
        }
    };
    ready.fetch_add(1, Ordering::SeqCst);
    let mut dec = if chunked { Chunked::Size } else { Chunked::Data(usize::MAX) };
    let mut scan = SseScan { carry: Vec::new(), sample, sampled: false, events: 0, lags: 0, latencies_us: Vec::new(), now_us: 0 };
    loop {
        if !raw.is_empty() {
            scan.now_us = chrono::Utc::now().timestamp_micros();
            let used = dec.decode(&raw, &mut |d| scan.feed(d));
            raw.drain(..used);
            stats.deliveries.fetch_add(std::mem::take(&mut scan.events), Ordering::Relaxed);
            stats.lags.fetch_add(std::mem::take(&mut scan.lags), Ordering::Relaxed);
            if !scan.latencies_us.is_empty() {
                if stats.recording.load(Ordering::Relaxed) {
                    stats.latencies_us.lock().unwrap().append(&mut scan.latencies_us);
                } else {
                    scan.latencies_us.clear();
                }
            }
        }
        if raw.capacity() - raw.len() < 64 * 1024 {
            raw.reserve(256 * 1024);
        }
        match sock.read_buf(&mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Connected and never read: its socket buffers and its bus queue fill up.
async fn stalled(addr: SocketAddr, token: &str) -> TcpStream {
    let mut sock = TcpStream::connect(addr).await.expect("connect to the hub");
    let req = format!("GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    sock.write_all(req.as_bytes()).await.expect("send the request");
    sock
}

/// Publish `rate` sightings/s (0: as fast as possible) for `secs`; returns (stored, per second).
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
            let mut tick = period.map(tokio::time::interval);
            let mut n = p;
            while Instant::now() < deadline {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let c = counter.fetch_add(BATCH as u64, Ordering::Relaxed);
                let mut body = String::with_capacity(BATCH * 64);
                body.push('[');
                for v in c..c + BATCH as u64 {
                    if v > c {
                        body.push(',');
                    }
                    let (a, b, d) = ((v >> 16) & 255, (v >> 8) & 255, v & 255);
                    body.push_str(&format!(r#"{{"indicator":"10.{a}.{b}.{d}","tags":["scanner"],"portlist":22}}"#));
                }
                body.push(']');
                let feed = n % FEEDS;
                n += publishers;
                let r = http
                    .post(format!("{base}/api/v1/feeds/bench/f{feed}/indicators"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                if matches!(&r, Ok(r) if r.status().is_success()) {
                    stored.fetch_add(BATCH as u64, Ordering::Relaxed);
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

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

/// CPU seconds used by the hub and by this load generator since `from`.
struct Cpu {
    hub: u32,
    hub_at: f64,
    me_at: f64,
}

impl Cpu {
    fn start(hub: u32) -> Cpu {
        Cpu { hub, hub_at: cpu_seconds(hub), me_at: cpu_seconds(std::process::id()) }
    }

    fn used(&self) -> Value {
        let hub = cpu_seconds(self.hub) - self.hub_at;
        let me = cpu_seconds(std::process::id()) - self.me_at;
        json!({"hub_cpu_s": (hub * 100.0).round() / 100.0, "load_cpu_s": (me * 100.0).round() / 100.0, "loadavg": loadavg()})
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

fn spawn_hub() -> (Child, SocketAddr, String) {
    let mut child = Command::new(std::env::current_exe().expect("this program's path"))
        .arg("hub")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the hub");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("the hub's stdout")).read_line(&mut line).expect("the hub's address");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("the hub said {line:?}: {e}"));
    let addr = v["addr"].as_str().and_then(|a| a.parse().ok()).expect("an address");
    (child, addr, v["token"].as_str().unwrap_or_default().to_string())
}

fn drive(a: Args) {
    let (mut child, addr, token) = spawn_hub();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(phases(&a, addr, &token, child.id()));
    drop(child.stdin.take());
    let _ = child.wait();
}

async fn phases(a: &Args, addr: SocketAddr, token: &str, hub_pid: u32) {
    let base = format!("http://{addr}");
    let counter = Arc::new(AtomicU64::new(0));

    let cpu = Cpu::start(hub_pid);
    let (n, rate) = publish(&base, token, a.publishers, 0, a.seconds, counter.clone()).await;
    println!("{}", merge(json!({"phase": "ingest_alone", "sightings": n, "per_s": rate.round()}), cpu.used()));

    let stats = Arc::new(Stats::default());
    let ready = Arc::new(AtomicU64::new(0));
    for i in 0..a.feed_subscribers {
        let path = format!("/api/v1/stream?feeds=bench/f{}", i % FEEDS);
        tokio::spawn(subscriber(addr, path, token.to_string(), stats.clone(), ready.clone(), a.sample));
    }
    for _ in 0..a.firehose_subscribers {
        tokio::spawn(subscriber(addr, "/api/v1/stream".into(), token.to_string(), stats.clone(), ready.clone(), a.sample));
    }
    let total = (a.feed_subscribers + a.firehose_subscribers) as u64;
    while ready.load(Ordering::SeqCst) < total {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let cpu = Cpu::start(hub_pid);
    let before = stats.deliveries.load(Ordering::SeqCst);
    let (n, rate) = publish(&base, token, a.publishers, 0, a.seconds, counter.clone()).await;
    let during = stats.deliveries.load(Ordering::SeqCst) - before;
    println!(
        "{}",
        merge(
            json!({"phase": "ingest_with_subscribers", "subscribers": total, "sightings": n, "per_s": rate.round(),
                   "delivered_during": during, "lag_notices": stats.lags.load(Ordering::SeqCst)}),
            cpu.used()
        )
    );
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

    let per_sighting = (a.feed_subscribers / FEEDS + a.firehose_subscribers) as u64;
    for phase in ["paced", "paced_with_stalled"] {
        let _stalled = if phase == "paced_with_stalled" { Some(stalled(addr, token).await) } else { None };
        stats.latencies_us.lock().unwrap().clear();
        stats.lags.store(0, Ordering::SeqCst);
        let before = stats.deliveries.load(Ordering::SeqCst);
        let cpu = Cpu::start(hub_pid);
        stats.recording.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let (n, rate) = publish(&base, token, a.publishers, a.rate, a.seconds, counter.clone()).await;
        let published_in = started.elapsed().as_secs_f64();
        // Whatever is still on its way arrives now (or shows as missing).
        let expected = n * per_sighting;
        let wait_until = Instant::now() + Duration::from_secs(5);
        while stats.deliveries.load(Ordering::SeqCst) - before < expected && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stats.recording.store(false, Ordering::SeqCst);
        let used = cpu.used();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut l = std::mem::take(&mut *stats.latencies_us.lock().unwrap());
        l.sort_unstable();
        let delivered = stats.deliveries.load(Ordering::SeqCst) - before;
        println!(
            "{}",
            merge(
                json!({
                    "phase": phase, "subscribers": total, "target_per_s": a.rate, "sightings": n, "per_s": rate.round(),
                    "deliveries": delivered, "expected_deliveries": expected,
                    "deliveries_per_s": (delivered as f64 / published_in).round(),
                    "latency_samples": l.len(), "p50_ms": percentile(&l, 0.50), "p99_ms": percentile(&l, 0.99),
                    "max_ms": l.last().copied().unwrap_or(0) as f64 / 1000.0,
                    "lag_notices": stats.lags.load(Ordering::SeqCst),
                }),
                used
            )
        );
    }
}
