//! The sightings log read by seq, feed subscriptions and webhooks (migration 0005).

use super::{accounts, db_error, from_micros, json_list, now_micros, parse_itype, parse_tlp, SqliteStore};
use crate::model::Feed;
use crate::stream::{LoggedSighting, NewWebhook, Webhook, WebhookProgress, WebhookState};
use crate::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// The most log entries one read returns.
pub const MAX_LOG_PAGE: usize = 10_000;

fn logged_from_row(r: &Row) -> rusqlite::Result<LoggedSighting> {
    Ok(LoggedSighting {
        seq: r.get(0)?,
        feed_id: r.get(1)?,
        feed: r.get(2)?,
        record_id: r.get(3)?,
        itype: parse_itype(&r.get::<_, String>(4)?)?,
        indicator: r.get(5)?,
        reserved: r.get(6)?,
        observed_at: from_micros(r.get(7)?),
        observed_until: r.get::<_, Option<i64>>(8)?.map(from_micros),
        received_at: from_micros(r.get(9)?),
        tags: json_list(&r.get::<_, String>(10)?)?,
        portlist: json_list(&r.get::<_, String>(11)?)?,
        protocol: r.get(12)?,
        description: r.get(13)?,
        tlp: parse_tlp(&r.get::<_, String>(14)?)?,
        claimed_confidence: r.get(15)?,
        sensor: r.get(16)?,
        count: r.get(17)?,
    })
}

