//! The SQLite store: every conformance test, plus what only an embedded store promises
//! (a bounded write queue, durability across restarts and crashes, several processes on one
//! data directory, online backup).

use apiary_core::IType;
use apiary_store::sqlite::{Durability, SqliteOptions, SqliteStore, DB_FILE};
use apiary_store::*;
use chrono::Utc;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

apiary_store::conformance_tests!(fresh);

/// A user `alice` with a public feed `alice/hp`.
async fn alice_feed(s: &dyn Store) -> (User, Feed) {
    let u = match s.get_user("alice").await.unwrap() {
        Some(u) => u,
        None => s.create_user("alice", false).await.unwrap(),
    };
    let f = match s.get_feed("alice", "hp").await.unwrap() {
        Some(f) => f,
        None => s.create_feed(NewFeed { owner: "alice".into(), name: "hp".into(), ..Default::default() }).await.unwrap(),
    };
    (u, f)
}

fn sighting(f: &Feed, u: &User, value: &str) -> NewSighting {
    NewSighting {
        feed_id: f.id,
        reporter_id: u.id,
        itype: IType::Ipv4,
        value: value.into(),
        reserved: None,
        observed_at: Utc::now(),
        observed_until: None,
        received_at: Utc::now(),
        tags: vec!["scanner".into()],
        ports: vec![22],
        protocol: Some("tcp".into()),
        description: None,
        tlp: Tlp::Green,
        claimed_confidence: None,
        sensor: None,
        count: 1,
        extra: serde_json::json!({"k": 1}),
        idempotency_key: None,
    }
}

#[tokio::test]
async fn schema_version_is_tracked_and_reopen_is_idempotent() {
    let (dir, store) = fresh().await;
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    drop(store);
    let c = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
    assert_eq!(v as usize, files, "one schema version per migration file");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        c.execute_batch(include_str!("../migrations/sqlite/0001_init.sql")).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO users (id, name, admin, created_at) VALUES (1, 'alice', 0, 0), (2, 'bob', 0, 0);
             INSERT INTO feeds (id, owner_id, name, visibility, created_at, updated_at) VALUES (1, 1, 'hp', 'public', 0, 0);
             INSERT INTO indicators (value, itype, firsttime, lasttime, count, feeds, sources)
                 VALUES ('192.0.2.1', 'ipv4', 0, 0, 2, 1, 2);
             INSERT INTO feed_records (id, feed_id, value, itype, firsttime, lasttime, reporttime, count, tags, ports,
                 tlp, created_at, updated_at) VALUES (1, 1, '192.0.2.1', 'ipv4', 0, 0, 0, 2, '[]', '[]', 'green', 0, 0);
             INSERT INTO indicator_sources (value, reporter_id) VALUES ('192.0.2.1', 2), ('192.0.2.1', 1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.get_indicator("192.0.2.1").await.unwrap().unwrap().sources, 2);
    let alice = store.get_user("alice").await.unwrap().unwrap();
    let feed = store.get_feed("alice", "hp").await.unwrap().unwrap();
    // A known reporter adds no source; the migrated reporter list is in use.
    store.append_sightings(vec![sighting(&feed, &alice, "192.0.2.1")]).await.unwrap();
    let sum = store.get_indicator("192.0.2.1").await.unwrap().unwrap();
    assert_eq!((sum.sources, sum.count, sum.feeds), (2, 3, 1));
}

