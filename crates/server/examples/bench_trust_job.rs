//! The trust job with the store: rescoring N indicators with M sightings from the sightings log
//! (what `apiary serve` does on start, and what a full rescore costs), scores written back.
//!
//!     cargo run --release -p apiary-server --example bench_trust_job -- [--data DIR] [INDICATORS] [SIGHTINGS] [THREADS]
//!
//! Defaults: 1,000,000 indicators, 10,000,000 sightings, 2 threads. The world: 300 feeds (10 of
//! an admin: seeds; the rest on probation), sightings per indicator Pareto-tailed (as in
//! `apiary-core`'s `bench_trust`), each from a random feed and one of its 4 sensors, at a random
//! depth; every sensor is registered in its own declared network (a vantage point of its feed).
//! Loading the store is not timed (it is the ingest path); with `--data DIR` an existing
//! directory loaded by an earlier run is reused. Timed: one step of the job (read the log
//! through `Store::trust_sightings_after`, fold, judge, group, score, explain, write every
//! score), then a second full rescore (recency decay: only changed scores are written).
//! Peak memory: run it under `/usr/bin/time -f %M` with `--data` on a loaded directory (so the
//! figure is the job's, not the loading's).

use std::sync::Arc;
use std::time::Instant;

use apiary_core::IType;
use apiary_server::trust::{Job, TrustOptions};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, NewSensor, NewSighting, Store, Tlp, Visibility};
use chrono::{Duration, Utc};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn value(i: usize) -> String {
    // Public-looking IPv4 space (first octets 11–90: no special-use ranges).
    let n = i as u32;
    format!("{}.{}.{}.{}", 11 + (n >> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let data = match args.iter().position(|a| a == "--data") {
        Some(i) => {
            let d = args.remove(i + 1);
            args.remove(i);
            Some(std::path::PathBuf::from(d))
        }
        None => None,
    };
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let m: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let tmp = tempfile::tempdir()?;
    let dir = data.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir)?);

    if store.last_sighting_seq().await? == 0 {
        let t = Instant::now();
        store.create_user("root", true).await?;
        let mut feeds = Vec::new();
        for f in 0..300 {
            let owner = if f < 10 { "root".to_string() } else { format!("u{f}") };
            if f >= 10 {
                store.create_user(&owner, false).await?;
            }
            let feed = store.create_feed(NewFeed { owner: owner.clone(), name: format!("f{f}"), visibility: Visibility::Public, ..NewFeed::default() }).await?;
            let user = store.get_user(&owner).await?.expect("created");
            feeds.push((feed.id, user.id));
        }
        // Pareto-tailed sightings per indicator, summing to about m.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mean = m as f64 / n as f64;
        let shape = 1.5;
        let scale = mean * (shape - 1.0) / shape;
        let now = Utc::now();
        let tags: [&[&str]; 4] = [&["scanner"], &["bruteforce"], &["bruteforce", "login"], &["login", "commands", "download"]];
        let mut batch = Vec::with_capacity(20_000);
        let mut total = 0usize;
        for i in 0..n {
            let k = ((scale / (1.0 - rng.f64()).powf(1.0 / shape)).round() as usize).clamp(1, 300);
            let v = value(i);
            for _ in 0..k {
                let (feed_id, reporter_id) = feeds[(rng.next() % 300) as usize];
                let at = now - Duration::seconds((rng.next() % (7 * 86_400)) as i64);
                batch.push(NewSighting {
                    feed_id,
                    reporter_id,
                    itype: IType::Ipv4,
                    value: v.clone(),
                    reserved: None,
                    observed_at: at,
                    observed_until: None,
                    received_at: at,
                    tags: tags[(rng.next() % 4) as usize].iter().map(|s| s.to_string()).collect(),
                    ports: Vec::new(),
                    protocol: None,
                    description: None,
                    tlp: Tlp::Green,
                    claimed_confidence: None,
                    sensor: Some(format!("s{}", rng.next() % 4)),
                    count: 1,
                    extra: serde_json::Value::Null,
                    idempotency_key: None,
                });
                total += 1;
            }
            if batch.len() >= 10_000 {
                loop {
                    match store.append_sightings(std::mem::take(&mut batch)).await {
                        Ok(_) => break,
                        Err(apiary_store::StoreError::Busy) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if i % 100_000 == 0 && i > 0 {
                eprintln!("loaded {i} indicators, {total} sightings ({:.0} s)", t.elapsed().as_secs_f64());
            }
        }
        store.append_sightings(batch).await?;
        eprintln!("loaded {n} indicators, {total} sightings in {:.1} s (not timed)", t.elapsed().as_secs_f64());
    }

    // Each feed's 4 sensors in their own declared networks (idempotent: also on a reused directory).
    if store.list_sensors(None).await?.is_empty() {
        for feed in store.list_feeds(None).await? {
            for k in 0..4u32 {
                let asn = 65_000 + feed.id as u32 * 4 + k;
                store.upsert_sensor(NewSensor { feed_id: feed.id, name: format!("s{k}"), asn: Some(asn), prefix: None }).await?;
            }
        }
    }

    let options = TrustOptions { threads, ..TrustOptions::default() };
    let mut job = Job::new(options);
    let t = Instant::now();
    let r = job.step(&store).await?;
    let first = t.elapsed();
    println!(
        "first step (replay the log, judge, group, score, explain, write): {} sightings, {} indicators rescored, {} scores written in {:.2} s \
         (read, fold and judge {:.1} s; score and explain {:.1} s; write {:.1} s)",
        r.sightings,
        r.rescored,
        r.written,
        first.as_secs_f64(),
        r.read.as_secs_f64(),
        r.score.as_secs_f64(),
        r.write.as_secs_f64()
    );
    let t = Instant::now();
    let r2 = job.step_full(&store).await?;
    println!(
        "full rescore from memory (decay, reliability): {} indicators rescored, {} scores written in {:.2} s",
        r2.rescored,
        r2.written,
        t.elapsed().as_secs_f64()
    );
    let e = job.engine();
    println!("engine: {} indicators, {} sightings folded, {} reports judged, {} leads", e.items.len(), e.counts.sightings, e.counts.judged, e.counts.leads);
    drop(tmp);
    Ok(())
}
