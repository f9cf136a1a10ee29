//! TAXII 2.1 paging order: objects come oldest first (ascending date added), `next` walks a
//! collection exactly once, `added_after` = the last page's `X-TAXII-Date-Added-Last` goes on
//! where the page ended, and a value seen again moves to the end as a new version.

mod common;

use apiary_core::IType;
use apiary_store::{NewSighting, Tlp, Visibility};
use chrono::{DateTime, Duration, DurationRound, Utc};
use common::Hub;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashSet;

const ACCEPT: &str = "application/taxii+json;version=2.1";

fn sighting(feed_id: i64, reporter_id: i64, value: &str, at: DateTime<Utc>) -> NewSighting {
    NewSighting {
        feed_id,
        reporter_id,
        itype: IType::Ipv4,
        value: value.into(),
        reserved: None,
        observed_at: at,
        observed_until: None,
        received_at: at,
        tags: vec!["scanner".into()],
        ports: Vec::new(),
        protocol: None,
        description: None,
        tlp: Tlp::Green,
        claimed_confidence: None,
        sensor: None,
        count: 1,
        extra: Value::Null,
        idempotency_key: None,
    }
}

/// One page: its status, envelope and date headers.
async fn get(hub: &Hub, token: &str, path: &str, query: &[(&str, String)]) -> (Value, Option<String>, Option<String>) {
    let resp = hub.req(Method::GET, path, Some(token)).header("Accept", ACCEPT).query(query).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path} {query:?}");
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (first, last) = (header("x-taxii-date-added-first"), header("x-taxii-date-added-last"));
    (resp.json().await.unwrap(), first, last)
}

/// (id, date added) of a page's objects (objects: `modified` is the date added).
fn entries(envelope: &Value, key: &str) -> Vec<(String, String)> {
    envelope["objects"]
        .as_array()
        .map(|a| a.iter().map(|o| (o["id"].as_str().unwrap().to_string(), o[key].as_str().unwrap().to_string())).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn objects_page_oldest_first_and_added_after_continues() {
    let hub = Hub::start().await;
    let token = hub.user("alice", "read,write").await;
    hub.feed("alice", "hp", Visibility::Public).await;
    let feed = hub.store.get_feed("alice", "hp").await.unwrap().unwrap();
    let alice = hub.store.get_user("alice").await.unwrap().unwrap();
    // 40 values at distinct times, stored newest first (insertion order is not the answer),
    // then one of the oldest seen again: it becomes the newest.
    let start = (Utc::now() - Duration::days(2)).duration_trunc(Duration::seconds(1)).unwrap();
    let batch: Vec<NewSighting> =
        (0..40).rev().map(|i| sighting(feed.id, alice.id, &format!("23.1.2.{}", i + 1), start + Duration::minutes(i))).collect();
    hub.store.append_sightings(batch).await.unwrap();
    hub.store.append_sightings(vec![sighting(feed.id, alice.id, "23.1.2.2", start + Duration::hours(5))]).await.unwrap();

    let cols = get(&hub, &token, "/taxii2/apiary/collections/", &[]).await.0;
    let id = cols["collections"].as_array().unwrap().iter().find(|c| c["title"] == "alice/hp").unwrap()["id"].as_str().unwrap().to_string();

    for (what, key) in [("objects", "modified"), ("manifest", "date_added")] {
        let path = format!("/taxii2/apiary/collections/{id}/{what}/");
        // Follow `next`, 7 at a time.
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut next: Option<String> = None;
        for pages in 1.. {
            let mut q = vec![("limit", "7".to_string())];
            q.extend(next.take().map(|n| ("next", n)));
            let (page, first, last) = get(&hub, &token, &path, &q).await;
            let items = entries(&page, key);
            assert!(items.len() <= 7);
            if let (Some(a), Some(b)) = (items.first(), items.last()) {
                assert_eq!((first.as_deref(), last.as_deref()), (Some(a.1.as_str()), Some(b.1.as_str())), "{what}: headers");
            }
            seen.extend(items);
            match page["next"].as_str() {
                Some(n) => {
                    assert_eq!(page["more"], true);
                    next = Some(n.to_string());
                }
                None => {
                    assert_eq!(page["more"], false);
                    break;
                }
            }
            assert!(pages < 20, "{what}: paging ends");
        }
        assert_eq!(seen.len(), 40, "{what}: every object once");
        assert_eq!(seen.iter().map(|s| &s.0).collect::<HashSet<_>>().len(), 40);
        assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "{what}: ascending date added: {seen:?}");
        // The value seen again is the newest version, at the end.
        let again = hub.req(Method::GET, &format!("{path}?limit=1&added_after={}", seen[38].1), Some(&token));
        let again: Value = again.header("Accept", ACCEPT).send().await.unwrap().json().await.unwrap();
        assert_eq!(entries(&again, key), vec![seen[39].clone()]);

        // Poll with added_after = the last page's X-TAXII-Date-Added-Last, 9 at a time.
        let mut polled: Vec<(String, String)> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![("limit", "9".to_string())];
            q.extend(after.clone().map(|a| ("added_after", a)));
            let (page, _, last) = get(&hub, &token, &path, &q).await;
            let items = entries(&page, key);
            if items.is_empty() {
                assert_eq!(page["more"], false);
                break;
            }
            polled.extend(items);
            after = last;
            assert!(polled.len() <= 40, "{what}: polling ends");
        }
        assert_eq!(polled, seen, "{what}: added_after polling sees what `next` sees");
    }
}

