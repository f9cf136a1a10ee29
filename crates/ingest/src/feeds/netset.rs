//! `netset`: FireHOL's IP lists (`firehol_level1.netset`, `*.ipset`): one address or CIDR per
//! line under a `#` comment header.
//!
//! The header's `ipv4 hash:net ipset` (or `ipv6`) line says which family the list holds; the
//! value is checked against it by the core, so a name or a URL in a netset is a type mismatch,
//! not an import. The header's `Category` (`attacks`, `abuse`, ...) tags every value.

use super::text::text_line;
use super::{each_line, Entry, Format, Options};
use apiary_core::IType;
use std::io::{self, BufRead};

pub struct Netset;

impl Format for Netset {
    fn name(&self) -> &'static str {
        "netset"
    }

    fn about(&self) -> &'static str {
        "FireHOL netset/ipset: addresses and CIDRs, `#` header with family and category"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        let mut family: Option<IType> = None;
        let mut category: Option<String> = None;
        each_line(input, &mut |n, line| {
            let t = line.trim();
            if let Some(c) = t.strip_prefix('#') {
                let c = c.trim();
                if c.starts_with("ipv4 hash:") {
                    family = Some(IType::Ipv4);
                } else if c.starts_with("ipv6 hash:") {
                    family = Some(IType::Ipv6);
                } else if let Some(v) = c.strip_prefix("Category").map(str::trim_start).and_then(|r| r.strip_prefix(':')) {
                    category = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
                }
                out(Entry::Comment);
                return;
            }
            match text_line(n, line, &['#']) {
                Entry::Record(mut r) => {
                    // A family the header did not state: v6 when the value has a colon. The
                    // core checks the hint; it only stops a name from passing as an address.
                    r.hint = Some(family.unwrap_or(if r.value.contains(':') { IType::Ipv6 } else { IType::Ipv4 }));
                    r.tags.extend(category.clone());
                    out(Entry::Record(r))
                }
                other => out(other),
            }
        })
    }
}
