//! The embedded store: one SQLite database file, `DIR/apiary.db`, in WAL mode.
//!
//! - **One writer.** A dedicated thread owns the only write connection. Every write (accounts,
//!   feeds, sightings) is a request on a bounded queue; the writer commits whatever is queued
//!   as one transaction (group commit) and answers each request after `COMMIT`. A full queue is
//!   [`StoreError::Busy`] at once (the server's 429), never an unbounded wait.
//! - **Durability.** A request is answered only after its transaction's `COMMIT` has
//!   written it to the WAL file. The default, [`Durability::Normal`] (`synchronous=NORMAL`),
//!   does not wait for the WAL to reach the disk: the committed frames are in the kernel's page
//!   cache, so a crash of the process (`kill -9`, a panic, an OOM kill) loses nothing that was
//!   answered (tested in `tests/sqlite.rs`); only a kernel crash or power loss can drop the
//!   last commits, and even then the database stays consistent. [`Durability::Full`]
//!   (`synchronous=FULL`) syncs the WAL on every commit and survives a power loss too; group
//!   commit shares each sync among all queued requests, but a sync costs ~6 ms on the
//!   virtual disks this was measured on, which caps 32 single-request clients near 3,500/s.
//! - **Readers.** A small pool of read-only connections used from `spawn_blocking`. Nothing
//!   (users, tokens, feeds) is cached in memory, so an admin command run by another process on
//!   the same directory is seen by the next request.
//! - **Schema.** One SQL file per version under `migrations/sqlite/`, applied in order and
//!   tracked with `PRAGMA user_version`.

mod accounts;
mod append;
mod checkpoint;
mod compare;
mod events;
mod hpfeeds;
mod lease;
pub(crate) mod keys;
mod read;
pub(crate) mod sessions;
mod stream;
mod trust;
mod writer;

use crate::model::*;
use crate::{Result, Store, StoreError};
use apiary_core::IType;
use async_trait::async_trait;
use chrono::DateTime;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// The schema versions, in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_indicator_reporters.sql"),
    include_str!("../../migrations/sqlite/0003_hpfeeds_idents.sql"),
    include_str!("../../migrations/sqlite/0004_indicator_ids.sql"),
    include_str!("../../migrations/sqlite/0005_streams.sql"),
    include_str!("../../migrations/sqlite/0006_sessions.sql"),
    include_str!("../../migrations/sqlite/0007_sensor_events.sql"),
    include_str!("../../migrations/sqlite/0008_trust.sql"),
    include_str!("../../migrations/sqlite/0009_feed_comparison.sql"),
    include_str!("../../migrations/sqlite/0010_leases.sql"),
];

/// The database file inside the data directory.
pub const DB_FILE: &str = "apiary.db";

/// When a write counts as done (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Sync the WAL on every commit (`synchronous=FULL`): survives process crash and power loss.
    Full,
    /// Write the WAL on commit, sync it at checkpoints (`synchronous=NORMAL`): survives a
    /// process crash; a power loss may drop the last commits (never corrupts).
    #[default]
    Normal,
}

impl Durability {
    /// `normal` or `full` (a configuration value).
    pub fn parse(s: &str) -> Option<Durability> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Some(Durability::Normal),
            "full" => Some(Durability::Full),
            _ => None,
        }
    }
}

/// Tuning for [`SqliteStore::open_with`]. The defaults suit a hub on a small machine.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Write requests that may wait for the writer before appends get [`StoreError::Busy`].
    pub queue_capacity: usize,
    /// How long a write to the file waits for another process's write lock.
    pub busy_timeout: Duration,
    /// Read-only connections (and so concurrent reads).
    pub readers: usize,
    pub durability: Durability,
    /// SQLite page cache of the write connection, in KiB.
    pub writer_cache_kib: i64,
    /// SQLite page cache of each read connection, in KiB.
    pub reader_cache_kib: i64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            queue_capacity: 4096,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            durability: Durability::Normal,
            writer_cache_kib: 64 * 1024,
            reader_cache_kib: 16 * 1024,
        }
    }
}

/// The embedded SQLite [`Store`].
pub struct SqliteStore {
    inner: Arc<Inner>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<checkpoint::Checkpointer>,
}

