//! The PostgreSQL store: every conformance test, each on a fresh store in a schema of its own
//! (`apiary_test_<random>`, dropped afterwards), plus partitioning and retention.
//!
//! The database is `postgres://postgres@127.0.0.1:5432/test` unless `APIARY_TEST_POSTGRES`
//! names another. When it cannot be reached the tests fail if `CI` is set (CI must run them)
//! and are skipped, with a note, otherwise.

use apiary_core::IType;
use apiary_store::postgres::{PostgresOptions, PostgresStore};
use apiary_store::*;
use chrono::{DateTime, Utc};
use std::time::Duration;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("APIARY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

async fn admin_client() -> Result<tokio_postgres::Client, String> {
    let url = url();
    let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
    let (client, conn) = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Whether the database is there; fails loudly under CI when it is not.
async fn ready() -> bool {
    match admin_client().await {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL at {} is unreachable under CI ({e}): start it (see .ci/run)", url())
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL at {} is unreachable ({e}); set APIARY_TEST_POSTGRES or start it", url());
            false
        }
    }
}

/// Drops its schema when the test ends.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        // Drop runs on an async worker thread: do the async cleanup on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(c) = admin_client().await {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
                }
            });
        });
        let _ = done.join();
    }
}

async fn fresh() -> (Schema, PostgresStore) {
    let name = format!("apiary_test_{:016x}", rand::random::<u64>());
    let client = admin_client().await.expect("PostgreSQL reachable");
    client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create test schema");
    let guard = Schema(name.clone());
    let store = PostgresStore::connect_with(&url(), PostgresOptions { schema: Some(name), max_connections: 4 })
        .await
        .expect("connect the store");
    (guard, store)
}

