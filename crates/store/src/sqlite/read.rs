//! Queries, on pooled read-only connections.

use super::keys::{addr_range, host_key_range, Cursor};
use super::{db_error, from_micros, json_list, micros, parse_itype, parse_tlp};
use crate::model::*;
use crate::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use std::path::Path;

/// Page size when the query names none, and the most one page may hold.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 10_000;

const RECORD_COLUMNS: &str = "r.id, r.feed_id, u.name || '/' || f.name, i.value, i.itype, r.firsttime, r.lasttime, \
     r.reporttime, r.count, r.tags, r.ports, r.protocol, r.description, r.tlp, r.claimed_confidence, r.reserved, \
     r.created_at, r.updated_at";

/// Feed records with their values, walked record first (in an order of `feed_records`).
const FROM_RECORDS: &str = "feed_records r CROSS JOIN indicators i ON i.id = r.indicator_id \
     JOIN feeds f ON f.id = r.feed_id JOIN users u ON u.id = f.owner_id";

/// Feed records with their values, found from the values (by a value or search-key index).
const FROM_INDICATORS: &str = "indicators i CROSS JOIN feed_records r ON r.indicator_id = i.id \
     JOIN feeds f ON f.id = r.feed_id JOIN users u ON u.id = f.owner_id";

fn record_from_row(r: &Row) -> rusqlite::Result<FeedRecord> {
    Ok(FeedRecord {
        id: r.get(0)?,
        feed_id: r.get(1)?,
        feed: r.get(2)?,
        indicator: r.get(3)?,
        itype: parse_itype(&r.get::<_, String>(4)?)?,
        firsttime: from_micros(r.get(5)?),
        lasttime: from_micros(r.get(6)?),
        reporttime: from_micros(r.get(7)?),
        count: r.get(8)?,
        tags: json_list(&r.get::<_, String>(9)?)?,
        portlist: json_list(&r.get::<_, String>(10)?)?,
        protocol: r.get(11)?,
        description: r.get(12)?,
        tlp: parse_tlp(&r.get::<_, String>(13)?)?,
        claimed_confidence: r.get(14)?,
        reserved: r.get(15)?,
        created_at: from_micros(r.get(16)?),
        updated_at: from_micros(r.get(17)?),
    })
}

pub(crate) fn query(c: &Connection, q: &Query) -> Result<Page<FeedRecord>> {
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit.min(MAX_LIMIT) };
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();

    if let Some(v) = &q.value {
        conds.push("i.value = ?".into());
        args.push(Value::Text(v.clone()));
    }
    let within = match &q.within {
        Some(cidr) => Some(
            addr_range(cidr.trim())
                .ok_or_else(|| StoreError::Invalid(format!("within: `{cidr}` is not an address or CIDR")))?,
        ),
        None => None,
    };
    let domain = q.domain.as_ref().map(|d| host_key_range(&d.trim().to_ascii_lowercase()));
    let tags: Vec<String> = q.tags.iter().map(|t| t.trim().to_string()).collect();
    let drive = choose_driver(c, q, limit, within.as_ref(), domain.as_ref(), &tags)?;

    // A filter that does not drive is written so that SQLite cannot use its index (`+col`):
    // the query then walks the lasttime order and stops after `limit` matches.
    if let Some((itype, start, end)) = within {
        let p = if drive == Driver::Within { "" } else { "+" };
        conds.push(format!("{p}i.itype = ? AND {p}i.addr_start >= ? AND {p}i.addr_start <= ? AND i.addr_end <= ?"));
        args.extend([
            Value::Text(itype.as_str().into()),
            Value::Blob(start),
            Value::Blob(end.clone()),
            Value::Blob(end),
        ]);
    }
    if let Some((lo, hi)) = domain {
        let p = if drive == Driver::Domain { "" } else { "+" };
        conds.push(format!("{p}i.host_key >= ? AND {p}i.host_key < ?"));
        args.extend([Value::Text(lo), Value::Text(hi)]);
    }
    if let Some(itype) = q.itype {
        conds.push("+i.itype = ?".into());
        args.push(Value::Text(itype.as_str().into()));
    }
    for (i, tag) in tags.into_iter().enumerate() {
        if drive == Driver::Tag(i) {
            conds.push("r.id IN (SELECT t.record_id FROM record_tags t WHERE t.tag = ?)".into());
        } else {
            conds.push("EXISTS (SELECT 1 FROM record_tags t WHERE t.tag = ? AND t.record_id = r.id)".into());
        }
        args.push(Value::Text(tag));
    }
    if let Some(ids) = &q.feed_ids {
        if ids.is_empty() {
            return Ok(Page { items: Vec::new(), next: None });
        }
        conds.push(format!("r.feed_id IN ({})", vec!["?"; ids.len()].join(",")));
        args.extend(ids.iter().map(|i| Value::Integer(*i)));
    }
    conds.extend(super::accounts::readable_condition(Some(q.reader.as_ref())));
    if let Some(since) = q.since {
        conds.push("r.lasttime >= ?".into());
        args.push(Value::Integer(micros(since)));
    }
    if let Some(until) = q.until {
        conds.push("r.lasttime <= ?".into());
        args.push(Value::Integer(micros(until)));
    }
    if let Some(cursor) = &q.cursor {
        let cur = Cursor::decode(cursor)?;
        conds.push("(r.lasttime, r.id) < (?, ?)".into());
        args.extend([Value::Integer(cur.lasttime), Value::Integer(cur.id)]);
    }

    let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let from = match drive {
        Driver::Value | Driver::Within | Driver::Domain => FROM_INDICATORS,
        Driver::Order | Driver::Tag(_) => FROM_RECORDS,
    };
    let sql = format!("SELECT {RECORD_COLUMNS} FROM {from}{filter} ORDER BY r.lasttime DESC, r.id DESC LIMIT {}", limit + 1);
    let mut st = c.prepare_cached(&sql).map_err(db_error)?;
    let mut items: Vec<FeedRecord> = st
        .query_map(params_from_iter(args), record_from_row)
        .map_err(db_error)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_error)?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| Cursor { lasttime: micros(r.lasttime), id: r.id }.encode())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// How a query finds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Walk the (lasttime, id) order (or a feed's), checking each filter: best when the
    /// filters match many records, as the first `limit` matches come early.
    Order,
    /// The exact-value index.
    Value,
    /// The address-range index.
    Within,
    /// The host-key range index.
    Domain,
    /// The records of the i-th tag.
    Tag(usize),
}

