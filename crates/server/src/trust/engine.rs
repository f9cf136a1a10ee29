//! The scoring job's state: every indicator's sightings folded per (source, vantage point), the
//! sources with their reliability and declared networks, the co-reporting counters of the
//! groups, and the reports waiting to be judged. It is fed the sightings log and the feedback in order, and answers
//! which indicators to rescore; the math is `apiary_core::trust`'s, unchanged from the simulator.
//!
//! Times are the hub's: a report's order is its `received_at` (a publisher cannot backdate its
//! way to a lead), its recency the observed time (never later than its arrival).

use std::collections::{HashMap, HashSet};

use apiary_core::trust::groups::{self, CoReports, GroupParams, Groups};
use apiary_core::trust::reliability::{self, Outcome, ReliabilityParams};
use apiary_core::trust::score::{Explanation, Score, ScoreParams, Scorer, Scratch, StandingKind};
use apiary_core::trust::{Depth, Sighting, SourceMeta, Standing, Tier, Timestamp};
use apiary_core::{parse, Allowlist, IType, Indicator, ListUse, ParseOptions};
use apiary_store::{Feedback, FeedbackKind, Sensor, Source, SourceUpdate, TrustSighting};

const DAY: Timestamp = 86_400;
/// A report not confirmed within this long is dropped unjudged (as in the simulator).
const PENDING_FOR: Timestamp = 30 * DAY;

/// The depth a sighting reached, from the tags the ingest readers give honeypot sessions
/// (`apiary_ingest::cowrie::derive::depth_tags`). A feed entry without session detail is a
/// handshake; a bare `connect` (spoofable) counts for nothing.
pub fn depth_of(tags: &[String]) -> Depth {
    let has = |t: &str| tags.iter().any(|x| x == t);
    if has("download") || has("upload") || has("payload") || has("malware") {
        Depth::Payload
    } else if has("commands") || has("tunnel") {
        Depth::Commands
    } else if has("login") {
        Depth::Login
    } else if has("bruteforce") {
        Depth::Auth
    } else if has("connect") && tags.len() == 1 {
        Depth::Connect
    } else {
        Depth::Handshake
    }
}

/// The reason prefix of a special-use value's `Standing::Excluded` (never judged, see `judge_one`).
const SPECIAL_USE: &str = "special-use";

/// Whether a value may be scored: special-use values and `exclude` lists are never scored,
/// `hold` lists (popular infrastructure) are held below BLOCK until a seed sees them.
pub fn standing_of(value: &str, itype: IType, reserved: Option<&str>, lists: &Allowlist) -> Standing {
    if let Some(r) = reserved {
        return Standing::Excluded(format!("{SPECIAL_USE} ({r})"));
    }
    let ind = match itype {
        IType::Url | IType::Email => parse(value, Some(itype), &ParseOptions::default()).ok(),
        _ => None,
    }
    .unwrap_or_else(|| Indicator { itype, value: value.to_string(), port: None, derived: Vec::new(), reserved: None, flags: Vec::new() });
    if let Some(r) = ind.reserved {
        return Standing::Excluded(format!("{SPECIAL_USE} ({})", r.as_str()));
    }
    let mut held = None;
    for l in lists.check(&ind) {
        match l.use_ {
            ListUse::Exclude => return Standing::Excluded(format!("allowlisted ({})", l.list)),
            ListUse::Hold => held = Some(l.list),
        }
    }
    held.map_or(Standing::Normal, Standing::Held)
}

/// The declared networks of one feed: its own ASN (`apiary source tier --asn`) and its
/// registered sensors' networks (`apiary feed sensor add NAME --asn N --prefix CIDR`), by name.
#[derive(Debug, Clone, Default, PartialEq)]
struct Declared {
    asn: Option<String>,
    sensors: HashMap<String, String>,
}

impl Declared {
    /// The network a sighting of `sensor` was seen from: the sensor's declared network, else
    /// the feed's ASN; None when neither is declared (the feed's own, unnamed vantage point).
    fn network(&self, sensor: Option<&str>) -> Option<&str> {
        sensor.and_then(|s| self.sensors.get(s)).or(self.asn.as_ref()).map(String::as_str)
    }
}

/// An IPv4 prefix's /24 as a number (the groups link sources by it); 0 for anything else.
fn prefix24(prefix: Option<&str>) -> u32 {
    prefix
        .and_then(|p| p.split('/').next())
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .map_or(0, |a| u32::from(a) & 0xffff_ff00)
}

/// A sighting as the job keeps it: the core's [`Sighting`] with its times as u32 seconds since
/// the epoch (20 bytes instead of 32: ten million of them are most of the job's memory).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Folded {
    pub source: u32,
    pub network: u32,
    pub first_seen: u32,
    pub last_seen: u32,
    pub depth: Depth,
    pub retracted: bool,
}

