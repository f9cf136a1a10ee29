//! A resumable stream for one consumer: the log after a cursor, then live events, with no gap
//! and no repeat, and a lag caught up from the log the same way.
//!
//! It subscribes to the bus **before** reading the log, so anything published while the log is
//! read waits in the subscription; events at or before the cursor are skipped. Every consumer
//! (firehose, native stream, webhooks) uses it, with its own authorization and filters on top.

use crate::{Bus, Delivery, Event, SubscribeOptions, Subscription};
use apiary_store::Store;
use std::collections::VecDeque;
use std::sync::Arc;

/// What [`Follow::next`] yields.
#[derive(Debug, Clone)]
pub enum FollowItem {
    Event(Arc<Event>),
    /// The live subscription fell behind after `resume_after`; the events that follow are read
    /// from the log again (tell the consumer, then keep going).
    Lagged { resume_after: i64 },
}

/// Log replay, then live.
pub struct Follow {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    /// Feed ids to follow; `None`: every feed.
    feeds: Option<Vec<i64>>,
    buffer: usize,
    /// Everything up to here was yielded (or was before the start).
    after: i64,
    sub: Option<Subscription>,
    replay: VecDeque<Arc<Event>>,
    replaying: bool,
    page: usize,
}

impl Follow {
    /// Follow `feeds` from after `cursor`, or from now when `cursor` is `None`.
    pub async fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        feeds: Option<Vec<i64>>,
        cursor: Option<i64>,
        buffer: usize,
    ) -> apiary_store::Result<Follow> {
        let mut f = Follow { store, bus, feeds, buffer, after: 0, sub: None, replay: VecDeque::new(), replaying: false, page: 1000 };
        f.subscribe().await?;
        f.after = match cursor {
            Some(c) => c,
            // Subscribed first: what is committed after this read reaches the subscription.
            None => f.store.last_sighting_seq().await?,
        };
        Ok(f)
    }

    /// The cursor: everything up to this seq was yielded.
    pub fn cursor(&self) -> i64 {
        self.after
    }

    /// Follow another set of feeds (the reader's access changed), from the same cursor.
    pub async fn set_feeds(&mut self, feeds: Option<Vec<i64>>) -> apiary_store::Result<()> {
        if feeds != self.feeds {
            self.feeds = feeds;
            self.replay.clear();
            self.subscribe().await?;
        }
        Ok(())
    }

    async fn subscribe(&mut self) -> apiary_store::Result<()> {
        self.sub = None;
        let options = SubscribeOptions { feeds: self.feeds.clone(), buffer: self.buffer };
        let sub = self.bus.subscribe(options).await.map_err(|e| apiary_store::StoreError::Internal(e.to_string()))?;
        self.sub = Some(sub);
        self.replaying = true;
        Ok(())
    }

    /// The next item already at hand (from the replayed page or the live queue), without
    /// waiting or reading the store; `None`: ask [`Follow::next`]. A stream drains these after
    /// each `next` to send what is queued in one write.
    pub fn try_next(&mut self) -> Option<FollowItem> {
        loop {
            if self.replaying {
                let ev = self.replay.pop_front()?;
                self.after = ev.seq();
                return Some(FollowItem::Event(ev));
            }
            match self.sub.as_mut()?.try_recv()? {
                Delivery::Event(ev) => {
                    if ev.seq() <= self.after {
                        continue;
                    }
                    self.after = ev.seq();
                    return Some(FollowItem::Event(ev));
                }
                Delivery::Lagged { .. } => {
                    self.sub = None;
                    return Some(FollowItem::Lagged { resume_after: self.after });
                }
            }
        }
    }

    /// The next event in log order; `Ok(None)` when the bus closed. Cancel-safe: dropped
    /// before it is ready, nothing is lost.
    pub async fn next(&mut self) -> apiary_store::Result<Option<FollowItem>> {
        loop {
            if self.sub.is_none() {
                self.subscribe().await?;
            }
            if self.replaying {
                if self.replay.is_empty() {
                    let page = self.store.sightings_after(self.after, self.feeds.as_deref(), self.page).await?;
                    if page.is_empty() {
                        self.replaying = false;
                        continue;
                    }
                    self.replay.extend(page.into_iter().map(|s| Arc::new(Event::new(s))));
                }
                if let Some(ev) = self.replay.pop_front() {
                    self.after = ev.seq();
                    return Ok(Some(FollowItem::Event(ev)));
                }
                continue;
            }
            let sub = self.sub.as_mut().expect("subscribed above");
            match sub.recv().await {
                Some(Delivery::Event(ev)) => {
                    if ev.seq() <= self.after {
                        continue;
                    }
                    self.after = ev.seq();
                    return Ok(Some(FollowItem::Event(ev)));
                }
                Some(Delivery::Lagged { .. }) => {
                    // Subscribe again and read the log from our own cursor (the bus's mark may
                    // be ahead of what this consumer has taken).
                    self.sub = None;
                    return Ok(Some(FollowItem::Lagged { resume_after: self.after }));
                }
                None => return Ok(None),
            }
        }
    }
}
