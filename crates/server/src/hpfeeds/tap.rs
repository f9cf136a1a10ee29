//! New sightings out on the `apiary.sightings` channel, as native JSON.
//!
//! [`SightingsTap`] wraps the hub's store: every call goes to the wrapped store unchanged, and
//! after an append has committed, the sightings it added (not the duplicates) are published to
//! the broker's subscribers of `apiary.sightings`. Wrapping the store catches every path that
//! records sightings (the native API, the CSIRTG routes, the broker's own `cowrie.sessions`)
//! without a hook in each. The copy for subscribers is made only while someone is subscribed.
//!
//! Only sightings of **public** feeds marked TLP clear or green go out: an ident is not a hub
//! user, so it gets what an anonymous reader of the hub could read.
//!
//! Every `Store` method must be forwarded here; a method added to the trait with a default
//! body has to be added below too, or the hub would answer with the default when the broker
//! is enabled.

use super::channels::Channels;
use super::SIGHTINGS_CHANNEL;
use apiary_core::format_time;
use apiary_ingest::hpfeeds::{encode_to_vec, Frame};
use apiary_store::*;
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a feed's name and visibility are trusted before they are read again.
const FEED_CACHE_TTL: Duration = Duration::from_secs(5);

pub struct SightingsTap {
    inner: Arc<dyn Store>,
    channels: Arc<Channels>,
    /// The ident subscribers see as the publisher (the broker's name).
    publisher: String,
    feeds: Mutex<FeedCache>,
}

#[derive(Default)]
struct FeedCache {
    /// feed id → (owner/name, public)
    feeds: HashMap<i64, (String, bool)>,
    read_at: Option<Instant>,
}

impl SightingsTap {
    pub fn new(inner: Arc<dyn Store>, channels: Arc<Channels>, publisher: String) -> SightingsTap {
        SightingsTap { inner, channels, publisher, feeds: Mutex::new(FeedCache::default()) }
    }

    /// Feed name and visibility, from a cache read again every few seconds or on a miss.
    async fn feed(&self, id: i64) -> Option<(String, bool)> {
        {
            let cache = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = cache.read_at.is_some_and(|t| t.elapsed() < FEED_CACHE_TTL);
            if fresh {
                if let Some(f) = cache.feeds.get(&id) {
                    return Some(f.clone());
                }
            }
        }
        let feeds = match self.inner.list_feeds(None).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("hpfeeds: cannot read feeds for {SIGHTINGS_CHANNEL}: {e}");
                return None;
            }
        };
        let mut cache = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        cache.feeds = feeds.into_iter().map(|f| (f.id, (f.full_name(), f.visibility == Visibility::Public))).collect();
        cache.read_at = Some(Instant::now());
        cache.feeds.get(&id).cloned()
    }

    async fn announce(&self, batch: Vec<NewSighting>, outcomes: &[AppendOutcome]) {
        for (s, o) in batch.into_iter().zip(outcomes) {
            if o.duplicate || !matches!(s.tlp, Tlp::Clear | Tlp::Green) {
                continue;
            }
            let Some((feed, true)) = self.feed(s.feed_id).await else { continue };
            let payload = sighting_json(&s, &feed, o);
            let Ok(frame) = encode_to_vec(&Frame::Publish {
                ident: &self.publisher,
                channel: SIGHTINGS_CHANNEL,
                payload: payload.as_bytes(),
            }) else {
                continue;
            };
            self.channels.publish(SIGHTINGS_CHANNEL, &Bytes::from(frame));
        }
    }
}

/// A sighting in the native API's field names.
pub fn sighting_json(s: &NewSighting, feed: &str, o: &AppendOutcome) -> String {
    json!({
        "seq": o.seq,
        "id": o.record_id,
        "indicator": s.value,
        "itype": s.itype,
        "feed": feed,
        "tags": s.tags,
        "firsttime": format_time(s.observed_at),
        "lasttime": format_time(s.observed_until.unwrap_or(s.observed_at)),
        "reporttime": format_time(s.received_at),
        "count": s.count,
        "portlist": s.ports,
        "protocol": s.protocol,
        "description": s.description,
        "tlp": s.tlp,
        "claimed_confidence": s.claimed_confidence,
        "reserved": s.reserved,
        "sensor": s.sensor,
    })
    .to_string()
}

