//! Appending sightings: one transaction per batch, a handful of statements per batch whatever
//! its size. Values and feed records are upserted with multi-row `INSERT … SELECT FROM unnest(…)
//! ON CONFLICT` (so appends from several nodes merge), idempotency keys are claimed in one
//! statement, and the log gets multi-row `INSERT`s at the end.
//!
//! A value repeated in one batch is merged in order: the batch is cut into rounds, the k-th
//! occurrence of every value in round k, so each upsert touches a row once and the merge rules
//! apply as if the sightings came one by one.
//!
//! **Log order is commit order.** Seqs come from a sequence, and two transactions could commit
//! in the other order than they drew their seqs: a reader tailing the log by seq (the bus
//! feeder, every stream) would then skip the earlier one. So the seqs are drawn last, under a
//! transaction-level advisory lock held until the commit: a seq is visible only after every
//! smaller one is (or never will be). The lock covers the log insert and the commit only; the
//! upserts before it run in parallel.

use super::{pg_error, tlp_rank, to_micros, PostgresStore};
use crate::model::*;
use crate::sqlite::keys::{addr_range, search_keys};
use crate::{Result, StoreError};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
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

/// Key of the advisory lock that orders the log (see the module documentation).
const LOG_LOCK: i64 = 0x0061_7069_6172_7902;

/// The value upsert, one row per value of the round, merge rules of `sqlite/append.rs`.
const UPSERT_INDICATORS: &str = "INSERT INTO indicators AS i (value, itype, firsttime, lasttime, count, reserved, addr, host_key) \
     SELECT v, t, f, l, c, r, a::inet, h FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], \
         $5::bigint[], $6::text[], $7::text[], $8::text[]) AS u(v, t, f, l, c, r, a, h) ORDER BY v \
     ON CONFLICT (value) DO UPDATE SET \
         firsttime = least(i.firsttime, excluded.firsttime), \
         lasttime = greatest(i.lasttime, excluded.lasttime), \
         count = i.count + excluded.count, \
         reserved = CASE WHEN excluded.reserved IS NOT NULL AND (excluded.lasttime >= i.lasttime OR i.reserved IS NULL) \
                         THEN excluded.reserved ELSE i.reserved END \
     RETURNING value, id";

/// The merge rules of `sqlite/append.rs` (`RecordState::merge`), one row per record of the
/// round. Tags and ports arrive as array literals (`{"a","b"}`, `{22}`: unnest cannot take
/// ragged arrays of arrays), which PostgreSQL parses several times faster than JSON.
const UPSERT_RECORDS: &str = "INSERT INTO feed_records AS r (feed_id, indicator_id, firsttime, lasttime, reporttime, count, tags, \
         ports, protocol, description, tlp, claimed_confidence, reserved, created_at, updated_at) \
     SELECT fe, ind, f, l, rt, c, \
         tg::text[], po::integer[], \
         pr, de, tl, cc, re, $14, $14 \
     FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::bigint[], \
         $7::text[], $8::text[], $9::text[], $10::text[], $11::smallint[], $12::float8[], $13::text[]) \
         AS u(fe, ind, f, l, rt, c, tg, po, pr, de, tl, cc, re) ORDER BY ind, fe \
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
     RETURNING indicator_id, feed_id, id";

