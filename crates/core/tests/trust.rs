//! The trust model's guarantees (issue 6, ../shared/spec/trust-model.md).

use apiary_core::trust::groups::{self, CoReports, GroupParams, Groups, LinkReason};
use apiary_core::trust::reliability::{self, Outcome, ReliabilityParams};
use apiary_core::trust::score::{sigmoid, ScoreParams, ScoreTier, Scorer, Term};
use apiary_core::trust::sim::{self, Adversary, WorldParams};
use apiary_core::trust::{Beta, Depth, Sighting, SourceMeta, Standing, Tier};
use apiary_core::IType;
use proptest::prelude::*;

const DAY: i64 = 86_400;
const NOW: i64 = 100 * DAY;

fn source(id: u32, tier: Tier, alpha: f64, beta: f64) -> SourceMeta {
    let mut m = SourceMeta::new(id, id, 0, vec![(64_500 + id, 0x0a00_0000 | (id << 8))]);
    m.tier = tier;
    m.reliability = Beta { alpha, beta };
    m
}

fn sighting(source: u32, depth: Depth, age_hours: i64) -> Sighting {
    let t = NOW - age_hours * 3600;
    Sighting { source, network: 64_500 + source, first_seen: t, last_seen: t, depth, retracted: false }
}

fn scorer(sources: &[SourceMeta]) -> Scorer {
    Scorer::new(ScoreParams::default(), sources, &Groups::singletons(sources.len()))
}

fn depth_of(k: u8) -> Depth {
    Depth::ALL[k as usize % Depth::ALL.len()]
}

proptest! {
    /// No set of unknown (probation) sources alone reaches BLOCK, however many, however deep,
    /// however reliable their posterior looks, for every type.
    #[test]
    fn unknown_sources_alone_never_block(
        n in 1usize..300,
        alpha in 1.0f64..1000.0,
        depths in proptest::collection::vec(0u8..6, 300),
        t in 0usize..IType::ALL.len(),
    ) {
        let sources: Vec<SourceMeta> = (0..n as u32).map(|i| source(i, Tier::Probation, alpha, 1.0)).collect();
        let sightings: Vec<Sighting> = (0..n as u32).map(|i| sighting(i, depth_of(depths[i as usize]), 0)).collect();
        let s = scorer(&sources).score(IType::ALL[t], &Standing::Normal, &sightings, 0, NOW);
        prop_assert!(s.tier != ScoreTier::Block);
        prop_assert!(sigmoid(s.log_odds) < ScoreParams::default().block);
    }

    /// The terms of an explanation sum to the score, and explaining gives the same score.
    #[test]
    fn explanation_terms_sum_to_the_score(
        tiers in proptest::collection::vec(0u8..4, 1..40),
        depths in proptest::collection::vec(0u8..6, 40),
        ages in proptest::collection::vec(0i64..400, 40),
        fp in 0u32..5,
        held in any::<bool>(),
    ) {
        let sources: Vec<SourceMeta> = tiers.iter().enumerate().map(|(i, &k)| {
            let tier = [Tier::Seed, Tier::Established, Tier::Probation, Tier::Quarantined][k as usize];
            source(i as u32, tier, 40.0, 5.0)
        }).collect();
        let sightings: Vec<Sighting> = (0..sources.len()).map(|i| sighting(i as u32, depth_of(depths[i]), ages[i])).collect();
        let standing = if held { Standing::Held("cloud".into()) } else { Standing::Normal };
        let sc = scorer(&sources);
        let score = sc.score(IType::Ipv4, &standing, &sightings, fp, NOW);
        let e = sc.explain(IType::Ipv4, &standing, &sightings, fp, NOW);
        let sum: f64 = e.terms.iter().map(Term::value).sum();
        prop_assert!((sum - score.log_odds).abs() < 1e-9, "terms sum to {sum}, score {}", score.log_odds);
        prop_assert_eq!(e.log_odds, Some(score.log_odds));
        prop_assert_eq!(e.tier, score.tier);
        prop_assert_eq!(e.confidence, score.confidence());
    }

    /// An allowlisted (excluded) value never scores above OBSERVE, whoever reports it.
    #[test]
    fn allowlisted_never_above_observe(n in 1usize..50, fp in 0u32..3) {
        let sources: Vec<SourceMeta> = (0..n as u32).map(|i| source(i, Tier::Seed, 1.0, 1.0)).collect();
        let sightings: Vec<Sighting> = (0..n as u32).map(|i| sighting(i, Depth::Payload, 0)).collect();
        let standing = Standing::Excluded("public-dns-v4".into());
        let sc = scorer(&sources);
        let s = sc.score(IType::Ipv4, &standing, &sightings, fp, NOW);
        prop_assert_eq!(s.tier, ScoreTier::Observe);
        prop_assert_eq!(s.confidence(), 0);
        let e = sc.explain(IType::Ipv4, &standing, &sightings, fp, NOW);
        prop_assert_eq!(e.excluded.as_deref(), Some("public-dns-v4"));
        prop_assert_eq!(e.log_odds, None);
    }
}

