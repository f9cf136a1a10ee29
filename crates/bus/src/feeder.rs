//! The one publisher: tails the sightings log by seq and publishes what it finds, in order.
//!
//! Because it reads what the store has committed, nothing reaches a subscriber that a crash
//! could take back, and every writer is covered the same way: the hub's routes, the hpfeeds
//! broker, and another process appending to the same data directory (`apiary import`). It
//! polls every `poll` when the log is quiet and reads again at once while pages come back full.

use crate::{Bus, Event};
use apiary_store::Store;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct FeederOptions {
    /// How often a quiet log is read again (the added delivery latency, at most).
    pub poll: Duration,
    /// Log entries per read.
    pub page: usize,
}

impl Default for FeederOptions {
    fn default() -> Self {
        FeederOptions { poll: Duration::from_millis(10), page: 2000 }
    }
}

/// A running feeder. Dropping it does not stop it: call [`LogFeeder::shutdown`].
pub struct LogFeeder {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    published: Arc<AtomicI64>,
}

impl LogFeeder {
    /// Start publishing what is appended after the log's current end.
    pub async fn start(store: Arc<dyn Store>, bus: Arc<dyn Bus>, options: FeederOptions) -> apiary_store::Result<LogFeeder> {
        let after = store.last_sighting_seq().await?;
        let published = Arc::new(AtomicI64::new(after));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(store, bus, options, after, published.clone(), stop_rx));
        Ok(LogFeeder { stop, task, published })
    }

    /// The seq of the last entry published.
    pub fn published(&self) -> i64 {
        self.published.load(Ordering::SeqCst)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    options: FeederOptions,
    mut after: i64,
    published: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) {
    let page = options.page.max(1);
    loop {
        if *stop.borrow() {
            break;
        }
        let wait = match store.sightings_after(after, None, page).await {
            Ok(entries) => {
                let full = entries.len() >= page;
                if let Some(last) = entries.last() {
                    after = last.seq;
                    let events = entries.into_iter().map(|s| Arc::new(Event::new(s))).collect();
                    if let Err(e) = bus.publish(events).await {
                        tracing::warn!("firehose: cannot publish to the bus: {e}");
                    }
                    published.store(after, Ordering::SeqCst);
                }
                if full {
                    tokio::task::yield_now().await;
                    continue;
                }
                options.poll
            }
            Err(e) => {
                tracing::warn!("firehose: cannot read the sightings log after seq {after}: {e}");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
}
