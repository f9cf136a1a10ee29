//! Independence groups: sources whose reports are not independent evidence share one group,
//! and a group's evidence is capped. Union-find over: same owner; same sensor ASN or /24; copy
//! clusters (A's items are mostly B's, and A listed them later); collusion clusters (high Jaccard
//! on items no seed ever saw).
//!
//! Seeds are named by an admin and never share a group with another owner's sources: a stranger
//! in a seed's network, or one that copies a seed, must not borrow the seed's standing.

use super::{SourceId, SourceMeta, Tier};
use serde::{Deserialize, Serialize};

/// Thresholds of the copy and collusion clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupParams {
    /// |A∩B|/|A| above this, with A later on `copy_later` of the shared items: A copies B.
    pub copy_containment: f64,
    pub copy_later: f64,
    /// A needs at least this many items to be judged a copier.
    pub copy_min_items: u32,
    /// Jaccard of the items no seed saw above this, with at least `collusion_min_shared` shared.
    pub collusion_jaccard: f64,
    pub collusion_min_shared: u32,
}

impl Default for GroupParams {
    fn default() -> Self {
        GroupParams { copy_containment: 0.7, copy_later: 0.9, copy_min_items: 20, collusion_jaccard: 0.3, collusion_min_shared: 10 }
    }
}

/// Why two sources are linked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum LinkReason {
    SameOwner,
    SameAsn { asn: u32 },
    SamePrefix { prefix24: u32 },
    /// `a` copies `b`: the share of a's items that b had, and listed earlier.
    Copies { containment: f64 },
    /// Both report the same items no seed ever saw.
    Collusion { jaccard: f64, shared: u32 },
}

/// A link found between two sources, and whether it merged their groups (links to seeds do not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub a: SourceId,
    pub b: SourceId,
    #[serde(flatten)]
    pub reason: LinkReason,
    pub merged: bool,
}

/// The independence groups of all sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Groups {
    /// Group id (0..count) of each source id.
    pub of_source: Vec<u32>,
    pub count: u32,
    pub links: Vec<Link>,
}

impl Groups {
    /// Every source alone in its own group.
    pub fn singletons(n: usize) -> Groups {
        Groups { of_source: (0..n as u32).collect(), count: n as u32, links: Vec::new() }
    }

    /// The members of each group.
    pub fn members(&self) -> Vec<Vec<SourceId>> {
        let mut m = vec![Vec::new(); self.count as usize];
        for (s, &g) in self.of_source.iter().enumerate() {
            m[g as usize].push(s as SourceId);
        }
        m
    }
}

/// Co-reporting counts between sources, kept incrementally as reports arrive (cheap per report,
/// and the group computation reads only these counters). Dense n×n: fine for thousands of sources.
#[derive(Debug, Clone)]
pub struct CoReports {
    n: usize,
    items: Vec<u32>,
    unseen: Vec<u32>,
    shared: Vec<u32>,
    later: Vec<u32>,
    unseen_shared: Vec<u32>,
}

impl CoReports {
    pub fn new(n: usize) -> CoReports {
        CoReports { n, items: vec![0; n], unseen: vec![0; n], shared: vec![0; n * n], later: vec![0; n * n], unseen_shared: vec![0; n * n] }
    }

    pub fn sources(&self) -> usize {
        self.n
    }

    /// Items a source has reported.
    pub fn items(&self, s: SourceId) -> u32 {
        self.items[s as usize]
    }

    /// Items reported by both a and b.
    pub fn shared(&self, a: SourceId, b: SourceId) -> u32 {
        self.shared[a as usize * self.n + b as usize]
    }

    /// Source `s` reports an item for the first time; `earlier` are the sources that reported it
    /// before (s lists it later than each of them). `seed_seen`: a seed has seen the item, and
    /// `is_seed(s)`: s is a seed (seeds' reports are never "unseen by a seed").
    pub fn record(&mut self, s: SourceId, earlier: &[SourceId], seed_seen: bool, is_seed: impl Fn(SourceId) -> bool) {
        let n = self.n;
        let si = s as usize;
        self.items[si] += 1;
        let unseen = !seed_seen && !is_seed(s);
        if unseen {
            self.unseen[si] += 1;
        }
        for &t in earlier {
            let ti = t as usize;
            if ti == si {
                continue;
            }
            self.shared[si * n + ti] += 1;
            self.shared[ti * n + si] += 1;
            self.later[si * n + ti] += 1;
            if unseen && !is_seed(t) {
                self.unseen_shared[si * n + ti] += 1;
                self.unseen_shared[ti * n + si] += 1;
            }
        }
    }

