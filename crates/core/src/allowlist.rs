//! Allowlists in the MISP warninglist format, used to *exclude* or to *hold*.
//!
//! Lookup structures, built when a list is added:
//! - CIDR entries of all lists are flattened into sorted, disjoint segments (one array for IPv4,
//!   one for IPv6), each carrying the set of lists that cover it: an address is one binary
//!   search; a CIDR walks the segments inside it to tell *contained* from *overlapping*.
//! - hostname entries go into a hash map; a name is looked up once per label suffix
//!   (`a.b.example.com`, `b.example.com`, `example.com`, `com`), which is a label-boundary match
//!   by construction, never a substring match.
//! - string entries go into a hash map (exact match); substring and regex entries are scanned.

use crate::addr::{parse_net, Net};
use crate::host::normalise_name;
use crate::special::{IPV4_SPECIAL, IPV6_SPECIAL};
use crate::{parse, IType, Indicator, ParseOptions, RejectCode, Rejection};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// How a loaded list is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListUse {
    /// Never scored, never exported (special-use ranges, sinkholes, public resolvers, ...).
    Exclude,
    /// Kept and flagged; out of blocklists until a trusted source confirms (CDNs, clouds, shorteners).
    Hold,
}

impl ListUse {
    pub fn as_str(self) -> &'static str {
        match self {
            ListUse::Exclude => "exclude",
            ListUse::Hold => "hold",
        }
    }

    /// The default use of a MISP warninglist, keyed on its directory name in
    /// `misp-warninglists/lists/`. Special-use ranges and names, bogons, sinkholes, public
    /// resolvers, TLDs and known-file hashes are excluded; everything else (cloud, CDN, top
    /// sites, URL shorteners, and any list we do not know) is held: kept, flagged and out of
    /// blocklists until a trusted source confirms, which loses nothing when we guess wrong.
    pub fn for_list(name: &str) -> ListUse {
        let n = name.to_ascii_lowercase();
        const EXCLUDE_PREFIXES: &[&str] =
            &["rfc", "bogon", "ipv6-linklocal", "multicast", "public-dns", "sinkhole", "tlds", "empty-hashes", "special-use", "security-provider-blogpost"];
        const EXCLUDE_EXACT: &[&str] = &["second-level-tlds", "automated-malware-analysis", "nioc-filehash", "windows-binary-hashes", "public-resolvers", "empty-file-hashes"];
        if EXCLUDE_PREFIXES.iter().any(|p| n.starts_with(p)) || EXCLUDE_EXACT.contains(&n.as_str()) {
            ListUse::Exclude
        } else {
            ListUse::Hold
        }
    }
}

/// One match of an indicator against a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The list's name.
    pub list: String,
    #[serde(rename = "use")]
    pub use_: ListUse,
    /// True when the indicator is a CIDR that *contains* a listed range (never exported whole).
    pub overlaps: bool,
}

/// The match rule of a list (`type` in a warninglist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// Addresses and networks; covers addresses and narrower networks inside an entry.
    Cidr,
    /// A name and all its subdomains, on a label boundary.
    Hostname,
    /// Exact value.
    String,
    /// The value contains the entry.
    Substring,
    /// The value matches the regular expression (`/.../flags` delimiters accepted).
    Regex,
}

/// A MISP warninglist as found in `lists/<name>/list.json`, plus an optional `use` field
/// (`"exclude"` or `"hold"`) that overrides [`ListUse::for_list`].
#[derive(Debug, Clone, Deserialize)]
pub struct WarningList {
    pub name: String,
    #[serde(default)]
    pub version: serde_json::Value,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type")]
    pub kind: ListKind,
    pub list: Vec<String>,
    #[serde(default)]
    pub matching_attributes: Option<Vec<String>>,
    #[serde(default, rename = "use")]
    pub use_: Option<ListUse>,
}

impl WarningList {
    pub fn from_json(json: &str) -> Result<WarningList, Rejection> {
        serde_json::from_str(json).map_err(|e| {
            Rejection::new(RejectCode::InvalidAllowlist, format!("not a MISP warninglist: {e}"))
        })
    }
}

