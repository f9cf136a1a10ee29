//! Feed comparison: what each feed adds, measured against the others and against the trusted
//! (seed-tier) feeds, after Li et al., "Reading the Tea Leaves" (USENIX Security 2019).
//!
//! Pure: the caller (the hub's comparison job, `apiary feed compare --data`, tests) hands in every
//! value with the feeds that list it and their first and last times, and a [`Scorer`] whose
//! source ids are the feeds' indexes; [`compare`] returns one [`FeedRow`] per feed and the
//! pairwise [`Overlap`] matrix.
//!
//! Definitions (A is a feed, `|A|` its distinct values, T₋A the union of the trusted feeds other
//! than A — so a seed is measured against the *other* seeds):
//!
//! - volume `|A|`; new in the last 24 h and per day over the last 7 days (by A's first time);
//! - exclusive `|A ∖ ∪ others|`, differential against B `|A ∖ B| / |A|`;
//! - trusted overlap `|A ∩ T₋A| / |A|`, trusted recall `|A ∩ T₋A| / |T₋A|`;
//! - latency: over `A ∩ T₋A`, A's first time minus the first time any trusted feed (other than
//!   A) listed the value, median and 90th percentile, in hours (negative: A was earlier); lead
//!   rate: the share of `A ∩ T₋A` that A listed strictly before every trusted feed;
//! - lifetime: median of last − first over A's entries, in hours;
//! - allowlisted: A's values that are excluded (special-use or on an exclude allowlist) or held
//!   (popular infrastructure on a hold list);
//! - marginal lift: BLOCK-tier values that would not be BLOCK without A's evidence — the same
//!   [`Scorer`] run again with A's sightings removed.

use super::score::{ScoreTier, Scorer, Scratch, StandingKind};
use super::{Depth, Sighting, Timestamp};
use crate::IType;
use serde::{Deserialize, Serialize};

const HOUR: f64 = 3600.0;
const DAY: i64 = 86_400;

/// A feed as the comparison knows it. Its position in the slice handed to [`compare`] is its
/// source id in the [`Scorer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedInfo {
    /// The caller's id of the feed (the store's feed id); carried through to the rows.
    pub id: i64,
    /// `owner/name`.
    pub name: String,
    /// A trusted (seed-tier) feed: the reference of the trusted overlap, recall and latency.
    pub trusted: bool,
    /// The vantage point its sightings count from (a declared ASN, or 0 when unknown).
    pub network: u32,
}

/// One feed's listing of one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Index of the feed in the feeds handed to [`compare`].
    pub feed: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// How deep the feed's deepest session with it went (`Handshake` for a plain feed entry).
    pub depth: Depth,
}

/// One value with every feed that lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueEntries {
    pub itype: IType,
    /// Excluded (special-use, exclude allowlist), held (hold allowlist) or normal.
    pub standing: StandingKind,
    pub entries: Vec<Entry>,
}

/// The comparison of one feed with the others. Shares are `null` where their denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedRow {
    pub id: i64,
    pub feed: String,
    pub trusted: bool,
    /// Distinct values the feed lists.
    pub volume: u64,
    /// Values the feed first listed in the last 24 hours.
    pub new_24h: u64,
    /// Values the feed first listed per day, averaged over the last 7 days.
    pub new_per_day: f64,
    /// Values no other feed lists, and their share of the volume.
    pub exclusive: u64,
    pub exclusive_share: Option<f64>,
    /// Values also listed by a trusted feed (other than this one): count, share of the volume,
    /// and recall (share of everything the other trusted feeds list).
    pub trusted_overlap: u64,
    pub trusted_overlap_share: Option<f64>,
    pub trusted_recall: Option<f64>,
    /// Hours from the first trusted listing to this feed's (negative: this feed was earlier).
    pub latency_median_hours: Option<f64>,
    pub latency_p90_hours: Option<f64>,
    /// Share of the trusted overlap this feed listed before every trusted feed.
    pub lead_rate: Option<f64>,
    /// Median hours from an entry's first to its last time.
    pub lifetime_median_hours: Option<f64>,
    /// Values that are excluded (special-use or exclude allowlist) or held (hold allowlist).
    pub allowlisted: u64,
    pub held: u64,
    /// (allowlisted + held) / volume.
    pub allowlisted_share: Option<f64>,
    /// BLOCK-tier values the feed lists.
    pub block: u64,
    /// BLOCK-tier values that drop below BLOCK without this feed.
    pub marginal_lift: u64,
}

