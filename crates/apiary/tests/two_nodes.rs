//! Two hub nodes sharing one PostgreSQL and one NATS (issue 8, docs/scale-out.md), as real
//! processes: `apiary serve --store postgres://…?schema=S --bus nats://…?stream=N&prefix=P` twice,
//! on two ports. Node A starts first and so takes every job lease (trust scoring, feed comparison,
//! webhooks, the bus feeder); node B joins. A sighting published to A reaches a stream subscriber
//! on B and a webhook; both nodes list the same feed. Then A is killed with SIGKILL and B must
//! take over every lease once it expires, and run the jobs: a sighting published to B afterwards
//! is streamed, delivered to the webhook and scored, and the feed comparison is computed again.
//!
//! PostgreSQL at `APIARY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! NATS at `APIARY_TEST_NATS` (default `nats://127.0.0.1:4222`); each run uses a schema, a stream
//! and subjects of its own, removed afterwards. Without them the test fails under `CI=true` and is
//! skipped, with a note, otherwise.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn pg_url() -> String {
    std::env::var("APIARY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn nats_url() -> String {
    std::env::var("APIARY_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn pg_client() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Both services answer, or why not.
fn services_up() -> Result<(), String> {
    runtime().block_on(async {
        let pg = tokio::time::timeout(Duration::from_secs(5), pg_client()).await;
        match pg {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("PostgreSQL at {}: {e}", pg_url())),
            Err(_) => return Err(format!("PostgreSQL at {}: no answer in 5 s", pg_url())),
        }
        match tokio::time::timeout(Duration::from_secs(5), async_nats::connect(nats_url())).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("NATS at {}: {e}", nats_url())),
            Err(_) => Err(format!("NATS at {}: no answer in 5 s", nats_url())),
        }
    })
}

/// What one run owns in the shared services; removed on drop (also when the test fails).
struct Isolation {
    schema: String,
    stream: String,
    prefix: String,
}

impl Isolation {
    fn new() -> Isolation {
        let tag = format!("{:08x}", rand::random::<u32>());
        Isolation {
            schema: format!("apiary_two_nodes_{tag}"),
            stream: format!("APIARY_TWO_NODES_{tag}"),
            prefix: format!("apiary_two_nodes_{tag}.sightings"),
        }
    }

    fn store_url(&self) -> String {
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}schema={}&pool=4", self.schema)
    }

    fn bus_url(&self) -> String {
        format!("{}?stream={}&prefix={}", nats_url(), self.stream, self.prefix)
    }

    /// `name → holder` of every job lease.
    fn leases(&self) -> Vec<(String, String)> {
        let sql = format!("SELECT name, holder FROM {}.job_leases WHERE expires_at > clock_timestamp() ORDER BY name", self.schema);
        runtime().block_on(async {
            let client = pg_client().await.expect("PostgreSQL");
            client.query(&sql, &[]).await.expect("read job_leases").iter().map(|r| (r.get(0), r.get(1))).collect()
        })
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let (schema, stream) = (self.schema.clone(), self.stream.clone());
        runtime().block_on(async {
            if let Ok(c) = pg_client().await {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
            }
            if let Ok(c) = async_nats::connect(nats_url()).await {
                let _ = async_nats::jetstream::new(c).delete_stream(&stream).await;
            }
        });
    }
}

/// The job leases a hub takes (crates/server: trust, compare, streams; crates/bus: feeder).
const JOBS: [&str; 4] = ["bus-feeder", "feed-comparison", "trust-scoring", "webhooks"];

/// One `apiary serve` node, killed (SIGKILL) on drop; its log is in `log`.
struct Node {
    name: &'static str,
    url: String,
    child: Child,
    log: PathBuf,
}

