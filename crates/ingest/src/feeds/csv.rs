//! `csv`: any comma-separated table with the value in one column (`--column NAME|N`).
//!
//! Read with RFC 4180 rules (the `csv` crate): quoted fields may hold commas, quotes (`""`) and
//! newlines; a row's line is where it starts. Before the table, a BOM, `#` comment lines and
//! blank lines are skipped; `#` lines between rows are comments too.
//!
//! The first row is a header when none of its cells is a value the core accepts. The value
//! column is `--column` (a header name, or a 1-based number); without it, the first header
//! named like a value (`indicator`, `ioc`, `value`, `ip`, `domain`, `url`, `hash`, ...), else
//! the first column whose first row holds a value. Columns named like a description, tags,
//! first/last seen, type, port, protocol or TLP fill those fields; every other column is kept
//! under its header name. A row without the value column is rejected with its line.
//!
//! The table reader is shared with [`abusech-csv`](super::abusech_csv), which adds abuse.ch's
//! own column names and its header inside the comment block.

use super::{rejected, skip_bom, Column, Entry, Format, Options, Record};
use apiary_core::{parse, IType, ParseOptions};
use serde_json::Value;
use std::io::{self, BufRead, Read};

pub struct Csv;

impl Format for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn about(&self) -> &'static str {
        "generic CSV (RFC 4180): header detection, `--column NAME|N`, `#` comments"
    }

    fn read(&self, input: &mut dyn BufRead, opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        read_table(input, opts, &GENERIC, out)
    }
}

/// Which header names fill which field (names compared lowercased, spaces and dashes as `_`).
pub(crate) struct Names {
    pub value: &'static [&'static str],
    pub hint: &'static [&'static str],
    pub port: &'static [&'static str],
    pub first_seen: &'static [&'static str],
    pub last_seen: &'static [&'static str],
    pub description: &'static [&'static str],
    /// Cells split on commas into tags.
    pub tags: &'static [&'static str],
    pub protocol: &'static [&'static str],
    pub tlp: &'static [&'static str],
    /// Look for the header in the last comment line before the table (`# id,dateadded,url`).
    pub header_in_comments: bool,
    /// Fields separated by `", "` (ThreatFox): closed up before the table is read.
    pub spaced_separators: bool,
}

pub(crate) static GENERIC: Names = Names {
    value: &[
        "indicator", "ioc", "ioc_value", "value", "observable", "ip", "ip_address", "ipaddress", "address", "addr", "src_ip",
        "dst_ip", "host", "hostname", "domain", "fqdn", "url", "uri", "cidr", "network", "netblock", "hash", "sha256",
        "sha1", "md5", "email",
    ],
    hint: &["itype", "type", "ioc_type", "indicator_type"],
    port: &["port", "dst_port", "dstport"],
    first_seen: &["first_seen", "firstseen", "first_seen_utc", "firsttime", "first_at", "date_added", "dateadded", "added"],
    last_seen: &["last_seen", "lastseen", "last_seen_utc", "lasttime", "last_at", "last_online"],
    description: &["description", "desc", "comment", "comments", "note"],
    tags: &["tags", "tag", "labels", "category", "malware", "threat"],
    protocol: &["protocol", "proto"],
    tlp: &["tlp"],
    header_in_comments: false,
    spaced_separators: false,
};

fn norm(h: &str) -> String {
    h.trim().trim_start_matches('#').trim().to_lowercase().replace([' ', '-'], "_")
}

/// What each column is.
#[derive(Default)]
struct Roles {
    value: Option<usize>,
    hint: Option<usize>,
    port: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
    description: Option<usize>,
    tags: Vec<usize>,
    protocol: Option<usize>,
    tlp: Option<usize>,
    /// Header names (empty without a header).
    header: Vec<String>,
}

