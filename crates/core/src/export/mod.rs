//! Feed exports: one [`Format`] per consumer file format, and the [`Policy`] that decides what
//! may leave the hub at all.
//!
//! Formats are pure and streaming: [`Format::header`], then [`Format::record`] once per
//! indicator (newest first, as the store pages them), then [`Format::footer`], each writing to
//! any `std::io::Write`. None keeps the records it has seen, so memory does not grow with the
//! feed (the one exception, the Snort/Suricata sid allocator, keeps a set of the sids it handed
//! out for values that are not plain IPv4 addresses; see [`rules`]).
//!
//! Pick a format by name with [`by_name`]; [`FORMATS`] lists them all.

pub mod csv;
pub mod ipset;
pub mod json;
pub mod jsonl;
pub mod nginx;
pub mod policy;
pub mod rpz;
pub mod rules;
pub mod stix;
pub mod suricata_iprep;
pub mod text;
pub mod zeek;

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use crate::IType;

pub use policy::{Policy, Skip, Verdict, Window};

/// One indicator as an export sees it: the aggregate of one value in one feed.
/// Borrowed, so paging through a store never copies values.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The normalised value (`198.51.100.7`, `203.0.113.0/24`, `https://a.example/x`).
    pub value: &'a str,
    pub itype: IType,
    /// The feed it comes from, `owner/name`.
    pub feed: &'a str,
    pub firsttime: DateTime<Utc>,
    pub lasttime: DateTime<Utc>,
    pub reporttime: DateTime<Utc>,
    pub count: i64,
    pub tags: &'a [String],
    pub ports: &'a [u16],
    pub protocol: Option<&'a str>,
    pub description: Option<&'a str>,
    /// TLP label name: `clear`, `green`, `amber` or `red`.
    pub tlp: &'a str,
    /// The publisher's own confidence claim, 0–10 (the hub's scores come with the scoring work).
    pub confidence: Option<f64>,
    /// On a hold allowlist (set by [`Policy::check`]; only data formats ever see one).
    pub held: bool,
}

impl Record<'_> {
    /// True for an address or CIDR.
    pub fn is_address(&self) -> bool {
        self.itype.is_address()
    }

    /// True for a CIDR (an address value with a prefix length).
    pub fn is_cidr(&self) -> bool {
        self.itype.is_address() && self.value.contains('/')
    }
}

/// What an export is of and for: written into headers, comments and ids.
#[derive(Debug, Clone)]
pub struct Meta {
    /// What is exported: a feed's `owner/name`, or a hub-wide name such as `hub/block`.
    pub source: String,
    /// Who produced it (the feed's owner, or the hub), for STIX `identity` and comments.
    pub producer: String,
    /// When the producer's identity began (the feed's creation), so STIX identities are stable.
    pub producer_since: DateTime<Utc>,
    /// When the export was made.
    pub generated: DateTime<Utc>,
    /// A one-line human description of the filters applied, for comment headers.
    pub filter: String,
    /// The hub's public base URL, for links (Zeek `meta.url`); None when unknown.
    pub base_url: Option<String>,
    /// Base name of the ipset sets (`<name>-v4`, `<name>-v6`); at most 24 characters.
    pub set_name: String,
    /// The RPZ zone's name (used in the SOA and for name-length checks), with a trailing dot.
    pub zone: String,
}

impl Meta {
    /// Defaults for `source`, generated at `generated`.
    pub fn new(source: &str, producer: &str, producer_since: DateTime<Utc>, generated: DateTime<Utc>) -> Meta {
        Meta {
            source: source.to_string(),
            producer: producer.to_string(),
            producer_since,
            generated,
            filter: String::new(),
            base_url: None,
            set_name: "apiary".to_string(),
            zone: "rpz.apiary.".to_string(),
        }
    }
}

/// A file format consumers load. One instance writes one export.
pub trait Format: Send {
    /// Whether this format can express `r` (a firewall list takes addresses only, ...).
    /// Records it cannot express are skipped, never written half-formed.
    fn accepts(&self, r: &Record) -> bool;
    /// Everything before the first record.
    fn header(&mut self, out: &mut dyn Write) -> io::Result<()>;
    /// One record.
    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()>;
    /// Everything after the last record.
    fn footer(&mut self, out: &mut dyn Write) -> io::Result<()>;
}

