//! The indicator score: log-odds from a prior by type plus capped evidence per independence
//! group, with holds and negative evidence, and the explanation of every term.
//!
//! ```text
//! S(x) = prior(type)
//!      + Σ seed/established groups g: min(C_g, E_g(x))
//!      + min(C_u, Σ unknown groups g: min(C_g, E_g(x)))
//!      + N(x)                                  (no-seed mass sightings, false-positive reports)
//! E_g(x) = Σ sightings of x by sources in g: w_s · depth · exp(−(now − last_seen)/τ)
//! w_s    = clip(logit(mean reliability) − prior(type), 0, w_max)     (seeds: w_max)
//! ```

use super::groups::Groups;
use super::{SourceId, SourceMeta, Sighting, Standing, Tier, Timestamp};
use crate::IType;
use serde::{Deserialize, Serialize};

/// The knobs of the score. [`ScoreParams::check`] enforces the guarantees they must keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreParams {
    /// Prior log-odds for addresses (ipv4, ipv6, asn) and names (fqdn, url, email).
    pub prior_address: f64,
    pub prior_name: f64,
    /// Prior log-odds for file hashes (honeypot payloads are rarely benign).
    pub prior_hash: f64,
    /// The largest weight of one sighting by one source (seeds always get it).
    pub w_max: f64,
    /// Cap on one group's evidence, by the group's class.
    pub cap_seed: f64,
    pub cap_established: f64,
    pub cap_unknown_group: f64,
    /// Cap on all unknown (probation) groups together.
    pub cap_unknown: f64,
    /// Recency: evidence decays as exp(−age/τ), age since the sighting's last_seen.
    pub tau_hours: f64,
    /// σ(S) thresholds of the tiers.
    pub block: f64,
    pub suspicious: f64,
    /// A held value without a seed sighting is capped at this σ (below `block`).
    pub hold_below: f64,
    /// Negative evidence: seen by at least this many established groups and by no seed...
    pub no_seed_min_groups: u32,
    /// ...costs this much per group over the minimum, down to `no_seed_floor`.
    pub no_seed_per_group: f64,
    pub no_seed_floor: f64,
    /// Each false-positive report costs this much, down to `false_positive_floor`.
    pub false_positive: f64,
    pub false_positive_floor: f64,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            prior_address: -3.0,
            prior_name: -3.5,
            prior_hash: -2.5,
            w_max: 3.0,
            cap_seed: 6.0,
            cap_established: 3.0,
            cap_unknown_group: 2.0,
            cap_unknown: 4.0,
            tau_hours: 96.0,
            block: 0.9,
            suspicious: 0.5,
            hold_below: 0.85,
            no_seed_min_groups: 6,
            no_seed_per_group: 0.5,
            no_seed_floor: -3.0,
            false_positive: -1.5,
            false_positive_floor: -4.5,
        }
    }
}

impl ScoreParams {
    pub fn prior(&self, itype: IType) -> f64 {
        match itype {
            IType::Ipv4 | IType::Ipv6 | IType::Asn => self.prior_address,
            IType::Fqdn | IType::Url | IType::Email => self.prior_name,
            IType::Md5 | IType::Sha1 | IType::Sha256 | IType::Sha512 => self.prior_hash,
        }
    }

    /// The guarantees: unknown sources together, or any one non-seed group, stay below BLOCK's
    /// σ for every type; holds are below BLOCK; negative terms are negative.
    pub fn check(&self) -> Result<(), String> {
        let block = logit(self.block);
        for t in IType::ALL {
            let p = self.prior(t);
            if p + self.cap_unknown >= block {
                return Err(format!("prior({}) + cap_unknown reaches the BLOCK threshold", t.as_str()));
            }
            if p + self.cap_established >= block || p + self.cap_unknown_group >= block {
                return Err(format!("prior({}) + one non-seed group's cap reaches BLOCK", t.as_str()));
            }
        }
        if self.hold_below >= self.block || self.suspicious >= self.block {
            return Err("hold_below and suspicious must be below block".into());
        }
        if self.no_seed_per_group < 0.0 || self.no_seed_floor > 0.0 || self.false_positive > 0.0 || self.false_positive_floor > 0.0 {
            return Err("negative evidence must be negative".into());
        }
        if self.tau_hours <= 0.0 || self.w_max <= 0.0 {
            return Err("tau_hours and w_max must be positive".into());
        }
        Ok(())
    }
}

pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The published tier of an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ScoreTier {
    Observe,
    Suspicious,
    Block,
}

impl ScoreTier {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreTier::Observe => "OBSERVE",
            ScoreTier::Suspicious => "SUSPICIOUS",
            ScoreTier::Block => "BLOCK",
        }
    }
}

/// The class of an independence group: its best member tier (seeds never share a group with
/// another owner's sources, see [`super::groups`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupClass {
    Seed,
    Established,
    /// Probation sources: capped together below the BLOCK threshold.
    Unknown,
}

/// Whether a value may be scored: the compact form of [`Standing`] used in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum StandingKind {
    #[default]
    Normal,
    Held,
    Excluded,
}

impl From<&Standing> for StandingKind {
    fn from(s: &Standing) -> Self {
        match s {
            Standing::Normal => StandingKind::Normal,
            Standing::Held(_) => StandingKind::Held,
            Standing::Excluded(_) => StandingKind::Excluded,
        }
    }
}

/// The score of one indicator (no explanation; see [`Scorer::explain`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Log-odds; −∞ for an excluded value.
    pub log_odds: f64,
    pub tier: ScoreTier,
    pub seed_groups: u16,
    pub established_groups: u16,
    /// Held as popular infrastructure (no seed has seen it).
    pub held: bool,
}

impl Score {
    /// Confidence 0–100 = σ(S)·100, rounded down (so 89.9% is not shown as 90).
    pub fn confidence(&self) -> u8 {
        if self.log_odds == f64::NEG_INFINITY {
            return 0;
        }
        (sigmoid(self.log_odds) * 100.0).floor().clamp(0.0, 100.0) as u8
    }
}

/// One source's part in a group's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEvidence {
    pub source: SourceId,
    pub tier: Tier,
    /// Sightings (vantage points) that counted.
    pub sightings: u32,
    /// The vantage points' ids ([`Sighting::network`]), for the caller to name (an admin's view).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantage: Vec<u32>,
    /// The source's weight w_s.
    pub weight: f64,
    /// Σ w_s · depth · decay over its sightings.
    pub evidence: f64,
}

/// One term of the score. The `value`s of all terms sum to the score's log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "term", rename_all = "snake_case")]
pub enum Term {
    /// The prior log-odds of the type.
    Prior { itype: IType, value: f64 },
    /// One independence group's evidence, capped at `cap`.
    Group { group: u32, class: GroupClass, sources: Vec<SourceEvidence>, raw: f64, cap: f64, capped: bool, value: f64 },
    /// Unknown groups together above `cap`: `value` takes back the excess.
    UnknownCap { raw: f64, cap: f64, value: f64 },
    /// Seen by many established groups and no seed: suspicious of fabrication.
    NoSeed { established_groups: u32, value: f64 },
    /// False-positive reports by users.
    FalsePositiveReports { reports: u32, value: f64 },
    /// Popular infrastructure on a hold list, no seed sighting: held below BLOCK.
    Hold { list: String, value: f64 },
    /// Sightings retracted by their feed's owner (kept in history, no weight).
    Retracted { sources: Vec<SourceId>, value: f64 },
    /// Sightings of quarantined sources (no weight).
    Quarantined { sources: Vec<SourceId>, value: f64 },
}

impl Term {
    pub fn value(&self) -> f64 {
        match self {
            Term::Prior { value, .. }
            | Term::Group { value, .. }
            | Term::UnknownCap { value, .. }
            | Term::NoSeed { value, .. }
            | Term::FalsePositiveReports { value, .. }
            | Term::Hold { value, .. }
            | Term::Retracted { value, .. }
            | Term::Quarantined { value, .. } => *value,
        }
    }
}

