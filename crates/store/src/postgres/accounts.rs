//! Users, tokens, feeds, grants and hpfeeds idents. Nothing is cached: every call reads the
//! database, so a change made on one node is seen by the next request on any node.

use super::{is_unique_violation, pg_error, to_micros, PostgresStore};
use crate::hpfeeds::{split_feed, HpfeedsIdent, NewHpfeedsIdent};
use crate::model::*;
use crate::{Result, StoreError};
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_postgres::Row;

/// Prefix of every token the hub hands out (the same as the SQLite store's).
const TOKEN_PREFIX: &str = "apy_";

use crate::check_account_name as check_name;

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn user_from_row(r: &Row) -> User {
    User { id: r.get(0), name: r.get(1), admin: r.get(2), created_at: r.get(3) }
}

pub(super) const FEED_COLUMNS: &str = "f.id, u.name, f.owner_id, f.name, f.description, f.license_name, f.license_url, \
     f.visibility, f.created_at, f.updated_at FROM feeds f JOIN users u ON u.id = f.owner_id";

pub(super) fn feed_from_row(r: &Row) -> Feed {
    let visibility = match r.get::<_, &str>(7) {
        "private" => Visibility::Private,
        _ => Visibility::Public,
    };
    Feed {
        id: r.get(0),
        owner: r.get(1),
        owner_id: r.get(2),
        name: r.get(3),
        description: r.get(4),
        license_name: r.get(5),
        license_url: r.get(6),
        visibility,
        created_at: r.get(8),
        updated_at: r.get(9),
    }
}

fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

/// SQL condition (on `f`, the feeds table) for "readable by": `reader` None = no restriction;
/// Some(None) = anonymous; Some(Some(r)) = that user (an id, written as a number).
pub(super) fn readable_condition(reader: Option<Option<&Reader>>) -> Option<String> {
    match reader {
        None => None,
        Some(None) => Some("f.visibility = 'public'".into()),
        Some(Some(r)) if r.admin => None,
        Some(Some(r)) => Some(format!(
            "(f.visibility = 'public' OR f.owner_id = {uid} \
              OR EXISTS (SELECT 1 FROM feed_grants g WHERE g.feed_id = f.id AND g.user_id = {uid}))",
            uid = r.user_id
        )),
    }
}

