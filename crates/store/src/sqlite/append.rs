//! Appending sightings and maintaining the aggregates, on the writer connection.
//!
//! Per request, each feed record and hub-wide indicator touched is loaded once, merged in
//! memory with every sighting of the request, and written back once at the end: a bulk import
//! where one attacker address appears thousands of times costs one UPDATE per address, not
//! one per event. Sightings themselves are inserted one by one (they are the log).

use super::keys::{search_keys, SearchKeys};
use super::{db_error, micros, now_micros};
use crate::model::*;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{hash_map::Entry, HashMap, HashSet};

/// A sighting checked and serialised on the caller's task, so the writer only writes.
pub(crate) struct Prepared {
    s: NewSighting,
    keys: SearchKeys,
    tags_json: String,
    ports_json: String,
    extra_json: String,
    /// Observed interval, ordered.
    first: i64,
    last: i64,
}

pub(crate) fn prepare(batch: Vec<NewSighting>) -> Result<Vec<Prepared>> {
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
            s.tags = tag_set(std::mem::take(&mut s.tags));
            s.ports.sort_unstable();
            s.ports.dedup();
            let a = micros(s.observed_at);
            let b = s.observed_until.map_or(a, micros);
            Ok(Prepared {
                keys: search_keys(s.itype, &s.value),
                tags_json: to_json(&s.tags),
                ports_json: to_json(&s.ports),
                extra_json: to_json(&s.extra),
                first: a.min(b),
                last: a.max(b),
                s,
            })
        })
        .collect()
}