/// Log entries with `seq > after`, in seq order, optionally only of `feed_ids`. Walks the
/// log by its primary key, so a read costs the entries it passes over.
fn sightings_after(c: &Connection, after: i64, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<LoggedSighting>> {
    let limit = limit.clamp(1, MAX_LOG_PAGE);
    let mut args = vec![Value::Integer(after)];
    let feed_filter = match feed_ids {
        Some([]) => return Ok(Vec::new()),
        Some(ids) => {
            args.extend(ids.iter().map(|i| Value::Integer(*i)));
            format!(" AND s.feed_id IN ({})", vec!["?"; ids.len()].join(","))
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT s.seq, s.feed_id, u.name || '/' || f.name, s.record_id, i.itype, i.value, s.reserved, s.observed_at, \
         s.observed_until, s.received_at, s.tags, s.ports, s.protocol, s.description, s.tlp, s.claimed_confidence, \
         s.sensor, s.count \
         FROM sightings s JOIN feed_records r ON r.id = s.record_id JOIN indicators i ON i.id = r.indicator_id \
         JOIN feeds f ON f.id = s.feed_id JOIN users u ON u.id = f.owner_id WHERE s.seq > ?{feed_filter} ORDER BY s.seq LIMIT {limit}"
    );
    let mut st = c.prepare_cached(&sql).map_err(db_error)?;
    let rows = st.query_map(params_from_iter(args), logged_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn last_seq(c: &Connection) -> Result<i64> {
    c.query_row("SELECT coalesce(max(seq), 0) FROM sightings", [], |r| r.get(0)).map_err(db_error)
}

fn user_id(c: &Connection, name: &str) -> Result<i64> {
    c.prepare_cached("SELECT id FROM users WHERE name = ?1")
        .and_then(|mut st| st.query_row([name], |r| r.get(0)).optional())
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("user `{name}`")))
}

fn feed(c: &Connection, owner: &str, name: &str) -> Result<Feed> {
    accounts::get_feed(c, owner, name)?.ok_or_else(|| StoreError::NotFound(format!("feed `{owner}/{name}`")))
}

fn subscribe(c: &Connection, user: &str, owner: &str, name: &str) -> Result<Feed> {
    let uid = user_id(c, user)?;
    let f = feed(c, owner, name)?;
    c.prepare_cached("INSERT OR IGNORE INTO feed_subscriptions (user_id, feed_id, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut st| st.execute(params![uid, f.id, now_micros()]))
        .map_err(db_error)?;
    Ok(f)
}

fn unsubscribe(c: &Connection, user: &str, owner: &str, name: &str) -> Result<()> {
    let uid = user_id(c, user)?;
    let f = feed(c, owner, name)?;
    let n = c
        .prepare_cached("DELETE FROM feed_subscriptions WHERE user_id = ?1 AND feed_id = ?2")
        .and_then(|mut st| st.execute(params![uid, f.id]))
        .map_err(db_error)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user `{user}` is not subscribed to `{owner}/{name}`")));
    }
    Ok(())
}

fn subscriptions(c: &Connection, user: &str) -> Result<Vec<Feed>> {
    let uid = user_id(c, user)?;
    let names: Vec<(String, String)> = {
        let mut st = c
            .prepare_cached(
                "SELECT u.name, f.name FROM feed_subscriptions s JOIN feeds f ON f.id = s.feed_id \
                 JOIN users u ON u.id = f.owner_id WHERE s.user_id = ?1 ORDER BY u.name, f.name",
            )
            .map_err(db_error)?;
        let rows = st.query_map([uid], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_error)?
    };
    let mut out = Vec::with_capacity(names.len());
    for (owner, name) in names {
        if let Some(f) = accounts::get_feed(c, &owner, &name)? {
            out.push(f);
        }
    }
    Ok(out)
}

const WEBHOOK_COLUMNS: &str = "w.id, u.name, w.user_id, w.url, w.secret, w.filter, w.cursor, w.state, w.failures, \
     w.last_error, w.created_at, w.updated_at FROM webhooks w JOIN users u ON u.id = w.user_id";

fn webhook_from_row(r: &Row) -> rusqlite::Result<Webhook> {
    let filter: String = r.get(5)?;
    Ok(Webhook {
        id: r.get(0)?,
        user: r.get(1)?,
        user_id: r.get(2)?,
        url: r.get(3)?,
        secret: r.get(4)?,
        filter: serde_json::from_str(&filter).unwrap_or(serde_json::Value::Null),
        cursor: r.get(6)?,
        state: if r.get::<_, String>(7)? == "paused" { WebhookState::Paused } else { WebhookState::Active },
        failures: r.get(8)?,
        last_error: r.get(9)?,
        created_at: from_micros(r.get(10)?),
        updated_at: from_micros(r.get(11)?),
    })
}

fn get_webhook(c: &Connection, id: i64) -> Result<Option<Webhook>> {
    c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} WHERE w.id = ?1"))
        .and_then(|mut st| st.query_row([id], webhook_from_row).optional())
        .map_err(db_error)
}

fn create_webhook(c: &Connection, new: &NewWebhook) -> Result<Webhook> {
    let uid = user_id(c, &new.user)?;
    let now = now_micros();
    let filter = serde_json::to_string(&new.filter).map_err(|e| StoreError::Internal(e.to_string()))?;
    c.prepare_cached(
        "INSERT INTO webhooks (user_id, url, secret, filter, cursor, state, failures, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', 0, ?6, ?6)",
    )
    .and_then(|mut st| st.execute(params![uid, new.url, new.secret, filter, new.cursor, now]))
    .map_err(db_error)?;
    let id = c.last_insert_rowid();
    get_webhook(c, id)?.ok_or_else(|| StoreError::Internal(format!("webhook {id} vanished")))
}

fn list_webhooks(c: &Connection, user: Option<&str>) -> Result<Vec<Webhook>> {
    let (filter, args): (&str, Vec<Value>) = match user {
        Some(u) => (" WHERE u.name = ?1", vec![Value::Text(u.to_string())]),
        None => ("", Vec::new()),
    };
    let mut st = c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS}{filter} ORDER BY w.id")).map_err(db_error)?;
    let rows = st.query_map(params_from_iter(args), webhook_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn changed_one(n: usize, id: i64) -> Result<()> {
    if n == 0 {
        return Err(StoreError::NotFound(format!("webhook {id}")));
    }
    Ok(())
}

fn delete_webhook(c: &Connection, id: i64) -> Result<()> {
    let n = c.prepare_cached("DELETE FROM webhooks WHERE id = ?1").and_then(|mut st| st.execute([id])).map_err(db_error)?;
    changed_one(n, id)
}

fn set_progress(c: &Connection, id: i64, p: &WebhookProgress) -> Result<()> {
    let n = c
        .prepare_cached(
            "UPDATE webhooks SET cursor = max(cursor, ?2), failures = ?3, state = ?4, last_error = ?5, updated_at = ?6 \
             WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![id, p.cursor, p.failures, p.state.as_str(), p.last_error, now_micros()]))
        .map_err(db_error)?;
    changed_one(n, id)
}

fn resume_webhook(c: &Connection, id: i64) -> Result<Webhook> {
    let n = c
        .prepare_cached("UPDATE webhooks SET state = 'active', failures = 0, updated_at = ?2 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![id, now_micros()]))
        .map_err(db_error)?;
    changed_one(n, id)?;
    get_webhook(c, id)?.ok_or_else(|| StoreError::NotFound(format!("webhook {id}")))
}

fn check_url(url: &str) -> Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() <= 2048 && !url.chars().any(char::is_whitespace);
    if !ok {
        return Err(StoreError::Invalid(format!("webhook url `{url}`: use an http:// or https:// URL")));
    }
    Ok(())
}

impl SqliteStore {
    pub(super) async fn log_after(&self, after: i64, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<LoggedSighting>> {
        let feed_ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| sightings_after(c, after, feed_ids.as_deref(), limit)).await
    }

    pub(super) async fn log_last_seq(&self) -> Result<i64> {
        self.read(last_seq).await
    }

    pub(super) async fn subscribe(&self, user: &str, owner: &str, name: &str) -> Result<Feed> {
        let (user, owner, name) = (user.to_string(), owner.to_string(), name.to_string());
        self.write(1, true, move |c| subscribe(c, &user, &owner, &name)).await
    }

    pub(super) async fn unsubscribe(&self, user: &str, owner: &str, name: &str) -> Result<()> {
        let (user, owner, name) = (user.to_string(), owner.to_string(), name.to_string());
        self.write(1, true, move |c| unsubscribe(c, &user, &owner, &name)).await
    }

    pub(super) async fn subscriptions(&self, user: &str) -> Result<Vec<Feed>> {
        let user = user.to_string();
        self.read(move |c| subscriptions(c, &user)).await
    }

    pub(super) async fn webhook_create(&self, new: NewWebhook) -> Result<Webhook> {
        check_url(&new.url)?;
        if new.secret.len() < 16 {
            return Err(StoreError::Invalid("webhook secret: use at least 16 characters".into()));
        }
        self.write(1, true, move |c| create_webhook(c, &new)).await
    }

    pub(super) async fn webhook_get(&self, id: i64) -> Result<Option<Webhook>> {
        self.read(move |c| get_webhook(c, id)).await
    }

    pub(super) async fn webhook_list(&self, user: Option<&str>) -> Result<Vec<Webhook>> {
        let user = user.map(str::to_string);
        self.read(move |c| list_webhooks(c, user.as_deref())).await
    }

    pub(super) async fn webhook_delete(&self, id: i64) -> Result<()> {
        self.write(1, true, move |c| delete_webhook(c, id)).await
    }

    pub(super) async fn webhook_progress(&self, id: i64, p: WebhookProgress) -> Result<()> {
        self.write(1, true, move |c| set_progress(c, id, &p)).await
    }

    pub(super) async fn webhook_resume(&self, id: i64) -> Result<Webhook> {
        self.write(1, true, move |c| resume_webhook(c, id)).await
    }
}