impl Folded {
    pub fn sighting(&self) -> Sighting {
        Sighting {
            source: self.source,
            network: self.network,
            first_seen: i64::from(self.first_seen),
            last_seen: i64::from(self.last_seen),
            depth: self.depth,
            retracted: self.retracted,
        }
    }
}

/// Seconds since the epoch as a u32 (times before 1970 are 1970; u32 lasts until 2106).
fn secs(t: Timestamp) -> u32 {
    t.clamp(0, i64::from(u32::MAX)) as u32
}

/// A report waiting to be judged: a non-seed source's first sighting of an item, and when it
/// arrived (kept with the item: only items that changed need judging again).
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub source: u32,
    pub arrived: u32,
}

/// Scratch space of [`Engine::score`], one per thread.
#[derive(Debug, Default)]
pub struct ScoreScratch {
    score: Scratch,
    sightings: Vec<Sighting>,
}

/// One indicator as the job knows it.
#[derive(Debug, Clone)]
pub struct Item {
    pub value: Box<str>,
    pub itype: IType,
    pub standing: Standing,
    pub sightings: Vec<Folded>,
    /// Its reports waiting to be judged.
    pub pending: Vec<Pending>,
    /// Distinct users who reported it as a false positive.
    pub fp_users: Vec<i64>,
    pub first_seed: Option<Timestamp>,
    /// First list entry (a sighting without a sensor) by a non-seed source: a public listing.
    pub first_public: Option<Timestamp>,
    pub refuted: bool,
    /// What was last stored (confidence, tier): a rescore writes only what changed.
    pub stored: Option<(u8, u8)>,
}

/// A source as the job knows it: the core's metadata plus what the store keeps.
#[derive(Debug, Clone)]
pub struct SourceState {
    pub meta: SourceMeta,
    pub pinned: bool,
    pub penalties: i64,
    pub exists: bool,
}

/// Counts for the job's status line and the benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub sightings: u64,
    pub judged: u64,
    pub leads: u64,
}

pub struct Engine {
    pub params: ScoreParams,
    pub rel: ReliabilityParams,
    pub gp: GroupParams,
    lists: &'static Allowlist,
    index: HashMap<Box<str>, u32>,
    pub items: Vec<Item>,
    pub sources: Vec<SourceState>,
    /// Users whose false-positive reports are upheld (refute the reporters): admins and owners
    /// of seed or established sources. Others' reports only lower the score (bounded).
    pub trusted_users: HashSet<i64>,
    co: CoReports,
    pub groups: Groups,
    pub scorer: Scorer,
    /// Items with reports to judge again (their sightings or feedback changed).
    judge_queue: Vec<u32>,
    /// Judge every item's reports at the next round (tiers or groups changed), and when that was
    /// last done (expired reports go daily).
    judge_all: bool,
    last_judge_all: Timestamp,
    retracted: HashSet<(u32, u32)>,
    /// Per item: bit 1 queued for rescoring (`dirty`), bit 2 queued for judging.
    flags: Vec<u8>,
    dirty: Vec<u32>,
    /// Declared networks by feed id.
    declared: HashMap<u32, Declared>,
    /// Vantage points: network names interned to the ids in [`Sighting::network`] (0: a feed's
    /// own, undeclared network, named "").
    vantage_names: Vec<String>,
    vantage_ids: HashMap<String, u32>,
    /// The vantage point each (feed, sensor) was folded in with (`""`: no sensor). A
    /// declaration that would map one of them elsewhere sets `rebuild`.
    used: HashMap<u32, HashMap<String, u32>>,
    /// A declared network changed under sightings already folded in: the job must rebuild
    /// its state from the log (sightings keep the vantage point they were folded in with).
    pub rebuild: bool,
    /// The job's clock: the newest arrival seen, or the wall clock when later.
    pub clock: Timestamp,
    last_forget: Timestamp,
    pub cursor: i64,
    pub feedback_cursor: i64,
    pub counts: Counts,
    /// A tier changed since the last full rescore.
    pub tiers_changed: bool,
}

impl Engine {
    pub fn new(lists: &'static Allowlist) -> Engine {
        let params = ScoreParams::default();
        let co = CoReports::new(0);
        let groups = Groups::singletons(0);
        let scorer = Scorer::new(params.clone(), &[], &groups);
        Engine {
            params,
            rel: ReliabilityParams::default(),
            gp: GroupParams::default(),
            lists,
            index: HashMap::new(),
            items: Vec::new(),
            sources: Vec::new(),
            trusted_users: HashSet::new(),
            co,
            groups,
            scorer,
            judge_queue: Vec::new(),
            judge_all: false,
            last_judge_all: 0,
            retracted: HashSet::new(),
            flags: Vec::new(),
            dirty: Vec::new(),
            declared: HashMap::new(),
            vantage_names: vec![String::new()],
            vantage_ids: HashMap::new(),
            used: HashMap::new(),
            rebuild: false,
            clock: 0,
            last_forget: 0,
            cursor: 0,
            feedback_cursor: 0,
            counts: Counts::default(),
            tiers_changed: false,
        }
    }

