//! Appending sightings: one transaction per batch. Each sighting's value and feed record are
//! upserted (`INSERT … ON CONFLICT`, so appends from several nodes merge), and the batch's
//! sightings go into the log with multi-row `INSERT`s at the end.

use super::{pg_error, tlp_rank, to_micros, PostgresStore};
use crate::model::*;
use crate::sqlite::keys::{addr_range, search_keys};
use crate::{Result, StoreError};
use tokio_postgres::types::ToSql;

/// Rows per multi-row `INSERT` into the log (PostgreSQL takes at most 65,535 parameters).
const LOG_ROWS_PER_INSERT: usize = 1_000;

/// A sighting checked and normalised before the transaction starts.
struct Prepared {
    s: NewSighting,
    /// The value as an `inet` (text), for ipv4/ipv6 values and CIDRs.
    addr: Option<String>,
    host_key: Option<String>,
    first: Timestamp,
    last: Timestamp,
    ports: Vec<i32>,
}

fn prepare(batch: Vec<NewSighting>) -> Result<Vec<Prepared>> {
    batch
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            if s.value.is_empty() {
                return Err(StoreError::Invalid(format!("sighting {i}: empty indicator value")));
            }
            if s.count < 0 {
                return Err(StoreError::Invalid(format!("sighting {i} ({}): negative count {}", s.value, s.count)));
            }
            let mut tags: Vec<String> = s.tags.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
            tags.sort_unstable();
            tags.dedup();
            s.tags = tags;
            s.ports.sort_unstable();
            s.ports.dedup();
            s.observed_at = to_micros(s.observed_at);
            s.observed_until = s.observed_until.map(to_micros);
            s.received_at = to_micros(s.received_at);
            let a = s.observed_at;
            let b = s.observed_until.unwrap_or(a);
            let keys = search_keys(s.itype, &s.value);
            let addr = keys.addr_start.as_ref().and(addr_range(&s.value)).map(|_| s.value.clone());
            Ok(Prepared {
                addr,
                host_key: keys.host_key,
                first: a.min(b),
                last: a.max(b),
                ports: s.ports.iter().map(|p| i32::from(*p)).collect(),
                s,
            })
        })
        .collect()
}

const UPSERT_INDICATOR: &str = "INSERT INTO indicators AS i (value, itype, firsttime, lasttime, count, reserved, addr, host_key) \
     VALUES ($1, $2, $3, $4, $5, $6, $7::text::inet, $8) \
     ON CONFLICT (value) DO UPDATE SET \
         firsttime = least(i.firsttime, excluded.firsttime), \
         lasttime = greatest(i.lasttime, excluded.lasttime), \
         count = i.count + excluded.count, \
         reserved = CASE WHEN excluded.reserved IS NOT NULL AND (excluded.lasttime >= i.lasttime OR i.reserved IS NULL) \
                         THEN excluded.reserved ELSE i.reserved END \
     RETURNING id";

