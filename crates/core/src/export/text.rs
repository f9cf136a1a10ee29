//! Plain text: one value per line under a `#` comment header (source, time, filter).
//! What every firewall script, `grep` and spreadsheet can read.

use std::io::{self, Write};

use super::{one_line, Format, Meta, Record};
use crate::format_time;

pub struct Text {
    meta: Meta,
}

impl Text {
    pub fn boxed(meta: &Meta) -> Box<dyn Format> {
        Box::new(Text { meta: meta.clone() })
    }
}

impl Format for Text {
    fn accepts(&self, _: &Record) -> bool {
        true
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "# apiary export of {}", one_line(&self.meta.source))?;
        writeln!(out, "# generated {}", format_time(self.meta.generated))?;
        if !self.meta.filter.is_empty() {
            writeln!(out, "# filter: {}", one_line(&self.meta.filter))?;
        }
        Ok(())
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(r.value.as_bytes())?;
        out.write_all(b"\n")
    }

    fn footer(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
