//! Formatter throughput without the store: one million records through every format into a
//! byte counter. Ignored by default (it is a measurement, not a check of behaviour); run with
//!
//!     cargo test --release -p apiary-core --test export_bench -- --ignored --nocapture
//!
//! The end-to-end figures (store paging + rules + formatting) are in BENCHMARKS.md.

use std::io::{self, Write};
use std::time::Instant;

use apiary_core::export::{self, Meta, Policy, Record};
use apiary_core::{Allowlist, IType};
use chrono::{Duration, TimeZone, Utc};

/// Counts bytes, keeps nothing.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
#[ignore = "a benchmark (1,000,000 records per format), run by hand: see BENCHMARKS.md"]
fn one_million_records_per_format() {
    const N: u32 = 1_000_000;
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let values: Vec<String> = (0..N).map(|i| std::net::Ipv4Addr::from(0x1700_0000 + i * 7).to_string()).collect();
    let tags = vec!["scanner".to_string(), "ssh".to_string()];
    let records: Vec<Record> = values
        .iter()
        .map(|v| Record {
            value: v,
            itype: IType::Ipv4,
            feed: "alice/honeypot",
            firsttime: now - Duration::days(3),
            lasttime: now - Duration::hours(1),
            reporttime: now - Duration::hours(1),
            count: 4,
            tags: &tags,
            ports: &[22],
            protocol: Some("tcp"),
            description: Some("ssh brute force"),
            tlp: "green",
            confidence: Some(7.0),
            held: false,
        })
        .collect();
    let allowlist = Allowlist::builtin();
    let policy = Policy::new(&allowlist, true, now);
    let t = Instant::now();
    let admitted = records.iter().filter(|r| policy.check(r, None, false).is_ok()).count();
    println!("policy check            {N} records  {:>6.0} ms  ({admitted} admitted)", t.elapsed().as_secs_f64() * 1e3);
    let meta = Meta::new("alice/honeypot", "alice", now, now);
    for spec in export::FORMATS {
        let mut f = (spec.new)(&meta);
        let mut out = io::BufWriter::with_capacity(64 * 1024, Counter(0));
        let t = Instant::now();
        export::write_all(f.as_mut(), records.iter().copied(), &mut out).unwrap();
        out.flush().unwrap();
        let bytes = out.get_ref().0;
        println!("{:<22}  {N} records  {:>6.0} ms  {:>5} MB", spec.name, t.elapsed().as_secs_f64() * 1e3, bytes / 1_000_000);
        assert!(bytes > N as u64, "{} wrote a line per record", spec.name);
    }
}
