//! The pages' hub-wide figures, computed in the background from the sightings log.
//!
//! A task reads the log in order ([`Store::sightings_after`]) and keeps, per feed: sightings
//! and events per hour, the values it lists (as 64-bit hashes), attackers first seen per day,
//! attacked ports, payload hashes, tags, sensors (as hashes: pages show counts, never which
//! sensor) and report latency. Pages merge the feeds their reader may read, so a private feed's
//! figures reach only those who may read it, and no page runs an aggregate query. After catching
//! up, the task follows the log every [`POLL`] and recomputes the feeds' pairwise overlaps.
//!
//! The task starts with the first page that asks ([`Web::snapshot`]) and ends when the router
//! (the last owner of [`Web`]) is dropped.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use apiary_core::IType;
use apiary_store::{LoggedSighting, Store};

/// Log entries read per store call.
const BATCH: usize = 5_000;
/// How often the task looks for new log entries once it has caught up.
const POLL: Duration = Duration::from_secs(1);
/// How often the overlaps are recomputed (when something changed).
const OVERLAP_EVERY: Duration = Duration::from_secs(10);
/// Largest number of distinct payloads and tags kept per feed (the rarest are dropped beyond).
const MAX_KEYS: usize = 20_000;
/// A sighting that arrives later than this after it was observed (seconds) is imported
/// history, not a live report, and is left out of the report latency.
pub const LIVE_LATENCY_MAX: i64 = 86_400;

/// Latency samples kept per feed (the most recent).
const LATENCY_SAMPLES: usize = 2_048;

/// The figures of one feed.
#[derive(Debug, Default, Clone)]
pub struct FeedDigest {
    pub name: String,
    pub sightings: u64,
    pub events: u64,
    /// Sightings (weighted by their event count) per hour of observation (Unix hours).
    pub hours: BTreeMap<i64, u64>,
    /// Attackers (addresses seen by a sensor) new to this feed, per Unix day.
    pub new_attackers: BTreeMap<i64, u64>,
    pub ports: HashMap<u16, u64>,
    pub payloads: HashMap<String, u64>,
    pub tags: HashMap<String, u64>,
    pub itypes: BTreeMap<IType, u64>,
    /// Hashes of the distinct values listed.
    pub values: HashSet<u64>,
    pub attackers: HashSet<u64>,
    pub sensors: HashSet<u64>,
    /// Seconds from observation to receipt, most recent samples, of live reports only.
    pub latency: Vec<i64>,
    /// Sightings observed more than [`LIVE_LATENCY_MAX`] before they arrived (imported logs).
    pub historical: u64,
    latency_next: usize,
    pub last_seen: Option<apiary_store::Timestamp>,
}

/// Everything the pages read: per-feed figures and overlaps.
#[derive(Debug, Default)]
pub struct Digest {
    pub feeds: HashMap<i64, FeedDigest>,
    /// Position in the log read so far, and the log's end when last looked.
    pub read_seq: i64,
    pub log_end: i64,
    /// Distinct values shared by two feeds, keyed (smaller id, larger id).
    pub overlaps: HashMap<(i64, i64), u64>,
    /// Values of a feed listed by no other feed (over every feed).
    pub exclusive: HashMap<i64, u64>,
    pub overlaps_at: Option<Instant>,
    /// The last store error the task met, if it is failing.
    pub error: Option<String>,
    /// True once the task has read the log to its end at least once.
    pub loaded: bool,
}

impl Digest {
    /// True until the task has read the log to its end once.
    pub fn catching_up(&self) -> bool {
        !self.loaded || self.read_seq < self.log_end
    }

    pub fn apply(&mut self, s: &LoggedSighting) {
        let f = self.feeds.entry(s.feed_id).or_insert_with(|| FeedDigest { name: s.feed.clone(), ..Default::default() });
        let events = s.count.max(1) as u64;
        f.sightings += 1;
        f.events += events;
        let value = hash(&(s.itype, s.indicator.as_str()));
        if f.values.insert(value) {
            *f.itypes.entry(s.itype).or_default() += 1;
        }
        *f.hours.entry(s.observed_at.timestamp().div_euclid(3600)).or_default() += events;
        let attacker = s.itype.is_address() && s.sensor.is_some() && !s.indicator.contains('/');
        if attacker {
            if f.attackers.insert(value) {
                *f.new_attackers.entry(s.observed_at.timestamp().div_euclid(86_400)).or_default() += 1;
            }
            for p in &s.portlist {
                *f.ports.entry(*p).or_default() += events;
            }
        }
        if s.itype.is_hash() {
            bump(&mut f.payloads, &s.indicator, events);
        }
        for t in &s.tags {
            bump(&mut f.tags, t, 1);
        }
        if let Some(sensor) = &s.sensor {
            f.sensors.insert(hash(sensor));
        }
        let lat = (s.received_at - s.observed_at).num_seconds();
        // Observed long before it arrived: imported history, not a report's latency.
        if lat > LIVE_LATENCY_MAX {
            f.historical += 1;
        } else if f.latency.len() < LATENCY_SAMPLES {
            f.latency.push(lat);
        } else {
            f.latency[f.latency_next] = lat;
            f.latency_next = (f.latency_next + 1) % LATENCY_SAMPLES;
        }
        f.last_seen = Some(f.last_seen.map_or(s.received_at, |t| t.max(s.received_at)));
        self.read_seq = self.read_seq.max(s.seq);
    }