#[test]
fn block_needs_a_seed_or_two_established_groups() {
    let sources = vec![
        source(0, Tier::Seed, 1.0, 1.0),
        source(1, Tier::Seed, 1.0, 1.0),
        source(2, Tier::Established, 40.0, 9.0),
        source(3, Tier::Established, 40.0, 9.0),
        source(4, Tier::Probation, 1.0, 9.0),
        source(5, Tier::Probation, 1.0, 9.0),
    ];
    let sc = scorer(&sources);
    let score = |ids: &[u32]| {
        let s: Vec<Sighting> = ids.iter().map(|&i| sighting(i, Depth::Login, 1)).collect();
        sc.score(IType::Ipv4, &Standing::Normal, &s, 0, NOW)
    };
    assert_eq!(score(&[0, 1]).tier, ScoreTier::Block, "two seeds");
    assert_eq!(score(&[2, 3]).tier, ScoreTier::Block, "two established groups");
    assert_ne!(score(&[2, 4, 5]).tier, ScoreTier::Block, "one established group and strangers");
    assert_eq!(score(&[0]).tier, ScoreTier::Suspicious, "one seed sighting alone is suspicious");
    // Two established sources in one group (same ASN) count once.
    let mut same = sources.clone();
    same[3].networks = same[2].networks.clone();
    let g = groups::compute(&same, &CoReports::new(same.len()), &GroupParams::default());
    assert_eq!(g.of_source[2], g.of_source[3]);
    let sc = Scorer::new(ScoreParams::default(), &same, &g);
    let s: Vec<Sighting> = [2, 3].iter().map(|&i| sighting(i, Depth::Payload, 1)).collect();
    assert_ne!(sc.score(IType::Ipv4, &Standing::Normal, &s, 0, NOW).tier, ScoreTier::Block);
}

#[test]
fn held_values_wait_for_a_seed() {
    let sources = vec![source(0, Tier::Seed, 1.0, 1.0), source(1, Tier::Established, 40.0, 9.0), source(2, Tier::Established, 40.0, 9.0), source(3, Tier::Established, 40.0, 9.0)];
    let sc = scorer(&sources);
    let held = Standing::Held("cloud-ranges".into());
    let est: Vec<Sighting> = (1..4).map(|i| sighting(i, Depth::Payload, 0)).collect();
    let s = sc.score(IType::Ipv4, &held, &est, 0, NOW);
    assert!(s.held);
    assert_ne!(s.tier, ScoreTier::Block);
    let e = sc.explain(IType::Ipv4, &held, &est, 0, NOW);
    assert!(e.terms.iter().any(|t| matches!(t, Term::Hold { list, .. } if list == "cloud-ranges")));
    let mut with_seed = est.clone();
    with_seed.push(sighting(0, Depth::Auth, 0));
    assert_eq!(sc.score(IType::Ipv4, &held, &with_seed, 0, NOW).tier, ScoreTier::Block);
}

#[test]
fn negative_evidence_lowers_the_score() {
    let sources: Vec<SourceMeta> = (0..2).map(|i| source(i, Tier::Seed, 1.0, 1.0)).collect();
    let sc = scorer(&sources);
    let s: Vec<Sighting> = (0..2).map(|i| sighting(i, Depth::Auth, 0)).collect();
    let clean = sc.score(IType::Ipv4, &Standing::Normal, &s, 0, NOW);
    let reported = sc.score(IType::Ipv4, &Standing::Normal, &s, 2, NOW);
    assert!(reported.log_odds < clean.log_odds);
    let mut retracted = s.clone();
    retracted[1].retracted = true;
    assert!(sc.score(IType::Ipv4, &Standing::Normal, &retracted, 0, NOW).log_odds < clean.log_odds);
}

/// A source that lists a seed's indicators after the seed earns no reliability, never becomes
/// established, and is recognised as a copier without joining the seed's group.
#[test]
fn copying_a_seed_earns_nothing() {
    let p = ReliabilityParams::default();
    let mut metas = vec![source(0, Tier::Seed, 1.0, 1.0), SourceMeta::new(1, 1, 0, vec![(65_001, 0x0b00_0000)])];
    let mut co = CoReports::new(2);
    for item in 0..200i64 {
        let seed_seen_at = item * 3600;
        co.record(0, &[], false, |s| s == 0);
        co.record(1, &[0], true, |s| s == 0);
        // Confirmed (the seed saw it), but reported after the seed: no lead.
        let o = reliability::judge(seed_seen_at + 600, None, Some(seed_seen_at), true);
        assert_eq!(o, Some(Outcome::Late));
        reliability::apply(&mut metas[1], o.unwrap(), seed_seen_at, &p);
    }
    assert_eq!(metas[1].reliability, Beta::PRIOR);
    assert_eq!(metas[1].leads, 0);
    assert_eq!(reliability::earned_tier(&metas[1], 60 * DAY, &p), Tier::Probation);
    let g = groups::compute(&metas, &co, &GroupParams::default());
    let link = g.links.iter().find(|l| matches!(l.reason, LinkReason::Copies { .. })).expect("the copier is found");
    assert_eq!((link.a, link.b, link.merged), (1, 0, false));
    assert_ne!(g.of_source[0], g.of_source[1], "a copier never joins a seed's group");
    // Reporting first, then being confirmed, is a lead.
    assert_eq!(reliability::judge(10, Some(20), Some(30), true), Some(Outcome::Lead));
    assert_eq!(reliability::judge(10, Some(20), None, false), None);
}

