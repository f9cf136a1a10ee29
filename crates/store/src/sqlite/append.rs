//! Appending sightings and maintaining the aggregates, on the writer connection.
//!
//! Per request, each feed record and hub-wide indicator touched is loaded once, merged in
//! memory with every sighting of the request, and written once: a bulk import where one
//! attacker address appears thousands of times costs one row write per address, not one per
//! event. Aggregates are read and written in key order (value, then feed), so a large batch
//! walks each index once instead of jumping around it. Sightings are inserted in request
//! order (they are the log; `seq` follows the order of the request).
//!
//! A value is stored once, in its `indicators` row (with its search keys); a value new to the
//! hub gets its row, and so its id, before its feed records, which refer to it by that id.
//! Everything an indicator row holds is computed in memory first, so each row is written once.

use super::keys::{search_keys, SearchKeys};
use super::{db_error, micros, now_micros};
use crate::model::*;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use rustc_hash::{FxHashMap, FxHashSet};

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
    /// A record that does not exist yet, from its first sighting.
    fn first(p: &Prepared) -> RecordState {
        let s = &p.s;
        RecordState {
            id: 0,
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
            dirty: true,
        }
    }

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

/// One hub-wide indicator as loaded (or to be created) in this request.
struct IndicatorState {
    /// Its row id; `None` for a value new to the hub.
    id: Option<i64>,
    firsttime: i64,
    lasttime: i64,
    count: i64,
    feeds: i64,
    /// Distinct reporters (user ids), sorted.
    reporters: Vec<i64>,
    reserved: Option<String>,
    /// Written in this request already (a value in several feeds has several groups).
    written: bool,
}

/// The sightings of one value in one feed within a request.
struct Group<'a> {
    value: &'a str,
    feed_id: i64,
    members: Vec<usize>,
    record: Option<RecordState>,
}