    /// Take in the store's sources (new feeds, admin tier changes, declared networks) and
    /// registered sensors (each in its declared network: a vantage point of its feed). The
    /// job's own reliability state is kept for sources it already knows, except what an admin
    /// pinned. Returns true when groups or tiers must be recomputed; sets `rebuild` when a
    /// sensor already seen now maps to another network.
    pub fn sync_sources(&mut self, stored: &[Source], sensors: &[Sensor], first_run: bool) -> bool {
        let n = stored.iter().map(|s| s.feed_id as usize + 1).max().unwrap_or(0);
        let mut changed = false;
        if n > self.sources.len() {
            let old = self.sources.len();
            self.sources.extend((old..n).map(|id| SourceState {
                meta: SourceMeta::new(id as u32, u32::MAX, 0, Vec::new()),
                pinned: false,
                penalties: 0,
                exists: false,
            }));
            self.grow_co(n);
            changed = true;
        }
        let mut declared: HashMap<u32, Declared> = HashMap::new();
        let mut networks: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
        for s in stored {
            if let Some(asn) = s.asn.and_then(|a| u32::try_from(a).ok()).filter(|&a| a != 0) {
                declared.entry(s.feed_id as u32).or_default().asn = Some(format!("AS{asn}"));
                networks.entry(s.feed_id as u32).or_default().push((asn, 0));
            }
        }
        for x in sensors {
            let Some(name) = x.network() else { continue };
            declared.entry(x.feed_id as u32).or_default().sensors.insert(x.name.clone(), name);
            networks.entry(x.feed_id as u32).or_default().push((x.asn.unwrap_or(0), prefix24(x.prefix.as_deref())));
        }
        if declared != self.declared {
            for (&feed, used) in &self.used {
                let new = declared.get(&feed);
                for (sensor, &v) in used {
                    let sensor = (!sensor.is_empty()).then_some(sensor.as_str());
                    if self.vantage_names[v as usize] != new.and_then(|d| d.network(sensor)).unwrap_or("") {
                        self.rebuild = true;
                    }
                }
            }
            self.declared = declared;
        }
        for s in stored {
            let st = &mut self.sources[s.feed_id as usize];
            let mut networks = networks.remove(&(s.feed_id as u32)).unwrap_or_default();
            networks.sort_unstable();
            networks.dedup();
            if !st.exists {
                st.exists = true;
                st.meta.owner = s.owner_id as u32;
                st.meta.created = s.created_at.timestamp();
                st.meta.tier = s.tier;
                st.pinned = s.pinned;
                if first_run {
                    // The job rebuilds reliability from the log; only an admin's tier carries over.
                    st.meta.tier = if s.pinned || s.tier == Tier::Seed { s.tier } else { Tier::Probation };
                }
                changed = true;
            }
            if st.meta.networks != networks {
                st.meta.networks = networks;
                changed = true;
            }
            // An admin's decision wins over what the job earned.
            if s.pinned && (st.meta.tier != s.tier || !st.pinned) {
                st.meta.tier = s.tier;
                changed = true;
            }
            if !s.pinned && st.pinned {
                // Unpinned (set back to probation): earn the tier again.
                st.meta.tier = s.tier;
                changed = true;
            }
            if !s.pinned && s.tier == Tier::Seed && st.meta.tier != Tier::Seed {
                st.meta.tier = Tier::Seed;
                changed = true;
            }
            st.pinned = s.pinned;
        }
        self.trusted_users = self
            .sources
            .iter()
            .filter(|s| s.exists && matches!(s.meta.tier, Tier::Seed | Tier::Established))
            .map(|s| i64::from(s.meta.owner))
            .collect();
        if changed {
            self.tiers_changed = true;
            self.judge_all = true;
        }
        changed
    }

    /// The co-reporting counters for `n` sources, refilled from the items when they grow.
    fn grow_co(&mut self, n: usize) {
        let cap = n.next_power_of_two().max(64);
        if cap <= self.co.sources() {
            return;
        }
        let mut co = CoReports::new(cap);
        let seeds: Vec<bool> = (0..cap).map(|i| self.sources.get(i).is_some_and(|s| s.meta.tier == Tier::Seed)).collect();
        let mut earlier = Vec::new();
        for it in &self.items {
            let mut order: Vec<(u32, u32)> = it.sightings.iter().map(|x| (x.first_seen, x.source)).collect();
            order.sort_unstable();
            order.dedup_by_key(|x| x.1);
            earlier.clear();
            let mut seed_seen = false;
            for &(_, s) in &order {
                if !earlier.contains(&s) {
                    co.record(s, &earlier, seed_seen, |q| seeds[q as usize]);
                    seed_seen |= seeds[s as usize];
                    earlier.push(s);
                }
            }
        }
        self.co = co;
    }