    /// Pairwise overlaps and exclusive values, computed from the current sets.
    fn compute_overlaps(&self) -> (HashMap<(i64, i64), u64>, HashMap<i64, u64>) {
        let ids: Vec<i64> = self.feeds.keys().copied().collect();
        let mut overlaps = HashMap::new();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                let (sa, sb) = (&self.feeds[a].values, &self.feeds[b].values);
                let (small, large) = if sa.len() <= sb.len() { (sa, sb) } else { (sb, sa) };
                let n = small.iter().filter(|v| large.contains(v)).count() as u64;
                overlaps.insert(((*a).min(*b), (*a).max(*b)), n);
            }
        }
        let exclusive = if ids.len() == 1 {
            ids.iter().map(|id| (*id, self.feeds[id].values.len() as u64)).collect()
        } else {
            let mut listed: HashMap<u64, u32> = HashMap::new();
            for f in self.feeds.values() {
                for v in &f.values {
                    *listed.entry(*v).or_default() += 1;
                }
            }
            self.feeds
                .iter()
                .map(|(id, f)| (*id, f.values.iter().filter(|v| listed.get(v) == Some(&1)).count() as u64))
                .collect()
        };
        (overlaps, exclusive)
    }

    /// Distinct values shared by feeds `a` and `b`.
    pub fn overlap(&self, a: i64, b: i64) -> Option<u64> {
        if a == b {
            return self.feeds.get(&a).map(|f| f.values.len() as u64);
        }
        self.overlaps.get(&(a.min(b), a.max(b))).copied()
    }
}

fn hash<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Count `key`, keeping at most [`MAX_KEYS`] keys (the least counted half goes when full).
fn bump(map: &mut HashMap<String, u64>, key: &str, by: u64) {
    if let Some(n) = map.get_mut(key) {
        *n += by;
        return;
    }
    if map.len() >= MAX_KEYS {
        let mut counts: Vec<u64> = map.values().copied().collect();
        let mid = counts.len() / 2;
        let (_, cut, _) = counts.select_nth_unstable(mid);
        let cut = *cut;
        map.retain(|_, n| *n > cut);
    }
    map.insert(key.to_string(), by);
}

/// Credentials and commands per feed, from the latest sessions.
#[derive(Debug, Default)]
pub struct SessionCounts {
    pub credentials: HashMap<i64, HashMap<String, u64>>,
    pub commands: HashMap<i64, HashMap<String, u64>>,
    pub sessions: usize,
}

/// Sessions the overview's credentials and commands are counted over (the newest).
const TOP_SESSIONS: usize = 10_000;
/// How often they are recounted.
const SESSIONS_EVERY: Duration = Duration::from_secs(30);

/// The pages' shared state: the digest and the task that keeps it.
pub struct Web {
    store: Arc<dyn Store>,
    digest: RwLock<Digest>,
    /// None until counted, or when the store keeps no sessions.
    sessions: RwLock<Option<SessionCounts>>,
    started: OnceLock<()>,
}

impl Web {
    pub fn new(store: Arc<dyn Store>) -> Arc<Web> {
        Arc::new(Web { store, digest: RwLock::new(Digest::default()), sessions: RwLock::new(None), started: OnceLock::new() })
    }

    /// Read the digest (starting the task on first use).
    pub fn snapshot<R>(self: &Arc<Self>, read: impl FnOnce(&Digest) -> R) -> R {
        self.start();
        let d = self.digest.read().unwrap_or_else(|e| e.into_inner());
        read(&d)
    }

    /// Start the background task once (needs a Tokio runtime, which every handler has).
    pub fn start(self: &Arc<Self>) {
        self.started.get_or_init(|| {
            let weak = Arc::downgrade(self);
            tokio::spawn(run(weak));
        });
    }

    /// Read the log once to its current end (the task's step; tests and benchmarks call it).
    pub async fn catch_up(&self) -> Result<usize, apiary_store::StoreError> {
        let end = self.store.last_sighting_seq().await?;
        self.digest.write().unwrap_or_else(|e| e.into_inner()).log_end = end;
        let mut read = 0;
        loop {
            let after = self.digest.read().unwrap_or_else(|e| e.into_inner()).read_seq;
            let batch = self.store.sightings_after(after, None, BATCH).await?;
            if batch.is_empty() {
                break;
            }
            read += batch.len();
            let full = batch.len() >= BATCH;
            let mut d = self.digest.write().unwrap_or_else(|e| e.into_inner());
            for s in &batch {
                d.apply(s);
            }
            d.log_end = d.log_end.max(d.read_seq);
            if !full {
                // The end as of now: under steady ingest the next poll reads the rest.
                break;
            }
        }
        self.digest.write().unwrap_or_else(|e| e.into_inner()).loaded = true;
        Ok(read)
    }

