//! Queries: feed records by value, address containment (`inet <<=`, GiST), domain and
//! subdomains (reversed-label prefix), tags (GIN), feeds, time window; keyset pagination in
//! (lasttime, id) order, newest or oldest first, with the SQLite store's cursor.

use super::accounts::readable_condition;
use super::{parse_itype, pg_error, ports_from_db, tlp_from_rank, PostgresStore};
use crate::model::*;
use crate::sqlite::keys::{addr_range, host_key, Cursor};
use crate::{Result, StoreError};
use chrono::DateTime;
use std::net::{Ipv4Addr, Ipv6Addr};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tokio::sync::mpsc;

/// Page size when the query names none, and the most one page may hold (as SQLite's).
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

const RECORD_COLUMNS: &str = "r.id, r.feed_id, u.name || '/' || f.name, i.value, i.itype, r.firsttime, r.lasttime, \
     r.reporttime, r.count, r.tags, r.ports, r.protocol, r.description, r.tlp, r.claimed_confidence, r.reserved, \
     r.created_at, r.updated_at";

const FROM_RECORDS: &str =
    "feed_records r JOIN indicators i ON i.id = r.indicator_id JOIN feeds f ON f.id = r.feed_id JOIN users u ON u.id = f.owner_id";

fn record_from_row(r: &Row) -> Result<FeedRecord> {
    Ok(FeedRecord {
        id: r.get(0),
        feed_id: r.get(1),
        feed: r.get(2),
        indicator: r.get(3),
        itype: parse_itype(r.get(4))?,
        firsttime: r.get(5),
        lasttime: r.get(6),
        reporttime: r.get(7),
        count: r.get(8),
        tags: r.get(9),
        portlist: ports_from_db(r.get(10)),
        protocol: r.get(11),
        description: r.get(12),
        tlp: tlp_from_rank(r.get(13)),
        claimed_confidence: r.get(14),
        reserved: r.get(15),
        created_at: r.get(16),
        updated_at: r.get(17),
    })
}

/// The network of a CIDR (`198.51.100.7/24` → `198.51.100.0/24`), as `inet` text.
fn network(cidr: &str) -> Option<String> {
    let (_, start, _) = addr_range(cidr)?;
    let prefix = cidr.split_once('/').map(|(_, p)| p.to_string());
    Some(match <[u8; 4]>::try_from(start.as_slice()) {
        Ok(v4) => format!("{}/{}", Ipv4Addr::from(v4), prefix.unwrap_or_else(|| "32".into())),
        Err(_) => {
            let v6 = <[u8; 16]>::try_from(start.as_slice()).ok()?;
            format!("{}/{}", Ipv6Addr::from(v6), prefix.unwrap_or_else(|| "128".into()))
        }
    })
}

