//! CSV for spreadsheets and SIEMs, RFC 4180: a header row, CRLF line ends, and fields holding
//! a comma, a double quote, CR or LF enclosed in double quotes (inner quotes doubled).
//! Lists (tags, ports) are one field, joined with `|`.

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

/// Write one field, quoted only when RFC 4180 needs it.
pub fn field(out: &mut dyn Write, s: &str) -> io::Result<()> {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
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
    } else {
        out.write_all(s.as_bytes())
    }
}

impl Format for Csv {
    fn accepts(&self, _: &Record) -> bool {
        true
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(COLUMNS.join(",").as_bytes())?;
        out.write_all(b"\r\n")
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        let ports: Vec<String> = r.ports.iter().map(u16::to_string).collect();
        let confidence = r.confidence.map(|c| c.to_string()).unwrap_or_default();
        let fields: [&str; 14] = [
            r.value,
            r.itype.as_str(),
            r.feed,
            &format_time(r.firsttime),
            &format_time(r.lasttime),
            &format_time(r.reporttime),
            &r.count.to_string(),
            &r.tags.join("|"),
            &ports.join("|"),
            r.protocol.unwrap_or(""),
            r.description.unwrap_or(""),
            r.tlp,
            &confidence,
            if r.held { "true" } else { "false" },
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            field(out, f)?;
        }
        out.write_all(b"\r\n")
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
