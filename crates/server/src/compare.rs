//! The feed comparison job: soon after the sightings log grew (at most every
//! max(`min_gap`, `gap_factor` × the last run's duration)) and at least every `interval`, read
//! every value with the feeds that list it
//! ([`Store::feed_presence_after`], page by page), compare the feeds
//! ([`apiary_core::trust::compare`]) and store the result ([`Store::put_feed_comparison`]), which
//! `GET /api/v1/compare` serves ([`crate::api::compare`]). Never on a request path.
//!
//! Trusted feeds are the seed-tier sources ([`Store::list_sources`]: an admin's feed is a seed
//! unless an admin set another tier). A store without source tiers falls back to admin-owned
//! feeds, and the result says so in `trusted_by`. Marginal lift is computed with the core
//! scoring function over one sighting per feed (its first and last time, and the depth its tags
//! show), the sources' tiers and reliabilities, and their independence groups as the trust job
//! last stored them. On a hub of several nodes the job runs under the lease `feed-comparison`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apiary_core::trust::compare::{compare, Comparison, Entry, FeedInfo, ValueEntries};
use apiary_core::trust::groups::{self, CoReports, GroupParams, Groups};
use apiary_core::trust::score::{ScoreParams, Scorer};
use apiary_core::trust::{Beta, SourceMeta, Tier};
use apiary_core::{Allowlist, IType};
use apiary_store::{LeaseOptions, LeasedJob, Result, Store, StoreError};
use tokio::sync::watch;

use crate::trust::engine::{depth_of, standing_of};

/// The lease the comparison job runs under.
pub const LEASE: &str = "feed-comparison";

/// Values read per store call.
const PAGE: usize = 20_000;

/// Timing of the comparison job: it reruns soon after the data changed, but never more often
/// than its last run's cost allows, and at least every `interval`.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Run the job at all.
    pub enabled: bool,
    /// The longest time between runs, changed data or not (source tiers and time move too).
    pub interval: Duration,
    /// How often the job looks whether the sightings log grew since its last run.
    pub check: Duration,
    /// The shortest time between runs started by new data...
    pub min_gap: Duration,
    /// ...or this many times the last run's duration, if longer (a big hub does not spend all
    /// its time recomputing).
    pub gap_factor: u32,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            enabled: true,
            interval: Duration::from_secs(600),
            check: Duration::from_secs(15),
            min_gap: Duration::from_secs(30),
            gap_factor: 10,
        }
    }
}

impl CompareOptions {
    /// Whether to run now: `since` the start of the last run, which took `took`, and whether
    /// the sightings log `grew` since that run started.
    pub fn due(&self, since: Duration, took: Duration, grew: bool) -> bool {
        since >= self.interval || (grew && since >= self.min_gap.max(took * self.gap_factor))
    }
}

/// The running job (see [`start`]).
pub struct CompareJob {
    job: Option<LeasedJob>,
}

impl CompareJob {
    /// Stop the job and release its lease.
    pub async fn shutdown(self) {
        if let Some(job) = self.job {
            job.shutdown().await;
        }
    }
}

/// Start the comparison job under its lease.
pub fn start(store: Arc<dyn Store>, options: CompareOptions) -> CompareJob {
    if !options.enabled {
        return CompareJob { job: None };
    }
    let job = LeasedJob::spawn(store.clone(), LEASE, LeaseOptions::default(), move |stop| {
        let (store, options) = (store.clone(), options.clone());
        async move { run(store, options, stop).await }
    });
    CompareJob { job: Some(job) }
}

/// The job's loop, until `stop`: compare and store, then every `check` look at the sightings
/// log's last sequence number and run again when [`CompareOptions::due`] says so.
pub async fn run(store: Arc<dyn Store>, options: CompareOptions, mut stop: watch::Receiver<bool>) {
    // Let the hub finish starting (and the trust job take its first look) before the first run.
    let mut wait = Duration::from_secs(2);
    // The log's last sequence number when the last run started (None: not known).
    let mut seen: Option<i64> = None;
    let mut last: Option<(std::time::Instant, Duration)> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = options.check;
        // A store without the log's sequence: only the interval reruns.
        let now_seq = store.last_sighting_seq().await.ok();
        if let Some((at, took)) = last {
            let grew = now_seq.is_some() && now_seq != seen;
            if !options.due(at.elapsed(), took, grew) {
                continue;
            }
        }
        seen = now_seq;
        let started = std::time::Instant::now();
        match run_once(store.as_ref(), crate::export::allowlist()).await {
            Ok(c) => tracing::info!(
                feeds = c.rows.len(),
                values = c.values,
                block = c.block_values,
                ms = started.elapsed().as_millis() as u64,
                "feed comparison stored"
            ),
            Err(e) => tracing::warn!("feed comparison failed: {e}"),
        }
        last = Some((started, started.elapsed()));
    }
}

/// Compare every feed now and store the result. Public for `apiary feed compare --data` and tests.
pub async fn run_once(store: &dyn Store, lists: &'static Allowlist) -> Result<Comparison> {
    let c = compute(store, lists, chrono::Utc::now().timestamp(), None).await?;
    store.put_feed_comparison(&c).await?;
    Ok(c)
}