    fn item_index(&mut self, s: &TrustSighting) -> u32 {
        if let Some(&i) = self.index.get(s.indicator.as_str()) {
            return i;
        }
        let i = self.items.len() as u32;
        self.items.push(Item {
            value: s.indicator.as_str().into(),
            itype: s.itype,
            standing: standing_of(&s.indicator, s.itype, s.reserved.as_deref(), self.lists),
            sightings: Vec::new(),
            pending: Vec::new(),
            fp_users: Vec::new(),
            first_seed: None,
            first_public: None,
            refuted: false,
            stored: None,
        });
        self.flags.push(0);
        self.index.insert(s.indicator.as_str().into(), i);
        i
    }

    pub fn index_of(&self, value: &str) -> Option<u32> {
        self.index.get(value).copied()
    }

    fn mark(&mut self, i: u32) {
        let f = &mut self.flags[i as usize];
        if *f & 1 == 0 {
            self.dirty.push(i);
        }
        if *f & 2 == 0 {
            self.judge_queue.push(i);
        }
        *f = 3;
    }

    /// Fold one sighting of the log in. Sightings of feeds the job does not know yet (created
    /// after the last source sync) are ignored until it does: call `sync_sources` first.
    pub fn add_sighting(&mut self, s: &TrustSighting) {
        self.cursor = self.cursor.max(s.seq);
        let src = s.feed_id as usize;
        if !s.shared || src >= self.sources.len() || !self.sources[src].exists {
            return;
        }
        self.counts.sightings += 1;
        let arrived = s.received_at.timestamp();
        self.clock = self.clock.max(arrived);
        let observed = s.observed_until.unwrap_or(s.observed_at).timestamp().min(arrived);
        let first = s.observed_at.timestamp().min(observed);
        let depth = depth_of(&s.tags);
        let network = self.vantage(src as u32, s.sensor.as_deref());
        let i = self.item_index(s);
        let source = src as u32;
        let is_seed = self.sources[src].meta.tier == Tier::Seed;
        let retracted = self.retracted.contains(&(source, i));
        let item = &mut self.items[i as usize];
        let new_source = !item.sightings.iter().any(|x| x.source == source);
        let (first, observed) = (secs(first), secs(observed));
        match item.sightings.iter_mut().find(|x| x.source == source && x.network == network) {
            Some(x) => {
                x.last_seen = x.last_seen.max(observed);
                x.first_seen = x.first_seen.min(first);
                x.depth = x.depth.max(depth);
            }
            None => item.sightings.push(Folded { source, network, first_seen: first, last_seen: observed, depth, retracted }),
        }
        if new_source {
            let earlier: Vec<u32> = item.sightings.iter().map(|x| x.source).filter(|&q| q != source).collect::<HashSet<_>>().into_iter().collect();
            let seed_seen = item.first_seed.is_some();
            let sources = &self.sources;
            self.co.record(source, &earlier, seed_seen, |q| sources.get(q as usize).is_some_and(|s| s.meta.tier == Tier::Seed));
            if is_seed && item.first_seed.is_none() {
                item.first_seed = Some(arrived);
                let others: Vec<u32> = earlier.into_iter().filter(|&q| self.sources[q as usize].meta.tier != Tier::Seed).collect();
                self.co.seed_saw(&others);
            }
            if !is_seed && s.sensor.is_none() && item.first_public.is_none() {
                item.first_public = Some(arrived);
            }
            if !is_seed {
                item.pending.push(Pending { source, arrived: secs(arrived) });
            }
        }
        self.mark(i);
    }

    /// The vantage point of a sighting by `feed` from `sensor`: the id of its declared network
    /// (0 when undeclared), remembered per (feed, sensor) so a later declaration is noticed.
    fn vantage(&mut self, feed: u32, sensor: Option<&str>) -> u32 {
        let key = sensor.unwrap_or("");
        if let Some(&v) = self.used.get(&feed).and_then(|u| u.get(key)) {
            return v;
        }
        let v = match self.declared.get(&feed).and_then(|d| d.network(sensor)) {
            None => 0,
            Some(name) => match self.vantage_ids.get(name) {
                Some(&v) => v,
                None => {
                    let v = self.vantage_names.len() as u32;
                    self.vantage_names.push(name.to_string());
                    self.vantage_ids.insert(name.to_string(), v);
                    v
                }
            },
        };
        self.used.entry(feed).or_default().insert(key.to_string(), v);
        v
    }

