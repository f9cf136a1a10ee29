//! The feed comparison through the hub: the job's result stored and served, cut to what the
//! caller may read, `pending` before the first run; seeds are the trusted feeds.

mod common;

use apiary_core::trust::Tier;
use apiary_store::{NewSighting, Tlp, Visibility};
use chrono::{Duration, Utc};
use common::*;
use reqwest::Method;

fn sighting(feed_id: i64, reporter_id: i64, value: &str, hours_ago: i64) -> NewSighting {
    let at = Utc::now() - Duration::hours(hours_ago);
    NewSighting {
        feed_id,
        reporter_id,
        itype: apiary_core::IType::Ipv4,
        value: value.into(),
        reserved: None,
        observed_at: at,
        observed_until: None,
        received_at: at,
        tags: vec!["ssh".into(), "login".into()],
        ports: Vec::new(),
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
async fn compare_rows_and_overlap_follow_readability_and_seeds() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.user("bob", "read,write").await;
    hub.user("seed2", "read").await;
    hub.feed("admin", "honeypots", Visibility::Public).await;
    hub.feed("seed2", "honeypots", Visibility::Public).await;
    hub.feed("alice", "list", Visibility::Public).await;
    hub.feed("bob", "secret", Visibility::Private).await;
    let s = &hub.store;

    let (status, body) = json(hub.req(Method::GET, "/api/v1/compare", Some(&alice)).send().await.unwrap()).await;
    assert_eq!((status, &body["pending"]), (200, &serde_json::json!(true)), "{body}");

    let id = |o: &str, n: &str| {
        let s = s.clone();
        let (o, n) = (o.to_string(), n.to_string());
        async move {
            let f = s.get_feed(&o, &n).await.unwrap().unwrap();
            (f.id, f.owner_id)
        }
    };
    let (seed_a, admin_id) = id("admin", "honeypots").await;
    let (seed_b, seed2_id) = id("seed2", "honeypots").await;
    let (list, alice_id) = id("alice", "list").await;
    let (secret, bob_id) = id("bob", "secret").await;
    // Two seeds: the admin's feed by default, and one the admin names.
    s.set_source_tier("seed2", "honeypots", Tier::Seed).await.unwrap();
    s.append_sightings(vec![
        sighting(seed_a, admin_id, "45.1.1.1", 10),
        sighting(seed_b, seed2_id, "45.1.1.1", 9),
        sighting(list, alice_id, "45.1.1.1", 12),
        sighting(seed_a, admin_id, "45.1.1.2", 5),
        sighting(list, alice_id, "45.1.1.3", 5),
        sighting(secret, bob_id, "45.1.1.3", 5),
        sighting(secret, bob_id, "45.1.1.4", 5),
    ])
    .await
    .unwrap();
    let c = apiary_server::compare::run_once(s.as_ref(), apiary_server::export::allowlist())
        .await
        .unwrap();
    assert_eq!(c.rows.len(), 4);

    // Alice does not see bob's private feed, in the rows or the matrix.
    let (status, body) = json(hub.req(Method::GET, "/api/v1/compare", Some(&alice)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let feeds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["feed"].as_str().unwrap())
        .collect();
    assert_eq!(feeds.len(), 3, "{body}");
    assert!(!body.to_string().contains("bob/secret"));
    assert!(body["items"][0].get("id").is_none(), "store ids stay inside");
    let row = |f: &str| body["items"].as_array().unwrap().iter().find(|r| r["feed"] == f).unwrap().clone();
    let a = row("alice/list");
    // alice/list: 45.1.1.1 (seeds too) and 45.1.1.3 (bob too): volume 2, nothing exclusive,
    // one value trusted, listed 2 h before the first seed: a lead, latency −2 h.
    assert_eq!(
        (a["volume"].as_u64(), a["exclusive"].as_u64(), a["trusted_overlap"].as_u64()),
        (Some(2), Some(0), Some(1))
    );
    assert_eq!(a["lead_rate"].as_f64(), Some(1.0));
    assert_eq!(a["latency_median_hours"].as_f64(), Some(-2.0));
    assert_eq!(row("admin/honeypots")["trusted"], true);
    {
        // Two seed groups make 45.1.1.1 BLOCK; each seed is needed (one seed's login alone is not).
        assert_eq!(body["block_values"].as_u64(), Some(1), "{body}");
        assert_eq!(row("seed2/honeypots")["trusted"], true);
        assert_eq!(row("admin/honeypots")["marginal_lift"].as_u64(), Some(1), "{body}");
        assert_eq!(row("seed2/honeypots")["marginal_lift"].as_u64(), Some(1), "{body}");
        assert_eq!(a["marginal_lift"].as_u64(), Some(0));
        assert_eq!(body["items"][0]["marginal_lift"].as_u64(), Some(1), "sorted by lift");
    }

    let (_, m) = json(hub.req(Method::GET, "/api/v1/compare/overlap", Some(&alice)).send().await.unwrap()).await;
    assert_eq!(m["feeds"].as_array().unwrap().len(), 3);
    let ix = |f: &str| m["feeds"].as_array().unwrap().iter().position(|x| x == f).unwrap();
    let (l, sa) = (ix("alice/list"), ix("admin/honeypots"));
    assert_eq!(m["intersect"][l][sa].as_u64(), Some(1));
    assert_eq!(m["intersect"][l][l].as_u64(), Some(2));
    assert_eq!(m["differential"][l][sa].as_f64(), Some(0.5));

    // The admin sees all four; anonymous callers the three public feeds.
    let (_, all) = json(hub.req(Method::GET, "/api/v1/compare", Some(&hub.admin)).send().await.unwrap()).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    let (_, anon) = json(hub.req(Method::GET, "/api/v1/compare", None).send().await.unwrap()).await;
    assert_eq!(anon["items"].as_array().unwrap().len(), 3);
}

/// The job reruns soon after new sightings (not only every `interval`), so a fresh hub shows a
/// comparison within seconds of its data changing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_reruns_when_the_sightings_log_grows() {
    use apiary_server::compare::{self, CompareOptions};
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "one", Visibility::Public).await;
    hub.feed("alice", "two", Visibility::Public).await;
    let options = CompareOptions {
        check: std::time::Duration::from_millis(100),
        min_gap: std::time::Duration::from_millis(200),
        ..CompareOptions::default()
    };
    assert_eq!(options.interval, std::time::Duration::from_secs(600), "only new data can explain a second run here");
    let job = compare::start(hub.store.clone(), options);
    let volume = |feed: &'static str| {
        let (hub, alice) = (&hub, &alice);
        async move {
            let (_, body) = json(hub.req(Method::GET, "/api/v1/compare", Some(alice)).send().await.unwrap()).await;
            body["items"].as_array().and_then(|rows| rows.iter().find(|r| r["feed"] == format!("alice/{feed}")).and_then(|r| r["volume"].as_u64()))
        }
    };
    let wait_for = |feed: &'static str, want: u64| {
        let (volume, hub, alice) = (&volume, &hub, &alice);
        async move {
            let start = std::time::Instant::now();
            loop {
                if volume(feed).await == Some(want) {
                    break;
                }
                if start.elapsed() > std::time::Duration::from_secs(20) {
                    let (_, body) = json(hub.req(Method::GET, "/api/v1/compare", Some(alice)).send().await.unwrap()).await;
                    panic!("{feed} never showed volume {want}: {body}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    let publish = |feed: &'static str, values: serde_json::Value| {
        let (hub, alice) = (&hub, &alice);
        async move {
            let (status, body) = json(hub.req(Method::POST, &format!("/api/v1/feeds/alice/{feed}/indicators"), Some(alice)).json(&values).send().await.unwrap()).await;
            assert_eq!(status, 201, "{body}");
        }
    };
    publish("one", serde_json::json!(["45.2.2.1", "45.2.2.2"])).await;
    wait_for("one", 2).await;
    publish("two", serde_json::json!(["45.2.2.1", "45.2.2.3", "45.2.2.4"])).await;
    wait_for("two", 3).await;
    publish("one", serde_json::json!(["45.2.2.5"])).await;
    wait_for("one", 3).await;
    job.shutdown().await;
}
