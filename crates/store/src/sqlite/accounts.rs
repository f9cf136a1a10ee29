//! Users, tokens, feeds and grants. Write functions run on the writer connection, read
//! functions on a pooled read-only one; none of them caches anything.

use super::{db_error, from_micros, is_unique_violation, micros, now_micros};
use crate::model::*;
use crate::{Result, StoreError};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Row};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every token the hub hands out (it makes a leaked token easy to recognise).
pub const TOKEN_PREFIX: &str = "apy_";

/// The account-name rule ([`crate::check_account_name`]), returning the name.
pub(crate) fn check_name(what: &str, name: &str) -> Result<String> {
    crate::check_account_name(what, name).map(|()| name.to_string())
}

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User { id: r.get(0)?, name: r.get(1)?, admin: r.get(2)?, created_at: from_micros(r.get(3)?) })
}

pub(crate) fn create_user(c: &Connection, name: &str, admin: bool) -> Result<User> {
    let now = now_micros();
    let mut st = c
        .prepare_cached("INSERT INTO users (name, admin, created_at) VALUES (?1, ?2, ?3)")
        .map_err(db_error)?;
    match st.execute(params![name, admin, now]) {
        Ok(_) => Ok(User { id: c.last_insert_rowid(), name: name.to_string(), admin, created_at: from_micros(now) }),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!("user `{name}`"))),
        Err(e) => Err(db_error(e)),
    }
}

pub(crate) fn get_user(c: &Connection, name: &str) -> Result<Option<User>> {
    c.prepare_cached("SELECT id, name, admin, created_at FROM users WHERE name = ?1")
        .and_then(|mut st| st.query_row([name], user_from_row).optional())
        .map_err(db_error)
}

pub(crate) fn list_users(c: &Connection) -> Result<Vec<User>> {
    let mut st = c.prepare_cached("SELECT id, name, admin, created_at FROM users ORDER BY id").map_err(db_error)?;
    let rows = st.query_map([], user_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn user_id(c: &Connection, name: &str) -> Result<i64> {
    c.prepare_cached("SELECT id FROM users WHERE name = ?1")
        .and_then(|mut st| st.query_row([name], |r| r.get(0)).optional())
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("user `{name}`")))
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn create_token(
    c: &Connection,
    user: &str,
    scopes: Scopes,
    expires: Option<Timestamp>,
    label: Option<String>,
) -> Result<(TokenInfo, String)> {
    let uid = user_id(c, user)?;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let plaintext = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let now = now_micros();
    c.prepare_cached(
        "INSERT INTO tokens (user_id, hash, scopes, label, created_at, expires_at, revoked) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
    )
    .and_then(|mut st| {
        st.execute(params![uid, &token_hash(&plaintext)[..], scopes.to_string_list(), label, now, expires.map(micros)])
    })
    .map_err(db_error)?;
    let info = TokenInfo {
        id: c.last_insert_rowid(),
        user: user.to_string(),
        scopes,
        label,
        created_at: from_micros(now),
        expires_at: expires.map(|t| from_micros(micros(t))),
        revoked: false,
    };
    Ok((info, plaintext))
}

pub(crate) fn authenticate(c: &Connection, token: &str) -> Result<Option<Principal>> {
    let presented = token_hash(token.trim());
    let row = c
        .prepare_cached(
            "SELECT t.id, t.hash, t.scopes, t.expires_at, t.revoked, u.id, u.name, u.admin \
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row([&presented[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, bool>(7)?,
                ))
            })
            .optional()
        })
        .map_err(db_error)?;
    let Some((token_id, stored, scopes, expires_at, revoked, user_id, user, admin)) = row else {
        return Ok(None);
    };
    // The index found the row by hash; compare again in constant time so that nothing about
    // the stored hash leaks through timing.
    if !bool::from(stored.as_slice().ct_eq(&presented[..])) || revoked {
        return Ok(None);
    }
    if expires_at.is_some_and(|e| e <= now_micros()) {
        return Ok(None);
    }
    let scopes = Scopes::parse(&scopes).unwrap_or_default();
    Ok(Some(Principal { user_id, user, admin, scopes, token_id }))
}