/// A score with the terms that made it: what the API returns and a UI renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Log-odds (the sum of the terms' values); null for an excluded value.
    pub log_odds: Option<f64>,
    /// 0–100 = σ(log_odds)·100.
    pub confidence: u8,
    pub tier: ScoreTier,
    /// Why the value is never scored (special-use, allowlisted), if so.
    pub excluded: Option<String>,
    pub held: bool,
    pub seed_groups: u16,
    pub established_groups: u16,
    /// Why the tier is not BLOCK although σ reached the threshold, if so.
    pub block_withheld: Option<String>,
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, Copy)]
struct SourceState {
    /// logit(mean reliability), or +∞ for a seed (always w_max).
    logit_mean: f64,
    tier: Tier,
    group: u32,
}

/// Per-call scratch space, reused across indicators by [`Scorer::score_batch`].
#[derive(Debug, Default)]
pub struct Scratch {
    acc: Vec<(u32, f64)>,
}

/// Scores indicators against a snapshot of source states and independence groups.
#[derive(Debug, Clone)]
pub struct Scorer {
    params: ScoreParams,
    sources: Vec<SourceState>,
    group_class: Vec<GroupClass>,
}

impl Scorer {
    /// A scorer for `sources` (indexed by their `id`) grouped by `groups`.
    /// Panics if `params` break the guarantees (see [`ScoreParams::check`]).
    pub fn new(params: ScoreParams, sources: &[SourceMeta], groups: &Groups) -> Scorer {
        if let Err(e) = params.check() {
            panic!("trust score parameters: {e}");
        }
        let n = sources.iter().map(|s| s.id as usize + 1).max().unwrap_or(0);
        let mut states = vec![SourceState { logit_mean: 0.0, tier: Tier::Quarantined, group: 0 }; n];
        let mut group_class = vec![GroupClass::Unknown; groups.count as usize];
        for s in sources {
            let group = groups.of_source[s.id as usize];
            let logit_mean = if s.tier == Tier::Seed { f64::INFINITY } else { logit(s.reliability.mean()) };
            states[s.id as usize] = SourceState { logit_mean, tier: s.tier, group };
            let class = match s.tier {
                Tier::Seed => GroupClass::Seed,
                Tier::Established => GroupClass::Established,
                _ => GroupClass::Unknown,
            };
            let g = &mut group_class[group as usize];
            *g = match (*g, class) {
                (GroupClass::Seed, _) | (_, GroupClass::Seed) => GroupClass::Seed,
                (GroupClass::Established, _) | (_, GroupClass::Established) => GroupClass::Established,
                _ => GroupClass::Unknown,
            };
        }
        Scorer { params, sources: states, group_class }
    }

    pub fn params(&self) -> &ScoreParams {
        &self.params
    }

    /// The weight w_s of a source for a type.
    pub fn weight(&self, source: SourceId, itype: IType) -> f64 {
        let s = &self.sources[source as usize];
        match s.tier {
            Tier::Seed => self.params.w_max,
            Tier::Quarantined => 0.0,
            _ => (s.logit_mean - self.params.prior(itype)).clamp(0.0, self.params.w_max),
        }
    }

    /// The group class of a source's group.
    pub fn class_of(&self, source: SourceId) -> GroupClass {
        self.group_class[self.sources[source as usize].group as usize]
    }

    /// Score one indicator.
    pub fn score(&self, itype: IType, standing: &Standing, sightings: &[Sighting], fp_reports: u32, now: Timestamp) -> Score {
        let mut scratch = Scratch::default();
        self.score_with(&mut scratch, itype, standing.into(), sightings, fp_reports, now, None)
    }

    /// Score one indicator and explain it.
    pub fn explain(&self, itype: IType, standing: &Standing, sightings: &[Sighting], fp_reports: u32, now: Timestamp) -> Explanation {
        let mut scratch = Scratch::default();
        let mut terms = Vec::new();
        let hold_list = match standing {
            Standing::Held(l) => l.as_str(),
            _ => "",
        };
        let score = self.score_inner(&mut scratch, itype, standing.into(), hold_list, sightings, fp_reports, now, Some(&mut terms));
        let excluded = match standing {
            Standing::Excluded(r) => Some(r.clone()),
            _ => None,
        };
        let block_withheld = (score.tier != ScoreTier::Block && excluded.is_none() && sigmoid(score.log_odds) >= self.params.block)
            .then(|| "needs a seed group or two established groups".to_string());
        Explanation {
            log_odds: excluded.is_none().then_some(score.log_odds),
            confidence: score.confidence(),
            tier: score.tier,
            excluded,
            held: score.held,
            seed_groups: score.seed_groups,
            established_groups: score.established_groups,
            block_withheld,
            terms,
        }
    }

