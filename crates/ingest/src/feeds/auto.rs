//! `auto`: pick the format from the content (the first 64 KiB).
//!
//! JSON documents: a `bundle` with `objects` is STIX; an event with `Attribute`/`Object` (or
//! an `Event` wrapper) is MISP. JSON lines: `cidr` + `sblid` is Spamhaus DROP JSON, anything
//! else native JSON lines. Text: `CIDR ; SBL...` lines are Spamhaus DROP; an abuse.ch comment
//! block or abuse.ch column names is abuse.ch CSV; an `ipset`/FireHOL header is a netset; rows
//! of comma-separated fields are CSV; anything else is a plain list.

use super::{Entry, Format, Options};
use std::io::{self, BufRead, Read};

pub struct Auto;

impl Format for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn about(&self) -> &'static str {
        "detect the format from the content"
    }

    fn read(&self, input: &mut dyn BufRead, opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        read_detected(input, opts, out).map(|_| ())
    }
}

/// How much of the input detection looks at.
const PEEK: u64 = 64 * 1024;

/// Read the first 64 KiB (however many reads a pipe needs for it), detect the format from
/// them, and read the whole input with it. Returns the format used.
pub fn read_detected(input: &mut dyn BufRead, opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<&'static dyn Format> {
    let mut head = Vec::with_capacity(PEEK as usize);
    input.take(PEEK).read_to_end(&mut head)?;
    let format = detect_text(&String::from_utf8_lossy(&head));
    let mut whole = io::BufReader::with_capacity(1 << 16, io::Cursor::new(head).chain(input));
    format.read(&mut whole, opts, out)?;
    Ok(format)
}

/// The format a text most likely is.
pub fn detect_text(head: &str) -> &'static dyn Format {
    let head = head.trim_start_matches('\u{feff}');
    let trimmed = head.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let first_line = trimmed.lines().next().unwrap_or("").trim();
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(first_line) {
            // A whole object on the first line: JSON lines, or a minified document.
            if o.get("type").and_then(|t| t.as_str()) == Some("bundle") || o.contains_key("objects") {
                return &super::stix::Stix;
            }
            if ["Event", "Attribute", "Object", "response"].iter().any(|k| o.contains_key(*k)) {
                return &super::misp::Misp;
            }
            if o.contains_key("cidr") && o.contains_key("sblid") {
                return &super::spamhaus_drop_json::SpamhausDropJson;
            }
            return &super::jsonl::Jsonl;
        }
        if trimmed.contains("\"Attribute\"") || trimmed.contains("\"Event\"") || trimmed.contains("\"Object\"") {
            return &super::misp::Misp;
        }
        if trimmed.contains("\"pattern\"") || trimmed.contains("\"bundle\"") || trimmed.contains("\"spec_version\"") {
            return &super::stix::Stix;
        }
        return &super::jsonl::Jsonl;
    }
    let lower = head.to_ascii_lowercase();
    let comments: Vec<&str> = head.lines().map(str::trim).filter(|l| l.starts_with('#') || l.starts_with(';')).collect();
    let data: Vec<&str> =
        head.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';')).take(50).collect();
    if !data.is_empty() && data.iter().filter(|l| is_drop_line(l)).count() * 2 > data.len() {
        return &super::spamhaus_drop::SpamhausDrop;
    }
    let abusech_columns = ["dst_ip", "urlhaus_link", "first_seen_utc", "ioc_value", "sha256_hash", "dateadded"];
    // The header is the first row, or (URLhaus, ThreatFox dumps) the last comment line.
    let headers = [data.first(), comments.last()].map(|l| l.map(|l| l.to_ascii_lowercase()).unwrap_or_default());
    let abusech_header = headers.iter().any(|h| h.contains(',') && abusech_columns.iter().any(|c| h.contains(c)));
    if lower.contains("abuse.ch") || abusech_header {
        return &super::abusech_csv::AbuseChCsv;
    }
    if comments.iter().any(|c| c.contains("hash:net") || c.contains("hash:ip") || c.to_ascii_lowercase().contains("firehol")) {
        return &super::netset::Netset;
    }
    let commas = data.iter().filter(|l| l.contains(',')).count();
    if !data.is_empty() && commas * 2 > data.len() {
        return &super::csv::Csv;
    }
    &super::text::Text
}

/// `1.10.16.0/20 ; SBL256894`
fn is_drop_line(l: &str) -> bool {
    l.split_once(';').is_some_and(|(_, b)| b.trim().starts_with("SBL"))
}
