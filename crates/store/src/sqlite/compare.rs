//! The feed comparison in SQLite (migration 0009): the paged read of every value with the feeds
//! that list it, and the latest result.

use super::{db_error, from_micros, json_list, now_micros, parse_itype, SqliteStore};
use crate::compare::{decode, encode, group_rows, Comparison, FeedPresence, ValuePresence};
use crate::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// The most values one page returns.
const MAX_PAGE: usize = 100_000;

fn presence_after(c: &Connection, after: i64, limit: usize) -> Result<Vec<ValuePresence>> {
    let limit = limit.clamp(1, MAX_PAGE) as i64;
    let mut st = c
        .prepare_cached(
            "SELECT i.id, i.value, i.itype, i.reserved, r.feed_id, r.firsttime, r.lasttime, r.tags \
             FROM (SELECT id, value, itype, reserved FROM indicators WHERE id > ?1 ORDER BY id LIMIT ?2) i \
             JOIN feed_records r ON r.indicator_id = i.id ORDER BY i.id",
        )
        .map_err(db_error)?;
    let rows = st
        .query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                parse_itype(&r.get::<_, String>(2)?)?,
                r.get::<_, Option<String>>(3)?,
                FeedPresence {
                    feed_id: r.get(4)?,
                    firsttime: from_micros(r.get(5)?),
                    lasttime: from_micros(r.get(6)?),
                    tags: json_list(&r.get::<_, String>(7)?)?,
                },
            ))
        })
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_error)?;
    Ok(group_rows(rows))
}

fn get(c: &Connection) -> Result<Option<Comparison>> {
    let body: Option<String> = c
        .prepare_cached("SELECT body FROM feed_comparison WHERE id = 1")
        .and_then(|mut st| st.query_row([], |r| r.get(0)).optional())
        .map_err(db_error)?;
    body.as_deref().map(decode).transpose()
}

impl SqliteStore {
    pub(super) async fn compare_presence_after(&self, after: i64, limit: usize) -> Result<Vec<ValuePresence>> {
        self.read(move |c| presence_after(c, after, limit)).await
    }

    pub(super) async fn compare_put(&self, comparison: &Comparison) -> Result<()> {
        let body = encode(comparison)?;
        self.write(1, true, move |c| {
            c.prepare_cached(
                "INSERT INTO feed_comparison (id, computed_at, body) VALUES (1, ?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET computed_at = excluded.computed_at, body = excluded.body",
            )
            .and_then(|mut st| st.execute(params![now_micros(), body]))
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn compare_get(&self) -> Result<Option<Comparison>> {
        self.read(get).await
    }
}