fn token_from_row(r: &Row) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        user: r.get(1)?,
        scopes: Scopes::parse(&r.get::<_, String>(2)?).unwrap_or_default(),
        label: r.get(3)?,
        created_at: from_micros(r.get(4)?),
        expires_at: r.get::<_, Option<i64>>(5)?.map(from_micros),
        revoked: r.get(6)?,
    })
}

pub(crate) fn list_tokens(c: &Connection, user: &str) -> Result<Vec<TokenInfo>> {
    let mut st = c
        .prepare_cached(
            "SELECT t.id, u.name, t.scopes, t.label, t.created_at, t.expires_at, t.revoked \
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = ?1 ORDER BY t.id",
        )
        .map_err(db_error)?;
    let rows = st.query_map([user], token_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

pub(crate) fn revoke_token(c: &Connection, user: &str, token_id: i64) -> Result<()> {
    let changed = c
        .prepare_cached("UPDATE tokens SET revoked = 1 WHERE id = ?1 AND user_id = (SELECT id FROM users WHERE name = ?2)")
        .and_then(|mut st| st.execute(params![token_id, user]))
        .map_err(db_error)?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("token {token_id} of user `{user}`")));
    }
    Ok(())
}

const FEED_COLUMNS: &str = "f.id, u.name, f.owner_id, f.name, f.description, f.license_name, f.license_url, \
     f.visibility, f.created_at, f.updated_at FROM feeds f JOIN users u ON u.id = f.owner_id";

fn feed_from_row(r: &Row) -> rusqlite::Result<Feed> {
    let visibility = match r.get::<_, String>(7)?.as_str() {
        "private" => Visibility::Private,
        _ => Visibility::Public,
    };
    Ok(Feed {
        id: r.get(0)?,
        owner: r.get(1)?,
        owner_id: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        license_name: r.get(5)?,
        license_url: r.get(6)?,
        visibility,
        created_at: from_micros(r.get(8)?),
        updated_at: from_micros(r.get(9)?),
    })
}

fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

pub(crate) fn create_feed(c: &Connection, new: &NewFeed) -> Result<Feed> {
    let owner_id = user_id(c, &new.owner)?;
    let now = now_micros();
    let inserted = c
        .prepare_cached(
            "INSERT INTO feeds (owner_id, name, description, license_name, license_url, visibility, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                owner_id,
                new.name,
                new.description,
                new.license_name,
                new.license_url,
                visibility_str(new.visibility),
                now
            ])
        });
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!("feed `{}/{}`", new.owner, new.name)))
        }
        Err(e) => return Err(db_error(e)),
    }
    get_feed(c, &new.owner, &new.name)?.ok_or_else(|| StoreError::Internal("created feed vanished".into()))
}

pub(crate) fn get_feed(c: &Connection, owner: &str, name: &str) -> Result<Option<Feed>> {
    c.prepare_cached(&format!("SELECT {FEED_COLUMNS} WHERE u.name = ?1 AND f.name = ?2"))
        .and_then(|mut st| st.query_row([owner, name], feed_from_row).optional())
        .map_err(db_error)
}

/// SQL condition (on `f`, the feeds table) for "readable by": `reader` None = no restriction;
/// Some(None) = anonymous; Some(Some(r)) = that user. Binds `?uid` when it has a user.
pub(crate) fn readable_condition(reader: Option<Option<&Reader>>) -> Option<String> {
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

/// Feeds, optionally of one owner, optionally only those `reader` may read.
pub(crate) fn list_feeds(c: &Connection, owner: Option<&str>, reader: Option<Option<&Reader>>) -> Result<Vec<Feed>> {
    let mut conds = Vec::new();
    if owner.is_some() {
        conds.push("u.name = ?1".to_string());
    }
    conds.extend(readable_condition(reader));
    let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let mut st = c.prepare_cached(&format!("SELECT {FEED_COLUMNS}{filter} ORDER BY u.name, f.name")).map_err(db_error)?;
    let rows = match owner {
        Some(o) => st.query_map([o], feed_from_row),
        None => st.query_map([], feed_from_row),
    }
    .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn feed_id(c: &Connection, owner: &str, name: &str) -> Result<i64> {
    c.prepare_cached("SELECT f.id FROM feeds f JOIN users u ON u.id = f.owner_id WHERE u.name = ?1 AND f.name = ?2")
        .and_then(|mut st| st.query_row([owner, name], |r| r.get(0)).optional())
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("feed `{owner}/{name}`")))
}

