//! Raw honeypot events shipped by sensors (`apiary sensor`, docs/sensor.md), kept until the
//! hub's sessionizer has folded them into sessions.
//!
//! Every event carries the shipper's idempotency key, unique per feed: a batch resent after a
//! lost answer, a restarted shipper or a restarted hub stores nothing twice. An event is
//! *pending* until the sessionizer has derived its session's sightings and marked it done;
//! marking happens after the sightings are committed, and deriving again is harmless (the
//! sightings' own keys are stable), so a crash between the two counts nothing twice.

use crate::model::Timestamp;
use crate::{Result, StoreError};
use serde::Serialize;

/// Longest idempotency key accepted (a hex SHA-256 is 64).
pub const MAX_EVENT_KEY: usize = 128;
/// Longest sensor name accepted.
pub const MAX_SENSOR_NAME: usize = 128;

/// One event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSensorEvent {
    /// The shipper's idempotency key (unique per feed).
    pub key: String,
    /// The sensor (honeypot) that logged it, as the shipper names it.
    pub sensor: String,
    /// The honeypot kind (`cowrie`).
    pub kind: String,
    /// The honeypot's own session id, if the event has one (events without one never make a
    /// session and are stored done).
    pub session: Option<String>,
    /// The event's type (`cowrie.session.connect`, ...), when it has one.
    pub eventid: Option<String>,
    /// True when this event ends its session (`cowrie.session.closed`).
    pub closes_session: bool,
    /// The event, as JSON text.
    pub event: String,
}

/// What became of one event of an append, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SensorEventOutcome {
    /// The stored event's position (of the first copy, for a duplicate).
    pub seq: i64,
    /// The key was stored before: nothing was added.
    pub duplicate: bool,
}

/// A session with pending events, ready to be (re)assembled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingSession {
    pub feed_id: i64,
    pub sensor: String,
    pub kind: String,
    pub session: String,
    /// Who shipped its newest pending event (the reporter of its sightings).
    pub reporter_id: i64,
    /// The newest pending event's seq: finishing marks done up to here, so events arriving
    /// meanwhile stay pending.
    pub last_seq: i64,
    /// A pending event closes the session.
    pub closed: bool,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSensorEvent {
    pub seq: i64,
    pub feed_id: i64,
    pub reporter_id: i64,
    pub key: String,
    pub sensor: String,
    pub kind: String,
    pub session: Option<String>,
    pub eventid: Option<String>,
    /// The event, as JSON text.
    pub event: String,
    pub received_at: Timestamp,
    /// The sessionizer has derived its session's sightings.
    pub done: bool,
}

/// Counts of a feed's stored events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SensorEventCounts {
    pub events: i64,
    /// Not yet folded into a session.
    pub pending: i64,
    /// Distinct sensors that shipped events.
    pub sensors: i64,
}

/// Refuse what no caller should send (the server checks each line before this).
pub(crate) fn check(batch: &[NewSensorEvent]) -> Result<()> {
    for (i, e) in batch.iter().enumerate() {
        if e.key.is_empty() || e.key.len() > MAX_EVENT_KEY {
            return Err(StoreError::Invalid(format!("event {i}: key must be 1 to {MAX_EVENT_KEY} bytes")));
        }
        if e.sensor.is_empty() || e.sensor.len() > MAX_SENSOR_NAME {
            return Err(StoreError::Invalid(format!("event {i}: sensor must be 1 to {MAX_SENSOR_NAME} bytes")));
        }
    }
    Ok(())
}
