//! CSV for spreadsheets and SIEMs, RFC 4180: a header row, CRLF line ends, and fields holding
//! a comma, a double quote, CR or LF enclosed in double quotes (inner quotes doubled).
//! Lists (tags, ports) are one field, joined with `|`. Other control characters (NUL, ESC, DEL,
//! C1) are left out and their field quoted, so no reporter's text reaches a terminal or a SIEM raw.

use std::io::{self, Write};

use super::{time_text as format_time, Format, Meta, Record};

/// The header row, in the native field names.
pub const COLUMNS: &[&str] = &[
    "indicator", "itype", "feed", "firsttime", "lasttime", "reporttime", "count", "tags", "portlist", "protocol",
    "description", "tlp", "claimed_confidence", "held",
];

pub struct Csv;

impl Csv {
    pub fn boxed(_: &Meta) -> Box<dyn Format> {
        Box::new(Csv)
    }
}

/// A control character other than the tab and line breaks RFC 4180 carries inside quotes.
fn stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

/// Whether a field must be quoted: RFC 4180's characters, or control characters left out of it.
fn needs_quotes(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) || s.chars().any(stray_control)
}

/// Write one field, quoted only when RFC 4180 needs it (or a control character was left out).
pub fn field(out: &mut dyn Write, s: &str) -> io::Result<()> {
    if s.chars().any(stray_control) {
        let kept: String = s.chars().filter(|&c| !stray_control(c)).collect();
        return quoted(out, &kept);
    }
    if needs_quotes(s) {
        quoted(out, s)
    } else {
        out.write_all(s.as_bytes())
    }
}

/// `s` in double quotes, inner quotes doubled.
fn quoted(out: &mut dyn Write, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    let mut parts = s.split('"');
    if let Some(first) = parts.next() {
        out.write_all(first.as_bytes())?;
    }
    for p in parts {
        out.write_all(b"\"\"")?;
        out.write_all(p.as_bytes())?;
    }
    out.write_all(b"\"")
}

/// A list as one field, joined with `|` (quoted as a whole when an item needs it).
fn list<'a>(out: &mut dyn Write, items: impl Iterator<Item = &'a str> + Clone) -> io::Result<()> {
    if items.clone().any(needs_quotes) {
        return field(out, &items.collect::<Vec<_>>().join("|"));
    }
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.write_all(b"|")?;
        }
        out.write_all(s.as_bytes())?;
    }
    Ok(())
}

impl Format for Csv {
    fn accepts(&self, _: &Record) -> bool {
        true
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(COLUMNS.join(",").as_bytes())?;
        out.write_all(b"\r\n")
    }

    /// One row, written field by field without building the fields first: a million rows are
    /// a million fewer rounds of allocations (times, numbers and lists need no quoting).
    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        field(out, r.value)?;
        out.write_all(b",")?;
        out.write_all(r.itype.as_str().as_bytes())?;
        out.write_all(b",")?;
        field(out, r.feed)?;
        for t in [r.firsttime, r.lasttime, r.reporttime] {
            out.write_all(b",")?;
            out.write_all(format_time(t).as_bytes())?;
        }
        write!(out, ",{},", r.count)?;
        list(out, r.tags.iter().map(String::as_str))?;
        out.write_all(b",")?;
        for (i, p) in r.ports.iter().enumerate() {
            write!(out, "{}{p}", if i > 0 { "|" } else { "" })?;
        }
        out.write_all(b",")?;
        field(out, r.protocol.unwrap_or(""))?;
        out.write_all(b",")?;
        field(out, r.description.unwrap_or(""))?;
        out.write_all(b",")?;
        field(out, r.tlp)?;
        out.write_all(b",")?;
        if let Some(c) = r.confidence {
            write!(out, "{c}")?;
        }
        out.write_all(if r.held { b",true\r\n" } else { b",false\r\n" })
    }

    fn footer(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn rfc4180_quoting() {
        for (input, want) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\rhere", "\"cr\rhere\""),
            ("", ""),
        ] {
            let mut out = Vec::new();
            field(&mut out, input).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{input:?}");
        }
    }
}
