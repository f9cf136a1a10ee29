//! Honeypot sessions and sensors as the store keeps them (migrations sqlite 0006, postgres 0002).
//!
//! A session is stored once per (feed, sensor, session id). Storing it again changes nothing
//! unless the new version is more complete (more events folded in: a session read whole after
//! a partial one, or a log after an hpfeeds summary), which then replaces the stored one.
//! Sensors are registered inside a feed with the network their owner declares (ASN and/or
//! prefix); sensors seen in sessions but not registered are "undeclared".

use crate::model::Timestamp;
use apiary_core::sessions::{Link, SessionRecord};
use serde::Serialize;

/// A session to store in a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub feed_id: i64,
    pub record: SessionRecord,
}

/// What became of a batch of sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionsOutcome {
    /// New sessions stored.
    pub stored: u64,
    /// Stored sessions replaced by a more complete version.
    pub replaced: u64,
    /// Already stored, as complete or more (nothing changed).
    pub duplicates: u64,
}

impl SessionsOutcome {
    pub fn add(&mut self, o: SessionsOutcome) {
        self.stored += o.stored;
        self.replaced += o.replaced;
        self.duplicates += o.duplicates;
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSession {
    pub id: i64,
    pub feed_id: i64,
    /// `owner/name` of the feed.
    pub feed: String,
    #[serde(flatten)]
    pub record: SessionRecord,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Filters for [`crate::Store::query_sessions`]. All set filters must match.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// The attacker's address (normalised).
    pub attacker: Option<String>,
    /// Only sessions in these feeds (`None`: every feed; callers pass the readable ones).
    pub feed_ids: Option<Vec<i64>>,
    pub sensor: Option<String>,
    /// Sessions that downloaded or uploaded this SHA-256 (lowercase hex).
    pub payload: Option<String>,
    /// Sessions that carry this link key.
    pub link: Option<Link>,
    /// Newest first (by start) instead of oldest first.
    pub newest_first: bool,
    /// At most this many (capped by the store at [`MAX_SESSIONS_PAGE`]).
    pub limit: usize,
}

/// Most sessions one query returns.
pub const MAX_SESSIONS_PAGE: usize = 10_000;

/// Most sessions a correlation scan ([`crate::Store::session_links`]) reads.
pub const MAX_LINK_SCAN: usize = 2_000_000;

/// A sensor registered in a feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sensor {
    pub feed_id: i64,
    pub name: String,
    pub asn: Option<u32>,
    /// A CIDR as `apiary_core::parse` writes it.
    pub prefix: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Sensor {
    /// The declared network: `AS<n>` when an ASN is declared, else the prefix.
    pub fn network(&self) -> Option<String> {
        network_name(self.asn, self.prefix.as_deref())
    }
}

/// `AS<n>` when an ASN is given, else the prefix.
pub fn network_name(asn: Option<u32>, prefix: Option<&str>) -> Option<String> {
    match (asn, prefix) {
        (Some(a), _) => Some(format!("AS{a}")),
        (None, Some(p)) => Some(p.to_owned()),
        (None, None) => None,
    }
}

/// A sensor to register (or re-declare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSensor {
    pub feed_id: i64,
    pub name: String,
    pub asn: Option<u32>,
    pub prefix: Option<String>,
}

/// A sensor as seen in a feed's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SensorSeen {
    pub feed_id: i64,
    pub name: String,
    pub sessions: u64,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
}

/// Check a sensor name: 1–128 characters, no control characters.
pub fn check_sensor_name(name: &str) -> crate::Result<()> {
    if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(crate::StoreError::Invalid(format!(
            "sensor name {name:?}: use 1 to 128 characters, no control characters"
        )));
    }
    Ok(())
}

/// How often one attacker was seen by one sensor (for "attackers seen by several sensors").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttackerSensor {
    pub attacker: String,
    pub feed_id: i64,
    pub sensor: String,
    pub sessions: u64,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
}
