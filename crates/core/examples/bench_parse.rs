//! Throughput of the indicator core on real data, single-threaded.
//!
//!     cargo run --release -p apiary-core --example bench_parse -- [options]
//!
//! Options:
//!   --data DIR            the shared data directory (default: ../shared/data from the workspace)
//!   --write-corpus FILE   write the corpus (one value per line) and exit
//!   --write-accepted FILE write only the corpus values apiary accepts, and exit
//!   --corpus FILE         use this corpus instead of building one (e.g. the inputs csirtg-indicator also accepts)
//!   --runs N              timed runs per measurement (default 7); the median is reported
//!   --json                print the results as one JSON object
//!
//! The corpus is built from the real files in `data/`: every feed file (plain lists, netsets,
//! Spamhaus DROP text and JSON, abuse.ch CSVs, the MISP event, the STIX bundle) and the Cowrie
//! and Dionaea logs (`src_ip`, `dst_ip`, `remote_host`, `url`, `shasum` of every event), in file
//! order, duplicates kept: the mix the importers hand to `parse`.
//! Rates are per second of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), the
//! median of `--runs` runs of about 0.5 s each: on a shared machine, wall time would measure the
//! neighbours.
//! The allowlist lookup benchmark checks parsed indicators against the built-in lists, the real
//! warninglists and 120,000 generated entries (CIDRs of both families and host names).

use apiary_core::{parse, Allowlist, Indicator, ListKind, ListUse, ParseOptions, WarningList};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut write_corpus = None;
    let mut write_accepted = None;
    let mut corpus_file = None;
    let mut runs = 7usize;
    let mut json = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = PathBuf::from(args.next().expect("--data DIR")),
            "--write-corpus" => write_corpus = Some(PathBuf::from(args.next().expect("--write-corpus FILE"))),
            "--write-accepted" => write_accepted = Some(PathBuf::from(args.next().expect("--write-accepted FILE"))),
            "--corpus" => corpus_file = Some(PathBuf::from(args.next().expect("--corpus FILE"))),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--json" => json = true,
            other => panic!("unknown option {other}"),
        }
    }
    let corpus = match &corpus_file {
        Some(f) => std::fs::read_to_string(f).expect("corpus file").lines().map(String::from).collect(),
        None => build_corpus(&data),
    };
    if let Some(out) = write_corpus {
        std::fs::write(&out, corpus.join("\n") + "\n").expect("write corpus");
        eprintln!("wrote {} values to {}", corpus.len(), out.display());
        return;
    }
    let opts = ParseOptions::default();
    if let Some(out) = write_accepted {
        let ok: Vec<&str> = corpus.iter().filter(|v| parse(v, None, &opts).is_ok()).map(String::as_str).collect();
        std::fs::write(&out, ok.join("\n") + "\n").expect("write accepted");
        eprintln!("wrote {} of {} values to {}", ok.len(), corpus.len(), out.display());
        return;
    }
    let accepted = corpus.iter().filter(|v| parse(v, None, &opts).is_ok()).count();

    // normalise + classify (type detection, normalising, special-use classification)
    let parse_rate = median_rate(runs, corpus.len(), || {
        let mut n = 0usize;
        for v in &corpus {
            if let Ok(ind) = parse(std::hint::black_box(v), None, &opts) {
                n += ind.value.len();
            }
        }
        std::hint::black_box(n);
    });

    // The same plus the built-in allowlist check: what an importer does per value.
    let builtin = Allowlist::builtin();
    let parse_check_rate = median_rate(runs, corpus.len(), || {
        let mut n = 0usize;
        for v in &corpus {
            if let Ok(ind) = parse(std::hint::black_box(v), None, &opts) {
                n += builtin.check(&ind).len();
            }
        }
        std::hint::black_box(n);
    });

    // Allowlist lookups against >= 100,000 entries: the corpus's own indicators (the real mix,
    // with its repeats), then random addresses and names (no locality: the worst case).
    let (lists, entries) = big_allowlist(&data);
    let real: Vec<Indicator> = corpus.iter().filter_map(|v| parse(v, None, &opts).ok()).collect();
    let random: Vec<Indicator> = generated_probes(50_000).iter().filter_map(|v| parse(v, None, &opts).ok()).collect();
    let lookups = |set: &[Indicator]| {
        median_rate(runs, set.len(), || {
            let mut n = 0usize;
            for i in set {
                n += lists.check(std::hint::black_box(i)).len();
            }
            std::hint::black_box(n);
        })
    };
    let real_rate = lookups(&real);
    let random_rate = lookups(&random);
    let probes: Vec<Indicator> = real.iter().chain(&random).cloned().collect();
    let listed = probes.iter().filter(|i| !lists.check(i).is_empty()).count();
    let lookup_rate = lookups(&probes);

    // The same lookups split by kind of indicator, to see where time goes.
    let mut by_kind: Vec<(String, usize, f64)> = Vec::new();
    for (label, pred) in [
        ("single IPv4", (|i: &Indicator| i.itype == apiary_core::IType::Ipv4 && !i.is_cidr()) as fn(&Indicator) -> bool),
        ("single IPv6", |i: &Indicator| i.itype == apiary_core::IType::Ipv6 && !i.is_cidr()),
        ("CIDRs", |i: &Indicator| i.is_cidr()),
        ("names, URLs, hashes", |i: &Indicator| !i.itype.is_address()),
    ] {
        let subset: Vec<&Indicator> = probes.iter().filter(|i| pred(i)).collect();
        if subset.is_empty() {
            continue;
        }
        let r = median_rate(runs, subset.len(), || {
            let mut n = 0usize;
            for i in &subset {
                n += lists.check(std::hint::black_box(i)).len();
            }
            std::hint::black_box(n);
        });
        by_kind.push((label.to_string(), subset.len(), r));
    }

    if json {
        println!(
            "{}",
            serde_json::json!({
                "values": corpus.len(), "accepted": accepted,
                "parse_per_s": parse_rate, "parse_check_per_s": parse_check_rate,
                "allowlist_entries": entries, "lookups": probes.len(), "lookups_listed": listed,
                "lookups_per_s": lookup_rate, "lookups_corpus_per_s": real_rate, "lookups_random_per_s": random_rate,
                "lookups_by_kind": by_kind.iter().map(|(l, n, r)| serde_json::json!({"kind": l, "probes": n, "per_s": r})).collect::<Vec<_>>(),
            })
        );
    } else {
        println!("corpus: {} values ({} accepted) from {}", corpus.len(), accepted, corpus_file.as_deref().unwrap_or(&data).display());
        println!("normalise+classify:                {:>12.0} values/s (median of {runs})", parse_rate);
        println!("normalise+classify+builtin lists:  {:>12.0} values/s", parse_check_rate);
        println!("allowlist: {entries} entries, {} probe indicators ({listed} listed)", probes.len());
        println!("allowlist lookups, corpus values:  {:>12.0} lookups/s ({} probes)", real_rate, real.len());
        println!("allowlist lookups, random probes:  {:>12.0} lookups/s ({} probes)", random_rate, random.len());
        println!("allowlist lookups, both:           {:>12.0} lookups/s", lookup_rate);
        for (label, n, r) in &by_kind {
            println!("  {label:<20} {n:>7} probes {r:>12.0} lookups/s");
        }
    }
}

