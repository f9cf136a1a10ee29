//! Channels and their subscribers: the broker's fan-out.
//!
//! Each connection has one outgoing queue, bounded in bytes. A publish is one encoded frame
//! (`Bytes`, shared, never copied per subscriber) handed to every subscriber's queue with a
//! non-blocking send. A subscriber whose queue is full is not waited for: it is dropped from
//! every channel and its connection is told to close (with a logged notice), so one slow
//! reader can never stall a publisher or the other subscribers.

use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, Notify};

/// The outgoing side of one connection, shared by the channels it subscribed to.
#[derive(Debug)]
pub struct Outbox {
    pub conn_id: u64,
    pub ident: String,
    pub peer: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    /// Bytes queued and not yet written to the socket (the writer counts them down).
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// Set once the connection is told to close for being too slow.
    lagged: AtomicBool,
    /// Wakes the connection's task when it has to close.
    pub kick: Notify,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue is over its byte budget: the subscriber is too slow.
    Full,
    /// The connection is closing.
    Closed,
}

impl Outbox {
    pub fn new(conn_id: u64, ident: String, peer: SocketAddr, tx: mpsc::Sender<Bytes>, max_queued: usize) -> Outbox {
        Outbox {
            conn_id,
            ident,
            peer,
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued,
            lagged: AtomicBool::new(false),
            kick: Notify::new(),
        }
    }

    /// Queue a frame without waiting.
    pub fn offer(&self, frame: Bytes) -> Result<(), Refused> {
        if self.lagged.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > self.max_queued {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.queued.fetch_sub(len, Ordering::Relaxed);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => Refused::Full,
                    mpsc::error::TrySendError::Closed(_) => Refused::Closed,
                })
            }
        }
    }

    /// Queue a frame of the connection's own (an ERROR), waiting for room: it only slows the
    /// connection itself.
    pub async fn send_own(&self, frame: Bytes) -> bool {
        self.queued.fetch_add(frame.len(), Ordering::Relaxed);
        self.tx.send(frame).await.is_ok()
    }

    /// The counter of queued bytes, for the writer to count down as it writes (the writer
    /// must not hold the outbox itself: that would keep the queue open forever).
    pub fn queued_bytes(&self) -> Arc<AtomicUsize> {
        self.queued.clone()
    }

    /// Mark the connection too slow and wake it to close. True the first time.
    fn lag(&self) -> bool {
        let first = !self.lagged.swap(true, Ordering::Relaxed);
        if first {
            self.kick.notify_one();
        }
        first
    }

    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Relaxed)
    }
}

/// What a publish reached.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: usize,
    /// Subscribers dropped for being too slow.
    pub dropped: usize,
}

/// Every channel with its subscribers.
#[derive(Debug, Default)]
pub struct Channels {
    subs: RwLock<HashMap<String, Vec<Arc<Outbox>>>>,
}

impl Channels {
    pub fn new() -> Channels {
        Channels::default()
    }

    /// Add a subscriber (again is a no-op).
    pub fn subscribe(&self, channel: &str, outbox: &Arc<Outbox>) {
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        let list = subs.entry(channel.to_owned()).or_default();
        if !list.iter().any(|o| o.conn_id == outbox.conn_id) {
            list.push(outbox.clone());
        }
    }

    pub fn unsubscribe(&self, channel: &str, conn_id: u64) {
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = subs.get_mut(channel) {
            list.retain(|o| o.conn_id != conn_id);
            if list.is_empty() {
                subs.remove(channel);
            }
        }
    }

    /// Remove a connection from every channel it is on.
    pub fn remove(&self, conn_id: u64) {
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        subs.retain(|_, list| {
            list.retain(|o| o.conn_id != conn_id);
            !list.is_empty()
        });
    }

    pub fn has_subscribers(&self, channel: &str) -> bool {
        self.subs.read().unwrap_or_else(|p| p.into_inner()).contains_key(channel)
    }

    /// Hand an encoded PUBLISH frame to every subscriber of `channel`, never waiting. Slow
    /// subscribers are dropped from every channel and told to close.
    pub fn publish(&self, channel: &str, frame: &Bytes) -> Delivery {
        let mut d = Delivery::default();
        let mut slow: Vec<Arc<Outbox>> = Vec::new();
        {
            let subs = self.subs.read().unwrap_or_else(|p| p.into_inner());
            let Some(list) = subs.get(channel) else { return d };
            for o in list {
                match o.offer(frame.clone()) {
                    Ok(()) => d.delivered += 1,
                    Err(Refused::Full) => slow.push(o.clone()),
                    Err(Refused::Closed) => {}
                }
            }
        }
        for o in slow {
            if o.lag() {
                d.dropped += 1;
                tracing::warn!(
                    ident = %o.ident, peer = %o.peer, channel,
                    "hpfeeds: subscriber too slow (its queue of {} bytes is full); disconnecting it",
                    o.max_queued
                );
            }
            self.remove(o.conn_id);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(id: u64, cap: usize, max_bytes: usize) -> (Arc<Outbox>, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(cap);
        (Arc::new(Outbox::new(id, format!("c{id}"), "127.0.0.1:1".parse().unwrap(), tx, max_bytes)), rx)
    }

    #[tokio::test]
    async fn a_full_subscriber_is_dropped_and_the_rest_still_get_frames() {
        let channels = Channels::new();
        let (fast, mut fast_rx) = outbox(1, 1024, 1 << 20);
        let (slow, _slow_rx) = outbox(2, 1024, 10);
        channels.subscribe("c", &fast);
        channels.subscribe("c", &slow);
        channels.subscribe("other", &slow);
        let frame = Bytes::from_static(b"12345678");
        assert_eq!(channels.publish("c", &frame), Delivery { delivered: 2, dropped: 0 });
        assert_eq!(channels.publish("c", &frame), Delivery { delivered: 1, dropped: 1 });
        assert!(slow.lagged());
        assert!(!channels.has_subscribers("other"), "a dropped subscriber leaves every channel");
        assert_eq!(channels.publish("c", &frame), Delivery { delivered: 1, dropped: 0 });
        for _ in 0..3 {
            assert_eq!(fast_rx.recv().await.unwrap(), frame);
        }
        // The writer's progress frees the budget.
        fast.queued_bytes().fetch_sub(8 * 3, Ordering::Relaxed);
        assert_eq!(fast.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn unsubscribe_and_remove() {
        let channels = Channels::new();
        let (a, _rx) = outbox(1, 8, 1 << 20);
        channels.subscribe("c", &a);
        channels.subscribe("c", &a);
        assert!(channels.has_subscribers("c"));
        channels.unsubscribe("c", 1);
        assert!(!channels.has_subscribers("c"));
        channels.subscribe("d", &a);
        channels.remove(1);
        assert!(!channels.has_subscribers("d"));
    }
}
