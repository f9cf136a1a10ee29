//! `apiary migrate`: copy a SQLite hub into an empty PostgreSQL store, keeping every id, token
//! hash and log seq, then check the counts. Read in one SQLite read transaction (a consistent
//! snapshot), written in chunks of multi-row `INSERT … SELECT FROM unnest(…)`, in one
//! PostgreSQL transaction: a failure leaves the target empty.

use super::{parse_itype, pg_error, tlp_rank, PostgresStore};
use crate::model::{Timestamp, Tlp};
use crate::sqlite::keys::{addr_range, search_keys};
use crate::sqlite::DB_FILE;
use crate::{Result, StoreError};
use chrono::DateTime;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Rows per chunk read and written.
const CHUNK: i64 = 5_000;

/// What was copied: (table, rows in SQLite, rows in PostgreSQL after the copy).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    pub tables: Vec<(String, i64, i64)>,
    /// Tables of the SQLite hub that are not copied but hold rows (re-derived by the hub's jobs).
    pub not_copied: Vec<(String, i64)>,
}

impl MigrateReport {
    pub fn verified(&self) -> bool {
        self.tables.iter().all(|(_, a, b)| a == b)
    }
}

fn sq(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(format!("reading the SQLite hub: {e}"))
}

fn ts(us: i64) -> Timestamp {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn json_strings(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn json_ints(s: &str) -> Vec<i64> {
    serde_json::from_str(s).unwrap_or_default()
}

fn tlp(s: &str) -> i16 {
    tlp_rank(Tlp::parse(s).unwrap_or_default())
}

/// The tables copied, in dependency order.
pub const COPIED: &[&str] = &[
    "users",
    "tokens",
    "feeds",
    "feed_grants",
    "hpfeeds_idents",
    "indicators",
    "indicator_reporters",
    "feed_records",
    "sightings",
    "sighting_keys",
    "feed_subscriptions",
    "webhooks",
    "sources",
    "feedback",
    "sensors",
    "sensor_events",
    "sessions",
    "session_payloads",
];

/// Tables copied column by column by name (same columns in both schemas), converted by the
/// PostgreSQL column's type: what no job can rebuild (pinned tiers, sensors, raw sensor events
/// with their idempotency keys, sessions, feedback). Only derived data (indicator_scores,
/// feed_comparison) is left to the hub's jobs.
const COPIED_BY_NAME: &[(&str, &str)] = &[
    ("sources", "feed_id"),
    ("feedback", "id"),
    ("sensors", "feed_id, name"),
    ("sensor_events", "seq"),
    ("sessions", "id"),
    ("session_payloads", "session_id, sha256"),
];

impl PostgresStore {
    /// Copy the SQLite hub in `dir` into this (empty) store. `progress(table, done, total)` is
    /// called after each chunk.
    pub async fn import_sqlite(&self, dir: &Path, mut progress: impl FnMut(&str, i64, i64)) -> Result<MigrateReport> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::NotFound(format!("no SQLite hub in {} (expected {DB_FILE})", dir.display())));
        }
        // Bring the SQLite schema up to date first (as the hub would on start).
        drop(crate::sqlite::SqliteStore::open(dir)?);
        let src = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(sq)?;
        src.execute_batch("BEGIN").map_err(sq)?;
        let count = |sql: &str| -> Result<i64> { src.query_row(sql, [], |r| r.get(0)).map_err(sq) };

        // The log's monthly partitions, made before the copy's transaction (making one waits for
        // transactions that hold the parent table).
        let months: Vec<Timestamp> = src
            .prepare("SELECT min(received_at) FROM sightings GROUP BY strftime('%Y-%m', received_at / 1000000, 'unixepoch')")
            .map_err(sq)?
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(sq)?
            .map(|r| r.map(ts))
            .collect::<Result<_, _>>()
            .map_err(sq)?;
        self.ensure_partitions(months.into_iter()).await?;

        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let busy: i64 = tx
            .query_one("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM feeds) + (SELECT count(*) FROM sightings)", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        if busy > 0 {
            return Err(StoreError::Conflict(
                "the target PostgreSQL store is not empty (it has users, feeds or sightings): migrate into a new database".into(),
            ));
        }

        let mut report = MigrateReport { tables: Vec::new(), not_copied: Vec::new() };
        let mut source_counts = Vec::new();

        // users, tokens, feeds, grants, idents: small; one chunk each.
        {
            let total = count("SELECT count(*) FROM users")?;
            let mut st = src.prepare("SELECT id, name, admin, created_at FROM users ORDER BY id").map_err(sq)?;
            let rows: Vec<(i64, String, bool, i64)> =
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?))).map_err(sq)?.collect::<Result<_, _>>().map_err(sq)?;
            let (id, name, admin, at): (Vec<i64>, Vec<String>, Vec<bool>, Vec<Timestamp>) = unzip4(rows.into_iter().map(|(a, b, c, d)| (a, b, c, ts(d))));
            tx.execute("INSERT INTO users (id, name, admin, created_at) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::timestamptz[])", &[&id, &name, &admin, &at])
                .await
                .map_err(pg_error)?;
            progress("users", total, total);
            source_counts.push(("users", total));
        }
        {
            let total = count("SELECT count(*) FROM tokens")?;
            let mut st = src.prepare("SELECT id, user_id, hash, scopes, label, created_at, expires_at, revoked FROM tokens ORDER BY id").map_err(sq)?;
            let mut cols: (Vec<i64>, Vec<i64>, Vec<Vec<u8>>, Vec<String>, Vec<Option<String>>, Vec<Timestamp>, Vec<Option<Timestamp>>, Vec<bool>) = Default::default();
            let mut rows = st.query([]).map_err(sq)?;
            while let Some(r) = rows.next().map_err(sq)? {
                cols.0.push(r.get(0).map_err(sq)?);
                cols.1.push(r.get(1).map_err(sq)?);
                cols.2.push(r.get(2).map_err(sq)?);
                cols.3.push(r.get(3).map_err(sq)?);
                cols.4.push(r.get(4).map_err(sq)?);
                cols.5.push(ts(r.get(5).map_err(sq)?));
                cols.6.push(r.get::<_, Option<i64>>(6).map_err(sq)?.map(ts));
                cols.7.push(r.get::<_, i64>(7).map_err(sq)? != 0);
            }
            tx.execute(
                "INSERT INTO tokens (id, user_id, hash, scopes, label, created_at, expires_at, revoked) SELECT * FROM unnest($1::bigint[], \
                 $2::bigint[], $3::bytea[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::bool[])",
                &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6, &cols.7],
            )
            .await
            .map_err(pg_error)?;
            progress("tokens", total, total);
            source_counts.push(("tokens", total));
        }
        {
            let total = count("SELECT count(*) FROM feeds")?;
            let mut st = src
                .prepare("SELECT id, owner_id, name, description, license_name, license_url, visibility, created_at, updated_at FROM feeds ORDER BY id")
                .map_err(sq)?;
            let mut c: (Vec<i64>, Vec<i64>, Vec<String>, Vec<Option<String>>, Vec<Option<String>>, Vec<Option<String>>, Vec<String>, Vec<Timestamp>, Vec<Timestamp>) = Default::default();
            let mut rows = st.query([]).map_err(sq)?;
            while let Some(r) = rows.next().map_err(sq)? {
                c.0.push(r.get(0).map_err(sq)?);
                c.1.push(r.get(1).map_err(sq)?);
                c.2.push(r.get(2).map_err(sq)?);
                c.3.push(r.get(3).map_err(sq)?);
                c.4.push(r.get(4).map_err(sq)?);
                c.5.push(r.get(5).map_err(sq)?);
                c.6.push(r.get(6).map_err(sq)?);
                c.7.push(ts(r.get(7).map_err(sq)?));
                c.8.push(ts(r.get(8).map_err(sq)?));
            }
            tx.execute(
                "INSERT INTO feeds (id, owner_id, name, description, license_name, license_url, visibility, created_at, updated_at) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])",
                &[&c.0, &c.1, &c.2, &c.3, &c.4, &c.5, &c.6, &c.7, &c.8],
            )
            .await
            .map_err(pg_error)?;
            progress("feeds", total, total);
            source_counts.push(("feeds", total));
        }
        {
            let total = count("SELECT count(*) FROM feed_grants")?;
            let pairs: Vec<(i64, i64)> = src
                .prepare("SELECT feed_id, user_id FROM feed_grants")
                .map_err(sq)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sq)?
                .collect::<Result<_, _>>()
                .map_err(sq)?;
            let (f, u): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
            tx.execute("INSERT INTO feed_grants (feed_id, user_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])", &[&f, &u]).await.map_err(pg_error)?;
            progress("feed_grants", total, total);
            source_counts.push(("feed_grants", total));
        }
        {
            let total = count("SELECT count(*) FROM hpfeeds_idents")?;
            let mut st = src
                .prepare("SELECT ident, secret, publish, subscribe, feed_owner, feed_name, created_at, updated_at FROM hpfeeds_idents")
                .map_err(sq)?;
            let mut rows = st.query([]).map_err(sq)?;
            while let Some(r) = rows.next().map_err(sq)? {
                let (ident, secret, publish, subscribe): (String, String, String, String) =
                    (r.get(0).map_err(sq)?, r.get(1).map_err(sq)?, r.get(2).map_err(sq)?, r.get(3).map_err(sq)?);
                let (owner, name): (Option<String>, Option<String>) = (r.get(4).map_err(sq)?, r.get(5).map_err(sq)?);
                let (c, u) = (ts(r.get(6).map_err(sq)?), ts(r.get(7).map_err(sq)?));
                tx.execute(
                    "INSERT INTO hpfeeds_idents (ident, secret, publish, subscribe, feed_owner, feed_name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&ident, &secret, &json_strings(&publish), &json_strings(&subscribe), &owner, &name, &c, &u],
                )
                .await
                .map_err(pg_error)?;
            }
            progress("hpfeeds_idents", total, total);
            source_counts.push(("hpfeeds_idents", total));
        }

        // indicators (+ their reporters), in chunks by id.
        {
            let total = count("SELECT count(*) FROM indicators")?;
            let mut reporters_total = 0i64;
            let mut done = 0i64;
            let mut after = i64::MIN;
            let mut st = src
                .prepare("SELECT id, value, itype, firsttime, lasttime, count, reserved, reporters FROM indicators WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(sq)?;
            loop {
                let mut c: (Vec<i64>, Vec<String>, Vec<String>, Vec<Timestamp>, Vec<Timestamp>, Vec<i64>, Vec<Option<String>>, Vec<Option<String>>, Vec<Option<String>>) =
                    Default::default();
                let (mut ri, mut rr): (Vec<i64>, Vec<i64>) = Default::default();
                let mut rows = st.query(rusqlite::params![after, CHUNK]).map_err(sq)?;
                while let Some(r) = rows.next().map_err(sq)? {
                    let id: i64 = r.get(0).map_err(sq)?;
                    let value: String = r.get(1).map_err(sq)?;
                    let itype: String = r.get(2).map_err(sq)?;
                    let keys = search_keys(parse_itype(&itype)?, &value);
                    c.7.push(keys.addr_start.as_ref().and(addr_range(&value)).map(|_| value.clone()));
                    c.8.push(keys.host_key);
                    for rep in json_ints(&r.get::<_, String>(7).map_err(sq)?) {
                        ri.push(id);
                        rr.push(rep);
                    }
                    c.0.push(id);
                    c.1.push(value);
                    c.2.push(itype);
                    c.3.push(ts(r.get(3).map_err(sq)?));
                    c.4.push(ts(r.get(4).map_err(sq)?));
                    c.5.push(r.get(5).map_err(sq)?);
                    c.6.push(r.get(6).map_err(sq)?);
                }
                let Some(&last) = c.0.last() else { break };
                after = last;
                done += c.0.len() as i64;
                tx.execute(
                    "INSERT INTO indicators (id, value, itype, firsttime, lasttime, count, reserved, addr, host_key) \
                     SELECT i, v, t, f, l, n, r, a::inet, h FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], \
                     $5::timestamptz[], $6::bigint[], $7::text[], $8::text[], $9::text[]) AS u(i, v, t, f, l, n, r, a, h)",
                    &[&c.0, &c.1, &c.2, &c.3, &c.4, &c.5, &c.6, &c.7, &c.8],
                )
                .await
                .map_err(pg_error)?;
                reporters_total += ri.len() as i64;
                tx.execute(
                    "INSERT INTO indicator_reporters (indicator_id, reporter_id) SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
                    &[&ri, &rr],
                )
                .await
                .map_err(pg_error)?;
                progress("indicators", done, total);
            }
            source_counts.push(("indicators", total));
            source_counts.push(("indicator_reporters", reporters_total));
        }

        // feed records, in chunks by id.
        {
            let total = count("SELECT count(*) FROM feed_records")?;
            let mut done = 0i64;
            let mut after = i64::MIN;
            let mut st = src
                .prepare(
                    "SELECT id, feed_id, indicator_id, firsttime, lasttime, reporttime, count, tags, ports, protocol, description, tlp, \
                     claimed_confidence, reserved, created_at, updated_at FROM feed_records WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(sq)?;
            loop {
                let mut rows = st.query(rusqlite::params![after, CHUNK]).map_err(sq)?;
                let mut c = RecordCols::default();
                while let Some(r) = rows.next().map_err(sq)? {
                    c.id.push(r.get(0).map_err(sq)?);
                    c.feed.push(r.get(1).map_err(sq)?);
                    c.ind.push(r.get(2).map_err(sq)?);
                    c.first.push(ts(r.get(3).map_err(sq)?));
                    c.last.push(ts(r.get(4).map_err(sq)?));
                    c.report.push(ts(r.get(5).map_err(sq)?));
                    c.count.push(r.get(6).map_err(sq)?);
                    c.tags.push(r.get(7).map_err(sq)?);
                    c.ports.push(r.get(8).map_err(sq)?);
                    c.protocol.push(r.get(9).map_err(sq)?);
                    c.description.push(r.get(10).map_err(sq)?);
                    c.tlp.push(tlp(&r.get::<_, String>(11).map_err(sq)?));
                    c.confidence.push(r.get(12).map_err(sq)?);
                    c.reserved.push(r.get(13).map_err(sq)?);
                    c.created.push(ts(r.get(14).map_err(sq)?));
                    c.updated.push(ts(r.get(15).map_err(sq)?));
                }
                let Some(&last) = c.id.last() else { break };
                after = last;
                done += c.id.len() as i64;
                tx.execute(
                    "INSERT INTO feed_records (id, feed_id, indicator_id, firsttime, lasttime, reporttime, count, tags, ports, protocol, \
                     description, tlp, claimed_confidence, reserved, created_at, updated_at) \
                     SELECT i, fe, ind, f, l, rt, n, ARRAY(SELECT jsonb_array_elements_text(tg::jsonb)), \
                         ARRAY(SELECT jsonb_array_elements_text(po::jsonb)::integer), pr, de, tl, cc, re, ca, ua \
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], \
                         $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::smallint[], $13::float8[], $14::text[], \
                         $15::timestamptz[], $16::timestamptz[]) AS u(i, fe, ind, f, l, rt, n, tg, po, pr, de, tl, cc, re, ca, ua)",
                    &[
                        &c.id, &c.feed, &c.ind, &c.first, &c.last, &c.report, &c.count, &c.tags, &c.ports, &c.protocol, &c.description,
                        &c.tlp, &c.confidence, &c.reserved, &c.created, &c.updated,
                    ],
                )
                .await
                .map_err(pg_error)?;
                progress("feed_records", done, total);
            }
            source_counts.push(("feed_records", total));
        }

        // the sightings log (with its seqs) and the idempotency keys, in chunks by seq.
        {
            let total = count("SELECT count(*) FROM sightings")?;
            let keys_total = count("SELECT count(*) FROM sightings WHERE idempotency_key IS NOT NULL")?;
            let mut done = 0i64;
            let mut after = i64::MIN;
            let mut st = src
                .prepare(
                    "SELECT seq, feed_id, record_id, reporter_id, reserved, observed_at, observed_until, received_at, tags, ports, protocol, \
                     description, tlp, claimed_confidence, sensor, count, extra, idempotency_key FROM sightings WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(sq)?;
            loop {
                let mut rows = st.query(rusqlite::params![after, CHUNK]).map_err(sq)?;
                let mut c = LogCols::default();
                while let Some(r) = rows.next().map_err(sq)? {
                    c.seq.push(r.get(0).map_err(sq)?);
                    c.feed.push(r.get(1).map_err(sq)?);
                    c.record.push(r.get(2).map_err(sq)?);
                    c.reporter.push(r.get(3).map_err(sq)?);
                    c.reserved.push(r.get(4).map_err(sq)?);
                    c.observed.push(ts(r.get(5).map_err(sq)?));
                    c.until.push(r.get::<_, Option<i64>>(6).map_err(sq)?.map(ts));
                    c.received.push(ts(r.get(7).map_err(sq)?));
                    c.tags.push(r.get(8).map_err(sq)?);
                    c.ports.push(r.get(9).map_err(sq)?);
                    c.protocol.push(r.get(10).map_err(sq)?);
                    c.description.push(r.get(11).map_err(sq)?);
                    c.tlp.push(tlp(&r.get::<_, String>(12).map_err(sq)?));
                    c.confidence.push(r.get(13).map_err(sq)?);
                    c.sensor.push(r.get(14).map_err(sq)?);
                    c.count.push(r.get(15).map_err(sq)?);
                    c.extra.push(r.get(16).map_err(sq)?);
                    c.key.push(r.get(17).map_err(sq)?);
                }
                let Some(&last) = c.seq.last() else { break };
                after = last;
                done += c.seq.len() as i64;
                drop(rows);
                tx.execute(
                    "INSERT INTO sightings (seq, feed_id, record_id, reporter_id, reserved, observed_at, observed_until, received_at, tags, \
                     ports, protocol, description, tlp, claimed_confidence, sensor, count, extra, idempotency_key) \
                     SELECT s, fe, re, rp, rs, oa, ou, ra, ARRAY(SELECT jsonb_array_elements_text(tg::jsonb)), \
                         ARRAY(SELECT jsonb_array_elements_text(po::jsonb)::integer), pr, de, tl, cc, se, n, \
                         CASE WHEN ex IS NULL OR ex = '' THEN 'null'::jsonb ELSE ex::jsonb END, k \
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::timestamptz[], $7::timestamptz[], \
                         $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::smallint[], $14::float8[], $15::text[], \
                         $16::bigint[], $17::text[], $18::text[]) AS u(s, fe, re, rp, rs, oa, ou, ra, tg, po, pr, de, tl, cc, se, n, ex, k)",
                    &[
                        &c.seq, &c.feed, &c.record, &c.reporter, &c.reserved, &c.observed, &c.until, &c.received, &c.tags, &c.ports, &c.protocol,
                        &c.description, &c.tlp, &c.confidence, &c.sensor, &c.count, &c.extra, &c.key,
                    ],
                )
                .await
                .map_err(pg_error)?;
                tx.execute(
                    "INSERT INTO sighting_keys (feed_id, idempotency_key, record_id) \
                     SELECT fe, k, re FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(fe, k, re) WHERE k IS NOT NULL \
                     ON CONFLICT DO NOTHING",
                    &[&c.feed, &c.key, &c.record],
                )
                .await
                .map_err(pg_error)?;
                progress("sightings", done, total);
            }
            source_counts.push(("sightings", total));
            source_counts.push(("sighting_keys", keys_total));
        }

        // subscriptions and webhooks.
        {
            let total = count("SELECT count(*) FROM feed_subscriptions")?;
            let rows: Vec<(i64, i64, i64)> = src
                .prepare("SELECT user_id, feed_id, created_at FROM feed_subscriptions")
                .map_err(sq)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(sq)?
                .collect::<Result<_, _>>()
                .map_err(sq)?;
            let u: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let f: Vec<i64> = rows.iter().map(|r| r.1).collect();
            let at: Vec<Timestamp> = rows.iter().map(|r| ts(r.2)).collect();
            tx.execute(
                "INSERT INTO feed_subscriptions (user_id, feed_id, created_at) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[])",
                &[&u, &f, &at],
            )
            .await
            .map_err(pg_error)?;
            progress("feed_subscriptions", total, total);
            source_counts.push(("feed_subscriptions", total));
        }
        {
            let total = count("SELECT count(*) FROM webhooks")?;
            let mut st = src
                .prepare("SELECT id, user_id, url, secret, filter, cursor, state, failures, last_error, created_at, updated_at FROM webhooks ORDER BY id")
                .map_err(sq)?;
            let mut rows = st.query([]).map_err(sq)?;
            while let Some(r) = rows.next().map_err(sq)? {
                let (id, user, url, secret): (i64, i64, String, String) = (r.get(0).map_err(sq)?, r.get(1).map_err(sq)?, r.get(2).map_err(sq)?, r.get(3).map_err(sq)?);
                let filter: serde_json::Value = serde_json::from_str(&r.get::<_, String>(4).map_err(sq)?).unwrap_or_else(|_| serde_json::json!({}));
                let (cursor, state, failures, err): (i64, String, i64, Option<String>) = (r.get(5).map_err(sq)?, r.get(6).map_err(sq)?, r.get(7).map_err(sq)?, r.get(8).map_err(sq)?);
                let (c, u) = (ts(r.get(9).map_err(sq)?), ts(r.get(10).map_err(sq)?));
                tx.execute(
                    "INSERT INTO webhooks (id, user_id, url, secret, filter, cursor, state, failures, last_error, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    &[&id, &user, &url, &secret, &filter, &cursor, &state, &failures, &err, &c, &u],
                )
                .await
                .map_err(pg_error)?;
            }
            progress("webhooks", total, total);
            source_counts.push(("webhooks", total));
        }

        for (table, order) in COPIED_BY_NAME {
            let total = count(&format!("SELECT count(*) FROM {table}"))?;
            copy_by_name(&src, &tx, table, order, total, &mut progress).await?;
            source_counts.push((table, total));
        }

        // Sequences continue after the copied ids.
        tx.batch_execute(
            "SELECT setval('users_id_seq', greatest((SELECT max(id) FROM users), 1)); \
             SELECT setval('tokens_id_seq', greatest((SELECT max(id) FROM tokens), 1)); \
             SELECT setval('feeds_id_seq', greatest((SELECT max(id) FROM feeds), 1)); \
             SELECT setval('indicators_id_seq', greatest((SELECT max(id) FROM indicators), 1)); \
             SELECT setval('feed_records_id_seq', greatest((SELECT max(id) FROM feed_records), 1)); \
             SELECT setval('webhooks_id_seq', greatest((SELECT max(id) FROM webhooks), 1)); \
             SELECT setval('sightings_seq', greatest((SELECT max(seq) FROM sightings), 1)); \
             SELECT setval(pg_get_serial_sequence('feedback', 'id'), greatest((SELECT max(id) FROM feedback), 1)); \
             SELECT setval(pg_get_serial_sequence('sensor_events', 'seq'), greatest((SELECT max(seq) FROM sensor_events), 1)); \
             SELECT setval(pg_get_serial_sequence('sessions', 'id'), greatest((SELECT max(id) FROM sessions), 1));",
        )
        .await
        .map_err(pg_error)?;

        // Verify inside the transaction: commit only if every count matches.
        for (table, n) in source_counts {
            let got: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.map_err(pg_error)?.get(0);
            report.tables.push((table.to_string(), n, got));
        }
        let known: Vec<String> = src
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(sq)?
            .query_map([], |r| r.get(0))
            .map_err(sq)?
            .collect::<Result<_, _>>()
            .map_err(sq)?;
        for t in known {
            if COPIED.contains(&t.as_str()) || t == "record_tags" || t == "job_leases" {
                continue;
            }
            let n = count(&format!("SELECT count(*) FROM \"{t}\""))?;
            if n > 0 {
                report.not_copied.push((t, n));
            }
        }
        if !report.verified() {
            let bad: Vec<String> = report.tables.iter().filter(|(_, a, b)| a != b).map(|(t, a, b)| format!("{t}: {a} in SQLite, {b} in PostgreSQL")).collect();
            return Err(StoreError::Internal(format!("counts differ, nothing committed: {}", bad.join("; "))));
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(report)
    }
}

/// Copy `table` from SQLite into the same-named PostgreSQL table, in chunks of `CHUNK` rows sent
/// as one JSON array (`jsonb_populate_recordset`). Each value is converted by the PostgreSQL
/// column's type: microseconds to timestamptz, 0/1 to boolean, JSON text to jsonb.
async fn copy_by_name(
    src: &Connection,
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    order: &str,
    total: i64,
    progress: &mut impl FnMut(&str, i64, i64),
) -> Result<()> {
    let pg_cols: Vec<(String, String)> = tx
        .query("SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", &[&table])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut st = src.prepare(&format!("SELECT * FROM {table} ORDER BY {order}")).map_err(sq)?;
    // The columns both schemas have, with the PostgreSQL type of each.
    let cols: Vec<(usize, String, String)> = st
        .column_names()
        .iter()
        .enumerate()
        .filter_map(|(i, n)| pg_cols.iter().find(|(c, _)| c == n).map(|(c, t)| (i, c.clone(), t.clone())))
        .collect();
    let list = cols.iter().map(|(_, c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    let insert = format!("INSERT INTO {table} ({list}) SELECT {list} FROM jsonb_populate_recordset(null::{table}, $1::jsonb)");
    let mut rows = st.query([]).map_err(sq)?;
    let mut chunk = Vec::new();
    let mut done = 0i64;
    loop {
        let row = rows.next().map_err(sq)?;
        if let Some(r) = row {
            let mut obj = serde_json::Map::new();
            for (i, name, ty) in &cols {
                obj.insert(name.clone(), convert(r.get_ref(*i).map_err(sq)?, ty));
            }
            chunk.push(serde_json::Value::Object(obj));
        }
        let end = row.is_none();
        if chunk.len() as i64 >= CHUNK || (end && !chunk.is_empty()) {
            done += chunk.len() as i64;
            let batch = serde_json::Value::Array(std::mem::take(&mut chunk));
            tx.execute(insert.as_str(), &[&batch]).await.map_err(pg_error)?;
            progress(table, done, total);
        }
        if end {
            break;
        }
    }
    if total == 0 {
        progress(table, 0, 0);
    }
    Ok(())
}

/// One SQLite value as JSON for a PostgreSQL column of type `ty`.
fn convert(v: rusqlite::types::ValueRef<'_>, ty: &str) -> serde_json::Value {
    use rusqlite::types::ValueRef as V;
    use serde_json::Value as J;
    match (v, ty) {
        (V::Null, _) => J::Null,
        (V::Integer(us), "timestamp with time zone") => J::String(ts(us).to_rfc3339()),
        (V::Integer(b), "boolean") => J::Bool(b != 0),
        (V::Text(t), "jsonb" | "json" | "ARRAY") => {
            let t = String::from_utf8_lossy(t);
            serde_json::from_str(&t).unwrap_or(J::String(t.into_owned()))
        }
        (V::Integer(n), _) => J::from(n),
        (V::Real(x), _) => serde_json::Number::from_f64(x).map(J::Number).unwrap_or(J::Null),
        (V::Text(t), _) => J::String(String::from_utf8_lossy(t).into_owned()),
        (V::Blob(b), _) => J::String(format!("\\x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())),
    }
}

#[derive(Default)]
struct RecordCols {
    id: Vec<i64>,
    feed: Vec<i64>,
    ind: Vec<i64>,
    first: Vec<Timestamp>,
    last: Vec<Timestamp>,
    report: Vec<Timestamp>,
    count: Vec<i64>,
    tags: Vec<String>,
    ports: Vec<String>,
    protocol: Vec<Option<String>>,
    description: Vec<Option<String>>,
    tlp: Vec<i16>,
    confidence: Vec<Option<f64>>,
    reserved: Vec<Option<String>>,
    created: Vec<Timestamp>,
    updated: Vec<Timestamp>,
}

#[derive(Default)]
struct LogCols {
    seq: Vec<i64>,
    feed: Vec<i64>,
    record: Vec<i64>,
    reporter: Vec<i64>,
    reserved: Vec<Option<String>>,
    observed: Vec<Timestamp>,
    until: Vec<Option<Timestamp>>,
    received: Vec<Timestamp>,
    tags: Vec<String>,
    ports: Vec<String>,
    protocol: Vec<Option<String>>,
    description: Vec<Option<String>>,
    tlp: Vec<i16>,
    confidence: Vec<Option<f64>>,
    sensor: Vec<Option<String>>,
    count: Vec<i64>,
    extra: Vec<Option<String>>,
    key: Vec<Option<String>>,
}

#[allow(clippy::type_complexity)]
fn unzip4<A, B, C, D>(it: impl Iterator<Item = (A, B, C, D)>) -> (Vec<A>, Vec<B>, Vec<C>, Vec<D>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, b, c, d) in it {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
    }
    out
}