/// A PostgreSQL array literal of text: every element double-quoted, `"` and `\` escaped.
fn text_array_literal(v: &[String]) -> String {
    let mut out = String::with_capacity(2 + v.iter().map(|t| t.len() + 3).sum::<usize>());
    out.push('{');
    for (i, t) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in t.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// A PostgreSQL array literal of integers.
fn int_array_literal(v: &[i32]) -> String {
    let items: Vec<String> = v.iter().map(i32::to_string).collect();
    format!("{{{}}}", items.join(","))
}

const LOG_COLUMNS: usize = 18;

/// Why a sighting is not stored again: its idempotency key was stored before (with this
/// record), or an earlier sighting of the same batch carries the same key.
#[derive(Clone, Copy)]
enum Dup {
    Stored(i64),
    InBatch(usize),
}

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

        // 1. Idempotency keys, claimed in one statement. Claiming waits for a concurrent
        //    claimer's commit, then sees its row (read committed: the next statement does).
        let n = items.len();
        let mut dup: Vec<Option<Dup>> = vec![None; n];
        let mut first_of_key: HashMap<(i64, &str), usize> = HashMap::new();
        for (i, p) in items.iter().enumerate() {
            if let Some(key) = p.s.idempotency_key.as_deref() {
                match first_of_key.entry((p.s.feed_id, key)) {
                    Entry::Occupied(e) => dup[i] = Some(Dup::InBatch(*e.get())),
                    Entry::Vacant(v) => {
                        v.insert(i);
                    }
                }
            }
        }
        if !first_of_key.is_empty() {
            let (kf, kk): (Vec<i64>, Vec<&str>) = first_of_key.keys().copied().unzip();
            let claimed: HashSet<(i64, String)> = tx
                .query(
                    "INSERT INTO sighting_keys (feed_id, idempotency_key, record_id) \
                     SELECT f, k, 0 FROM unnest($1::bigint[], $2::text[]) AS u(f, k) ORDER BY f, k \
                     ON CONFLICT DO NOTHING RETURNING feed_id, idempotency_key",
                    &[&kf, &kk],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let (uf, uk): (Vec<i64>, Vec<&str>) =
                first_of_key.keys().filter(|(f, k)| !claimed.contains(&(*f, k.to_string()))).copied().unzip();
            if !uf.is_empty() {
                let rows = tx
                    .query(
                        "SELECT k.feed_id, k.idempotency_key, k.record_id FROM sighting_keys k \
                         JOIN unnest($1::bigint[], $2::text[]) AS u(f, kk) ON k.feed_id = u.f AND k.idempotency_key = u.kk",
                        &[&uf, &uk],
                    )
                    .await
                    .map_err(pg_error)?;
                for r in &rows {
                    let (f, k, record): (i64, &str, i64) = (r.get(0), r.get(1), r.get(2));
                    if let Some(&i) = first_of_key.get(&(f, k)) {
                        dup[i] = Some(Dup::Stored(record));
                    }
                }
            }
        }

        // 2. Values and feed records, in rounds (the k-th occurrence of each value in round k).
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        let mut occurrences: HashMap<&str, usize> = HashMap::new();
        for (i, p) in items.iter().enumerate() {
            if dup[i].is_some() {
                continue;
            }
            let k = occurrences.entry(p.s.value.as_str()).or_insert(0);
            if rounds.len() <= *k {
                rounds.push(Vec::new());
            }
            rounds[*k].push(i);
            *k += 1;
        }
        let mut indicator_of = vec![0i64; n];
        let mut record_of = vec![0i64; n];
        for round in &rounds {
            let values: Vec<&str> = round.iter().map(|&i| items[i].s.value.as_str()).collect();
            let itypes: Vec<&str> = round.iter().map(|&i| items[i].s.itype.as_str()).collect();
            let firsts: Vec<Timestamp> = round.iter().map(|&i| items[i].first).collect();
            let lasts: Vec<Timestamp> = round.iter().map(|&i| items[i].last).collect();
            let counts: Vec<i64> = round.iter().map(|&i| items[i].s.count).collect();
            let reserved: Vec<Option<&str>> = round.iter().map(|&i| items[i].s.reserved.as_deref()).collect();
            let addrs: Vec<Option<&str>> = round.iter().map(|&i| items[i].addr.as_deref()).collect();
            let hosts: Vec<Option<&str>> = round.iter().map(|&i| items[i].host_key.as_deref()).collect();
            let ids: HashMap<String, i64> = tx
                .query(UPSERT_INDICATORS, &[&values, &itypes, &firsts, &lasts, &counts, &reserved, &addrs, &hosts])
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for &i in round {
                indicator_of[i] = *ids
                    .get(&items[i].s.value)
                    .ok_or_else(|| StoreError::Internal(format!("no id returned for value {}", items[i].s.value)))?;
            }

            let rfeeds: Vec<i64> = round.iter().map(|&i| items[i].s.feed_id).collect();
            let rinds: Vec<i64> = round.iter().map(|&i| indicator_of[i]).collect();
            let received: Vec<Timestamp> = round.iter().map(|&i| items[i].s.received_at).collect();
            let tags: Vec<String> = round.iter().map(|&i| text_array_literal(&items[i].s.tags)).collect();
            let ports: Vec<String> = round.iter().map(|&i| int_array_literal(&items[i].ports)).collect();
            let protocols: Vec<Option<&str>> = round.iter().map(|&i| items[i].s.protocol.as_deref()).collect();
            let descriptions: Vec<Option<&str>> = round.iter().map(|&i| items[i].s.description.as_deref()).collect();
            let tlps: Vec<i16> = round.iter().map(|&i| tlp_rank(items[i].s.tlp)).collect();
            let confidences: Vec<Option<f64>> = round.iter().map(|&i| items[i].s.claimed_confidence).collect();
            let records: HashMap<(i64, i64), i64> = tx
                .query(
                    UPSERT_RECORDS,
                    &[
                        &rfeeds,
                        &rinds,
                        &firsts,
                        &lasts,
                        &received,
                        &counts,
                        &tags,
                        &ports,
                        &protocols,
                        &descriptions,
                        &tlps,
                        &confidences,
                        &reserved,
                        &now,
                    ],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| ((r.get(0), r.get(1)), r.get(2)))
                .collect();
            for &i in round {
                record_of[i] = *records
                    .get(&(indicator_of[i], items[i].s.feed_id))
                    .ok_or_else(|| StoreError::Internal(format!("no record returned for value {}", items[i].s.value)))?;
            }
        }

        // 3. Who reported each value, once per pair.
        let mut pairs: Vec<(i64, i64)> =
            (0..n).filter(|&i| dup[i].is_none()).map(|i| (indicator_of[i], items[i].s.reporter_id)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        if !pairs.is_empty() {
            let (pi, pr): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
            tx.execute(
                "INSERT INTO indicator_reporters (indicator_id, reporter_id) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
                &[&pi, &pr],
            )
            .await
            .map_err(pg_error)?;
        }

        // 4. The claimed keys point at their records.
        let claimed: Vec<usize> = first_of_key.values().copied().filter(|&i| dup[i].is_none()).collect();
        if !claimed.is_empty() {
            let cf: Vec<i64> = claimed.iter().map(|&i| items[i].s.feed_id).collect();
            let ck: Vec<&str> = claimed.iter().map(|&i| items[i].s.idempotency_key.as_deref().unwrap_or_default()).collect();
            let cr: Vec<i64> = claimed.iter().map(|&i| record_of[i]).collect();
            tx.execute(
                "UPDATE sighting_keys k SET record_id = u.r FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(f, kk, r) \
                 WHERE k.feed_id = u.f AND k.idempotency_key = u.kk",
                &[&cf, &ck, &cr],
            )
            .await
            .map_err(pg_error)?;
        }

        let mut outcomes: Vec<AppendOutcome> = Vec::with_capacity(n);
        for i in 0..n {
            let o = match dup[i] {
                None => AppendOutcome { seq: None, record_id: record_of[i], duplicate: false },
                Some(Dup::Stored(record_id)) => AppendOutcome { seq: None, record_id, duplicate: true },
                Some(Dup::InBatch(j)) => {
                    let record_id = match dup[j] {
                        Some(Dup::Stored(r)) => r,
                        _ => record_of[j],
                    };
                    AppendOutcome { seq: None, record_id, duplicate: true }
                }
            };
            outcomes.push(o);
        }
        // (index into items, record id) of the sightings to log, in request order.
        let logged: Vec<(usize, i64)> = (0..n).filter(|&i| dup[i].is_none()).map(|i| (i, record_of[i])).collect();
        if logged.is_empty() {
            tx.commit().await.map_err(pg_error)?;
            return Ok(outcomes);
        }

        // 5. Log positions, drawn under the log lock (held to the commit), in request order.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK]).await.map_err(pg_error)?;
        let seqs: Vec<i64> = tx
            .query("SELECT nextval('sightings_seq') FROM generate_series(1, $1::bigint) ORDER BY 1", &[&(logged.len() as i64)])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for ((i, _), seq) in logged.iter().zip(&seqs) {
            outcomes[*i].seq = Some(*seq);
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
