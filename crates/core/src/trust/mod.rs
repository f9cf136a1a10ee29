//! Trust: how much to believe an indicator, and how much to believe each source.
//!
//! Pipeline stage: **score**. Pure functions over plain structs, no I/O: the store (or the
//! simulator) hands in sightings and source metadata, and gets back scores with their
//! explanations, independence groups and updated reliabilities. The design and its evidence are in
//! `../shared/spec/trust-model.md`; what is implemented, and where it differs, is in `TRUST.md`.
//!
//! - [`score`]: the indicator score (log-odds), its tier and its [`score::Explanation`].
//! - [`groups`]: independence groups (same owner, same network, copy and collusion clusters).
//! - [`reliability`]: the online Beta reliability of a source and the tier rules.
//! - [`compare`]: the feed comparison (volume, overlap, latency, marginal lift per feed).
//! - [`sim`]: the simulated Internet with adversaries that proves the above, and the baselines.

pub mod compare;
pub mod groups;
pub mod reliability;
pub mod score;
pub mod sim;

use serde::{Deserialize, Serialize};

/// A source (a feed) as the scoring code knows it: a dense index chosen by the caller.
pub type SourceId = u32;

/// Seconds since the Unix epoch (the simulator uses seconds since its start).
pub type Timestamp = i64;

/// What the hub thinks of a source. Seeds are named by an admin; everything else is earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Seed,
    Established,
    Probation,
    Quarantined,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Seed => "seed",
            Tier::Established => "established",
            Tier::Probation => "probation",
            Tier::Quarantined => "quarantined",
        }
    }
}

/// A Beta(α, β) posterior over "a report of this source is a true positive".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Beta {
    pub alpha: f64,
    pub beta: f64,
}

impl Beta {
    /// Where every new source starts: Beta(1, 9), a mean of 0.1.
    pub const PRIOR: Beta = Beta { alpha: 1.0, beta: 9.0 };

    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }
}

/// How far a honeypot session went. Connect-only (no handshake, spoofable) counts for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Depth {
    Connect,
    Handshake,
    Auth,
    Login,
    Commands,
    Payload,
}

impl Depth {
    pub const ALL: [Depth; 6] =
        [Depth::Connect, Depth::Handshake, Depth::Auth, Depth::Login, Depth::Commands, Depth::Payload];

    /// The spec's depth weight: connect 0, handshake 1.0, auth 1.2, login 1.3, commands 1.4, payload 1.5.
    /// A feed entry without session detail is reported as `Handshake`.
    pub fn weight(self) -> f64 {
        match self {
            Depth::Connect => 0.0,
            Depth::Handshake => 1.0,
            Depth::Auth => 1.2,
            Depth::Login => 1.3,
            Depth::Commands => 1.4,
            Depth::Payload => 1.5,
        }
    }
}

/// One source's sighting of one indicator from one vantage point: a declared network of its
/// sensors (sensors of one source in one network are one vantage point; a feed without declared
/// networks has one, its own). Evidence adds up per vantage point, inside the group's cap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    pub source: SourceId,
    /// The vantage point: an id of the sensor's declared network, chosen by the caller (the
    /// simulator uses the ASN; the hub interns network names). Distinct per source, not global.
    pub network: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub depth: Depth,
    /// The feed's owner retracted it: kept in history, counts for nothing.
    pub retracted: bool,
}

/// What the hub knows about a source, as the group and reliability code needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMeta {
    pub id: SourceId,
    /// The owning user: feeds of one owner are never independent of each other.
    pub owner: u32,
    pub tier: Tier,
    pub reliability: Beta,
    /// When the source started reporting.
    pub created: Timestamp,
    /// The declared networks of its sensors: (ASN, IPv4 /24 as a u32 network address), 0 where
    /// not declared (AS 0 and 0.0.0.0/24 are never a sensor's network). Sources sharing an ASN or
    /// a /24 share an independence group.
    pub networks: Vec<(u32, u32)>,
    /// Lead-corroborated reports over its lifetime (the promotion rule counts them).
    pub leads: u32,
    /// The source reported a canary probe address that was never sent to it.
    pub canary_hit: bool,
    /// When a report of it last turned out benign, was refuted or retracted.
    #[serde(default)]
    pub last_penalty: Option<Timestamp>,
    /// Its reports judged so far (leads, late, benign, refuted, retracted): quarantine needs a
    /// minimum of them.
    #[serde(default)]
    pub judged: u32,
}

impl SourceMeta {
    /// A new source on probation with the prior reliability.
    pub fn new(id: SourceId, owner: u32, created: Timestamp, networks: Vec<(u32, u32)>) -> SourceMeta {
        SourceMeta {
            id,
            owner,
            tier: Tier::Probation,
            reliability: Beta::PRIOR,
            created,
            networks,
            leads: 0,
            canary_hit: false,
            last_penalty: None,
            judged: 0,
        }
    }
}

/// Whether a value may be scored at all, from the allowlists and special-use registries
/// (`Allowlist::check`, `Reserved`): excluded values never score, held values (popular
/// infrastructure) stay below BLOCK until a seed sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", content = "list", rename_all = "lowercase")]
pub enum Standing {
    #[default]
    Normal,
    /// On a `hold` list (cloud/CDN ranges, top sites, URL shorteners): the list's name.
    Held(String),
    /// Special-use, bogon, sinkhole, public resolver or an `exclude` allowlist: the reason.
    Excluded(String),
}