pub(crate) fn append(c: &Connection, items: &[Prepared]) -> Result<Vec<AppendOutcome>> {
    let now = now_micros();

    // Every feed named must exist.
    let mut feed_exists = c.prepare_cached("SELECT 1 FROM feeds WHERE id = ?1").map_err(db_error)?;
    let feeds: FxHashSet<i64> = items.iter().map(|p| p.s.feed_id).collect();
    for id in feeds {
        if feed_exists.query_row([id], |_| Ok(())).optional().map_err(db_error)?.is_none() {
            return Err(StoreError::NotFound(format!("feed id {id}")));
        }
    }

    // Repeated idempotency keys: against the store, and within the request.
    enum Dup {
        Stored(i64),
        Earlier(usize),
    }
    let mut dups: FxHashMap<usize, Dup> = FxHashMap::default();
    let mut find_key = c
        .prepare_cached("SELECT record_id FROM sightings WHERE feed_id = ?1 AND idempotency_key = ?2")
        .map_err(db_error)?;
    let mut first_with_key: FxHashMap<(i64, &str), usize> = FxHashMap::default();
    for (i, p) in items.iter().enumerate() {
        let Some(key) = p.s.idempotency_key.as_deref() else { continue };
        if let Some(&earlier) = first_with_key.get(&(p.s.feed_id, key)) {
            dups.insert(i, Dup::Earlier(earlier));
        } else if let Some(record_id) =
            find_key.query_row(params![p.s.feed_id, key], |r| r.get::<_, i64>(0)).optional().map_err(db_error)?
        {
            dups.insert(i, Dup::Stored(record_id));
        } else {
            first_with_key.insert((p.s.feed_id, key), i);
        }
    }

    // Group the new sightings by (value, feed), in key order.
    let mut group_of: Vec<usize> = vec![usize::MAX; items.len()];
    let mut groups: Vec<Group> = Vec::new();
    {
        let mut index: FxHashMap<(&str, i64), usize> = FxHashMap::default();
        for (i, p) in items.iter().enumerate() {
            if dups.contains_key(&i) {
                continue;
            }
            let g = *index.entry((p.s.value.as_str(), p.s.feed_id)).or_insert_with(|| {
                groups.push(Group { value: &p.s.value, feed_id: p.s.feed_id, members: Vec::new(), record: None });
                groups.len() - 1
            });
            groups[g].members.push(i);
        }
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_unstable_by(|&a, &b| (groups[a].value, groups[a].feed_id).cmp(&(groups[b].value, groups[b].feed_id)));
    for (i, &g) in order.iter().enumerate().rev() {
        for &m in &groups[g].members {
            group_of[m] = i;
        }
    }
    let mut groups: Vec<Group> = {
        let mut slots: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
        order.iter().map(|&g| slots[g].take().expect("each group once")).collect()
    };

    // Load the hub-wide indicators (value order), then the feed records of known values.
    let mut indicators: FxHashMap<&str, IndicatorState> = FxHashMap::default();
    let mut find_indicator = c
        .prepare_cached("SELECT id, firsttime, lasttime, count, feeds, reporters, reserved FROM indicators WHERE value = ?1")
        .map_err(db_error)?;
    let mut find_record = c
        .prepare_cached(
            "SELECT id, firsttime, lasttime, reporttime, count, tags, ports, protocol, description, tlp, \
             claimed_confidence, reserved FROM feed_records WHERE indicator_id = ?1 AND feed_id = ?2",
        )
        .map_err(db_error)?;
    for g in &mut groups {
        if !indicators.contains_key(g.value) {
            let first = &items[g.members[0]];
            let loaded = find_indicator
                .query_row([g.value], |r| {
                    Ok(IndicatorState {
                        id: Some(r.get(0)?),
                        firsttime: r.get(1)?,
                        lasttime: r.get(2)?,
                        count: r.get(3)?,
                        feeds: r.get(4)?,
                        reporters: super::json_list(&r.get::<_, String>(5)?)?,
                        reserved: r.get(6)?,
                        written: false,
                    })
                })
                .optional()
                .map_err(db_error)?;
            indicators.insert(
                g.value,
                loaded.unwrap_or(IndicatorState {
                    id: None,
                    firsttime: first.first,
                    lasttime: first.last,
                    count: 0,
                    feeds: 0,
                    reporters: Vec::new(),
                    reserved: None,
                    written: false,
                }),
            );
        }
        // A value new to the hub has no feed record anywhere: no need to look.
        if let Some(indicator_id) = indicators[g.value].id {
            g.record = find_record
                .query_row(params![indicator_id, g.feed_id], |r| {
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
                .map_err(db_error)?;
        }
    }

    // Merge the feed records in memory; a record new to its feed adds a feed to its value.
    for g in &mut groups {
        let (mut record, rest) = match g.record.take() {
            Some(r) => (r, &g.members[..]),
            None => {
                indicators.get_mut(g.value).expect("loaded above").feeds += 1;
                (RecordState::first(&items[g.members[0]]), &g.members[1..])
            }
        };
        for &m in rest {
            record.merge(&items[m]);
        }
        g.record = Some(record);
    }

    // Fold the sightings into the hub-wide aggregates (request order: the last reserved
    // code sent wins).
    for (i, p) in items.iter().enumerate() {
        if dups.contains_key(&i) {
            continue;
        }
        let s = &p.s;
        let ind = indicators.get_mut(s.value.as_str()).expect("loaded above");
        ind.firsttime = ind.firsttime.min(p.first);
        ind.lasttime = ind.lasttime.max(p.last);
        ind.count += s.count;
        if s.reserved.is_some() {
            ind.reserved.clone_from(&s.reserved);
        }
        union(&mut ind.reporters, &[s.reporter_id]);
    }

    // Write the indicators (value order): a new value gets its id and search keys here.
    let mut insert_indicator = c
        .prepare_cached(
            "INSERT INTO indicators (value, itype, firsttime, lasttime, count, feeds, sources, reserved, reporters, \
             addr_start, addr_end, host_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(db_error)?;
    let mut update_indicator = c
        .prepare_cached(
            "UPDATE indicators SET firsttime = ?2, lasttime = ?3, count = ?4, feeds = ?5, sources = ?6, \
             reserved = ?7, reporters = ?8 WHERE id = ?1",
        )
        .map_err(db_error)?;
    for g in &groups {
        let ind = indicators.get_mut(g.value).expect("loaded above");
        if ind.written {
            continue;
        }
        ind.written = true;
        let reporters_json = to_json(&ind.reporters);
        match ind.id {
            Some(id) => {
                update_indicator
                    .execute(params![
                        id,
                        ind.firsttime,
                        ind.lasttime,
                        ind.count,
                        ind.feeds,
                        ind.reporters.len() as i64,
                        ind.reserved,
                        reporters_json
                    ])
                    .map_err(db_error)?;
            }
            None => {
                let first = &items[g.members[0]];
                insert_indicator
                    .execute(params![
                        g.value,
                        first.s.itype.as_str(),
                        ind.firsttime,
                        ind.lasttime,
                        ind.count,
                        ind.feeds,
                        ind.reporters.len() as i64,
                        ind.reserved,
                        reporters_json,
                        first.keys.addr_start,
                        first.keys.addr_end,
                        first.keys.host_key
                    ])
                    .map_err(db_error)?;
                ind.id = Some(c.last_insert_rowid());
            }
        }
    }

    // Write the feed records (key order).
    let mut insert_record = c
        .prepare_cached(
            "INSERT INTO feed_records (feed_id, indicator_id, firsttime, lasttime, reporttime, count, tags, ports, \
             protocol, description, tlp, claimed_confidence, reserved, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
        )
        .map_err(db_error)?;
    let mut update_record = c
        .prepare_cached(
            "UPDATE feed_records SET firsttime = ?2, lasttime = ?3, reporttime = ?4, count = ?5, tags = ?6, ports = ?7, \
             protocol = ?8, description = ?9, tlp = ?10, claimed_confidence = ?11, reserved = ?12, updated_at = ?13 \
             WHERE id = ?1",
        )
        .map_err(db_error)?;
    let mut insert_tag =
        c.prepare_cached("INSERT OR IGNORE INTO record_tags (tag, record_id) VALUES (?1, ?2)").map_err(db_error)?;
    for g in &mut groups {
        let record = g.record.as_mut().expect("merged above");
        let tags_json = to_json(&record.tags);
        let ports_json = to_json(&record.ports);
        if record.id == 0 {
            let indicator_id = indicators[g.value].id.expect("written above");
            insert_record
                .execute(params![
                    g.feed_id,
                    indicator_id,
                    record.firsttime,
                    record.lasttime,
                    record.reporttime,
                    record.count,
                    tags_json,
                    ports_json,
                    record.protocol,
                    record.description,
                    record.tlp.as_str(),
                    record.claimed_confidence,
                    record.reserved,
                    now
                ])
                .map_err(db_error)?;
            record.id = c.last_insert_rowid();
        } else if record.dirty {
            update_record
                .execute(params![
                    record.id,
                    record.firsttime,
                    record.lasttime,
                    record.reporttime,
                    record.count,
                    tags_json,
                    ports_json,
                    record.protocol,
                    record.description,
                    record.tlp.as_str(),
                    record.claimed_confidence,
                    record.reserved,
                    now
                ])
                .map_err(db_error)?;
        }
        if record.tags.len() != record.stored_tags.len() {
            for t in record.tags.iter().filter(|t| record.stored_tags.binary_search(t).is_err()) {
                insert_tag.execute(params![t, record.id]).map_err(db_error)?;
            }
        }
    }

    // The log, in request order.
    let mut insert_sighting = c
        .prepare_cached(
            "INSERT INTO sightings (feed_id, record_id, reporter_id, reserved, observed_at, observed_until, \
             received_at, tags, ports, protocol, description, tlp, claimed_confidence, sensor, count, extra, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )
        .map_err(db_error)?;
    let record_id = |i: usize| groups[group_of[i]].record.as_ref().map_or(0, |r| r.id);
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, p) in items.iter().enumerate() {
        let s = &p.s;
        match dups.get(&i) {
            Some(Dup::Stored(id)) => {
                outcomes.push(AppendOutcome { seq: None, record_id: *id, duplicate: true });
                continue;
            }
            Some(Dup::Earlier(e)) => {
                outcomes.push(AppendOutcome { seq: None, record_id: record_id(*e), duplicate: true });
                continue;
            }
            None => {}
        }
        let rid = record_id(i);
        insert_sighting
            .execute(params![
                s.feed_id,
                rid,
                s.reporter_id,
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
        outcomes.push(AppendOutcome { seq: Some(c.last_insert_rowid()), record_id: rid, duplicate: false });
    }
    Ok(outcomes)
}