    /// Score with caller-provided scratch space (no allocation once warm).
    #[allow(clippy::too_many_arguments)]
    pub fn score_with(
        &self,
        scratch: &mut Scratch,
        itype: IType,
        standing: StandingKind,
        sightings: &[Sighting],
        fp_reports: u32,
        now: Timestamp,
        terms: Option<&mut Vec<Term>>,
    ) -> Score {
        self.score_inner(scratch, itype, standing, "hold list", sightings, fp_reports, now, terms)
    }

    #[allow(clippy::too_many_arguments)]
    fn score_inner(
        &self,
        scratch: &mut Scratch,
        itype: IType,
        standing: StandingKind,
        hold_list: &str,
        sightings: &[Sighting],
        fp_reports: u32,
        now: Timestamp,
        mut terms: Option<&mut Vec<Term>>,
    ) -> Score {
        let p = &self.params;
        if standing == StandingKind::Excluded {
            return Score { log_odds: f64::NEG_INFINITY, tier: ScoreTier::Observe, seed_groups: 0, established_groups: 0, held: false };
        }
        let prior = p.prior(itype);
        let mut s = prior;
        if let Some(t) = terms.as_deref_mut() {
            t.push(Term::Prior { itype, value: prior });
        }
        let inv_tau = 1.0 / (p.tau_hours * 3600.0);
        let acc = &mut scratch.acc;
        acc.clear();
        let mut retracted = Vec::new();
        let mut quarantined = Vec::new();
        for x in sightings {
            let st = &self.sources[x.source as usize];
            if x.retracted || st.tier == Tier::Quarantined {
                if terms.is_some() {
                    let list = if x.retracted { &mut retracted } else { &mut quarantined };
                    if !list.contains(&x.source) {
                        list.push(x.source);
                    }
                }
                continue;
            }
            let w = match st.tier {
                Tier::Seed => p.w_max,
                _ => (st.logit_mean - prior).clamp(0.0, p.w_max),
            };
            let age = (now - x.last_seen).max(0) as f64;
            let e = w * x.depth.weight() * (-age * inv_tau).exp();
            match acc.iter_mut().find(|(g, _)| *g == st.group) {
                Some(a) => a.1 += e,
                None => acc.push((st.group, e)),
            }
        }
        let (mut seed_groups, mut est_groups) = (0u16, 0u16);
        let mut unknown = 0.0;
        for &(g, e) in acc.iter() {
            let class = self.group_class[g as usize];
            let cap = match class {
                GroupClass::Seed => p.cap_seed,
                GroupClass::Established => p.cap_established,
                GroupClass::Unknown => p.cap_unknown_group,
            };
            let v = e.min(cap);
            // A group whose evidence is nothing (weight 0, or decayed away) counts for no tier
            // rule, but the explanation still lists it: who saw the value, and that it is old.
            if v > 0.0 {
                match class {
                    GroupClass::Seed => {
                        seed_groups += 1;
                        s += v;
                    }
                    GroupClass::Established => {
                        est_groups += 1;
                        s += v;
                    }
                    GroupClass::Unknown => unknown += v,
                }
            }
            if let Some(t) = terms.as_deref_mut() {
                t.push(Term::Group { group: g, class, sources: self.group_sources(g, itype, sightings, now), raw: e, cap, capped: e > cap, value: v });
            }
        }
        s += unknown;
        if unknown > p.cap_unknown {
            s -= unknown - p.cap_unknown;
            if let Some(t) = terms.as_deref_mut() {
                t.push(Term::UnknownCap { raw: unknown, cap: p.cap_unknown, value: p.cap_unknown - unknown });
            }
        }
        if seed_groups == 0 && u32::from(est_groups) >= p.no_seed_min_groups {
            let n = (-p.no_seed_per_group * f64::from(u32::from(est_groups) - p.no_seed_min_groups + 1)).max(p.no_seed_floor);
            s += n;
            if let Some(t) = terms.as_deref_mut() {
                t.push(Term::NoSeed { established_groups: est_groups.into(), value: n });
            }
        }
        if fp_reports > 0 {
            let n = (p.false_positive * f64::from(fp_reports)).max(p.false_positive_floor);
            s += n;
            if let Some(t) = terms.as_deref_mut() {
                t.push(Term::FalsePositiveReports { reports: fp_reports, value: n });
            }
        }
        let held = standing == StandingKind::Held && seed_groups == 0;
        if held {
            let cap = logit(p.hold_below);
            if s > cap {
                if let Some(t) = terms.as_deref_mut() {
                    t.push(Term::Hold { list: hold_list.to_string(), value: cap - s });
                }
                s = cap;
            }
        }
        if let Some(t) = terms {
            if !retracted.is_empty() {
                t.push(Term::Retracted { sources: retracted, value: 0.0 });
            }
            if !quarantined.is_empty() {
                t.push(Term::Quarantined { sources: quarantined, value: 0.0 });
            }
        }
        let sig = sigmoid(s);
        let tier = if sig >= p.block && (seed_groups >= 1 || est_groups >= 2) && !held {
            ScoreTier::Block
        } else if sig >= p.suspicious {
            ScoreTier::Suspicious
        } else {
            ScoreTier::Observe
        };
        Score { log_odds: s, tier, seed_groups, established_groups: est_groups, held }
    }

