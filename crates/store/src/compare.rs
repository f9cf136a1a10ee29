//! What the feed comparison keeps in the record stage (migration sqlite 0009 / pg 0005): the
//! job reads every value with the feeds that list it ([`ValuePresence`], from the feed records),
//! and stores its latest result (one [`Comparison`], served by `GET /api/v1/compare`). The math
//! is `apiary_core::trust::compare`; the job is `apiary_server::compare`. docs/compare.md.

use crate::model::Timestamp;
use apiary_core::IType;
use serde::Serialize;

pub use apiary_core::trust::compare::Comparison;

/// One value and every feed that lists it: the comparison's input, read in pages by value id.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValuePresence {
    /// The store's id of the value (pages are ordered by it).
    pub indicator_id: i64,
    pub value: String,
    pub itype: IType,
    /// Special-use reason code (`private`, `loopback`...), if any.
    pub reserved: Option<String>,
    /// One entry per feed, by feed id.
    pub feeds: Vec<FeedPresence>,
}

/// One feed's record of a value: its first and last observation, and its tags (the depth a
/// honeypot session reached is read from them).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedPresence {
    pub feed_id: i64,
    pub firsttime: Timestamp,
    pub lasttime: Timestamp,
    pub tags: Vec<String>,
}

/// Group `(indicator id, value, itype, reserved, feed presence)` rows, in indicator id order,
/// into values.
pub(crate) fn group_rows(rows: impl IntoIterator<Item = (i64, String, IType, Option<String>, FeedPresence)>) -> Vec<ValuePresence> {
    let mut out: Vec<ValuePresence> = Vec::new();
    for (id, value, itype, reserved, p) in rows {
        match out.last_mut() {
            Some(v) if v.indicator_id == id => v.feeds.push(p),
            _ => out.push(ValuePresence {
                indicator_id: id,
                value,
                itype,
                reserved,
                feeds: vec![p],
            }),
        }
    }
    for v in &mut out {
        v.feeds.sort_by_key(|p| p.feed_id);
    }
    out
}

/// The comparison as stored (JSON text in both stores).
pub(crate) fn encode(c: &Comparison) -> crate::Result<String> {
    serde_json::to_string(c).map_err(|e| crate::StoreError::Internal(format!("cannot encode the feed comparison: {e}")))
}

pub(crate) fn decode(body: &str) -> crate::Result<Comparison> {
    serde_json::from_str(body).map_err(|e| crate::StoreError::Internal(format!("stored feed comparison is unreadable: {e}")))
}
