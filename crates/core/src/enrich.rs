//! Network enrichment: the AS number, AS name and country of an address, from an IP-to-ASN
//! table the operator supplies (an ip2asn TSV or a MaxMind database; the serve stage reads
//! the files, this module only holds and searches the ranges).
//!
//! An [`AsnTable`] is sorted, non-overlapping address ranges (IPv4 and IPv6 apart) searched by
//! binary search. [`Enrichment`] layers tables: an ASN database and a country database give
//! one [`Network`] per address, the first table that knows a field winning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::{IType, ParseOptions};

/// What a table says of a range of addresses. Every field may be unknown (a country database
/// has no AS; an ASN database may have no country).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Network {
    /// The AS number announcing the range.
    pub asn: Option<u32>,
    /// The AS name (ip2asn's description, MaxMind's `autonomous_system_organization`).
    pub as_name: Option<Arc<str>>,
    /// ISO 3166 alpha-2 country code, upper case.
    pub country: Option<Arc<str>>,
}

impl Network {
    pub fn is_empty(&self) -> bool {
        self.asn.is_none() && self.as_name.is_none() && self.country.is_none()
    }

    /// Fill the fields this one lacks from `other`.
    fn fill_from(&mut self, other: &Network) {
        if self.asn.is_none() {
            self.asn = other.asn;
            if self.as_name.is_none() {
                self.as_name = other.as_name.clone();
            }
        }
        if self.country.is_none() {
            self.country = other.country.clone();
        }
    }
}

/// Clean an AS name or country: trimmed, no control characters, `None` when empty or a
/// placeholder (`None`, `Unknown`, `-`).
fn text(s: &str) -> Option<Arc<str>> {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    let s = s.trim();
    match s {
        "" | "-" | "None" | "none" | "Unknown" | "unknown" | "Not routed" => None,
        _ => Some(Arc::from(s)),
    }
}

/// A country code as ISO alpha-2 upper case; anything else (ip2asn writes `None`) is unknown.
pub fn country_code(s: &str) -> Option<Arc<str>> {
    let s = s.trim();
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| Arc::from(s.to_ascii_uppercase()))
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u128,
    end: u128,
    network: u32,
}

fn key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        // An IPv4-mapped IPv6 address is looked up as the IPv4 address it is.
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (false, u128::from(u32::from(v4))),
            None => (true, u128::from(a)),
        },
    }
}

/// Sorted ranges of addresses and what is known of each. Build it with [`AsnTableBuilder`].
#[derive(Debug, Default)]
pub struct AsnTable {
    v4: Vec<Span>,
    v6: Vec<Span>,
    networks: Vec<Network>,
}

impl AsnTable {
    /// What the table knows of `ip`, if a range holds it.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Network> {
        let (v6, n) = key(ip);
        let spans = if v6 { &self.v6 } else { &self.v4 };
        let i = spans.partition_point(|s| s.start <= n);
        let span = spans.get(i.checked_sub(1)?)?;
        (n <= span.end).then(|| &self.networks[span.network as usize])
    }

    /// Ranges held (IPv4 + IPv6).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct AS numbers in the table.
    pub fn as_count(&self) -> usize {
        let mut asns: Vec<u32> = self.networks.iter().filter_map(|n| n.asn).collect();
        asns.sort_unstable();
        asns.dedup();
        asns.len()
    }
}

/// Collects ranges in any order, then sorts them into an [`AsnTable`].
#[derive(Debug, Default)]
pub struct AsnTableBuilder {
    v4: Vec<Span>,
    v6: Vec<Span>,
    networks: Vec<Network>,
    index: HashMap<Network, u32>,
    /// Ranges dropped at build time because an earlier range already covered part of them.
    pub overlaps: usize,
}

