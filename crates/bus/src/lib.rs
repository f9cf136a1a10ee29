//! The bus: every sighting the record stage has **committed**, fanned out to the streams of
//! the serve stage (the CSIRTG firehose, the native stream, webhooks, hpfeeds' `apiary.sightings`).
//!
//! - [`Bus`] is the interface: publish committed events in log order, subscribe with a bounded
//!   buffer (to every feed, or to a set of feeds), and learn of lag with the position to resume
//!   from. [`memory::MemoryBus`] is the in-process implementation; [`nats::NatsBus`] the NATS
//!   JetStream one for several nodes: a feed is a subject (`apiary.sightings.<feed id>`) of one
//!   durable stream. [`open`] picks one from a URL.
//! - [`feeder::LogFeeder`] is the one publisher: it tails the sightings log by seq and publishes
//!   what it finds, so nothing is streamed before it is durable, whichever path wrote it (the
//!   API, the CSIRTG routes, the hpfeeds broker, or `apiary import` into the same data directory).
//! - [`follow::Follow`] is what every consumer uses: live events from the bus, after replaying
//!   from the log what came after a cursor, without gaps or repeats; a lag is caught up from
//!   the log the same way.

pub mod feeder;
pub mod follow;
pub mod memory;
pub mod nats;

pub use apiary_store::LoggedSighting;
pub use feeder::{FeederOptions, LogFeeder};
pub use follow::{Follow, FollowItem};
pub use memory::MemoryBus;
pub use nats::{NatsBus, NatsOptions};

use apiary_core::format_time;
use async_trait::async_trait;
use std::any::Any;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// One committed sighting on the bus, with its native JSON and its wire forms made once for
/// every subscriber: with 1,000 streams, encoding per stream would cost more than the rest.
#[derive(Debug)]
pub struct Event {
    pub sighting: LoggedSighting,
    json: OnceLock<String>,
    wire: [OnceLock<Wire>; WIRE_FORMS],
}

/// How many wire forms an event can keep (the streams number theirs: SSE frame, websocket
/// text, ActionCable frame).
pub const WIRE_FORMS: usize = 4;

/// One encoded form and the key it was made under (the stream's enrichment tables, say).
struct Wire {
    key: Arc<dyn Any + Send + Sync>,
    value: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

impl Event {
    pub fn new(sighting: LoggedSighting) -> Event {
        Event { sighting, json: OnceLock::new(), wire: Default::default() }
    }

    /// Wire form number `form`: made by `make` for the first subscriber that asks, shared (a
    /// cheap clone: `Bytes`, an `Arc`) by the others. `key` is what the bytes depend on besides
    /// the event (the enrichment tables in use): asked with another key (the tables were
    /// reloaded meanwhile), the form is made afresh and not kept.
    pub fn wire<K, V>(&self, form: usize, key: &Arc<K>, make: impl FnOnce() -> V) -> V
    where
        K: Any + Send + Sync,
        V: Any + Clone + Send + Sync,
    {
        self.with_wire(form, key, make, V::clone)
    }

    /// [`Event::wire`] lent to `read` instead of cloned: a stream that copies the bytes into its
    /// next write touches no reference count another thread is touching too.
    pub fn with_wire<K, V, R>(&self, form: usize, key: &Arc<K>, make: impl FnOnce() -> V, read: impl FnOnce(&V) -> R) -> R
    where
        K: Any + Send + Sync,
        V: Any + Send + Sync,
    {
        let Some(slot) = self.wire.get(form) else { return read(&make()) };
        if let Some(w) = slot.get() {
            let same_key = std::ptr::eq(Arc::as_ptr(&w.key) as *const u8, Arc::as_ptr(key) as *const u8);
            return match w.value.downcast_ref::<V>() {
                Some(v) if same_key => read(v),
                _ => read(&make()),
            };
        }
        // Two subscribers racing both make it; one is kept, both are right.
        let v = make();
        let r = read(&v);
        let _ = slot.set(Wire { key: key.clone(), value: Box::new(v) });
        r
    }

    /// The position in the sightings log.
    pub fn seq(&self) -> i64 {
        self.sighting.seq
    }

    /// The sighting as a native JSON object (docs/firehose.md, "event fields").
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| native_json_text(&self.sighting))
    }
}

