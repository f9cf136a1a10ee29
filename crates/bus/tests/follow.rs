//! The feeder and `Follow` over a real SQLite store: replay then live, no gaps, no repeats,
//! and a lag caught up from the log.

use apiary_bus::{Bus, FeederOptions, Follow, FollowItem, LogFeeder, MemoryBus};
use apiary_core::IType;
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, NewSighting, Store, Tlp};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn setup() -> (tempfile::TempDir, Arc<dyn Store>, i64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let user = store.create_user("alice", false).await.unwrap();
    let feed = store.create_feed(NewFeed { owner: "alice".into(), name: "pots".into(), ..Default::default() }).await.unwrap();
    (dir, store, feed.id, user.id)
}

async fn append(store: &Arc<dyn Store>, feed_id: i64, reporter_id: i64, from: u32, n: u32) {
    let now = chrono::Utc::now();
    let batch = (from..from + n)
        .map(|i| NewSighting {
            feed_id,
            reporter_id,
            itype: IType::Ipv4,
            value: format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
            reserved: Some("private".into()),
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
        })
        .collect();
    store.append_sightings(batch).await.unwrap();
}

async fn take(follow: &mut Follow, n: usize, lags: &mut usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    tokio::time::timeout(WAIT, async {
        while seqs.len() < n {
            match follow.next().await.unwrap().expect("bus open") {
                FollowItem::Event(e) => seqs.push(e.seq()),
                FollowItem::Lagged { .. } => *lags += 1,
            }
        }
    })
    .await
    .expect("events arrive");
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_live_without_gaps_or_repeats() {
    let (_dir, store, feed, user) = setup().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    append(&store, feed, user, 0, 100).await;
    let feeder = LogFeeder::start(store.clone(), bus.clone(), FeederOptions::default()).await.unwrap();
    let mut follow = Follow::start(store.clone(), bus.clone(), None, Some(0), 64).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                append(&store, feed, user, 1000 + i * 50, 50).await;
            }
        })
    };
    let mut lags = 0;
    let seqs = take(&mut follow, 600, &mut lags).await;
    writer.await.unwrap();
    let want: Vec<i64> = (1..=600).collect();
    assert_eq!(seqs, want, "every entry once, in log order");
    assert_eq!(follow.cursor(), 600);
    feeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_catches_up_from_the_log() {
    let (_dir, store, feed, user) = setup().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let feeder = LogFeeder::start(store.clone(), bus.clone(), FeederOptions::default()).await.unwrap();
    // A buffer of 4 and nobody reading while 2,000 are appended: it must lag.
    let mut follow = Follow::start(store.clone(), bus.clone(), None, None, 4).await.unwrap();
    let mut lags = 0;
    append(&store, feed, user, 5000, 1).await;
    assert_eq!(take(&mut follow, 1, &mut lags).await, vec![1]);
    // The log is read to its end; the follower now waits on the bus (live).
    assert!(tokio::time::timeout(Duration::from_millis(300), follow.next()).await.is_err());
    for i in 0..20 {
        append(&store, feed, user, i * 100, 100).await;
    }
    tokio::time::timeout(WAIT, async {
        while feeder.published() < 2001 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let seqs = take(&mut follow, 2000, &mut lags).await;
    assert!(lags >= 1, "the follower was told it lagged");
    assert_eq!(seqs, (2..=2001).collect::<Vec<i64>>(), "nothing lost, nothing repeated");
    feeder.shutdown().await;
}

/// `next`, then everything `try_next` has at hand (what a stream writes in one go).
async fn take_batched(follow: &mut Follow, n: usize, lags: &mut usize, batches: &mut usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    tokio::time::timeout(WAIT, async {
        while seqs.len() < n {
            let mut item = follow.next().await.unwrap();
            *batches += 1;
            while let Some(it) = item {
                match it {
                    FollowItem::Event(e) => seqs.push(e.seq()),
                    FollowItem::Lagged { .. } => *lags += 1,
                }
                item = follow.try_next();
            }
        }
    })
    .await
    .expect("events arrive");
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_what_is_queued_keeps_order_through_replay_live_and_lag() {
    let (_dir, store, feed, user) = setup().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    append(&store, feed, user, 0, 300).await;
    let feeder = LogFeeder::start(store.clone(), bus.clone(), FeederOptions::default()).await.unwrap();
    // A small buffer: the live part may lag and be caught up from the log in between.
    let mut follow = Follow::start(store.clone(), bus.clone(), None, Some(0), 8).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                append(&store, feed, user, 1000 + i * 50, 50).await;
            }
        })
    };
    let (mut lags, mut batches) = (0, 0);
    let seqs = take_batched(&mut follow, 1300, &mut lags, &mut batches).await;
    writer.await.unwrap();
    assert_eq!(seqs, (1..=1300).collect::<Vec<i64>>(), "every entry once, in log order");
    assert!(batches < 1300, "queued events were taken without waiting ({batches} waits)");
    assert!(follow.try_next().is_none(), "nothing more at hand");
    feeder.shutdown().await;
}