/// Pairwise intersections: `intersect[a][b] = |A ∩ B|` (the diagonal is the volume), and the
/// differential contribution `differential[a][b] = |A ∖ B| / |A|` (null for an empty A).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    pub ids: Vec<i64>,
    pub feeds: Vec<String>,
    pub intersect: Vec<Vec<u64>>,
    pub differential: Vec<Vec<Option<f64>>>,
}

/// The result of one comparison run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The `now` of the run (seconds since the epoch): scores and "new" windows are as of then.
    pub computed_at: Timestamp,
    /// Distinct values compared, of them listed by a trusted feed, and at BLOCK tier.
    pub values: u64,
    pub trusted_values: u64,
    pub block_values: u64,
    /// How the trusted feeds were chosen (filled in by the caller, e.g. "source tier seed").
    #[serde(default)]
    pub trusted_by: String,
    /// One row per feed, sorted by marginal lift, then volume (both descending), then name.
    pub rows: Vec<FeedRow>,
    pub overlap: Overlap,
}

impl Comparison {
    /// The comparison as a reader who may see only some feeds sees it: their rows, and the
    /// matrix cut to them. Counts in the rows (exclusive, lift, ...) stay the hub-wide ones.
    pub fn restrict(&self, keep: impl Fn(i64) -> bool) -> Comparison {
        let idx: Vec<usize> = (0..self.overlap.ids.len()).filter(|&i| keep(self.overlap.ids[i])).collect();
        let pick = |m: &Vec<Vec<u64>>| idx.iter().map(|&a| idx.iter().map(|&b| m[a][b]).collect()).collect();
        let pick_f = |m: &Vec<Vec<Option<f64>>>| idx.iter().map(|&a| idx.iter().map(|&b| m[a][b]).collect()).collect();
        Comparison {
            rows: self.rows.iter().filter(|r| keep(r.id)).cloned().collect(),
            overlap: Overlap {
                ids: idx.iter().map(|&i| self.overlap.ids[i]).collect(),
                feeds: idx.iter().map(|&i| self.overlap.feeds[i].clone()).collect(),
                intersect: pick(&self.overlap.intersect),
                differential: pick_f(&self.overlap.differential),
            },
            ..self.clone()
        }
    }
}

#[derive(Default, Clone)]
struct Acc {
    volume: u64,
    new_24h: u64,
    new_7d: u64,
    exclusive: u64,
    trusted_overlap: u64,
    leads: u64,
    latencies: Vec<i64>,
    lifetimes: Vec<i64>,
    allowlisted: u64,
    held: u64,
    block: u64,
    lift: u64,
    /// Values only this feed, of the trusted feeds, lists (so T₋A = T minus these).
    trusted_alone: u64,
}

