//! Raw sensor events in PostgreSQL (`sensor_events`, migration 0003); see [`crate::events`].

use super::{pg_error, to_micros, PostgresStore};
use crate::events::*;
use crate::model::Timestamp;
use crate::{Result, StoreError};
use tokio_postgres::Row;

/// Most events one read returns (as SQLite's).
const MAX_PAGE: usize = 100_000;

const COLUMNS: &str = "seq, feed_id, reporter_id, key, sensor, kind, session, eventid, event, received_at, done";

fn from_row(r: &Row) -> StoredSensorEvent {
    StoredSensorEvent {
        seq: r.get(0),
        feed_id: r.get(1),
        reporter_id: r.get(2),
        key: r.get(3),
        sensor: r.get(4),
        kind: r.get(5),
        session: r.get(6),
        eventid: r.get(7),
        event: r.get(8),
        received_at: r.get(9),
        done: r.get(10),
    }
}

impl PostgresStore {
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
        let received = to_micros(received_at);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let exists = tx.query_opt("SELECT id FROM feeds WHERE id = $1", &[&feed_id]).await.map_err(pg_error)?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("feed {feed_id}")));
        }
        let insert = tx
            .prepare(
                "INSERT INTO sensor_events (feed_id, reporter_id, key, sensor, kind, session, eventid, closes, event, received_at, done) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (feed_id, key) DO NOTHING RETURNING seq",
            )
            .await
            .map_err(pg_error)?;
        let existing = tx.prepare("SELECT seq FROM sensor_events WHERE feed_id = $1 AND key = $2").await.map_err(pg_error)?;
        let mut out = Vec::with_capacity(batch.len());
        for e in &batch {
            let done = e.session.is_none();
            let row = tx
                .query_opt(
                    &insert,
                    &[&feed_id, &reporter_id, &e.key, &e.sensor, &e.kind, &e.session, &e.eventid, &e.closes_session, &e.event, &received, &done],
                )
                .await
                .map_err(pg_error)?;
            out.push(match row {
                Some(r) => SensorEventOutcome { seq: r.get(0), duplicate: false },
                None => {
                    let r = tx.query_one(&existing, &[&feed_id, &e.key]).await.map_err(pg_error)?;
                    SensorEventOutcome { seq: r.get(0), duplicate: true }
                }
            });
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    pub(super) async fn events_ready(&self, idle_before: Timestamp, limit: usize) -> Result<Vec<PendingSession>> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT feed_id, sensor, kind, session, max(reporter_id), max(seq), bool_or(closes) \
                 FROM sensor_events WHERE NOT done GROUP BY feed_id, sensor, kind, session \
                 HAVING bool_or(closes) OR max(received_at) < $1 ORDER BY min(seq) LIMIT $2",
                &[&idle_before, &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| PendingSession {
                feed_id: r.get(0),
                sensor: r.get(1),
                kind: r.get(2),
                session: r.get(3),
                reporter_id: r.get(4),
                last_seq: r.get(5),
                closed: r.get(6),
            })
            .collect())
    }

    pub(super) async fn events_of_session(
        &self,
        feed_id: i64,
        sensor: &str,
        kind: &str,
        session: &str,
        limit: usize,
    ) -> Result<Vec<StoredSensorEvent>> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM sensor_events WHERE feed_id = $1 AND sensor = $2 AND kind = $3 AND session = $4 \
                     ORDER BY seq LIMIT $5"
                ),
                &[&feed_id, &sensor, &kind, &session, &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(from_row).collect())
    }

    pub(super) async fn events_finish(&self, sessions: &[PendingSession]) -> Result<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let st = tx
            .prepare(
                "UPDATE sensor_events SET done = true WHERE feed_id = $1 AND sensor = $2 AND kind = $3 AND session = $4 \
                 AND seq <= $5 AND NOT done",
            )
            .await
            .map_err(pg_error)?;
        for s in sessions {
            tx.execute(&st, &[&s.feed_id, &s.sensor, &s.kind, &s.session, &s.last_seq]).await.map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    pub(super) async fn events_counts(&self, feed_id: i64) -> Result<SensorEventCounts> {
        let client = self.client().await?;
        let r = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE NOT done), count(DISTINCT sensor) FROM sensor_events WHERE feed_id = $1",
                &[&feed_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(SensorEventCounts { events: r.get(0), pending: r.get(1), sensors: r.get(2) })
    }

    pub(super) async fn events_after(&self, feed_id: i64, after: i64, limit: usize) -> Result<Vec<StoredSensorEvent>> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM sensor_events WHERE feed_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
                &[&feed_id, &after, &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(from_row).collect())
    }
}
