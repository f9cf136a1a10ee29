//! nginx: `deny <ip-or-cidr>;` lines to `include` in an `http`, `server` or `location` block,
//! or, for large lists, a `geo $apiary_blocked { ... }` block (a radix-tree lookup instead of
//! a linear scan of deny rules) to `include` in `http` and use as
//! `if ($apiary_blocked) { return 403; }`.

use std::io::{self, Write};

use super::{one_line, Format, Meta, Record};
use crate::format_time;

/// The variable the `geo` form sets to 1 for a listed client address.
pub const GEO_VARIABLE: &str = "$apiary_blocked";

pub struct Nginx {
    geo: bool,
    source: String,
    generated: String,
}

impl Nginx {
    pub fn deny(meta: &Meta) -> Box<dyn Format> {
        Box::new(Nginx { geo: false, source: one_line(&meta.source), generated: format_time(meta.generated) })
    }

    pub fn geo(meta: &Meta) -> Box<dyn Format> {
        Box::new(Nginx { geo: true, source: one_line(&meta.source), generated: format_time(meta.generated) })
    }
}

impl Format for Nginx {
    fn accepts(&self, r: &Record) -> bool {
        r.is_address()
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "# apiary export of {}, generated {}", self.source, self.generated)?;
        if self.geo {
            writeln!(out, "# include in http {{}}; then: if ({GEO_VARIABLE}) {{ return 403; }}")?;
            writeln!(out, "geo {GEO_VARIABLE} {{")?;
            writeln!(out, "    default 0;")?;
        }
        Ok(())
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        if self.geo {
            writeln!(out, "    {} 1;", r.value)
        } else {
            writeln!(out, "deny {};", r.value)
        }
    }

    fn footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.geo {
            writeln!(out, "}}")?;
        }
        Ok(())
    }
}