/// A registered format: its name, what it is for, and how to start one.
#[derive(Debug)]
pub struct FormatSpec {
    /// The name in the API (`format=`) and the CLI (`--format`).
    pub name: &'static str,
    /// The consumer, in a few words.
    pub description: &'static str,
    /// The HTTP `Content-Type` of the export.
    pub media_type: &'static str,
    /// Blocklist formats (firewalls, IDS, resolvers) leave out held values: popular
    /// infrastructure stays out of blocklists until a trusted source confirms it.
    pub blocklist: bool,
    /// Whether the format writes the detail fields (tags, ports, protocol, description): the
    /// others are exported from records read without them, which is most of a store's work.
    pub details: bool,
    /// Start an export.
    pub new: fn(&Meta) -> Box<dyn Format>,
}

/// Every format, by name.
pub static FORMATS: &[FormatSpec] = &[
    FormatSpec { name: "text", description: "one value per line, with a # comment header", media_type: "text/plain; charset=utf-8", blocklist: false, details: false, new: text::Text::boxed },
    FormatSpec { name: "csv", description: "RFC 4180 CSV with a header row", media_type: "text/csv; charset=utf-8", blocklist: false, details: true, new: csv::Csv::boxed },
    FormatSpec { name: "json", description: "a JSON array of indicators (native field names)", media_type: "application/json", blocklist: false, details: true, new: json::Json::boxed },
    FormatSpec { name: "jsonl", description: "JSON lines, one indicator per line", media_type: "application/x-ndjson", blocklist: false, details: true, new: jsonl::JsonLines::boxed },
    FormatSpec { name: "zeek", description: "Zeek Intel framework file", media_type: "text/plain; charset=utf-8", blocklist: true, details: true, new: zeek::Zeek::boxed },
    FormatSpec { name: "suricata-iprep", description: "Suricata IP reputation file (categories file: suricata_iprep::categories)", media_type: "text/plain; charset=utf-8", blocklist: true, details: true, new: suricata_iprep::IpRep::boxed },
    FormatSpec { name: "suricata-rules", description: "Suricata rules: IP rules and DNS-query rules for domains", media_type: "text/plain; charset=utf-8", blocklist: true, details: true, new: rules::Rules::suricata },
    FormatSpec { name: "snort", description: "Snort rules for addresses", media_type: "text/plain; charset=utf-8", blocklist: true, details: true, new: rules::Rules::snort },
    FormatSpec { name: "ipset", description: "`ipset restore -exist` file, v4 and v6 sets swapped in atomically", media_type: "text/plain; charset=utf-8", blocklist: true, details: false, new: ipset::Ipset::boxed },
    FormatSpec { name: "nginx", description: "nginx `deny` lines, for `include`", media_type: "text/plain; charset=utf-8", blocklist: true, details: false, new: nginx::Nginx::deny },
    FormatSpec { name: "nginx-geo", description: "nginx `geo $apiary_blocked` block (a lookup table, for large lists)", media_type: "text/plain; charset=utf-8", blocklist: true, details: false, new: nginx::Nginx::geo },
    FormatSpec { name: "rpz", description: "BIND response policy zone (domains, rpz-ip for addresses)", media_type: "text/dns; charset=utf-8", blocklist: true, details: false, new: rpz::Rpz::boxed },
    FormatSpec { name: "stix", description: "STIX 2.1 bundle of indicators with TLP markings", media_type: "application/stix+json;version=2.1", blocklist: false, details: true, new: stix::Stix::boxed },
];

/// The format called `name`.
pub fn by_name(name: &str) -> Option<&'static FormatSpec> {
    FORMATS.iter().find(|f| f.name.eq_ignore_ascii_case(name.trim()))
}

/// The names of every format, comma separated (for error messages and help).
pub fn names() -> String {
    FORMATS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// Write a whole export of `records` (already filtered) in one go. Streaming callers use the
/// [`Format`] methods directly; this is for tests and small exports.
pub fn write_all<'a>(
    format: &mut dyn Format,
    records: impl IntoIterator<Item = Record<'a>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    format.header(out)?;
    for r in records {
        if format.accepts(&r) {
            format.record(&r, out)?;
        }
    }
    format.footer(out)
}

