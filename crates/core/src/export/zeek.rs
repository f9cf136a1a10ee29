//! Zeek Intel framework files: tab-separated, a `#fields` header, `-` for an empty field.
//! Addresses are `Intel::ADDR`, CIDRs `Intel::SUBNET`, URLs `Intel::URL` without their scheme
//! (Zeek matches `host/path`), domains `Intel::DOMAIN`, e-mails `Intel::EMAIL`, hashes
//! `Intel::FILE_HASH`. AS numbers have no Intel type and are left out.

use std::io::{self, Write};

use super::{Format, Meta, Record};
use crate::IType;

pub const FIELDS: &str = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url";

pub struct Zeek {
    source: String,
    base_url: Option<String>,
}

impl Zeek {
    pub fn boxed(meta: &Meta) -> Box<dyn Format> {
        Box::new(Zeek {
            source: format!("apiary:{}", field(&meta.source)),
            base_url: meta.base_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
        })
    }
}

/// A field value, `-` when empty: control characters (tabs and line breaks too) and the
/// backslash as Zeek's `\xNN` escapes of their UTF-8 bytes, which its input reader undoes.
fn field(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn intel_type(r: &Record) -> Option<&'static str> {
    Some(match r.itype {
        IType::Ipv4 | IType::Ipv6 if r.is_cidr() => "Intel::SUBNET",
        IType::Ipv4 | IType::Ipv6 => "Intel::ADDR",
        IType::Url => "Intel::URL",
        IType::Fqdn => "Intel::DOMAIN",
        IType::Email => "Intel::EMAIL",
        IType::Md5 | IType::Sha1 | IType::Sha256 | IType::Sha512 => "Intel::FILE_HASH",
        IType::Asn => return None,
    })
}

/// Percent-encode a value for a URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Format for Zeek {
    fn accepts(&self, r: &Record) -> bool {
        intel_type(r).is_some() && !r.value.chars().any(char::is_control)
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{FIELDS}")
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        let Some(kind) = intel_type(r) else { return Ok(()) };
        let value = match r.itype {
            IType::Url => r.value.split_once("://").map_or(r.value, |(_, rest)| rest),
            _ => r.value,
        };
        let desc = match (r.description, r.tags.is_empty()) {
            (Some(d), _) if !d.trim().is_empty() => field(d),
            (_, false) => field(&r.tags.join(",")),
            _ => "-".into(),
        };
        let url = match &self.base_url {
            Some(base) => format!("{base}/api/v1/indicators/{}", path_segment(r.value)),
            None => "-".into(),
        };
        writeln!(out, "{value}\t{kind}\t{}\t{desc}\t{url}", self.source)
    }

    fn footer(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
