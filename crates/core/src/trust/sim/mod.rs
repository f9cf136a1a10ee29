//! The simulated Internet that proves the trust model: heavy-tailed attackers, localized
//! scanners, popular benign addresses, research scanners, seed honeypots, noisy and copying public
//! feeds, honest strangers and Sybil adversaries, run over simulated time through the product's
//! own scoring ([`super::score`]), groups ([`super::groups`]) and reliability
//! ([`super::reliability`]) code, next to the baselines of [`baselines`].
//!
//! Everything is drawn from one seeded [`Rng`], so a seed reproduces a table exactly.

pub mod baselines;
pub mod demo;
mod rng;

pub use rng::Rng;

use super::groups::{self, CoReports, GroupParams, Groups};
use super::reliability::{self, Outcome, ReliabilityParams};
use super::score::{ScoreParams, ScoreTier, Scorer, Scratch, StandingKind};
use super::{Depth, Sighting, SourceMeta, Tier, Timestamp};
use crate::IType;
use baselines::Baseline;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The world's parameters. [`WorldParams::default`] is the spec's world; [`WorldParams::small`]
/// a tenth of it for tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldParams {
    /// Attacker addresses, their activity's Pareto shape, and the share localized to one region.
    pub attackers: usize,
    pub pareto_shape: f64,
    pub localized: f64,
    pub regions: usize,
    /// Chance that an attacker of activity 1 hits a given honeypot (scaled by activity, max 1).
    pub hit_base: f64,
    /// Popular benign addresses; the share on the allowlist (excluded) and, of the rest, the share
    /// inside hold-listed ranges (cloud, CDN, top sites).
    pub popular: usize,
    pub popular_allowlisted: f64,
    pub hold_coverage: f64,
    pub research_scanners: usize,
    /// Benign background addresses that noisy feeds list by mistake.
    pub background: usize,
    pub seeds: usize,
    pub noisy_feeds: usize,
    /// The largest false-positive rate of a noisy feed (each draws one in 0..max).
    pub noisy_fp_max: f64,
    /// Noisy feeds that copy another noisy feed.
    pub noisy_copying: usize,
    /// Other sources: honest honeypots, of which a share are replaced by adversaries.
    pub others: usize,
    /// Honest honeypots on one of a few big cloud ASNs (same ASN: one independence group).
    pub cloud_share: f64,
    /// Benign popular addresses each adversary family tries to get blocked.
    pub targets: usize,
    /// Chance that a copycat copies a given public-feed entry.
    pub copy_prob: f64,
    /// Patient Sybils run real honeypots this many days before injecting.
    pub patience_days: f64,
    /// Rotating patient Sybils: reporters per target.
    pub rotate_k: usize,
    /// Days before the evaluation window (everyone starts at day 0 and must earn its tier).
    pub warmup_days: f64,
    /// Days of the evaluation window.
    pub days: f64,
    /// Chance that a benign value reaching BLOCK (SUSPICIOUS) draws a false-positive report.
    pub fp_report_block: f64,
    pub fp_report_suspicious: f64,
}

impl Default for WorldParams {
    fn default() -> Self {
        WorldParams {
            attackers: 30_000,
            pareto_shape: 1.1,
            localized: 0.3,
            regions: 5,
            hit_base: 0.02,
            popular: 4_000,
            popular_allowlisted: 0.5,
            hold_coverage: 0.8,
            research_scanners: 300,
            background: 20_000,
            seeds: 10,
            noisy_feeds: 20,
            noisy_fp_max: 0.15,
            noisy_copying: 4,
            others: 170,
            cloud_share: 0.3,
            targets: 300,
            copy_prob: 0.2,
            patience_days: 45.0,
            rotate_k: 3,
            warmup_days: 40.0,
            days: 30.0,
            fp_report_block: 0.9,
            fp_report_suspicious: 0.1,
        }
    }
}

impl WorldParams {
    /// A smaller world for tests: fewer attackers, benign addresses and sources, same rates.
    pub fn small() -> WorldParams {
        WorldParams {
            attackers: 8_000,
            popular: 1_000,
            research_scanners: 60,
            background: 5_000,
            seeds: 6,
            noisy_feeds: 8,
            noisy_copying: 2,
            others: 66,
            targets: 80,
            ..WorldParams::default()
        }
    }

