//! [`Report`]: what a source says it saw, before the store records it as a sighting.

use apiary_core::Indicator;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// One observation of one normalised indicator, as a source derived it.
///
/// It maps one-to-one onto a stored sighting (`apiary_store::NewSighting`) or onto an item of the
/// native publish API; the caller adds the feed, the reporter and the receive time.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The value, already normalised by [`apiary_core::parse`].
    pub indicator: Indicator,
    /// Tags in the field's words (`scanner`, `bruteforce`, `login`, `commands`, `download`, `malware`, ...).
    pub tags: Vec<String>,
    /// The port the indicator was seen on (for an attacker address: the honeypot's port).
    pub port: Option<u16>,
    /// `ssh`, `telnet`, ... when known.
    pub protocol: Option<String>,
    /// When it was first observed; `None` when the source carried no readable time (the caller
    /// then uses the receive time).
    pub observed_at: Option<DateTime<Utc>>,
    /// End of the observed interval (a session's end), if known.
    pub observed_until: Option<DateTime<Utc>>,
    /// The honeypot sensor that saw it.
    pub sensor: Option<String>,
    /// A short human description.
    pub description: Option<String>,
    /// How many events this report stands for.
    pub count: i64,
    /// Everything else worth keeping (the session's context), as JSON.
    pub extra: serde_json::Value,
    /// A stable key: reading the same input twice yields the same key, so a store that has it
    /// already counts nothing twice.
    pub idempotency_key: String,
    /// Where the source said it (file and 1-based line), for problems reported later (a hub's
    /// refusal of an item); `None` when the source has no lines to point at.
    pub source: Option<(std::sync::Arc<str>, u64)>,
}

/// Hex SHA-256 of the parts joined with the unit separator (`\x1f`), which no part can contain
/// by accident in the logs we read. Used as [`Report::idempotency_key`].
pub fn idempotency_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_and_separates_parts() {
        let a = idempotency_key(&["s1", "abc", "attacker", "192.0.2.1"]);
        assert_eq!(a, idempotency_key(&["s1", "abc", "attacker", "192.0.2.1"]));
        assert_eq!(a.len(), 64);
        // Moving a boundary between parts gives another key.
        assert_ne!(idempotency_key(&["s1a", "bc"]), idempotency_key(&["s1", "abc"]));
    }
}