impl Roles {
    fn from_header(header: Vec<String>, names: &Names, column: Option<&Column>) -> Result<Roles, String> {
        let normed: Vec<String> = header.iter().map(|h| norm(h)).collect();
        let find = |list: &[&str]| list.iter().find_map(|n| normed.iter().position(|h| h == n));
        let mut r = Roles {
            hint: find(names.hint),
            port: find(names.port),
            first: find(names.first_seen),
            last: find(names.last_seen),
            description: find(names.description),
            protocol: find(names.protocol),
            tlp: find(names.tlp),
            ..Roles::default()
        };
        r.value = match column {
            Some(Column::Number(n)) => Some(n - 1),
            Some(Column::Name(name)) => match normed.iter().position(|h| *h == norm(name)) {
                Some(i) => Some(i),
                None => return Err(format!("no column named `{name}` in the header ({})", header.join(", "))),
            },
            None => find(names.value),
        };
        r.tags = names.tags.iter().filter_map(|n| normed.iter().position(|h| h == n)).collect();
        r.header = header;
        // A column is one thing: the value column is not also read as tags or a description.
        let v = r.value;
        r.tags.retain(|t| Some(*t) != v);
        for slot in [&mut r.hint, &mut r.port, &mut r.first, &mut r.last, &mut r.description, &mut r.protocol, &mut r.tlp] {
            if *slot == v {
                *slot = None;
            }
        }
        Ok(r)
    }

    fn record(&self, line: u64, fields: &[String]) -> Entry {
        let Some(vi) = self.value else {
            return rejected(line, "missing_column", &fields.join(","), "no value column found (give --column)");
        };
        let Some(value) = fields.get(vi) else {
            return rejected(
                line,
                "missing_column",
                &fields.join(","),
                format!("the row has {} field(s), the value column is number {}", fields.len(), vi + 1),
            );
        };
        let mut r = Record::new(line, value.clone());
        let cell = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(h) = cell(self.hint) {
            // Feeds write types their own way (`ip:port`, `md5_hash`); a name the core does not
            // know is kept, and the core detects the type from the value.
            let h2 = h.split([':', '|']).next().unwrap_or(&h).trim_end_matches("_hash").to_owned();
            r.hint = IType::from_name(&h).or_else(|| IType::from_name(&h2));
        }
        r.port = cell(self.port).and_then(|p| p.parse().ok());
        r.first_seen = cell(self.first);
        r.last_seen = cell(self.last);
        r.description = cell(self.description);
        r.protocol = cell(self.protocol);
        r.tlp = cell(self.tlp);
        for &t in &self.tags {
            if let Some(c) = cell(Some(t)) {
                r.tags.extend(c.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s != "None"));
            }
        }
        let used = [Some(vi), self.hint, self.port, self.first, self.last, self.description, self.protocol, self.tlp];
        for (i, f) in fields.iter().enumerate() {
            if used.contains(&Some(i)) || self.tags.contains(&i) || f.is_empty() {
                continue;
            }
            let name = self.header.get(i).map(|h| norm(h)).filter(|h| !h.is_empty()).unwrap_or_else(|| format!("column_{}", i + 1));
            r.extra.insert(name, Value::String(f.clone()));
        }
        Entry::Record(r)
    }
}

/// Reads lines, closing up `", "` to `","`. ThreatFox separates its quoted fields with a comma
/// and a space; by RFC 4180 a field that starts with a space is not quoted, so its quotes would
/// stay in the cell and a comma inside it (`"c2,CobaltStrike"`) would split it.
struct ClosedUp<'a> {
    inner: &'a mut dyn BufRead,
    line: Vec<u8>,
    pos: usize,
}