    fn total_sources(&self) -> usize {
        self.seeds + self.noisy_feeds + self.others
    }
}

/// The adversary in a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Adversary {
    None,
    /// Copy public feeds for camouflage and co-inject the targets, from 3 ASNs.
    CopycatConcentrated,
    /// The same, one ASN each.
    CopycatDistributed,
    /// Run real honeypots until they are trusted, then all inject the targets.
    Patient,
    /// The same, but each target is injected by only `rotate_k` of them.
    PatientRotating,
}

impl Adversary {
    pub const ATTACKS: [Adversary; 4] =
        [Adversary::CopycatConcentrated, Adversary::CopycatDistributed, Adversary::Patient, Adversary::PatientRotating];

    pub fn name(self) -> &'static str {
        match self {
            Adversary::None => "none",
            Adversary::CopycatConcentrated => "copycat-concentrated",
            Adversary::CopycatDistributed => "copycat-distributed",
            Adversary::Patient => "patient",
            Adversary::PatientRotating => "patient-rotating",
        }
    }

    pub fn from_name(s: &str) -> Option<Adversary> {
        [Adversary::None].into_iter().chain(Adversary::ATTACKS).find(|a| a.name() == s)
    }

    fn copycat(self) -> bool {
        matches!(self, Adversary::CopycatConcentrated | Adversary::CopycatDistributed)
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub model: String,
    pub adversary: String,
    pub share: f64,
    /// Of everything that reached BLOCK, the share that were attackers (null if nothing did).
    pub precision: Option<f64>,
    /// Of the attackers honest sensors in ≥ 2 networks saw (evaluation window), the share blocked.
    pub recall: Option<f64>,
    /// Of the peak score: ground-truth attackers against reported benign values.
    pub auc: Option<f64>,
    /// Share of the adversary's targets that reached BLOCK (null without an adversary).
    pub poison: Option<f64>,
    /// Median hours from a mass scanner's first activity to BLOCK (null if most never were).
    pub ttb_hours: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attacker,
    Research,
    Popular,
    Background,
}

#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    standing: StandingKind,
    start: Timestamp,
    mass: bool,
    target: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Seed,
    Noisy,
    Honest,
    Copycat,
    Patient,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    t: Timestamp,
    item: u32,
    source: u32,
    depth: Depth,
}

struct World {
    items: Vec<Item>,
    roles: Vec<Role>,
    metas: Vec<SourceMeta>,
    events: Vec<Event>,
    end: Timestamp,
    warmup: Timestamp,
}