    /// Count credentials and commands over the newest sessions.
    pub async fn count_sessions(&self) {
        let q = apiary_store::SessionQuery { newest_first: true, limit: TOP_SESSIONS, ..Default::default() };
        let counts = match self.store.query_sessions(&q).await {
            Ok(list) => {
                let mut c = SessionCounts { sessions: list.len(), ..Default::default() };
                for s in &list {
                    let creds = c.credentials.entry(s.feed_id).or_default();
                    for cred in &s.record.credentials {
                        let text = match (&cred.username, &cred.password, &cred.fingerprint) {
                            (u, Some(p), _) => super::html::credential(u.as_deref(), p),
                            (u, None, Some(_)) => format!("{} (key)", super::html::credential(u.as_deref(), "").trim_end_matches(" / (empty)")),
                            (u, None, None) => super::html::credential(u.as_deref(), ""),
                        };
                        *creds.entry(text).or_default() += 1;
                    }
                    let cmds = c.commands.entry(s.feed_id).or_default();
                    // An empty line typed at the shell is no command.
                    for cmd in s.record.commands.iter().filter(|c| !c.trim().is_empty()) {
                        let cmd: String = cmd.chars().take(200).collect();
                        *cmds.entry(cmd).or_default() += 1;
                    }
                }
                Some(c)
            }
            Err(_) => None,
        };
        *self.sessions.write().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    /// The top credentials and commands of `feed_ids` (None: the hub keeps no sessions).
    pub fn session_tops(&self, feed_ids: &[i64]) -> Option<super::overview::SessionTops> {
        let guard = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let c = guard.as_ref()?;
        let pick = |m: &HashMap<i64, HashMap<String, u64>>| {
            top(merged_counts(feed_ids.iter().filter_map(|id| m.get(id)).map(|x| x.iter().map(|(k, v)| (k.clone(), *v)))), 10)
        };
        Some(super::overview::SessionTops { credentials: pick(&c.credentials), commands: pick(&c.commands), sessions: c.sessions })
    }

    /// Recompute overlaps now: computed under the read lock (pages keep reading), swapped in
    /// under the write lock.
    pub fn refresh_overlaps(&self) {
        let (overlaps, exclusive) = self.digest.read().unwrap_or_else(|e| e.into_inner()).compute_overlaps();
        let mut d = self.digest.write().unwrap_or_else(|e| e.into_inner());
        d.overlaps = overlaps;
        d.exclusive = exclusive;
        d.overlaps_at = Some(Instant::now());
    }
}

async fn run(web: Weak<Web>) {
    let mut changed_since_overlap = true;
    let mut sessions_at: Option<Instant> = None;
    loop {
        let Some(w) = web.upgrade() else { return };
        if sessions_at.is_none_or(|t| t.elapsed() >= SESSIONS_EVERY) {
            w.count_sessions().await;
            sessions_at = Some(Instant::now());
        }
        match w.catch_up().await {
            Ok(n) => {
                changed_since_overlap |= n > 0;
                let due = w.digest.read().unwrap_or_else(|e| e.into_inner()).overlaps_at.is_none_or(|t| t.elapsed() >= OVERLAP_EVERY);
                if changed_since_overlap && due {
                    let w2 = w.clone();
                    // Overlaps walk every feed's values: off the async threads.
                    let _ = tokio::task::spawn_blocking(move || w2.refresh_overlaps()).await;
                    changed_since_overlap = false;
                }
                w.digest.write().unwrap_or_else(|e| e.into_inner()).error = None;
            }
            Err(e) => {
                tracing::warn!("web pages: cannot read the sightings log: {e}");
                w.digest.write().unwrap_or_else(|e| e.into_inner()).error = Some(e.to_string());
            }
        }
        drop(w);
        tokio::time::sleep(POLL).await;
    }
}

/// Merge helpers over the feeds a reader may read.
pub fn merged_counts<K: Clone + Eq + Hash>(maps: impl Iterator<Item = impl IntoIterator<Item = (K, u64)>>) -> Vec<(K, u64)> {
    let mut all: HashMap<K, u64> = HashMap::new();
    for m in maps {
        for (k, n) in m {
            *all.entry(k).or_default() += n;
        }
    }
    all.into_iter().collect()
}

/// The `n` largest counts, largest first (ties by key for a stable order).
pub fn top<K: Ord + Clone>(mut v: Vec<(K, u64)>, n: usize) -> Vec<(K, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Median of samples (None when empty).
pub fn median(samples: &[i64]) -> Option<i64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    let mid = v.len() / 2;
    Some(*v.select_nth_unstable(mid).1)
}
