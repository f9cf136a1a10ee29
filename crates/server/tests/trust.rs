//! The trust guarantees, end to end: a real hub on a real SQLite store, the scoring job running
//! beside it (as `apiary serve` runs it), values published over the API, scores read back.

mod common;

use std::time::{Duration, Instant};

use apiary_server::trust::{self, TrustOptions};
use apiary_core::IType;
use apiary_store::{FeedbackKind, NewFeedback, Visibility};
use common::{error_code, json, Hub};
use reqwest::Method;
use serde_json::{json, Value};

fn start_job(hub: &Hub) -> trust::TrustJob {
    trust::start(hub.store.clone(), TrustOptions { poll: Duration::from_millis(200), ..TrustOptions::default() })
}

async fn publish(hub: &Hub, token: &str, feed: &str, items: Value) {
    let (status, body) = json(hub.req(Method::POST, &format!("/api/v1/feeds/{feed}/indicators"), Some(token)).json(&items).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
}

/// Wait (up to 10 s) until the score of `value` satisfies `ok`; the last score seen.
async fn score_until(hub: &Hub, token: &str, value: &str, ok: impl Fn(&Value) -> bool) -> Value {
    score_within(hub, token, value, ok, Duration::from_secs(10)).await
}

async fn score_within(hub: &Hub, token: &str, value: &str, ok: impl Fn(&Value) -> bool, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = json(hub.req(Method::GET, &format!("/api/v1/scores/{value}"), Some(token)).send().await.unwrap()).await;
        if status == 200 && ok(&body) {
            return body;
        }
        if start.elapsed() > within {
            panic!("score of {value} not as expected after {within:?}: {status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A honeypot sighting: deep session, from a named sensor.
fn deep(value: &str, sensor: &str) -> Value {
    json!({"indicator": value, "tags": ["bruteforce", "login", "commands", "download"], "sensor": sensor})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_set_of_unknown_sources_reaches_block() {
    let hub = Hub::start().await;
    let job = start_job(&hub);
    let value = "45.155.205.17";
    // Forty strangers, each its own owner and sensor network, all swear to it at full depth.
    for i in 0..40 {
        let name = format!("stranger{i}");
        let token = hub.user(&name, "read,write").await;
        hub.feed(&name, "pots", Visibility::Public).await;
        publish(&hub, &token, &format!("{name}/pots"), json!([deep(value, &format!("pot-{i}")), deep(value, &format!("pot-{i}b"))])).await;
    }
    // (Setting up forty feeds on a busy machine — a CI run beside other builds — takes a while:
    // wait generously; the wait ends as soon as all forty are scored.)
    let all = |s: &Value| s["terms"].as_array().is_some_and(|t| t.iter().filter(|t| t["term"] == "group").count() == 40);
    let s = score_within(&hub, &hub.admin, value, all, Duration::from_secs(120)).await;
    assert_ne!(s["tier"], "BLOCK", "{s}");
    assert!(s["confidence"].as_u64().unwrap() < 90, "{s}");
    assert_eq!(s["seed_groups"], 0);
    let cap = s["terms"].as_array().unwrap().iter().find(|t| t["term"] == "unknown_cap").expect("the unknown sources' cap bit");
    assert!(cap["value"].as_f64().unwrap() < 0.0, "{cap}");
    // Admins see the feeds named; a reader sees how many.
    let group = s["terms"].as_array().unwrap().iter().find(|t| t["term"] == "group").unwrap();
    assert!(group["sources"][0]["feed"].as_str().unwrap().starts_with("stranger"), "{group}");
    let reader = hub.user("reader", "read").await;
    let public = score_until(&hub, &reader, value, |_| true).await;
    let group = public["terms"].as_array().unwrap().iter().find(|t| t["term"] == "group").unwrap();
    assert_eq!(group["sources"], 1, "public readers see counts: {group}");
    assert!(!public.to_string().contains("stranger"), "no feed names for readers: {public}");

    // One seed sighting is what it takes (and it takes effect within seconds).
    hub.feed("admin", "pots", Visibility::Public).await;
    let sent = Instant::now();
    publish(&hub, &hub.admin, "admin/pots", json!([deep(value, "seed-1")])).await;
    let s = score_until(&hub, &hub.admin, value, |s| s["tier"] == "BLOCK").await;
    eprintln!("BLOCK {:?} after the seed's sighting", sent.elapsed());
    assert_eq!(s["seed_groups"], 1);
    // And the hub-wide BLOCK export carries it.
    let body = hub.req(Method::GET, "/api/v1/export?tier=block&format=text", Some(&reader)).send().await.unwrap().text().await.unwrap();
    assert!(body.lines().any(|l| l == value), "{body}");
    job.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sighting_changes_the_score_within_seconds() {
    let hub = Hub::start().await;
    let job = start_job(&hub);
    let alice = hub.user("alice", "read,write").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    let value = "91.92.109.3";
    let sent = Instant::now();
    publish(&hub, &alice, "alice/pots", json!([deep(value, "a1")])).await;
    let first = score_until(&hub, &alice, value, |_| true).await;
    let took = sent.elapsed();
    eprintln!("first score {took:?} after the sighting");
    assert_eq!(first["tier"], "OBSERVE", "{first}");
    let before = first["log_odds"].as_f64().unwrap();
    let bob = hub.user("bob", "read,write").await;
    hub.feed("bob", "pots", Visibility::Public).await;
    let sent = Instant::now();
    publish(&hub, &bob, "bob/pots", json!([deep(value, "b1")])).await;
    let second = score_until(&hub, &alice, value, |s| s["log_odds"].as_f64().unwrap() > before).await;
    eprintln!("score moved {:?} after the second sighting", sent.elapsed());
    assert!(second["confidence"].as_u64() >= first["confidence"].as_u64());
    job.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_a_seed_earns_no_reliability_and_leading_does() {
    let hub = Hub::start().await;
    let job = start_job(&hub);
    hub.feed("admin", "pots", Visibility::Public).await;
    let copier = hub.user("copier", "read,write").await;
    hub.feed("copier", "list", Visibility::Public).await;
    let scout = hub.user("scout", "read,write").await;
    hub.feed("scout", "pots", Visibility::Public).await;
    let seen: Vec<String> = (1..=20).map(|i| format!("185.220.101.{i}")).collect();
    // The scout reports first; the seed confirms; the copier copies the seed afterwards.
    publish(&hub, &scout, "scout/pots", Value::Array(seen.iter().map(|v| deep(v, "s1")).collect())).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    publish(&hub, &hub.admin, "admin/pots", Value::Array(seen.iter().map(|v| deep(v, "seed")).collect())).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    publish(&hub, &copier, "copier/list", Value::Array(seen.iter().map(|v| json!({"indicator": v})).collect())).await;
    let start = Instant::now();
    let sources = loop {
        let (_, body) = json(hub.req(Method::GET, "/api/v1/sources", Some(&hub.admin)).send().await.unwrap()).await;
        let find = |f: &str| body["items"].as_array().unwrap().iter().find(|s| s["feed"] == f).cloned().unwrap();
        if find("scout/pots")["leads"] == 20 && find("copier/list")["updated_at"].is_string() && start.elapsed() > Duration::from_secs(2) {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the reliability job did not judge: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let find = |f: &str| sources["items"].as_array().unwrap().iter().find(|s| s["feed"] == f).cloned().unwrap();
    let (copier, scout) = (find("copier/list"), find("scout/pots"));
    assert_eq!((copier["leads"].as_i64(), copier["alpha"].as_f64()), (Some(0), Some(1.0)), "copies earn nothing: {copier}");
    assert!(copier["reliability"].as_f64().unwrap() <= 0.1, "{copier}");
    assert!(scout["reliability"].as_f64().unwrap() > copier["reliability"].as_f64().unwrap(), "{scout}");
    assert_eq!(find("admin/pots")["tier"], "seed");
    job.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlisted_value_never_scores_above_observe() {
    let hub = Hub::start().await;
    let job = start_job(&hub);
    hub.feed("admin", "pots", Visibility::Public).await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        let name = format!("u{i}");
        tokens.push(hub.user(&name, "read,write").await);
        hub.feed(&name, "pots", Visibility::Public).await;
    }
    // A public resolver (built-in exclude list), seen by a seed and five others at full depth.
    let value = "8.8.8.8";
    publish(&hub, &hub.admin, "admin/pots", json!([deep(value, "seed")])).await;
    for (i, t) in tokens.iter().enumerate() {
        publish(&hub, t, &format!("u{i}/pots"), json!([deep(value, "p")])).await;
    }
    let s = score_until(&hub, &hub.admin, value, |s| s["scored_at"].is_string()).await;
    assert_eq!((s["tier"].as_str(), s["confidence"].as_u64()), (Some("OBSERVE"), Some(0)), "{s}");
    assert!(s["excluded"].as_str().unwrap().contains("allowlisted"), "{s}");
    for q in ["tier=observe", "tier=block", "min_confidence=0"] {
        let body = hub.req(Method::GET, &format!("/api/v1/export?{q}&format=text"), Some(&hub.admin)).send().await.unwrap().text().await.unwrap();
        assert!(!body.lines().any(|l| l == value), "{q}: {body}");
    }
    job.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retracted_value_leaves_the_feed_export_and_is_kept_in_history() {
    let hub = Hub::start().await;
    let job = start_job(&hub);
    let alice = hub.user("alice", "read,write").await;
    let eve = hub.user("eve", "read,write").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    publish(&hub, &alice, "alice/pots", json!([deep("193.32.162.9", "a"), deep("193.32.162.10", "a")])).await;
    let export = || async {
        hub.req(Method::GET, "/api/v1/feeds/alice/pots/export?format=text", Some(&alice)).send().await.unwrap().text().await.unwrap()
    };
    assert!(export().await.lines().any(|l| l == "193.32.162.9"));
    let body = json!({"value": "193.32.162.9", "reason": "our own scanner"});
    // Only the feed's writer retracts; a reason is required.
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/alice/pots/retractions", Some(&eve)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, b) = json(hub.req(Method::POST, "/api/v1/feeds/alice/pots/retractions", Some(&alice)).json(&json!({"value": "193.32.162.9", "reason": " "})).send().await.unwrap()).await;
    assert_eq!((status, error_code(&b).as_str()), (422, "missing_reason"));
    let (status, r) = json(hub.req(Method::POST, "/api/v1/feeds/alice/pots/retractions", Some(&alice)).json(&body).send().await.unwrap()).await;
    assert_eq!((status, r["kind"].as_str(), r["feed"].as_str()), (201, Some("retraction"), Some("alice/pots")), "{r}");
    let text = export().await;
    assert!(!text.lines().any(|l| l == "193.32.162.9"), "retracted: {text}");
    assert!(text.lines().any(|l| l == "193.32.162.10"), "the rest stays: {text}");
    // Kept in history, evidence for the model: the sighting carries no weight, the source pays.
    let s = score_until(&hub, &alice, "193.32.162.9", |s| s["feedback"]["retractions"] == 1 && s["terms"].as_array().unwrap().iter().any(|t| t["term"] == "retracted")).await;
    assert_eq!(s["tier"], "OBSERVE");
    let start = Instant::now();
    loop {
        let (_, b) = json(hub.req(Method::GET, "/api/v1/sources", Some(&alice)).send().await.unwrap()).await;
        let me = b["items"].as_array().unwrap().iter().find(|s| s["feed"] == "alice/pots").cloned().unwrap();
        if me["penalties"] == 1 {
            assert!(me["beta"].as_f64().unwrap() > 9.0, "{me}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{me}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    job.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_and_feedback_are_checked() {
    let hub = Hub::start().await;
    let bob = hub.user("bob", "read,write").await;
    hub.feed("bob", "list", Visibility::Public).await;
    // Only admins set tiers.
    let (status, _) = json(hub.req(Method::PUT, "/api/v1/sources/bob/list/tier", Some(&bob)).json(&json!({"tier": "seed"})).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, b) = json(hub.req(Method::PUT, "/api/v1/sources/bob/list/tier", Some(&hub.admin)).json(&json!({"tier": "gold"})).send().await.unwrap()).await;
    assert_eq!((status, error_code(&b).as_str()), (422, "unknown_tier"));
    let (status, b) = json(hub.req(Method::PUT, "/api/v1/sources/bob/list/tier", Some(&hub.admin)).json(&json!({"tier": "seed"})).send().await.unwrap()).await;
    assert_eq!((status, b["tier"].as_str(), b["pinned"].as_bool()), (200, Some("seed"), Some(true)), "{b}");
    let (status, _) = json(hub.req(Method::PUT, "/api/v1/sources/bob/nope/tier", Some(&hub.admin)).json(&json!({"tier": "seed"})).send().await.unwrap()).await;
    assert_eq!(status, 404);
    // False positives: a token is needed, the value is parsed, the rate is limited.
    let (status, _) = json(hub.req(Method::POST, "/api/v1/feeds/bob/list/indicators", Some(&bob)).json(&json!([{"indicator": "45.155.205.99"}])).send().await.unwrap()).await;
    assert_eq!(status, 201);
    let fp = json!({"value": "45.155.205.99", "reason": "ours"});
    let (status, _) = json(hub.req(Method::POST, "/api/v1/false-positives", None).json(&fp).send().await.unwrap()).await;
    assert_eq!(status, 401);
    let (status, _) = json(hub.req(Method::POST, "/api/v1/false-positives", Some(&bob)).json(&json!({"value": "not a value", "reason": "x"})).send().await.unwrap()).await;
    assert_eq!(status, 422);
    let mut last = 0;
    for _ in 0..=trust::api::FALSE_POSITIVES_PER_HOUR {
        let (status, _) = json(hub.req(Method::POST, "/api/v1/false-positives", Some(&bob)).json(&fp).send().await.unwrap()).await;
        last = status;
        if status != 201 {
            break;
        }
    }
    assert_eq!(last, 429);
    // A score of a value only in a private feed is not revealed to others.
    let carol = hub.user("carol", "read,write").await;
    hub.feed("carol", "secret", Visibility::Private).await;
    publish(&hub, &carol, "carol/secret", json!(["45.155.205.200"])).await;
    let (status, _) = json(hub.req(Method::GET, "/api/v1/scores/45.155.205.200", Some(&bob)).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (_, sources) = json(hub.req(Method::GET, "/api/v1/sources", Some(&bob)).send().await.unwrap()).await;
    assert!(!sources.to_string().contains("carol/secret"), "{sources}");
}

/// A reader of the native SSE stream: (feed, indicator) of each sighting.
struct Sightings {
    resp: reqwest::Response,
    buf: String,
}

impl Sightings {
    async fn open(hub: &Hub, path: &str) -> Sightings {
        let resp = hub.req(Method::GET, path, Some(&hub.admin)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        Sightings { resp, buf: String::new() }
    }

    /// Every sighting up to and including the first of `last`.
    async fn until(&mut self, last: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
                let Ok(v) = serde_json::from_str::<Value>(data.trim()) else { continue };
                let (Some(feed), Some(ind)) = (v["feed"].as_str(), v["indicator"].as_str()) else { continue };
                out.push((feed.to_string(), ind.to_string()));
                if ind == last {
                    return out;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.resp.chunk()).await.unwrap_or_else(|_| panic!("no {last} in the stream; got {out:?}"));
            self.buf.push_str(std::str::from_utf8(&chunk.unwrap().expect("stream open")).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retracted_value_leaves_the_streams_for_its_feed() {
    let hub = Hub::start().await;
    let alice = hub.user("alice", "read,write").await;
    let bob = hub.user("bob", "read,write").await;
    hub.feed("alice", "pots", Visibility::Public).await;
    hub.feed("bob", "pots", Visibility::Public).await;
    let v = "193.32.162.20";
    let pair = |feed: &str, value: &str| (feed.to_string(), value.to_string());
    let mut live = Sightings::open(&hub, "/api/v1/stream").await;
    publish(&hub, &alice, "alice/pots", json!([v, "193.32.162.21"])).await;
    assert_eq!(live.until("193.32.162.21").await, [pair("alice/pots", v), pair("alice/pots", "193.32.162.21")]);
    // The owner retracts it: alice's new sightings of it no longer stream; bob's still do.
    let body = json!({"value": v, "reason": "our own scanner"});
    let (status, r) = json(hub.req(Method::POST, "/api/v1/feeds/alice/pots/retractions", Some(&alice)).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{r}");
    publish(&hub, &alice, "alice/pots", json!([v, "193.32.162.22"])).await;
    publish(&hub, &bob, "bob/pots", json!([v])).await;
    publish(&hub, &alice, "alice/pots", json!(["193.32.162.23"])).await;
    assert_eq!(
        live.until("193.32.162.23").await,
        [pair("alice/pots", "193.32.162.22"), pair("bob/pots", v), pair("alice/pots", "193.32.162.23")]
    );
    // A replay of the log leaves it out of alice's feed too (the feed no longer lists it).
    let mut replay = Sightings::open(&hub, "/api/v1/stream?after=0").await;
    let all = replay.until("193.32.162.23").await;
    assert!(!all.contains(&pair("alice/pots", v)), "{all:?}");
    assert!(all.contains(&pair("bob/pots", v)), "{all:?}");
    // A retraction recorded elsewhere (another node of the hub, `apiary retract --data`) takes
    // effect within a second.
    let feed = hub.store.get_feed("bob", "pots").await.unwrap().unwrap();
    let user = hub.store.get_user("bob").await.unwrap().unwrap();
    hub.store
        .add_feedback(NewFeedback { kind: FeedbackKind::Retraction, indicator: v.into(), itype: IType::Ipv4, feed_id: Some(feed.id), user_id: user.id, reason: "ours too".into() })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish(&hub, &bob, "bob/pots", json!([v, "193.32.162.24"])).await;
    assert_eq!(live.until("193.32.162.24").await, [pair("bob/pots", "193.32.162.24")]);
}