struct Inner {
    path: PathBuf,
    opts: SqliteOptions,
    /// `None` once the store is shutting down.
    queue: Option<mpsc::Sender<writer::Request>>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
}

impl SqliteStore {
    /// Open (creating if needed) the store in `dir`, with default options.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with(dir, SqliteOptions::default())
    }

    pub fn open_with(dir: &Path, opts: SqliteOptions) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Internal(format!("cannot create data directory {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let conn = open_writer(&path, &opts)?;
        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let writer_thread = std::thread::Builder::new()
            .name("apiary-store-writer".into())
            .spawn(move || writer::run(conn, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the store writer: {e}")))?;
        let checkpointer = checkpoint::Checkpointer::start(&path, &opts)?;
        let readers = opts.readers.max(1);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                opts,
                queue: Some(tx),
                readers: Mutex::new(Vec::with_capacity(readers)),
                reader_slots: Semaphore::new(readers),
            }),
            writer_thread: Some(writer_thread),
            checkpointer: Some(checkpointer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `work` on the writer, after the requests queued before it, and wait for its commit.
    /// `weight` counts the sightings it carries. Appends fail fast with `Busy` on a full queue;
    /// account changes (rare, often from an admin) wait up to the busy timeout for a slot.
    async fn write<T, F>(&self, weight: usize, wait_for_slot: bool, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let queue = self.inner.queue.as_ref().ok_or_else(|| StoreError::Internal("store is closed".into()))?;
        let (job, reply) = writer::FnJob::boxed(work);
        let request = writer::Request { job, weight };
        if wait_for_slot {
            match tokio::time::timeout(self.inner.opts.busy_timeout, queue.send(request)).await {
                Err(_) => return Err(StoreError::Busy),
                Ok(Err(_)) => return Err(StoreError::Internal("the store writer has stopped".into())),
                Ok(Ok(())) => {}
            }
        } else {
            queue.try_send(request).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Internal("the store writer has stopped".into()),
            })?;
        }
        reply.await.map_err(|_| StoreError::Internal("the store writer dropped a request".into()))?
    }

    /// Run `work` on a pooled read-only connection, off the async threads.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _slot = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Internal("store is closed".into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&inner.path, &inner.opts)?,
            };
            let result = work(&conn);
            inner.readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; wait for it so
        // that the file is released when the store is gone.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.queue = None;
        } else {
            // A read task still holds `inner`; the queue closes when it finishes.
            return;
        }
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        self.checkpointer.take();
    }
}

fn open_writer(path: &Path, opts: &SqliteOptions) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(opts.busy_timeout).map_err(db_error)?;
    // WAL is a property of the file: set once, kept by every later open.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!("{} cannot use WAL (journal_mode is {mode})", path.display())));
    }
    let sync = match opts.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    // Checkpoints run on their own thread (see `checkpoint`); the writer checkpoints itself
    // only if the WAL grows past this many pages (a checkpointer that cannot keep up).
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=OFF; \
         PRAGMA wal_autocheckpoint={}; PRAGMA journal_size_limit={};",
        opts.writer_cache_kib,
        checkpoint::WRITER_FALLBACK_PAGES,
        // After a bulk import, give the WAL file's space back (it is reused, not shrunk, otherwise).
        64 * 1024 * 1024
    ))
    .map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&conn)?;
    Ok(conn)
}

fn open_reader(path: &Path, opts: &SqliteOptions) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(opts.busy_timeout).map_err(db_error)?;
    conn.execute_batch(&format!("PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY;", opts.reader_cache_kib))
        .map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Bring the schema to the newest version. Safe when several processes open the same
/// directory at once: the version is read again under the write lock.
fn migrate(conn: &Connection) -> Result<()> {
    let newest = MIGRATIONS.len() as i64;
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_error)?;
    if current == newest {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db_error)?;
    let result = (|| {
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_error)?;
        if current > newest {
            return Err(StoreError::Internal(format!(
                "the database has schema version {current}, newer than this program knows ({newest}); upgrade apiary"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            conn.execute_batch(sql)
                .map_err(|e| StoreError::Internal(format!("migration to schema version {} failed: {e}", i + 1)))?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(db_error)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(db_error),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Internal(format!("cannot open {}: {e}", path.display()))
}

/// Map a SQLite error: lock contention is `Busy` (try again), anything else is internal.
pub(crate) fn db_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) {
            return StoreError::Busy;
        }
    }
    StoreError::Internal(e.to_string())
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub(crate) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> Timestamp {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

pub(crate) fn now_micros() -> i64 {
    micros(chrono::Utc::now())
}

pub(crate) fn parse_itype(s: &str) -> rusqlite::Result<IType> {
    IType::from_name(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("unknown itype `{s}`").into())
    })
}

pub(crate) fn parse_tlp(s: &str) -> rusqlite::Result<Tlp> {
    Tlp::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("unknown tlp `{s}`").into())
    })
}

