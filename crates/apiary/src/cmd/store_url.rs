//! Which store a command works on: the one resolution every command that touches the hub's
//! data uses (serve, user/token/feed/backup, import, pull, export, hpfeeds ident, migrate).
//!
//! - `--store URL`: `sqlite:DIR` (or a plain directory) or
//!   `postgres://USER@HOST[:PORT]/DB[?schema=NAME&pool=N]` (a schema of its own, created if
//!   missing; at most N connections from this process: see `apiary_store::postgres`);
//! - `--data DIR` is short for `--store sqlite:DIR` (giving both is an error);
//! - precedence: a flag beats the environment (`APIARY_STORE`, then `APIARY_DATA`), which beats
//!   the config file (`store = "..."` or `data = "..."`, the file of `--config`/`APIARY_CONFIG`),
//!   which beats the default `sqlite:./apiary-data`.

use anyhow::{bail, Context};
use apiary_store::sqlite::{SqliteOptions, SqliteStore};
use apiary_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A resolved store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreUrl {
    /// `postgres://…`/`postgresql://…`, `sqlite:DIR`, or a directory.
    pub fn parse(s: &str) -> anyhow::Result<StoreUrl> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(s.to_string()));
        }
        let dir = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")).unwrap_or(s);
        if dir.is_empty() || dir.contains("://") {
            bail!("store `{}`: use postgres://USER@HOST/DB, sqlite:DIR or a directory", redact(s));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(dir)))
    }

    /// For messages: the directory, or the URL without its password.
    pub fn label(&self) -> String {
        match self {
            StoreUrl::Sqlite(dir) => format!("sqlite:{}", dir.display()),
            StoreUrl::Postgres(url) => redact(url),
        }
    }

    pub fn sqlite_dir(&self) -> Option<&Path> {
        match self {
            StoreUrl::Sqlite(dir) => Some(dir),
            StoreUrl::Postgres(_) => None,
        }
    }

    /// Open it (SQLite with `sqlite` options). A PostgreSQL store is connected on a runtime of
    /// its own that lives as long as the process, so callers may use any runtime afterwards.
    pub fn open_with(&self, sqlite: SqliteOptions) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            StoreUrl::Sqlite(dir) => Ok(Arc::new(
                SqliteStore::open_with(dir, sqlite).with_context(|| format!("cannot open the data directory {}", dir.display()))?,
            )),
            StoreUrl::Postgres(url) => {
                let url = url.clone();
                let store = background().block_on(async move { apiary_store::postgres::PostgresStore::connect(&url).await });
                Ok(Arc::new(store.with_context(|| format!("cannot open the store {}", self.label()))?))
            }
        }
    }

    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        self.open_with(SqliteOptions::default())
    }
}

/// The process's runtime for store connections (PostgreSQL's connection tasks run here).
fn background() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("apiary-store")
            .enable_all()
            .build()
            .expect("a runtime for the store")
    })
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            if let Some((user, _)) = cred.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// The `store`/`data` keys of a config file (other keys are the command's own business).
fn from_file(path: &Path) -> anyhow::Result<Option<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
    let get = |k: &str| -> anyhow::Result<Option<String>> {
        match table.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bail!("config file {}: `{k}` must be a string, not {other}", path.display()),
        }
    };
    match (get("store")?, get("data")?) {
        (Some(_), Some(_)) => bail!("config file {}: give `store` or `data`, not both", path.display()),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(d)) => Ok(Some(format!("sqlite:{d}"))),
        (None, None) => Ok(None),
    }
}

/// The one resolution: flags, then `APIARY_STORE`/`APIARY_DATA`, then the config file, then
/// `sqlite:./apiary-data`.
pub fn resolve(store: Option<&str>, data: Option<&Path>, config: Option<&Path>) -> anyhow::Result<StoreUrl> {
    let file = match config {
        Some(path) => from_file(path)?,
        None => None,
    };
    resolve_from(store, data, file)
}

/// [`resolve`] for a command that read its config file itself: `file` is its `store` (or
/// `sqlite:` + its `data`) value.
pub fn resolve_from(store: Option<&str>, data: Option<&Path>, file: Option<String>) -> anyhow::Result<StoreUrl> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    resolve_with(store, data, file, env("APIARY_STORE"), env("APIARY_DATA"))
}

fn resolve_with(
    store: Option<&str>,
    data: Option<&Path>,
    file: Option<String>,
    env_store: Option<String>,
    env_data: Option<String>,
) -> anyhow::Result<StoreUrl> {
    match (store, data) {
        (Some(_), Some(_)) => bail!("give --store URL or --data DIR (short for --store sqlite:DIR), not both"),
        (Some(s), None) => return StoreUrl::parse(s),
        (None, Some(d)) => return Ok(StoreUrl::Sqlite(d.to_path_buf())),
        (None, None) => {}
    }
    if let Some(s) = env_store {
        return StoreUrl::parse(&s).context("APIARY_STORE");
    }
    if let Some(d) = env_data {
        return Ok(StoreUrl::Sqlite(PathBuf::from(d)));
    }
    if let Some(s) = file {
        return StoreUrl::parse(&s).context("config file");
    }
    Ok(StoreUrl::Sqlite(PathBuf::from("./apiary-data")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_passwords() {
        assert_eq!(StoreUrl::parse("sqlite:/srv/a").unwrap(), StoreUrl::Sqlite("/srv/a".into()));
        assert_eq!(StoreUrl::parse("/srv/a").unwrap(), StoreUrl::Sqlite("/srv/a".into()));
        assert_eq!(StoreUrl::parse("postgres://u@h/db").unwrap(), StoreUrl::Postgres("postgres://u@h/db".into()));
        assert!(StoreUrl::parse("mysql://h/db").is_err());
        assert!(StoreUrl::parse("").is_err());
        assert_eq!(StoreUrl::Postgres("postgres://u:pw@h/db".into()).label(), "postgres://u:***@h/db");
    }

    #[test]
    fn flag_beats_env_beats_config_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apiary.toml");
        std::fs::write(&file, "store = \"postgres://cfg@h/db\"\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let env_store = || Some("postgres://env@h/db".to_string());
        let cfg = |f: &Path| from_file(f).unwrap();
        let pg = |u: &str| StoreUrl::Postgres(u.into());
        assert_eq!(resolve_with(Some("postgres://flag@h/db"), None, cfg(&file), env_store(), None).unwrap(), pg("postgres://flag@h/db"));
        assert_eq!(resolve_with(None, Some(Path::new("/d")), cfg(&file), env_store(), None).unwrap(), StoreUrl::Sqlite("/d".into()));
        assert_eq!(resolve_with(None, None, cfg(&file), env_store(), Some("/e".into())).unwrap(), pg("postgres://env@h/db"));
        assert_eq!(resolve_with(None, None, cfg(&file), None, Some("/e".into())).unwrap(), StoreUrl::Sqlite("/e".into()));
        assert_eq!(resolve_with(None, None, cfg(&file), None, None).unwrap(), pg("postgres://cfg@h/db"));
        std::fs::write(&file, "data = \"/from/file\"\n").unwrap();
        assert_eq!(resolve_with(None, None, cfg(&file), None, None).unwrap(), StoreUrl::Sqlite("/from/file".into()));
        assert_eq!(resolve_with(None, None, None, None, None).unwrap(), StoreUrl::Sqlite("./apiary-data".into()));
        assert!(resolve_with(Some("sqlite:/a"), Some(Path::new("/b")), None, None, None).is_err(), "both flags");
    }
}