/// Compare every feed with the others. `scorer`'s source ids must be the indexes of `feeds`.
pub fn compare(feeds: &[FeedInfo], values: &[ValueEntries], scorer: &Scorer, now: Timestamp) -> Comparison {
    let n = feeds.len();
    let mut acc = vec![Acc::default(); n];
    let mut intersect = vec![vec![0u64; n]; n];
    let (mut trusted_values, mut block_values, mut compared) = (0u64, 0u64, 0u64);
    let mut entries: Vec<Entry> = Vec::new();
    let mut sightings: Vec<Sighting> = Vec::new();
    let mut without: Vec<Sighting> = Vec::new();
    let mut scratch = Scratch::default();
    for v in values {
        merge_entries(&v.entries, n, &mut entries);
        if entries.is_empty() {
            continue;
        }
        compared += 1;
        // The first and second earliest trusted listings (so a trusted A compares with the others).
        let mut t1: Option<(Timestamp, u32)> = None;
        let mut t2: Option<Timestamp> = None;
        let mut trusted_n = 0;
        for e in &entries {
            if !feeds[e.feed as usize].trusted {
                continue;
            }
            trusted_n += 1;
            match t1 {
                Some((t, _)) if e.first_seen >= t => t2 = Some(t2.map_or(e.first_seen, |x: i64| x.min(e.first_seen))),
                _ => {
                    t2 = t1.map(|(t, _)| t);
                    t1 = Some((e.first_seen, e.feed));
                }
            }
        }
        if trusted_n > 0 {
            trusted_values += 1;
        }
        for (i, e) in entries.iter().enumerate() {
            let a = &mut acc[e.feed as usize];
            a.volume += 1;
            if e.first_seen >= now - DAY {
                a.new_24h += 1;
            }
            if e.first_seen >= now - 7 * DAY {
                a.new_7d += 1;
            }
            if entries.len() == 1 {
                a.exclusive += 1;
            }
            a.lifetimes.push((e.last_seen - e.first_seen).max(0));
            match v.standing {
                StandingKind::Excluded => a.allowlisted += 1,
                StandingKind::Held => a.held += 1,
                StandingKind::Normal => {}
            }
            let first_trusted = match t1 {
                Some((_, f)) if f == e.feed => t2,
                Some((t, _)) => Some(t),
                None => None,
            };
            if let Some(t) = first_trusted {
                a.trusted_overlap += 1;
                a.latencies.push(e.first_seen - t);
                if e.first_seen < t {
                    a.leads += 1;
                }
            } else if trusted_n == 1 {
                a.trusted_alone += 1;
            }
            for other in &entries[i + 1..] {
                intersect[e.feed as usize][other.feed as usize] += 1;
                intersect[other.feed as usize][e.feed as usize] += 1;
            }
        }
        if v.standing == StandingKind::Excluded {
            continue;
        }
        sightings.clear();
        sightings.extend(entries.iter().map(|e| Sighting {
            source: e.feed,
            network: feeds[e.feed as usize].network,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            depth: e.depth,
            retracted: false,
        }));
        let full = scorer.score_with(&mut scratch, v.itype, v.standing, &sightings, 0, now, None);
        if full.tier != ScoreTier::Block {
            continue;
        }
        block_values += 1;
        for e in &entries {
            acc[e.feed as usize].block += 1;
            without.clear();
            without.extend(sightings.iter().filter(|s| s.source != e.feed));
            let rest = scorer.score_with(&mut scratch, v.itype, v.standing, &without, 0, now, None);
            if rest.tier != ScoreTier::Block {
                acc[e.feed as usize].lift += 1;
            }
        }
    }
    let trusted_total = trusted_values;
    let share = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let mut rows: Vec<FeedRow> = Vec::with_capacity(n);
    for (f, a) in feeds.iter().zip(acc.iter_mut()) {
        intersect_diag(&mut intersect, rows.len(), a.volume);
        let others_trusted = trusted_total - a.trusted_alone;
        a.latencies.sort_unstable();
        a.lifetimes.sort_unstable();
        rows.push(FeedRow {
            id: f.id,
            feed: f.name.clone(),
            trusted: f.trusted,
            volume: a.volume,
            new_24h: a.new_24h,
            new_per_day: a.new_7d as f64 / 7.0,
            exclusive: a.exclusive,
            exclusive_share: share(a.exclusive, a.volume),
            trusted_overlap: a.trusted_overlap,
            trusted_overlap_share: share(a.trusted_overlap, a.volume),
            trusted_recall: share(a.trusted_overlap, others_trusted),
            latency_median_hours: median(&a.latencies).map(|x| x / HOUR),
            latency_p90_hours: percentile(&a.latencies, 0.9).map(|x| x as f64 / HOUR),
            lead_rate: share(a.leads, a.trusted_overlap),
            lifetime_median_hours: median(&a.lifetimes).map(|x| x / HOUR),
            allowlisted: a.allowlisted,
            held: a.held,
            allowlisted_share: share(a.allowlisted + a.held, a.volume),
            block: a.block,
            marginal_lift: a.lift,
        });
    }
    let differential = (0..n)
        .map(|a| (0..n).map(|b| share(intersect[a][a] - intersect[a][b], intersect[a][a])).collect())
        .collect();
    let overlap = Overlap {
        ids: feeds.iter().map(|f| f.id).collect(),
        feeds: feeds.iter().map(|f| f.name.clone()).collect(),
        intersect,
        differential,
    };
    rows.sort_by(|x, y| {
        y.marginal_lift
            .cmp(&x.marginal_lift)
            .then(y.volume.cmp(&x.volume))
            .then_with(|| x.feed.cmp(&y.feed))
    });
    Comparison {
        computed_at: now,
        values: compared,
        trusted_values,
        block_values,
        trusted_by: String::new(),
        rows,
        overlap,
    }
}

fn intersect_diag(m: &mut [Vec<u64>], i: usize, volume: u64) {
    m[i][i] = volume;
}