/// `objects/<id>/` and `versions/` find one object by its id: first by a scan of the collection,
/// then from the ids it remembers; a value added after that scan is still found, an unknown or
/// malformed id is 404, and the version is the latest sighting.
#[tokio::test]
async fn object_lookup_by_id() {
    let hub = Hub::start().await;
    let token = hub.user("alice", "read,write").await;
    hub.feed("alice", "lookup", Visibility::Public).await;
    let feed = hub.store.get_feed("alice", "lookup").await.unwrap().unwrap();
    let alice = hub.store.get_user("alice").await.unwrap().unwrap();
    let start = (Utc::now() - Duration::days(1)).duration_trunc(Duration::seconds(1)).unwrap();
    let batch: Vec<NewSighting> =
        (0..300).map(|i| sighting(feed.id, alice.id, &format!("23.7.{}.{}", i / 200, i % 200 + 1), start + Duration::seconds(i))).collect();
    hub.store.append_sightings(batch).await.unwrap();
    let cols = get(&hub, &token, "/taxii2/apiary/collections/", &[]).await.0;
    let id = cols["collections"].as_array().unwrap().iter().find(|c| c["title"] == "alice/lookup").unwrap()["id"].as_str().unwrap().to_string();
    let oid = |v: &str| apiary_core::export::stix::indicator_id("alice/lookup", IType::Ipv4, v);

    for (value, at) in [("23.7.0.5", start + Duration::seconds(4)), ("23.7.1.100", start + Duration::seconds(299))] {
        let (page, first, _) = get(&hub, &token, &format!("/taxii2/apiary/collections/{id}/objects/{}/", oid(value)), &[]).await;
        let objs = page["objects"].as_array().unwrap();
        assert_eq!(objs.len(), 1, "{value}: {page}");
        assert_eq!(objs[0]["id"], oid(value));
        assert!(objs[0]["pattern"].as_str().unwrap().contains(value), "{page}");
        let want = apiary_core::export::stix::time(at);
        assert_eq!(first.as_deref(), Some(want.as_str()), "{value}");
    }
    // Seen again after the ids were remembered, and a value new since: the latest version of each.
    let later = start + Duration::hours(3);
    hub.store
        .append_sightings(vec![sighting(feed.id, alice.id, "23.7.0.5", later), sighting(feed.id, alice.id, "23.7.9.9", later)])
        .await
        .unwrap();
    let want = apiary_core::export::stix::time(later);
    for value in ["23.7.0.5", "23.7.9.9"] {
        let (v, _, _) = get(&hub, &token, &format!("/taxii2/apiary/collections/{id}/objects/{}/versions/", oid(value)), &[]).await;
        assert_eq!(v["versions"], serde_json::json!([want]), "{value}");
    }
    for missing in [oid("23.7.9.10"), "indicator--not-a-uuid".into(), "malware--x".into()] {
        let resp = hub.req(Method::GET, &format!("/taxii2/apiary/collections/{id}/objects/{missing}/"), Some(&token)).header("Accept", ACCEPT).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{missing}");
    }
}
