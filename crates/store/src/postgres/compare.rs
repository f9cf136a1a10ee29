//! The feed comparison in PostgreSQL (migration 0005): the paged read of every value with the
//! feeds that list it, and the latest result. The same rules as `sqlite/compare.rs`.

use super::{parse_itype, pg_error, PostgresStore};
use crate::compare::{decode, encode, group_rows, Comparison, FeedPresence, ValuePresence};
use crate::model::Timestamp;
use crate::Result;

/// The most values one page returns.
const MAX_PAGE: i64 = 100_000;

impl PostgresStore {
    pub(super) async fn compare_presence_after(&self, after: i64, limit: usize) -> Result<Vec<ValuePresence>> {
        let limit = (limit as i64).clamp(1, MAX_PAGE);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT i.id, i.value, i.itype, i.reserved, r.feed_id, r.firsttime, r.lasttime, r.tags \
                 FROM (SELECT id, value, itype, reserved FROM indicators WHERE id > $1 ORDER BY id LIMIT $2) i \
                 JOIN feed_records r ON r.indicator_id = i.id ORDER BY i.id",
                &[&after, &limit],
            )
            .await
            .map_err(pg_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let p = FeedPresence {
                feed_id: r.get(4),
                firsttime: r.get::<_, Timestamp>(5),
                lasttime: r.get::<_, Timestamp>(6),
                tags: r.get(7),
            };
            out.push((
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                parse_itype(r.get(2))?,
                r.get::<_, Option<String>>(3),
                p,
            ));
        }
        Ok(group_rows(out))
    }

    pub(super) async fn compare_put(&self, comparison: &Comparison) -> Result<()> {
        let body = encode(comparison)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO feed_comparison (id, computed_at, body) VALUES (1, now(), $1) \
                 ON CONFLICT (id) DO UPDATE SET computed_at = excluded.computed_at, body = excluded.body",
                &[&body],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    pub(super) async fn compare_get(&self) -> Result<Option<Comparison>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT body FROM feed_comparison WHERE id = 1", &[])
            .await
            .map_err(pg_error)?;
        row.map(|r| decode(r.get::<_, &str>(0))).transpose()
    }
}