    /// Name the vantage points of an explanation (as JSON): each source's `vantage` ids become
    /// `networks` (declared names) and `sensors` (the feed's sensors seen in those networks).
    /// Only admins see a group's sources (`api::score_view`): sensor locations are secrets.
    pub fn name_vantage(&self, ex: &mut serde_json::Value) {
        let Some(terms) = ex.get_mut("terms").and_then(|t| t.as_array_mut()) else { return };
        for src in terms.iter_mut().filter_map(|t| t.get_mut("sources")).filter_map(|s| s.as_array_mut()).flatten() {
            let Some(obj) = src.as_object_mut() else { continue };
            let Some(ids) = obj.remove("vantage") else { continue };
            let ids: Vec<u32> = ids.as_array().into_iter().flatten().filter_map(|v| v.as_u64()).map(|v| v as u32).collect();
            let feed = obj.get("source").and_then(|v| v.as_u64()).unwrap_or(u64::MAX) as u32;
            let mut networks: Vec<&str> =
                ids.iter().filter(|&&v| v != 0).filter_map(|&v| self.vantage_names.get(v as usize)).map(String::as_str).collect();
            networks.sort_unstable();
            let mut sensors: Vec<&str> = self
                .used
                .get(&feed)
                .into_iter()
                .flatten()
                .filter(|(name, v)| !name.is_empty() && ids.contains(v))
                .map(|(name, _)| name.as_str())
                .collect();
            sensors.sort_unstable();
            obj.insert("networks".into(), serde_json::json!(networks));
            obj.insert("sensors".into(), serde_json::json!(sensors));
        }
    }

    /// Take one piece of feedback in.
    pub fn add_feedback(&mut self, f: &Feedback) {
        self.feedback_cursor = self.feedback_cursor.max(f.id);
        self.clock = self.clock.max(f.created_at.timestamp());
        let Some(i) = self.index_of(&f.indicator) else {
            // Feedback on a value no source reported: nothing to score or judge yet. A retraction
            // is remembered for sightings that may still be on their way.
            if let (FeedbackKind::Retraction, Some(feed)) = (f.kind, f.feed_id) {
                let i = self.item_index(&TrustSighting {
                    seq: 0,
                    feed_id: feed,
                    indicator: f.indicator.clone(),
                    itype: f.itype,
                    reserved: None,
                    observed_at: f.created_at,
                    observed_until: None,
                    received_at: f.created_at,
                    tags: Vec::new(),
                    sensor: None,
                    shared: true,
                });
                self.retracted.insert((feed as u32, i));
            }
            return;
        };
        let now = self.clock;
        match f.kind {
            FeedbackKind::FalsePositive => {
                let user = f.user_id;
                let item = &mut self.items[i as usize];
                if !item.fp_users.contains(&user) {
                    item.fp_users.push(user);
                }
                // Upheld (an admin's or a trusted source owner's report): every non-seed
                // reporter of the value is refuted once.
                if (f.user_admin || self.trusted_users.contains(&user)) && !item.refuted {
                    item.refuted = true;
                    let reporters: HashSet<u32> = item.sightings.iter().map(|x| x.source).collect();
                    for s in reporters {
                        self.apply(s, Outcome::Refuted, now);
                    }
                }
            }
            FeedbackKind::Retraction => {
                let Some(feed) = f.feed_id else { return };
                let source = feed as u32;
                if self.retracted.insert((source, i)) {
                    let item = &mut self.items[i as usize];
                    let mut had = false;
                    for x in item.sightings.iter_mut().filter(|x| x.source == source) {
                        x.retracted = true;
                        had = true;
                    }
                    if had {
                        self.apply(source, Outcome::Retracted, now);
                    }
                }
            }
        }
        self.mark(i);
    }

    fn apply(&mut self, source: u32, outcome: Outcome, now: Timestamp) {
        let Some(st) = self.sources.get_mut(source as usize) else { return };
        if st.meta.tier == Tier::Seed {
            return;
        }
        if matches!(outcome, Outcome::Benign | Outcome::Refuted | Outcome::Retracted) {
            st.penalties += 1;
        }
        if outcome == Outcome::Lead {
            self.counts.leads += 1;
        }
        self.counts.judged += 1;
        reliability::apply(&mut st.meta, outcome, now, &self.rel);
    }