apiary_store::conformance_tests!(fresh, ready = ready);

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn sighting(feed: &Feed, user: &User, value: &str, received: &str) -> NewSighting {
    NewSighting {
        feed_id: feed.id,
        reporter_id: user.id,
        itype: IType::Ipv4,
        value: value.into(),
        reserved: None,
        observed_at: t(received),
        observed_until: None,
        received_at: t(received),
        tags: vec!["scanner".into()],
        ports: vec![22],
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_are_partitioned_by_month_and_retention_drops_old_months() {
    if !ready().await {
        return;
    }
    let (_guard, store) = fresh().await;
    assert!(store.schema_version().await.unwrap() >= 1, "migrated");
    let u = store.create_user("alice", false).await.unwrap();
    let f = store.create_feed(NewFeed { owner: "alice".into(), name: "hp".into(), ..Default::default() }).await.unwrap();
    let batch = vec![
        sighting(&f, &u, "192.0.2.1", "2025-01-31T23:59:59Z"),
        sighting(&f, &u, "192.0.2.2", "2025-02-01T00:00:00Z"),
        sighting(&f, &u, "192.0.2.3", "2025-03-15T12:00:00Z"),
    ];
    store.append_sightings(batch).await.unwrap();
    assert_eq!(
        store.sightings_partitions().await.unwrap(),
        vec!["sightings_2025_01", "sightings_2025_02", "sightings_2025_03"]
    );
    // Only months that end by the cutoff go.
    let dropped = store.drop_sightings_before(t("2025-03-01T00:00:00Z")).await.unwrap();
    assert_eq!(dropped, vec!["sightings_2025_01", "sightings_2025_02"]);
    assert_eq!(store.sightings_partitions().await.unwrap(), vec!["sightings_2025_03"]);
    let st = store.stats().await.unwrap();
    assert_eq!((st.sightings, st.records), (1, 3), "aggregates stay");
    // A month dropped is created again when a late sighting arrives.
    store.append_sightings(vec![sighting(&f, &u, "192.0.2.1", "2025-01-02T00:00:00Z")]).await.unwrap();
    assert_eq!(store.stats().await.unwrap().sightings, 2);
    let q = Query { value: Some("192.0.2.1".into()), reader: Some(Reader { user_id: 0, admin: true }), ..Default::default() };
    assert_eq!(store.query(&q).await.unwrap().items[0].count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_of_one_value_merge() {
    if !ready().await {
        return;
    }
    let (_guard, store) = fresh().await;
    let store = std::sync::Arc::new(store);
    let u = store.create_user("alice", false).await.unwrap();
    let f = store.create_feed(NewFeed { owner: "alice".into(), name: "hp".into(), ..Default::default() }).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, u, f) = (store.clone(), u.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                let at = format!("2026-01-01T00:{i:02}:{j:02}Z");
                store.append_sightings(vec![sighting(&f, &u, "198.51.100.1", &at)]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sum = store.get_indicator("198.51.100.1").await.unwrap().unwrap();
    assert_eq!((sum.count, sum.feeds, sum.sources), (80, 1, 1));
    assert_eq!(store.stats().await.unwrap().sightings, 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_accepts_postgres_urls_and_rejects_others() {
    assert!(matches!(apiary_store::open("mysql://x").await, Err(StoreError::Invalid(_))));
    let dir = tempfile::tempdir().unwrap();
    let s = apiary_store::open(&format!("sqlite:{}", dir.path().display())).await.unwrap();
    assert_eq!(s.stats().await.unwrap().users, 0);
    if !ready().await {
        return;
    }
    let s = apiary_store::open(&url()).await.unwrap();
    s.stats().await.unwrap();
}

/// `?schema=NAME` in the URL (what `--store` takes): the schema is created if missing and
/// holds every table; a second connect (another node) finds it migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_schema_is_created_and_used() {
    if !ready().await {
        return;
    }
    let name = format!("apiary_test_url_{:016x}", rand::random::<u64>());
    let _guard = Schema(name.clone());
    let with_schema = format!("{}{}schema={name}&pool=2", url(), if url().contains('?') { '&' } else { '?' });
    let a = PostgresStore::connect(&with_schema).await.expect("connect with ?schema=");
    let b = PostgresStore::connect(&with_schema).await.expect("a second node");
    assert_eq!(a.schema_version().await.unwrap(), b.schema_version().await.unwrap());
    a.create_user("alice", false).await.unwrap();
    assert!(b.get_user("alice").await.unwrap().is_some(), "both see one schema");
    let client = admin_client().await.unwrap();
    let tables: i64 = client
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('users', 'job_leases', 'feed_records')", &[&name])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 3, "the tables are in {name}");
    assert!(PostgresStore::connect(&format!("{}?schema=Bad-Name", url().split('?').next().unwrap())).await.is_err());
}

/// Tags travel to the record upsert as array literals: quotes, backslashes, commas, braces and
/// the word NULL come back as they went in, on insert and on merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_with_array_syntax_survive_the_upsert() {
    if !ready().await {
        return;
    }
    let (_guard, store) = fresh().await;
    let u = store.create_user("alice", false).await.unwrap();
    let f = store.create_feed(NewFeed { owner: "alice".into(), name: "hp".into(), ..Default::default() }).await.unwrap();
    let odd = ["a\"b", "c\\d", "{x,y}", "NULL", "é ü"];
    let mut first = sighting(&f, &u, "192.0.2.9", "2025-01-02T00:00:00Z");
    first.tags = odd[..3].iter().map(|t| t.to_string()).collect();
    first.ports = vec![22, 2222];
    store.append_sightings(vec![first]).await.unwrap();
    let mut second = sighting(&f, &u, "192.0.2.9", "2025-01-03T00:00:00Z");
    second.tags = odd[3..].iter().map(|t| t.to_string()).collect();
    second.ports = vec![443];
    store.append_sightings(vec![second]).await.unwrap();
    let page = store.query(&Query { value: Some("192.0.2.9".into()), ..Default::default() }).await.unwrap();
    let mut want: Vec<String> = odd.iter().map(|t| t.to_string()).collect();
    want.sort();
    assert_eq!(page.items[0].tags, want);
    assert_eq!(page.items[0].portlist, vec![22, 443, 2222]);
}
