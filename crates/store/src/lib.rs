//! Apiary's record stage: accounts, feeds, sightings and their aggregates.
//!
//! [`Store`] is the one interface the server and the CLI use; [`sqlite::SqliteStore`] is the
//! embedded default and [`postgres::PostgresStore`] the one several hub nodes share ([`open`]
//! picks one from a store URL). Every write
//! returns only after it is committed: a 2xx or an acked frame never loses data when the
//! process crashes (and, with `sqlite::Durability::Full`, not on a power loss either).
//! [`conformance`] holds the behaviour every implementation must show.

pub mod conformance;
pub mod hpfeeds;
pub mod model;
pub mod postgres;
pub mod sqlite;
pub mod stream;

pub use hpfeeds::{HpfeedsIdent, NewHpfeedsIdent};
pub use model::*;
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

    // ---- operations ----
    async fn stats(&self) -> Result<Stats>;
    /// A consistent online copy of the store into `dest` (a file path for SQLite).
    async fn backup(&self, dest: &std::path::Path) -> Result<()>;
}

/// What a store without the streams' methods answers (the trait's default methods).
fn streams_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep the sightings log's readers, subscriptions or webhooks".into())
}

/// What a store without hpfeeds idents answers (the trait's default methods).
fn hpfeeds_unsupported() -> StoreError {
    StoreError::Internal("this store does not keep hpfeeds idents".into())
}