fn build(p: &WorldParams, adversary: Adversary, share: f64, seed: u64) -> World {
    let root = Rng::new(seed);
    let end = ((p.warmup_days + p.days) * DAY as f64) as Timestamp;
    let warmup = (p.warmup_days * DAY as f64) as Timestamp;

    // Sources: seeds, noisy public feeds, then the others (adversaries last).
    let mut rng = root.fork(1);
    let n_adv = if adversary == Adversary::None { 0 } else { ((share * p.total_sources() as f64).round() as usize).min(p.others) };
    let mut roles = Vec::new();
    roles.extend(std::iter::repeat_n(Role::Seed, p.seeds));
    roles.extend(std::iter::repeat_n(Role::Noisy, p.noisy_feeds));
    roles.extend(std::iter::repeat_n(Role::Honest, p.others - n_adv));
    let adv_role = if adversary.copycat() { Role::Copycat } else { Role::Patient };
    roles.extend(std::iter::repeat_n(adv_role, n_adv));
    let mut next_asn = 10_000u32;
    let mut metas = Vec::new();
    let mut region = Vec::new();
    for (id, &role) in roles.iter().enumerate() {
        let asn = match role {
            Role::Honest if rng.chance(p.cloud_share) => 100 + rng.below(8) as u32,
            Role::Copycat if adversary == Adversary::CopycatConcentrated => 500 + rng.below(3) as u32,
            _ => {
                next_asn += 1 + rng.below(50) as u32;
                next_asn
            }
        };
        let prefix = 0x0a00_0000 | ((id as u32 + 1) << 8);
        let mut m = SourceMeta::new(id as u32, id as u32, 0, vec![(asn, prefix)]);
        if role == Role::Seed {
            m.tier = Tier::Seed;
        }
        metas.push(m);
        region.push(if role == Role::Seed { id % p.regions } else { rng.below(p.regions) });
    }
    let honeypots: Vec<usize> = (0..roles.len()).filter(|&s| matches!(roles[s], Role::Seed | Role::Honest | Role::Patient)).collect();

    // Items: attackers, research scanners, popular benign, background benign.
    let mut items = Vec::new();
    let mut events = Vec::new();
    let mut rng = root.fork(2);
    let depths = [(Depth::Handshake, 0.3), (Depth::Auth, 0.4), (Depth::Login, 0.15), (Depth::Commands, 0.1), (Depth::Payload, 0.05)];
    let mut activity = Vec::new();
    for a in 0..p.attackers {
        let x = rng.pareto(p.pareto_shape);
        let p_hit = (p.hit_base * x).min(1.0);
        let local = rng.chance(p.localized).then(|| rng.below(p.regions));
        let start = (rng.f64() * end as f64 * 0.97) as Timestamp;
        let spread = 72.0 / x.sqrt();
        let mut u = rng.f64();
        let mut d0 = Depth::Handshake;
        for &(d, w) in &depths {
            if u < w {
                d0 = d;
                break;
            }
            u -= w;
        }
        for &h in &honeypots {
            if local.is_some_and(|r| region[h] != r) || !rng.chance(p_hit) {
                continue;
            }
            let t = start + (rng.exp(spread) * HOUR as f64) as Timestamp;
            if t < end {
                let depth = if d0 > Depth::Handshake && rng.chance(0.3) { Depth::ALL[d0 as usize - 1] } else { d0 };
                events.push(Event { t, item: a as u32, source: h as u32, depth });
            }
        }
        activity.push(x);
        items.push(Item { kind: Kind::Attacker, standing: StandingKind::Normal, start, mass: p_hit >= 0.5, target: false });
    }
    for _ in 0..p.research_scanners {
        let i = items.len() as u32;
        let start = (rng.f64() * end as f64 * 0.97) as Timestamp;
        for &h in &honeypots {
            if rng.chance(0.9) {
                let t = start + (rng.exp(12.0) * HOUR as f64) as Timestamp;
                if t < end {
                    events.push(Event { t, item: i, source: h as u32, depth: Depth::Handshake });
                }
            }
        }
        items.push(Item { kind: Kind::Research, standing: StandingKind::Normal, start, mass: false, target: false });
    }
    let popular0 = items.len();
    for _ in 0..p.popular {
        let standing = if rng.chance(p.popular_allowlisted) {
            StandingKind::Excluded
        } else if rng.chance(p.hold_coverage) {
            StandingKind::Held
        } else {
            StandingKind::Normal
        };
        items.push(Item { kind: Kind::Popular, standing, start: 0, mass: false, target: false });
    }
    let background0 = items.len();
    for _ in 0..p.background {
        items.push(Item { kind: Kind::Background, standing: StandingKind::Normal, start: 0, mass: false, target: false });
    }
    let mut targets = Vec::new();
    if adversary != Adversary::None {
        let mut rng = root.fork(3);
        while targets.len() < p.targets.min(p.popular) {
            let i = popular0 + rng.below(p.popular);
            if !items[i].target {
                items[i].target = true;
                targets.push(i as u32);
            }
        }
    }

    // Noisy public feeds: late listings of attackers (and some research scanners), false
    // positives from popular and background addresses, a few copying another feed.
    let mut rng = root.fork(4);
    let noisy: Vec<usize> = (0..roles.len()).filter(|&s| roles[s] == Role::Noisy).collect();
    let mut feed_events: Vec<Vec<Event>> = vec![Vec::new(); noisy.len()];
    for (k, &f) in noisy.iter().enumerate() {
        let copier = k < p.noisy_copying;
        let coverage = rng.range(0.02, 0.2) / if copier { 3.0 } else { 1.0 };
        let fp = rng.range(0.0, p.noisy_fp_max);
        let latency_days = rng.range(2.0, 10.0);
        let mut listed = 0usize;
        for (a, &x) in activity.iter().enumerate() {
            if rng.chance((coverage * x.sqrt()).min(1.0)) {
                let t = items[a].start + (rng.exp(latency_days) * DAY as f64) as Timestamp;
                if t < end {
                    feed_events[k].push(Event { t, item: a as u32, source: f as u32, depth: Depth::Handshake });
                    listed += 1;
                }
            }
        }
        for r in 0..p.research_scanners {
            let i = p.attackers + r;
            if rng.chance(0.3) {
                let t = items[i].start + (rng.exp(latency_days) * DAY as f64) as Timestamp;
                if t < end {
                    feed_events[k].push(Event { t, item: i as u32, source: f as u32, depth: Depth::Handshake });
                }
            }
        }
        let n_fp = (listed as f64 * fp / (1.0 - fp)).round() as usize;
        for _ in 0..n_fp {
            let i = if rng.chance(0.6) { popular0 + rng.below(p.popular) } else { background0 + rng.below(p.background.max(1)) };
            let t = (rng.f64() * end as f64) as Timestamp;
            feed_events[k].push(Event { t, item: i as u32, source: f as u32, depth: Depth::Handshake });
        }
    }
    for k in 0..p.noisy_copying.min(noisy.len().saturating_sub(1)) {
        let from = p.noisy_copying + k % (noisy.len() - p.noisy_copying).max(1);
        let mut copies: Vec<Event> = Vec::new();
        for e in &feed_events[from] {
            if rng.chance(0.8) {
                let t = e.t + (rng.range(1.0, 3.0) * DAY as f64) as Timestamp;
                if t < end {
                    copies.push(Event { t, source: noisy[k] as u32, ..*e });
                }
            }
        }
        feed_events[k].extend(copies);
    }
    let public: Vec<Event> = feed_events.into_iter().flatten().collect();

    // Adversaries.
    let mut rng = root.fork(5);
    let advs: Vec<usize> = (0..roles.len()).filter(|&s| matches!(roles[s], Role::Copycat | Role::Patient)).collect();
    let inject_from = if adversary.copycat() { 0 } else { (p.patience_days * DAY as f64) as Timestamp };
    let inject_at = |rng: &mut Rng| inject_from + (rng.f64() * (end - inject_from).max(1) as f64) as Timestamp;
    if adversary.copycat() {
        for &s in &advs {
            for e in &public {
                if rng.chance(p.copy_prob) {
                    let t = e.t + (rng.range(1.0, 24.0) * HOUR as f64) as Timestamp;
                    if t < end {
                        events.push(Event { t, source: s as u32, ..*e });
                    }
                }
            }
            for &i in &targets {
                events.push(Event { t: inject_at(&mut rng), item: i, source: s as u32, depth: Depth::Auth });
            }
        }
    } else if adversary == Adversary::Patient {
        for &s in &advs {
            for &i in &targets {
                events.push(Event { t: inject_at(&mut rng), item: i, source: s as u32, depth: Depth::Login });
            }
        }
    } else if adversary == Adversary::PatientRotating && !advs.is_empty() {
        for &i in &targets {
            let t0 = inject_at(&mut rng);
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < p.rotate_k.min(advs.len()) {
                let s = advs[rng.below(advs.len())];
                if !chosen.contains(&s) {
                    chosen.push(s);
                }
            }
            for s in chosen {
                let t = (t0 + (rng.range(0.0, 6.0) * HOUR as f64) as Timestamp).min(end - 1);
                events.push(Event { t, item: i, source: s as u32, depth: Depth::Login });
            }
        }
    }
    events.extend(public);
    events.sort_by_key(|e| (e.t, e.item, e.source));
    World { items, roles, metas, events, end, warmup }
}

