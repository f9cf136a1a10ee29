//! Store benchmark: bulk append, concurrent durable single appends, value lookups.
//!
//! ```text
//! cargo run --release -p apiary-store --example bench_store -- [--events N] [--batch N]
//!     [--clients N] [--seconds S] [--lookups N] [--durability full|normal]
//!     [--writer-cache-mib N] [--dir DIR]
//! ```
//!
//! Phases, on a fresh store (a temp dir unless `--dir`):
//! 1. bulk, repeats: N sightings of N/10 addresses (a honeypot log: each attacker seen often);
//! 2. bulk, distinct: N sightings of N new addresses (leaves N + N/10 indicators stored);
//! 3. bulk, bursts: N sightings in runs of 20 per address (an attacker's sessions come in
//!    bursts in a honeypot log);
//! 4. concurrent: `--clients` tasks each appending one sighting at a time for `--seconds`,
//!    every reply durable (the configured durability), latency per append;
//! 5. lookups: random stored values, one at a time: `query(value)` as an anonymous reader and
//!    `get_indicator(value)`.

use apiary_core::IType;
use apiary_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use apiary_store::*;
use chrono::{Duration as Span, TimeZone, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    events: usize,
    batch: usize,
    clients: usize,
    seconds: u64,
    lookups: usize,
    durability: Durability,
    writer_cache_mib: Option<i64>,
    dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 1_000_000,
        batch: 10_000,
        clients: 32,
        seconds: 10,
        lookups: 20_000,
        durability: Durability::Normal,
        writer_cache_mib: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => a.events = value().parse().expect("--events N"),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--clients" => a.clients = value().parse().expect("--clients N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds S"),
            "--lookups" => a.lookups = value().parse().expect("--lookups N"),
            "--durability" => {
                let v = value();
                a.durability = Durability::parse(&v).unwrap_or_else(|| panic!("--durability full|normal, not {v}"))
            }
            "--dir" => a.dir = Some(value().into()),
            "--writer-cache-mib" => a.writer_cache_mib = Some(value().parse().expect("--writer-cache-mib N")),
            other => panic!("unknown argument {other}; see the doc comment of bench_store.rs"),
        }
    }
    a
}

/// The `i`-th address of a scattered sequence (an odd multiplier permutes 2^24), so index
/// inserts land all over the key space as real attacker addresses do.
fn addr(base: u32, i: u64) -> String {
    let x = (i.wrapping_mul(2_654_435_761) & 0xff_ffff) as u32 | (base << 24);
    std::net::Ipv4Addr::from(x).to_string()
}

const TAGS: [&str; 5] = ["scanner", "bruteforce", "login", "commands", "download"];

fn sighting(feed: &Feed, user: &User, value: String, i: u64) -> NewSighting {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Span::seconds((i % 2_000_000) as i64);
    NewSighting {
        feed_id: feed.id,
        reporter_id: user.id,
        itype: IType::Ipv4,
        value,
        reserved: None,
        observed_at: at,
        observed_until: None,
        received_at: Utc::now(),
        tags: vec![TAGS[(i % 5) as usize].to_string()],
        ports: vec![22 + (i % 2) as u16 * 2200],
        protocol: Some("ssh".into()),
        description: None,
        tlp: Tlp::Green,
        claimed_confidence: None,
        sensor: Some("bench-1".into()),
        count: 1,
        extra: serde_json::json!({"session": format!("{i:012x}"), "src_port": 40000 + i % 20000}),
        idempotency_key: None,
    }
}

