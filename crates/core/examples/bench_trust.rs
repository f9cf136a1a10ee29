//! Rescoring benchmark (issue 6): score N indicators with M sightings from S sources, on T
//! threads, the way a full rescore job reads them (flat arrays, see `trust::score::Batch`).
//!
//!     cargo run --release -p apiary-core --example bench_trust -- [indicators] [sightings] [threads]
//!
//! Defaults: 1,000,000 indicators, 10,000,000 sightings, 2 threads, 300 sources.

use apiary_core::trust::groups::{self, CoReports, GroupParams};
use apiary_core::trust::score::{Batch, ScoreParams, ScoreTier, Scorer, StandingKind};
use apiary_core::trust::sim::Rng;
use apiary_core::trust::{Beta, Depth, Sighting, SourceMeta, Standing, Tier};
use apiary_core::IType;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers: indicators sightings threads")).collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let m = args.get(1).copied().unwrap_or(10_000_000);
    let threads = args.get(2).copied().unwrap_or(2);
    let n_sources = 300u32;
    let now = 90 * 86_400;
    let mut rng = Rng::new(42);

    let sources: Vec<SourceMeta> = (0..n_sources)
        .map(|i| {
            let mut s = SourceMeta::new(i, i, 0, vec![(64_000 + i % 200, 0x0a00_0000 | (i << 8))]);
            s.tier = match i {
                0..=9 => Tier::Seed,
                10..=99 => Tier::Established,
                100..=279 => Tier::Probation,
                _ => Tier::Quarantined,
            };
            s.reliability = Beta { alpha: rng.range(1.0, 60.0), beta: 9.0 };
            s
        })
        .collect();
    let t0 = Instant::now();
    let g = groups::compute(&sources, &CoReports::new(n_sources as usize), &GroupParams::default());
    let scorer = Scorer::new(ScoreParams::default(), &sources, &g);
    let t_groups = t0.elapsed();

    // Heavy-tailed sightings per indicator (Pareto 1.1, capped at the source count), scaled to m.
    let t0 = Instant::now();
    let raw: Vec<f64> = (0..n).map(|_| rng.pareto(1.1).min(f64::from(n_sources))).collect();
    let count = |scale: f64| -> usize { raw.iter().map(|r| ((r * scale).round() as usize).clamp(1, n_sources as usize)).sum() };
    let mut scale = m as f64 / raw.iter().sum::<f64>();
    for _ in 0..4 {
        scale *= m as f64 / count(scale) as f64;
    }
    let mut offsets = Vec::with_capacity(n + 1);
    let mut sightings = Vec::with_capacity(m + n);
    offsets.push(0u32);
    for r in &raw {
        let k = ((r * scale).round() as usize).clamp(1, n_sources as usize);
        for _ in 0..k {
            let source = rng.below(n_sources as usize) as u32;
            let t = now - (rng.f64() * 30.0 * 86_400.0) as i64;
            let depth = Depth::ALL[1 + rng.below(5)];
            sightings.push(Sighting { source, network: 64_000 + source % 200, first_seen: t, last_seen: t, depth, retracted: false });
        }
        offsets.push(sightings.len() as u32);
    }
    let itypes = vec![IType::Ipv4; n];
    let standing: Vec<StandingKind> = (0..n).map(|i| if i % 100 == 0 { StandingKind::Held } else { StandingKind::Normal }).collect();
    let fp_reports = vec![0u32; n];
    let t_gen = t0.elapsed();

    let batch = Batch { itypes: &itypes, standing: &standing, fp_reports: &fp_reports, offsets: &offsets, sightings: &sightings };
    let t0 = Instant::now();
    let scores = scorer.score_batch(&batch, now, threads);
    let t_score = t0.elapsed();
    let blocked = scores.iter().filter(|s| s.tier == ScoreTier::Block).count();
    let suspicious = scores.iter().filter(|s| s.tier == ScoreTier::Suspicious).count();

    // One explanation of the most-sighted indicator, as the API would return it.
    let big = (0..n).max_by_key(|&i| offsets[i + 1] - offsets[i]).unwrap_or(0);
    let t0 = Instant::now();
    let e = scorer.explain(IType::Ipv4, &Standing::Normal, &sightings[offsets[big] as usize..offsets[big + 1] as usize], 0, now);
    let t_explain = t0.elapsed();

    println!("indicators {n}, sightings {}, sources {n_sources}, threads {threads}", sightings.len());
    println!("groups + scorer: {:.3} ms", t_groups.as_secs_f64() * 1e3);
    println!("generate input: {:.2} s (not part of the rescore)", t_gen.as_secs_f64());
    println!(
        "rescore: {:.2} s ({:.1} M sightings/s); BLOCK {blocked}, SUSPICIOUS {suspicious}",
        t_score.as_secs_f64(),
        sightings.len() as f64 / t_score.as_secs_f64() / 1e6
    );
    println!("explain the biggest indicator ({} sightings, {} terms): {:.1} µs", offsets[big + 1] - offsets[big], e.terms.len(), t_explain.as_secs_f64() * 1e6);
}
