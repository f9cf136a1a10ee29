//! Scale-out benchmark (issue 8): bulk ingest and a full feed read, on several stores in one
//! run, side by side.
//!
//! ```text
//! cargo run --release -p apiary-store --example bench_scale -- [--events N] [--batch N]
//!     [--store URL]... [--keep]
//!     (default stores: a temp sqlite: dir and postgres://postgres@127.0.0.1:5432/test)
//! ```
//!
//! `--keep` leaves the stores behind and prints `keep: URL` for each (the feed is
//! `bench/honeypot`), so `scripts/bench-scale-out.sh` can time `apiary export --store URL` on
//! them; it removes them afterwards. The size column is the sightings log on disk: the
//! PostgreSQL partitions with their indexes, or the SQLite data directory (everything).
//!
//! A `postgres://` store runs in a fresh schema of its own (`apiary_bench_<random>`, dropped
//! afterwards). Phases per store: bulk ingest of N sightings of N/10 addresses (a honeypot
//! log: every attacker seen ten times, with an idempotency key each, as the sensors send
//! them), then N sightings of N new addresses; then every record of the feed read in pages of
//! 10,000 (what an export reads).

use apiary_core::IType;
use apiary_store::postgres::{PostgresOptions, PostgresStore};
use apiary_store::sqlite::SqliteStore;
use apiary_store::*;
use chrono::{Duration as Span, TimeZone, Utc};
use std::sync::Arc;
use std::time::Instant;

fn addr(base: u32, i: u64) -> String {
    let x = (i.wrapping_mul(2_654_435_761) & 0xff_ffff) as u32 | (base << 24);
    std::net::Ipv4Addr::from(x).to_string()
}

const TAGS: [&str; 5] = ["scanner", "bruteforce", "login", "commands", "download"];

fn sighting(feed: &Feed, user: &User, value: String, i: u64, keyed: bool) -> NewSighting {
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
        extra: serde_json::json!({"session": format!("{i:012x}")}),
        idempotency_key: keyed.then(|| format!("bench-{i}")),
    }
}

/// Bytes on disk: the sightings partitions with their indexes (PostgreSQL), or every file of
/// the data directory (SQLite, which keeps everything in one database).
async fn size_on_disk(pg: Option<&(String, String)>, dir: Option<&std::path::Path>) -> u64 {
    if let Some((url, schema)) = pg {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        let sql = format!(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i \
             WHERE i.inhparent = '{schema}.sightings'::regclass"
        );
        return c.query_one(&sql, &[]).await.expect("partition sizes").get::<_, i64>(0) as u64;
    }
    let Some(dir) = dir else { return 0 };
    std::fs::read_dir(dir).map(|it| it.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

async fn open(url: &str) -> (Arc<dyn Store>, Option<(String, String)>, Option<tempfile::TempDir>) {
    if url.starts_with("postgres") {
        let schema = format!("apiary_bench_{:08x}", rand::random::<u32>());
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
        let store = PostgresStore::connect_with(url, PostgresOptions { schema: Some(schema.clone()), ..Default::default() })
            .await
            .expect("open PostgreSQL store");
        (Arc::new(store), Some((url.to_string(), schema)), None)
    } else if url == "sqlite:" {
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(tmp.path()).expect("open SQLite store");
        (Arc::new(store), None, Some(tmp))
    } else {
        (apiary_store::open(url).await.expect("open store"), None, None)
    }
}

async fn bulk(store: &dyn Store, feed: &Feed, user: &User, n: usize, batch: usize, keyed: bool, value: impl Fn(u64) -> String) -> f64 {
    let started = Instant::now();
    let mut i = 0u64;
    while (i as usize) < n {
        let size = batch.min(n - i as usize);
        let items: Vec<NewSighting> = (i..i + size as u64).map(|j| sighting(feed, user, value(j), j, keyed)).collect();
        store.append_sightings(items).await.expect("bulk append");
        i += size as u64;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut events = 100_000usize;
    let mut batch = 1_000usize;
    let mut stores: Vec<String> = Vec::new();
    let mut keep = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => events = value().parse().expect("--events N"),
            "--batch" => batch = value().parse().expect("--batch N"),
            "--store" => stores.push(value()),
            "--keep" => keep = true,
            other => panic!("unknown argument {other}; see the doc comment of bench_scale.rs"),
        }
    }
    if stores.is_empty() {
        stores = vec!["sqlite:".into(), "postgres://postgres@127.0.0.1:5432/test".into()];
    }
    println!("{events} sightings per phase, batches of {batch}; load average {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" "));
    println!(
        "| store | ingest, repeats + keys (sightings/s) | ingest, distinct (sightings/s) | read every record ({} records, s) | sightings on disk (bytes/sighting) |",
        events / 10 + events
    );
    println!("|---|---:|---:|---:|---:|");
    for url in &stores {
        let (store, pg, _tmp) = open(url).await;
        let user = store.create_user("bench", false).await.expect("user");
        let feed = store.create_feed(NewFeed { owner: "bench".into(), name: "honeypot".into(), ..Default::default() }).await.expect("feed");
        let distinct = (events / 10).max(1) as u64;
        let repeats = bulk(store.as_ref(), &feed, &user, events, batch, true, |j| addr(10, j % distinct)).await;
        let fresh = bulk(store.as_ref(), &feed, &user, events, batch, false, |j| addr(11, j)).await;
        let started = Instant::now();
        let mut read = 0usize;
        let mut q = Query { reader: Some(Reader { user_id: user.id, admin: true }), feed_ids: Some(vec![feed.id]), limit: 10_000, ..Default::default() };
        loop {
            let page = store.query(&q).await.expect("query");
            read += page.items.len();
            match page.next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let label = if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
        let bytes = size_on_disk(pg.as_ref(), _tmp.as_ref().map(|t| t.path())).await;
        let per = bytes as f64 / (2 * events) as f64;
        println!("| {label} | {repeats:.0} | {fresh:.0} | {secs:.2} ({read} records) | {per:.0} |");
        drop(store);
        if keep {
            match (&pg, _tmp) {
                (Some((url, schema)), _) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    println!("keep: {url}{sep}schema={schema}");
                }
                (None, Some(tmp)) => println!("keep: sqlite:{}", tmp.keep().display()),
                (None, None) => println!("keep: {url}"),
            }
            continue;
        }
        if let Some((url, schema)) = pg {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
            tokio::spawn(conn);
            let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
        }
    }
}