impl Node {
    fn start(name: &'static str, dir: &Path, store: &str, bus: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let log = dir.join(format!("node-{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apiary"));
        for (k, _) in std::env::vars() {
            if k.starts_with("APIARY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(["serve", "--store", store, "--bus", bus, "--listen", &listen, "--log", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start apiary serve");
        let mut node = Node { name, url: format!("http://{listen}"), child, log };
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node {name} exited ({status}) while starting:\n{}", node.log_text());
            }
            if http.get(format!("{}/api/v1/health", node.url)).send().is_ok_and(|r| r.status().is_success()) {
                return node;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("node {name} did not answer on {listen} within 60 s:\n{}", node.log_text());
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        self.child.wait().expect("reap");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid in a lease holder (`HOST:PID:RANDOM`, apiary_store::node_id).
fn holder_pid(holder: &str) -> &str {
    holder.rsplitn(3, ':').nth(1).unwrap_or("")
}

/// A native stream (`GET /api/v1/stream`, SSE) read on a thread: indicators as they arrive.
fn subscribe(node: &Node, token: &str) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let url = format!("{}/api/v1/stream?feeds=alice/honeypot", node.url);
    let token = token.to_owned();
    std::thread::spawn(move || {
        let http = reqwest::blocking::Client::builder().timeout(None).build().unwrap();
        let Ok(resp) = http.get(url).bearer_auth(token).send() else { return };
        assert!(resp.status().is_success(), "stream: {}", resp.status());
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            let sent = if line.starts_with(": apiary stream") {
                tx.send(String::new()) // ready: subscribed to the bus
            } else if let Some(data) = line.strip_prefix("data: ") {
                let v: Value = serde_json::from_str(data).expect("event JSON");
                match v["indicator"].as_str() {
                    Some(i) => tx.send(i.to_owned()),
                    None => Ok(()),
                }
            } else {
                Ok(())
            };
            if sent.is_err() {
                return;
            }
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("the stream opens"), "", "first line is the opening comment");
    rx
}

/// Wait up to `within` for `indicator` on a stream or webhook channel.
fn expect_on(rx: &mpsc::Receiver<String>, indicator: &str, within: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let left = within.checked_sub(started.elapsed()).unwrap_or_else(|| panic!("{what}: {indicator} did not arrive within {within:?}"));
        match rx.recv_timeout(left) {
            Ok(i) if i == indicator => return started.elapsed(),
            Ok(_) => continue,
            Err(_) => panic!("{what}: {indicator} did not arrive within {within:?}"),
        }
    }
}

/// A webhook receiver on a local port: answers 200 to every POST, sends on the indicators.
fn webhook_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let Ok(v) = serde_json::from_slice::<Value>(&body) else { continue };
            for e in v["events"].as_array().into_iter().flatten() {
                if let Some(i) = e["indicator"].as_str() {
                    if tx.send(i.to_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    (url, rx)
}

fn publish(http: &reqwest::blocking::Client, node: &Node, token: &str, value: &str) {
    let resp = http
        .post(format!("{}/api/v1/feeds/alice/honeypot/indicators", node.url))
        .bearer_auth(token)
        .json(&json!({"indicator": value, "tags": ["scanner"], "portlist": [22], "protocol": "tcp"}))
        .send()
        .unwrap_or_else(|e| panic!("publish to node {}: {e}", node.name));
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert_eq!(status.as_u16(), 201, "publish {value} to node {}: {body}", node.name);
    assert_eq!(body["accepted"], 1, "{body}");
}

fn get(http: &reqwest::blocking::Client, node: &Node, token: &str, path: &str) -> (u16, Value) {
    let resp = http.get(format!("{}{path}", node.url)).bearer_auth(token).send().unwrap_or_else(|e| panic!("GET {path} on {}: {e}", node.name));
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Poll `check` every 250 ms until it gives `Some`, or fail after `within` with `what`.
fn eventually<T>(within: Duration, what: impl Fn() -> String, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("not within {within:?}: {}", what());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A public-looking address unique to this run (special-use ranges are never scored or exported).
fn address(n: u8) -> String {
    let r: u16 = rand::random();
    format!("45.{}.{}.{n}", 100 + (r >> 8) % 100, r & 0xff)
}

#[test]
fn two_nodes_share_the_store_and_the_bus_and_survive_a_killed_node() {
    if let Err(why) = services_up() {
        if ci() {
            panic!("CI=true but {why}: start PostgreSQL and NATS (see .ci/run)");
        }
        eprintln!("skipped: {why} (set APIARY_TEST_POSTGRES / APIARY_TEST_NATS, or start them)");
        return;
    }
    let iso = Isolation::new();
    let tmp = tempfile::tempdir().unwrap();
    let (store, bus) = (iso.store_url(), iso.bus_url());
    ok(&["user", "add", "alice", "--admin", "--store", &store]);
    let token = ok(&["token", "create", "--user", "alice", "--scopes", "read,write", "--store", &store]).lines().last().unwrap().trim().to_owned();
    ok(&["feed", "create", "alice/honeypot", "--store", &store]);
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    // A first: it takes every job lease; then B joins and finds them held.
    let mut a = Node::start("A", tmp.path(), &store, &bus);
    let holds_all = |pid: &str| {
        let leases = iso.leases();
        JOBS.iter().all(|job| leases.iter().any(|(n, h)| n == job && holder_pid(h) == pid))
    };
    eventually(Duration::from_secs(20), || format!("node A holds {:?}, not all of {JOBS:?}", iso.leases()), || {
        holds_all(&a.pid()).then_some(())
    });
    let b = Node::start("B", tmp.path(), &store, &bus);
    let on_b = subscribe(&b, &token);
    let (hook_url, hook) = webhook_receiver();
    let (status, created) = {
        let resp = http
            .post(format!("{}/api/v1/webhooks", a.url))
            .bearer_auth(&token)
            .json(&json!({"url": hook_url, "filter": {"feeds": "alice/honeypot"}}))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    assert_eq!(status, 201, "{created}");

    // Published to A, streamed on B (through PostgreSQL's log, A's feeder and NATS), and pushed.
    let first = address(1);
    publish(&http, &a, &token, &first);
    let took = expect_on(&on_b, &first, Duration::from_secs(10), "the stream on node B");
    eprintln!("A → B stream delivery: {took:?}");
    expect_on(&hook, &first, Duration::from_secs(10), "the webhook (run by node A)");

    // Both nodes serve the same feed (asked again while the scoring job changes the hub's
    // confidence the records carry between the two requests).
    let listing = |node: &Node| get(&http, node, &token, "/api/v1/feeds/alice/honeypot/indicators");
    eventually(Duration::from_secs(20), || format!("node A lists {}\nnode B lists {}", listing(&a).1, listing(&b).1), || {
        let ((sa, feed_a), (sb, feed_b)) = (listing(&a), listing(&b));
        (sa == 200 && sb == 200 && feed_a == feed_b && feed_a.to_string().contains(&first)).then_some(())
    });
    assert!(holds_all(&a.pid()), "A still runs every job: {:?}", iso.leases());

    // Kill A (no shutdown: its leases are not released, they must expire) and keep using B.
    let killed_at = chrono::Utc::now();
    a.kill9();
    let second = address(2);
    publish(&http, &b, &token, &second);
    let took = expect_on(&on_b, &second, Duration::from_secs(40), "the stream on node B after A died");
    eprintln!("stream delivery after the feeder moved: {took:?}");
    expect_on(&hook, &second, Duration::from_secs(40), "the webhook after A died");
    eventually(Duration::from_secs(40), || format!("leases after A died: {:?}\nB's log:\n{}", iso.leases(), b.log_text()), || {
        holds_all(&b.pid()).then_some(())
    });
    // The scoring job (now on B) scores the new value ...
    let score = eventually(
        Duration::from_secs(40),
        || format!("no score for {second} on node B: {}", get(&http, &b, &token, &format!("/api/v1/indicators/{second}")).1),
        || {
            let (status, v) = get(&http, &b, &token, &format!("/api/v1/indicators/{second}"));
            (status == 200 && v["confidence"].is_number()).then_some(v)
        },
    );
    assert!(score["tier"].is_string(), "{score}");
    // ... and the comparison job (now on B) runs again.
    eventually(Duration::from_secs(40), || format!("no comparison after {killed_at}: {}", get(&http, &b, &token, "/api/v1/compare").1), || {
        let (_, v) = get(&http, &b, &token, "/api/v1/compare");
        let at = v["computed_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?;
        (at.timestamp() > killed_at.timestamp()).then_some(())
    });
    let (status, feed) = get(&http, &b, &token, "/api/v1/feeds/alice/honeypot/indicators");
    assert_eq!(status, 200);
    assert!(feed.to_string().contains(&first) && feed.to_string().contains(&second), "{feed}");
}