/// The native field names of a streamed sighting. `provider` repeats `feed` for CSIRTG clients.
pub fn native_json(s: &LoggedSighting) -> serde_json::Value {
    serde_json::json!({
        "seq": s.seq,
        "id": s.record_id,
        "indicator": s.indicator,
        "itype": s.itype,
        "feed": s.feed,
        "provider": s.feed,
        "tags": s.tags,
        "firsttime": format_time(s.observed_at),
        "lasttime": format_time(s.observed_until.unwrap_or(s.observed_at)),
        "reporttime": format_time(s.received_at),
        "count": s.count,
        "portlist": s.portlist,
        "protocol": s.protocol,
        "description": s.description,
        "tlp": s.tlp,
        "claimed_confidence": s.claimed_confidence,
        "reserved": s.reserved,
        "sensor": s.sensor,
    })
}

/// [`native_json`] as text, written field by field: the same bytes (serde_json writes an
/// object's keys sorted), without building the map, which cost more than the rest of a
/// stream's work per event.
fn native_json_text(s: &LoggedSighting) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(512);
    let mut sep = b'{';
    macro_rules! field {
        ($key:literal, $value:expr) => {
            out.push(sep);
            sep = b',';
            out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
            // Writing plain values to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &$value);
        };
    }
    field!("claimed_confidence", s.claimed_confidence);
    field!("count", s.count);
    field!("description", s.description);
    field!("feed", s.feed);
    field!("firsttime", time_json(s.observed_at));
    field!("id", s.record_id);
    field!("indicator", s.indicator);
    field!("itype", s.itype);
    field!("lasttime", time_json(s.observed_until.unwrap_or(s.observed_at)));
    field!("portlist", s.portlist);
    field!("protocol", s.protocol);
    field!("provider", s.feed);
    field!("reporttime", time_json(s.received_at));
    field!("reserved", s.reserved);
    field!("sensor", s.sensor);
    field!("seq", s.seq);
    field!("tags", s.tags);
    field!("tlp", s.tlp);
    let _ = sep;
    out.push(b'}');
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`format_time`]'s text as a JSON string, without parsing a format each time (three per
/// event, it was most of writing one); anything unusual (a year outside 0–9999, a leap
/// second) goes through `format_time` itself.
fn time_json(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return format_time(t);
    }
    let (micros, (h, m, s)) = (nanos / 1000, (t.hour(), t.minute(), t.second()));
    if micros == 0 {
        format!("{year:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}Z", t.month(), t.day())
    } else {
        format!("{year:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{micros:06}Z", t.month(), t.day())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is closed")]
    Closed,
    #[error("bus error: {0}")]
    Other(String),
}

/// What a subscriber wants.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Only these feeds (ids); `None`: every feed (the firehose). Authorization is the
    /// consumer's job: the bus carries everything.
    pub feeds: Option<Vec<i64>>,
    /// Events that may wait for this subscriber; one more and it lags (never blocks others).
    pub buffer: usize,
}

impl SubscribeOptions {
    pub fn all(buffer: usize) -> SubscribeOptions {
        SubscribeOptions { feeds: None, buffer }
    }
}

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<Event>),
    /// The subscriber fell behind and was dropped: everything up to and including
    /// `resume_after` was delivered; read the log after it, then subscribe again.
    Lagged { resume_after: i64 },
}

/// The publish/subscribe interface every bus implements.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publish committed events, in log order. Never waits for a subscriber: one whose buffer
    /// is full is dropped with a lag notice.
    async fn publish(&self, events: Vec<Arc<Event>>) -> Result<(), BusError>;
    /// Subscribe from now on.
    async fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, BusError>;
    /// Subscribers connected now.
    fn subscribers(&self) -> usize;
    /// Whether several hub nodes share this bus. Then one [`LogFeeder`] publishes for all of
    /// them, under the `bus-feeder` job lease; otherwise every process feeds its own bus.
    fn shared(&self) -> bool {
        false
    }
    /// The log seq of the last event the bus holds, if it keeps any (where a new feeder
    /// resumes); `None`: start from the log's end.
    async fn last_published(&self) -> Result<Option<i64>, BusError> {
        Ok(None)
    }
}

/// Open the bus a URL names: `memory` (or empty) is the in-process [`MemoryBus`];
/// `nats://HOST:PORT[?stream=NAME&prefix=SUBJECT.PREFIX]` the [`NatsBus`] (default stream
/// `APIARY_SIGHTINGS` on `apiary.sightings.<feed id>`).
pub async fn open(url: &str) -> Result<Arc<dyn Bus>, BusError> {
    let url = url.trim();
    if url.is_empty() || url == "memory" || url == "memory:" {
        return Ok(Arc::new(MemoryBus::new()));
    }
    if url.starts_with("nats://") || url.starts_with("tls://") {
        let (server, options) = NatsOptions::from_url(url)?;
        return Ok(Arc::new(NatsBus::connect(&server, options).await?));
    }
    Err(BusError::Other(format!("bus `{url}`: use `memory` or nats://HOST:PORT")))
}