    fn group_sources(&self, g: u32, itype: IType, sightings: &[Sighting], now: Timestamp) -> Vec<SourceEvidence> {
        let inv_tau = 1.0 / (self.params.tau_hours * 3600.0);
        let mut out: Vec<SourceEvidence> = Vec::new();
        for x in sightings {
            let st = &self.sources[x.source as usize];
            if st.group != g || x.retracted || st.tier == Tier::Quarantined {
                continue;
            }
            let w = self.weight(x.source, itype);
            let e = w * x.depth.weight() * (-((now - x.last_seen).max(0) as f64) * inv_tau).exp();
            match out.iter_mut().find(|o| o.source == x.source) {
                Some(o) => {
                    o.sightings += 1;
                    o.evidence += e;
                    if !o.vantage.contains(&x.network) {
                        o.vantage.push(x.network);
                    }
                }
                None => out.push(SourceEvidence { source: x.source, tier: st.tier, sightings: 1, weight: w, evidence: e, vantage: vec![x.network] }),
            }
        }
        out
    }

    /// Rescore a batch laid out as compressed rows: indicator `i` has the sightings
    /// `sightings[offsets[i]..offsets[i + 1]]`. Runs on `threads` threads.
    pub fn score_batch(&self, batch: &Batch<'_>, now: Timestamp, threads: usize) -> Vec<Score> {
        let n = batch.itypes.len();
        assert_eq!(batch.offsets.len(), n + 1, "offsets has one more entry than indicators");
        let blank = Score { log_odds: 0.0, tier: ScoreTier::Observe, seed_groups: 0, established_groups: 0, held: false };
        let mut out = vec![blank; n];
        let threads = threads.max(1);
        let chunk = n.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (c, part) in out.chunks_mut(chunk).enumerate() {
                scope.spawn(move || {
                    let mut scratch = Scratch::default();
                    let base = c * chunk;
                    for (j, slot) in part.iter_mut().enumerate() {
                        let i = base + j;
                        let (a, b) = (batch.offsets[i] as usize, batch.offsets[i + 1] as usize);
                        *slot = self.score_with(&mut scratch, batch.itypes[i], batch.standing[i], &batch.sightings[a..b], batch.fp_reports[i], now, None);
                    }
                });
            }
        });
        out
    }
}

/// Many indicators' inputs in flat arrays (the layout a full rescore reads from the store).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub itypes: &'a [IType],
    pub standing: &'a [StandingKind],
    pub fp_reports: &'a [u32],
    /// `offsets[i]..offsets[i + 1]` are indicator i's sightings; `offsets.len()` = indicators + 1.
    pub offsets: &'a [u32],
    pub sightings: &'a [Sighting],
}