/// Compare every feed as of `now` (seconds), over the values of `itype` (or all), without storing.
pub async fn compute(store: &dyn Store, lists: &'static Allowlist, now: i64, itype: Option<IType>) -> Result<Comparison> {
    let feeds = store.list_feeds(None).await?;
    let index: HashMap<i64, u32> = feeds.iter().enumerate().map(|(i, f)| (f.id, i as u32)).collect();
    let (metas, groups, trusted_by) = sources(store, &feeds).await?;
    let infos: Vec<FeedInfo> = feeds
        .iter()
        .zip(&metas)
        .map(|(f, m)| FeedInfo {
            id: f.id,
            name: f.full_name(),
            trusted: m.tier == Tier::Seed,
            network: m.networks.first().map_or(0, |n| n.0),
        })
        .collect();
    let mut values: Vec<ValueEntries> = Vec::new();
    let mut after = 0;
    loop {
        let page = store.feed_presence_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.indicator_id;
        for v in page.into_iter().filter(|v| itype.is_none_or(|t| t == v.itype)) {
            let entries: Vec<Entry> = v
                .feeds
                .iter()
                .filter_map(|p| {
                    Some(Entry {
                        feed: *index.get(&p.feed_id)?,
                        first_seen: p.firsttime.timestamp(),
                        last_seen: p.lasttime.timestamp(),
                        depth: depth_of(&p.tags),
                    })
                })
                .collect();
            let standing = standing_of(&v.value, v.itype, v.reserved.as_deref(), lists);
            values.push(ValueEntries {
                itype: v.itype,
                standing: (&standing).into(),
                entries,
            });
        }
    }
    let scorer = Scorer::new(ScoreParams::default(), &metas, &groups);
    let mut c = tokio::task::spawn_blocking(move || compare(&infos, &values, &scorer, now))
        .await
        .map_err(|e| StoreError::Internal(format!("the feed comparison failed: {e}")))?;
    c.trusted_by = trusted_by;
    Ok(c)
}

/// The feeds as sources (indexed like `feeds`), their groups, and how the trusted ones were chosen.
async fn sources(store: &dyn Store, feeds: &[apiary_store::Feed]) -> Result<(Vec<SourceMeta>, Groups, String)> {
    let mut metas: Vec<SourceMeta> = feeds
        .iter()
        .enumerate()
        .map(|(i, f)| SourceMeta::new(i as u32, f.owner_id as u32, f.created_at.timestamp(), Vec::new()))
        .collect();
    match store.list_sources().await {
        Ok(stored) => {
            let by_feed: HashMap<i64, &apiary_store::Source> = stored.iter().map(|s| (s.feed_id, s)).collect();
            let mut group_ids: Vec<Option<i64>> = Vec::with_capacity(feeds.len());
            for (f, m) in feeds.iter().zip(metas.iter_mut()) {
                let s = by_feed.get(&f.id);
                if let Some(s) = s {
                    m.tier = s.tier;
                    m.reliability = Beta {
                        alpha: s.alpha,
                        beta: s.beta,
                    };
                    m.leads = s.leads.max(0) as u32;
                    if let Some(asn) = s.asn {
                        // A unique /24 per feed: only the declared ASN links feeds here.
                        m.networks = vec![(asn as u32, 0xf000_0000 | ((m.id + 1) << 8))];
                    }
                }
                group_ids.push(s.and_then(|s| s.group_id));
            }
            let groups = if group_ids.iter().all(Option::is_some) && !group_ids.is_empty() {
                stored_groups(&group_ids)
            } else {
                groups::compute(&metas, &CoReports::new(metas.len()), &GroupParams::default())
            };
            Ok((
                metas,
                groups,
                "source tier seed; an admin's feed is a seed unless an admin set another tier".into(),
            ))
        }
        Err(StoreError::Internal(_)) => {
            let admins: Vec<i64> = store.list_users().await?.into_iter().filter(|u| u.admin).map(|u| u.id).collect();
            for (f, m) in feeds.iter().zip(metas.iter_mut()) {
                if admins.contains(&f.owner_id) {
                    m.tier = Tier::Seed;
                }
            }
            let groups = groups::compute(&metas, &CoReports::new(metas.len()), &GroupParams::default());
            Ok((metas, groups, "admin-owned feeds (this store keeps no source tiers)".into()))
        }
        Err(e) => Err(e),
    }
}

/// Dense groups from the group ids the trust job stored.
fn stored_groups(ids: &[Option<i64>]) -> Groups {
    let mut dense: HashMap<i64, u32> = HashMap::new();
    let of_source = ids
        .iter()
        .map(|g| {
            let n = dense.len() as u32;
            *dense.entry(g.unwrap_or(-1)).or_insert(n)
        })
        .collect();
    Groups {
        of_source,
        count: dense.len() as u32,
        links: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_data_reruns_soon_but_not_more_often_than_the_last_run_costs() {
        let o = CompareOptions::default();
        let s = Duration::from_secs;
        // A fresh hub: quick runs, new sightings → rerun after 30 s.
        assert!(!o.due(s(15), Duration::from_millis(40), true));
        assert!(o.due(s(30), Duration::from_millis(40), true));
        // Nothing new: only the interval.
        assert!(!o.due(s(300), Duration::from_millis(40), false));
        assert!(o.due(s(600), Duration::from_millis(40), false));
        // A big hub whose run takes 20 s waits 200 s for new data, and 600 s at most.
        assert!(!o.due(s(150), s(20), true));
        assert!(o.due(s(200), s(20), true));
        assert!(o.due(s(600), s(120), true), "the interval bounds the wait");
    }
}
