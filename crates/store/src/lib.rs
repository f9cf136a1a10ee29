//! Apiary's record stage: accounts, feeds, sightings and their aggregates.
//!
//! [`Store`] is the one interface the server and the CLI use; [`sqlite::SqliteStore`] is the
//! embedded default and [`postgres::PostgresStore`] the one several hub nodes share ([`open`]
//! picks one from a store URL). Every write
//! returns only after it is committed: a 2xx or an acked frame never loses data when the
//! process crashes (and, with `sqlite::Durability::Full`, not on a power loss either).
//! [`conformance`] holds the behaviour every implementation must show.

pub mod compare;
pub mod conformance;
pub mod events;
pub mod hpfeeds;
pub mod lease;
pub mod model;
pub mod postgres;
pub mod sessions;
pub mod sqlite;
pub mod stream;
pub mod trust;

pub use compare::{FeedPresence, ValuePresence};
pub use events::{NewSensorEvent, PendingSession, SensorEventCounts, SensorEventOutcome, StoredSensorEvent};
pub use hpfeeds::{HpfeedsIdent, NewHpfeedsIdent};
pub use sessions::{NewSensor, NewSession, Sensor, SensorSeen, SessionQuery, SessionsOutcome, StoredSession};
pub use lease::{Lease, LeaseOptions, LeasedJob};
pub use model::*;
pub use trust::{Feedback, FeedbackKind, IndicatorScore, NewFeedback, Source, SourceUpdate, TrustSighting};
pub use stream::{LoggedSighting, NewWebhook, Webhook, WebhookProgress, WebhookState};

use async_trait::async_trait;
use std::sync::Arc;

/// Open the store a URL names: `postgres://…` (or `postgresql://…`) is a [`postgres::PostgresStore`];
/// `sqlite:DIR` or a plain directory is a [`sqlite::SqliteStore`] in that directory.
pub async fn open(url_or_dir: &str) -> Result<Arc<dyn Store>> {
    if url_or_dir.starts_with("postgres://") || url_or_dir.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::connect(url_or_dir).await?));
    }
    let dir = url_or_dir.strip_prefix("sqlite:").unwrap_or(url_or_dir);
    if dir.is_empty() || dir.contains("://") {
        return Err(StoreError::Invalid(format!(
            "store `{url_or_dir}`: use postgres://USER@HOST/DB, sqlite:DIR or a directory"
        )));
    }
    Ok(Arc::new(sqlite::SqliteStore::open(std::path::Path::new(dir))?))
}

/// Store errors. `NotFound`/`Conflict`/`Invalid` are the client's fault; `Busy` maps to 429;
/// `Internal` to 500 and never happens for client input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("store busy, try again")]
    Busy,
    #[error("store error: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The record stage. Implementations must be safe to share across tasks (`Arc<dyn Store>`).
