//! The same bus tests on both buses: the in-process [`MemoryBus`] and the NATS JetStream
//! [`NatsBus`] (at `APIARY_TEST_NATS`, default `nats://127.0.0.1:4222`, each test on a stream
//! and subjects of its own, deleted afterwards). When NATS cannot be reached the NATS tests
//! fail if `CI` is set (CI must run them) and are skipped, with a note, otherwise.

use apiary_bus::*;
use apiary_core::IType;
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, NewSighting, Store, Tlp};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn nats_url() -> String {
    std::env::var("APIARY_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A bus under test and how to remove what it left behind.
struct Fresh {
    bus: Arc<dyn Bus>,
    cleanup: Option<(String, String)>,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some((url, stream)) = self.cleanup.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(c) = async_nats::connect(url).await {
                        let _ = async_nats::jetstream::new(c).delete_stream(stream).await;
                    }
                });
            })
            .join();
        }
    }
}

async fn memory() -> Option<Fresh> {
    Some(Fresh { bus: Arc::new(MemoryBus::new()), cleanup: None })
}

fn nats_options() -> NatsOptions {
    let tag = format!("{:08x}", rand::random::<u32>());
    NatsOptions { stream: format!("APIARY_TEST_{tag}"), subject_prefix: format!("apiary_test_{tag}.sightings"), ..Default::default() }
}

async fn nats_with(options: NatsOptions) -> Option<Fresh> {
    match NatsBus::connect(&nats_url(), options.clone()).await {
        Ok(bus) => Some(Fresh { bus: Arc::new(bus), cleanup: Some((nats_url(), options.stream)) }),
        Err(e) if std::env::var_os("CI").is_some() => panic!("NATS at {} is unreachable under CI ({e}): start it (see .ci/run)", nats_url()),
        Err(e) => {
            eprintln!("skipped: NATS at {} is unreachable ({e}); set APIARY_TEST_NATS or start it", nats_url());
            None
        }
    }
}

async fn nats() -> Option<Fresh> {
    nats_with(nats_options()).await
}

fn event(seq: i64, feed_id: i64) -> Arc<Event> {
    let now = chrono::Utc::now();
    Arc::new(Event::new(LoggedSighting {
        seq,
        feed_id,
        feed: format!("alice/f{feed_id}"),
        record_id: seq,
        itype: IType::Ipv4,
        indicator: format!("192.0.2.{}", seq % 250),
        reserved: None,
        observed_at: now,
        observed_until: None,
        received_at: now,
        tags: vec!["scanner".into()],
        portlist: vec![22],
        protocol: Some("tcp".into()),
        description: None,
        tlp: Tlp::Green,
        claimed_confidence: None,
        sensor: None,
        count: 1,
    }))
}