    /// The reliability job: forget by the days passed, judge the pending reports, re-earn
    /// tiers. Returns true when a tier changed (the scorer must be rebuilt, a full rescore).
    pub fn judge(&mut self) -> bool {
        let now = self.clock;
        if self.last_forget == 0 {
            self.last_forget = now;
        }
        let days = (now - self.last_forget) / DAY;
        if days > 0 {
            for s in self.sources.iter_mut().filter(|s| s.meta.tier != Tier::Seed) {
                reliability::forget(&mut s.meta.reliability, days as f64, &self.rel);
            }
            self.last_forget += days * DAY;
        }
        // Only items that changed can have a report newly confirmed, unless tiers or groups
        // changed (then every item), and expired reports are dropped once a day.
        let queue = if self.judge_all || now - self.last_judge_all >= DAY {
            self.judge_all = false;
            self.last_judge_all = now;
            for &i in &self.judge_queue {
                self.flags[i as usize] &= !2;
            }
            self.judge_queue.clear();
            (0..self.items.len() as u32).collect()
        } else {
            for &i in &self.judge_queue {
                self.flags[i as usize] &= !2;
            }
            std::mem::take(&mut self.judge_queue)
        };
        let mut outcomes = Vec::new();
        for i in queue {
            if self.items[i as usize].pending.is_empty() {
                continue;
            }
            let mut pending = std::mem::take(&mut self.items[i as usize].pending);
            pending.retain(|&Pending { source: s, arrived }| self.judge_one(s, i, i64::from(arrived), now, &mut outcomes));
            self.items[i as usize].pending = pending;
        }
        for (s, o) in outcomes {
            self.apply(s, o, now);
        }
        let mut changed = false;
        for s in self.sources.iter_mut().filter(|s| s.exists && !s.pinned) {
            let tier = reliability::earned_tier(&s.meta, now, &self.rel);
            if tier != s.meta.tier {
                s.meta.tier = tier;
                changed = true;
            }
        }
        if changed {
            self.tiers_changed = true;
            self.judge_all = true;
        }
        changed
    }

    /// Judge source `s`'s report of item `i` (arrived at `t`): false when it is settled (its
    /// outcome pushed, if any), true while it waits for confirmation.
    fn judge_one(&self, s: u32, i: u32, t: Timestamp, now: Timestamp, outcomes: &mut Vec<(u32, Outcome)>) -> bool {
        let item = &self.items[i as usize];
        if let Standing::Excluded(reason) = &item.standing {
            // Special-use values (bogons, documentation, private ranges) are no evidence about a
            // source either way: lists carry them on purpose (firehol_level1), so they are
            // settled unjudged. Allowlisted (`exclude`) values are a benign report.
            if !reason.starts_with(SPECIAL_USE) {
                outcomes.push((s, Outcome::Benign));
            }
            return false;
        }
        if item.refuted || self.retracted.contains(&(s, i)) {
            return false;
        }
        let own = self.group_of(s);
        let mut est: [u32; 2] = [u32::MAX; 2];
        let mut n_est = 0;
        for x in &item.sightings {
            let g = self.group_of(x.source);
            if g != own && !x.retracted && self.sources[x.source as usize].meta.tier == Tier::Established && !est[..n_est].contains(&g) {
                est[n_est] = g;
                n_est += 1;
                if n_est == 2 {
                    break;
                }
            }
        }
        let confirmed = item.first_seed.is_some() || n_est >= 2;
        match reliability::judge(t, item.first_public, item.first_seed, confirmed) {
            Some(o) => {
                outcomes.push((s, o));
                false
            }
            None => now - t < PENDING_FOR,
        }
    }

    fn group_of(&self, s: u32) -> u32 {
        self.groups.of_source.get(s as usize).copied().unwrap_or(u32::MAX - s)
    }

    /// Recompute the independence groups and the scorer (after tier changes, daily).
    pub fn regroup(&mut self) {
        let metas: Vec<SourceMeta> = self.metas();
        let mut co_metas = metas.clone();
        // The counters may be wider than the sources (rounded up): pad with phantom sources.
        for id in co_metas.len()..self.co.sources() {
            co_metas.push(SourceMeta::new(id as u32, u32::MAX - id as u32, 0, Vec::new()));
        }
        self.groups = groups::compute(&co_metas, &self.co, &self.gp);
        self.scorer = Scorer::new(self.params.clone(), &co_metas, &self.groups);
        self.tiers_changed = false;
        self.judge_all = true;
    }

    fn metas(&self) -> Vec<SourceMeta> {
        self.sources
            .iter()
            .map(|s| {
                let mut m = s.meta.clone();
                if !s.exists {
                    m.tier = Tier::Quarantined;
                    m.owner = u32::MAX - m.id;
                }
                m
            })
            .collect()
    }

    /// The indicators touched since the last call.
    pub fn take_dirty(&mut self) -> Vec<u32> {
        for &i in &self.dirty {
            self.flags[i as usize] &= !1;
        }
        std::mem::take(&mut self.dirty)
    }

    pub fn all(&self) -> Vec<u32> {
        (0..self.items.len() as u32).filter(|&i| !self.items[i as usize].sightings.is_empty()).collect()
    }

    pub fn score(&self, scratch: &mut ScoreScratch, i: u32, now: Timestamp) -> Score {
        let it = &self.items[i as usize];
        scratch.sightings.clear();
        scratch.sightings.extend(it.sightings.iter().map(Folded::sighting));
        let standing = StandingKind::from(&it.standing);
        self.scorer.score_with(&mut scratch.score, it.itype, standing, &scratch.sightings, it.fp_users.len() as u32, now, None)
    }

    pub fn explain(&self, i: u32, now: Timestamp) -> Explanation {
        let it = &self.items[i as usize];
        let sightings: Vec<Sighting> = it.sightings.iter().map(Folded::sighting).collect();
        self.scorer.explain(it.itype, &it.standing, &sightings, it.fp_users.len() as u32, now)
    }

