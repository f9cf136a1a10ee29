//! `ipset restore -exist` files: separate `hash:net` sets for IPv4 and IPv6, filled through
//! temporary sets and swapped in, so a reload is atomic and a firewall rule matching
//! `<name>-v4`/`<name>-v6` never sees a half-loaded list. One `iptables -m set` rule per set,
//! never one rule per address. No comment lines: `ipset restore` reads every line as a command.

use std::io::{self, Write};

use super::{Format, Meta, Record};
use crate::IType;

/// Largest number of entries per set (ipset's default of 65,536 is too small for big feeds;
/// the kernel allocates as the set grows, not up front).
pub const MAXELEM: u32 = 16_777_216;

pub struct Ipset {
    v4: String,
    v6: String,
}

/// A set name: letters, digits, `-`, `_`, `.`; at most 24 characters so that `-v4-tmp` still
/// fits ipset's 31-character limit. Anything else falls back to `apiary`.
pub fn set_base(name: &str) -> &str {
    let ok = !name.is_empty() && name.len() <= 24 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        name
    } else {
        "apiary"
    }
}

impl Ipset {
    pub fn boxed(meta: &Meta) -> Box<dyn Format> {
        let base = set_base(&meta.set_name);
        Box::new(Ipset { v4: format!("{base}-v4"), v6: format!("{base}-v6") })
    }
}

impl Format for Ipset {
    fn accepts(&self, r: &Record) -> bool {
        r.is_address()
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for (set, family) in [(&self.v4, "inet"), (&self.v6, "inet6")] {
            writeln!(out, "create {set} hash:net family {family} maxelem {MAXELEM}")?;
            writeln!(out, "create {set}-tmp hash:net family {family} maxelem {MAXELEM}")?;
            writeln!(out, "flush {set}-tmp")?;
        }
        Ok(())
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        let set = if r.itype == IType::Ipv4 { &self.v4 } else { &self.v6 };
        writeln!(out, "add {set}-tmp {}", r.value)
    }

    fn footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for set in [&self.v4, &self.v6] {
            writeln!(out, "swap {set}-tmp {set}")?;
            writeln!(out, "destroy {set}-tmp")?;
        }
        Ok(())
    }
}
