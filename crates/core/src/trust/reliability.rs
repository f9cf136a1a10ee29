//! Source reliability, updated online by a background job (never on the ingest path): a
//! Beta(α, β) posterior that grows α only for lead-corroborated reports, grows β sharply for
//! reports that turn out benign, forgets at γ a day, and decides the tier.

use super::{Beta, SourceMeta, Tier, Timestamp};
use serde::{Deserialize, Serialize};

/// The knobs of the reliability update and the tier rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityParams {
    /// Daily forgetting: evidence beyond the prior is multiplied by γ each day.
    pub gamma: f64,
    /// α added per lead-corroborated report.
    pub lead: f64,
    /// β added when a report turns out benign (allowlisted, canary, delisted).
    pub benign: f64,
    /// β added when a report is refuted by a false-positive report that was upheld.
    pub refuted: f64,
    /// β added when the source's owner retracts a report.
    pub retracted: f64,
    /// Promotion to Established: lead count, mean reliability and age.
    pub establish_leads: u32,
    pub establish_mean: f64,
    pub establish_age_days: f64,
    /// Quarantine when, among judged reports (evidence beyond the prior), the share of good ones
    /// is below this and at least `quarantine_min_benign` of β came from penalties.
    pub quarantine_mean: f64,
    pub quarantine_min_benign: f64,
    /// ...and only once this many of its reports were judged: one careless report (a fresh feed's
    /// first allowlisted value) must never quarantine a source; a canary hit still does at once.
    #[serde(default = "default_min_judged")]
    pub quarantine_min_judged: u32,
    /// Established also needs this many days since the last benign, refuted or retracted report:
    /// a proven-bad report costs the standing at once, whatever α a busy source has banked.
    pub clean_days: f64,
}

impl Default for ReliabilityParams {
    fn default() -> Self {
        ReliabilityParams {
            gamma: 0.98,
            lead: 1.0,
            benign: 8.0,
            refuted: 10.0,
            retracted: 3.0,
            establish_leads: 10,
            establish_mean: 0.8,
            establish_age_days: 30.0,
            quarantine_mean: 0.5,
            quarantine_min_benign: 8.0,
            quarantine_min_judged: default_min_judged(),
            clean_days: 7.0,
        }
    }
}

fn default_min_judged() -> u32 {
    20
}

/// What the job learned about one report of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Reported before the first public listing and the first seed sighting, confirmed later.
    Lead,
    /// Confirmed, but the source was not first (a copy or a late report): earns nothing.
    Late,
    /// Turned out benign (allowlisted, delisted, canary address).
    Benign,
    /// Refuted by an upheld false-positive report.
    Refuted,
    /// Retracted by the source's owner.
    Retracted,
    /// The source reported a canary probe address that was never sent to it.
    CanaryHit,
}

/// Judge a confirmed report: a lead only if it came strictly before the first public listing
/// and the first seed sighting (copying public lists, or a seed, earns nothing).
/// `confirmed`: a seed, or at least two established groups other than the source's, saw it.
pub fn judge(reported: Timestamp, first_public: Option<Timestamp>, first_seed: Option<Timestamp>, confirmed: bool) -> Option<Outcome> {
    if !confirmed {
        return None;
    }
    let first_other = first_public.unwrap_or(Timestamp::MAX).min(first_seed.unwrap_or(Timestamp::MAX));
    Some(if reported < first_other { Outcome::Lead } else { Outcome::Late })
}

/// Apply one outcome, learned at `now`, to a source (seeds are trusted by the admin and not updated).
pub fn apply(source: &mut SourceMeta, outcome: Outcome, now: Timestamp, p: &ReliabilityParams) {
    if source.tier == Tier::Seed {
        return;
    }
    if outcome != Outcome::CanaryHit {
        source.judged = source.judged.saturating_add(1);
    }
    let r = &mut source.reliability;
    match outcome {
        Outcome::Lead => {
            r.alpha += p.lead;
            source.leads += 1;
        }
        Outcome::Late => {}
        Outcome::Benign => r.beta += p.benign,
        Outcome::Refuted => r.beta += p.refuted,
        Outcome::Retracted => r.beta += p.retracted,
        Outcome::CanaryHit => source.canary_hit = true,
    }
    if matches!(outcome, Outcome::Benign | Outcome::Refuted | Outcome::Retracted) {
        source.last_penalty = Some(now);
    }
}

/// Forget: evidence beyond the prior decays by γ per day.
pub fn forget(r: &mut Beta, days: f64, p: &ReliabilityParams) {
    let g = p.gamma.powf(days);
    r.alpha = Beta::PRIOR.alpha + (r.alpha - Beta::PRIOR.alpha) * g;
    r.beta = Beta::PRIOR.beta + (r.beta - Beta::PRIOR.beta) * g;
}

/// The tier a non-seed source has earned at `now`. Seeds stay seeds (only an admin changes that).
pub fn earned_tier(source: &SourceMeta, now: Timestamp, p: &ReliabilityParams) -> Tier {
    if source.tier == Tier::Seed {
        return Tier::Seed;
    }
    let r = source.reliability;
    let good = r.alpha - Beta::PRIOR.alpha;
    let bad = r.beta - Beta::PRIOR.beta;
    let judged_enough = source.judged >= p.quarantine_min_judged;
    if source.canary_hit || (judged_enough && bad >= p.quarantine_min_benign && good / (good + bad) < p.quarantine_mean) {
        return Tier::Quarantined;
    }
    let age_days = (now - source.created) as f64 / 86_400.0;
    let clean = source.last_penalty.is_none_or(|t| (now - t) as f64 >= p.clean_days * 86_400.0);
    if clean && source.leads >= p.establish_leads && r.mean() >= p.establish_mean && age_days >= p.establish_age_days {
        Tier::Established
    } else {
        Tier::Probation
    }
}