#[tokio::test]
async fn only_the_token_hash_is_in_the_file() {
    let (dir, store) = fresh().await;
    store.create_user("alice", false).await.unwrap();
    let (info, secret) = store.create_token("alice", Scopes::parse("read").unwrap(), None, None).await.unwrap();
    let c = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let hash: Vec<u8> = c.query_row("SELECT hash FROM tokens WHERE id = ?1", [info.id], |r| r.get(0)).unwrap();
    assert_eq!(hash, Sha256::digest(secret.as_bytes()).to_vec());
    drop(store);
    // Neither the database nor its WAL holds the plaintext anywhere.
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_busy_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions { queue_capacity: 2, busy_timeout: Duration::from_secs(20), ..Default::default() };
    let store = Arc::new(SqliteStore::open_with(dir.path(), opts).unwrap());
    let (u, f) = alice_feed(&*store).await;

    // Another process holds the write lock: the writer waits inside its busy timeout.
    let blocker = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let spawn_append = |v: String| {
        let (store, f, u) = (store.clone(), f.clone(), u.clone());
        tokio::spawn(async move { store.append_sightings(vec![sighting(&f, &u, &v)]).await })
    };
    // One request waits in the writer, two in the queue; the next one is refused. Requests
    // are sent one at a time until one comes back, whatever the machine's speed.
    let mut waiting = Vec::new();
    let mut refused = None;
    for i in 0..10 {
        let h = spawn_append(format!("192.0.2.{i}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        if h.is_finished() {
            refused = Some(h.await.unwrap());
            break;
        }
        waiting.push(h);
    }
    assert!(matches!(refused, Some(Err(StoreError::Busy))), "got {refused:?}");
    assert!((2..=3).contains(&waiting.len()), "{} requests waited with a queue of 2", waiting.len());

    let started = Instant::now();
    let res = store.append_sightings(vec![sighting(&f, &u, "198.51.100.1")]).await;
    assert!(matches!(res, Err(StoreError::Busy)), "got {res:?}");
    assert!(started.elapsed() < Duration::from_millis(500), "Busy comes at once, not after a wait");

    blocker.execute_batch("COMMIT").unwrap();
    let accepted = waiting.len() as i64;
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    // Once drained, appends are accepted again.
    store.append_sightings(vec![sighting(&f, &u, "198.51.100.1")]).await.unwrap();
    assert_eq!(store.stats().await.unwrap().sightings, accepted + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (u, f) = alice_feed(&*store).await;
    // Hold the write lock so that everything below queues up and commits as one group.
    let blocker = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut good = Vec::new();
    for i in 0..10 {
        let (store, f, u) = (store.clone(), f.clone(), u.clone());
        good.push(tokio::spawn(async move { store.append_sightings(vec![sighting(&f, &u, &format!("192.0.2.{i}"))]).await }));
    }
    let mut ghost = f.clone();
    ghost.id += 1000;
    let bad_append = {
        let (store, u) = (store.clone(), u.clone());
        // The good sighting comes first in the request: it must be rolled back with the rest.
        tokio::spawn(async move {
            store.append_sightings(vec![sighting(&f, &u, "198.51.100.1"), sighting(&ghost, &u, "198.51.100.2")]).await
        })
    };
    let conflict = {
        let store = store.clone();
        tokio::spawn(async move { store.create_user("alice", false).await })
    };
    let new_user = {
        let store = store.clone();
        tokio::spawn(async move { store.create_user("bob", false).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.execute_batch("COMMIT").unwrap();

    for g in good {
        assert!(!g.await.unwrap().unwrap()[0].duplicate);
    }
    assert!(matches!(bad_append.await.unwrap(), Err(StoreError::NotFound(_))));
    assert!(matches!(conflict.await.unwrap(), Err(StoreError::Conflict(_))));
    new_user.await.unwrap().unwrap();
    assert_eq!(store.get_indicator("198.51.100.1").await.unwrap(), None, "the failed request left nothing");
    assert_eq!(store.stats().await.unwrap().sightings, 10);
    assert!(store.get_user("bob").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_requests_queued_among_small_ones_commit_alone() {
    // Bulk batches (1,000 sightings or more) commit in a transaction of their own, between the
    // groups of small requests: a failing one takes nothing else with it, nothing is lost.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let (u, f) = alice_feed(&*store).await;
    let blocker = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let bulk = |prefix: u8, n: u32| -> Vec<NewSighting> {
        (0..n).map(|i| sighting(&f, &u, &format!("10.{prefix}.{}.{}", i / 256, i % 256))).collect()
    };
    let mut ghost = f.clone();
    ghost.id += 1000;
    let mut bad = bulk(2, 1_500);
    bad.push(sighting(&ghost, &u, "198.51.100.9"));
    let mut small = Vec::new();
    let mut heavy = Vec::new();
    for (i, batch) in [bulk(1, 1_500), bad, bulk(3, 2_000)].into_iter().enumerate() {
        for j in 0..4 {
            let (store, f, u) = (store.clone(), f.clone(), u.clone());
            let v = format!("192.0.2.{}", i * 4 + j);
            small.push(tokio::spawn(async move { store.append_sightings(vec![sighting(&f, &u, &v)]).await }));
        }
        let store = store.clone();
        heavy.push(tokio::spawn(async move { store.append_sightings(batch).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.execute_batch("COMMIT").unwrap();

    for s in small {
        assert!(!s.await.unwrap().unwrap()[0].duplicate);
    }
    let results: Vec<_> = futures_join(heavy).await;
    assert_eq!(results[0].as_ref().unwrap().len(), 1_500);
    assert!(matches!(results[1], Err(StoreError::NotFound(_))), "{:?}", results[1].as_ref().map(Vec::len));
    assert_eq!(results[2].as_ref().unwrap().len(), 2_000);
    assert_eq!(store.get_indicator("10.2.0.1").await.unwrap(), None, "the failed batch left nothing");
    assert_eq!(store.stats().await.unwrap().sightings, 12 + 1_500 + 2_000);
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Closing the store empties the WAL: an offline import must not leave hundreds of MB of log
/// for the next process (an export) to read back before its first query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_leaves_an_empty_wal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let (u, f) = alice_feed(&store).await;
        for batch in 0..20 {
            let items = (0..500).map(|i| sighting(&f, &u, &format!("203.0.{}.{}", batch, i % 250))).collect();
            store.append_sightings(items).await.unwrap();
        }
    }
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(len, 0, "{} is {len} bytes after the store closed", wal.display());
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.stats().await.unwrap().sightings, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret;
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let (u, f) = alice_feed(&store).await;
        secret = store.create_token("alice", Scopes::parse("read,write").unwrap(), None, None).await.unwrap().1;
        store.append_sightings(vec![sighting(&f, &u, "192.0.2.1"), sighting(&f, &u, "192.0.2.2")]).await.unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.authenticate(&secret).await.unwrap().unwrap().user, "alice");
    let page = store.query(&Query { value: Some("192.0.2.2".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].tags, vec!["scanner"]);
    assert_eq!(store.stats().await.unwrap().sightings, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_directory_see_each_other_at_once() {
    // The hub and an admin command in another process: no caches between them.
    let dir = tempfile::tempdir().unwrap();
    let hub = SqliteStore::open(dir.path()).unwrap();
    let admin = SqliteStore::open(dir.path()).unwrap();

    let bob = admin.create_user("bob", false).await.unwrap();
    assert_eq!(hub.get_user("bob").await.unwrap(), Some(bob.clone()));
    let (info, secret) = admin.create_token("bob", Scopes::parse("read,write").unwrap(), None, None).await.unwrap();
    assert_eq!(hub.authenticate(&secret).await.unwrap().unwrap().user_id, bob.id);
    let feed = admin.create_feed(NewFeed { owner: "bob".into(), name: "hp".into(), ..Default::default() }).await.unwrap();
    assert_eq!(hub.get_feed("bob", "hp").await.unwrap(), Some(feed.clone()));

    // Sightings imported by the other process are queryable at once, and aggregates merge.
    admin.append_sightings(vec![sighting(&feed, &bob, "198.51.100.1")]).await.unwrap();
    hub.append_sightings(vec![sighting(&feed, &bob, "198.51.100.1")]).await.unwrap();
    let rec = hub.query(&Query { value: Some("198.51.100.1".into()), ..Default::default() }).await.unwrap();
    assert_eq!(rec.items[0].count, 2);
    assert_eq!(admin.get_indicator("198.51.100.1").await.unwrap().unwrap().count, 2);

    admin.revoke_token("bob", info.id).await.unwrap();
    assert_eq!(hub.authenticate(&secret).await.unwrap(), None, "revocation is seen at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_appends_are_all_committed() {
    let (_dir, store) = fresh().await;
    let store = Arc::new(store);
    let (u, f) = alice_feed(&*store).await;
    let mut tasks = Vec::new();
    for client in 0..32 {
        let (store, u, f) = (store.clone(), u.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let out = store.append_sightings(vec![sighting(&f, &u, &format!("10.{client}.0.{i}"))]).await.unwrap();
                seqs.push(out[0].seq.unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 640, "every append got its own log position");
    let st = store.stats().await.unwrap();
    assert_eq!((st.sightings, st.records, st.indicators), (640, 640, 640));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_an_openable_consistent_copy() {
    let (dir, store) = fresh().await;
    let (u, f) = alice_feed(&store).await;
    store.append_sightings((0..100).map(|i| sighting(&f, &u, &format!("192.0.2.{i}"))).collect()).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join(DB_FILE);
    store.backup(&dest).await.unwrap();
    // Backing up over an existing file replaces it.
    store.append_sightings(vec![sighting(&f, &u, "198.51.100.1")]).await.unwrap();
    store.backup(&dest).await.unwrap();
    assert!(!out.path().join(format!("{DB_FILE}.partial")).exists());
    drop(store);
    let copy = SqliteStore::open(out.path()).unwrap();
    let st = copy.stats().await.unwrap();
    assert_eq!((st.users, st.feeds, st.sightings, st.indicators), (1, 1, 101, 101));
    assert!(dir.path().join(DB_FILE).exists());
}

/// Paginate a query to the end; the records' values in order.
async fn all_pages(store: &SqliteStore, mut q: Query) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let page = store.query(&q).await.unwrap();
        out.extend(page.items.into_iter().map(|r| r.indicator));
        match page.next {
            Some(n) => q.cursor = Some(n),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broad_and_narrow_filters_find_the_same_records() {
    // Over 1,000 matches makes a filter "broad": the query then walks the lasttime order
    // instead of starting from the filter's index. Both ways must give the same answer.
    let (_dir, store) = fresh().await;
    let (u, f) = alice_feed(&store).await;
    let batch: Vec<NewSighting> = (0..2500u32)
        .map(|i| {
            let mut s = sighting(&f, &u, &format!("10.1.{}.{}", i / 250, i % 250));
            if i % 500 == 0 {
                s.tags.push("rare".into());
            }
            s
        })
        .collect();
    store.append_sightings(batch).await.unwrap();
    let q = |f: fn(&mut Query)| {
        let mut q = Query { limit: 37, ..Default::default() };
        f(&mut q);
        q
    };
    let broad = all_pages(&store, q(|q| q.within = Some("10.1.0.0/16".into()))).await;
    assert_eq!(broad.len(), 2500);
    assert_eq!(broad.iter().collect::<std::collections::HashSet<_>>().len(), 2500);
    let narrow = all_pages(&store, q(|q| q.within = Some("10.1.3.0/24".into()))).await;
    assert_eq!(narrow.len(), 250);
    assert!(narrow.iter().all(|v| v.starts_with("10.1.3.")));
    assert_eq!(all_pages(&store, q(|q| q.tags = vec!["scanner".into()])).await.len(), 2500);
    let rare = all_pages(&store, q(|q| q.tags = vec!["scanner".into(), "rare".into()])).await;
    assert_eq!(rare.len(), 5);
    let both = all_pages(
        &store,
        q(|q| {
            q.within = Some("10.1.0.0/16".into());
            q.tags = vec!["rare".into()];
        }),
    )
    .await;
    assert_eq!(both, rare);
}

const CRASH_DIR_ENV: &str = "APIARY_STORE_CRASH_DIR";

/// Run by `a_kill_9_after_a_reply_loses_nothing` in a child process: append one sighting at
/// a time and print each acknowledged sequence number, until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of a_kill_9_after_a_reply_loses_nothing"]
async fn crash_child_appends_until_killed() {
    let dir = std::env::var(CRASH_DIR_ENV).expect("run by a_kill_9_after_a_reply_loses_nothing");
    let store = SqliteStore::open_with(
        std::path::Path::new(&dir),
        SqliteOptions { durability: Durability::Normal, ..Default::default() },
    )
    .unwrap();
    let (u, f) = alice_feed(&store).await;
    for i in 0u64.. {
        let out = store.append_sightings(vec![sighting(&f, &u, &format!("10.0.{}.{}", (i / 256) % 256, i % 256))]).await.unwrap();
        println!("acked {}", out[0].seq.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_after_a_reply_loses_nothing() {
    // NORMAL (the default) is the setting whose process-crash safety needs showing.
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_appends_until_killed", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 300 {
        let line = lines.next().expect("the child keeps appending").unwrap();
        if let Some(seq) = line.strip_prefix("acked ") {
            acked.push(seq.parse::<i64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no clean close
    child.wait().unwrap();

    let store = SqliteStore::open(dir.path()).unwrap();
    let c = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    for seq in &acked {
        let n: i64 = c.query_row("SELECT count(*) FROM sightings WHERE seq = ?1", [seq], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "acknowledged sighting {seq} survived the crash");
    }
    // Aggregates and log agree after the crash.
    let st = store.stats().await.unwrap();
    assert!(st.sightings >= acked.len() as i64);
    let total: i64 = c.query_row("SELECT sum(count) FROM feed_records", [], |r| r.get(0)).unwrap();
    assert_eq!(total, st.sightings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_3_database_is_migrated_with_its_data() {
    // Version 3 kept each value's text and search keys in every feed record and sighting;
    // version 4 keeps them once per value. Ids (records, sightings) must survive the move.
    let dir = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        c.execute_batch(include_str!("../migrations/sqlite/0001_init.sql")).unwrap();
        c.execute_batch(include_str!("../migrations/sqlite/0002_indicator_reporters.sql")).unwrap();
        c.execute_batch(include_str!("../migrations/sqlite/0003_hpfeeds_idents.sql")).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO users (id, name, admin, created_at) VALUES (1, 'alice', 0, 0), (2, 'bob', 0, 0);
             INSERT INTO feeds (id, owner_id, name, visibility, created_at, updated_at)
                 VALUES (1, 1, 'hp', 'public', 0, 0), (2, 2, 'dns', 'public', 0, 0);
             INSERT INTO indicators (value, itype, firsttime, lasttime, count, feeds, sources, reserved, reporters) VALUES
                 ('192.0.2.1', 'ipv4', 10, 30, 3, 2, 2, NULL, '[1,2]'),
                 ('www.example.com', 'fqdn', 5, 5, 1, 1, 1, NULL, '[2]');
             INSERT INTO feed_records (id, feed_id, value, itype, firsttime, lasttime, reporttime, count, tags, ports,
                 tlp, addr_start, addr_end, host_key, created_at, updated_at) VALUES
                 (7, 1, '192.0.2.1', 'ipv4', 10, 20, 20, 2, '[\"scanner\"]', '[22]', 'green', x'C0000201', x'C0000201', NULL, 0, 0),
                 (9, 2, '192.0.2.1', 'ipv4', 30, 30, 30, 1, '[]', '[]', 'amber', x'C0000201', x'C0000201', NULL, 0, 0),
                 (11, 2, 'www.example.com', 'fqdn', 5, 5, 5, 1, '[\"c2\"]', '[]', 'green', NULL, NULL, 'com.example.www.', 0, 0);
             INSERT INTO record_tags (tag, record_id) VALUES ('scanner', 7), ('c2', 11);
             INSERT INTO sightings (seq, feed_id, record_id, reporter_id, itype, value, observed_at, received_at, tags,
                 ports, tlp, count, extra, idempotency_key) VALUES
                 (100, 1, 7, 1, 'ipv4', '192.0.2.1', 10, 10, '[\"scanner\"]', '[22]', 'green', 1, '{\"session\":\"a\"}', 'k1'),
                 (101, 1, 7, 1, 'ipv4', '192.0.2.1', 20, 20, '[]', '[]', 'green', 1, '{}', NULL),
                 (102, 2, 9, 2, 'ipv4', '192.0.2.1', 30, 30, '[]', '[]', 'amber', 1, '{}', NULL),
                 (103, 2, 11, 2, 'fqdn', 'www.example.com', 5, 5, '[\"c2\"]', '[]', 'green', 1, '{}', NULL);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let sum = store.get_indicator("192.0.2.1").await.unwrap().unwrap();
    assert_eq!((sum.itype, sum.count, sum.feeds, sum.sources), (IType::Ipv4, 3, 2, 2));

    let values = |p: Page<FeedRecord>| p.items.into_iter().map(|r| (r.id, r.indicator, r.feed)).collect::<Vec<_>>();
    let by_value = store.query(&Query { value: Some("192.0.2.1".into()), ..Default::default() }).await.unwrap();
    assert_eq!(values(by_value), vec![(9, "192.0.2.1".into(), "bob/dns".into()), (7, "192.0.2.1".into(), "alice/hp".into())]);
    let within = store.query(&Query { within: Some("192.0.2.0/24".into()), ..Default::default() }).await.unwrap();
    assert_eq!(within.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![9, 7]);
    let domain = store.query(&Query { domain: Some("example.com".into()), ..Default::default() }).await.unwrap();
    assert_eq!(values(domain), vec![(11, "www.example.com".into(), "bob/dns".into())]);
    let tagged = store.query(&Query { tags: vec!["scanner".into()], ..Default::default() }).await.unwrap();
    assert_eq!(tagged.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![7]);
    let rec = store.get_record(7).await.unwrap().unwrap();
    assert_eq!((rec.count, rec.tags.clone(), rec.portlist.clone()), (2, vec!["scanner".to_string()], vec![22]));

    let seen = store.sightings_of("192.0.2.1", None, 10).await.unwrap();
    assert_eq!(seen.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![102, 101, 100]);
    assert!(seen.iter().all(|s| s.indicator == "192.0.2.1" && s.itype == IType::Ipv4));
    assert_eq!(seen[2].extra, serde_json::json!({"session": "a"}));

    // Appends after the upgrade merge into the migrated records; stored keys still deduplicate.
    let alice = store.get_user("alice").await.unwrap().unwrap();
    let hp = store.get_feed("alice", "hp").await.unwrap().unwrap();
    let mut again = sighting(&hp, &alice, "192.0.2.1");
    again.idempotency_key = Some("k1".into());
    let out = store.append_sightings(vec![again, sighting(&hp, &alice, "192.0.2.1")]).await.unwrap();
    assert!(out[0].duplicate && !out[1].duplicate);
    assert_eq!((out[0].record_id, out[1].record_id), (7, 7));
    assert!(out[1].seq.unwrap() > 103);
    let sum = store.get_indicator("192.0.2.1").await.unwrap().unwrap();
    assert_eq!((sum.count, sum.feeds, sum.sources), (4, 2, 2));
    let st = store.stats().await.unwrap();
    assert_eq!((st.sightings, st.records, st.indicators), (5, 3, 2));
}
