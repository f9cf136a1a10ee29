//! The one publisher: tails the sightings log by seq and publishes what it finds, in order.
//!
//! Because it reads what the store has committed, nothing reaches a subscriber that a crash
//! could take back, and every writer is covered the same way: the hub's routes, the hpfeeds
//! broker, and another process appending to the same data directory (`apiary import`). It
//! polls every `poll` when the log is quiet and reads again at once while pages come back full.
//!
//! On a bus several nodes share ([`Bus::shared`]: NATS), one feeder publishes for the whole
//! hub: it runs under the `bus-feeder` job lease ([`apiary_store::LeasedJob`]) and starts after
//! the last seq the bus holds, so a node that takes over continues where the dead one stopped.
//! Because the store's log becomes visible in seq order, publishing it in order never skips a
//! sighting another node committed. A failed publish is retried (the bus de-duplicates by seq).

use crate::{Bus, Event};
use apiary_store::{LeaseOptions, LeasedJob, Store};
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
    /// The `bus-feeder` lease's TTL on a shared bus: how soon another node takes over.
    pub lease_ttl: Duration,
}

impl Default for FeederOptions {
    fn default() -> Self {
        FeederOptions { poll: Duration::from_millis(10), page: 1000, lease_ttl: Duration::from_secs(10) }
    }
}

/// A running feeder. Dropping it does not stop it: call [`LogFeeder::shutdown`].
pub struct LogFeeder {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    leased: Option<LeasedJob>,
    published: Arc<AtomicI64>,
}

/// The job lease of the one feeder of a shared bus.
pub const FEEDER_LEASE: &str = "bus-feeder";

impl LogFeeder {
    /// Start publishing what is appended after the log's current end.
    pub async fn start(store: Arc<dyn Store>, bus: Arc<dyn Bus>, options: FeederOptions) -> apiary_store::Result<LogFeeder> {
        let (stop, stop_rx) = watch::channel(false);
        if bus.shared() {
            let published = Arc::new(AtomicI64::new(0));
            let p = published.clone();
            let lease = LeaseOptions { ttl: options.lease_ttl, ..LeaseOptions::default() };
            let leased = LeasedJob::spawn(store.clone(), FEEDER_LEASE, lease, move |stop| {
                let (store, bus, options, published) = (store.clone(), bus.clone(), options.clone(), p.clone());
                async move {
                    let after = match bus.last_published().await {
                        Ok(Some(seq)) => Ok(seq),
                        Ok(None) => store.last_sighting_seq().await,
                        Err(e) => Err(apiary_store::StoreError::Internal(e.to_string())),
                    };
                    match after {
                        Ok(after) => {
                            tracing::info!("bus feeder: publishing the sightings log after seq {after}");
                            published.store(after, Ordering::SeqCst);
                            run(store, bus, options, after, published, stop).await
                        }
                        Err(e) => {
                            tracing::warn!("bus feeder: cannot find where to resume: {e}");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
            return Ok(LogFeeder { stop, task: None, leased: Some(leased), published });
        }
        let after = store.last_sighting_seq().await?;
        let published = Arc::new(AtomicI64::new(after));
        let task = tokio::spawn(run(store, bus, options, after, published.clone(), stop_rx));
        Ok(LogFeeder { stop, task: Some(task), leased: None, published })
    }

    /// Whether this process runs the publishing now (always, on an unshared bus).
    pub fn is_publishing(&self) -> bool {
        self.leased.as_ref().is_none_or(LeasedJob::is_held)
    }

    /// The seq of the last entry published.
    pub fn published(&self) -> i64 {
        self.published.load(Ordering::SeqCst)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
        if let Some(leased) = self.leased {
            leased.shutdown().await;
        }
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
                if let Some(last) = entries.last().map(|l| l.seq) {
                    let events = entries.into_iter().map(|s| Arc::new(Event::new(s))).collect();
                    if let Err(e) = bus.publish(events).await {
                        // Read and publish the same entries again (the bus keeps no repeat).
                        tracing::warn!("firehose: cannot publish to the bus after seq {after}: {e}; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stop.changed() => break,
                        }
                        continue;
                    }
                    after = last;
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