/// Pick the index to start from. SQLite's planner cannot tell `within=10.0.0.0/8` (a million
/// records) from `within=192.0.2.0/24` (three), and a range index followed by a sort is only
/// cheap when the range is small. So count each candidate's matches, up to a cap, and let a
/// filter drive only when it stays under the cap; otherwise walk the lasttime order. The cap
/// balances sorting `n` matches against scanning `limit * total / n` records to find `limit`.
fn choose_driver(
    c: &Connection,
    q: &Query,
    limit: usize,
    within: Option<&(apiary_core::IType, Vec<u8>, Vec<u8>)>,
    domain: Option<&(String, String)>,
    tags: &[String],
) -> Result<Driver> {
    if q.value.is_some() {
        return Ok(Driver::Value);
    }
    if within.is_none() && domain.is_none() && tags.is_empty() {
        return Ok(Driver::Order);
    }
    let total: i64 = c
        .prepare_cached("SELECT coalesce(max(id), 0) FROM feed_records")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(db_error)?;
    let cap = ((limit as f64 * total as f64).sqrt() as i64).max(1000);
    let fewer_than_cap = |sql: &str, args: Vec<Value>| -> Result<bool> {
        let n: i64 = c
            .prepare_cached(&format!("SELECT count(*) FROM ({sql} LIMIT {cap})"))
            .and_then(|mut st| st.query_row(params_from_iter(args), |r| r.get(0)))
            .map_err(db_error)?;
        Ok(n < cap)
    };
    if let Some((itype, start, end)) = within {
        let sql = "SELECT 1 FROM indicators WHERE itype = ? AND addr_start >= ? AND addr_start <= ?";
        let args = vec![Value::Text(itype.as_str().into()), Value::Blob(start.clone()), Value::Blob(end.clone())];
        if fewer_than_cap(sql, args)? {
            return Ok(Driver::Within);
        }
    }
    if let Some((lo, hi)) = domain {
        let sql = "SELECT 1 FROM indicators WHERE host_key >= ? AND host_key < ?";
        if fewer_than_cap(sql, vec![Value::Text(lo.clone()), Value::Text(hi.clone())])? {
            return Ok(Driver::Domain);
        }
    }
    for (i, tag) in tags.iter().enumerate() {
        if fewer_than_cap("SELECT 1 FROM record_tags WHERE tag = ?", vec![Value::Text(tag.clone())])? {
            return Ok(Driver::Tag(i));
        }
    }
    Ok(Driver::Order)
}