impl AsnTableBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the range `start..=end` (both of one family, `start <= end`). A range that says
    /// nothing (no AS, no name, no country) is skipped.
    pub fn add(&mut self, start: IpAddr, end: IpAddr, network: Network) -> Result<(), String> {
        let ((v6s, s), (v6e, e)) = (key(start), key(end));
        if v6s != v6e {
            return Err(format!("range {start} – {end} mixes IPv4 and IPv6"));
        }
        if s > e {
            return Err(format!("range {start} – {end} ends before it starts"));
        }
        if network.is_empty() {
            return Ok(());
        }
        let next = self.networks.len() as u32;
        let id = *self.index.entry(network.clone()).or_insert(next);
        if id == next {
            self.networks.push(network);
        }
        let span = Span { start: s, end: e, network: id };
        if v6s { self.v6.push(span) } else { self.v4.push(span) }
        Ok(())
    }

    /// Add a CIDR block (`addr/len`, as MaxMind databases list them).
    pub fn add_cidr(&mut self, addr: IpAddr, len: u8, network: Network) -> Result<(), String> {
        let (v6, n) = key(addr);
        let bits: u32 = if v6 { 128 } else { 32 };
        // A mapped address's prefix counts the 96 bits of the mapping.
        let len = u32::from(len);
        let len = if !v6 && matches!(addr, IpAddr::V6(_)) { len.saturating_sub(96) } else { len };
        if len > bits {
            return Err(format!("prefix /{len} is too long for {addr}"));
        }
        let host = bits - len;
        let mask = if host == 0 { 0 } else if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
        let (start, end) = (n & !mask, n | mask);
        let to_ip = |x: u128| -> IpAddr {
            if v6 { IpAddr::from(x.to_be_bytes()) } else { IpAddr::from((x as u32).to_be_bytes()) }
        };
        self.add(to_ip(start), to_ip(end), network)
    }

    /// Sort the ranges; where two overlap, the one starting first keeps the overlap.
    pub fn build(mut self) -> AsnTable {
        let mut dropped = 0;
        for spans in [&mut self.v4, &mut self.v6] {
            spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
            let mut kept: Vec<Span> = Vec::with_capacity(spans.len());
            for s in spans.drain(..) {
                let Some(last) = kept.last_mut() else {
                    kept.push(s);
                    continue;
                };
                if s.start <= last.end {
                    if s.end > last.end {
                        // Keep the part after the earlier range.
                        let rest = Span { start: last.end + 1, ..s };
                        kept.push(rest);
                    } else {
                        dropped += 1;
                    }
                } else if last.network == s.network && last.end + 1 == s.start {
                    last.end = s.end;
                } else {
                    kept.push(s);
                }
            }
            *spans = kept;
        }
        self.overlaps += dropped;
        AsnTable { v4: self.v4, v6: self.v6, networks: self.networks }
    }
}

/// One line of an ip2asn TSV (iptoasn.com's `ip2asn-v4.tsv`, `-v6.tsv`, `-combined.tsv`):
/// `range_start TAB range_end TAB AS_number TAB country_code TAB AS_description`.
/// `Ok(None)` for ranges that are not routed (AS 0) and for blank or `#` lines.
pub fn parse_ip2asn_line(line: &str) -> Result<Option<(IpAddr, IpAddr, Network)>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut cols = line.splitn(5, '\t');
    let mut col = |name: &str| cols.next().ok_or_else(|| format!("missing column `{name}` (5 tab-separated columns expected)"));
    let (start, end, asn, cc) = (col("range_start")?, col("range_end")?, col("AS_number")?, col("country_code")?);
    let desc = cols.next().unwrap_or("");
    let ip = |s: &str, name: &str| s.trim().parse::<IpAddr>().map_err(|_| format!("`{name}` `{}` is not an IP address", s.trim()));
    let (start, end) = (ip(start, "range_start")?, ip(end, "range_end")?);
    let asn = asn.trim();
    let asn = asn
        .strip_prefix("AS")
        .unwrap_or(asn)
        .parse::<u32>()
        .map_err(|_| format!("`AS_number` `{asn}` is not a number"))?;
    if asn == 0 {
        return Ok(None);
    }
    let network = Network { asn: Some(asn), as_name: text(desc), country: country_code(cc) };
    Ok(Some((start, end, network)))
}

/// Tables layered for lookups: for each field, the first table that knows it wins.
#[derive(Debug, Clone, Default)]
pub struct Enrichment {
    tables: Vec<Arc<AsnTable>>,
}

impl Enrichment {
    pub fn new(tables: Vec<Arc<AsnTable>>) -> Self {
        Enrichment { tables }
    }

    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.is_empty())
    }

    /// Everything the tables know of `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<Network> {
        let mut out: Option<Network> = None;
        for t in &self.tables {
            if let Some(n) = t.lookup(ip) {
                match &mut out {
                    None => out = Some(n.clone()),
                    Some(o) => o.fill_from(n),
                }
            }
        }
        out
    }

    /// What the tables know of a stored indicator: an address, or a URL whose host is an
    /// address. CIDRs, names and hashes have no single network.
    pub fn lookup_indicator(&self, itype: IType, value: &str) -> Option<Network> {
        if self.tables.is_empty() {
            return None;
        }
        self.lookup(address_of(itype, value)?)
    }
}