    /// What to write back for every source the job knows.
    pub fn source_updates(&self) -> Vec<SourceUpdate> {
        self.sources
            .iter()
            .filter(|s| s.exists)
            .map(|s| SourceUpdate {
                feed_id: i64::from(s.meta.id),
                tier: s.meta.tier,
                alpha: s.meta.reliability.alpha,
                beta: s.meta.reliability.beta,
                leads: i64::from(s.meta.leads),
                penalties: s.penalties,
                last_penalty: s.meta.last_penalty.and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
                group_id: self.groups.of_source.get(s.meta.id as usize).map(|&g| i64::from(g)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_the_session_tags() {
        let t = |v: &[&str]| depth_of(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&[]), Depth::Handshake);
        assert_eq!(t(&["scanner"]), Depth::Handshake);
        assert_eq!(t(&["connect"]), Depth::Connect);
        assert_eq!(t(&["bruteforce"]), Depth::Auth);
        assert_eq!(t(&["bruteforce", "login"]), Depth::Login);
        assert_eq!(t(&["login", "commands"]), Depth::Commands);
        assert_eq!(t(&["login", "commands", "download"]), Depth::Payload);
    }

    fn source(feed_id: i64, owner_id: i64, tier: Tier, asn: Option<i64>) -> Source {
        Source {
            feed_id,
            feed: format!("u{owner_id}/f{feed_id}"),
            owner_id,
            tier,
            pinned: tier != Tier::Probation,
            alpha: 1.0,
            beta: 9.0,
            leads: 0,
            penalties: 0,
            last_penalty: None,
            group_id: None,
            asn,
            created_at: chrono::Utc::now(),
            updated_at: None,
        }
    }

    fn sensor(feed_id: i64, name: &str, asn: Option<u32>, prefix: Option<&str>) -> Sensor {
        let now = chrono::Utc::now();
        Sensor { feed_id, name: name.into(), asn, prefix: prefix.map(str::to_string), created_at: now, updated_at: now }
    }

    fn sighting(seq: i64, feed_id: i64, value: &str, sensor: Option<&str>) -> TrustSighting {
        let now = chrono::Utc::now();
        TrustSighting {
            seq,
            feed_id,
            indicator: value.into(),
            itype: IType::Ipv4,
            reserved: None,
            observed_at: now,
            observed_until: None,
            received_at: now,
            tags: vec!["login".into()],
            sensor: sensor.map(str::to_string),
            shared: true,
        }
    }

    /// The explanation's entry of one source, as stored.
    fn evidence(e: &Engine, value: &str, feed: u32) -> serde_json::Value {
        let i = e.index_of(value).unwrap();
        let mut ex = serde_json::to_value(e.explain(i, chrono::Utc::now().timestamp())).unwrap();
        e.name_vantage(&mut ex);
        ex["terms"].as_array().unwrap().iter().flat_map(|t| t["sources"].as_array().cloned().unwrap_or_default()).find(|s| s["source"] == feed).unwrap()
    }

    #[test]
    fn sensors_are_vantage_points_in_their_declared_networks() {
        let lists: &'static Allowlist = Box::leak(Box::new(Allowlist::builtin()));
        let mut e = Engine::new(lists);
        // Feed 1 (a seed of owner 1): sensors in two networks, two of them in one. Feed 2 (owner
        // 2) and feed 3 (owner 3) each have a sensor in AS64502; feed 4 (owner 4) declared nothing.
        let sources = [source(1, 1, Tier::Seed, None), source(2, 2, Tier::Probation, None), source(3, 3, Tier::Probation, None), source(4, 4, Tier::Probation, None)];
        let sensors = [
            sensor(1, "a", Some(64500), None),
            sensor(1, "b", Some(64500), Some("198.51.100.0/24")),
            sensor(1, "c", None, Some("203.0.113.0/24")),
            sensor(2, "x", Some(64502), None),
            sensor(3, "y", Some(64502), None),
        ];
        e.sync_sources(&sources, &sensors, true);
        e.regroup();
        let v = "45.155.205.17";
        let mut seq = 0;
        for (feed, sensor) in [(1, Some("a")), (1, Some("b")), (1, Some("c")), (2, Some("x")), (3, Some("y")), (4, Some("p")), (4, Some("q")), (4, None)] {
            seq += 1;
            e.add_sighting(&sighting(seq, feed, v, sensor));
        }
        // Two networks for the seed (a and b share AS64500): two vantage points, named for admins.
        let seed = evidence(&e, v, 1);
        assert_eq!(seed["sightings"], 2, "{seed}");
        assert_eq!(seed["networks"], serde_json::json!(["203.0.113.0/24", "AS64500"]), "{seed}");
        assert_eq!(seed["sensors"], serde_json::json!(["a", "b", "c"]), "{seed}");
        assert!(seed.get("vantage").is_none());
        // Undeclared sensors are the feed's one own vantage point, however many names it sends.
        let plain = evidence(&e, v, 4);
        assert_eq!((plain["sightings"].as_u64(), plain["networks"].as_array().map(Vec::len)), (Some(1), Some(0)), "{plain}");
        // Owners in one declared network share an independence group; the seed stays alone.
        let g = |f: usize| e.groups.of_source[f];
        assert_eq!(g(2), g(3));
        assert_ne!(g(2), g(4));
        assert_ne!(g(1), g(2));
        assert!(e.groups.links.iter().any(|l| matches!(l.reason, groups::LinkReason::SameAsn { asn: 64502 })));
        assert!(!e.rebuild);
        // Registering a sensor already seen undeclared moves its sightings: the job must rebuild.
        let mut more = sensors.to_vec();
        more.push(sensor(4, "q", Some(64510), None));
        e.sync_sources(&sources, &more, false);
        assert!(e.rebuild);
        // A fresh engine with the new declarations: feed 4 has two vantage points now.
        let mut fresh = Engine::new(lists);
        fresh.sync_sources(&sources, &more, true);
        fresh.regroup();
        for (seq, (feed, sensor)) in [(4, Some("p")), (4, Some("q")), (4, None)].into_iter().enumerate() {
            fresh.add_sighting(&sighting(seq as i64 + 1, feed, v, sensor));
        }
        let plain = evidence(&fresh, v, 4);
        assert_eq!((plain["sightings"].as_u64(), plain["sensors"].clone()), (Some(2), serde_json::json!(["p", "q"])), "{plain}");
        // A sensor declared before any of its sightings needs no rebuild.
        more.push(sensor(4, "new", Some(64511), None));
        fresh.sync_sources(&sources, &more, false);
        assert!(!fresh.rebuild);
    }

    #[test]
    fn special_use_and_allowlisted_values_are_excluded() {
        let lists: &'static Allowlist = Box::leak(Box::new(Allowlist::builtin()));
        assert!(matches!(standing_of("10.0.0.1", IType::Ipv4, Some("private"), lists), Standing::Excluded(_)));
        assert!(matches!(standing_of("8.8.8.8", IType::Ipv4, None, lists), Standing::Excluded(_)));
        assert_eq!(standing_of("93.184.216.34", IType::Ipv4, None, lists), Standing::Normal);
    }

    #[test]
    fn private_and_amber_red_sightings_are_no_evidence() {
        let lists: &'static Allowlist = Box::leak(Box::new(Allowlist::builtin()));
        let mut e = Engine::new(lists);
        let sources = [source(1, 1, Tier::Seed, None), source(2, 2, Tier::Probation, None)];
        e.sync_sources(&sources, &[], true);
        e.regroup();
        let v = "45.155.205.18";
        e.add_sighting(&sighting(1, 2, v, None));
        // The seed's report is in a private feed (or marked AMBER/RED): not shared, so it moves
        // nothing every reader sees — no evidence, no judging, no term in the explanation.
        let mut private = sighting(2, 1, v, None);
        private.shared = false;
        e.add_sighting(&private);
        assert_eq!(e.cursor, 2, "the cursor still moves past it");
        let now = chrono::Utc::now().timestamp();
        let with = e.explain(e.index_of(v).unwrap(), now);
        let mut alone = Engine::new(lists);
        alone.sync_sources(&sources, &[], true);
        alone.regroup();
        alone.add_sighting(&sighting(1, 2, v, None));
        let without = alone.explain(alone.index_of(v).unwrap(), now);
        assert_eq!((with.confidence, with.log_odds), (without.confidence, without.log_odds));
        assert_eq!(with.terms.len(), without.terms.len());
    }

    #[test]
    fn one_special_use_and_one_allowlisted_report_never_quarantine_a_fresh_feed() {
        let lists: &'static Allowlist = Box::leak(Box::new(Allowlist::builtin()));
        let mut e = Engine::new(lists);
        let sources = [source(1, 1, Tier::Probation, None)];
        e.sync_sources(&sources, &[], true);
        e.regroup();
        let mut doc = sighting(1, 1, "198.51.100.23", None);
        doc.reserved = Some("documentation".into());
        e.add_sighting(&doc);
        e.add_sighting(&sighting(2, 1, "8.8.8.8", None));
        e.judge();
        let meta = &e.sources[1].meta;
        // The special-use value is no evidence (not judged); the allowlisted one is one benign
        // report, far from the judged reports quarantine needs.
        assert_eq!(meta.judged, 1, "{meta:?}");
        assert_eq!(meta.reliability.beta, apiary_core::trust::Beta::PRIOR.beta + ReliabilityParams::default().benign, "{meta:?}");
        assert_eq!(meta.tier, Tier::Probation, "{meta:?}");
    }
}