async fn next_event(sub: &mut Subscription) -> Arc<Event> {
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(Some(Delivery::Event(e))) => e,
        Ok(other) => panic!("expected an event, got {other:?}"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

macro_rules! bus_tests {
    ($($fresh:ident),*) => { $(
        mod $fresh {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn feed_subscribers_get_their_feeds_and_the_firehose_everything() {
                let Some(f) = super::$fresh().await else { return };
                super::feed_subscribers_get_their_feeds_and_the_firehose_everything(f.bus.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_full_subscriber_lags_alone() {
                let Some(f) = super::$fresh().await else { return };
                super::a_full_subscriber_lags_alone(f.bus.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn followers_get_every_committed_sighting_once_in_order() {
                let Some(f) = super::$fresh().await else { return };
                super::followers_get_every_committed_sighting_once_in_order(f.bus.clone()).await;
            }
        }
    )* };
}

bus_tests!(memory, nats);

async fn feed_subscribers_get_their_feeds_and_the_firehose_everything(bus: Arc<dyn Bus>) {
    let mut all = bus.subscribe(SubscribeOptions::all(16)).await.unwrap();
    let mut one = bus.subscribe(SubscribeOptions { feeds: Some(vec![2]), buffer: 16 }).await.unwrap();
    assert_eq!(bus.subscribers(), 2);
    bus.publish(vec![event(1, 1), event(2, 2), event(3, 1)]).await.unwrap();
    for want in [1, 2, 3] {
        let e = next_event(&mut all).await;
        assert_eq!(e.seq(), want);
        assert_eq!(e.sighting.indicator, format!("192.0.2.{want}"), "the sighting arrives whole");
    }
    let e = next_event(&mut one).await;
    assert_eq!((e.seq(), e.sighting.feed_id), (2, 2));
    bus.publish(vec![event(4, 2)]).await.unwrap();
    assert_eq!(next_event(&mut one).await.seq(), 4, "nothing of feed 1 in between");
}

async fn a_full_subscriber_lags_alone(bus: Arc<dyn Bus>) {
    let mut slow = bus.subscribe(SubscribeOptions::all(2)).await.unwrap();
    let mut fast = bus.subscribe(SubscribeOptions::all(100)).await.unwrap();
    bus.publish((1..=5).map(|s| event(s, 1)).collect()).await.unwrap();
    for want in 1..=5 {
        assert_eq!(next_event(&mut fast).await.seq(), want);
    }
    let mut got = vec![];
    loop {
        match tokio::time::timeout(WAIT, slow.recv()).await.expect("a lag notice in time") {
            Some(Delivery::Event(e)) => got.push(e.seq()),
            Some(Delivery::Lagged { resume_after }) => {
                assert_eq!(resume_after, 2, "seq 3 was the first it missed");
                break;
            }
            None => panic!("no lag notice"),
        }
    }
    assert_eq!(got, vec![1, 2]);
}

fn sighting(feed_id: i64, reporter: i64, i: usize) -> NewSighting {
    let now = chrono::Utc::now();
    NewSighting {
        feed_id,
        reporter_id: reporter,
        itype: IType::Ipv4,
        value: format!("198.51.100.{}", i % 250),
        reserved: None,
        observed_at: now,
        observed_until: None,
        received_at: now,
        tags: vec![],
        ports: vec![],
        protocol: None,
        description: None,
        tlp: Tlp::Green,
        claimed_confidence: None,
        sensor: None,
        count: 1,
        extra: serde_json::Value::Null,
        idempotency_key: None,
    }
}

/// The whole path: appends to a store, the feeder publishes the log, a follower that started
/// before gets every sighting once, in seq order, and one that starts from a cursor replays.
async fn followers_get_every_committed_sighting_once_in_order(bus: Arc<dyn Bus>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let u = store.create_user("alice", false).await.unwrap();
    let feed = store.create_feed(NewFeed { owner: "alice".into(), name: "hp".into(), ..Default::default() }).await.unwrap();
    let opts = FeederOptions { lease_ttl: Duration::from_secs(2), ..FeederOptions::default() };
    let feeder = LogFeeder::start(store.clone(), bus.clone(), opts).await.unwrap();
    let mut live = Follow::start(store.clone(), bus.clone(), None, None, 64).await.unwrap();
    let mut seqs = Vec::new();
    for b in 0..10 {
        let out = store.append_sightings((0..7).map(|i| sighting(feed.id, u.id, b * 7 + i)).collect()).await.unwrap();
        seqs.extend(out.iter().map(|o| o.seq.unwrap()));
    }
    let mut got = Vec::new();
    while got.len() < seqs.len() {
        match tokio::time::timeout(WAIT, live.next()).await.expect("every sighting in time").unwrap() {
            Some(FollowItem::Event(e)) => got.push(e.seq()),
            Some(FollowItem::Lagged { .. }) => {}
            None => panic!("bus closed"),
        }
    }
    assert_eq!(got, seqs, "each once, in order");
    // A follower from a cursor replays the rest from the log, then goes live.
    let mut late = Follow::start(store.clone(), bus.clone(), Some(vec![feed.id]), Some(seqs[59]), 64).await.unwrap();
    let out = store.append_sightings(vec![sighting(feed.id, u.id, 999)]).await.unwrap();
    let mut tail = Vec::new();
    while tail.len() < 11 {
        if let Some(FollowItem::Event(e)) = tokio::time::timeout(WAIT, late.next()).await.expect("in time").unwrap() {
            tail.push(e.seq());
        }
    }
    let mut want: Vec<i64> = seqs[60..].to_vec();
    want.push(out[0].seq.unwrap());
    assert_eq!(tail, want);
    feeder.shutdown().await;
}

/// Two nodes on one NATS stream: what node A's feeder publishes reaches node B's subscribers;
/// a node that starts later resumes publishing after the stream's last seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_two_nodes_share_one_stream() {
    let options = nats_options();
    let Some(a) = nats_with(options.clone()).await else { return };
    let b = NatsBus::connect(&nats_url(), options.clone()).await.unwrap();
    let mut on_b = b.subscribe(SubscribeOptions { feeds: Some(vec![7]), buffer: 16 }).await.unwrap();
    a.bus.publish(vec![event(10, 7), event(11, 8), event(12, 7)]).await.unwrap();
    assert_eq!(next_event(&mut on_b).await.seq(), 10);
    assert_eq!(next_event(&mut on_b).await.seq(), 12);
    assert_eq!(b.last_published().await.unwrap(), Some(12), "where a new feeder resumes");
    // Published again (a retry, or two feeders during a lease handover): stored once.
    a.bus.publish(vec![event(12, 7), event(13, 7)]).await.unwrap();
    assert_eq!(next_event(&mut on_b).await.seq(), 13, "no repeat of 12");
    assert!(a.bus.shared() && b.shared());
}
