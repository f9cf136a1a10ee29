//! The in-process bus: one registry of subscribers, indexed by feed, each with a bounded queue.
//!
//! Publishing `try_send`s each event to the firehose subscribers and to the subscribers of its
//! feed only (a subscriber of one feed costs nothing for the others). A full queue drops that
//! subscriber at once with a [`Delivery::Lagged`](crate::Delivery) mark; nobody else waits.
//!
//! The registry is copy-on-write: a publish takes a snapshot (one `Arc` clone under a lock held
//! for nothing else) and fans out without any lock, so subscribers coming and going never
//! hold up ingestion, and a long fan-out never holds up a subscribe.

use crate::{Bus, BusError, Event, LagMark, SubscribeOptions, Subscription};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

struct Subscriber {
    tx: mpsc::Sender<Arc<Event>>,
    lag: Arc<LagMark>,
    gone: AtomicBool,
}

impl Subscriber {
    fn gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed) || self.tx.is_closed()
    }
}

#[derive(Default, Clone)]
struct Registry {
    all: Vec<Arc<Subscriber>>,
    by_feed: HashMap<i64, Vec<Arc<Subscriber>>>,
    count: usize,
}

impl Registry {
    /// The registry without the subscribers that lagged or went away.
    fn pruned(&self) -> Registry {
        let all: Vec<_> = self.all.iter().filter(|s| !s.gone()).cloned().collect();
        let mut by_feed = HashMap::with_capacity(self.by_feed.len());
        let mut seen = std::collections::HashSet::new();
        for (feed, subs) in &self.by_feed {
            let subs: Vec<_> = subs.iter().filter(|s| !s.gone()).cloned().collect();
            for s in &subs {
                seen.insert(Arc::as_ptr(s));
            }
            if !subs.is_empty() {
                by_feed.insert(*feed, subs);
            }
        }
        let count = all.len() + seen.len();
        Registry { all, by_feed, count }
    }
}

/// The in-process [`Bus`].
#[derive(Default)]
pub struct MemoryBus {
    registry: Mutex<Arc<Registry>>,
}

impl MemoryBus {
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    fn snapshot(&self) -> Arc<Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Change the registry: copy, edit, swap (subscribes and prunes are rare next to publishes).
    fn update(&self, edit: impl FnOnce(&mut Registry)) {
        let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = reg.pruned();
        edit(&mut next);
        *reg = Arc::new(next);
    }
}

/// Offer `ev` to `sub`; false when the subscriber has to go (lagging or gone).
fn offer(sub: &Subscriber, ev: &Arc<Event>) -> bool {
    if sub.gone.load(Ordering::Relaxed) {
        return false;
    }
    match sub.tx.try_send(ev.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            sub.lag.set(ev.seq() - 1);
            sub.gone.store(true, Ordering::Relaxed);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            sub.gone.store(true, Ordering::Relaxed);
            false
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, events: Vec<Arc<Event>>) -> Result<(), BusError> {
        let reg = self.snapshot();
        let mut dropped = false;
        for ev in &events {
            for sub in &reg.all {
                dropped |= !offer(sub, ev);
            }
            if let Some(subs) = reg.by_feed.get(&ev.sighting.feed_id) {
                for sub in subs {
                    dropped |= !offer(sub, ev);
                }
            }
        }
        if dropped {
            // Dropping the last reference closes the queue: the subscriber sees its lag mark.
            self.update(|_| {});
        }
        Ok(())
    }

    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(options.buffer.max(1));
        let lag = LagMark::new();
        let sub = Arc::new(Subscriber { tx, lag: lag.clone(), gone: AtomicBool::new(false) });
        self.update(|reg| {
            match options.feeds {
                None => reg.all.push(sub),
                Some(feeds) => {
                    for f in feeds {
                        reg.by_feed.entry(f).or_default().push(sub.clone());
                    }
                }
            }
            reg.count += 1;
        });
        Ok(Subscription::new(rx, lag))
    }

    fn subscribers(&self) -> usize {
        self.snapshot().count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Delivery, LoggedSighting};
    use apiary_core::IType;
    use apiary_store::Tlp;

    pub(crate) fn event(seq: i64, feed_id: i64) -> Arc<Event> {
        let now = chrono::Utc::now();
        Arc::new(Event::new(LoggedSighting {
            seq,
            feed_id,
            feed: format!("alice/f{feed_id}"),
            record_id: seq,
            itype: IType::Ipv4,
            indicator: "192.0.2.1".into(),
            reserved: None,
            observed_at: now,
            observed_until: None,
            received_at: now,
            tags: vec![],
            portlist: vec![],
            protocol: None,
            description: None,
            tlp: Tlp::Green,
            claimed_confidence: None,
            sensor: None,
            count: 1,
        }))
    }

    #[tokio::test]
    async fn feed_subscribers_get_their_feeds_and_the_firehose_everything() {
        let bus = MemoryBus::new();
        let mut all = bus.subscribe(SubscribeOptions::all(16)).await.unwrap();
        let mut one = bus.subscribe(SubscribeOptions { feeds: Some(vec![2]), buffer: 16 }).await.unwrap();
        assert_eq!(bus.subscribers(), 2);
        bus.publish(vec![event(1, 1), event(2, 2), event(3, 1)]).await.unwrap();
        for want in [1, 2, 3] {
            let Some(Delivery::Event(e)) = all.recv().await else { panic!("event {want}") };
            assert_eq!(e.seq(), want);
        }
        let Some(Delivery::Event(e)) = one.recv().await else { panic!("feed 2 event") };
        assert_eq!((e.seq(), e.sighting.feed_id), (2, 2));
        assert!(one.rx.try_recv().is_err(), "nothing of feed 1");
    }

    #[tokio::test]
    async fn a_full_subscriber_lags_alone() {
        let bus = MemoryBus::new();
        let mut slow = bus.subscribe(SubscribeOptions::all(2)).await.unwrap();
        let mut fast = bus.subscribe(SubscribeOptions::all(100)).await.unwrap();
        bus.publish((1..=5).map(|s| event(s, 1)).collect()).await.unwrap();
        for want in 1..=5 {
            let Some(Delivery::Event(e)) = fast.recv().await else { panic!() };
            assert_eq!(e.seq(), want);
        }
        let mut got = vec![];
        loop {
            match slow.recv().await {
                Some(Delivery::Event(e)) => got.push(e.seq()),
                Some(Delivery::Lagged { resume_after }) => {
                    assert_eq!(resume_after, 2, "seq 3 was the first it missed");
                    break;
                }
                None => panic!("no lag notice"),
            }
        }
        assert_eq!(got, vec![1, 2]);
        assert_eq!(bus.subscribers(), 1, "the lagging subscriber is gone");
        drop(fast);
        bus.publish(vec![event(6, 1)]).await.unwrap();
        assert_eq!(bus.subscribers(), 0, "a dropped subscription is removed at the next publish");
    }
}
