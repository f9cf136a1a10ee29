//! The NATS JetStream bus: the same [`Bus`] for a hub of several nodes.
//!
//! - **One durable stream** (`APIARY_SIGHTINGS`, file storage) holds every committed sighting
//!   on a subject of its feed, `apiary.sightings.<feed id>`, as the JSON of a
//!   [`LoggedSighting`](crate::LoggedSighting), with `Nats-Msg-Id` set to its log seq (so a
//!   publish retried, or published twice by two feeders during a lease handover, is stored once).
//! - **One publisher per hub**: [`Bus::shared`] is true, so the [`LogFeeder`](crate::LogFeeder)
//!   runs under the `bus-feeder` job lease on one node, tails the store's log in seq order and
//!   publishes it in that order, awaiting the stream's acks; a new holder resumes after the
//!   seq of the stream's last message ([`Bus::last_published`]).
//! - **One consumer per node**: an ordered consumer on `apiary.sightings.>` feeds an in-process
//!   [`MemoryBus`], which fans out to this node's subscribers (firehose, streams, webhooks) with
//!   the same bounded queues and lag notices. If the consumer breaks, it is made again from the
//!   stream sequence after the last message it delivered, so nothing is missed; an event whose
//!   log seq is not above the last one delivered is dropped (never a repeat).
//!
//! The URL names the server and, optionally, the stream and subjects:
//! `nats://HOST:PORT[?stream=NAME&prefix=SUBJECT.PREFIX]` (defaults `APIARY_SIGHTINGS` and
//! `apiary.sightings`), so several hubs, or test runs, can share one NATS server.
//!
//! Cursors stay log seqs: the store's log is ordered by commit (see the PostgreSQL store), so a
//! subscriber that lags or reconnects reads the log after its cursor, from any node.

use crate::{Bus, BusError, Event, LoggedSighting, MemoryBus, SubscribeOptions, Subscription};
use async_nats::jetstream::{self, consumer::DeliverPolicy, stream::Config as StreamConfig};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Where and how long the stream keeps sightings.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// The JetStream stream's name.
    pub stream: String,
    /// Subjects are `<prefix>.<feed id>`.
    pub subject_prefix: String,
    /// Sightings older than this leave the stream (the store's log keeps them).
    pub max_age: Duration,
    /// How long a `Nats-Msg-Id` is remembered for de-duplication.
    pub duplicate_window: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            stream: "APIARY_SIGHTINGS".into(),
            subject_prefix: "apiary.sightings".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
        }
    }
}


impl NatsOptions {
    /// Split `stream` and `prefix` off a bus URL's query: the server URL for the client, and
    /// the options (defaults for what the URL does not say). Other parameters are an error.
    pub fn from_url(url: &str) -> Result<(String, NatsOptions), BusError> {
        let mut options = NatsOptions::default();
        let Some((server, query)) = url.split_once('?') else {
            return Ok((url.to_string(), options));
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "stream" => {
                    // JetStream stream names: no spaces, dots, wildcards or path separators.
                    let ok = !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !ok {
                        return Err(BusError::Other(format!("bus URL: stream `{}`: use letters, digits, '_' and '-'", v.escape_default())));
                    }
                    options.stream = v.to_string();
                }
                "prefix" => {
                    let ok = !v.is_empty()
                        && v.len() <= 200
                        && v.split('.').all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
                    if !ok {
                        return Err(BusError::Other(format!(
                            "bus URL: prefix `{}`: dot-separated tokens of letters, digits, '_' and '-'",
                            v.escape_default()
                        )));
                    }
                    options.subject_prefix = v.to_string();
                }
                other => {
                    return Err(BusError::Other(format!("bus URL: unknown parameter `{}` (use stream= and prefix=)", other.escape_default())))
                }
            }
        }
        Ok((server.to_string(), options))
    }
}

/// The JetStream [`Bus`].
pub struct NatsBus {
    js: jetstream::Context,
    options: NatsOptions,
    local: Arc<MemoryBus>,
    consumer: JoinHandle<()>,
    /// The log seq of the last event this node's consumer delivered.
    delivered: Arc<AtomicI64>,
}

fn other(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Other(format!("{what}: {e}"))
}

