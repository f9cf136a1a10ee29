//! The sightings log read by seq, feed subscriptions and webhooks.

use super::accounts::{feed_from_row, FEED_COLUMNS};
use super::{parse_itype, pg_error, ports_from_db, tlp_from_rank, to_micros, PostgresStore};
use crate::model::Feed;
use crate::stream::{LoggedSighting, NewWebhook, Webhook, WebhookProgress, WebhookState};
use crate::{Result, StoreError};
use chrono::Utc;
use tokio_postgres::Row;

/// The most log entries one read returns (as SQLite's).
const MAX_LOG_PAGE: usize = 10_000;

const WEBHOOK_COLUMNS: &str = "w.id, u.name, w.user_id, w.url, w.secret, w.filter, w.cursor, w.state, w.failures, \
     w.last_error, w.created_at, w.updated_at FROM webhooks w JOIN users u ON u.id = w.user_id";

fn webhook_from_row(r: &Row) -> Webhook {
    Webhook {
        id: r.get(0),
        user: r.get(1),
        user_id: r.get(2),
        url: r.get(3),
        secret: r.get(4),
        filter: r.get(5),
        cursor: r.get(6),
        state: if r.get::<_, &str>(7) == "paused" { WebhookState::Paused } else { WebhookState::Active },
        failures: r.get(8),
        last_error: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

fn check_url(url: &str) -> Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() <= 2048 && !url.chars().any(char::is_whitespace);
    if !ok {
        return Err(StoreError::Invalid(format!("webhook url `{url}`: use an http:// or https:// URL")));
    }
    Ok(())
}

fn changed_one(n: u64, id: i64) -> Result<()> {
    if n == 0 {
        return Err(StoreError::NotFound(format!("webhook {id}")));
    }
    Ok(())
}

impl PostgresStore {
    pub(super) async fn log_after(&self, after: i64, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<LoggedSighting>> {
        if feed_ids.is_some_and(|ids| ids.is_empty()) {
            return Ok(Vec::new());
        }
        let limit = limit.clamp(1, MAX_LOG_PAGE) as i64;
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.seq, s.feed_id, u.name || '/' || f.name, s.record_id, i.itype, i.value, s.reserved, s.observed_at, \
                 s.observed_until, s.received_at, s.tags, s.ports, s.protocol, s.description, s.tlp, s.claimed_confidence, \
                 s.sensor, s.count \
                 FROM sightings s JOIN feed_records r ON r.id = s.record_id JOIN indicators i ON i.id = r.indicator_id \
                 JOIN feeds f ON f.id = s.feed_id JOIN users u ON u.id = f.owner_id \
                 WHERE s.seq > $1 AND ($2::bigint[] IS NULL OR s.feed_id = ANY($2)) ORDER BY s.seq LIMIT $3",
                &[&after, &ids, &limit],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                Ok(LoggedSighting {
                    seq: r.get(0),
                    feed_id: r.get(1),
                    feed: r.get(2),
                    record_id: r.get(3),
                    itype: parse_itype(r.get(4))?,
                    indicator: r.get(5),
                    reserved: r.get(6),
                    observed_at: r.get(7),
                    observed_until: r.get(8),
                    received_at: r.get(9),
                    tags: r.get(10),
                    portlist: ports_from_db(r.get(11)),
                    protocol: r.get(12),
                    description: r.get(13),
                    tlp: tlp_from_rank(r.get(14)),
                    claimed_confidence: r.get(15),
                    sensor: r.get(16),
                    count: r.get(17),
                })
            })
            .collect()
    }

    pub(super) async fn log_last_seq(&self) -> Result<i64> {
        let client = self.client().await?;
        let r = client.query_one("SELECT coalesce(max(seq), 0)::bigint FROM sightings", &[]).await.map_err(pg_error)?;
        Ok(r.get(0))
    }

    pub(super) async fn subscribe(&self, user: &str, owner: &str, name: &str) -> Result<Feed> {
        let uid = self.user_id(user).await?;
        let fid = self.feed_id(owner, name).await?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO feed_subscriptions (user_id, feed_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&uid, &fid, &to_micros(Utc::now())],
            )
            .await
            .map_err(pg_error)?;
        self.get_feed_(owner, name).await?.ok_or_else(|| StoreError::NotFound(format!("feed `{owner}/{name}`")))
    }

    pub(super) async fn unsubscribe(&self, user: &str, owner: &str, name: &str) -> Result<()> {
        let uid = self.user_id(user).await?;
        let fid = self.feed_id(owner, name).await?;
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM feed_subscriptions WHERE user_id = $1 AND feed_id = $2", &[&uid, &fid])
            .await
            .map_err(pg_error)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("subscription of `{user}` to `{owner}/{name}`")));
        }
        Ok(())
    }

    pub(super) async fn subscriptions(&self, user: &str) -> Result<Vec<Feed>> {
        let uid = self.user_id(user).await?;
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FEED_COLUMNS} JOIN feed_subscriptions s ON s.feed_id = f.id WHERE s.user_id = $1 \
                     ORDER BY u.name COLLATE \"C\", f.name COLLATE \"C\""
                ),
                &[&uid],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(feed_from_row).collect())
    }

    pub(super) async fn webhook_create(&self, new: NewWebhook) -> Result<Webhook> {
        check_url(&new.url)?;
        if new.secret.len() < 16 {
            return Err(StoreError::Invalid("webhook secret: use at least 16 characters".into()));
        }
        let uid = self.user_id(&new.user).await?;
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO webhooks (user_id, url, secret, filter, cursor, state, failures, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'active', 0, $6, $6) RETURNING id",
                &[&uid, &new.url, &new.secret, &new.filter, &new.cursor, &to_micros(Utc::now())],
            )
            .await
            .map_err(pg_error)?;
        let id: i64 = row.get(0);
        self.webhook_get(id).await?.ok_or_else(|| StoreError::Internal(format!("webhook {id} vanished")))
    }

    pub(super) async fn webhook_get(&self, id: i64) -> Result<Option<Webhook>> {
        let client = self.client().await?;
        let row = client.query_opt(&format!("SELECT {WEBHOOK_COLUMNS} WHERE w.id = $1"), &[&id]).await.map_err(pg_error)?;
        Ok(row.as_ref().map(webhook_from_row))
    }

    pub(super) async fn webhook_list(&self, user: Option<&str>) -> Result<Vec<Webhook>> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {WEBHOOK_COLUMNS} WHERE ($1::text IS NULL OR u.name = $1) ORDER BY w.id"), &[&user])
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(webhook_from_row).collect())
    }

    pub(super) async fn webhook_delete(&self, id: i64) -> Result<()> {
        let client = self.client().await?;
        let n = client.execute("DELETE FROM webhooks WHERE id = $1", &[&id]).await.map_err(pg_error)?;
        changed_one(n, id)
    }

    pub(super) async fn webhook_progress(&self, id: i64, p: WebhookProgress) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE webhooks SET cursor = greatest(cursor, $2), failures = $3, state = $4, last_error = $5, updated_at = $6 \
                 WHERE id = $1",
                &[&id, &p.cursor, &p.failures, &p.state.as_str(), &p.last_error, &to_micros(Utc::now())],
            )
            .await
            .map_err(pg_error)?;
        changed_one(n, id)
    }

    pub(super) async fn webhook_resume(&self, id: i64) -> Result<Webhook> {
        let client = self.client().await?;
        let n = client
            .execute("UPDATE webhooks SET state = 'active', failures = 0, updated_at = $2 WHERE id = $1", &[&id, &to_micros(Utc::now())])
            .await
            .map_err(pg_error)?;
        changed_one(n, id)?;
        self.webhook_get(id).await?.ok_or_else(|| StoreError::NotFound(format!("webhook {id}")))
    }
}
