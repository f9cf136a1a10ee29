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