/// A bounded subscription. Dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Arc<Event>>,
    lag: Arc<LagMark>,
}

/// Set by the publisher when it drops a subscriber for lagging: the last seq it delivered.
#[derive(Debug)]
pub struct LagMark(AtomicI64);

impl LagMark {
    const NONE: i64 = i64::MIN;

    pub fn new() -> Arc<LagMark> {
        Arc::new(LagMark(AtomicI64::new(Self::NONE)))
    }

    pub fn set(&self, resume_after: i64) {
        self.0.store(resume_after, Ordering::SeqCst);
    }

    fn get(&self) -> Option<i64> {
        let v = self.0.load(Ordering::SeqCst);
        (v != Self::NONE).then_some(v)
    }
}

impl Subscription {
    /// For bus implementations: the receiving end of a bounded channel the bus fills, and the
    /// mark the bus sets before closing the channel on lag.
    pub fn new(rx: mpsc::Receiver<Arc<Event>>, lag: Arc<LagMark>) -> Subscription {
        Subscription { rx, lag }
    }

    /// An event or lag notice already queued, without waiting; `None` when nothing is (or the
    /// bus closed: [`Subscription::recv`] says which).
    pub fn try_recv(&mut self) -> Option<Delivery> {
        match self.rx.try_recv() {
            Ok(ev) => Some(Delivery::Event(ev)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => self.lag.get().map(|resume_after| Delivery::Lagged { resume_after }),
        }
    }

    /// The next event, a lag notice (then the subscription is over), or `None` when the bus
    /// closed.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match self.rx.recv().await {
            Some(ev) => Some(Delivery::Event(ev)),
            None => self.lag.get().map(|resume_after| Delivery::Lagged { resume_after }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiary_core::IType;
    use apiary_store::Tlp;
    use chrono::{Datelike, TimeZone};

    #[test]
    fn the_written_json_is_the_maps_text() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 16, 11, 7).unwrap();
        let plain = LoggedSighting {
            seq: 4711,
            feed_id: 3,
            feed: "alice/pots".into(),
            record_id: 812,
            itype: IType::Ipv4,
            indicator: "203.0.113.7".into(),
            reserved: None,
            observed_at: t,
            observed_until: None,
            received_at: t + chrono::Duration::microseconds(1_120_345),
            tags: vec![],
            portlist: vec![],
            protocol: None,
            description: None,
            tlp: Tlp::Green,
            claimed_confidence: None,
            sensor: None,
            count: 1,
        };
        let full = LoggedSighting {
            itype: IType::Url,
            indicator: "http://x.example/\"a\"\\b\u{1}é".into(),
            reserved: Some("documentation".into()),
            observed_until: Some(t + chrono::Duration::seconds(5)),
            tags: vec!["scanner".into(), "line\nbreak".into()],
            portlist: vec![22, 2222],
            protocol: Some("tcp".into()),
            description: Some("tab\there ✓".into()),
            tlp: Tlp::Amber,
            claimed_confidence: Some(7.5),
            sensor: Some("s1".into()),
            count: 3,
            ..plain.clone()
        };
        let odd = LoggedSighting { claimed_confidence: Some(f64::NAN), ..plain.clone() };
        for s in [plain, full, odd] {
            assert_eq!(native_json_text(&s), native_json(&s).to_string());
            assert_eq!(Event::new(s.clone()).json(), native_json(&s).to_string());
        }
    }

    #[test]
    fn times_are_format_times_text() {
        let mut t = chrono::Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        let mut n: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            assert_eq!(time_json(t), format_time(t), "{t:?}");
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            // Whole seconds half the time, any microsecond (and a stray nanosecond) otherwise.
            let step = chrono::Duration::seconds((n % 40_000_000) as i64)
                + if n & 1 == 0 { chrono::Duration::zero() } else { chrono::Duration::nanoseconds((n >> 20) as i64 % 1_000_000_000) };
            t = if t.year() > 9000 { chrono::Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap() } else { t + step * 97 };
        }
        for odd in [
            chrono::Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            chrono::Utc.with_ymd_and_hms(-1, 6, 1, 12, 0, 0).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap().and_utc(),
        ] {
            assert_eq!(time_json(odd), format_time(odd));
        }
    }
}