/// A single-line comment text: control characters (newlines, tabs) become spaces, so a
/// description sent by anyone cannot start a new line in a file a firewall loads.
pub(crate) fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `t` as RFC 3339 UTC, exactly like [`crate::format_time`] (seconds, or microseconds when
/// they are not zero) but without chrono's format-string interpreter: an export formats up to
/// three times per record, and this is several times faster.
pub fn time_text(t: DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    push_time(t, if micros == 0 { None } else { Some((micros, 6)) })
}

/// `t` as RFC 3339 UTC with exactly three fraction digits (STIX timestamps).
pub fn time_millis(t: DateTime<Utc>) -> String {
    push_time(t, Some((t.timestamp_subsec_millis(), 3)))
}

fn push_time(t: DateTime<Utc>, fraction: Option<(u32, usize)>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return match fraction {
            None => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Some((_, 3)) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            Some(_) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        };
    }
    fn digits(b: &mut [u8; 32], n: &mut usize, v: u32, width: usize, sep: Option<u8>) {
        let mut v = v;
        for i in (0..width).rev() {
            b[*n + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        *n += width;
        if let Some(c) = sep {
            b[*n] = c;
            *n += 1;
        }
    }
    let (mut b, mut n) = ([0u8; 32], 0usize);
    digits(&mut b, &mut n, year as u32, 4, Some(b'-'));
    digits(&mut b, &mut n, t.month(), 2, Some(b'-'));
    digits(&mut b, &mut n, t.day(), 2, Some(b'T'));
    digits(&mut b, &mut n, t.hour(), 2, Some(b':'));
    digits(&mut b, &mut n, t.minute(), 2, Some(b':'));
    // A leap second is nanosecond >= 1e9 in chrono and prints as second 60.
    let leap = t.nanosecond() >= 1_000_000_000;
    digits(&mut b, &mut n, t.second() + leap as u32, 2, if fraction.is_some() { Some(b'.') } else { None });
    if let Some((frac, width)) = fraction {
        let frac = if leap { frac - 10u32.pow(width as u32) } else { frac };
        digits(&mut b, &mut n, frac, width, None);
    }
    b[n] = b'Z';
    n += 1;
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// The address part of an address or CIDR value, and its prefix length.
pub(crate) fn split_prefix<'a>(r: &Record<'a>) -> (&'a str, Option<u8>) {
    match r.value.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()),
        None => (r.value, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_found() {
        for f in FORMATS {
            assert!(std::ptr::eq(by_name(f.name).unwrap(), f), "{}", f.name);
            assert_eq!(FORMATS.iter().filter(|g| g.name == f.name).count(), 1);
        }
        assert!(by_name("STIX").is_some());
        assert!(by_name("pdf").is_none());
        for name in ["text", "csv", "json", "jsonl", "zeek", "suricata-iprep", "suricata-rules", "snort", "ipset", "nginx", "rpz", "stix"] {
            assert!(by_name(name).is_some(), "issue 7 names {name}");
        }
    }

    /// A format that says it needs no details writes the same bytes without them, so the
    /// store may leave them out.
    #[test]
    fn formats_without_details_ignore_them() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 5, 30, 12, 0, 0).unwrap();
        let tags = vec!["scanner".to_string(), "ssh".to_string()];
        let values = [("203.0.113.7", IType::Ipv4), ("2001:db8::7", IType::Ipv6), ("198.51.100.0/24", IType::Ipv4), ("evil.example", IType::Fqdn)];
        let meta = Meta::new("alice/feed", "alice", t, t);
        for f in FORMATS.iter().filter(|f| !f.details) {
            let write = |detailed: bool| {
                let mut format = (f.new)(&meta);
                let mut out = Vec::new();
                format.header(&mut out).unwrap();
                for (value, itype) in values {
                    let r = Record {
                        value,
                        itype,
                        feed: "alice/feed",
                        firsttime: t,
                        lasttime: t,
                        reporttime: t,
                        count: 3,
                        tags: if detailed { &tags } else { &[] },
                        ports: if detailed { &[22, 2222] } else { &[] },
                        protocol: detailed.then_some("tcp"),
                        description: detailed.then_some("ssh brute force"),
                        tlp: "green",
                        confidence: Some(7.0),
                        held: false,
                    };
                    if format.accepts(&r) {
                        format.record(&r, &mut out).unwrap();
                    }
                }
                format.footer(&mut out).unwrap();
                out
            };
            let (with, without) = (write(true), write(false));
            assert!(with.len() > 100, "{}: {} bytes", f.name, with.len());
            assert_eq!(String::from_utf8_lossy(&with), String::from_utf8_lossy(&without), "{} reads details", f.name);
        }
        assert!(!by_name("text").unwrap().details && by_name("csv").unwrap().details);
    }

    #[test]
    fn fast_times_match_chrono() {
        use chrono::TimeZone;
        let base = Utc.with_ymd_and_hms(2026, 5, 30, 12, 34, 56).unwrap();
        for t in [
            base,
            base + chrono::Duration::microseconds(789_000),
            base + chrono::Duration::microseconds(1),
            base + chrono::Duration::nanoseconds(999_999_999),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(999, 12, 31, 23, 59, 59).unwrap(),
        ] {
            assert_eq!(time_text(t), crate::format_time(t), "{t:?}");
            assert_eq!(time_millis(t), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), "{t:?}");
        }
    }

    #[test]
    fn one_line_removes_line_breaks() {
        assert_eq!(one_line("a\nb\r\tc"), "a b  c");
    }
}