/// Per-item state of a model: its peak score and when it first blocked.
#[derive(Clone)]
struct Track {
    peak: Vec<f64>,
    first_block: Vec<Option<Timestamp>>,
}

impl Track {
    fn new(n: usize) -> Track {
        Track { peak: vec![f64::NEG_INFINITY; n], first_block: vec![None; n] }
    }

    fn see(&mut self, i: usize, score: f64, block: bool, now: Timestamp) {
        if score > self.peak[i] {
            self.peak[i] = score;
        }
        if block && self.first_block[i].is_none() {
            self.first_block[i] = Some(now);
        }
    }
}

/// Run one world through the model and the baselines: one row per model.
pub fn run_world(p: &WorldParams, adversary: Adversary, share: f64, seed: u64) -> Vec<Row> {
    let w = build(p, adversary, share, seed);
    let n = w.items.len();
    let ns = w.metas.len();
    let is_seed: Vec<bool> = w.roles.iter().map(|&r| r == Role::Seed).collect();
    let score_params = ScoreParams::default();
    let rel = ReliabilityParams::default();
    let gp = GroupParams::default();
    let mut metas = w.metas.clone();
    let mut co = CoReports::new(ns);
    let mut groups: Groups = groups::compute(&metas, &co, &gp);
    let mut scorer = Scorer::new(score_params.clone(), &metas, &groups);
    let mut sightings: Vec<Vec<Sighting>> = vec![Vec::new(); n];
    let mut events_n = vec![0u32; n];
    let mut first_seed: Vec<Option<Timestamp>> = vec![None; n];
    let mut first_public: Vec<Option<Timestamp>> = vec![None; n];
    let mut fp_reports = vec![0u32; n];
    let mut fp_rolled = vec![0u8; n];
    let mut refuted = vec![false; n];
    let mut refute_queue: Vec<u32> = Vec::new();
    let mut fp_due: BinaryHeap<Reverse<(Timestamp, u32)>> = BinaryHeap::new();
    let mut pending: Vec<(u32, u32, Timestamp)> = Vec::new();
    let mut apiary = Track::new(n);
    let mut base: Vec<Track> = Baseline::ALL.iter().map(|_| Track::new(n)).collect();
    let mut dirty_flag = vec![false; n];
    let mut dirty: Vec<u32> = Vec::new();
    let mut scratch = Scratch::default();
    let mut fp_rng = Rng::new(seed).fork(6);
    let mut earlier: Vec<u32> = Vec::new();
    let mut next = 0usize;
    let hours = w.end / HOUR;
    let itype = IType::Ipv4;

    for hour in 0..hours {
        let now = (hour + 1) * HOUR;
        while next < w.events.len() && w.events[next].t < now {
            let e = w.events[next];
            next += 1;
            let (i, s) = (e.item as usize, e.source);
            events_n[i] += 1;
            if let Some(x) = sightings[i].iter_mut().find(|x| x.source == s) {
                x.last_seen = x.last_seen.max(e.t);
                x.depth = x.depth.max(e.depth);
            } else {
                earlier.clear();
                earlier.extend(sightings[i].iter().map(|x| x.source));
                co.record(s, &earlier, first_seed[i].is_some(), |q| is_seed[q as usize]);
                if is_seed[s as usize] && first_seed[i].is_none() {
                    first_seed[i] = Some(e.t);
                    earlier.retain(|&q| !is_seed[q as usize]);
                    co.seed_saw(&earlier);
                }
                if w.roles[s as usize] == Role::Noisy && first_public[i].is_none() {
                    first_public[i] = Some(e.t);
                }
                let network = metas[s as usize].networks[0].0;
                sightings[i].push(Sighting { source: s, network, first_seen: e.t, last_seen: e.t, depth: e.depth, retracted: false });
                if !is_seed[s as usize] {
                    pending.push((s, e.item, e.t));
                }
            }
            if !dirty_flag[i] {
                dirty_flag[i] = true;
                dirty.push(e.item);
            }
        }
        while let Some(&Reverse((t, i))) = fp_due.peek() {
            if t >= now {
                break;
            }
            fp_due.pop();
            fp_reports[i as usize] += 1;
            if !refuted[i as usize] {
                refuted[i as usize] = true;
                refute_queue.push(i);
            }
            if !dirty_flag[i as usize] {
                dirty_flag[i as usize] = true;
                dirty.push(i);
            }
        }
        // The reliability job runs hourly (judging is cheap); groups and the full rescore daily.
        let daily = (hour + 1) % 24 == 0;
        if daily {
            for m in metas.iter_mut().filter(|m| m.tier != Tier::Seed) {
                reliability::forget(&mut m.reliability, 1.0, &rel);
            }
        }
        for i in refute_queue.drain(..) {
            for x in &sightings[i as usize] {
                reliability::apply(&mut metas[x.source as usize], Outcome::Refuted, now, &rel);
            }
        }
        pending.retain(|&(s, i, t)| {
            let i = i as usize;
            if w.items[i].standing == StandingKind::Excluded {
                reliability::apply(&mut metas[s as usize], Outcome::Benign, now, &rel);
                return false;
            }
            if refuted[i] {
                return false;
            }
            let own = groups.of_source[s as usize];
            let mut est: [u32; 2] = [u32::MAX; 2];
            let mut n_est = 0;
            for x in &sightings[i] {
                let g = groups.of_source[x.source as usize];
                if g != own && scorer.class_of(x.source) == super::score::GroupClass::Established && !est[..n_est].contains(&g) {
                    est[n_est] = g;
                    n_est += 1;
                    if n_est == 2 {
                        break;
                    }
                }
            }
            let confirmed = first_seed[i].is_some() || n_est >= 2;
            match reliability::judge(t, first_public[i], first_seed[i], confirmed) {
                Some(o) => {
                    reliability::apply(&mut metas[s as usize], o, now, &rel);
                    false
                }
                None => now - t < 30 * DAY,
            }
        });
        let mut changed = false;
        for m in metas.iter_mut() {
            let tier = reliability::earned_tier(m, now, &rel);
            changed |= tier != m.tier;
            m.tier = tier;
        }
        if daily {
            groups = groups::compute(&metas, &co, &gp);
        }
        if daily || changed {
            scorer = Scorer::new(score_params.clone(), &metas, &groups);
        }
        if daily {
            dirty.clear();
            dirty.extend((0..n as u32).filter(|&i| !sightings[i as usize].is_empty()));
        }
        for &i in &dirty {
            let iu = i as usize;
            dirty_flag[iu] = false;
            let item = &w.items[iu];
            let sc = scorer.score_with(&mut scratch, itype, item.standing, &sightings[iu], fp_reports[iu], now, None);
            apiary.see(iu, sc.log_odds, sc.tier == ScoreTier::Block, now);
            if item.kind == Kind::Popular || item.kind == Kind::Background {
                let (roll, p_report) = match sc.tier {
                    ScoreTier::Block if fp_rolled[iu] < 2 => (2, p.fp_report_block),
                    ScoreTier::Suspicious if fp_rolled[iu] < 1 => (1, p.fp_report_suspicious),
                    _ => (0, 0.0),
                };
                if roll > 0 {
                    fp_rolled[iu] = roll;
                    if fp_rng.chance(p_report) {
                        fp_due.push(Reverse((now + (fp_rng.range(6.0, 48.0) * HOUR as f64) as Timestamp, i)));
                    }
                }
            }
            let srcs = sightings[iu].len() as u32;
            let mut asns: Vec<u32> = sightings[iu].iter().map(|x| x.network).collect();
            asns.sort_unstable();
            asns.dedup();
            for (b, track) in Baseline::ALL.iter().zip(base.iter_mut()) {
                if *b != Baseline::DawidSkene {
                    let (s, block) = b.counting(srcs, asns.len() as u32, events_n[iu]);
                    track.see(iu, s, block, now);
                }
            }
        }
        dirty.clear();
        if daily {
            let reported: Vec<usize> = (0..n).filter(|&i| !sightings[i].is_empty()).collect();
            let reporters: Vec<Vec<u32>> = reported.iter().map(|&i| sightings[i].iter().map(|x| x.source).collect()).collect();
            let q = baselines::dawid_skene(&reporters, ns, 15);
            let ds = base.last_mut().expect("dawid-skene is the last baseline");
            for (k, &i) in reported.iter().enumerate() {
                ds.see(i, q[k], q[k] >= 0.5, now);
            }
        }
    }

    // Ground truth: attackers honest sensors in ≥ 2 networks saw, in the evaluation window.
    let truth: Vec<bool> = (0..n)
        .map(|i| {
            let it = &w.items[i];
            if it.kind != Kind::Attacker || it.start < w.warmup {
                return false;
            }
            let mut nets: Vec<u32> = sightings[i]
                .iter()
                .filter(|x| matches!(w.roles[x.source as usize], Role::Seed | Role::Honest))
                .map(|x| x.network)
                .collect();
            nets.sort_unstable();
            nets.dedup();
            nets.len() >= 2
        })
        .collect();
    let mut rows = vec![metrics("apiary", &apiary, &w, &truth, &sightings, adversary, share)];
    for (b, t) in Baseline::ALL.iter().zip(&base) {
        rows.push(metrics(b.name(), t, &w, &truth, &sightings, adversary, share));
    }
    rows
}

