//! Job leases on one host (see `crate::lease`): a row per lease, expiry by this host's clock.

use super::{db_error, from_micros, now_micros, SqliteStore};
use crate::lease::{check, ttl_ms, Lease};
use crate::Result;
use rusqlite::{params, Connection, OptionalExtension};
use std::time::Duration;

fn lease_row(r: &rusqlite::Row) -> rusqlite::Result<Lease> {
    Ok(Lease { name: r.get(0)?, holder: r.get(1)?, epoch: r.get(2)?, expires_at: from_micros(r.get(3)?) })
}

fn acquire(c: &Connection, name: &str, holder: &str, ttl_us: i64) -> Result<Option<Lease>> {
    let now = now_micros();
    c.prepare_cached(
        "INSERT INTO job_leases AS l (name, holder, epoch, expires_at, acquired_at) VALUES (?1, ?2, 1, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET \
             epoch = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END, \
             acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END, \
             holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE l.holder = excluded.holder OR l.expires_at <= ?4 \
         RETURNING name, holder, epoch, expires_at",
    )
    .and_then(|mut st| st.query_row(params![name, holder, now.saturating_add(ttl_us), now], lease_row).optional())
    .map_err(db_error)
}

fn renew(c: &Connection, name: &str, holder: &str, ttl_us: i64) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE job_leases SET expires_at = ?3 WHERE name = ?1 AND holder = ?2")
        .and_then(|mut st| st.execute(params![name, holder, now_micros().saturating_add(ttl_us)]))
        .map_err(db_error)?;
    Ok(n == 1)
}

impl SqliteStore {
    pub(super) async fn lease_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        check("name", name)?;
        check("holder", holder)?;
        let (name, holder, ttl_us) = (name.to_string(), holder.to_string(), ttl_ms(ttl) * 1000);
        self.write(1, true, move |c| acquire(c, &name, &holder, ttl_us)).await
    }

    pub(super) async fn lease_renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let (name, holder, ttl_us) = (name.to_string(), holder.to_string(), ttl_ms(ttl) * 1000);
        self.write(1, true, move |c| renew(c, &name, &holder, ttl_us)).await
    }

    pub(super) async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(1, true, move |c| {
            c.prepare_cached("DELETE FROM job_leases WHERE name = ?1 AND holder = ?2")
                .and_then(|mut st| st.execute(params![name, holder]))
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn lease_get(&self, name: &str) -> Result<Option<Lease>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT name, holder, epoch, expires_at FROM job_leases WHERE name = ?1")
                .and_then(|mut st| st.query_row(params![name], lease_row).optional())
                .map_err(db_error)
        })
        .await
    }
}