    /// A seed saw, for the first time, an item that `reporters` (non-seeds) had reported: it no
    /// longer counts as unseen for them.
    pub fn seed_saw(&mut self, reporters: &[SourceId]) {
        let n = self.n;
        for (i, &a) in reporters.iter().enumerate() {
            let ai = a as usize;
            self.unseen[ai] = self.unseen[ai].saturating_sub(1);
            for &b in &reporters[i + 1..] {
                let bi = b as usize;
                if ai != bi {
                    self.unseen_shared[ai * n + bi] = self.unseen_shared[ai * n + bi].saturating_sub(1);
                    self.unseen_shared[bi * n + ai] = self.unseen_shared[bi * n + ai].saturating_sub(1);
                }
            }
        }
    }
}

struct UnionFind {
    parent: Vec<u32>,
    seed: Vec<bool>,
}

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    /// Merge unless one side holds a seed (`allow_seed` only for same-owner links).
    fn union(&mut self, a: u32, b: u32, allow_seed: bool) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        if !allow_seed && (self.seed[ra as usize] || self.seed[rb as usize]) {
            return false;
        }
        self.parent[rb as usize] = ra;
        self.seed[ra as usize] |= self.seed[rb as usize];
        true
    }
}

/// Compute the groups of `sources` (ids dense in 0..co.sources()).
pub fn compute(sources: &[SourceMeta], co: &CoReports, params: &GroupParams) -> Groups {
    let n = co.n;
    let mut seed = vec![false; n];
    for s in sources {
        seed[s.id as usize] = s.tier == Tier::Seed;
    }
    let mut uf = UnionFind { parent: (0..n as u32).collect(), seed: seed.clone() };
    let mut links = Vec::new();
    // Same owner first: the only links that may join a seed.
    let mut by_owner: Vec<(u32, SourceId)> = sources.iter().map(|s| (s.owner, s.id)).collect();
    by_owner.sort_unstable();
    for w in by_owner.windows(2) {
        if w[0].0 == w[1].0 {
            let merged = uf.union(w[0].1, w[1].1, true);
            links.push(Link { a: w[1].1, b: w[0].1, reason: LinkReason::SameOwner, merged });
        }
    }
    let mut by_asn: Vec<(u32, SourceId)> = Vec::new();
    let mut by_prefix: Vec<(u32, SourceId)> = Vec::new();
    for s in sources {
        for &(asn, p24) in &s.networks {
            if asn != 0 {
                by_asn.push((asn, s.id));
            }
            if p24 & 0xffff_ff00 != 0 {
                by_prefix.push((p24 & 0xffff_ff00, s.id));
            }
        }
    }
    for (list, is_asn) in [(&mut by_asn, true), (&mut by_prefix, false)] {
        list.sort_unstable();
        list.dedup();
        for w in list.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 != w[1].1 {
                let merged = uf.union(w[0].1, w[1].1, false);
                let reason = if is_asn { LinkReason::SameAsn { asn: w[0].0 } } else { LinkReason::SamePrefix { prefix24: w[0].0 } };
                links.push(Link { a: w[1].1, b: w[0].1, reason, merged });
            }
        }
    }
    for a in 0..n {
        for b in 0..n {
            if a == b {
                continue;
            }
            let shared = co.shared[a * n + b];
            let items = co.items[a];
            if items >= params.copy_min_items && shared > 0 {
                let containment = f64::from(shared) / f64::from(items);
                if containment > params.copy_containment && f64::from(co.later[a * n + b]) >= params.copy_later * f64::from(shared) {
                    let merged = uf.union(a as u32, b as u32, false);
                    links.push(Link { a: a as u32, b: b as u32, reason: LinkReason::Copies { containment }, merged });
                }
            }
            if a < b {
                let us = co.unseen_shared[a * n + b];
                if us >= params.collusion_min_shared {
                    let jaccard = f64::from(us) / f64::from((co.unseen[a] + co.unseen[b]).saturating_sub(us)).max(1.0);
                    if jaccard > params.collusion_jaccard {
                        let merged = uf.union(a as u32, b as u32, false);
                        links.push(Link { a: a as u32, b: b as u32, reason: LinkReason::Collusion { jaccard, shared: us }, merged });
                    }
                }
            }
        }
    }
    let mut id_of_root = vec![u32::MAX; n];
    let mut of_source = vec![0; n];
    let mut count = 0;
    for s in 0..n as u32 {
        let r = uf.find(s) as usize;
        if id_of_root[r] == u32::MAX {
            id_of_root[r] = count;
            count += 1;
        }
        of_source[s as usize] = id_of_root[r];
    }
    Groups { of_source, count, links }
}
