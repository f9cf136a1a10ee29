//! Queries, on pooled read-only connections.

use super::keys::{addr_range, host_key_range, Cursor};
use super::SqliteStore;
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

/// The WHERE clause of a query and which index drives it.
struct Filter {
    drive: Driver,
    conds: Vec<String>,
    args: Vec<Value>,
}

/// How the readable feeds are checked: joined per row (`f.`, for searches over every feed) or
/// as a list of feed ids found first (scans, whose callers name their feeds).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Readable {
    Joined,
    Listed,
}

/// The conditions of `q`, except its cursor (None: nothing can match).
fn filter(c: &Connection, q: &Query, limit: usize, readable: Readable) -> Result<Option<Filter>> {
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
    match readable {
        Readable::Joined => {
            if let Some(ids) = &q.feed_ids {
                if ids.is_empty() {
                    return Ok(None);
                }
                conds.push(format!("r.feed_id IN ({})", vec!["?"; ids.len()].join(",")));
                args.extend(ids.iter().map(|i| Value::Integer(*i)));
            }
            conds.extend(super::accounts::readable_condition(Some(q.reader.as_ref())));
        }
        Readable::Listed => {
            let ids = readable_feed_ids(c, q)?;
            if ids.is_empty() {
                return Ok(None);
            }
            conds.push(format!("r.feed_id IN ({})", vec!["?"; ids.len()].join(",")));
            args.extend(ids.into_iter().map(Value::Integer));
        }
    }
    if let Some(since) = q.since {
        conds.push("r.lasttime >= ?".into());
        args.push(Value::Integer(micros(since)));
    }
    if let Some(until) = q.until {
        conds.push("r.lasttime <= ?".into());
        args.push(Value::Integer(micros(until)));
    }
    Ok(Some(Filter { drive, conds, args }))
}

/// The feeds of `q` (all when it names none) that its reader may read.
fn readable_feed_ids(c: &Connection, q: &Query) -> Result<Vec<i64>> {
    let mut conds: Vec<String> = super::accounts::readable_condition(Some(q.reader.as_ref())).into_iter().collect();
    if let Some(ids) = &q.feed_ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        conds.push(format!("f.id IN ({})", vec!["?"; ids.len()].join(",")));
    }
    let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let mut st = c.prepare(&format!("SELECT f.id FROM feeds f{filter} ORDER BY f.id")).map_err(db_error)?;
    let ids = q.feed_ids.iter().flatten().map(|i| Value::Integer(*i));
    let rows = st.query_map(params_from_iter(ids), |r| r.get(0)).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

/// `(lasttime, id)` past a cursor, and the ORDER BY, in `order`.
fn order_sql(order: Order) -> (&'static str, &'static str) {
    match order {
        Order::NewestFirst => ("(r.lasttime, r.id) < (?, ?)", "r.lasttime DESC, r.id DESC"),
        Order::OldestFirst => ("(r.lasttime, r.id) > (?, ?)", "r.lasttime ASC, r.id ASC"),
    }
}

pub(crate) fn query(c: &Connection, q: &Query) -> Result<Page<FeedRecord>> {
    let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit.min(MAX_LIMIT) };
    let Some(Filter { drive, mut conds, mut args }) = filter(c, q, limit, Readable::Joined)? else {
        return Ok(Page { items: Vec::new(), next: None });
    };
    let (after, order) = order_sql(q.order);
    if let Some(cursor) = &q.cursor {
        let cur = Cursor::decode(cursor)?;
        conds.push(after.into());
        args.extend([Value::Integer(cur.lasttime), Value::Integer(cur.id)]);
    }

    let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let from = match drive {
        Driver::Value | Driver::Within | Driver::Domain => FROM_INDICATORS,
        Driver::Order | Driver::Tag(_) => FROM_RECORDS,
    };
    let sql = format!("SELECT {RECORD_COLUMNS} FROM {from}{filter} ORDER BY {order} LIMIT {}", limit + 1);
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

// ------------------------------------------------------------------ scans (exports)

/// The columns of [`ExportRecord`], with and without the detail fields.
const EXPORT_COLUMNS: &str = "r.id, r.feed_id, i.value, i.itype, r.firsttime, r.lasttime, r.reporttime, r.count, \
     r.tlp, r.claimed_confidence, r.reserved, r.tags, r.ports, r.protocol, r.description";
const EXPORT_COLUMNS_BRIEF: &str = "r.id, r.feed_id, i.value, i.itype, r.firsttime, r.lasttime, r.reporttime, r.count, \
     r.tlp, r.claimed_confidence, r.reserved";

/// Text of a column without copying it (itype and TLP are matched, never kept).
fn text_ref<'r>(r: &'r Row, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into()))
}