/// The merge rules of `sqlite/append.rs` (`RecordState::merge`), as one upsert.
const UPSERT_RECORD: &str = "INSERT INTO feed_records AS r (feed_id, indicator_id, firsttime, lasttime, reporttime, count, tags, \
         ports, protocol, description, tlp, claimed_confidence, reserved, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
     ON CONFLICT (indicator_id, feed_id) DO UPDATE SET \
         firsttime = least(r.firsttime, excluded.firsttime), \
         lasttime = greatest(r.lasttime, excluded.lasttime), \
         reporttime = greatest(r.reporttime, excluded.reporttime), \
         count = r.count + excluded.count, \
         tags = ARRAY(SELECT t FROM (SELECT DISTINCT t FROM unnest(r.tags || excluded.tags) t) d ORDER BY t COLLATE \"C\"), \
         ports = ARRAY(SELECT DISTINCT p FROM unnest(r.ports || excluded.ports) p ORDER BY p), \
         tlp = greatest(r.tlp, excluded.tlp), \
         protocol = CASE WHEN excluded.protocol IS NOT NULL AND (excluded.lasttime >= r.lasttime OR r.protocol IS NULL) \
                         THEN excluded.protocol ELSE r.protocol END, \
         description = CASE WHEN excluded.description IS NOT NULL AND (excluded.lasttime >= r.lasttime OR r.description IS NULL) \
                         THEN excluded.description ELSE r.description END, \
         reserved = CASE WHEN excluded.reserved IS NOT NULL AND (excluded.lasttime >= r.lasttime OR r.reserved IS NULL) \
                         THEN excluded.reserved ELSE r.reserved END, \
         claimed_confidence = CASE WHEN excluded.claimed_confidence IS NOT NULL \
                                        AND (excluded.lasttime >= r.lasttime OR r.claimed_confidence IS NULL) \
                         THEN excluded.claimed_confidence ELSE r.claimed_confidence END, \
         updated_at = excluded.updated_at \
     RETURNING id";

const LOG_COLUMNS: usize = 18;

impl PostgresStore {
    pub(super) async fn append_(&self, batch: Vec<NewSighting>) -> Result<Vec<AppendOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let items = prepare(batch)?;
        self.ensure_partitions(items.iter().map(|p| p.s.received_at)).await?;
        let now = to_micros(chrono::Utc::now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;

        // Every feed named must exist (and stays while we append: the rows are locked).
        let mut feeds: Vec<i64> = items.iter().map(|p| p.s.feed_id).collect();
        feeds.sort_unstable();
        feeds.dedup();
        let found: Vec<i64> = tx
            .query("SELECT id FROM feeds WHERE id = ANY($1) ORDER BY id FOR KEY SHARE", &[&feeds])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(missing) = feeds.iter().find(|f| !found.contains(f)) {
            return Err(StoreError::NotFound(format!("feed id {missing}")));
        }

        let upsert_indicator = tx.prepare(UPSERT_INDICATOR).await.map_err(pg_error)?;
        let upsert_record = tx.prepare(UPSERT_RECORD).await.map_err(pg_error)?;
        let add_reporter = tx
            .prepare("INSERT INTO indicator_reporters (indicator_id, reporter_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .await
            .map_err(pg_error)?;
        let claim_key = tx
            .prepare(
                "INSERT INTO sighting_keys (feed_id, idempotency_key, record_id) VALUES ($1, $2, 0) \
                 ON CONFLICT DO NOTHING RETURNING 1",
            )
            .await
            .map_err(pg_error)?;
        let key_record =
            tx.prepare("SELECT record_id FROM sighting_keys WHERE feed_id = $1 AND idempotency_key = $2").await.map_err(pg_error)?;
        let set_key_record = tx
            .prepare("UPDATE sighting_keys SET record_id = $3 WHERE feed_id = $1 AND idempotency_key = $2")
            .await
            .map_err(pg_error)?;

        let mut outcomes: Vec<AppendOutcome> = Vec::with_capacity(items.len());
        // (index into items, record id) of the sightings to log, in request order.
        let mut logged: Vec<(usize, i64)> = Vec::with_capacity(items.len());
        for (i, p) in items.iter().enumerate() {
            let s = &p.s;
            if let Some(key) = &s.idempotency_key {
                // Claiming the key waits for a concurrent claimer's commit, then sees its row.
                if tx.query_opt(&claim_key, &[&s.feed_id, key]).await.map_err(pg_error)?.is_none() {
                    let record_id: i64 = tx.query_one(&key_record, &[&s.feed_id, key]).await.map_err(pg_error)?.get(0);
                    outcomes.push(AppendOutcome { seq: None, record_id, duplicate: true });
                    continue;
                }
            }
            let indicator_id: i64 = tx
                .query_one(
                    &upsert_indicator,
                    &[&s.value, &s.itype.as_str(), &p.first, &p.last, &s.count, &s.reserved, &p.addr, &p.host_key],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            tx.execute(&add_reporter, &[&indicator_id, &s.reporter_id]).await.map_err(pg_error)?;
            let record_id: i64 = tx
                .query_one(
                    &upsert_record,
                    &[
                        &s.feed_id,
                        &indicator_id,
                        &p.first,
                        &p.last,
                        &s.received_at,
                        &s.count,
                        &s.tags,
                        &p.ports,
                        &s.protocol,
                        &s.description,
                        &tlp_rank(s.tlp),
                        &s.claimed_confidence,
                        &s.reserved,
                        &now,
                    ],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            if let Some(key) = &s.idempotency_key {
                tx.execute(&set_key_record, &[&s.feed_id, key, &record_id]).await.map_err(pg_error)?;
            }
            outcomes.push(AppendOutcome { seq: None, record_id, duplicate: false });
            logged.push((i, record_id));
        }

        // Log positions, in request order.
        let seqs: Vec<i64> = tx
            .query("SELECT nextval('sightings_seq') FROM generate_series(1, $1::bigint) ORDER BY 1", &[&(logged.len() as i64)])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut seq_of = vec![None; items.len()];
        for ((i, _), seq) in logged.iter().zip(&seqs) {
            seq_of[*i] = Some(*seq);
        }
        for (o, seq) in outcomes.iter_mut().zip(&seq_of) {
            o.seq = *seq;
        }

        let tlps: Vec<i16> = items.iter().map(|p| tlp_rank(p.s.tlp)).collect();
        for chunk in logged.iter().zip(&seqs).collect::<Vec<_>>().chunks(LOG_ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO sightings (seq, feed_id, record_id, reporter_id, reserved, observed_at, observed_until, received_at, \
                 tags, ports, protocol, description, tlp, claimed_confidence, sensor, count, extra, idempotency_key) VALUES ",
            );
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * LOG_COLUMNS);
            for (n, ((i, record_id), seq)) in chunk.iter().enumerate() {
                let p = &items[*i];
                let s = &p.s;
                if n > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..LOG_COLUMNS {
                    if c > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", n * LOG_COLUMNS + c + 1));
                }
                sql.push(')');
                params.extend_from_slice(&[
                    *seq,
                    &s.feed_id,
                    record_id,
                    &s.reporter_id,
                    &s.reserved,
                    &s.observed_at,
                    &s.observed_until,
                    &s.received_at,
                    &s.tags,
                    &p.ports,
                    &s.protocol,
                    &s.description,
                    &tlps[*i],
                    &s.claimed_confidence,
                    &s.sensor,
                    &s.count,
                    &s.extra,
                    &s.idempotency_key,
                ]);
            }
            tx.execute(sql.as_str(), &params).await.map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(outcomes)
    }
}