fn metrics(model: &str, t: &Track, w: &World, truth: &[bool], sightings: &[Vec<Sighting>], adversary: Adversary, share: f64) -> Row {
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut truth_n, mut truth_blocked) = (0usize, 0usize);
    let (mut targets, mut targets_blocked) = (0usize, 0usize);
    let mut ttb: Vec<f64> = Vec::new();
    let mut pos: Vec<f64> = Vec::new();
    let mut neg: Vec<f64> = Vec::new();
    for (i, it) in w.items.iter().enumerate() {
        let blocked = t.first_block[i].is_some();
        match it.kind {
            Kind::Attacker => tp += usize::from(blocked),
            Kind::Popular | Kind::Background => fp += usize::from(blocked),
            Kind::Research => {}
        }
        if truth[i] {
            truth_n += 1;
            truth_blocked += usize::from(blocked);
            pos.push(t.peak[i]);
        }
        if matches!(it.kind, Kind::Popular | Kind::Background) && !sightings[i].is_empty() {
            neg.push(t.peak[i]);
        }
        if it.target {
            targets += 1;
            targets_blocked += usize::from(blocked);
        }
        if it.kind == Kind::Attacker && it.mass && it.start >= w.warmup && !sightings[i].is_empty() {
            ttb.push(t.first_block[i].map_or(f64::INFINITY, |b| (b - it.start).max(0) as f64 / HOUR as f64));
        }
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    ttb.sort_by(|a, b| a.total_cmp(b));
    let median = (!ttb.is_empty()).then(|| ttb[ttb.len() / 2]).filter(|m| m.is_finite());
    Row {
        model: model.to_string(),
        adversary: adversary.name().to_string(),
        share,
        precision: ratio(tp, tp + fp),
        recall: ratio(truth_blocked, truth_n),
        auc: auc(&mut pos, &mut neg),
        poison: if adversary == Adversary::None { None } else { ratio(targets_blocked, targets) },
        ttb_hours: median,
    }
}

