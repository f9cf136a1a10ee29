//! Raw sensor events in SQLite (`sensor_events`, migration 0007); see [`crate::events`].

use super::{db_error, from_micros, micros, SqliteStore};
use crate::events::*;
use crate::model::Timestamp;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Most events one read returns.
const MAX_PAGE: usize = 100_000;

const COLUMNS: &str = "seq, feed_id, reporter_id, key, sensor, kind, session, eventid, event, received_at, done";

fn from_row(r: &Row) -> rusqlite::Result<StoredSensorEvent> {
    Ok(StoredSensorEvent {
        seq: r.get(0)?,
        feed_id: r.get(1)?,
        reporter_id: r.get(2)?,
        key: r.get(3)?,
        sensor: r.get(4)?,
        kind: r.get(5)?,
        session: r.get(6)?,
        eventid: r.get(7)?,
        event: r.get(8)?,
        received_at: from_micros(r.get(9)?),
        done: r.get::<_, i64>(10)? != 0,
    })
}

fn append(c: &Connection, feed_id: i64, reporter_id: i64, received: i64, batch: &[NewSensorEvent]) -> Result<Vec<SensorEventOutcome>> {
    let feed: Option<i64> = c
        .prepare_cached("SELECT id FROM feeds WHERE id = ?1")
        .and_then(|mut st| st.query_row([feed_id], |r| r.get(0)).optional())
        .map_err(db_error)?;
    if feed.is_none() {
        return Err(StoreError::NotFound(format!("feed {feed_id}")));
    }
    let mut insert = c
        .prepare_cached(
            "INSERT INTO sensor_events (feed_id, reporter_id, key, sensor, kind, session, eventid, closes, event, received_at, done) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (feed_id, key) DO NOTHING RETURNING seq",
        )
        .map_err(db_error)?;
    let mut existing = c.prepare_cached("SELECT seq FROM sensor_events WHERE feed_id = ?1 AND key = ?2").map_err(db_error)?;
    let mut out = Vec::with_capacity(batch.len());
    for e in batch {
        let done = e.session.is_none();
        let seq: Option<i64> = insert
            .query_row(
                params![feed_id, reporter_id, e.key, e.sensor, e.kind, e.session, e.eventid, e.closes_session, e.event, received, done],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_error)?;
        out.push(match seq {
            Some(seq) => SensorEventOutcome { seq, duplicate: false },
            None => SensorEventOutcome { seq: existing.query_row(params![feed_id, e.key], |r| r.get(0)).map_err(db_error)?, duplicate: true },
        });
    }
    Ok(out)
}

fn ready(c: &Connection, idle_before: i64, limit: usize) -> Result<Vec<PendingSession>> {
    let mut st = c
        .prepare_cached(
            "SELECT feed_id, sensor, kind, session, max(reporter_id), max(seq), max(closes), max(received_at) AS last \
             FROM sensor_events WHERE done = 0 GROUP BY feed_id, sensor, kind, session \
             HAVING max(closes) = 1 OR last < ?1 ORDER BY min(seq) LIMIT ?2",
        )
        .map_err(db_error)?;
    let rows = st
        .query_map(params![idle_before, limit.clamp(1, MAX_PAGE) as i64], |r| {
            Ok(PendingSession {
                feed_id: r.get(0)?,
                sensor: r.get(1)?,
                kind: r.get(2)?,
                session: r.get(3)?,
                reporter_id: r.get(4)?,
                last_seq: r.get(5)?,
                closed: r.get::<_, i64>(6)? != 0,
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn session_events(c: &Connection, feed_id: i64, sensor: &str, kind: &str, session: &str, limit: usize) -> Result<Vec<StoredSensorEvent>> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sensor_events WHERE feed_id = ?1 AND sensor = ?2 AND kind = ?3 AND session = ?4 \
             ORDER BY seq LIMIT ?5"
        ))
        .map_err(db_error)?;
    let rows = st
        .query_map(params![feed_id, sensor, kind, session, limit.clamp(1, MAX_PAGE) as i64], from_row)
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn finish(c: &Connection, sessions: &[PendingSession]) -> Result<()> {
    let mut st = c
        .prepare_cached(
            "UPDATE sensor_events SET done = 1 WHERE feed_id = ?1 AND sensor = ?2 AND kind = ?3 AND session = ?4 \
             AND seq <= ?5 AND done = 0",
        )
        .map_err(db_error)?;
    for s in sessions {
        st.execute(params![s.feed_id, s.sensor, s.kind, s.session, s.last_seq]).map_err(db_error)?;
    }
    Ok(())
}

fn counts(c: &Connection, feed_id: i64) -> Result<SensorEventCounts> {
    c.prepare_cached(
        "SELECT count(*), coalesce(sum(done = 0), 0), count(DISTINCT sensor) FROM sensor_events WHERE feed_id = ?1",
    )
    .and_then(|mut st| {
        st.query_row([feed_id], |r| Ok(SensorEventCounts { events: r.get(0)?, pending: r.get(1)?, sensors: r.get(2)? }))
    })
    .map_err(db_error)
}

fn after(c: &Connection, feed_id: i64, after: i64, limit: usize) -> Result<Vec<StoredSensorEvent>> {
    let mut st = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM sensor_events WHERE feed_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"))
        .map_err(db_error)?;
    let rows = st.query_map(params![feed_id, after, limit.clamp(1, MAX_PAGE) as i64], from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

impl SqliteStore {
    pub(super) async fn events_append(
        &self,
        feed_id: i64,
        reporter_id: i64,
        received_at: Timestamp,
        batch: Vec<NewSensorEvent>,
    ) -> Result<Vec<SensorEventOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        crate::events::check(&batch)?;
        let received = micros(received_at);
        self.write(batch.len(), false, move |c| append(c, feed_id, reporter_id, received, &batch)).await
    }

    pub(super) async fn events_ready(&self, idle_before: Timestamp, limit: usize) -> Result<Vec<PendingSession>> {
        let idle = micros(idle_before);
        self.read(move |c| ready(c, idle, limit)).await
    }

    pub(super) async fn events_of_session(
        &self,
        feed_id: i64,
        sensor: &str,
        kind: &str,
        session: &str,
        limit: usize,
    ) -> Result<Vec<StoredSensorEvent>> {
        let (sensor, kind, session) = (sensor.to_owned(), kind.to_owned(), session.to_owned());
        self.read(move |c| session_events(c, feed_id, &sensor, &kind, &session, limit)).await
    }

    pub(super) async fn events_finish(&self, sessions: &[PendingSession]) -> Result<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let sessions = sessions.to_vec();
        self.write(sessions.len(), true, move |c| finish(c, &sessions)).await
    }

    pub(super) async fn events_counts(&self, feed_id: i64) -> Result<SensorEventCounts> {
        self.read(move |c| counts(c, feed_id)).await
    }

    pub(super) async fn events_after(&self, feed_id: i64, after_seq: i64, limit: usize) -> Result<Vec<StoredSensorEvent>> {
        self.read(move |c| after(c, feed_id, after_seq, limit)).await
    }
}