/// CPU time of the calling thread. The machine is shared, so wall time measures the neighbours
/// as much as this code; the rate per CPU-second of one thread is what "on one core" means.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `t`.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Run `f` (one pass over `n` items) repeatedly for about 0.5 s of thread CPU time per run;
/// the median rate per CPU-second.
fn median_rate(runs: usize, n: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut rates: Vec<f64> = (0..runs)
        .map(|_| {
            let start = thread_cpu();
            let mut passes = 0u64;
            while thread_cpu() - start < Duration::from_millis(500) {
                f();
                passes += 1;
            }
            (passes as f64 * n as f64) / (thread_cpu() - start).as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    rates[rates.len() / 2]
}

fn read(p: &Path) -> String {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn lines_not_comment<'a>(text: &'a str, comment: &'a str) -> impl Iterator<Item = &'a str> {
    text.lines().map(str::trim).filter(move |l| !l.is_empty() && !l.starts_with(comment))
}

/// Split one CSV line, honouring double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

fn build_corpus(data: &Path) -> Vec<String> {
    let mut c: Vec<String> = Vec::new();
    let feeds = data.join("feeds");
    c.extend(lines_not_comment(&read(&feeds.join("emergingthreats_compromised-ips.txt")), "#").map(String::from));
    c.extend(lines_not_comment(&read(&feeds.join("firehol_level1.netset")), "#").map(String::from));
    c.extend(lines_not_comment(&read(&feeds.join("spamhaus_drop.txt")), ";").filter_map(|l| l.split(';').next()).map(|s| s.trim().to_string()));
    for l in read(&feeds.join("spamhaus_drop_v4.json")).lines() {
        if let Ok(v) = serde_json::from_str::<Value>(l) {
            if let Some(cidr) = v["cidr"].as_str() {
                c.push(cidr.to_string());
            }
        }
    }
    for l in lines_not_comment(&read(&feeds.join("feodotracker_ipblocklist.csv")), "#").skip(1) {
        if let Some(ip) = csv_fields(l).get(1) {
            c.push(ip.clone());
        }
    }
    for l in read(&feeds.join("urlhaus_head300.csv")).lines().skip(1) {
        if let Some(url) = csv_fields(l).get(2) {
            c.push(url.clone());
        }
    }
    let misp: Value = serde_json::from_str(&read(&feeds.join("misp_event_circl_osint_sednit.json"))).expect("MISP event");
    let ev = if misp.get("Event").is_some() { &misp["Event"] } else { &misp };
    let mut attrs: Vec<&Value> = ev["Attribute"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    for o in ev["Object"].as_array().into_iter().flatten() {
        attrs.extend(o["Attribute"].as_array().into_iter().flatten());
    }
    for a in attrs {
        let t = a["type"].as_str().unwrap_or("");
        if matches!(t, "ip-src" | "ip-dst" | "domain" | "hostname" | "url" | "link" | "md5" | "sha1" | "sha256" | "sha512" | "email-src" | "email-dst") {
            if let Some(v) = a["value"].as_str() {
                c.push(v.to_string());
            }
        }
    }
    let stix: Value = serde_json::from_str(&read(&feeds.join("stix21_bundle_indicators-for-C2-with-COA.json"))).expect("STIX");
    for o in stix["objects"].as_array().into_iter().flatten() {
        if let Some(p) = o["pattern"].as_str() {
            // `[type:prop = 'value']`: the quoted value is the indicator.
            if let Some(v) = p.rsplit('\'').nth(1) {
                c.push(v.to_string());
            }
        }
    }
    for dir in ["cowrie", "dionaea"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(dir)).expect(dir).map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            for l in read(&f).lines() {
                let Ok(v) = serde_json::from_str::<Value>(l) else { continue };
                for key in ["src_ip", "dst_ip", "remote_host", "url", "shasum"] {
                    if let Some(s) = v[key].as_str() {
                        if !s.is_empty() {
                            c.push(s.to_string());
                        }
                    }
                }
            }
        }
    }
    c
}

/// Deterministic xorshift, so every run builds the same lists.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn big_allowlist(data: &Path) -> (Allowlist, usize) {
    let mut a = Allowlist::builtin();
    let wl_dir = data.join("warninglists");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&wl_dir).map(|r| r.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    dirs.sort();
    for d in dirs {
        let f = d.join("list.json");
        if let Ok(text) = std::fs::read_to_string(&f) {
            let wl = WarningList::from_json(&text).expect("warninglist");
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            let use_ = wl.use_.unwrap_or_else(|| ListUse::for_list(&name));
            a.add_warninglist(&name, &wl, &text, use_).expect("load warninglist");
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let v4: Vec<String> = (0..70_000)
        .map(|_| {
            let x = rng.next();
            let len = 16 + (x % 17) as u32;
            let addr = (x >> 32) as u32 & (u32::MAX << (32 - len));
            format!("{}/{len}", std::net::Ipv4Addr::from(addr))
        })
        .collect();
    let v6: Vec<String> = (0..20_000)
        .map(|_| {
            let hi = rng.next() as u128;
            let len = 32 + (rng.next() % 97) as u32;
            let addr = ((0x2000u128 << 112) | (hi << 48)) & (u128::MAX << (128 - len));
            format!("{}/{len}", std::net::Ipv6Addr::from(addr))
        })
        .collect();
    let names: Vec<String> = (0..30_000).map(|i| format!("h{:x}.n{}.example{}.net", rng.next() % 0xfffff, i, i % 97)).collect();
    a.add_list("generated-v4", ListKind::Cidr, &refs(&v4), ListUse::Hold, None).unwrap();
    a.add_list("generated-v6", ListKind::Cidr, &refs(&v6), ListUse::Hold, None).unwrap();
    a.add_list("generated-names", ListKind::Hostname, &refs(&names), ListUse::Hold, None).unwrap();
    let n = a.len();
    (a, n)
}

/// Random public-ish addresses and names, some of which hit the generated lists.
fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn generated_probes(n: usize) -> Vec<String> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|i| match i % 4 {
            0 | 1 => std::net::Ipv4Addr::from(rng.next() as u32).to_string(),
            2 => std::net::Ipv6Addr::from(((0x2000u128 << 112) | ((rng.next() as u128) << 48)) | rng.next() as u128 & 0xffff).to_string(),
            _ => format!("www.h{:x}.n{}.example{}.net", rng.next() % 0xfffff, i % 30_000, i % 97),
        })
        .collect()
}
