//! What the trust jobs keep in the record stage (migration sqlite 0008 / pg 0004): every feed as
//! a *source* with its tier and reliability, the indicator scores with their explanations, and the
//! feedback (false-positive reports, retractions) that is evidence for the model. The math is in
//! `apiary_core::trust`; the jobs that run it are in `apiary_server::trust`. TRUST.md, docs/trust.md.

use crate::model::Timestamp;
use apiary_core::trust::score::ScoreTier;
use apiary_core::trust::Tier;
use apiary_core::IType;
use serde::Serialize;

/// A feed as a source. Feeds that no job or admin has touched yet are listed with the defaults:
/// an admin's feed is a seed (the operator's own sensors), any other feed is on probation with
/// the prior Beta(1, 9).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Source {
    pub feed_id: i64,
    /// `owner/name`
    pub feed: String,
    pub owner_id: i64,
    pub tier: Tier,
    /// Set by an admin: the reliability job does not change it (see [`crate::Store::set_source_tier`]).
    pub pinned: bool,
    pub alpha: f64,
    pub beta: f64,
    /// Lead-corroborated reports (the promotion rule counts them).
    pub leads: i64,
    /// Judged reports that turned out benign, refuted or retracted.
    pub penalties: i64,
    pub last_penalty: Option<Timestamp>,
    /// The independence group the job last computed (None before its first run).
    pub group_id: Option<i64>,
    /// The declared network of the source's sensors (an ASN), if any.
    pub asn: Option<i64>,
    /// When the feed was created (the promotion rule's age).
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

impl Source {
    /// Mean reliability α/(α+β).
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }
}

/// What the reliability job writes back for one source. A pinned source keeps its tier.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceUpdate {
    pub feed_id: i64,
    pub tier: Tier,
    pub alpha: f64,
    pub beta: f64,
    pub leads: i64,
    pub penalties: i64,
    pub last_penalty: Option<Timestamp>,
    pub group_id: Option<i64>,
}

/// The stored score of one indicator, as the scoring job last computed it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndicatorScore {
    pub indicator: String,
    pub itype: IType,
    /// 0–100 = σ(log-odds)·100.
    pub confidence: u8,
    pub tier: ScoreTier,
    /// Log-odds; None for an excluded value.
    pub log_odds: Option<f64>,
    /// `apiary_core::trust::score::Explanation` as JSON, with source ids = feed ids.
    pub explanation: serde_json::Value,
    pub scored_at: Timestamp,
}

/// Kinds of feedback.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Any user: "this value is not malicious".
    FalsePositive,
    /// A feed's owner (or an admin) takes a value back from the feed.
    Retraction,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::FalsePositive => "false_positive",
            FeedbackKind::Retraction => "retraction",
        }
    }

    pub fn parse(s: &str) -> Option<FeedbackKind> {
        match s {
            "false_positive" => Some(FeedbackKind::FalsePositive),
            "retraction" => Some(FeedbackKind::Retraction),
            _ => None,
        }
    }
}

/// Feedback to record. The value is normalised by `apiary_core::parse` first.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeedback {
    pub kind: FeedbackKind,
    pub indicator: String,
    pub itype: IType,
    /// The feed a retraction takes the value back from.
    pub feed_id: Option<i64>,
    pub user_id: i64,
    pub reason: String,
}

/// Recorded feedback (kept for ever: retractions are history).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Feedback {
    pub id: i64,
    pub kind: FeedbackKind,
    pub indicator: String,
    pub itype: IType,
    pub feed_id: Option<i64>,
    /// `owner/name` of `feed_id`.
    pub feed: Option<String>,
    pub user: String,
    pub reason: String,
    pub created_at: Timestamp,
    #[serde(skip)]
    pub user_id: i64,
    /// The user was an admin when read (an admin's false-positive report is upheld).
    #[serde(skip)]
    pub user_admin: bool,
}

/// A sighting as the scoring job reads it from the log: only what the model uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustSighting {
    pub seq: i64,
    pub feed_id: i64,
    pub indicator: String,
    pub itype: IType,
    pub reserved: Option<String>,
    pub observed_at: Timestamp,
    pub observed_until: Option<Timestamp>,
    pub received_at: Timestamp,
    pub tags: Vec<String>,
    pub sensor: Option<String>,
    /// Whether every reader may see it: a sighting in a public feed, not TLP:AMBER or RED. Only
    /// shared sightings are evidence for the hub's scores, which every reader sees (so a private
    /// feed's reports never move a public score or appear in its explanation).
    pub shared: bool,
}

impl From<crate::LoggedSighting> for TrustSighting {
    fn from(s: crate::LoggedSighting) -> Self {
        TrustSighting {
            seq: s.seq,
            feed_id: s.feed_id,
            indicator: s.indicator,
            itype: s.itype,
            reserved: s.reserved,
            observed_at: s.observed_at,
            observed_until: s.observed_until,
            received_at: s.received_at,
            shared: !matches!(s.tlp, crate::Tlp::Amber | crate::Tlp::Red),
            tags: s.tags,
            sensor: s.sensor,
        }
    }
}

pub(crate) fn tier_from_str(s: &str) -> Option<Tier> {
    match s {
        "seed" => Some(Tier::Seed),
        "established" => Some(Tier::Established),
        "probation" => Some(Tier::Probation),
        "quarantined" => Some(Tier::Quarantined),
        _ => None,
    }
}

pub(crate) fn score_tier_from_str(s: &str) -> Option<ScoreTier> {
    match s {
        "OBSERVE" => Some(ScoreTier::Observe),
        "SUSPICIOUS" => Some(ScoreTier::Suspicious),
        "BLOCK" => Some(ScoreTier::Block),
        _ => None,
    }
}

/// Feedback reasons are short text kept for ever.
pub const MAX_REASON: usize = 1000;

pub(crate) fn check_reason(reason: &str) -> crate::Result<()> {
    if reason.trim().is_empty() {
        return Err(crate::StoreError::Invalid("a reason is required".into()));
    }
    if reason.len() > MAX_REASON {
        return Err(crate::StoreError::Invalid(format!("the reason is longer than {MAX_REASON} bytes")));
    }
    Ok(())
}