fn hpfeeds_from_row(r: &Row) -> HpfeedsIdent {
    let owner: Option<String> = r.get(4);
    let name: Option<String> = r.get(5);
    HpfeedsIdent {
        ident: r.get(0),
        secret: r.get(1),
        publish: r.get(2),
        subscribe: r.get(3),
        feed: owner.zip(name).map(|(o, n)| format!("{o}/{n}")),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

const HPFEEDS_COLUMNS: &str = "ident, secret, publish, subscribe, feed_owner, feed_name, created_at, updated_at";

impl PostgresStore {
    pub(super) async fn user_id(&self, name: &str) -> Result<i64> {
        let client = self.client().await?;
        client
            .query_opt("SELECT id FROM users WHERE name = $1", &[&name])
            .await
            .map_err(pg_error)?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("user `{name}`")))
    }

    pub(super) async fn feed_id(&self, owner: &str, name: &str) -> Result<i64> {
        let client = self.client().await?;
        client
            .query_opt("SELECT f.id FROM feeds f JOIN users u ON u.id = f.owner_id WHERE u.name = $1 AND f.name = $2", &[&owner, &name])
            .await
            .map_err(pg_error)?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("feed `{owner}/{name}`")))
    }

    pub(super) async fn create_user_(&self, name: &str, admin: bool) -> Result<User> {
        check_name("user", name)?;
        let client = self.client().await?;
        let now = to_micros(Utc::now());
        match client
            .query_one("INSERT INTO users (name, admin, created_at) VALUES ($1, $2, $3) RETURNING id, name, admin, created_at", &[&name, &admin, &now])
            .await
        {
            Ok(r) => Ok(user_from_row(&r)),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!("user `{name}`"))),
            Err(e) => Err(pg_error(e)),
        }
    }

    pub(super) async fn get_user_(&self, name: &str) -> Result<Option<User>> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT id, name, admin, created_at FROM users WHERE name = $1", &[&name]).await.map_err(pg_error)?;
        Ok(row.as_ref().map(user_from_row))
    }

    pub(super) async fn list_users_(&self) -> Result<Vec<User>> {
        let client = self.client().await?;
        let rows = client.query("SELECT id, name, admin, created_at FROM users ORDER BY id", &[]).await.map_err(pg_error)?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    pub(super) async fn create_token_(
        &self,
        user: &str,
        scopes: Scopes,
        expires: Option<Timestamp>,
        label: Option<&str>,
    ) -> Result<(TokenInfo, String)> {
        let uid = self.user_id(user).await?;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let plaintext = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let now = to_micros(Utc::now());
        let expires = expires.map(to_micros);
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO tokens (user_id, hash, scopes, label, created_at, expires_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5, $6, false) RETURNING id",
                &[&uid, &&token_hash(&plaintext)[..], &scopes.to_string_list(), &label, &now, &expires],
            )
            .await
            .map_err(pg_error)?;
        let info = TokenInfo {
            id: row.get(0),
            user: user.to_string(),
            scopes,
            label: label.map(str::to_string),
            created_at: now,
            expires_at: expires,
            revoked: false,
        };
        Ok((info, plaintext))
    }

    pub(super) async fn authenticate_(&self, token: &str) -> Result<Option<Principal>> {
        let presented = token_hash(token.trim());
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT t.id, t.hash, t.scopes, t.expires_at, t.revoked, u.id, u.name, u.admin \
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
                &[&&presented[..]],
            )
            .await
            .map_err(pg_error)?;
        let Some(r) = row else { return Ok(None) };
        let stored: Vec<u8> = r.get(1);
        let revoked: bool = r.get(4);
        let expires_at: Option<Timestamp> = r.get(3);
        // Found by hash; compared again in constant time so nothing leaks through timing.
        if !bool::from(stored.as_slice().ct_eq(&presented[..])) || revoked {
            return Ok(None);
        }
        if expires_at.is_some_and(|e| e <= Utc::now()) {
            return Ok(None);
        }
        let scopes = Scopes::parse(r.get(2)).unwrap_or_default();
        Ok(Some(Principal { user_id: r.get(5), user: r.get(6), admin: r.get(7), scopes, token_id: r.get(0) }))
    }

    pub(super) async fn list_tokens_(&self, user: &str) -> Result<Vec<TokenInfo>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT t.id, u.name, t.scopes, t.label, t.created_at, t.expires_at, t.revoked \
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = $1 ORDER BY t.id",
                &[&user],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                user: r.get(1),
                scopes: Scopes::parse(r.get(2)).unwrap_or_default(),
                label: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                revoked: r.get(6),
            })
            .collect())
    }

    pub(super) async fn revoke_token_(&self, user: &str, token_id: i64) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE tokens SET revoked = true WHERE id = $1 AND user_id = (SELECT id FROM users WHERE name = $2)",
                &[&token_id, &user],
            )
            .await
            .map_err(pg_error)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("token {token_id} of user `{user}`")));
        }
        Ok(())
    }

    pub(super) async fn create_feed_(&self, new: NewFeed) -> Result<Feed> {
        check_name("feed", &new.name)?;
        let owner_id = self.user_id(&new.owner).await?;
        let now = to_micros(Utc::now());
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO feeds (owner_id, name, description, license_name, license_url, visibility, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                &[&owner_id, &new.name, &new.description, &new.license_name, &new.license_url, &visibility_str(new.visibility), &now],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict(format!("feed `{}/{}`", new.owner, new.name))),
            Err(e) => return Err(pg_error(e)),
        }
        self.get_feed_(&new.owner, &new.name).await?.ok_or_else(|| StoreError::Internal("created feed vanished".into()))
    }

    pub(super) async fn get_feed_(&self, owner: &str, name: &str) -> Result<Option<Feed>> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {FEED_COLUMNS} WHERE u.name = $1 AND f.name = $2"), &[&owner, &name])
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(feed_from_row))
    }

    pub(super) async fn list_feeds_(&self, owner: Option<&str>, reader: Option<Option<&Reader>>) -> Result<Vec<Feed>> {
        let mut conds = vec!["($1::text IS NULL OR u.name = $1)".to_string()];
        conds.extend(readable_condition(reader));
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {FEED_COLUMNS} WHERE {} ORDER BY u.name COLLATE \"C\", f.name COLLATE \"C\"", conds.join(" AND ")), &[&owner])
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(feed_from_row).collect())
    }

    pub(super) async fn update_feed_(&self, owner: &str, name: &str, update: FeedUpdate) -> Result<Feed> {
        let id = self.feed_id(owner, name).await?;
        let client = self.client().await?;
        client
            .execute(
                "UPDATE feeds SET description = coalesce($2, description), license_name = coalesce($3, license_name), \
                 license_url = coalesce($4, license_url), visibility = coalesce($5, visibility), updated_at = $6 WHERE id = $1",
                &[
                    &id,
                    &update.description,
                    &update.license_name,
                    &update.license_url,
                    &update.visibility.map(visibility_str),
                    &to_micros(Utc::now()),
                ],
            )
            .await
            .map_err(pg_error)?;
        self.get_feed_(owner, name).await?.ok_or_else(|| StoreError::Internal("updated feed vanished".into()))
    }

    /// Delete a feed with its records, sightings, keys, grants and subscriptions, and
    /// recompute the hub-wide aggregates of the values it held, in one transaction.
    pub(super) async fn delete_feed_(&self, owner: &str, name: &str) -> Result<()> {
        let id = self.feed_id(owner, name).await?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let gone: Vec<i64> = tx
            .query("SELECT DISTINCT indicator_id FROM feed_records WHERE feed_id = $1", &[&id])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for sql in [
            "DELETE FROM sightings WHERE feed_id = $1",
            "DELETE FROM sighting_keys WHERE feed_id = $1",
            "DELETE FROM feed_records WHERE feed_id = $1",
            "DELETE FROM feed_grants WHERE feed_id = $1",
            "DELETE FROM feed_subscriptions WHERE feed_id = $1",
            "DELETE FROM feeds WHERE id = $1",
        ] {
            tx.execute(sql, &[&id]).await.map_err(pg_error)?;
        }
        tx.execute(
            "DELETE FROM indicators i WHERE i.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM feed_records r WHERE r.indicator_id = i.id)",
            &[&gone],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "UPDATE indicators i SET firsttime = a.firsttime, lasttime = a.lasttime, count = a.count \
             FROM (SELECT indicator_id, min(firsttime) AS firsttime, max(lasttime) AS lasttime, sum(count)::bigint AS count \
                   FROM feed_records WHERE indicator_id = ANY($1) GROUP BY indicator_id) a \
             WHERE i.id = a.indicator_id",
            &[&gone],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "DELETE FROM indicator_reporters x WHERE x.indicator_id = ANY($1) AND NOT EXISTS ( \
                 SELECT 1 FROM feed_records r JOIN sightings s ON s.record_id = r.id \
                 WHERE r.indicator_id = x.indicator_id AND s.reporter_id = x.reporter_id)",
            &[&gone],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }

    pub(super) async fn grant_feed_access_(&self, owner: &str, name: &str, user: &str) -> Result<()> {
        let fid = self.feed_id(owner, name).await?;
        let uid = self.user_id(user).await?;
        let client = self.client().await?;
        client
            .execute("INSERT INTO feed_grants (feed_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&fid, &uid])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    pub(super) async fn has_feed_access_(&self, feed_id: i64, user_id: i64) -> Result<bool> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT f.visibility = 'public' OR f.owner_id = $2 \
                     OR EXISTS (SELECT 1 FROM users u WHERE u.id = $2 AND u.admin) \
                     OR EXISTS (SELECT 1 FROM feed_grants g WHERE g.feed_id = f.id AND g.user_id = $2) \
                 FROM feeds f WHERE f.id = $1",
                &[&feed_id, &user_id],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    pub(super) async fn hpfeeds_upsert(&self, new: NewHpfeedsIdent) -> Result<HpfeedsIdent> {
        let new = new.validated()?;
        let (owner, name) = match &new.feed {
            Some(f) => {
                let (o, n) = split_feed(f)?;
                self.feed_id(o, n).await?;
                (Some(o.to_string()), Some(n.to_string()))
            }
            None => (None, None),
        };
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO hpfeeds_idents ({HPFEEDS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                     ON CONFLICT (ident) DO UPDATE SET secret = excluded.secret, publish = excluded.publish, \
                     subscribe = excluded.subscribe, feed_owner = excluded.feed_owner, feed_name = excluded.feed_name, \
                     updated_at = excluded.updated_at RETURNING {HPFEEDS_COLUMNS}"
                ),
                &[&new.ident, &new.secret, &new.publish, &new.subscribe, &owner, &name, &to_micros(Utc::now())],
            )
            .await
            .map_err(pg_error)?;
        Ok(hpfeeds_from_row(&row))
    }

    pub(super) async fn hpfeeds_get(&self, ident: &str) -> Result<Option<HpfeedsIdent>> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {HPFEEDS_COLUMNS} FROM hpfeeds_idents WHERE ident = $1"), &[&ident])
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(hpfeeds_from_row))
    }

    pub(super) async fn hpfeeds_list(&self) -> Result<Vec<HpfeedsIdent>> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {HPFEEDS_COLUMNS} FROM hpfeeds_idents ORDER BY ident COLLATE \"C\""), &[])
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(hpfeeds_from_row).collect())
    }

    pub(super) async fn hpfeeds_delete(&self, ident: &str) -> Result<()> {
        let client = self.client().await?;
        let n = client.execute("DELETE FROM hpfeeds_idents WHERE ident = $1", &[&ident]).await.map_err(pg_error)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("hpfeeds ident `{ident}`")));
        }
        Ok(())
    }
}