pub(crate) fn update_feed(c: &Connection, owner: &str, name: &str, update: &FeedUpdate) -> Result<Feed> {
    let id = feed_id(c, owner, name)?;
    c.prepare_cached(
        "UPDATE feeds SET description = coalesce(?2, description), license_name = coalesce(?3, license_name), \
         license_url = coalesce(?4, license_url), visibility = coalesce(?5, visibility), updated_at = ?6 WHERE id = ?1",
    )
    .and_then(|mut st| {
        st.execute(params![
            id,
            update.description,
            update.license_name,
            update.license_url,
            update.visibility.map(visibility_str),
            now_micros()
        ])
    })
    .map_err(db_error)?;
    get_feed(c, owner, name)?.ok_or_else(|| StoreError::Internal("updated feed vanished".into()))
}

/// Delete a feed with its records, sightings and grants, and recompute the hub-wide
/// aggregates of the values it held.
pub(crate) fn delete_feed(c: &Connection, owner: &str, name: &str) -> Result<()> {
    let id = feed_id(c, owner, name)?;
    c.execute_batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS gone_indicators (id INTEGER PRIMARY KEY);
         DELETE FROM temp.gone_indicators;
         INSERT OR IGNORE INTO temp.gone_indicators SELECT indicator_id FROM feed_records WHERE feed_id = {id};
         DELETE FROM record_tags WHERE record_id IN (SELECT id FROM feed_records WHERE feed_id = {id});
         DELETE FROM sightings WHERE record_id IN (SELECT id FROM feed_records WHERE feed_id = {id});
         DELETE FROM feed_records WHERE feed_id = {id};
         DELETE FROM feed_grants WHERE feed_id = {id};
         DELETE FROM feeds WHERE id = {id};
         DELETE FROM indicators WHERE id IN (SELECT id FROM temp.gone_indicators)
             AND NOT EXISTS (SELECT 1 FROM feed_records r WHERE r.indicator_id = indicators.id);
         UPDATE indicators SET
             firsttime = (SELECT min(firsttime) FROM feed_records r WHERE r.indicator_id = indicators.id),
             lasttime = (SELECT max(lasttime) FROM feed_records r WHERE r.indicator_id = indicators.id),
             count = (SELECT sum(count) FROM feed_records r WHERE r.indicator_id = indicators.id),
             feeds = (SELECT count(*) FROM feed_records r WHERE r.indicator_id = indicators.id),
             reporters = (SELECT coalesce(json_group_array(reporter_id), '[]') FROM (
                 SELECT DISTINCT s.reporter_id FROM feed_records r JOIN sightings s ON s.record_id = r.id
                 WHERE r.indicator_id = indicators.id ORDER BY 1)),
             sources = (SELECT count(DISTINCT s.reporter_id) FROM feed_records r JOIN sightings s ON s.record_id = r.id
                 WHERE r.indicator_id = indicators.id)
             WHERE id IN (SELECT id FROM temp.gone_indicators);
         DELETE FROM temp.gone_indicators;"
    ))
    .map_err(db_error)
}

pub(crate) fn grant_feed_access(c: &Connection, owner: &str, name: &str, user: &str) -> Result<()> {
    let fid = feed_id(c, owner, name)?;
    let uid = user_id(c, user)?;
    c.prepare_cached("INSERT OR IGNORE INTO feed_grants (feed_id, user_id) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute([fid, uid]))
        .map_err(db_error)?;
    Ok(())
}

/// Read access: the feed is public, or `user_id` owns it, was granted it, or is an admin.
pub(crate) fn has_feed_access(c: &Connection, feed_id: i64, user_id: i64) -> Result<bool> {
    c.prepare_cached(
        "SELECT f.visibility = 'public' OR f.owner_id = ?2 \
             OR EXISTS (SELECT 1 FROM users u WHERE u.id = ?2 AND u.admin) \
             OR EXISTS (SELECT 1 FROM feed_grants g WHERE g.feed_id = f.id AND g.user_id = ?2) \
         FROM feeds f WHERE f.id = ?1",
    )
    .and_then(|mut st| st.query_row([feed_id, user_id], |r| r.get::<_, bool>(0)).optional())
    .map_err(db_error)
    .map(|v| v.unwrap_or(false))
}