fn export_record_from_row(r: &Row, details: bool) -> rusqlite::Result<ExportRecord> {
    let (tags, portlist, protocol, description) = if details {
        (json_list(text_ref(r, 11)?)?, json_list(text_ref(r, 12)?)?, r.get(13)?, r.get(14)?)
    } else {
        (Vec::new(), Vec::new(), None, None)
    };
    Ok(ExportRecord {
        id: r.get(0)?,
        feed_id: r.get(1)?,
        indicator: r.get(2)?,
        itype: parse_itype(text_ref(r, 3)?)?,
        firsttime: from_micros(r.get(4)?),
        lasttime: from_micros(r.get(5)?),
        reporttime: from_micros(r.get(6)?),
        count: r.get(7)?,
        tlp: parse_tlp(text_ref(r, 8)?)?,
        claimed_confidence: r.get(9)?,
        reserved: r.get(10)?,
        tags,
        portlist,
        protocol,
        description,
    })
}

/// How one stretch of a scan ended.
pub(crate) enum Stretch {
    /// Every record was sent, or the receiver went away.
    Done,
    /// The receiver is full: send `pending` (waiting, without the connection), then scan on
    /// after `resume` (None: that was the last batch).
    Full { pending: Vec<ExportRecord>, resume: Option<Cursor> },
}

/// Scan `q` from `resume` (or its own cursor) in one statement, so one read transaction and
/// one index walk, sending batches while the receiver keeps up.
pub(crate) fn scan(
    c: &Connection,
    q: &Query,
    scan: Scan,
    resume: Option<Cursor>,
    out: &tokio::sync::mpsc::Sender<Vec<ExportRecord>>,
) -> Result<Stretch> {
    let batch = scan.batch.clamp(1, MAX_LIMIT);
    let Some(Filter { drive, mut conds, mut args }) = filter(c, q, MAX_LIMIT, Readable::Listed)? else {
        return Ok(Stretch::Done);
    };
    let (after, order) = order_sql(q.order);
    let resume = match (resume, &q.cursor) {
        (Some(cur), _) => Some(cur),
        (None, Some(cursor)) => Some(Cursor::decode(cursor)?),
        (None, None) => None,
    };
    if let Some(cur) = resume {
        conds.push(after.into());
        args.extend([Value::Integer(cur.lasttime), Value::Integer(cur.id)]);
    }
    let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let from = match drive {
        Driver::Value | Driver::Within | Driver::Domain => "indicators i CROSS JOIN feed_records r ON r.indicator_id = i.id",
        Driver::Order | Driver::Tag(_) => "feed_records r CROSS JOIN indicators i ON i.id = r.indicator_id",
    };
    let columns = if scan.details { EXPORT_COLUMNS } else { EXPORT_COLUMNS_BRIEF };
    let sql = format!("SELECT {columns} FROM {from}{filter} ORDER BY {order}");
    let mut st = c.prepare_cached(&sql).map_err(db_error)?;
    let mut rows = st.query(params_from_iter(args)).map_err(db_error)?;
    let mut items = Vec::with_capacity(batch);
    loop {
        let row = rows.next().map_err(db_error)?;
        if let Some(row) = row {
            items.push(export_record_from_row(row, scan.details).map_err(db_error)?);
            if items.len() < batch {
                continue;
            }
        }
        let end = row.is_none();
        if items.is_empty() {
            return Ok(Stretch::Done);
        }
        let full = std::mem::replace(&mut items, Vec::with_capacity(batch));
        let last = full.last().map(|r| Cursor { lasttime: micros(r.lasttime), id: r.id });
        match out.try_send(full) {
            Ok(()) if end => return Ok(Stretch::Done),
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return Ok(Stretch::Done),
            Err(tokio::sync::mpsc::error::TrySendError::Full(pending)) => {
                return Ok(Stretch::Full { pending, resume: if end { None } else { last } });
            }
        }
    }
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

impl SqliteStore {
    /// [`crate::Store::scan_records`]: one statement per stretch; a stretch ends when the
    /// receiver is full, and the connection goes back to the pool while it drains.
    pub(super) async fn scan_(&self, q: &Query, scan: Scan, out: tokio::sync::mpsc::Sender<Vec<ExportRecord>>) -> Result<()> {
        let mut resume: Option<Cursor> = None;
        loop {
            let (q, tx) = (q.clone(), out.clone());
            let stretch = self.read(move |c| self::scan(c, &q, scan, resume, &tx)).await?;
            match stretch {
                Stretch::Done => return Ok(()),
                Stretch::Full { pending, resume: next } => {
                    if out.send(pending).await.is_err() {
                        return Ok(());
                    }
                    match next {
                        Some(cur) => resume = Some(cur),
                        None => return Ok(()),
                    }
                }
            }
        }
    }
}
