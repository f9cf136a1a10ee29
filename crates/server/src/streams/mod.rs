//! The streams of the serve stage: the CSIRTG firehose websocket ([`firehose`]), the native
//! stream as Server-Sent Events or a websocket ([`native`]), push subscriptions ([`webhooks`]),
//! and hpfeeds' `apiary.sightings` (in `crate::hpfeeds::tap`). All of them read one bus, fed by
//! one [`LogFeeder`] that tails the sightings log, so a sighting is streamed only once it is
//! committed, whichever path recorded it. docs/firehose.md is the user's view.
//!
//! Each consumer uses a [`Follow`] (replay from the log after a cursor, then live), checks
//! every event against what its token may read ([`access`]) and its filters ([`filter`]).

pub mod access;
pub mod filter;
pub mod firehose;
pub mod native;
pub mod webhooks;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use apiary_bus::{Bus, FeederOptions, Follow, LogFeeder, MemoryBus};
use apiary_store::Store;
use tokio::sync::{watch, Mutex, Notify};

use crate::AppState;

/// Tuning of the streams (the defaults suit a hub; tests shorten the intervals).
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Events that may wait for one subscriber before it lags and catches up from the log.
    pub buffer: usize,
    /// SSE heartbeat (a comment line) interval.
    pub heartbeat: Duration,
    /// ActionCable ping interval on `/firehose`.
    pub ping: Duration,
    /// How often a long-lived stream reads its token, readable feeds and subscriptions again.
    pub access_refresh: Duration,
    pub feeder: FeederOptions,
    pub webhooks: webhooks::WebhookOptions,
    /// The bus (`apiary serve --bus`): `None` is an in-process [`MemoryBus`]; a shared one
    /// (NATS) joins this node to the others of the hub (docs/scale-out.md).
    pub bus: Option<SharedBus>,
}

/// A bus handed to the hub in its options.
#[derive(Clone)]
pub struct SharedBus(pub Arc<dyn Bus>);

impl std::fmt::Debug for SharedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBus(shared: {})", self.0.shared())
    }
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            buffer: 4096,
            heartbeat: Duration::from_secs(15),
            ping: Duration::from_secs(3),
            access_refresh: Duration::from_secs(10),
            feeder: FeederOptions::default(),
            webhooks: webhooks::WebhookOptions::default(),
            bus: None,
        }
    }
}

/// The bus, its feeder (started with the first subscriber, or by [`Streams::start`]), and
/// the webhook deliveries.
pub struct Streams {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub options: StreamOptions,
    feeder: Mutex<Option<LogFeeder>>,
    webhooks: Mutex<Option<webhooks::Deliveries>>,
    /// Wakes the webhook supervisor after an API change (create, delete, resume).
    pub webhooks_changed: Arc<Notify>,
    /// Set when the hub shuts down: every stream ends (so open streams do not hold it up).
    closing: watch::Sender<bool>,
}

impl Streams {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, options: StreamOptions) -> Arc<Streams> {
        Arc::new(Streams {
            store,
            bus,
            options,
            feeder: Mutex::new(None),
            webhooks: Mutex::new(None),
            webhooks_changed: Arc::new(Notify::new()),
            closing: watch::channel(false).0,
        })
    }

    /// Streams on the bus of `options.bus`, or on an in-process bus when it is `None`.
    pub fn in_process(store: Arc<dyn Store>, options: StreamOptions) -> Arc<Streams> {
        let bus = options.bus.clone().map(|b| b.0).unwrap_or_else(|| Arc::new(MemoryBus::new()));
        Streams::new(store, bus, options)
    }

    /// Start the feeder if it is not running.
    pub async fn ensure_feeder(&self) -> apiary_store::Result<()> {
        let mut feeder = self.feeder.lock().await;
        if feeder.is_none() {
            *feeder = Some(LogFeeder::start(self.store.clone(), self.bus.clone(), self.options.feeder.clone()).await?);
        }
        Ok(())
    }

    /// Start the feeder and the webhook deliveries (what `apiary serve` runs).
    pub async fn start(&self, state: &AppState) -> apiary_store::Result<()> {
        self.ensure_feeder().await?;
        let mut hooks = self.webhooks.lock().await;
        if hooks.is_none() {
            *hooks = Some(webhooks::Deliveries::start(state.clone(), self.webhooks_changed.clone()));
        }
        Ok(())
    }

    /// Replay after `cursor` (or from now), then live, for `feeds` (`None`: every feed).
    pub async fn follow(&self, feeds: Option<Vec<i64>>, cursor: Option<i64>) -> apiary_store::Result<Follow> {
        self.ensure_feeder().await?;
        Follow::start(self.store.clone(), self.bus.clone(), feeds, cursor, self.options.buffer).await
    }

    /// End every open stream (at a shutdown signal, before in-flight requests are awaited).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// Resolves once [`Streams::close`] was called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Stop the webhook deliveries (their cursors are saved) and the feeder.
    pub async fn shutdown(&self) {
        if let Some(d) = self.webhooks.lock().await.take() {
            d.shutdown().await;
        }
        if let Some(f) = self.feeder.lock().await.take() {
            f.shutdown().await;
        }
    }
}
