//! JSON: one array of indicator objects (the same objects as [JSON lines](super::jsonl)),
//! written as it streams: `[`, objects separated by `,\n`, `]`.

use std::io::{self, Write};

use super::jsonl::Object;
use super::{Format, Meta, Record};

pub struct Json {
    first: bool,
}

impl Json {
    pub fn boxed(_: &Meta) -> Box<dyn Format> {
        Box::new(Json { first: true })
    }
}

impl Format for Json {
    fn accepts(&self, _: &Record) -> bool {
        true
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"[")
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        Object::of(r).write(out)
    }

    fn footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(b"\n]\n")
    }
}
