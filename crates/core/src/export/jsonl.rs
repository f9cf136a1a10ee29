//! JSON lines: one indicator object per line, native field names (docs/native-api.md).
//! [`Object`] is also what the JSON array format writes.

use std::io::{self, Write};

use serde::Serialize;

use super::{time_text as format_time, Format, Meta, Record};

/// One indicator in native field names.
#[derive(Serialize)]
pub struct Object<'a> {
    pub indicator: &'a str,
    pub itype: &'static str,
    pub feed: &'a str,
    pub firsttime: String,
    pub lasttime: String,
    pub reporttime: String,
    pub count: i64,
    pub tags: &'a [String],
    pub portlist: &'a [u16],
    pub protocol: Option<&'a str>,
    pub description: Option<&'a str>,
    pub tlp: &'a str,
    /// The hub's own confidence: none until indicators are scored.
    pub confidence: Option<f64>,
    pub claimed_confidence: Option<f64>,
    pub held: bool,
}

impl<'a> Object<'a> {
    pub fn of(r: &Record<'a>) -> Object<'a> {
        Object {
            indicator: r.value,
            itype: r.itype.as_str(),
            feed: r.feed,
            firsttime: format_time(r.firsttime),
            lasttime: format_time(r.lasttime),
            reporttime: format_time(r.reporttime),
            count: r.count,
            tags: r.tags,
            portlist: r.ports,
            protocol: r.protocol,
            description: r.description,
            tlp: r.tlp,
            confidence: None,
            claimed_confidence: r.confidence,
            held: r.held,
        }
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer(out, self).map_err(io::Error::from)
    }
}

pub struct JsonLines;

impl JsonLines {
    pub fn boxed(_: &Meta) -> Box<dyn Format> {
        Box::new(JsonLines)
    }
}

impl Format for JsonLines {
    fn accepts(&self, _: &Record) -> bool {
        true
    }

    fn header(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        Object::of(r).write(out)?;
        out.write_all(b"\n")
    }

    fn footer(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
