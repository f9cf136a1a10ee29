//! The PostgreSQL store, for hubs of several nodes (issue 8: scale-out).
//!
//! - **Connections.** A `deadpool-postgres` pool; every write is one transaction that commits
//!   before the call returns (acknowledged means durable, as with SQLite). Several hub nodes
//!   may share one database: nothing is cached in memory.
//! - **Sightings** are partitioned by month of arrival (`received_at`, declarative RANGE
//!   partitioning). A month's partition is created on demand before the first append into it
//!   (`apiary_sightings_partition`); [`PostgresStore::drop_sightings_before`] is the retention.
//! - **Aggregates** (feed records, indicators) are upserted with `INSERT … ON CONFLICT`, so
//!   concurrent appends from several nodes merge instead of racing. The merge rules are the
//!   SQLite store's (see `sqlite/append.rs`): min/max times, unions, sums, most restrictive TLP,
//!   descriptive fields from the most recently observed sighting.
//! - **Search keys.** Addresses are `inet` with a GiST (`inet_ops`) index; domains are the
//!   reversed-label key (shared with SQLite: `sqlite::keys`) under a `text_pattern_ops` index.
//! - **Schema.** One SQL file per version under `migrations/postgres/`, applied in order under
//!   an advisory lock and tracked in the `schema_version` table.
//! - **URL.** `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME&pool=N&…]`: `schema` puts
//!   the hub in a PostgreSQL schema of its own (created if missing), so several hubs or test
//!   runs can share a database; `pool` caps the connections of this node. Other parameters
//!   (`connect_timeout`, `sslmode`, `application_name`, …) go to the driver as they are.

mod accounts;
mod append;
pub mod import;
mod compare;
mod events;
mod lease;
mod read;
mod sessions;
mod stream;
mod trust;

use crate::model::*;
use crate::{HpfeedsIdent, LoggedSighting, NewHpfeedsIdent, NewWebhook, Result, Store, StoreError, Webhook, WebhookProgress};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// The schema versions, in order; `schema_version` holds the numbers applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_sessions.sql"),
    include_str!("../../migrations/postgres/0003_sensor_events.sql"),
    include_str!("../../migrations/postgres/0004_trust.sql"),
    include_str!("../../migrations/postgres/0005_feed_comparison.sql"),
    include_str!("../../migrations/postgres/0006_leases.sql"),
];

/// Key of the advisory lock held while migrating (any constant both nodes agree on).
const MIGRATION_LOCK: i64 = 0x0061_7069_6172_7901;

/// Tuning for [`PostgresStore::connect_with`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections the pool opens.
    pub max_connections: usize,
    /// Schema to use (set as the connections' `search_path`); `None`: the server's default.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { max_connections: 16, schema: None }
    }
}

/// Split the store's own parameters (`schema`, `pool`) off a URL's query; the rest of the URL
/// is the driver's. A `schema` must be a plain identifier (it is put into SQL unquoted).
pub fn split_url(url: &str) -> Result<(String, PostgresOptions)> {
    let mut opts = PostgresOptions::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), opts));
    };
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "schema" => opts.schema = Some(check_schema(v)?.to_string()),
            "pool" => {
                opts.max_connections = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| StoreError::Invalid(format!("store URL: pool `{v}`: a number of connections, 1 to 1000")))?
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, opts))
}

/// A schema name: 1–63 lowercase letters, digits and `_`, not starting with a digit or `pg_`.
fn check_schema(s: &str) -> Result<&str> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && !s.starts_with("pg_");
    if ok {
        Ok(s)
    } else {
        Err(StoreError::Invalid(format!(
            "schema `{}`: use 1–63 lowercase letters, digits and '_' (not starting with a digit or pg_)",
            s.escape_default()
        )))
    }
}

