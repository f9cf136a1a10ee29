//! Timestamps from feeds and honeypots: every form becomes a UTC instant.

use crate::Rejection;
use chrono::{DateTime, Utc};

/// Parse a timestamp: RFC 3339 / ISO 8601 (`Z`, `±hh:mm`, `±hhmm`, space for `T`),
/// `2019-01-13 21:06:13 UTC`, naive (UTC, never the host zone), epoch seconds, epoch
/// milliseconds (13 digits), `YYYYMMDD`. Out of range is a rejection, never a panic.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, Rejection> {
    let _ = s;
    todo!()
}

/// Format as RFC 3339 UTC with `Z` (seconds, or microseconds when non-zero).
pub fn format_time(t: DateTime<Utc>) -> String {
    let _ = t;
    todo!()
}
