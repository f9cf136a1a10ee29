//! The hpfeeds broker inside `apiary serve` (off unless `--hpfeeds ADDR` is given).
//!
//! Shape (after tokio's mini-redis): an accept loop bounded by a connection limit
//! ([`Broker::spawn`]), one task per connection ([`connection`]) with a writer task draining a
//! bounded queue, a registry of channels and subscribers ([`channels`]), and one shutdown
//! signal every task watches. The frames themselves are parsed and encoded by the pure codec
//! in `apiary_ingest::hpfeeds`.
//!
//! - **Idents** come from the store (`apiary hpfeeds ident add`), read at each AUTH, so every
//!   hub node on the same data knows them and a change applies to the next connection.
//! - **AUTH** is `SHA1(nonce ‖ secret)` against a fresh random nonce, compared in constant
//!   time; a failure is the ERROR "Authentication failed", then the connection is closed.
//! - **Every frame names the authenticated ident** or is refused (ERROR, close): no spoofing.
//!   Publishes and subscriptions are limited to the ident's channel lists; nobody but the hub
//!   publishes on `apiary.sightings`.
//! - **Slow subscribers** cannot stall anyone: a subscriber whose queue exceeds its byte
//!   budget is disconnected with a logged notice, the publish goes on to the others.
//! - **`cowrie.sessions`** messages of an ident mapped to a feed are recorded as sightings in
//!   that feed ([`record`]); new sightings of public feeds go out on `apiary.sightings` as native
//!   JSON ([`tap`], a consumer of the hub's bus: one fan-out for every stream).

pub mod channels;
mod connection;
pub mod record;
pub mod tap;

pub use connection::AUTH_FAILED;

use crate::streams::{StreamOptions, Streams};
use apiary_core::ParseOptions;
use apiary_store::Store;
use channels::Channels;
use record::Recorder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

/// The channel the hub publishes new sightings on.
pub const SIGHTINGS_CHANNEL: &str = "apiary.sightings";

/// Settings of the broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address to listen on (hpfeeds' usual port is 10000).
    pub listen: SocketAddr,
    /// The broker name sent in INFO, and the publisher ident of `apiary.sightings` frames.
    pub name: String,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Bytes that may wait for one slow subscriber before it is disconnected.
    pub max_queued_bytes: usize,
    /// How long a new connection has to authenticate.
    pub auth_timeout: Duration,
    /// How long shutdown waits for connections to flush and close.
    pub shutdown_timeout: Duration,
    /// Failed AUTHs allowed per client address (a burst, then a rate); past it an AUTH is
    /// refused unchecked until the bucket refills, so secrets cannot be guessed fast.
    pub auth_failures: crate::Rate,
}

impl BrokerConfig {
    pub fn new(listen: SocketAddr) -> BrokerConfig {
        BrokerConfig {
            listen,
            name: "apiary".into(),
            max_connections: 1024,
            max_queued_bytes: 16 * 1024 * 1024,
            auth_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            auth_failures: crate::Rate { per_second: 0.2, burst: 10.0 },
        }
    }
}

/// What every connection task shares.
struct Shared {
    config: BrokerConfig,
    store: Arc<dyn Store>,
    channels: Arc<Channels>,
    recorder: Recorder,
    /// The hub's streams: `apiary.sightings` is fed from their bus.
    streams: Arc<Streams>,
    /// Failed AUTHs per client address.
    auth_failures: crate::limits::RateLimiter,
}

/// A bound broker, not yet accepting.
pub struct Broker {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// A running broker. Dropping it stops the broker too (without waiting).
pub struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl Broker {
    /// Listen on `config.listen`, with streams of its own (a broker outside `apiary serve`).
    /// The broker records into, and reads idents from, `store`; every sighting committed to
    /// it (by anyone) goes out on `apiary.sightings`.
    pub async fn bind(config: BrokerConfig, store: Arc<dyn Store>, parse: ParseOptions) -> anyhow::Result<Broker> {
        let streams = Streams::in_process(store.clone(), StreamOptions::default());
        Broker::bind_with_streams(config, store, parse, streams).await
    }

    /// Listen on `config.listen`, publishing `apiary.sightings` from the hub's `streams`.
    pub async fn bind_with_streams(
        config: BrokerConfig,
        store: Arc<dyn Store>,
        parse: ParseOptions,
        streams: Arc<Streams>,
    ) -> anyhow::Result<Broker> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("hpfeeds: cannot listen on {}: {e}", config.listen))?;
        let channels = Arc::new(Channels::new());
        let recorder = Recorder::new(store.clone(), parse);
        Ok(Broker { listener, shared: Arc::new(Shared { auth_failures: crate::limits::RateLimiter::new(config.auth_failures, config.auth_failures), config, store, channels, recorder, streams }) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.shared.config.listen)
    }

    /// The store the broker records into.
    pub fn store(&self) -> Arc<dyn Store> {
        self.shared.store.clone()
    }

    /// Start accepting connections.
    pub fn spawn(self) -> Running {
        let local_addr = self.local_addr();
        let (stop, stop_rx) = watch::channel(false);
        tracing::info!("hpfeeds broker listening on {local_addr}");
        let tap = tokio::spawn(tap::run(
            self.shared.streams.clone(),
            self.shared.channels.clone(),
            self.shared.config.name.clone(),
            stop_rx.clone(),
        ));
        let task = tokio::spawn(async move {
            accept_loop(self.listener, self.shared, stop_rx).await;
            let _ = tap.await;
        });
        Running { stop, task, local_addr }
    }
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, tell every connection to close, and wait for them (bounded).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    // Each connection holds a clone; when all are gone, `done_rx` yields None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let next_id = AtomicU64::new(1);
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!("hpfeeds: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let stop = stop.clone();
        let done = done_tx.clone();
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            connection::handle(shared, stream, peer, id, stop).await;
            drop(permit);
            drop(done);
        });
    }
    drop(listener);
    drop(done_tx);
    let timeout = shared.config.shutdown_timeout;
    if tokio::time::timeout(timeout, done_rx.recv()).await.is_err() {
        tracing::warn!("hpfeeds: connections still open after {timeout:?}; stopping anyway");
    }
    tracing::info!("hpfeeds broker stopped");
}

/// Start the broker when configured, publishing `apiary.sightings` from the hub's `streams`.
pub async fn start(
    config: Option<&BrokerConfig>,
    store: Arc<dyn Store>,
    parse: ParseOptions,
    streams: Arc<Streams>,
) -> anyhow::Result<Option<Running>> {
    let Some(config) = config else { return Ok(None) };
    let broker = Broker::bind_with_streams(config.clone(), store, parse, streams).await?;
    Ok(Some(broker.spawn()))
}