/// The single address a stored indicator stands for: an address itself (not a CIDR wider than
/// one address), or a URL's host when it is an address. Values are the core's canonical forms.
pub fn address_of(itype: IType, value: &str) -> Option<IpAddr> {
    match itype {
        IType::Ipv4 | IType::Ipv6 => match value.split_once('/') {
            None => value.parse().ok(),
            Some((a, len)) => {
                let full = if itype == IType::Ipv4 { "32" } else { "128" };
                (len == full).then(|| a.parse().ok()).flatten()
            }
        },
        IType::Url => {
            let ind = crate::parse(value, Some(IType::Url), &ParseOptions::default()).ok()?;
            ind.derived.iter().find(|d| d.itype.is_address()).and_then(|d| d.value.parse().ok())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(lines: &str) -> AsnTable {
        let mut b = AsnTableBuilder::new();
        for line in lines.lines() {
            if let Some((s, e, n)) = parse_ip2asn_line(line).unwrap() {
                b.add(s, e, n).unwrap();
            }
        }
        b.build()
    }

    const TSV: &str = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\
                       1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n\
                       1.0.4.0\t1.0.7.255\t38803\tAU\tGTELECOM-AUSTRALIA Gtelecom Pty Ltd\n\
                       2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64500\tNone\tEXAMPLE-V6\n";

    #[test]
    fn ranges_are_found_by_binary_search_at_their_edges() {
        let t = table(TSV);
        assert_eq!(t.len(), 3);
        for (addr, asn) in [
            ("1.0.0.0", Some(13335)),
            ("1.0.0.255", Some(13335)),
            ("1.0.1.0", None),
            ("1.0.3.255", None),
            ("1.0.4.0", Some(38803)),
            ("1.0.7.255", Some(38803)),
            ("1.0.8.0", None),
            ("0.255.255.255", None),
            ("2001:db8::1", Some(64500)),
            ("2001:db9::", None),
            ("::ffff:1.0.0.7", Some(13335)),
        ] {
            assert_eq!(t.lookup(ip(addr)).and_then(|n| n.asn), asn, "{addr}");
        }
        let au = t.lookup(ip("1.0.5.5")).unwrap();
        assert_eq!(au.country.as_deref(), Some("AU"));
        assert_eq!(au.as_name.as_deref(), Some("GTELECOM-AUSTRALIA Gtelecom Pty Ltd"));
        assert_eq!(t.lookup(ip("2001:db8::1")).unwrap().country, None, "`None` is no country");
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, want) in [
            ("1.0.0.0\t1.0.0.255", "missing column `AS_number`"),
            ("1.0.0.x\t1.0.0.255\t1\tUS\tX", "`range_start` `1.0.0.x`"),
            ("1.0.0.0\t1.0.0.255\tabc\tUS\tX", "`AS_number` `abc`"),
        ] {
            let e = parse_ip2asn_line(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
        let mut b = AsnTableBuilder::new();
        let n = Network { asn: Some(1), ..Network::default() };
        assert!(b.add(ip("1.0.0.9"), ip("1.0.0.1"), n.clone()).is_err());
        assert!(b.add(ip("1.0.0.1"), ip("::1"), n).is_err());
    }

    #[test]
    fn overlaps_keep_the_earlier_range_and_cidrs_cover_their_block() {
        let mut b = AsnTableBuilder::new();
        let n = |a| Network { asn: Some(a), ..Network::default() };
        b.add_cidr(ip("10.0.0.0"), 8, n(1)).unwrap();
        b.add_cidr(ip("10.1.0.0"), 16, n(2)).unwrap();
        b.add_cidr(ip("::ffff:192.0.2.0"), 120, n(3)).unwrap();
        b.add_cidr(ip("2001:db8::"), 32, n(4)).unwrap();
        let t = b.build();
        assert_eq!(t.lookup(ip("10.1.2.3")).unwrap().asn, Some(1));
        assert_eq!(t.lookup(ip("10.255.255.255")).unwrap().asn, Some(1));
        assert_eq!(t.lookup(ip("192.0.2.200")).unwrap().asn, Some(3));
        assert_eq!(t.lookup(ip("192.0.3.0")), None);
        assert_eq!(t.lookup(ip("2001:db8:ffff::1")).unwrap().asn, Some(4));
    }

    #[test]
    fn layered_tables_fill_in_each_others_fields() {
        let asns = table("198.51.100.0\t198.51.100.255\t64496\tNone\tDOC-NET\n");
        let mut b = AsnTableBuilder::new();
        b.add_cidr(ip("198.51.0.0"), 16, Network { country: country_code("nl"), ..Network::default() }).unwrap();
        let e = Enrichment::new(vec![Arc::new(asns), Arc::new(b.build())]);
        let n = e.lookup(ip("198.51.100.7")).unwrap();
        assert_eq!((n.asn, n.as_name.as_deref(), n.country.as_deref()), (Some(64496), Some("DOC-NET"), Some("NL")));
        assert_eq!(e.lookup(ip("198.51.7.7")).unwrap().asn, None);
    }

    #[test]
    fn indicators_stand_for_an_address_or_a_url_host() {
        assert_eq!(address_of(IType::Ipv4, "198.51.100.7"), Some(ip("198.51.100.7")));
        assert_eq!(address_of(IType::Ipv4, "198.51.100.7/32"), Some(ip("198.51.100.7")));
        assert_eq!(address_of(IType::Ipv4, "198.51.100.0/24"), None);
        assert_eq!(address_of(IType::Url, "http://198.51.100.7:8080/x.sh"), Some(ip("198.51.100.7")));
        assert_eq!(address_of(IType::Url, "http://[2001:db8::5]/a"), Some(ip("2001:db8::5")));
        assert_eq!(address_of(IType::Url, "http://example.com/a"), None);
        assert_eq!(address_of(IType::Fqdn, "example.com"), None);
    }
}