/// Area under the ROC curve: the chance a random positive outranks a random negative (ties half).
pub fn auc(pos: &mut [f64], neg: &mut [f64]) -> Option<f64> {
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    pos.sort_by(|a, b| a.total_cmp(b));
    neg.sort_by(|a, b| a.total_cmp(b));
    let mut wins = 0.0;
    let (mut lo, mut hi) = (0usize, 0usize);
    for &x in pos.iter() {
        while lo < neg.len() && neg[lo] < x {
            lo += 1;
        }
        hi = hi.max(lo);
        while hi < neg.len() && neg[hi] <= x {
            hi += 1;
        }
        wins += lo as f64 + 0.5 * (hi - lo) as f64;
    }
    Some(wins / (pos.len() as f64 * neg.len() as f64))
}

/// Run every (adversary, share) world of `shares` (share 0 runs once, as `none`), on `threads`
/// threads; rows come back in a fixed order whatever the threads.
pub fn run_all(p: &WorldParams, seed: u64, shares: &[f64], adversaries: &[Adversary], threads: usize) -> Vec<Row> {
    let mut worlds: Vec<(Adversary, f64)> = Vec::new();
    if shares.contains(&0.0) {
        worlds.push((Adversary::None, 0.0));
    }
    for &a in adversaries.iter().filter(|&&a| a != Adversary::None) {
        for &s in shares.iter().filter(|&&s| s > 0.0) {
            worlds.push((a, s));
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![Vec::new(); worlds.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= worlds.len() {
                    break;
                }
                let (a, s) = worlds[k];
                let rows = run_world(p, a, s, seed);
                results.lock().expect("no thread panicked holding the results")[k] = rows;
            });
        }
    });
    results.into_inner().expect("no thread panicked holding the results").into_iter().flatten().collect()
}