#[async_trait]
impl Store for SightingsTap {
    async fn append_sightings(&self, batch: Vec<NewSighting>) -> Result<Vec<AppendOutcome>> {
        if !self.channels.has_subscribers(SIGHTINGS_CHANNEL) {
            return self.inner.append_sightings(batch).await;
        }
        let copy = batch.clone();
        let outcomes = self.inner.append_sightings(batch).await?;
        self.announce(copy, &outcomes).await;
        Ok(outcomes)
    }

    async fn create_user(&self, name: &str, admin: bool) -> Result<User> {
        self.inner.create_user(name, admin).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        self.inner.get_user(name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.inner.list_users().await
    }
    async fn create_token(&self, user: &str, scopes: Scopes, expires: Option<Timestamp>, label: Option<&str>) -> Result<(TokenInfo, String)> {
        self.inner.create_token(user, scopes, expires, label).await
    }
    async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        self.inner.authenticate(token).await
    }
    async fn list_tokens(&self, user: &str) -> Result<Vec<TokenInfo>> {
        self.inner.list_tokens(user).await
    }
    async fn revoke_token(&self, user: &str, token_id: i64) -> Result<()> {
        self.inner.revoke_token(user, token_id).await
    }
    async fn create_feed(&self, new: NewFeed) -> Result<Feed> {
        self.inner.create_feed(new).await
    }
    async fn get_feed(&self, owner: &str, name: &str) -> Result<Option<Feed>> {
        self.inner.get_feed(owner, name).await
    }
    async fn list_feeds(&self, owner: Option<&str>) -> Result<Vec<Feed>> {
        self.inner.list_feeds(owner).await
    }
    async fn update_feed(&self, owner: &str, name: &str, update: FeedUpdate) -> Result<Feed> {
        self.inner.update_feed(owner, name, update).await
    }
    async fn delete_feed(&self, owner: &str, name: &str) -> Result<()> {
        self.inner.delete_feed(owner, name).await
    }
    async fn grant_feed_access(&self, owner: &str, name: &str, user: &str) -> Result<()> {
        self.inner.grant_feed_access(owner, name, user).await
    }
    async fn has_feed_access(&self, feed_id: i64, user_id: i64) -> Result<bool> {
        self.inner.has_feed_access(feed_id, user_id).await
    }
    async fn list_readable_feeds(&self, reader: Option<&Reader>, owner: Option<&str>) -> Result<Vec<Feed>> {
        self.inner.list_readable_feeds(reader, owner).await
    }
    async fn query(&self, q: &Query) -> Result<Page<FeedRecord>> {
        self.inner.query(q).await
    }
    async fn get_record(&self, id: i64) -> Result<Option<FeedRecord>> {
        self.inner.get_record(id).await
    }
    async fn get_indicator(&self, value: &str) -> Result<Option<IndicatorSummary>> {
        self.inner.get_indicator(value).await
    }
    async fn sightings_of(&self, value: &str, feed_ids: Option<&[i64]>, limit: usize) -> Result<Vec<Sighting>> {
        self.inner.sightings_of(value, feed_ids, limit).await
    }
    async fn upsert_hpfeeds_ident(&self, new: NewHpfeedsIdent) -> Result<HpfeedsIdent> {
        self.inner.upsert_hpfeeds_ident(new).await
    }
    async fn get_hpfeeds_ident(&self, ident: &str) -> Result<Option<HpfeedsIdent>> {
        self.inner.get_hpfeeds_ident(ident).await
    }
    async fn list_hpfeeds_idents(&self) -> Result<Vec<HpfeedsIdent>> {
        self.inner.list_hpfeeds_idents().await
    }
    async fn delete_hpfeeds_ident(&self, ident: &str) -> Result<()> {
        self.inner.delete_hpfeeds_ident(ident).await
    }
    async fn stats(&self) -> Result<Stats> {
        self.inner.stats().await
    }
    async fn backup(&self, dest: &std::path::Path) -> Result<()> {
        self.inner.backup(dest).await
    }
}