pub(crate) fn get_record(c: &Connection, id: i64) -> Result<Option<FeedRecord>> {
    c.prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM {FROM_RECORDS} WHERE r.id = ?1"))
        .and_then(|mut st| st.query_row([id], record_from_row).optional())
        .map_err(db_error)
}

pub(crate) fn get_indicator(c: &Connection, value: &str) -> Result<Option<IndicatorSummary>> {
    c.prepare_cached(
        "SELECT value, itype, firsttime, lasttime, count, feeds, sources, reserved FROM indicators WHERE value = ?1",
    )
    .and_then(|mut st| {
        st.query_row([value], |r| {
            Ok(IndicatorSummary {
                indicator: r.get(0)?,
                itype: parse_itype(&r.get::<_, String>(1)?)?,
                firsttime: from_micros(r.get(2)?),
                lasttime: from_micros(r.get(3)?),
                count: r.get(4)?,
                feeds: r.get(5)?,
                sources: r.get(6)?,
                reserved: r.get(7)?,
            })
        })
        .optional()
    })
    .map_err(db_error)
}

pub(crate) fn sightings_of(c: &Connection, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let mut args = vec![Value::Text(value.to_string())];
    let feed_filter = match feed_ids {
        Some([]) => return Ok(Vec::new()),
        Some(ids) => {
            args.extend(ids.iter().map(|i| Value::Integer(*i)));
            format!(" AND r.feed_id IN ({})", vec!["?"; ids.len()].join(","))
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT s.seq, u.name || '/' || f.name, i.itype, i.value, s.observed_at, s.received_at, s.tags, s.ports, \
         s.protocol, s.description, s.tlp, s.claimed_confidence, s.sensor, s.count, s.extra \
         FROM indicators i JOIN feed_records r ON r.indicator_id = i.id JOIN sightings s ON s.record_id = r.id \
         JOIN feeds f ON f.id = r.feed_id JOIN users u ON u.id = f.owner_id \
         WHERE i.value = ?{feed_filter} ORDER BY s.seq DESC LIMIT {limit}"
    );
    let mut st = c.prepare_cached(&sql).map_err(db_error)?;
    let rows = st
        .query_map(params_from_iter(args), |r| {
            Ok(Sighting {
                seq: r.get(0)?,
                feed: r.get(1)?,
                itype: parse_itype(&r.get::<_, String>(2)?)?,
                indicator: r.get(3)?,
                observed_at: from_micros(r.get(4)?),
                received_at: from_micros(r.get(5)?),
                tags: json_list(&r.get::<_, String>(6)?)?,
                portlist: json_list(&r.get::<_, String>(7)?)?,
                protocol: r.get(8)?,
                description: r.get(9)?,
                tlp: parse_tlp(&r.get::<_, String>(10)?)?,
                claimed_confidence: r.get(11)?,
                sensor: r.get(12)?,
                count: r.get(13)?,
                extra: serde_json::from_str(&r.get::<_, String>(14)?).unwrap_or(serde_json::Value::Null),
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

pub(crate) fn stats(c: &Connection) -> Result<Stats> {
    c.query_row(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM feeds), (SELECT count(*) FROM sightings), \
         (SELECT count(*) FROM feed_records), (SELECT count(*) FROM indicators)",
        [],
        |r| Ok(Stats { users: r.get(0)?, feeds: r.get(1)?, sightings: r.get(2)?, records: r.get(3)?, indicators: r.get(4)? }),
    )
    .map_err(db_error)
}

/// A consistent snapshot with `VACUUM INTO` (one read transaction; the writer goes on),
/// written beside `dest` and renamed over it, so `dest` is never a half-written file.
pub(crate) fn backup(c: &Connection, dest: &Path) -> Result<()> {
    let name = dest
        .file_name()
        .ok_or_else(|| StoreError::Invalid(format!("backup destination {} is not a file name", dest.display())))?;
    let mut partial_name = name.to_os_string();
    partial_name.push(".partial");
    let partial = dest.with_file_name(partial_name);
    let _ = std::fs::remove_file(&partial);
    let partial_str = partial
        .to_str()
        .ok_or_else(|| StoreError::Invalid(format!("backup destination {} is not UTF-8", dest.display())))?;
    c.execute("VACUUM INTO ?1", params![partial_str])
        .map_err(|e| StoreError::Internal(format!("backup to {} failed: {e}", dest.display())))?;
    std::fs::rename(&partial, dest).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        StoreError::Internal(format!("backup: cannot move {} to {}: {e}", partial.display(), dest.display()))
    })
}
