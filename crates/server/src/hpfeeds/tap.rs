//! New sightings out on the `apiary.sightings` channel, as native JSON.
//!
//! The tap is one more consumer of the hub's bus (`crate::streams`): it follows every feed from
//! the broker's start and publishes each committed sighting to the broker's subscribers of
//! `apiary.sightings`. The bus is fed from the sightings log, so every path that records
//! sightings (the native API, the CSIRTG routes, the broker's own `cowrie.sessions`, an import
//! into the same data directory) reaches the channel, and duplicates (not in the log) never do.
//!
//! Only sightings of **public** feeds marked TLP clear or green go out: an ident is not a hub
//! user, so it gets what an anonymous reader of the hub could read. A value its feed's owner
//! retracted never goes out for that feed (`crate::streams::filter::Retractions`).

use super::channels::Channels;
use super::SIGHTINGS_CHANNEL;
use crate::streams::Streams;
use apiary_bus::{native_json, FollowItem, LoggedSighting};
use apiary_ingest::hpfeeds::{encode_to_vec, Frame};
use apiary_store::*;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a feed's visibility is trusted before it is read again.
const FEED_CACHE_TTL: Duration = Duration::from_secs(5);

struct FeedCache {
    /// feed id → public
    public: HashMap<i64, bool>,
    read_at: Option<Instant>,
}

impl FeedCache {
    /// Whether the feed is public, from a cache read again every few seconds or on a miss.
    async fn is_public(&mut self, store: &dyn Store, id: i64) -> bool {
        let fresh = self.read_at.is_some_and(|t| t.elapsed() < FEED_CACHE_TTL);
        if !fresh || !self.public.contains_key(&id) {
            match store.list_feeds(None).await {
                Ok(feeds) => {
                    self.public = feeds.into_iter().map(|f| (f.id, f.visibility == Visibility::Public)).collect();
                    self.read_at = Some(Instant::now());
                }
                Err(e) => tracing::warn!("hpfeeds: cannot read feeds for {SIGHTINGS_CHANNEL}: {e}"),
            }
        }
        self.public.get(&id).copied().unwrap_or(false)
    }
}

/// Follow the bus until `stop`, publishing what an anonymous reader could read.
pub async fn run(streams: Arc<Streams>, channels: Arc<Channels>, publisher: String, mut stop: watch::Receiver<bool>) {
    let mut follow = match streams.follow(None, None).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("hpfeeds: {SIGHTINGS_CHANNEL} is off: cannot follow the sightings log: {e}");
            return;
        }
    };
    let mut feeds = FeedCache { public: HashMap::new(), read_at: None };
    let retracted = crate::streams::filter::Retractions::new(streams.store.clone());
    if let Err(e) = retracted.refresh().await {
        tracing::warn!("hpfeeds: cannot read the retractions for {SIGHTINGS_CHANNEL}: {e}");
    }
    loop {
        let item = tokio::select! {
            item = follow.next() => item,
            _ = stop.changed() => break,
        };
        let ev = match item {
            Ok(Some(FollowItem::Event(ev))) => ev,
            Ok(Some(FollowItem::Lagged { resume_after })) => {
                tracing::debug!("hpfeeds: {SIGHTINGS_CHANNEL} fell behind after seq {resume_after}; catching up from the log");
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("hpfeeds: {SIGHTINGS_CHANNEL}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let s = &ev.sighting;
        if !matches!(s.tlp, Tlp::Clear | Tlp::Green) || !channels.has_subscribers(SIGHTINGS_CHANNEL) || retracted.hides(s.feed_id, &s.indicator) {
            continue;
        }
        if !feeds.is_public(streams.store.as_ref(), s.feed_id).await {
            continue;
        }
        let payload = sighting_json(s);
        let Ok(frame) = encode_to_vec(&Frame::Publish { ident: &publisher, channel: SIGHTINGS_CHANNEL, payload: payload.as_bytes() })
        else {
            continue;
        };
        channels.publish(SIGHTINGS_CHANNEL, &Bytes::from(frame));
    }
}

/// A sighting in the native API's field names (the bus's event fields).
pub fn sighting_json(s: &LoggedSighting) -> String {
    native_json(s).to_string()
}