impl NatsBus {
    /// Connect to `url` (`nats://HOST:PORT`), create the stream if it is not there, and start
    /// this node's consumer.
    pub async fn connect(url: &str, options: NatsOptions) -> Result<NatsBus, BusError> {
        let client = tokio::time::timeout(Duration::from_secs(10), async_nats::connect(url))
            .await
            .map_err(|_| BusError::Other(format!("cannot reach NATS at {url} within 10 s")))?
            .map_err(|e| other(&format!("cannot connect to NATS at {url}"), e))?;
        let js = jetstream::new(client);
        let config = StreamConfig {
            name: options.stream.clone(),
            subjects: vec![format!("{}.>", options.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            max_age: options.max_age,
            duplicate_window: options.duplicate_window,
            ..Default::default()
        };
        let mut stream = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| other(&format!("cannot open the JetStream stream {} (is JetStream enabled: -js?)", options.stream), e))?;
        // This node delivers from now on (subscribers replay older sightings from the log).
        let start = stream.info().await.map_err(|e| other("stream info", e))?.state.last_sequence + 1;
        let local = Arc::new(MemoryBus::new());
        let delivered = Arc::new(AtomicI64::new(i64::MIN));
        let consumer = tokio::spawn(consume(stream, options.subject_prefix.clone(), start, local.clone(), delivered.clone()));
        Ok(NatsBus { js, options, local, consumer, delivered })
    }

    /// The log seq of the last event this node delivered to its subscribers.
    pub fn delivered(&self) -> Option<i64> {
        let v = self.delivered.load(Ordering::SeqCst);
        (v != i64::MIN).then_some(v)
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        self.consumer.abort();
    }
}

/// This node's consumer: an ordered consumer from `start`, made again after the last stream
/// sequence delivered if it breaks.
async fn consume(stream: jetstream::stream::Stream, prefix: String, mut start: u64, local: Arc<MemoryBus>, delivered: Arc<AtomicI64>) {
    loop {
        let config = jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{prefix}.>"),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(c) => c.messages().await.map_err(|e| other("consumer messages", e)),
            Err(e) => Err(other("create consumer", e)),
        };
        match messages {
            Ok(mut messages) => {
                while let Some(next) = messages.next().await {
                    let msg = match next {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!("bus: the NATS consumer failed ({e}); resuming after stream sequence {}", start - 1);
                            break;
                        }
                    };
                    if let Ok(info) = msg.info() {
                        start = info.stream_sequence + 1;
                    }
                    match serde_json::from_slice::<LoggedSighting>(&msg.payload) {
                        Ok(s) => {
                            if s.seq <= delivered.load(Ordering::SeqCst) {
                                continue;
                            }
                            delivered.store(s.seq, Ordering::SeqCst);
                            let _ = local.publish(vec![Arc::new(Event::new(s))]).await;
                        }
                        Err(e) => tracing::warn!("bus: skipping a message on {} that is not a sighting: {e}", msg.subject),
                    }
                }
            }
            Err(e) => tracing::warn!("bus: {e}; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, events: Vec<Arc<Event>>) -> Result<(), BusError> {
        // Send them all, then await the acks in order (the stream stores them in send order).
        let mut acks = Vec::with_capacity(events.len());
        for ev in &events {
            let s = &ev.sighting;
            let payload = serde_json::to_vec(s).map_err(|e| other("encode", e))?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, s.seq.to_string().as_str());
            let subject = format!("{}.{}", self.options.subject_prefix, s.feed_id);
            let ack = self.js.publish_with_headers(subject, headers, payload.into()).await.map_err(|e| other("publish", e))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| other("publish ack", e))?;
        }
        Ok(())
    }

    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, BusError> {
        self.local.subscribe(options).await
    }

    fn subscribers(&self) -> usize {
        self.local.subscribers()
    }

    fn shared(&self) -> bool {
        true
    }

    async fn last_published(&self) -> Result<Option<i64>, BusError> {
        let mut stream = self.js.get_stream(&self.options.stream).await.map_err(|e| other("get stream", e))?;
        let last = stream.info().await.map_err(|e| other("stream info", e))?.state.last_sequence;
        if last == 0 {
            return Ok(None);
        }
        match stream.get_raw_message(last).await {
            Ok(m) => {
                let s: LoggedSighting = serde_json::from_slice(&m.payload).map_err(|e| other("decode the last message", e))?;
                Ok(Some(s.seq))
            }
            // Gone (expired or deleted): start from the log's end.
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_and_prefix_come_off_the_url() {
        let (server, o) = NatsOptions::from_url("nats://127.0.0.1:4222?stream=HUB_A&prefix=hub_a.sightings").unwrap();
        assert_eq!(server, "nats://127.0.0.1:4222");
        assert_eq!((o.stream.as_str(), o.subject_prefix.as_str()), ("HUB_A", "hub_a.sightings"));
        let (server, o) = NatsOptions::from_url("nats://h:4222").unwrap();
        assert_eq!((server.as_str(), o.stream.as_str(), o.subject_prefix.as_str()), ("nats://h:4222", "APIARY_SIGHTINGS", "apiary.sightings"));
        for bad in ["stream=", "stream=a.b", "stream=a b", "prefix=a..b", "prefix=a.>", "prefix=a.*", "colour=red"] {
            assert!(NatsOptions::from_url(&format!("nats://h:4222?{bad}")).is_err(), "{bad}");
        }
    }
}