/// CPU time (user + system) this process has used, from /proc (Linux); zero elsewhere.
/// The machine may be shared: sightings per CPU-second says what the store costs whatever
/// else is running.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<f64> = after.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn bulk(store: &SqliteStore, feed: &Feed, user: &User, label: &str, n: usize, batch: usize, value: impl Fn(u64) -> String) {
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut i = 0u64;
    while (i as usize) < n {
        let size = batch.min(n - i as usize);
        let items: Vec<NewSighting> = (i..i + size as u64).map(|j| sighting(feed, user, value(j), j)).collect();
        store.append_sightings(items).await.expect("bulk append");
        i += size as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "bulk {label}: {n} sightings in {secs:.2} s = {:.0} sightings/s (CPU {cpu:.2} s = {:.0} sightings per CPU-second)",
        n as f64 / secs,
        n as f64 / cpu.max(0.01)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let store = Arc::new(
        SqliteStore::open_with(&dir, {
            let mut o = SqliteOptions { durability: args.durability, ..Default::default() };
            if let Some(mib) = args.writer_cache_mib {
                o.writer_cache_kib = mib * 1024;
            }
            o
        })
        .expect("open store"),
    );
    println!(
        "store at {} ({:?} durability); load average {}",
        dir.display(),
        args.durability,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    let user = store.create_user("bench", false).await.expect("user");
    let feed = store
        .create_feed(NewFeed { owner: "bench".into(), name: "honeypot".into(), ..Default::default() })
        .await
        .expect("feed");

    let distinct_repeats = (args.events / 10).max(1) as u64;
    bulk(&store, &feed, &user, "repeats (10 per address)", args.events, args.batch, |j| addr(10, j % distinct_repeats)).await;
    bulk(&store, &feed, &user, "distinct (all new)", args.events, args.batch, |j| addr(11, j)).await;
    bulk(&store, &feed, &user, "bursts (runs of 20 per address)", args.events, args.batch, |j| addr(13, j / 20)).await;
    let st = store.stats().await.expect("stats");
    println!("stored: {} sightings, {} records, {} indicators", st.sightings, st.records, st.indicators);

    // Concurrent single appends: half to addresses already stored, half new.
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for client in 0..args.clients as u64 {
        let (store, feed, user) = (store.clone(), feed.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut busy = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let v = if i.is_multiple_of(2) { addr(10, client * 7_919 + i) } else { addr(12, client << 16 | i) };
                let t = Instant::now();
                match store.append_sightings(vec![sighting(&feed, &user, v, i)]).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(StoreError::Busy) => busy += 1,
                    Err(e) => panic!("append: {e}"),
                }
                i += 1;
            }
            (lat, busy)
        }));
    }
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut lat = Vec::new();
    let mut busy = 0;
    for t in tasks {
        let (l, b) = t.await.expect("client task");
        lat.extend(l);
        busy += b;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    lat.sort();
    println!(
        "concurrent single appends ({} clients): {} in {secs:.1} s = {:.0}/s (CPU {cpu:.1} s), p50 {:.2} ms, p99 {:.2} ms, busy {busy}",
        args.clients,
        lat.len(),
        lat.len() as f64 / secs,
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );

    // Lookups of stored values (from the distinct set, so 1M candidates).
    let mut q_lat = Vec::with_capacity(args.lookups);
    let mut i_lat = Vec::with_capacity(args.lookups);
    let mut found = 0;
    for k in 0..args.lookups as u64 {
        let v = addr(11, k.wrapping_mul(48_271) % args.events as u64);
        let t = Instant::now();
        let page = store.query(&Query { value: Some(v.clone()), ..Default::default() }).await.expect("query");
        q_lat.push(t.elapsed());
        found += page.items.len();
        let t = Instant::now();
        store.get_indicator(&v).await.expect("get_indicator").expect("stored value");
        i_lat.push(t.elapsed());
    }
    assert_eq!(found, args.lookups, "every looked-up value is found");
    q_lat.sort();
    i_lat.sort();
    println!(
        "lookup query(value): p50 {:.3} ms, p99 {:.3} ms; get_indicator: p50 {:.3} ms, p99 {:.3} ms ({} lookups)",
        pct(&q_lat, 0.50),
        pct(&q_lat, 0.99),
        pct(&i_lat, 0.50),
        pct(&i_lat, 0.99),
        args.lookups
    );
    let size = std::fs::metadata(dir.join(apiary_store::sqlite::DB_FILE)).map(|m| m.len()).unwrap_or(0);
    println!("database file: {:.0} MiB", size as f64 / (1024.0 * 1024.0));
}