#[test]
fn benign_reports_quarantine_and_leads_promote() {
    let p = ReliabilityParams::default();
    let mut m = SourceMeta::new(0, 0, 0, vec![]);
    for _ in 0..200 {
        reliability::apply(&mut m, Outcome::Lead, 0, &p);
    }
    assert_eq!(reliability::earned_tier(&m, 10 * DAY, &p), Tier::Probation, "too young");
    assert_eq!(reliability::earned_tier(&m, 31 * DAY, &p), Tier::Established);
    reliability::apply(&mut m, Outcome::Refuted, 31 * DAY, &p);
    assert!(m.reliability.mean() > 0.8, "one refutation barely moves a busy source's mean...");
    assert_eq!(reliability::earned_tier(&m, 31 * DAY, &p), Tier::Probation, "...but costs the tier at once");
    assert_eq!(reliability::earned_tier(&m, 39 * DAY, &p), Tier::Established, "and a clean week restores it");
    let mut liar = SourceMeta::new(1, 1, 0, vec![]);
    reliability::apply(&mut liar, Outcome::Benign, 0, &p);
    // One careless report never quarantines: quarantine needs a minimum of judged reports.
    assert_eq!(reliability::earned_tier(&liar, 31 * DAY, &p), Tier::Probation, "one benign report");
    for _ in 1..p.quarantine_min_judged {
        reliability::apply(&mut liar, Outcome::Late, 0, &p);
    }
    assert_eq!(liar.judged, p.quarantine_min_judged);
    assert_eq!(reliability::earned_tier(&liar, 31 * DAY, &p), Tier::Quarantined);
    // Forgetting: the penalty fades, and the source is back on probation.
    reliability::forget(&mut liar.reliability, 200.0, &p);
    assert_eq!(reliability::earned_tier(&liar, 231 * DAY, &p), Tier::Probation);
}

#[test]
fn collusion_on_items_no_seed_saw_merges_groups() {
    let metas: Vec<SourceMeta> = (0..3).map(|i| SourceMeta::new(i, i, 0, vec![(65_100 + i, (i + 1) << 8)])).collect();
    let mut co = CoReports::new(3);
    for _ in 0..50 {
        co.record(1, &[], false, |_| false);
        co.record(2, &[1], false, |_| false);
    }
    for _ in 0..50 {
        co.record(0, &[], false, |_| false);
    }
    let g = groups::compute(&metas, &co, &GroupParams::default());
    assert_eq!(g.of_source[1], g.of_source[2]);
    assert_ne!(g.of_source[0], g.of_source[1]);
}

/// A smaller world still, so the simulator runs in a debug test build.
fn test_world() -> WorldParams {
    WorldParams { attackers: 4_000, popular: 500, background: 2_000, research_scanners: 30, others: 50, targets: 60, ..WorldParams::small() }
}

#[test]
fn simulator_is_reproducible() {
    let p = test_world();
    let a = sim::run_world(&p, Adversary::PatientRotating, 0.2, 7);
    let b = sim::run_world(&p, Adversary::PatientRotating, 0.2, 7);
    assert_eq!(a, b);
    let c = sim::run_world(&p, Adversary::PatientRotating, 0.2, 8);
    assert_ne!(a, c, "another seed is another world");
}

/// The published targets on a small world, for several seeds: BLOCK precision ≥ 0.99, copycat
/// poison ≤ 1%, patient poison ≤ 10% at 30% adversaries.
#[test]
fn small_world_meets_the_targets() {
    let p = test_world();
    for seed in [11, 12, 13] {
        let rows = sim::run_all(&p, seed, &[0.0, 0.3], &Adversary::ATTACKS, 2);
        for r in rows.iter().filter(|r| r.model == "apiary") {
            let precision = r.precision.expect("apiary blocks something");
            assert!(precision >= 0.99, "seed {seed}: {r:?}");
            let poison = r.poison.unwrap_or(0.0);
            let limit = if r.adversary.starts_with("copycat") { 0.01 } else { 0.10 };
            assert!(poison <= limit, "seed {seed}: {r:?}");
        }
        let union = rows.iter().find(|r| r.model == "union" && r.adversary == "copycat-distributed").unwrap();
        assert_eq!(union.poison, Some(1.0), "the union baseline is poisoned by construction");
    }
}
