//! Snort and Suricata rules.
//!
//! Attackers (scanners, brute-forcers: the default for addresses) get an inbound rule,
//! `alert ip <ip> any -> $HOME_NET any (...)`; hosts your machines reach out to (tags naming C2,
//! malware, payloads, phishing) an outbound one, `alert ip $HOME_NET any -> <ip> any (...)`.
//! The Suricata form also turns domains into DNS-query rules (`dns.query; dotprefix;
//! content:".evil.example"; endswith;`, which matches the name and its subdomains).
//!
//! Sids are stable per indicator and in the local range (≥ 1,000,000):
//! - an IPv4 address `a.b.c.d` (public space is 1.0.0.0–223.255.255.255) gets
//!   `1,000,000 + (address − 1.0.0.0)`: one sid per address, the same in every export;
//! - anything else (IPv6, CIDRs, domains) hashes into the band from [`HASHED_BASE`] to
//!   `u32::MAX`; in the rare case two values of one export land on the same sid, the later one
//!   takes the next free sid (so those few depend on what else is in the export).

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::Ipv4Addr;

use super::{Format, Meta, Record};
use crate::IType;

/// First sid of the hashed band (above every IPv4-derived sid).
pub const HASHED_BASE: u32 = 3_750_000_000;
/// First local sid.
pub const LOCAL_BASE: u32 = 1_000_000;

/// Tags that make a value a host to block *outbound* (your hosts connect to it).
pub const OUTBOUND_TAGS: &[&str] =
    &["c2", "cnc", "c&c", "command-and-control", "botnet-c2", "malware", "payload", "download", "dropper", "phishing", "phish"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Snort,
    Suricata,
}

pub struct Rules {
    dialect: Dialect,
    source: String,
    /// Hashed sids handed out in this export (collisions only; IPv4 sids cannot collide).
    hashed: HashSet<u32>,
}

impl Rules {
    pub fn snort(meta: &Meta) -> Box<dyn Format> {
        Box::new(Rules { dialect: Dialect::Snort, source: msg_text(&meta.source), hashed: HashSet::new() })
    }

    pub fn suricata(meta: &Meta) -> Box<dyn Format> {
        Box::new(Rules { dialect: Dialect::Suricata, source: msg_text(&meta.source), hashed: HashSet::new() })
    }

    fn sid(&mut self, r: &Record) -> u32 {
        if let Some(sid) = ipv4_sid(r) {
            return sid;
        }
        let span = (u32::MAX - HASHED_BASE) as u64;
        let mut sid = HASHED_BASE + (fnv1a(r.itype.as_str(), r.value) % span) as u32;
        while !self.hashed.insert(sid) {
            sid = if sid == u32::MAX - 1 { HASHED_BASE } else { sid + 1 };
        }
        sid
    }
}

/// The sid of a single public IPv4 address, derived from the address alone.
pub fn ipv4_sid(r: &Record) -> Option<u32> {
    if r.itype != IType::Ipv4 || r.is_cidr() {
        return None;
    }
    let a: u32 = r.value.parse::<Ipv4Addr>().ok()?.into();
    (0x0100_0000..0xE000_0000).contains(&a).then(|| LOCAL_BASE + (a - 0x0100_0000))
}

fn fnv1a(kind: &str, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain(std::iter::once(b'|')).chain(value.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Text allowed inside `msg:"..."`: no quote, semicolon, backslash or control character.
fn msg_text(s: &str) -> String {
    s.chars().map(|c| if matches!(c, '"' | ';' | '\\') || c.is_control() { ' ' } else { c }).collect()
}

/// True when the record names a host your machines would connect to.
pub fn outbound(r: &Record) -> bool {
    r.itype == IType::Fqdn || r.tags.iter().any(|t| OUTBOUND_TAGS.iter().any(|o| t.eq_ignore_ascii_case(o)))
}

impl Format for Rules {
    fn accepts(&self, r: &Record) -> bool {
        r.is_address() || (self.dialect == Dialect::Suricata && r.itype == IType::Fqdn && r.value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b'\\'))
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "# apiary rules for {}", self.source)
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        let sid = self.sid(r);
        let tags = if r.tags.is_empty() { String::new() } else { format!(" ({})", msg_text(&r.tags.join(","))) };
        if r.itype == IType::Fqdn {
            return writeln!(
                out,
                "alert dns $HOME_NET any -> any any (msg:\"APIARY {} DNS query for {}{tags}\"; dns.query; dotprefix; content:\".{}\"; nocase; endswith; classtype:misc-attack; sid:{sid}; rev:1;)",
                self.source, r.value, r.value
            );
        }
        if outbound(r) {
            writeln!(
                out,
                "alert ip $HOME_NET any -> {} any (msg:\"APIARY {} outbound to {}{tags}\"; classtype:misc-attack; sid:{sid}; rev:1;)",
                r.value, self.source, r.value
            )
        } else {
            writeln!(
                out,
                "alert ip {} any -> $HOME_NET any (msg:\"APIARY {} inbound from {}{tags}\"; classtype:misc-attack; sid:{sid}; rev:1;)",
                r.value, self.source, r.value
            )
        }
    }

    fn footer(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn rec(value: &'static str, itype: IType) -> Record<'static> {
        let t = Utc::now();
        Record { value, itype, feed: "a/b", firsttime: t, lasttime: t, reporttime: t, count: 1, tags: &[], ports: &[], protocol: None, description: None, tlp: "green", confidence: None, held: false }
    }

    #[test]
    fn ipv4_sids_are_the_address() {
        assert_eq!(ipv4_sid(&rec("1.0.0.0", IType::Ipv4)), Some(1_000_000));
        assert_eq!(ipv4_sid(&rec("1.0.0.7", IType::Ipv4)), Some(1_000_007));
        assert_eq!(ipv4_sid(&rec("223.255.255.255", IType::Ipv4)), Some(1_000_000 + 0xDEFF_FFFF));
        assert!(ipv4_sid(&rec("223.255.255.255", IType::Ipv4)).unwrap() < HASHED_BASE);
        assert_eq!(ipv4_sid(&rec("198.51.100.0/24", IType::Ipv4)), None);
        assert_eq!(ipv4_sid(&rec("224.0.0.1", IType::Ipv4)), None);
    }

    #[test]
    fn hashed_sids_are_stable_and_unique() {
        let meta = Meta::new("a/b", "a", Utc::now(), Utc::now());
        let mut one = Rules { dialect: Dialect::Suricata, source: meta.source.clone(), hashed: HashSet::new() };
        let mut two = Rules { dialect: Dialect::Suricata, source: meta.source, hashed: HashSet::new() };
        let a = one.sid(&rec("2001:db8::1", IType::Ipv6));
        assert_eq!(a, two.sid(&rec("2001:db8::1", IType::Ipv6)));
        assert!(a >= HASHED_BASE);
        // The same value twice in one export is a collision: the second gets the next sid.
        assert_ne!(a, one.sid(&rec("2001:db8::1", IType::Ipv6)));
    }
}
