//! Job leases shared by every node (see `crate::lease`): a row per lease in `job_leases`,
//! expiry judged by the database's clock so the nodes' clocks need not agree.

use super::{pg_error, PostgresStore};
use crate::lease::{check, ttl_ms, Lease};
use crate::Result;
use std::time::Duration;

fn lease_row(r: &tokio_postgres::Row) -> Lease {
    Lease { name: r.get(0), holder: r.get(1), epoch: r.get(2), expires_at: r.get(3) }
}

impl PostgresStore {
    pub(super) async fn lease_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        check("name", name)?;
        check("holder", holder)?;
        let ms = ttl_ms(ttl) as f64;
        let client = self.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO job_leases AS l (name, holder, epoch, expires_at, acquired_at) \
                 VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond', clock_timestamp()) \
                 ON CONFLICT (name) DO UPDATE SET \
                     epoch = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END, \
                     acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END, \
                     holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp() \
                 RETURNING name, holder, epoch, expires_at",
                &[&name, &holder, &ms],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(lease_row))
    }

    pub(super) async fn lease_renew(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let ms = ttl_ms(ttl) as f64;
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE job_leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE name = $1 AND holder = $2",
                &[&name, &holder, &ms],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    pub(super) async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        let client = self.client().await?;
        client.execute("DELETE FROM job_leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await.map_err(pg_error)?;
        Ok(())
    }

    pub(super) async fn lease_get(&self, name: &str) -> Result<Option<Lease>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT name, holder, epoch, expires_at FROM job_leases WHERE name = $1", &[&name])
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(lease_row))
    }
}