/// The lists and objects kept as JSON text (these types always serialise).
fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Tags: trimmed, without empties, sorted, unique (a set, kept in a stable order).
fn tag_set(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> =
        tags.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn union<T: Ord + Clone>(into: &mut Vec<T>, more: &[T]) -> bool {
    let before = into.len();
    for m in more {
        if let Err(pos) = into.binary_search(m) {
            into.insert(pos, m.clone());
        }
    }
    into.len() != before
}

/// One feed record as loaded (or created) in this request.
struct RecordState {
    id: i64,
    firsttime: i64,
    lasttime: i64,
    reporttime: i64,
    count: i64,
    tags: Vec<String>,
    /// Tags already in `record_tags`.
    stored_tags: Vec<String>,
    ports: Vec<u16>,
    protocol: Option<String>,
    description: Option<String>,
    tlp: Tlp,
    claimed_confidence: Option<f64>,
    reserved: Option<String>,
    dirty: bool,
}

impl RecordState {
    /// Fold one sighting in. The aggregate does not depend on arrival order: times are
    /// min/max, sets are unions, the count a sum, TLP the most restrictive, and descriptive
    /// fields come from the most recently *observed* sighting (others only fill gaps).
    fn merge(&mut self, p: &Prepared) {
        let s = &p.s;
        let newest = p.last >= self.lasttime;
        self.firsttime = self.firsttime.min(p.first);
        self.lasttime = self.lasttime.max(p.last);
        self.reporttime = self.reporttime.max(micros(s.received_at));
        self.count += s.count;
        union(&mut self.tags, &s.tags);
        union(&mut self.ports, &s.ports);
        self.tlp = self.tlp.max(s.tlp);
        let take = |field: &mut Option<String>, v: &Option<String>| {
            if v.is_some() && (newest || field.is_none()) {
                field.clone_from(v);
            }
        };
        take(&mut self.protocol, &s.protocol);
        take(&mut self.description, &s.description);
        take(&mut self.reserved, &s.reserved);
        if s.claimed_confidence.is_some() && (newest || self.claimed_confidence.is_none()) {
            self.claimed_confidence = s.claimed_confidence;
        }
        self.dirty = true;
    }
}

/// One hub-wide indicator as loaded (or created) in this request.
struct IndicatorState {
    itype: &'static str,
    firsttime: i64,
    lasttime: i64,
    count: i64,
    feeds: i64,
    sources: i64,
    reserved: Option<String>,
    exists: bool,
}

pub(crate) fn append(c: &Connection, items: Vec<Prepared>) -> Result<Vec<AppendOutcome>> {
    let now = now_micros();
    let mut known_feeds: HashSet<i64> = HashSet::new();
    let mut records: HashMap<(i64, String), RecordState> = HashMap::new();
    let mut indicators: HashMap<String, IndicatorState> = HashMap::new();
    let mut sources: HashSet<(String, i64)> = HashSet::new();
    let mut keys: HashMap<(i64, String), i64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(items.len());

    let mut feed_exists = c.prepare_cached("SELECT 1 FROM feeds WHERE id = ?1").map_err(db_error)?;
    let mut find_key = c
        .prepare_cached("SELECT record_id FROM sightings WHERE feed_id = ?1 AND idempotency_key = ?2")
        .map_err(db_error)?;
    let mut find_indicator = c
        .prepare_cached("SELECT firsttime, lasttime, count, feeds, sources, reserved FROM indicators WHERE value = ?1")
        .map_err(db_error)?;
    let mut find_record = c
        .prepare_cached(
            "SELECT id, firsttime, lasttime, reporttime, count, tags, ports, protocol, description, tlp, \
             claimed_confidence, reserved FROM feed_records WHERE value = ?1 AND feed_id = ?2",
        )
        .map_err(db_error)?;
    let mut insert_record = c
        .prepare_cached(
            "INSERT INTO feed_records (feed_id, value, itype, firsttime, lasttime, reporttime, count, tags, ports, \
             protocol, description, tlp, claimed_confidence, reserved, addr_start, addr_end, host_key, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)",
        )
        .map_err(db_error)?;
    let mut insert_sighting = c
        .prepare_cached(
            "INSERT INTO sightings (feed_id, record_id, reporter_id, itype, value, reserved, observed_at, observed_until, \
             received_at, tags, ports, protocol, description, tlp, claimed_confidence, sensor, count, extra, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        )
        .map_err(db_error)?;
    let mut insert_source =
        c.prepare_cached("INSERT OR IGNORE INTO indicator_sources (value, reporter_id) VALUES (?1, ?2)").map_err(db_error)?;

    for p in &items {
        let s = &p.s;
        if !known_feeds.contains(&s.feed_id) {
            if feed_exists.query_row([s.feed_id], |_| Ok(())).optional().map_err(db_error)?.is_none() {
                return Err(StoreError::NotFound(format!("feed id {}", s.feed_id)));
            }
            known_feeds.insert(s.feed_id);
        }

        if let Some(key) = &s.idempotency_key {
            let seen = match keys.get(&(s.feed_id, key.clone())) {
                Some(id) => Some(*id),
                None => find_key
                    .query_row(params![s.feed_id, key], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(db_error)?,
            };
            if let Some(record_id) = seen {
                outcomes.push(AppendOutcome { seq: None, record_id, duplicate: true });
                continue;
            }
        }

        // The hub-wide indicator first: when the value is new to the hub, no feed can hold it
        // yet, which saves looking for its feed record.
        let ind = match indicators.entry(s.value.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let row = find_indicator
                    .query_row([&s.value], |r| {
                        Ok(IndicatorState {
                            itype: s.itype.as_str(),
                            firsttime: r.get(0)?,
                            lasttime: r.get(1)?,
                            count: r.get(2)?,
                            feeds: r.get(3)?,
                            sources: r.get(4)?,
                            reserved: r.get(5)?,
                            exists: true,
                        })
                    })
                    .optional()
                    .map_err(db_error)?;
                e.insert(row.unwrap_or(IndicatorState {
                    itype: s.itype.as_str(),
                    firsttime: p.first,
                    lasttime: p.last,
                    count: 0,
                    feeds: 0,
                    sources: 0,
                    reserved: None,
                    exists: false,
                }))
            }
        };

        let record = match records.entry((s.feed_id, s.value.clone())) {
            Entry::Occupied(e) => {
                let r = e.into_mut();
                r.merge(p);
                r
            }
            Entry::Vacant(e) => {
                let loaded = if ind.exists {
                    find_record
                        .query_row(params![s.value, s.feed_id], |r| {
                            let tags: Vec<String> = super::json_list(&r.get::<_, String>(5)?)?;
                            Ok(RecordState {
                                id: r.get(0)?,
                                firsttime: r.get(1)?,
                                lasttime: r.get(2)?,
                                reporttime: r.get(3)?,
                                count: r.get(4)?,
                                stored_tags: tags.clone(),
                                tags,
                                ports: super::json_list(&r.get::<_, String>(6)?)?,
                                protocol: r.get(7)?,
                                description: r.get(8)?,
                                tlp: super::parse_tlp(&r.get::<_, String>(9)?)?,
                                claimed_confidence: r.get(10)?,
                                reserved: r.get(11)?,
                                dirty: false,
                            })
                        })
                        .optional()
                        .map_err(db_error)?
                } else {
                    None
                };
                match loaded {
                    Some(mut r) => {
                        r.merge(p);
                        e.insert(r)
                    }
                    None => {
                        insert_record
                            .execute(params![
                                s.feed_id,
                                s.value,
                                s.itype.as_str(),
                                p.first,
                                p.last,
                                micros(s.received_at),
                                s.count,
                                p.tags_json,
                                p.ports_json,
                                s.protocol,
                                s.description,
                                s.tlp.as_str(),
                                s.claimed_confidence,
                                s.reserved,
                                p.keys.addr_start,
                                p.keys.addr_end,
                                p.keys.host_key,
                                now
                            ])
                            .map_err(db_error)?;
                        ind.feeds += 1;
                        e.insert(RecordState {
                            id: c.last_insert_rowid(),
                            firsttime: p.first,
                            lasttime: p.last,
                            reporttime: micros(s.received_at),
                            count: s.count,
                            tags: s.tags.clone(),
                            stored_tags: Vec::new(),
                            ports: s.ports.clone(),
                            protocol: s.protocol.clone(),
                            description: s.description.clone(),
                            tlp: s.tlp,
                            claimed_confidence: s.claimed_confidence,
                            reserved: s.reserved.clone(),
                            dirty: false,
                        })
                    }
                }
            }
        };

        insert_sighting
            .execute(params![
                s.feed_id,
                record.id,
                s.reporter_id,
                s.itype.as_str(),
                s.value,
                s.reserved,
                micros(s.observed_at),
                s.observed_until.map(micros),
                micros(s.received_at),
                p.tags_json,
                p.ports_json,
                s.protocol,
                s.description,
                s.tlp.as_str(),
                s.claimed_confidence,
                s.sensor,
                s.count,
                p.extra_json,
                s.idempotency_key
            ])
            .map_err(db_error)?;
        let seq = c.last_insert_rowid();
        if let Some(key) = &s.idempotency_key {
            keys.insert((s.feed_id, key.clone()), record.id);
        }

        ind.firsttime = ind.firsttime.min(p.first);
        ind.lasttime = ind.lasttime.max(p.last);
        ind.count += s.count;
        if s.reserved.is_some() {
            ind.reserved.clone_from(&s.reserved);
        }
        if sources.insert((s.value.clone(), s.reporter_id)) && insert_source.execute(params![s.value, s.reporter_id]).map_err(db_error)? == 1 {
            ind.sources += 1;
        }
        outcomes.push(AppendOutcome { seq: Some(seq), record_id: record.id, duplicate: false });
    }

    flush(c, records, indicators, now)?;
    Ok(outcomes)
}

/// Write back the aggregates touched by a request.
fn flush(
    c: &Connection,
    records: HashMap<(i64, String), RecordState>,
    indicators: HashMap<String, IndicatorState>,
    now: i64,
) -> Result<()> {
    let mut update_record = c
        .prepare_cached(
            "UPDATE feed_records SET firsttime = ?2, lasttime = ?3, reporttime = ?4, count = ?5, tags = ?6, ports = ?7, \
             protocol = ?8, description = ?9, tlp = ?10, claimed_confidence = ?11, reserved = ?12, updated_at = ?13 \
             WHERE id = ?1",
        )
        .map_err(db_error)?;
    let mut insert_tag =
        c.prepare_cached("INSERT OR IGNORE INTO record_tags (tag, record_id) VALUES (?1, ?2)").map_err(db_error)?;
    for r in records.values() {
        if r.dirty {
            update_record
                .execute(params![
                    r.id,
                    r.firsttime,
                    r.lasttime,
                    r.reporttime,
                    r.count,
                    to_json(&r.tags),
                    to_json(&r.ports),
                    r.protocol,
                    r.description,
                    r.tlp.as_str(),
                    r.claimed_confidence,
                    r.reserved,
                    now
                ])
                .map_err(db_error)?;
        }
        if r.tags.len() != r.stored_tags.len() {
            for t in r.tags.iter().filter(|t| r.stored_tags.binary_search(t).is_err()) {
                insert_tag.execute(params![t, r.id]).map_err(db_error)?;
            }
        }
    }

    let mut upsert_indicator = c
        .prepare_cached(
            "INSERT INTO indicators (value, itype, firsttime, lasttime, count, feeds, sources, reserved) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (value) DO UPDATE SET firsttime = excluded.firsttime, lasttime = excluded.lasttime, \
             count = excluded.count, feeds = excluded.feeds, sources = excluded.sources, reserved = excluded.reserved",
        )
        .map_err(db_error)?;
    for (value, i) in &indicators {
        upsert_indicator
            .execute(params![value, i.itype, i.firsttime, i.lasttime, i.count, i.feeds, i.sources, i.reserved])
            .map_err(db_error)?;
    }
    Ok(())
}
