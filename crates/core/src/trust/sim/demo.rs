//! The simulated world laid out for loading into a hub (`apiary demo`): the sources with their
//! roles and networks, the values with concrete addresses, and every (value, source) pair's
//! sightings folded to first and last time, deepest depth and count. The same world, from the
//! same seed, as the simulator's table ([`super::run_world`]).

use super::{build, Adversary, Kind, Role, WorldParams};
use crate::trust::score::StandingKind;
use crate::trust::{Depth, Timestamp};
use std::collections::HashMap;

/// What a source is in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRole {
    /// A trusted honeypot operator's sensors.
    Seed,
    /// A public blocklist: late, some false positives.
    Noisy,
    /// A public blocklist that copies another.
    NoisyCopying,
    /// An honest stranger's honeypot.
    Honest,
    /// A copycat Sybil: copies public lists, injects benign targets.
    Copycat,
    /// A patient Sybil: runs a real honeypot, then injects.
    Patient,
}

impl SourceRole {
    pub fn name(self) -> &'static str {
        match self {
            SourceRole::Seed => "seed",
            SourceRole::Noisy => "noisy",
            SourceRole::NoisyCopying => "copying",
            SourceRole::Honest => "honest",
            SourceRole::Copycat => "copycat",
            SourceRole::Patient => "patient",
        }
    }
}

/// One source.
#[derive(Debug, Clone)]
pub struct DemoSource {
    pub role: SourceRole,
    /// The declared network of its sensors.
    pub asn: u32,
}

/// What a value is in the world (the ground truth the demo's printout mentions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Attacker,
    Research,
    Popular,
    Background,
}

/// One value: a concrete IPv4 address.
#[derive(Debug, Clone)]
pub struct DemoValue {
    pub address: String,
    pub kind: ValueKind,
    /// A benign value an adversary tries to get blocked.
    pub target: bool,
}

/// All of one source's sightings of one value, in simulated seconds from the world's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoSighting {
    pub value: u32,
    pub source: u32,
    pub first: Timestamp,
    pub last: Timestamp,
    pub depth: Depth,
    pub count: u32,
}

/// The world, ready to load.
#[derive(Debug, Clone)]
pub struct DemoWorld {
    pub sources: Vec<DemoSource>,
    pub values: Vec<DemoValue>,
    /// Sorted by first time.
    pub sightings: Vec<DemoSighting>,
    /// Simulated seconds the world lasts.
    pub end: Timestamp,
}

/// Public resolvers (on the built-in allowlist): the allowlisted popular values of the world.
const RESOLVERS: [&str; 8] = [
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "208.67.220.220",
];

/// A public IPv4 address for value `i`, distinct for distinct `i` (first octet 31–99: no
/// special-use block there), so a loaded world never collides with reserved space.
fn address(i: usize) -> String {
    let a = 31 + (i % 69) as u32;
    let rest = ((i / 69) as u32).wrapping_mul(2_654_435_761) & 0x00ff_ffff;
    format!("{a}.{}.{}.{}", rest >> 16, (rest >> 8) & 0xff, rest & 0xff)
}

/// Build the world of `p` with `adversary` at `share` of the sources, from `seed`.
pub fn world(p: &WorldParams, adversary: Adversary, share: f64, seed: u64) -> DemoWorld {
    let w = build(p, adversary, share, seed);
    let mut noisy_seen = 0;
    let sources = w
        .roles
        .iter()
        .zip(&w.metas)
        .map(|(&r, m)| {
            let role = match r {
                Role::Seed => SourceRole::Seed,
                Role::Noisy => {
                    noisy_seen += 1;
                    if noisy_seen <= p.noisy_copying {
                        SourceRole::NoisyCopying
                    } else {
                        SourceRole::Noisy
                    }
                }
                Role::Honest => SourceRole::Honest,
                Role::Copycat => SourceRole::Copycat,
                Role::Patient => SourceRole::Patient,
            };
            DemoSource {
                role,
                asn: m.networks.first().map_or(0, |n| n.0),
            }
        })
        .collect();
    let mut excluded = 0usize;
    let values = w
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let kind = match it.kind {
                Kind::Attacker => ValueKind::Attacker,
                Kind::Research => ValueKind::Research,
                Kind::Popular => ValueKind::Popular,
                Kind::Background => ValueKind::Background,
            };
            let address = if it.standing == StandingKind::Excluded {
                excluded += 1;
                RESOLVERS[excluded % RESOLVERS.len()].to_string()
            } else {
                address(i)
            };
            DemoValue {
                address,
                kind,
                target: it.target,
            }
        })
        .collect();
    let mut folded: HashMap<(u32, u32), usize> = HashMap::new();
    let mut sightings: Vec<DemoSighting> = Vec::new();
    for e in &w.events {
        match folded.get(&(e.item, e.source)) {
            Some(&k) => {
                let s = &mut sightings[k];
                s.last = s.last.max(e.t);
                s.depth = s.depth.max(e.depth);
                s.count += 1;
            }
            None => {
                folded.insert((e.item, e.source), sightings.len());
                sightings.push(DemoSighting {
                    value: e.item,
                    source: e.source,
                    first: e.t,
                    last: e.t,
                    depth: e.depth,
                    count: 1,
                });
            }
        }
    }
    DemoWorld {
        sources,
        values,
        sightings,
        end: w.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_public() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000 {
            let a = address(i);
            assert!(seen.insert(a.clone()), "{a} twice");
            let first: u32 = a.split('.').next().unwrap().parse().unwrap();
            assert!((31..=99).contains(&first));
        }
    }

    #[test]
    fn the_world_is_reproducible_and_folded() {
        let p = WorldParams {
            attackers: 500,
            popular: 100,
            background: 200,
            research_scanners: 10,
            targets: 10,
            ..WorldParams::small()
        };
        let a = world(&p, Adversary::CopycatDistributed, 0.1, 7);
        let b = world(&p, Adversary::CopycatDistributed, 0.1, 7);
        assert_eq!(a.sightings, b.sightings);
        assert!(a.sources.iter().any(|s| s.role == SourceRole::Copycat));
        assert!(a.sources.iter().any(|s| s.role == SourceRole::NoisyCopying));
        let mut pairs = std::collections::HashSet::new();
        for s in &a.sightings {
            assert!(pairs.insert((s.value, s.source)), "one sighting per value and source");
            assert!(s.first <= s.last && s.last <= a.end && s.count >= 1);
        }
        assert!(a.sightings.windows(2).all(|w| w[0].first <= w[1].first));
    }
}