/// One entry per feed (earliest first, latest last, deepest depth), feeds out of range dropped.
fn merge_entries(input: &[Entry], n: usize, out: &mut Vec<Entry>) {
    out.clear();
    for e in input.iter().filter(|e| (e.feed as usize) < n) {
        match out.iter_mut().find(|o| o.feed == e.feed) {
            Some(o) => {
                o.first_seen = o.first_seen.min(e.first_seen);
                o.last_seen = o.last_seen.max(e.last_seen);
                o.depth = o.depth.max(e.depth);
            }
            None => out.push(*e),
        }
    }
}

/// Median of a sorted slice (the mean of the two middle values for an even length).
fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    })
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::groups::Groups;
    use crate::trust::score::ScoreParams;
    use crate::trust::{SourceMeta, Tier};

    const H: i64 = 3600;
    const NOW: i64 = 100 * DAY;

    fn feed(id: i64, name: &str, trusted: bool) -> FeedInfo {
        FeedInfo {
            id,
            name: name.into(),
            trusted,
            network: id as u32,
        }
    }

    fn e(feed: u32, first: i64, last: i64) -> Entry {
        Entry {
            feed,
            first_seen: first,
            last_seen: last,
            depth: Depth::Handshake,
        }
    }

    fn value(entries: Vec<Entry>) -> ValueEntries {
        ValueEntries {
            itype: IType::Ipv4,
            standing: StandingKind::Normal,
            entries,
        }
    }

    /// Feeds are their own sources and groups; `tiers[i]` is feed i's tier.
    fn scorer(tiers: &[Tier]) -> Scorer {
        let metas: Vec<SourceMeta> = tiers
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let mut m = SourceMeta::new(i as u32, i as u32, 0, vec![]);
                m.tier = t;
                m
            })
            .collect();
        Scorer::new(ScoreParams::default(), &metas, &Groups::singletons(tiers.len()))
    }

    fn row<'a>(c: &'a Comparison, name: &str) -> &'a FeedRow {
        c.rows.iter().find(|r| r.feed == name).expect("a row per feed")
    }

    /// Three feeds, hand-checked: S (trusted) lists x1 x2 x3; A lists x1 x2 x4 x5; B lists x2 x5.
    #[test]
    fn volumes_exclusive_differential_and_trusted_overlap() {
        let feeds = vec![feed(10, "s/seed", true), feed(11, "a/alpha", false), feed(12, "b/beta", false)];
        let t0 = NOW - 50 * DAY;
        let values = vec![
            // x1: S at t0, A 2 h later.
            value(vec![e(0, t0, t0 + 5 * H), e(1, t0 + 2 * H, t0 + 3 * H)]),
            // x2: A first (4 h before S), B after S.
            value(vec![
                e(0, t0 + 10 * H, t0 + 10 * H),
                e(1, t0 + 6 * H, t0 + 7 * H),
                e(2, t0 + 20 * H, t0 + 20 * H),
            ]),
            // x3: S alone.
            value(vec![e(0, t0, t0)]),
            // x4: A alone, first listed 2 h ago (new).
            value(vec![e(1, NOW - 2 * H, NOW - H)]),
            // x5: A and B.
            value(vec![e(1, t0, t0 + H), e(2, t0, t0)]),
        ];
        let c = compare(&feeds, &values, &scorer(&[Tier::Seed, Tier::Probation, Tier::Probation]), NOW);
        assert_eq!((c.values, c.trusted_values), (5, 3));
        let (s, a, b) = (row(&c, "s/seed"), row(&c, "a/alpha"), row(&c, "b/beta"));
        assert_eq!((s.volume, a.volume, b.volume), (3, 4, 2));
        assert_eq!((s.exclusive, a.exclusive, b.exclusive), (1, 1, 0));
        assert_eq!(a.exclusive_share, Some(0.25));
        assert_eq!((a.new_24h, s.new_24h), (1, 0));
        assert!((a.new_per_day - 1.0 / 7.0).abs() < 1e-12);
        // A ∩ T = {x1, x2}: 2 of 4, recall 2 of 3; latencies +2 h and −4 h; one lead of two.
        assert_eq!(a.trusted_overlap, 2);
        assert_eq!(a.trusted_overlap_share, Some(0.5));
        assert_eq!(a.trusted_recall, Some(2.0 / 3.0));
        assert_eq!(a.latency_median_hours, Some(-1.0));
        assert_eq!(a.latency_p90_hours, Some(2.0));
        assert_eq!(a.lead_rate, Some(0.5));
        // B ∩ T = {x2}: 10 h late, no lead.
        assert_eq!((b.trusted_overlap, b.latency_median_hours, b.lead_rate), (1, Some(10.0), Some(0.0)));
        // The only trusted feed has no other trusted feed to be measured against.
        assert_eq!((s.trusted_overlap, s.trusted_recall, s.lead_rate), (0, None, None));
        // Lifetimes of A: 1 h, 1 h, 1 h, 1 h → 1 h; of S: 5 h, 0, 0 → 0.
        assert_eq!(a.lifetime_median_hours, Some(1.0));
        assert_eq!(s.lifetime_median_hours, Some(0.0));
        // Matrix: |S∩A| = 2, |S∩B| = 1, |A∩B| = 2; differential A∖B = 2/4, B∖A = 0.
        let m = &c.overlap;
        assert_eq!(m.intersect, vec![vec![3, 2, 1], vec![2, 4, 2], vec![1, 2, 2]]);
        assert_eq!(m.differential[1][2], Some(0.5));
        assert_eq!(m.differential[2][1], Some(0.0));
        assert_eq!(m.differential[0][0], Some(0.0));
    }

    #[test]
    fn trusted_feeds_are_measured_against_the_other_trusted_feeds() {
        let feeds = vec![feed(1, "s/one", true), feed(2, "s/two", true)];
        let t = NOW - 10 * DAY;
        let values = vec![
            value(vec![e(0, t, t), e(1, t + 3 * H, t + 3 * H)]),
            value(vec![e(0, t, t)]),
            value(vec![e(1, t, t)]),
            value(vec![e(1, t + H, t + H)]),
        ];
        let c = compare(&feeds, &values, &scorer(&[Tier::Seed, Tier::Seed]), NOW);
        let (one, two) = (row(&c, "s/one"), row(&c, "s/two"));
        // T₋one = two's 3 values; one shares 1 of them and listed it 3 h earlier.
        assert_eq!(
            (one.trusted_overlap, one.trusted_recall, one.lead_rate),
            (1, Some(1.0 / 3.0), Some(1.0))
        );
        assert_eq!(one.latency_median_hours, Some(-3.0));
        // T₋two = one's 2 values; two shares 1, 3 h late.
        assert_eq!((two.trusted_overlap, two.trusted_recall, two.lead_rate), (1, Some(0.5), Some(0.0)));
        assert_eq!(two.latency_median_hours, Some(3.0));
    }

    #[test]
    fn marginal_lift_counts_block_values_that_need_the_feed() {
        // Three seeds and a stranger, recent sightings (no decay to speak of).
        let feeds = vec![
            feed(1, "s/one", true),
            feed(2, "s/two", true),
            feed(3, "s/three", true),
            feed(4, "x/stranger", false),
        ];
        let t = NOW - H;
        let sc = scorer(&[Tier::Seed, Tier::Seed, Tier::Seed, Tier::Probation]);
        // The premises, from the scorer itself: one seed's handshake is not BLOCK, two seeds' are,
        // and a seed with a stranger is not.
        let tier = |s: &[Sighting]| sc.score(IType::Ipv4, &crate::trust::Standing::Normal, s, 0, NOW).tier;
        assert_ne!(tier(&[sighting(0, t)]), ScoreTier::Block);
        assert_eq!(tier(&[sighting(0, t), sighting(1, t)]), ScoreTier::Block);
        assert_ne!(tier(&[sighting(0, t), sighting(3, t)]), ScoreTier::Block);
        let values = vec![
            // Three seeds: BLOCK without any one of them too, so no lift for anyone.
            value(vec![e(0, t, t), e(1, t, t), e(2, t, t)]),
            // Two seeds: each is needed.
            value(vec![e(0, t, t), e(1, t, t)]),
            // A seed and the stranger: not BLOCK.
            value(vec![e(0, t, t), e(3, t, t)]),
        ];
        let c = compare(&feeds, &values, &sc, NOW);
        assert_eq!(c.block_values, 2);
        let lift = |name: &str| (row(&c, name).block, row(&c, name).marginal_lift);
        assert_eq!(lift("s/one"), (2, 1));
        assert_eq!(lift("s/two"), (2, 1));
        assert_eq!(lift("s/three"), (1, 0));
        assert_eq!(lift("x/stranger"), (0, 0));
        // Sorted by lift, then volume: one (3 values) before two (2).
        assert_eq!(c.rows[0].feed, "s/one");
        assert_eq!(c.rows[1].feed, "s/two");
    }

    #[test]
    fn lift_of_established_feeds_that_block_only_together() {
        // Two established groups reach BLOCK together only if their evidence is enough; each
        // alone cannot (one non-seed group is capped below BLOCK): both have lift 1.
        let mut metas: Vec<SourceMeta> = (0..2).map(|i| SourceMeta::new(i, i, 0, vec![])).collect();
        for m in &mut metas {
            m.tier = Tier::Established;
            m.reliability = crate::trust::Beta { alpha: 90.0, beta: 10.0 };
        }
        let sc = Scorer::new(ScoreParams::default(), &metas, &Groups::singletons(2));
        let feeds = vec![feed(1, "a/one", false), feed(2, "b/two", false)];
        let t = NOW - H;
        let mut both = value(vec![e(0, t, t), e(1, t, t)]);
        both.entries.iter_mut().for_each(|x| x.depth = Depth::Payload);
        let c = compare(&feeds, &[both], &sc, NOW);
        assert_eq!(c.block_values, 1);
        assert!(c.rows.iter().all(|r| r.block == 1 && r.marginal_lift == 1));
    }

    #[test]
    fn allowlisted_and_held_values_are_counted_and_never_block() {
        let feeds = vec![feed(1, "s/seed", true), feed(2, "n/noisy", false)];
        let t = NOW - H;
        let mut excluded = value(vec![e(0, t, t), e(1, t, t)]);
        excluded.standing = StandingKind::Excluded;
        let mut held = value(vec![e(1, t, t)]);
        held.standing = StandingKind::Held;
        let c = compare(
            &feeds,
            &[excluded, held, value(vec![e(1, t, t)])],
            &scorer(&[Tier::Seed, Tier::Probation]),
            NOW,
        );
        let noisy = row(&c, "n/noisy");
        assert_eq!((noisy.allowlisted, noisy.held, noisy.volume), (1, 1, 3));
        assert_eq!(noisy.allowlisted_share, Some(2.0 / 3.0));
        assert_eq!(c.block_values, 0, "an excluded value never scores, even with a seed");
    }

    #[test]
    fn duplicate_entries_merge_and_unknown_feeds_are_ignored() {
        let feeds = vec![feed(1, "a/a", false)];
        let v = value(vec![e(0, 5 * H, 6 * H), e(0, 2 * H, 3 * H), e(7, 0, 0)]);
        let c = compare(&feeds, &[v, value(vec![])], &scorer(&[Tier::Probation]), NOW);
        assert_eq!(c.values, 1);
        let a = row(&c, "a/a");
        assert_eq!((a.volume, a.exclusive), (1, 1));
        assert_eq!(a.lifetime_median_hours, Some(4.0));
    }

    #[test]
    fn restrict_keeps_readable_rows_and_cuts_the_matrix() {
        let feeds = vec![feed(10, "a/a", false), feed(11, "b/private", false), feed(12, "c/c", false)];
        let t = NOW - DAY;
        let values = vec![value(vec![e(0, t, t), e(1, t, t), e(2, t, t)]), value(vec![e(0, t, t), e(2, t, t)])];
        let c = compare(&feeds, &values, &scorer(&[Tier::Probation; 3]), NOW);
        let r = c.restrict(|id| id != 11);
        assert_eq!(r.rows.len(), 2);
        assert!(r.rows.iter().all(|x| x.id != 11));
        assert_eq!(r.overlap.feeds, vec!["a/a", "c/c"]);
        assert_eq!(r.overlap.intersect, vec![vec![2, 2], vec![2, 2]]);
        assert_eq!(r.overlap.differential[0][1], Some(0.0));
    }

    #[test]
    fn empty_input_gives_empty_rows_without_panicking() {
        let c = compare(&[], &[], &scorer(&[]), NOW);
        assert!(c.rows.is_empty() && c.overlap.intersect.is_empty());
        let c = compare(&[feed(1, "a/a", true)], &[], &scorer(&[Tier::Seed]), NOW);
        let a = &c.rows[0];
        assert_eq!(
            (a.volume, a.exclusive_share, a.trusted_recall, a.latency_median_hours),
            (0, None, None, None)
        );
    }

    fn sighting(source: u32, t: i64) -> Sighting {
        Sighting {
            source,
            network: source,
            first_seen: t,
            last_seen: t,
            depth: Depth::Handshake,
            retracted: false,
        }
    }
}