/// `LIKE` pattern matching every key that starts with `prefix`.
fn prefix_pattern(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl PostgresStore {
    pub(super) async fn query_(&self, q: &Query) -> Result<Page<FeedRecord>> {
        let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit.min(MAX_LIMIT) };
        let Some((sql, args)) = select_records(q)? else { return Ok(Page { items: Vec::new(), next: None }) };
        let sql = format!("{sql} LIMIT {}", limit + 1);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let client = self.client().await?;
        let rows = client.query(sql.as_str(), &params).await.map_err(pg_error)?;
        let mut items = rows.iter().map(record_from_row).collect::<Result<Vec<_>>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Every record `q` selects, in one statement read through a portal while `out` has room.
    /// When `out` is full the statement is closed and the connection returned to the pool
    /// before waiting (a slow export client must not pin a connection); the read then resumes
    /// with a keyset query after the last record sent. Keyset pages for the whole export would
    /// cost a query per page, each of which may sort what it skips when statistics are stale
    /// (a freshly loaded table).
    pub(super) async fn scan_records_(&self, q: &Query, scan: Scan, out: mpsc::Sender<Vec<ExportRecord>>) -> Result<()> {
        let batch = scan.batch.clamp(1, MAX_LIMIT) as i32;
        let mut q = q.clone();
        loop {
            let Some((sql, args)) = select_records(&q)? else { return Ok(()) };
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
            let mut client = self.client().await?;
            let tx = client.build_transaction().read_only(true).start().await.map_err(pg_error)?;
            let portal = tx.bind(sql.as_str(), &params).await.map_err(pg_error)?;
            // The batch that found `out` full, and the cursor after it.
            let waiting = loop {
                let rows = tx.query_portal(&portal, batch).await.map_err(pg_error)?;
                let last = rows.len() < batch as usize;
                let Some(cursor) = rows.last().map(record_from_row).transpose()?.as_ref().map(cursor_of) else { return Ok(()) };
                let items = rows
                    .iter()
                    .map(|r| record_from_row(r).map(ExportRecord::from))
                    .map(|r| r.map(|r| if scan.details { r } else { ExportRecord { tags: Vec::new(), portlist: Vec::new(), protocol: None, description: None, ..r } }))
                    .collect::<Result<Vec<_>>>()?;
                match out.try_reserve() {
                    Ok(permit) => permit.send(items),
                    Err(mpsc::error::TrySendError::Closed(())) => return Ok(()),
                    Err(mpsc::error::TrySendError::Full(())) => break (items, cursor, last),
                }
                if last {
                    return Ok(());
                }
            };
            drop(portal);
            let _ = tx.rollback().await;
            drop(client);
            let (items, cursor, last) = waiting;
            if out.send(items).await.is_err() || last {
                return Ok(());
            }
            q.cursor = Some(cursor);
        }
    }
}

/// The keyset cursor after a record.
fn cursor_of(r: &FeedRecord) -> String {
    Cursor { lasttime: r.lasttime.timestamp_micros(), id: r.id }.encode()
}

type Args = Vec<Box<dyn ToSql + Sync + Send>>;

/// The `SELECT` of the records `q` selects, in its order and from its cursor, without a
/// `LIMIT`; `None` when it selects nothing (an empty feed list).
fn select_records(q: &Query) -> Result<Option<(String, Args)>> {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Args = Vec::new();
    let arg = |args: &mut Args, v: Box<dyn ToSql + Sync + Send>| {
        args.push(v);
        format!("${}", args.len())
    };
    if let Some(v) = &q.value {
        let a = arg(&mut args, Box::new(v.clone()));
        conds.push(format!("i.value = {a}"));
    }
    if let Some(cidr) = &q.within {
        let net = network(cidr.trim())
            .ok_or_else(|| StoreError::Invalid(format!("within: `{cidr}` is not an address or CIDR")))?;
        let a = arg(&mut args, Box::new(net));
        conds.push(format!("i.addr <<= {a}::text::inet"));
    }
    if let Some(d) = &q.domain {
        let a = arg(&mut args, Box::new(prefix_pattern(&host_key(&d.trim().to_ascii_lowercase()))));
        conds.push(format!("i.host_key LIKE {a}"));
    }
    if let Some(itype) = q.itype {
        let a = arg(&mut args, Box::new(itype.as_str().to_string()));
        conds.push(format!("i.itype = {a}"));
    }
    let tags: Vec<String> = q.tags.iter().map(|t| t.trim().to_string()).collect();
    if !tags.is_empty() {
        let a = arg(&mut args, Box::new(tags));
        conds.push(format!("r.tags @> {a}::text[]"));
    }
    if let Some(ids) = &q.feed_ids {
        match ids.as_slice() {
            [] => return Ok(None),
            // One feed (every feed export): `=` lets the planner walk the feed's index in order.
            [one] => {
                let a = arg(&mut args, Box::new(*one));
                conds.push(format!("r.feed_id = {a}"));
            }
            _ => {
                let a = arg(&mut args, Box::new(ids.clone()));
                conds.push(format!("r.feed_id = ANY({a})"));
            }
        }
    }
    conds.extend(readable_condition(Some(q.reader.as_ref())));
    if let Some(since) = q.since {
        let a = arg(&mut args, Box::new(since));
        conds.push(format!("r.lasttime >= {a}"));
    }
    if let Some(until) = q.until {
        let a = arg(&mut args, Box::new(until));
        conds.push(format!("r.lasttime <= {a}"));
    }
    if let Some(cursor) = &q.cursor {
        let cur = Cursor::decode(cursor)?;
        let at = DateTime::from_timestamp_micros(cur.lasttime)
            .ok_or_else(|| StoreError::Invalid(format!("cursor `{cursor}` is not one this hub handed out")))?;
        let a = arg(&mut args, Box::new(at));
        let b = arg(&mut args, Box::new(cur.id));
        let past = if q.order == Order::OldestFirst { ">" } else { "<" };
        conds.push(format!("(r.lasttime, r.id) {past} ({a}, {b})"));
    }
    let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let order = match q.order {
        Order::NewestFirst => "r.lasttime DESC, r.id DESC",
        Order::OldestFirst => "r.lasttime ASC, r.id ASC",
    };
    Ok(Some((format!("SELECT {RECORD_COLUMNS} FROM {FROM_RECORDS}{filter} ORDER BY {order}"), args)))
}

impl PostgresStore {
    pub(super) async fn get_record_(&self, id: i64) -> Result<Option<FeedRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {RECORD_COLUMNS} FROM {FROM_RECORDS} WHERE r.id = $1"), &[&id])
            .await
            .map_err(pg_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(super) async fn get_indicator_(&self, value: &str) -> Result<Option<IndicatorSummary>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT i.value, i.itype, i.firsttime, i.lasttime, i.count, \
                     (SELECT count(*) FROM feed_records r WHERE r.indicator_id = i.id), \
                     (SELECT count(*) FROM indicator_reporters x WHERE x.indicator_id = i.id), i.reserved \
                 FROM indicators i WHERE i.value = $1",
                &[&value],
            )
            .await
            .map_err(pg_error)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(IndicatorSummary {
            indicator: r.get(0),
            itype: parse_itype(r.get(1))?,
            firsttime: r.get(2),
            lasttime: r.get(3),
            count: r.get(4),
            feeds: r.get(5),
            sources: r.get(6),
            reserved: r.get(7),
        }))
    }

    pub(super) async fn sightings_of_(&self, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>> {
        let limit = limit.clamp(1, MAX_LIMIT) as i64;
        if feed_ids.is_some_and(|ids| ids.is_empty()) {
            return Ok(Vec::new());
        }
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.seq, u.name || '/' || f.name, i.itype, i.value, s.observed_at, s.received_at, s.tags, s.ports, \
                 s.protocol, s.description, s.tlp, s.claimed_confidence, s.sensor, s.count, s.extra \
                 FROM indicators i JOIN feed_records r ON r.indicator_id = i.id JOIN sightings s ON s.record_id = r.id \
                 JOIN feeds f ON f.id = r.feed_id JOIN users u ON u.id = f.owner_id \
                 WHERE i.value = $1 AND ($2::bigint[] IS NULL OR r.feed_id = ANY($2)) ORDER BY s.seq DESC LIMIT $3",
                &[&value, &ids, &limit],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                Ok(Sighting {
                    seq: r.get(0),
                    feed: r.get(1),
                    itype: parse_itype(r.get(2))?,
                    indicator: r.get(3),
                    observed_at: r.get(4),
                    received_at: r.get(5),
                    tags: r.get(6),
                    portlist: ports_from_db(r.get(7)),
                    protocol: r.get(8),
                    description: r.get(9),
                    tlp: tlp_from_rank(r.get(10)),
                    claimed_confidence: r.get(11),
                    sensor: r.get(12),
                    count: r.get(13),
                    extra: r.get(14),
                })
            })
            .collect()
    }

    pub(super) async fn stats_(&self) -> Result<Stats> {
        let client = self.client().await?;
        let r = client
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM feeds), (SELECT count(*) FROM sightings), \
                 (SELECT count(*) FROM feed_records), (SELECT count(*) FROM indicators)",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(Stats { users: r.get(0), feeds: r.get(1), sightings: r.get(2), records: r.get(3), indicators: r.get(4) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_prefix_patterns() {
        assert_eq!(network("198.51.100.7/24").as_deref(), Some("198.51.100.0/24"));
        assert_eq!(network("192.0.2.1").as_deref(), Some("192.0.2.1/32"));
        assert_eq!(network("2001:db8::1/32").as_deref(), Some("2001:db8::/32"));
        assert_eq!(network("example.com"), None);
        assert_eq!(prefix_pattern("com.my_site."), "com.my\\_site.%");
    }
}
