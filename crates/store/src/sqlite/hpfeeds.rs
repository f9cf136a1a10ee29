//! hpfeeds idents in SQLite (`hpfeeds_idents`, migration 0003).
//!
//! The secrets are stored readable (the protocol needs them), so whenever an ident is written
//! the database file and its WAL and shared-memory files are made readable by their owner only.

use super::{db_error, from_micros, json_list, now_micros, SqliteStore};
use crate::hpfeeds::{split_feed, HpfeedsIdent, NewHpfeedsIdent};
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;

const COLUMNS: &str = "ident, secret, publish, subscribe, feed_owner, feed_name, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<HpfeedsIdent> {
    let owner: Option<String> = r.get(4)?;
    let name: Option<String> = r.get(5)?;
    Ok(HpfeedsIdent {
        ident: r.get(0)?,
        secret: r.get(1)?,
        publish: json_list(&r.get::<_, String>(2)?)?,
        subscribe: json_list(&r.get::<_, String>(3)?)?,
        feed: owner.zip(name).map(|(o, n)| format!("{o}/{n}")),
        created_at: from_micros(r.get(6)?),
        updated_at: from_micros(r.get(7)?),
    })
}

fn upsert(c: &Connection, new: &NewHpfeedsIdent) -> Result<HpfeedsIdent> {
    let (owner, name) = match &new.feed {
        Some(f) => {
            let (o, n) = split_feed(f)?;
            let exists: Option<i64> = c
                .prepare_cached("SELECT f.id FROM feeds f JOIN users u ON u.id = f.owner_id WHERE u.name = ?1 AND f.name = ?2")
                .and_then(|mut st| st.query_row([o, n], |r| r.get(0)).optional())
                .map_err(db_error)?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("feed `{f}`")));
            }
            (Some(o), Some(n))
        }
        None => (None, None),
    };
    let now = now_micros();
    let publish = serde_json::to_string(&new.publish).map_err(|e| StoreError::Internal(e.to_string()))?;
    let subscribe = serde_json::to_string(&new.subscribe).map_err(|e| StoreError::Internal(e.to_string()))?;
    c.prepare_cached(
        "INSERT INTO hpfeeds_idents (ident, secret, publish, subscribe, feed_owner, feed_name, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (ident) DO UPDATE SET secret = excluded.secret, publish = excluded.publish, \
         subscribe = excluded.subscribe, feed_owner = excluded.feed_owner, feed_name = excluded.feed_name, \
         updated_at = excluded.updated_at",
    )
    .and_then(|mut st| st.execute(params![new.ident, new.secret, publish, subscribe, owner, name, now]))
    .map_err(db_error)?;
    get(c, &new.ident)?.ok_or_else(|| StoreError::Internal(format!("hpfeeds ident `{}` vanished", new.ident)))
}

fn get(c: &Connection, ident: &str) -> Result<Option<HpfeedsIdent>> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM hpfeeds_idents WHERE ident = ?1"))
        .and_then(|mut st| st.query_row([ident], from_row).optional())
        .map_err(db_error)
}

fn list(c: &Connection) -> Result<Vec<HpfeedsIdent>> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM hpfeeds_idents ORDER BY ident")).map_err(db_error)?;
    let rows = st.query_map([], from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn delete(c: &Connection, ident: &str) -> Result<()> {
    let n = c
        .prepare_cached("DELETE FROM hpfeeds_idents WHERE ident = ?1")
        .and_then(|mut st| st.execute([ident]))
        .map_err(db_error)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("hpfeeds ident `{ident}`")));
    }
    Ok(())
}

/// Owner read/write only, on the database and its companion files (those that exist).
#[cfg(unix)]
fn restrict_permissions(db: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut paths = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        paths.push(p.into());
    }
    for p in paths {
        match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Internal(format!(
                    "cannot make {} readable by its owner only (it holds hpfeeds secrets): {e}",
                    p.display()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_db: &Path) -> Result<()> {
    Ok(())
}

impl SqliteStore {
    pub(super) async fn hpfeeds_upsert(&self, new: NewHpfeedsIdent) -> Result<HpfeedsIdent> {
        let new = new.validated()?;
        let path = self.inner.path.clone();
        let ident = self.write(1, true, move |c| upsert(c, &new)).await?;
        restrict_permissions(&path)?;
        Ok(ident)
    }

    pub(super) async fn hpfeeds_get(&self, ident: &str) -> Result<Option<HpfeedsIdent>> {
        let ident = ident.to_string();
        self.read(move |c| get(c, &ident)).await
    }

    pub(super) async fn hpfeeds_list(&self) -> Result<Vec<HpfeedsIdent>> {
        self.read(list).await
    }

    pub(super) async fn hpfeeds_delete(&self, ident: &str) -> Result<()> {
        let ident = ident.to_string();
        self.write(1, true, move |c| delete(c, &ident)).await
    }
}

#[cfg(all(test, unix))]
mod tests {
    use crate::hpfeeds::NewHpfeedsIdent;
    use crate::sqlite::{SqliteStore, DB_FILE};
    use crate::Store;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn storing_a_secret_makes_the_database_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let db = dir.path().join(DB_FILE);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let new = NewHpfeedsIdent { ident: "pot1".into(), secret: "s3cret".into(), ..Default::default() };
        store.upsert_hpfeeds_ident(new).await.unwrap();
        for name in [DB_FILE.to_string(), format!("{DB_FILE}-wal")] {
            let mode = std::fs::metadata(dir.path().join(&name)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
}