impl Read for ClosedUp<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.line.len() {
            self.line.clear();
            self.pos = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            if self.line.windows(4).any(|w| w == b"\", \"") {
                let mut closed = Vec::with_capacity(self.line.len());
                let mut i = 0;
                while i < self.line.len() {
                    if self.line[i..].starts_with(b"\", \"") {
                        closed.extend_from_slice(b"\",\"");
                        i += 4;
                    } else {
                        closed.push(self.line[i]);
                        i += 1;
                    }
                }
                self.line = closed;
            }
        }
        let n = out.len().min(self.line.len() - self.pos);
        out[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read a table: leading comments, header detection, rows.
pub(crate) fn read_table(input: &mut dyn BufRead, opts: &Options, names: &Names, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
    skip_bom(input)?;
    // The comment block before the table, read line by line (no quoting can be open there).
    let mut lead = 0u64;
    let mut last_comment: Option<String> = None;
    loop {
        let buf = input.fill_buf()?;
        let Some(&first) = buf.iter().find(|b| !matches!(b, b' ' | b'\t')) else { break };
        if first != b'#' && first != b'\n' && first != b'\r' {
            break;
        }
        let mut line = Vec::new();
        input.read_until(b'\n', &mut line)?;
        lead += 1;
        let text = String::from_utf8_lossy(&line).trim().to_owned();
        if text.is_empty() {
            out(Entry::Blank);
        } else {
            out(Entry::Comment);
            last_comment = Some(text);
        }
    }
    let source: Box<dyn Read + '_> =
        if names.spaced_separators { Box::new(ClosedUp { inner: input, line: Vec::new(), pos: 0 }) } else { Box::new(input) };
    let mut rdr = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).comment(Some(b'#')).from_reader(source);
    let mut roles: Option<Roles> = None;
    let column = opts.column.as_ref();
    if names.header_in_comments {
        // abuse.ch puts the header in the comment block: `# id,dateadded,url,...`.
        if let Some(c) = last_comment.filter(|c| c.contains(',')) {
            let header: Vec<String> = c.trim_start_matches('#').split(',').map(|h| h.trim().trim_matches('"').trim().to_owned()).collect();
            let candidate = Roles::from_header(header, names, column).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            if candidate.value.is_some() {
                roles = Some(candidate);
            }
        }
    }
    let mut rec = ::csv::ByteRecord::new();
    let parse_opts = ParseOptions::default();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => match e.kind() {
                ::csv::ErrorKind::Io(_) => {
                    return Err(match e.into_kind() {
                        ::csv::ErrorKind::Io(io) => io,
                        _ => unreachable!("matched an I/O error"),
                    })
                }
                _ => {
                    let line = e.position().map_or(0, |p| p.line() + lead);
                    out(rejected(line, "bad_row", "", format!("unreadable CSV row: {e}")));
                    continue;
                }
            },
        }
        let line = rec.position().map_or(0, |p| p.line() + lead);
        let fields: Vec<String> = rec.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        if fields.iter().all(|f| f.trim().is_empty()) {
            out(Entry::Blank);
            continue;
        }
        let Some(r) = &roles else {
            // The first row: a header unless one of its cells is a value.
            let is_data = fields.iter().any(|f| parse(f, None, &parse_opts).is_ok());
            if is_data {
                let value = match column {
                    Some(Column::Name(n)) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("--column {n}: the table has no header row (give a column number)"),
                        ))
                    }
                    Some(Column::Number(n)) => Some(n - 1),
                    None => fields.iter().position(|f| parse(f, None, &parse_opts).is_ok()),
                };
                let r = Roles { value, ..Roles::default() };
                out(r.record(line, &fields));
                roles = Some(r);
            } else {
                // Without a column named like a value, the next row picks it (below).
                let r = Roles::from_header(fields, names, column).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                out(Entry::Header);
                roles = Some(r);
            }
            continue;
        };
        if r.value.is_none() && !r.header.is_empty() {
            let found = fields.iter().position(|f| parse(f, None, &parse_opts).is_ok());
            let header = r.header.clone();
            let mut nr = Roles::from_header(header, names, found.map(|i| Column::Number(i + 1)).as_ref())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            if found.is_none() {
                nr.value = None;
            }
            out(nr.record(line, &fields));
            if nr.value.is_some() {
                roles = Some(nr);
            }
            continue;
        }
        out(r.record(line, &fields));
    }
    Ok(())
}