///
/// Writes go through one writer that batches transactions; readers never see stale accounts
/// (a user, token or feed created by another process on the same data is visible at once).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- users ----
    async fn create_user(&self, name: &str, admin: bool) -> Result<User>;
    async fn get_user(&self, name: &str) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;

    // ---- tokens (stored as SHA-256 hashes; the plaintext is returned once) ----
    /// Create a token; returns the record and the plaintext secret.
    async fn create_token(&self, user: &str, scopes: Scopes, expires: Option<Timestamp>, label: Option<&str>) -> Result<(TokenInfo, String)>;
    /// Resolve a presented token to its user and scopes (None if unknown, revoked or expired).
    async fn authenticate(&self, token: &str) -> Result<Option<Principal>>;
    async fn list_tokens(&self, user: &str) -> Result<Vec<TokenInfo>>;
    async fn revoke_token(&self, user: &str, token_id: i64) -> Result<()>;

    // ---- feeds ----
    async fn create_feed(&self, new: NewFeed) -> Result<Feed>;
    async fn get_feed(&self, owner: &str, name: &str) -> Result<Option<Feed>>;
    async fn list_feeds(&self, owner: Option<&str>) -> Result<Vec<Feed>>;
    async fn update_feed(&self, owner: &str, name: &str, update: FeedUpdate) -> Result<Feed>;
    async fn delete_feed(&self, owner: &str, name: &str) -> Result<()>;
    /// Give `user` read access to a private feed.
    async fn grant_feed_access(&self, owner: &str, name: &str, user: &str) -> Result<()>;
    async fn has_feed_access(&self, feed_id: i64, user_id: i64) -> Result<bool>;
    /// Feeds `reader` may read (public + own + granted; admins all; `None` = anonymous:
    /// public only), optionally only those of `owner`.
    async fn list_readable_feeds(&self, reader: Option<&Reader>, owner: Option<&str>) -> Result<Vec<Feed>> {
        let mut out = Vec::new();
        for feed in self.list_feeds(owner).await? {
            let readable = match reader {
                None => feed.visibility == Visibility::Public,
                Some(r) => r.admin || feed.visibility == Visibility::Public || self.has_feed_access(feed.id, r.user_id).await?,
            };
            if readable {
                out.push(feed);
            }
        }
        Ok(out)
    }

    // ---- sightings ----
    /// Append sightings (already normalised) and update aggregates, durably, in one batch.
    /// A sighting whose `idempotency_key` was already stored is skipped (reported as duplicate).
    async fn append_sightings(&self, batch: Vec<NewSighting>) -> Result<Vec<AppendOutcome>>;

    /// Query feed records (per feed and value aggregates).
    async fn query(&self, q: &Query) -> Result<Page<FeedRecord>>;
    /// Every record `q` selects (its `limit` ignored, from its `cursor` on), in its order, sent
    /// to `out` in batches of about `scan.batch`, until the end or until `out` is closed (not an
    /// error). For exports: the records come without the feed's name ([`ExportRecord`]). The
    /// default pages through [`Store::query`]; a store may read in one pass instead, but must
    /// not hold a connection while `out` is full (a slow HTTP client must not pin the store).
    async fn scan_records(&self, q: &Query, scan: Scan, out: tokio::sync::mpsc::Sender<Vec<ExportRecord>>) -> Result<()> {
        let mut q = Query { limit: scan.batch.clamp(1, 10_000), ..q.clone() };
        loop {
            let page = self.query(&q).await?;
            let items: Vec<ExportRecord> = page
                .items
                .into_iter()
                .map(ExportRecord::from)
                .map(|r| if scan.details { r } else { ExportRecord { tags: Vec::new(), portlist: Vec::new(), protocol: None, description: None, ..r } })
                .collect();
            if !items.is_empty() && out.send(items).await.is_err() {
                return Ok(());
            }
            match page.next {
                Some(next) => q.cursor = Some(next),
                None => return Ok(()),
            }
        }
    }
    /// One feed record by id.
    async fn get_record(&self, id: i64) -> Result<Option<FeedRecord>>;
    /// The hub-wide aggregate of one value, if stored.
    async fn get_indicator(&self, value: &str) -> Result<Option<IndicatorSummary>>;
    /// Sightings of a value (newest first), limited.
    async fn sightings_of(&self, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>>;

    // ---- hpfeeds broker idents (the secret is stored readable: the protocol needs it) ----
    /// Create or replace an ident. Its feed (`owner/name`), if any, must exist.
    async fn upsert_hpfeeds_ident(&self, new: NewHpfeedsIdent) -> Result<HpfeedsIdent> {
        let _ = new;
        Err(hpfeeds_unsupported())
    }
    async fn get_hpfeeds_ident(&self, ident: &str) -> Result<Option<HpfeedsIdent>> {
        let _ = ident;
        Err(hpfeeds_unsupported())
    }
    /// Every ident, by name.
    async fn list_hpfeeds_idents(&self) -> Result<Vec<HpfeedsIdent>> {
        Err(hpfeeds_unsupported())
    }
    /// Remove an ident (`NotFound` if there is none).
    async fn delete_hpfeeds_ident(&self, ident: &str) -> Result<()> {
        let _ = ident;
        Err(hpfeeds_unsupported())
    }

    // ---- raw sensor events and the sessionizer's queue (docs/sensor.md) ----
    /// Store events shipped into feed `feed_id` by `reporter_id`, durably, in one batch; an
    /// event whose key the feed already holds is skipped (reported as duplicate).
    async fn append_sensor_events(
        &self,
        feed_id: i64,
        reporter_id: i64,
        received_at: Timestamp,
        batch: Vec<NewSensorEvent>,
    ) -> Result<Vec<SensorEventOutcome>> {
        let _ = (feed_id, reporter_id, received_at, batch);
        Err(sensor_events_unsupported())
    }
    /// Sessions with pending events that are closed, or whose newest pending event arrived
    /// before `idle_before`; oldest first, at most `limit`.
    async fn ready_sensor_sessions(&self, idle_before: Timestamp, limit: usize) -> Result<Vec<PendingSession>> {
        let _ = (idle_before, limit);
        Err(sensor_events_unsupported())
    }
    /// Every stored event of one session (done or pending), in seq order, at most `limit`.
    async fn sensor_session_events(
        &self,
        feed_id: i64,
        sensor: &str,
        kind: &str,
        session: &str,
        limit: usize,
    ) -> Result<Vec<StoredSensorEvent>> {
        let _ = (feed_id, sensor, kind, session, limit);
        Err(sensor_events_unsupported())
    }
    /// Mark each session's events up to its `last_seq` done (after its sightings committed).
    async fn finish_sensor_sessions(&self, sessions: &[PendingSession]) -> Result<()> {
        let _ = sessions;
        Err(sensor_events_unsupported())
    }
    /// Counts of a feed's stored events.
    async fn sensor_event_counts(&self, feed_id: i64) -> Result<SensorEventCounts> {
        let _ = feed_id;
        Err(sensor_events_unsupported())
    }
    /// A feed's stored events with `seq > after`, in seq order, at most `limit`.
    async fn sensor_events_after(&self, feed_id: i64, after: i64, limit: usize) -> Result<Vec<StoredSensorEvent>> {
        let _ = (feed_id, after, limit);
        Err(sensor_events_unsupported())
    }

    // ---- the sightings log, subscriptions, webhooks (the streams: docs/firehose.md) ----
    /// Log entries with `seq > after`, in seq order, at most `limit` (capped by the store),
    /// optionally only of `feed_ids` (the feeds the reader may read).
    async fn sightings_after(&self, after: i64, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<LoggedSighting>> {
        let _ = (after, feed_ids, limit);
        Err(streams_unsupported())
    }
    /// The seq of the newest log entry (0 when the log is empty).
    async fn last_sighting_seq(&self) -> Result<i64> {
        Err(streams_unsupported())
    }
    /// `user` follows the feed `owner/name` (again: no change). Returns the feed.
    async fn subscribe_feed(&self, user: &str, owner: &str, name: &str) -> Result<Feed> {
        let _ = (user, owner, name);
        Err(streams_unsupported())
    }
    /// Stop following (`NotFound` if `user` did not follow it).
    async fn unsubscribe_feed(&self, user: &str, owner: &str, name: &str) -> Result<()> {
        let _ = (user, owner, name);
        Err(streams_unsupported())
    }
    /// The feeds `user` follows, by name (access is checked by the caller, at read time).
    async fn list_subscriptions(&self, user: &str) -> Result<Vec<Feed>> {
        let _ = user;
        Err(streams_unsupported())
    }
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        let _ = new;
        Err(streams_unsupported())
    }
    async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>> {
        let _ = id;
        Err(streams_unsupported())
    }
    /// Webhooks of `user`, or every webhook.
    async fn list_webhooks(&self, user: Option<&str>) -> Result<Vec<Webhook>> {
        let _ = user;
        Err(streams_unsupported())
    }
    async fn delete_webhook(&self, id: i64) -> Result<()> {
        let _ = id;
        Err(streams_unsupported())
    }
    /// Record delivery progress (the cursor never moves back).
    async fn set_webhook_progress(&self, id: i64, progress: WebhookProgress) -> Result<()> {
        let _ = (id, progress);
        Err(streams_unsupported())
    }
    /// Make a paused webhook active again (failures reset; delivery resumes from its cursor).
    async fn resume_webhook(&self, id: i64) -> Result<Webhook> {
        let _ = id;
        Err(streams_unsupported())
    }

    // ---- trust: sources, indicator scores, feedback (TRUST.md, docs/trust.md) ----
    /// Every feed as a source (defaults for feeds no job or admin has touched), by feed name.
    async fn list_sources(&self) -> Result<Vec<trust::Source>> {
        Err(trust_unsupported())
    }
    /// An admin sets a feed's tier. `seed`, `established` and `quarantined` are pinned (the
    /// reliability job leaves them); `probation` unpins: the feed earns its tier again.
    async fn set_source_tier(&self, owner: &str, name: &str, tier: apiary_core::trust::Tier) -> Result<trust::Source> {
        let _ = (owner, name, tier);
        Err(trust_unsupported())
    }
    /// Declare the network (ASN) of a feed's sensors: sources on one ASN share a group.
    async fn set_source_asn(&self, owner: &str, name: &str, asn: Option<i64>) -> Result<trust::Source> {
        let _ = (owner, name, asn);
        Err(trust_unsupported())
    }
    /// The reliability job's results; a pinned source keeps its tier. Unknown feeds are skipped.
    async fn update_sources(&self, updates: Vec<trust::SourceUpdate>) -> Result<()> {
        let _ = updates;
        Err(trust_unsupported())
    }
    /// Store (replace) indicator scores, in one batch.
    async fn put_scores(&self, scores: Vec<trust::IndicatorScore>) -> Result<()> {
        let _ = scores;
        Err(trust_unsupported())
    }
    /// The stored score of a value (normalised), if the job has scored it.
    async fn get_score(&self, value: &str) -> Result<Option<trust::IndicatorScore>> {
        let _ = value;
        Err(trust_unsupported())
    }
    /// (value, confidence, tier) of those `values` that have a score (no explanations).
    async fn score_tiers(&self, values: &[String]) -> Result<Vec<(String, u8, apiary_core::trust::score::ScoreTier)>> {
        let _ = values;
        Err(trust_unsupported())
    }
    /// When the newest stored score was written (None: nothing scored); exports' validators.
    async fn scores_updated_at(&self) -> Result<Option<Timestamp>> {
        Err(trust_unsupported())
    }
    /// Record a false-positive report or a retraction.
    async fn add_feedback(&self, new: trust::NewFeedback) -> Result<trust::Feedback> {
        let _ = new;
        Err(trust_unsupported())
    }
    /// Feedback with `id > after`, in id order, at most `limit`.
    async fn feedback_after(&self, after: i64, limit: usize) -> Result<Vec<trust::Feedback>> {
        let _ = (after, limit);
        Err(trust_unsupported())
    }
    /// Feedback on one value, oldest first.
    async fn feedback_of(&self, value: &str) -> Result<Vec<trust::Feedback>> {
        let _ = value;
        Err(trust_unsupported())
    }
    /// Retracted (feed id, value) pairs, of `feed_ids` or of every feed.
    async fn retractions(&self, feed_ids: Option<&[i64]>) -> Result<Vec<(i64, String)>> {
        let _ = feed_ids;
        Err(trust_unsupported())
    }
    /// The sightings log as the scoring job reads it (`seq > after`, seq order, at most `limit`).
    async fn trust_sightings_after(&self, after: i64, limit: usize) -> Result<Vec<trust::TrustSighting>> {
        Ok(self.sightings_after(after, None, limit).await?.into_iter().map(trust::TrustSighting::from).collect())
    }

    // ---- the feed comparison (docs/compare.md) ----
    /// Values with a store id `> after`, in id order, at most `limit` (capped by the store), each
    /// with every feed that lists it: what the comparison job reads, page by page.
    async fn feed_presence_after(&self, after: i64, limit: usize) -> Result<Vec<ValuePresence>> {
        let _ = (after, limit);
        Err(compare_unsupported())
    }
    /// Store the comparison job's result, replacing the previous one.
    async fn put_feed_comparison(&self, comparison: &compare::Comparison) -> Result<()> {
        let _ = comparison;
        Err(compare_unsupported())
    }
    /// The latest stored comparison (None before the job's first run).
    async fn get_feed_comparison(&self) -> Result<Option<compare::Comparison>> {
        Err(compare_unsupported())
    }

    // ---- job leases (background jobs run on one node at a time: see [`lease`]) ----
    /// Take lease `name` for `holder` for `ttl` if it is free, expired or already `holder`'s
    /// (then it is renewed). `None`: another holder has it.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<Option<Lease>> {
        let _ = (name, holder, ttl);
        Err(leases_unsupported())
    }
    /// Extend `holder`'s lease by `ttl` from now; false if `holder` no longer has it.
    async fn renew_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool> {
        let _ = (name, holder, ttl);
        Err(leases_unsupported())
    }
    /// Give the lease up (no change if `holder` does not have it).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let _ = (name, holder);
        Err(leases_unsupported())
    }
    /// The lease as stored (expired or not), if it was ever taken and not released.
    async fn get_lease(&self, name: &str) -> Result<Option<Lease>> {
        let _ = name;
        Err(leases_unsupported())
    }

    // ---- honeypot sessions and sensors (crate::sessions; docs/sessions.md) ----
    /// Store sessions, once per (feed, sensor, session id); a more complete version (more
    /// events) replaces the stored one, anything else is a duplicate.
    async fn append_sessions(&self, batch: Vec<NewSession>) -> Result<SessionsOutcome> {
        let _ = batch;
        Err(sessions_unsupported())
    }
    /// Sessions matching `q`, by start time (sessions without one last).
    async fn query_sessions(&self, q: &SessionQuery) -> Result<Vec<StoredSession>> {
        let _ = q;
        Err(sessions_unsupported())
    }
    /// The link keys of every session with an attacker (of `feed_ids`, or all), for campaigns;
    /// at most [`sessions::MAX_LINK_SCAN`].
    async fn session_links(&self, feed_ids: Option<&[i64]>) -> Result<Vec<apiary_core::sessions::SessionLinks>> {
        let _ = feed_ids;
        Err(sessions_unsupported())
    }
    /// Every (attacker, sensor) pair of the stored sessions (of `feed_ids`, or all) with its
    /// session count and times, by attacker; at most [`sessions::MAX_LINK_SCAN`] rows. A session
    /// is (sensor, session id): one stored in several feeds (a log imported twice) counts once,
    /// under the lowest of those feeds.
    async fn attacker_sensors(&self, feed_ids: Option<&[i64]>) -> Result<Vec<sessions::AttackerSensor>> {
        let _ = feed_ids;
        Err(sessions_unsupported())
    }
    /// Register a sensor in a feed, or change its declared network.
    async fn upsert_sensor(&self, new: NewSensor) -> Result<Sensor> {
        let _ = new;
        Err(sessions_unsupported())
    }
    /// Registered sensors (of `feed_ids`, or all), by feed and name.
    async fn list_sensors(&self, feed_ids: Option<&[i64]>) -> Result<Vec<Sensor>> {
        let _ = feed_ids;
        Err(sessions_unsupported())
    }
    /// Remove a registered sensor (`NotFound` if there is none); its sessions stay.
    async fn delete_sensor(&self, feed_id: i64, name: &str) -> Result<()> {
        let _ = (feed_id, name);
        Err(sessions_unsupported())
    }
    /// Sensors named in the stored sessions (of `feed_ids`, or all), by feed and name.
    async fn sensors_seen(&self, feed_ids: Option<&[i64]>) -> Result<Vec<SensorSeen>> {
        let _ = feed_ids;
        Err(sessions_unsupported())
    }

    // ---- operations ----
    async fn stats(&self) -> Result<Stats>;
    /// A consistent online copy of the store into `dest` (a file path for SQLite).
    async fn backup(&self, dest: &std::path::Path) -> Result<()>;
}

/// What a store without the streams' methods answers (the trait's default methods).
fn streams_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep the sightings log's readers, subscriptions or webhooks".into())
}

/// What a store without sensor events answers (the trait's default methods).
fn sensor_events_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep sensor events".into())
}

/// What a store without the trust tables answers (the trait's default methods).
fn trust_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep trust sources, scores or feedback".into())
}

/// What a store without the feed comparison answers (the trait's default methods).
fn compare_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep the feed comparison".into())
}

/// What a store without job leases answers (the trait's default methods).
fn leases_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep job leases".into())
}

/// What a store without sessions and sensors answers (the trait's default methods).
fn sessions_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep honeypot sessions or sensors".into())
}

/// What a store without hpfeeds idents answers (the trait's default methods).
fn hpfeeds_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep hpfeeds idents".into())
}