pub(crate) fn json_list<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<Vec<T>> {
    serde_json::from_str(s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, name: &str, admin: bool) -> Result<User> {
        let name = accounts::check_name("user", name)?;
        self.write(1, true, move |c| accounts::create_user(c, &name, admin)).await
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_string();
        self.read(move |c| accounts::get_user(c, &name)).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read(accounts::list_users).await
    }

    async fn create_token(
        &self,
        user: &str,
        scopes: Scopes,
        expires: Option<Timestamp>,
        label: Option<&str>,
    ) -> Result<(TokenInfo, String)> {
        let user = user.to_string();
        let label = label.map(str::to_string);
        self.write(1, true, move |c| accounts::create_token(c, &user, scopes, expires, label)).await
    }

    async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let token = token.to_string();
        self.read(move |c| accounts::authenticate(c, &token)).await
    }

    async fn list_tokens(&self, user: &str) -> Result<Vec<TokenInfo>> {
        let user = user.to_string();
        self.read(move |c| accounts::list_tokens(c, &user)).await
    }

    async fn revoke_token(&self, user: &str, token_id: i64) -> Result<()> {
        let user = user.to_string();
        self.write(1, true, move |c| accounts::revoke_token(c, &user, token_id)).await
    }

    async fn create_feed(&self, new: NewFeed) -> Result<Feed> {
        accounts::check_name("feed", &new.name)?;
        self.write(1, true, move |c| accounts::create_feed(c, &new)).await
    }

    async fn get_feed(&self, owner: &str, name: &str) -> Result<Option<Feed>> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.read(move |c| accounts::get_feed(c, &owner, &name)).await
    }

    async fn list_feeds(&self, owner: Option<&str>) -> Result<Vec<Feed>> {
        let owner = owner.map(str::to_string);
        self.read(move |c| accounts::list_feeds(c, owner.as_deref(), None)).await
    }

    async fn update_feed(&self, owner: &str, name: &str, update: FeedUpdate) -> Result<Feed> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.write(1, true, move |c| accounts::update_feed(c, &owner, &name, &update)).await
    }

    async fn delete_feed(&self, owner: &str, name: &str) -> Result<()> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.write(1, true, move |c| accounts::delete_feed(c, &owner, &name)).await
    }

    async fn grant_feed_access(&self, owner: &str, name: &str, user: &str) -> Result<()> {
        let (owner, name, user) = (owner.to_string(), name.to_string(), user.to_string());
        self.write(1, true, move |c| accounts::grant_feed_access(c, &owner, &name, &user)).await
    }

    async fn has_feed_access(&self, feed_id: i64, user_id: i64) -> Result<bool> {
        self.read(move |c| accounts::has_feed_access(c, feed_id, user_id)).await
    }

    async fn list_readable_feeds(&self, reader: Option<&Reader>, owner: Option<&str>) -> Result<Vec<Feed>> {
        let reader = reader.cloned();
        let owner = owner.map(str::to_string);
        self.read(move |c| accounts::list_feeds(c, owner.as_deref(), Some(reader.as_ref()))).await
    }

    async fn append_sightings(&self, batch: Vec<NewSighting>) -> Result<Vec<AppendOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = append::prepare(batch)?;
        // The sightings travel back with the answer and are freed here: freeing ~10 allocations
        // per sighting is work the one writer thread need not do.
        self.write(prepared.len(), false, move |c| append::append(c, &prepared).map(|out| (out, prepared)))
            .await
            .map(|(out, _)| out)
    }

    async fn query(&self, q: &Query) -> Result<Page<FeedRecord>> {
        let q = q.clone();
        self.read(move |c| read::query(c, &q)).await
    }

    async fn scan_records(&self, q: &Query, scan: Scan, out: tokio::sync::mpsc::Sender<Vec<ExportRecord>>) -> Result<()> {
        self.scan_(q, scan, out).await
    }

    async fn get_record(&self, id: i64) -> Result<Option<FeedRecord>> {
        self.read(move |c| read::get_record(c, id)).await
    }

    async fn get_indicator(&self, value: &str) -> Result<Option<IndicatorSummary>> {
        let value = value.to_string();
        self.read(move |c| read::get_indicator(c, &value)).await
    }

    async fn sightings_of(&self, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>> {
        let value = value.to_string();
        let feed_ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| read::sightings_of(c, &value, feed_ids.as_deref(), limit)).await
    }

    async fn upsert_hpfeeds_ident(&self, new: crate::NewHpfeedsIdent) -> Result<crate::HpfeedsIdent> {
        self.hpfeeds_upsert(new).await
    }

    async fn get_hpfeeds_ident(&self, ident: &str) -> Result<Option<crate::HpfeedsIdent>> {
        self.hpfeeds_get(ident).await
    }

    async fn list_hpfeeds_idents(&self) -> Result<Vec<crate::HpfeedsIdent>> {
        self.hpfeeds_list().await
    }

    async fn delete_hpfeeds_ident(&self, ident: &str) -> Result<()> {
        self.hpfeeds_delete(ident).await
    }

    async fn append_sensor_events(
        &self,
        feed_id: i64,
        reporter_id: i64,
        received_at: Timestamp,
        batch: Vec<crate::NewSensorEvent>,
    ) -> Result<Vec<crate::SensorEventOutcome>> {
        self.events_append(feed_id, reporter_id, received_at, batch).await
    }

    async fn ready_sensor_sessions(&self, idle_before: Timestamp, limit: usize) -> Result<Vec<crate::PendingSession>> {
        self.events_ready(idle_before, limit).await
    }

    async fn sensor_session_events(
        &self,
        feed_id: i64,
        sensor: &str,
        kind: &str,
        session: &str,
        limit: usize,
    ) -> Result<Vec<crate::StoredSensorEvent>> {
        self.events_of_session(feed_id, sensor, kind, session, limit).await
    }

    async fn finish_sensor_sessions(&self, sessions: &[crate::PendingSession]) -> Result<()> {
        self.events_finish(sessions).await
    }

    async fn sensor_event_counts(&self, feed_id: i64) -> Result<crate::SensorEventCounts> {
        self.events_counts(feed_id).await
    }

    async fn sensor_events_after(&self, feed_id: i64, after: i64, limit: usize) -> Result<Vec<crate::StoredSensorEvent>> {
        self.events_after(feed_id, after, limit).await
    }

    async fn sightings_after(&self, after: i64, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<crate::LoggedSighting>> {
        self.log_after(after, feed_ids, limit).await
    }

    async fn last_sighting_seq(&self) -> Result<i64> {
        self.log_last_seq().await
    }

    async fn subscribe_feed(&self, user: &str, owner: &str, name: &str) -> Result<Feed> {
        self.subscribe(user, owner, name).await
    }

    async fn unsubscribe_feed(&self, user: &str, owner: &str, name: &str) -> Result<()> {
        self.unsubscribe(user, owner, name).await
    }

    async fn list_subscriptions(&self, user: &str) -> Result<Vec<Feed>> {
        self.subscriptions(user).await
    }

    async fn create_webhook(&self, new: crate::NewWebhook) -> Result<crate::Webhook> {
        self.webhook_create(new).await
    }

    async fn get_webhook(&self, id: i64) -> Result<Option<crate::Webhook>> {
        self.webhook_get(id).await
    }

    async fn list_webhooks(&self, user: Option<&str>) -> Result<Vec<crate::Webhook>> {
        self.webhook_list(user).await
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        self.webhook_delete(id).await
    }

    async fn set_webhook_progress(&self, id: i64, progress: crate::WebhookProgress) -> Result<()> {
        self.webhook_progress(id, progress).await
    }

    async fn resume_webhook(&self, id: i64) -> Result<crate::Webhook> {
        self.webhook_resume(id).await
    }

    async fn feed_presence_after(&self, after: i64, limit: usize) -> Result<Vec<crate::ValuePresence>> {
        self.compare_presence_after(after, limit).await
    }

    async fn put_feed_comparison(&self, comparison: &crate::compare::Comparison) -> Result<()> {
        self.compare_put(comparison).await
    }

    async fn get_feed_comparison(&self) -> Result<Option<crate::compare::Comparison>> {
        self.compare_get().await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<Option<crate::Lease>> {
        self.lease_acquire(name, holder, ttl).await
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool> {
        self.lease_renew(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.lease_release(name, holder).await
    }

    async fn get_lease(&self, name: &str) -> Result<Option<crate::Lease>> {
        self.lease_get(name).await
    }

    async fn list_sources(&self) -> Result<Vec<crate::Source>> {
        self.trust_list_sources().await
    }

    async fn set_source_tier(&self, owner: &str, name: &str, tier: apiary_core::trust::Tier) -> Result<crate::Source> {
        self.trust_set_tier(owner, name, tier).await
    }

    async fn set_source_asn(&self, owner: &str, name: &str, asn: Option<i64>) -> Result<crate::Source> {
        self.trust_set_asn(owner, name, asn).await
    }

    async fn update_sources(&self, updates: Vec<crate::SourceUpdate>) -> Result<()> {
        self.trust_update_sources(updates).await
    }

    async fn put_scores(&self, scores: Vec<crate::IndicatorScore>) -> Result<()> {
        self.trust_put_scores(scores).await
    }

    async fn get_score(&self, value: &str) -> Result<Option<crate::IndicatorScore>> {
        self.trust_get_score(value).await
    }

    async fn score_tiers(&self, values: &[String]) -> Result<Vec<(String, u8, apiary_core::trust::score::ScoreTier)>> {
        self.trust_score_tiers(values).await
    }

    async fn scores_updated_at(&self) -> Result<Option<Timestamp>> {
        self.trust_scores_updated_at().await
    }

    async fn add_feedback(&self, new: crate::NewFeedback) -> Result<crate::Feedback> {
        self.trust_add_feedback(new).await
    }

    async fn feedback_after(&self, after: i64, limit: usize) -> Result<Vec<crate::Feedback>> {
        self.trust_feedback_after(after, limit).await
    }

    async fn feedback_of(&self, value: &str) -> Result<Vec<crate::Feedback>> {
        self.trust_feedback_of(value).await
    }

    async fn retractions(&self, feed_ids: Option<&[i64]>) -> Result<Vec<(i64, String)>> {
        self.trust_retractions(feed_ids).await
    }

    async fn trust_sightings_after(&self, after: i64, limit: usize) -> Result<Vec<crate::TrustSighting>> {
        self.trust_log_after(after, limit).await
    }

    async fn append_sessions(&self, batch: Vec<crate::NewSession>) -> Result<crate::SessionsOutcome> {
        self.sessions_append(batch).await
    }

    async fn query_sessions(&self, q: &crate::SessionQuery) -> Result<Vec<crate::StoredSession>> {
        self.sessions_query(q).await
    }

    async fn session_links(&self, feed_ids: Option<&[i64]>) -> Result<Vec<apiary_core::sessions::SessionLinks>> {
        self.sessions_links(feed_ids).await
    }

    async fn attacker_sensors(&self, feed_ids: Option<&[i64]>) -> Result<Vec<crate::sessions::AttackerSensor>> {
        self.sessions_attacker_sensors(feed_ids).await
    }

    async fn upsert_sensor(&self, new: crate::NewSensor) -> Result<crate::Sensor> {
        self.sensor_upsert(new).await
    }

    async fn list_sensors(&self, feed_ids: Option<&[i64]>) -> Result<Vec<crate::Sensor>> {
        self.sensor_list(feed_ids).await
    }

    async fn delete_sensor(&self, feed_id: i64, name: &str) -> Result<()> {
        self.sensor_delete(feed_id, name).await
    }

    async fn sensors_seen(&self, feed_ids: Option<&[i64]>) -> Result<Vec<crate::SensorSeen>> {
        self.sensor_seen(feed_ids).await
    }

    async fn stats(&self) -> Result<Stats> {
        self.read(read::stats).await
    }

    async fn backup(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_path_buf();
        self.read(move |c| read::backup(c, &dest)).await
    }
}
