//! `spamhaus-drop`: Spamhaus DROP/EDROP/DROPv6 text (`drop.txt`): `CIDR ; SBLnnn` per line
//! under `;` comment lines.
//!
//! The SBL record id is kept (`extra.sblid`) and is the description. A line without the
//! `; SBL...` part is still read (some mirrors strip it); a line whose first field holds more
//! than one word is rejected.

use super::{each_line, rejected, Entry, Format, Options, Record};
use serde_json::Value;
use std::io::{self, BufRead};

pub struct SpamhausDrop;

impl Format for SpamhausDrop {
    fn name(&self) -> &'static str {
        "spamhaus-drop"
    }

    fn about(&self) -> &'static str {
        "Spamhaus DROP/EDROP text: `CIDR ; SBLnnn`, `;` comments"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        each_line(input, &mut |n, line| {
            let t = line.trim();
            if t.is_empty() {
                return out(Entry::Blank);
            }
            if t.starts_with(';') || t.starts_with('#') {
                return out(Entry::Comment);
            }
            let (cidr, sbl) = match t.split_once(';') {
                Some((c, s)) => (c.trim(), s.trim()),
                None => (t, ""),
            };
            if cidr.is_empty() || cidr.contains(char::is_whitespace) {
                return out(rejected(n, "bad_row", t, "expected `CIDR ; SBLnnn`"));
            }
            let mut r = Record::new(n, cidr);
            if !sbl.is_empty() {
                r.description = Some(sbl.to_owned());
                r.extra.insert("sblid".into(), Value::String(sbl.to_owned()));
            }
            out(Entry::Record(r))
        })
    }
}