/// The PostgreSQL [`Store`].
pub struct PostgresStore {
    pool: Pool,
    /// Sightings partitions known to exist (`YYYY_MM`), so appends skip the check.
    partitions: Mutex<HashSet<String>>,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user@host:port/db[?schema=NAME&pool=N]`, see the module
    /// documentation), creating or upgrading the schema.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let (url, opts) = split_url(url)?;
        PostgresStore::connect_with(&url, opts).await
    }

    /// Connect with explicit options (a `schema`/`pool` in `url` is an error here: give them in
    /// `opts`).
    pub async fn connect_with(url: &str, opts: PostgresOptions) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Invalid(format!("store URL `{}`: {e}", redact(url))))?;
        if let Some(schema) = &opts.schema {
            check_schema(schema)?;
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(opts.max_connections.max(1))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the PostgreSQL pool: {e}")))?;
        let store = PostgresStore { pool, partitions: Mutex::new(HashSet::new()) };
        store.migrate(opts.schema.as_deref()).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => StoreError::Busy,
            deadpool_postgres::PoolError::Backend(e) => pg_error(e),
            other => StoreError::Internal(format!("cannot reach PostgreSQL: {other}")),
        })
    }

    async fn migrate(&self, schema: Option<&str>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_error)?;
        if let Some(schema) = schema {
            // Checked by `check_schema`: a plain identifier. Under the lock, so nodes starting
            // together do not race to create it.
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await.map_err(pg_error)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg_error)?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let newest = MIGRATIONS.len() as i32;
        if current > newest {
            return Err(StoreError::Internal(format!(
                "the database has schema version {current}, newer than this program knows ({newest}); upgrade apiary"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i32 + 1;
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Internal(format!("migration to schema version {version} failed: {e}")))?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&version]).await.map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    /// The schema version applied (the newest migration's number after `connect`).
    pub async fn schema_version(&self) -> Result<i32> {
        let client = self.client().await?;
        let row = client.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[]).await.map_err(pg_error)?;
        Ok(row.get(0))
    }

    /// Retention: drop every monthly sightings partition that ends at or before `cutoff`.
    /// Returns the partitions dropped. Feed records and indicators keep their counts.
    pub async fn drop_sightings_before(&self, cutoff: Timestamp) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = client.query("SELECT apiary_drop_sightings_before($1)", &[&cutoff]).await.map_err(pg_error)?;
        let dropped: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let mut known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        for name in &dropped {
            known.remove(name.trim_start_matches("sightings_"));
        }
        Ok(dropped)
    }

    /// The sightings partitions, oldest first.
    pub async fn sightings_partitions(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'sightings'::regclass ORDER BY 1",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Make sure the monthly partitions for these arrival times exist (outside the append's
    /// transaction: creating a partition locks the parent table briefly).
    async fn ensure_partitions(&self, times: impl Iterator<Item = Timestamp>) -> Result<()> {
        let mut missing: Vec<(String, Timestamp)> = Vec::new();
        {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            for t in times {
                let month = t.format("%Y_%m").to_string();
                if !known.contains(&month) && !missing.iter().any(|(m, _)| *m == month) {
                    missing.push((month, t));
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        for (month, t) in missing {
            client.execute("SELECT apiary_sightings_partition($1)", &[&t]).await.map_err(pg_error)?;
            self.partitions.lock().unwrap_or_else(|p| p.into_inner()).insert(month);
        }
        Ok(())
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Map a PostgreSQL error: contention (deadlock, serialization, too many connections) is
/// `Busy` (try again), anything else internal.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if let Some(code) = e.code() {
        if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::LOCK_NOT_AVAILABLE
        {
            return StoreError::Busy;
        }
    }
    match e.as_db_error() {
        Some(db) => StoreError::Internal(format!("PostgreSQL: {} ({})", db.message(), db.code().code())),
        None => StoreError::Internal(format!("PostgreSQL: {e}")),
    }
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Timestamps as PostgreSQL keeps them (microseconds).
pub(crate) fn to_micros(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or_default()
}

pub(crate) fn tlp_rank(t: Tlp) -> i16 {
    match t {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::Red => 3,
    }
}

pub(crate) fn tlp_from_rank(r: i16) -> Tlp {
    match r {
        0 => Tlp::Clear,
        2 => Tlp::Amber,
        3 => Tlp::Red,
        _ => Tlp::Green,
    }
}

pub(crate) fn parse_itype(s: &str) -> Result<apiary_core::IType> {
    apiary_core::IType::from_name(s).ok_or_else(|| StoreError::Internal(format!("unknown itype `{s}` in the database")))
}

pub(crate) fn ports_from_db(v: Vec<i32>) -> Vec<u16> {
    v.into_iter().filter_map(|p| u16::try_from(p).ok()).collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, name: &str, admin: bool) -> Result<User> {
        self.create_user_(name, admin).await
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        self.get_user_(name).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.list_users_().await
    }

    async fn create_token(&self, user: &str, scopes: Scopes, expires: Option<Timestamp>, label: Option<&str>) -> Result<(TokenInfo, String)> {
        self.create_token_(user, scopes, expires, label).await
    }

    async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        self.authenticate_(token).await
    }

    async fn list_tokens(&self, user: &str) -> Result<Vec<TokenInfo>> {
        self.list_tokens_(user).await
    }

    async fn revoke_token(&self, user: &str, token_id: i64) -> Result<()> {
        self.revoke_token_(user, token_id).await
    }

    async fn create_feed(&self, new: NewFeed) -> Result<Feed> {
        self.create_feed_(new).await
    }

    async fn get_feed(&self, owner: &str, name: &str) -> Result<Option<Feed>> {
        self.get_feed_(owner, name).await
    }

    async fn list_feeds(&self, owner: Option<&str>) -> Result<Vec<Feed>> {
        self.list_feeds_(owner, None).await
    }

    async fn update_feed(&self, owner: &str, name: &str, update: FeedUpdate) -> Result<Feed> {
        self.update_feed_(owner, name, update).await
    }

    async fn delete_feed(&self, owner: &str, name: &str) -> Result<()> {
        self.delete_feed_(owner, name).await
    }

    async fn grant_feed_access(&self, owner: &str, name: &str, user: &str) -> Result<()> {
        self.grant_feed_access_(owner, name, user).await
    }

    async fn has_feed_access(&self, feed_id: i64, user_id: i64) -> Result<bool> {
        self.has_feed_access_(feed_id, user_id).await
    }

    async fn list_readable_feeds(&self, reader: Option<&Reader>, owner: Option<&str>) -> Result<Vec<Feed>> {
        self.list_feeds_(owner, Some(reader)).await
    }

    async fn append_sightings(&self, batch: Vec<NewSighting>) -> Result<Vec<AppendOutcome>> {
        self.append_(batch).await
    }

    async fn query(&self, q: &Query) -> Result<Page<FeedRecord>> {
        self.query_(q).await
    }

    async fn scan_records(&self, q: &Query, scan: Scan, out: tokio::sync::mpsc::Sender<Vec<ExportRecord>>) -> Result<()> {
        self.scan_records_(q, scan, out).await
    }

    async fn get_record(&self, id: i64) -> Result<Option<FeedRecord>> {
        self.get_record_(id).await
    }

    async fn get_indicator(&self, value: &str) -> Result<Option<IndicatorSummary>> {
        self.get_indicator_(value).await
    }

    async fn sightings_of(&self, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>> {
        self.sightings_of_(value, feed_ids, limit).await
    }

    async fn upsert_hpfeeds_ident(&self, new: NewHpfeedsIdent) -> Result<HpfeedsIdent> {
        self.hpfeeds_upsert(new).await
    }

    async fn get_hpfeeds_ident(&self, ident: &str) -> Result<Option<HpfeedsIdent>> {
        self.hpfeeds_get(ident).await
    }

    async fn list_hpfeeds_idents(&self) -> Result<Vec<HpfeedsIdent>> {
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

    async fn sightings_after(&self, after: i64, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<LoggedSighting>> {
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

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        self.webhook_create(new).await
    }

    async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>> {
        self.webhook_get(id).await
    }

    async fn list_webhooks(&self, user: Option<&str>) -> Result<Vec<Webhook>> {
        self.webhook_list(user).await
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        self.webhook_delete(id).await
    }

    async fn set_webhook_progress(&self, id: i64, progress: WebhookProgress) -> Result<()> {
        self.webhook_progress(id, progress).await
    }

    async fn resume_webhook(&self, id: i64) -> Result<Webhook> {
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
        self.stats_().await
    }

    /// PostgreSQL is backed up with its own tools (`pg_dump`, base backups with WAL archiving),
    /// which keep a consistent copy of a database several nodes write to.
    async fn backup(&self, dest: &Path) -> Result<()> {
        Err(StoreError::Invalid(format!(
            "a PostgreSQL store is backed up with pg_dump or a base backup, not into {}",
            dest.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_tlp_ranks_round_trip() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        for t in [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::Red] {
            assert_eq!(tlp_from_rank(tlp_rank(t)), t);
        }
        assert!(tlp_rank(Tlp::Red) > tlp_rank(Tlp::Amber));
    }

    #[test]
    fn schema_and_pool_come_off_the_url() {
        let (url, o) = split_url("postgres://u@h/db?schema=hub_a&connect_timeout=5&pool=4").unwrap();
        assert_eq!(url, "postgres://u@h/db?connect_timeout=5");
        assert_eq!(o.schema.as_deref(), Some("hub_a"));
        assert_eq!(o.max_connections, 4);
        let (url, o) = split_url("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), o.schema), ("postgres://u@h/db", None));
        assert_eq!(split_url("postgres://u@h/db?schema=a").unwrap().0, "postgres://u@h/db");
        for bad in ["schema=", "schema=Hub", "schema=a;drop", "schema=1a", "schema=pg_x", "pool=0", "pool=x"] {
            assert!(split_url(&format!("postgres://u@h/db?{bad}")).is_err(), "{bad}");
        }
    }
}