/// A tiny, fast hasher for short keys (names, hashes). Keys are loaded from trusted lists, so
/// hash flooding is not a concern.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    h: u64,
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.h = (self.h.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One step of the key hash, fed bytes from the *end* of the key towards its start, so that the
/// hashes of every label suffix of a name fall out of one right-to-left pass.
#[inline]
fn rstep(h: u64, b: u8) -> u64 {
    (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(0x0000_0100_0000_01b3)
}

fn rhash(key: &str) -> u64 {
    key.bytes().rev().fold(RSEED, rstep)
}

const RSEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Hostname and string entries, keyed by their right-to-left hash.
#[derive(Debug, Clone, Default)]
struct KeyEntry {
    key: Box<str>,
    /// Lists with this key as a hostname entry (matches the name and its subdomains).
    host_ids: Vec<u32>,
    /// Lists with this key as a string entry (exact match).
    string_ids: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
struct KeyMap {
    map: FastMap<u64, Vec<KeyEntry>>,
}

impl KeyMap {
    fn insert(&mut self, key: String, id: u32, host: bool) {
        let bucket = self.map.entry(rhash(&key)).or_default();
        let e = match bucket.iter().position(|e| *e.key == *key) {
            Some(i) => &mut bucket[i],
            None => {
                bucket.push(KeyEntry { key: key.into_boxed_str(), ..KeyEntry::default() });
                bucket.last_mut().expect("just pushed")
            }
        };
        let ids = if host { &mut e.host_ids } else { &mut e.string_ids };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    #[inline]
    fn get(&self, h: u64, key: &str) -> Option<&KeyEntry> {
        self.map.get(&h)?.iter().find(|e| e.key.eq_ignore_ascii_case(key))
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A segment's list set: `NO_SET`, one list id with `SINGLE` set, or an index into the table.
const NO_SET: u32 = u32::MAX;
const SINGLE: u32 = 1 << 31;

/// Sorted disjoint segments over an address space: segment `i` spans from its start up to the
/// next segment's start and is covered by the lists of its set. `top` holds every `BLOCK`-th start:
/// a lookup binary-searches that small (cache-resident) array, then one block of `BLOCK` starts,
/// instead of touching a new cache line at every step of a search over the whole array.
///
/// IPv4 keys use a direct table instead of `top`: `buckets[h]` is the first segment whose start
/// has top 16 bits `>= h`, so a lookup reads one bucket pair and searches a handful of starts.
#[derive(Debug, Clone)]
struct RangeIndex<K> {
    /// `(start, set)` side by side: the search ends on the cache line that holds the set.
    segs: Vec<(K, u32)>,
    top: Vec<K>,
    buckets: Vec<u32>,
    table: Vec<Vec<u32>>,
}

const BLOCK: usize = 16;

impl<K> Default for RangeIndex<K> {
    fn default() -> Self {
        RangeIndex { segs: Vec::new(), top: Vec::new(), buckets: Vec::new(), table: Vec::new() }
    }
}

trait Key: Copy + Ord + std::hash::Hash {
    const MAX: Self;
    fn succ(self) -> Self;
    /// The top 16 bits, for keys small enough to bucket directly (IPv4).
    fn bucket(self) -> Option<usize>;
}
impl Key for u32 {
    const MAX: u32 = u32::MAX;
    fn succ(self) -> u32 {
        self + 1
    }
    fn bucket(self) -> Option<usize> {
        Some((self >> 16) as usize)
    }
}
impl Key for u128 {
    const MAX: u128 = u128::MAX;
    fn succ(self) -> u128 {
        self + 1
    }
    fn bucket(self) -> Option<usize> {
        None
    }
}

impl<K: Key> RangeIndex<K> {
    fn build(entries: &[(K, K, u32)], n_lists: usize) -> Self {
        // Events: +list at lo, -list at hi+1. Ends come before starts at one key (the ranges
        // are inclusive, so an end at k means "not covered from k on").
        let mut events: Vec<(K, bool, u32)> = Vec::with_capacity(entries.len() * 2);
        for &(lo, hi, id) in entries {
            events.push((lo, true, id));
            if hi != K::MAX {
                events.push((hi.succ(), false, id));
            }
        }
        events.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut counts = vec![0u32; n_lists];
        let mut out = RangeIndex::default();
        let mut interned: FastMap<Vec<u32>, u32> = FastMap::default();
        let mut active: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < events.len() {
            let k = events[i].0;
            while i < events.len() && events[i].0 == k {
                let (_, start, id) = events[i];
                let c = &mut counts[id as usize];
                if start {
                    *c += 1;
                } else {
                    *c -= 1;
                }
                i += 1;
            }
            active.clear();
            active.extend((0..n_lists as u32).filter(|&id| counts[id as usize] > 0));
            let set = match active.len() {
                0 => NO_SET,
                1 => SINGLE | active[0],
                _ => *interned.entry(active.clone()).or_insert_with(|| {
                    out.table.push(active.clone());
                    (out.table.len() - 1) as u32
                }),
            };
            if out.segs.last().map(|s| s.1) == Some(set) {
                continue;
            }
            out.segs.push((k, set));
        }
        if out.segs.len() > 4096 && K::MAX.bucket().is_some() {
            out.buckets = vec![0; (1 << 16) + 1];
            let mut seg = 0usize;
            for h in 0..=(1usize << 16) {
                while seg < out.segs.len() && out.segs[seg].0.bucket().unwrap_or(0) < h {
                    seg += 1;
                }
                out.buckets[h] = seg as u32;
            }
        } else {
            out.top = out.segs.iter().step_by(BLOCK).map(|s| s.0).collect();
        }
        out
    }

    /// The index just past the last segment starting at or before `k` (0: none does).
    #[inline]
    fn upper(&self, k: K) -> usize {
        if let (false, Some(h)) = (self.buckets.is_empty(), k.bucket()) {
            let (a, b) = (self.buckets[h] as usize, self.buckets[h + 1] as usize);
            return a + self.segs[a..b].partition_point(|s| s.0 <= k);
        }
        let t = self.top.partition_point(|s| *s <= k);
        if t == 0 {
            return 0;
        }
        let a = (t - 1) * BLOCK;
        let b = (a + BLOCK).min(self.segs.len());
        a + self.segs[a..b].partition_point(|s| s.0 <= k)
    }

    #[inline]
    fn for_each_in_set(&self, set: u32, mut f: impl FnMut(u32)) {
        if set == NO_SET {
        } else if set & SINGLE != 0 {
            f(set & !SINGLE);
        } else {
            for &id in &self.table[set as usize] {
                f(id);
            }
        }
    }

    /// Calls `f(list, overlaps)` for every list covering all of `lo..=hi` (`overlaps` false) or
    /// part of it (`overlaps` true).
    #[inline]
    fn lookup(&self, lo: K, hi: K, mut f: impl FnMut(u32, bool)) {
        let i = self.upper(lo);
        if lo == hi {
            if i > 0 {
                self.for_each_in_set(self.segs[i - 1].1, |id| f(id, false));
            }
            return;
        }
        let mut inter: Vec<u32> = Vec::new();
        if i > 0 {
            self.for_each_in_set(self.segs[i - 1].1, |id| inter.push(id));
        }
        let mut union = inter.clone();
        let mut j = i;
        while j < self.segs.len() && self.segs[j].0 <= hi {
            let mut here: Vec<u32> = Vec::new();
            self.for_each_in_set(self.segs[j].1, |id| here.push(id));
            inter.retain(|id| here.contains(id));
            for id in here {
                if !union.contains(&id) {
                    union.push(id);
                }
            }
            j += 1;
        }
        for id in union {
            f(id, !inter.contains(&id));
        }
    }
}

#[derive(Debug, Clone)]
struct ListMeta {
    name: String,
    use_: ListUse,
    kind: ListKind,
    /// Bit per [`IType`] the list applies to (from `matching_attributes`).
    applies: u16,
}

fn bit(t: IType) -> u16 {
    1 << (t as u16)
}

const ALL_TYPES: u16 = (1 << IType::ALL.len()) - 1;

/// The indicator types a MISP attribute type stands for.
fn attribute_types(attr: &str) -> u16 {
    let ip = bit(IType::Ipv4) | bit(IType::Ipv6);
    let hashes = bit(IType::Md5) | bit(IType::Sha1) | bit(IType::Sha256) | bit(IType::Sha512);
    match attr.trim().to_ascii_lowercase().as_str() {
        "ip-src" | "ip-dst" | "ip-src|port" | "ip-dst|port" | "ip" | "ipv4" | "ipv6" | "cidr" => ip,
        "domain|ip" => ip | bit(IType::Fqdn),
        "domain" | "hostname" | "hostname|port" | "fqdn" => bit(IType::Fqdn),
        "url" | "uri" | "link" => bit(IType::Url),
        "email" | "email-src" | "email-dst" | "email-reply-to" | "target-email" | "whois-registrant-email" => bit(IType::Email),
        "md5" | "sha1" | "sha256" | "sha512" => hashes,
        a if a.starts_with("filename|") => hashes,
        "as" | "asn" => bit(IType::Asn),
        _ => 0,
    }
}

/// A set of loaded lists with fast lookup.
#[derive(Debug, Default, Clone)]
pub struct Allowlist {
    lists: Vec<ListMeta>,
    v4_entries: Vec<(u32, u32, u32)>,
    v6_entries: Vec<(u128, u128, u32)>,
    v4: RangeIndex<u32>,
    v6: RangeIndex<u128>,
    keys: KeyMap,
    /// Union of the types the hostname / string lists apply to: a value of another type skips them.
    host_types: u16,
    string_types: u16,
    substrings: Vec<(Box<str>, u32)>,
    regexes: Vec<(regex::Regex, u32)>,
    entries: usize,
}

/// The big public resolvers: their addresses appear in every DNS-related log and must never be
/// blocked.
const PUBLIC_RESOLVERS: &[&str] = &[
    // Google
    "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",
    // Cloudflare (plus its malware / family filters)
    "1.1.1.1", "1.0.0.1", "1.1.1.2", "1.0.0.2", "1.1.1.3", "1.0.0.3",
    "2606:4700:4700::1111", "2606:4700:4700::1001", "2606:4700:4700::1112", "2606:4700:4700::1002",
    "2606:4700:4700::1113", "2606:4700:4700::1003",
    // Quad9
    "9.9.9.9", "149.112.112.112", "9.9.9.10", "149.112.112.10", "9.9.9.11", "149.112.112.11",
    "2620:fe::fe", "2620:fe::9", "2620:fe::10", "2620:fe::fe:10", "2620:fe::11", "2620:fe::fe:11",
    // OpenDNS / Cisco Umbrella
    "208.67.222.222", "208.67.220.220", "208.67.222.123", "208.67.220.123",
    "2620:119:35::35", "2620:119:53::53",
    // AdGuard
    "94.140.14.14", "94.140.15.15", "2a10:50c0::ad1:ff", "2a10:50c0::ad2:ff",
    // Level 3 / Lumen legacy resolvers
    "4.2.2.1", "4.2.2.2", "4.2.2.3", "4.2.2.4", "4.2.2.5", "4.2.2.6",
];

/// Special-use domain names (RFC 6761, RFC 6762, RFC 7686, RFC 8375, RFC 9476, ICANN's
/// `.internal`) and the reverse zones of private address space.
const SPECIAL_NAMES: &[&str] = &[
    "localhost", "example", "example.com", "example.net", "example.org", "invalid", "test", "onion",
    "local", "home.arpa", "alt", "internal",
    "10.in-addr.arpa", "127.in-addr.arpa", "254.169.in-addr.arpa", "168.192.in-addr.arpa",
    "16.172.in-addr.arpa", "17.172.in-addr.arpa", "18.172.in-addr.arpa", "19.172.in-addr.arpa",
    "20.172.in-addr.arpa", "21.172.in-addr.arpa", "22.172.in-addr.arpa", "23.172.in-addr.arpa",
    "24.172.in-addr.arpa", "25.172.in-addr.arpa", "26.172.in-addr.arpa", "27.172.in-addr.arpa",
    "28.172.in-addr.arpa", "29.172.in-addr.arpa", "30.172.in-addr.arpa", "31.172.in-addr.arpa",
    "d.f.ip6.arpa", "8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa", "b.e.f.ip6.arpa",
];

/// Hashes of the empty file: every sandbox and honeypot sees them, they identify nothing.
const EMPTY_FILE_HASHES: &[&str] = &[
    "d41d8cd98f00b204e9800998ecf8427e",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
];

impl Allowlist {
    /// The built-in defaults (special-use ranges, the big public resolvers, special-use names).
    ///
    /// Lists: `special-use` (every IANA special-purpose block, multicast, and the IPv6 space
    /// outside `2000::/3`), `public-resolvers`, `special-use-names`, `empty-file-hashes`; all
    /// used to exclude.
    pub fn builtin() -> Allowlist {
        let mut a = Allowlist::default();
        let mut special: Vec<String> = Vec::new();
        for e in IPV4_SPECIAL {
            special.push(format!("{}/{}", std::net::Ipv4Addr::from(e.net), e.len));
        }
        for e in IPV6_SPECIAL {
            special.push(format!("{}/{}", std::net::Ipv6Addr::from(e.net), e.len));
        }
        special.extend(["::/3", "4000::/2", "8000::/1"].map(String::from));
        let special: Vec<&str> = special.iter().map(String::as_str).collect();
        let names: &[&str] = &["domain", "hostname", "url", "email"];
        let hashes: &[&str] = &["md5", "sha1", "sha256", "sha512"];
        type Builtin<'a> = (&'a str, ListKind, &'a [&'a str], Option<&'a [&'a str]>);
        let lists: [Builtin; 4] = [
            ("special-use", ListKind::Cidr, &special, None),
            ("public-resolvers", ListKind::Cidr, PUBLIC_RESOLVERS, None),
            ("special-use-names", ListKind::Hostname, SPECIAL_NAMES, Some(names)),
            ("empty-file-hashes", ListKind::String, EMPTY_FILE_HASHES, Some(hashes)),
        ];
        for (name, kind, entries, attrs) in lists {
            // The tables above are fixed and valid; a failure here is a bug caught by the tests.
            if let Err(e) = a.add_list(name, kind, entries, ListUse::Exclude, attrs) {
                debug_assert!(false, "builtin list {name}: {e}");
            }
        }
        a
    }

    /// Add one MISP warninglist given as JSON text. Invalid entries reject the load with their index.
    pub fn add_warninglist_json(&mut self, json: &str, use_: ListUse) -> Result<(), Rejection> {
        let wl = WarningList::from_json(json)?;
        self.add_warninglist(&wl.name.clone(), &wl, json, use_).map(|_| ())
    }

    /// Add a parsed warninglist under a short name (its directory name, e.g. `rfc1918`).
    /// `json` is the text it came from, used only to report the line of an invalid entry.
    /// Returns the number of entries loaded. Nothing is added when an entry is invalid.
    pub fn add_warninglist(&mut self, name: &str, wl: &WarningList, json: &str, use_: ListUse) -> Result<usize, Rejection> {
        let entries: Vec<&str> = wl.list.iter().map(String::as_str).collect();
        let attrs: Option<Vec<&str>> = wl.matching_attributes.as_ref().map(|v| v.iter().map(String::as_str).collect());
        self.add_list(name, wl.kind, &entries, use_, attrs.as_deref()).map_err(|mut e| {
            // Point at the line of the offending entry in the file.
            if let Some(idx) = e.message.split("entry ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<usize>().ok()) {
                if let Some(line) = entries.get(idx).and_then(|v| entry_line(json, v)) {
                    e.message = e.message.replacen(&format!("entry {idx} "), &format!("entry {idx} (line {line}) "), 1);
                }
            }
            e
        })
    }

    /// Add a list of entries of one kind. `matching_attributes` are MISP attribute types
    /// (`ip-src`, `domain`, `url`, `md5`, ...); `None` means the list applies to every type.
    /// Every entry is validated first; nothing is added when one is invalid.
    pub fn add_list(
        &mut self,
        name: &str,
        kind: ListKind,
        entries: &[&str],
        use_: ListUse,
        matching_attributes: Option<&[&str]>,
    ) -> Result<usize, Rejection> {
        let id = self.lists.len() as u32;
        let applies = match matching_attributes {
            None => ALL_TYPES,
            Some(attrs) => attrs.iter().fold(0, |m, a| m | attribute_types(a)),
        };
        let bad = |i: usize, v: &str, why: &str| {
            Rejection::new(RejectCode::InvalidAllowlist, format!("list `{name}`: entry {i} `{v}` is not a valid {kind:?} entry: {why}"))
        };
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        let mut regexes = Vec::new();
        let mut string_entry_types: u16 = 0;
        for (i, raw) in entries.iter().enumerate() {
            let v = raw.trim();
            if v.is_empty() {
                return Err(bad(i, raw, "empty"));
            }
            match kind {
                ListKind::Cidr => {
                    let mut flags = Vec::new();
                    match parse_net(v, 0, 0, &mut flags).map_err(|e| bad(i, raw, &e.message))? {
                        Net::V4(a, l) => {
                            let (lo, hi) = crate::addr::v4_range(a, l);
                            v4.push((lo, hi, id));
                        }
                        Net::V6(a, l) => {
                            let (lo, hi) = crate::addr::v6_range(a, l);
                            v6.push((lo, hi, id));
                        }
                    }
                }
                ListKind::Hostname => {
                    let mut flags = Vec::new();
                    let name = v.trim_start_matches("*.").trim_start_matches('.');
                    keys.push(normalise_name(name, true, &mut flags).map_err(|e| bad(i, raw, &e.message))?);
                }
                ListKind::String => {
                    keys.push(v.to_lowercase());
                    match parse(v, None, &ParseOptions::default()) {
                        Ok(ind) => {
                            string_entry_types |= bit(ind.itype);
                            if ind.value != v.to_lowercase() {
                                keys.push(ind.value.to_lowercase());
                            }
                        }
                        // A single label (a TLD, `localhost`) can only equal a name given
                        // with the fqdn type; anything else (an ssdeep hash...) may equal a
                        // value of any type given with a hint.
                        Err(_) if v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
                            string_entry_types |= bit(IType::Fqdn)
                        }
                        Err(_) => string_entry_types = ALL_TYPES,
                    }
                }
                ListKind::Substring => keys.push(v.to_lowercase()),
                ListKind::Regex => regexes.push(compile_regex(v).map_err(|why| bad(i, raw, &why))?),
            }
        }
        self.lists.push(ListMeta { name: name.to_string(), use_, kind, applies });
        self.entries += entries.len();
        if matches!(kind, ListKind::Hostname | ListKind::String) {
            let host = kind == ListKind::Hostname;
            if host {
                self.host_types |= applies;
            } else {
                // Only types an entry can actually equal need the exact-match probe.
                self.string_types |= applies & string_entry_types;
            }
            for k in keys {
                self.keys.insert(k, id, host);
            }
        } else if kind == ListKind::Substring {
            self.substrings.extend(keys.into_iter().map(|k| (k.into_boxed_str(), id)));
        }
        self.regexes.extend(regexes.into_iter().map(|r| (r, id)));
        if !v4.is_empty() {
            self.v4_entries.extend(v4);
            self.v4 = RangeIndex::build(&self.v4_entries, self.lists.len());
        }
        if !v6.is_empty() {
            self.v6_entries.extend(v6);
            self.v6 = RangeIndex::build(&self.v6_entries, self.lists.len());
        }
        Ok(entries.len())
    }

    /// The loaded lists: name, use and kind.
    pub fn lists(&self) -> impl Iterator<Item = (&str, ListUse, ListKind)> {
        self.lists.iter().map(|l| (l.name.as_str(), l.use_, l.kind))
    }

    /// Total number of entries loaded.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Which lists an indicator matches.
    ///
    /// Addresses and CIDRs are checked against CIDR lists (a CIDR that contains a listed range
    /// gives `overlaps: true`); names against hostname lists on a label boundary; every value
    /// against string, substring and regex lists. A URL is checked as a URL and by its host; an
    /// e-mail as an e-mail and by its domain. Each list's `matching_attributes` are respected.
    pub fn check(&self, ind: &Indicator) -> Vec<Listed> {
        let mut out: Vec<Listed> = Vec::new();
        let own = bit(ind.itype);
        self.check_value(ind.itype, &ind.value, own, &mut out);
        if matches!(ind.itype, IType::Url | IType::Email) {
            for d in &ind.derived {
                // A URL's host counts for lists about URLs and for lists about the host's type;
                // an e-mail's domain only for lists about e-mail.
                let mask = if ind.itype == IType::Url { own | bit(d.itype) } else { own };
                self.check_value(d.itype, &d.value, mask, &mut out);
            }
        }
        out
    }

    fn push(&self, out: &mut Vec<Listed>, id: u32, overlaps: bool, mask: u16) {
        let l = &self.lists[id as usize];
        if l.applies & mask == 0 {
            return;
        }
        match out.iter_mut().find(|x| x.list == l.name) {
            Some(x) => x.overlaps &= overlaps,
            None => out.push(Listed { list: l.name.clone(), use_: l.use_, overlaps }),
        }
    }

    fn check_value(&self, itype: IType, value: &str, mask: u16, out: &mut Vec<Listed>) {
        match itype {
            IType::Ipv4 | IType::Ipv6 => {
                if let Some(net) = crate::addr::net_of_value(itype, value) {
                    match net {
                        Net::V4(a, l) => {
                            let (lo, hi) = crate::addr::v4_range(a, l);
                            self.v4.lookup(lo, hi, |id, ov| self.push(out, id, ov, mask));
                        }
                        Net::V6(a, l) => {
                            let (lo, hi) = crate::addr::v6_range(a, l);
                            self.v6.lookup(lo, hi, |id, ov| self.push(out, id, ov, mask));
                        }
                    }
                }
            }
            _ => {}
        }
        if !self.keys.is_empty() {
            let b = value.as_bytes();
            let hosts = itype == IType::Fqdn && self.host_types & mask != 0;
            let strings = self.string_types & mask != 0;
            if hosts {
                // One right-to-left pass; probe at every label boundary.
                let mut h = RSEED;
                for i in (0..b.len()).rev() {
                    h = rstep(h, b[i]);
                    if i == 0 || b[i - 1] == b'.' {
                        if let Some(e) = self.keys.get(h, &value[i..]) {
                            for &id in &e.host_ids {
                                self.push(out, id, false, mask);
                            }
                            if i == 0 && strings {
                                for &id in &e.string_ids {
                                    self.push(out, id, false, mask);
                                }
                            }
                        }
                    }
                }
            } else if strings {
                if let Some(e) = self.keys.get(rhash(value), value) {
                    for &id in &e.string_ids {
                        self.push(out, id, false, mask);
                    }
                }
            }
        }
        if !self.substrings.is_empty() {
            let lower = value.to_lowercase();
            for (s, id) in &self.substrings {
                if lower.contains(&**s) {
                    self.push(out, *id, false, mask);
                }
            }
        }
        for (re, id) in &self.regexes {
            if re.is_match(value) {
                self.push(out, *id, false, mask);
            }
        }
    }
}

/// Compile a warninglist regex, accepting the PCRE-style `/pattern/flags` form MISP uses.
fn compile_regex(v: &str) -> Result<regex::Regex, String> {
    let (pat, flags) = match v.strip_prefix('/').and_then(|r| r.rfind('/').map(|i| (&r[..i], &r[i + 1..]))) {
        Some((p, f)) if f.chars().all(|c| c.is_ascii_alphabetic()) => (p, f),
        _ => (v, ""),
    };
    let mut b = regex::RegexBuilder::new(pat);
    b.size_limit(1 << 20);
    for c in flags.chars() {
        match c {
            'i' => {
                b.case_insensitive(true);
            }
            'm' => {
                b.multi_line(true);
            }
            's' => {
                b.dot_matches_new_line(true);
            }
            'x' => {
                b.ignore_whitespace(true);
            }
            'u' | 'g' => {}
            other => return Err(format!("unsupported regex flag `{other}`")),
        }
    }
    b.build().map_err(|e| e.to_string())
}

/// The 1-based line of an entry inside the `list` array of a warninglist's JSON text.
fn entry_line(json: &str, entry: &str) -> Option<usize> {
    let start = json.find("\"list\"")?;
    let quoted = serde_json::to_string(entry).ok()?;
    let pos = start + json[start..].find(&quoted)?;
    Some(json[..pos].bytes().filter(|&b| b == b'\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(s: &str) -> Indicator {
        parse(s, None, &ParseOptions::default()).unwrap()
    }

    fn names(a: &Allowlist, s: &str) -> Vec<(String, bool)> {
        a.check(&ind(s)).into_iter().map(|l| (l.list, l.overlaps)).collect()
    }

    #[test]
    fn builtin_loads_and_matches() {
        let a = Allowlist::builtin();
        assert_eq!(names(&a, "8.8.8.8"), vec![("public-resolvers".into(), false)]);
        assert_eq!(names(&a, "2606:4700:4700::1111"), vec![("public-resolvers".into(), false)]);
        assert_eq!(names(&a, "192.168.31.210:80"), vec![("special-use".into(), false)]);
        assert_eq!(names(&a, "www.example.com"), vec![("special-use-names".into(), false)]);
        assert_eq!(names(&a, "foo.onion"), vec![("special-use-names".into(), false)]);
        assert!(names(&a, "notexample.com").is_empty());
        assert!(names(&a, "198.18.0.0/15").iter().any(|(n, o)| n == "special-use" && !o));
        // 8.0.0.0/8 contains 8.8.8.8: overlapping, never exported whole.
        assert_eq!(names(&a, "8.0.0.0/8"), vec![("public-resolvers".into(), true)]);
        assert!(names(&a, "93.184.216.34").is_empty());
        assert_eq!(names(&a, "d41d8cd98f00b204e9800998ecf8427e"), vec![("empty-file-hashes".into(), false)]);
    }

    #[test]
    fn cidr_containment_and_overlap() {
        let mut a = Allowlist::default();
        a.add_list("rfc1918", ListKind::Cidr, &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], ListUse::Exclude, None).unwrap();
        a.add_list("inner", ListKind::Cidr, &["172.16.8.0/22"], ListUse::Hold, None).unwrap();
        assert_eq!(names(&a, "172.16.1.1"), vec![("rfc1918".into(), false)]);
        assert_eq!(names(&a, "172.16.8.0/24"), vec![("rfc1918".into(), false), ("inner".into(), false)]);
        assert_eq!(names(&a, "172.16.0.0/16"), vec![("rfc1918".into(), false), ("inner".into(), true)]);
        assert_eq!(names(&a, "172.0.0.0/8"), vec![("rfc1918".into(), true), ("inner".into(), true)]);
        assert!(names(&a, "172.32.0.1").is_empty());
    }

    #[test]
    fn hostname_label_boundary() {
        let mut a = Allowlist::default();
        a.add_list("short", ListKind::Hostname, &["bit.ly", "T.CO."], ListUse::Hold, Some(&["domain", "url"])).unwrap();
        assert_eq!(names(&a, "bit.ly").len(), 1);
        assert_eq!(names(&a, "x.bit.ly").len(), 1);
        assert!(names(&a, "rabbit.ly").is_empty());
        assert!(names(&a, "bit.ly.evil.example").is_empty());
        assert_eq!(names(&a, "https://t.co/abc"), vec![("short".into(), false)]);
        // matching_attributes say domain and url only: an e-mail at t.co is not held.
        assert!(names(&a, "someone@t.co").is_empty());
    }

    #[test]
    fn string_substring_regex() {
        let mut a = Allowlist::default();
        a.add_list("top", ListKind::String, &["Google.com"], ListUse::Hold, None).unwrap();
        a.add_list("sub", ListKind::Substring, &["tracker"], ListUse::Hold, None).unwrap();
        a.add_list("re", ListKind::Regex, &["/^cdn[0-9]+\\./i"], ListUse::Hold, None).unwrap();
        assert_eq!(names(&a, "google.com").len(), 1);
        assert!(names(&a, "mail.google.com").is_empty());
        assert_eq!(names(&a, "adtracker.example.net"), vec![("sub".into(), false)]);
        assert_eq!(names(&a, "cdn42.example.net"), vec![("re".into(), false)]);
    }

    #[test]
    fn invalid_entries_rejected_with_index_and_line() {
        let json = "{\n  \"name\": \"bad\",\n  \"version\": 1,\n  \"description\": \"x\",\n  \"type\": \"cidr\",\n  \"list\": [\n    \"10.0.0.0/8\",\n    \"300.0.0.0/8\"\n  ]\n}\n";
        let mut a = Allowlist::default();
        let e = a.add_warninglist_json(json, ListUse::Exclude).unwrap_err();
        assert_eq!(e.code, RejectCode::InvalidAllowlist);
        assert!(e.message.contains("entry 1 (line 8)"), "{}", e.message);
        assert!(a.is_empty());
        let e = a.add_list("h", ListKind::Hostname, &["ok.example", "bad host"], ListUse::Hold, None).unwrap_err();
        assert!(e.message.contains("entry 1"), "{}", e.message);
        assert!(a.add_list("r", ListKind::Regex, &["(unclosed"], ListUse::Hold, None).is_err());
    }

    #[test]
    fn default_uses() {
        for n in ["rfc1918", "rfc5735", "rfc6598", "rfc3849", "ipv6-linklocal", "multicast", "public-dns-v6", "sinkholes", "rfc6761", "tlds", "empty-hashes"] {
            assert_eq!(ListUse::for_list(n), ListUse::Exclude, "{n}");
        }
        for n in ["amazon-aws", "cloudflare", "cloudflare-top200", "url-shortener", "something-new"] {
            assert_eq!(ListUse::for_list(n), ListUse::Hold, "{n}");
        }
    }
}
