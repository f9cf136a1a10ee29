//! `csv`: any comma-separated table with the value in one column (`--column NAME|N`).
//!
//! Read with RFC 4180 rules: quoted fields may hold commas, quotes (`""`) and newlines; a row's
//! line is where it starts. A quoted field still open at the end of the input, or after 100
//! lines or 64 KiB, is `unterminated_quote` at its first line, and the lines after that one are
//! read as rows again (a stray quote costs one row, not the rest of the file). Before the table, a BOM, `#` comment lines and
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
use crate::lines::{AtEof, LineReader};
use std::collections::VecDeque;
use std::io::{self, BufRead};

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

/// A quoted field may span lines, but one that is still open after this many lines or bytes
/// is an unterminated quote: reported at the line it starts on, and reading resumes at the
/// next line (otherwise one stray quote swallows the rest of the file into a description).
const MAX_ROW_LINES: usize = 100;
const MAX_ROW_BYTES: usize = 64 * 1024;

/// Where the field splitter is within a row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the end of the quote, or the first half of `""`.
    QuoteInQuoted,
}

/// RFC 4180 field splitting, fed one physical line at a time.
struct Row {
    fields: Vec<Vec<u8>>,
    cur: Vec<u8>,
    state: State,
    /// The physical lines the row has taken so far, with their endings (kept to re-read them if
    /// the quote never ends).
    lines: Vec<(u64, Vec<u8>, Vec<u8>)>,
    bytes: usize,
}

impl Row {
    fn new() -> Row {
        Row { fields: Vec::new(), cur: Vec::new(), state: State::Start, lines: Vec::new(), bytes: 0 }
    }

    fn clear(&mut self) {
        self.fields.clear();
        self.cur.clear();
        self.state = State::Start;
        self.lines.clear();
        self.bytes = 0;
    }

    /// Add one line; true when the row is complete (no quoted field left open).
    fn push(&mut self, number: u64, line: &[u8], ending: &[u8]) -> bool {
        if let Some((_, _, before)) = self.lines.last() {
            // The line break inside a quoted field is part of its value, as written.
            self.cur.extend_from_slice(before);
        }
        self.lines.push((number, line.to_vec(), ending.to_vec()));
        self.bytes += line.len() + 1;
        for &b in line {
            self.state = match (self.state, b) {
                (State::Start, b'"') => State::Quoted,
                (State::Start | State::Unquoted | State::QuoteInQuoted, b',') => {
                    self.fields.push(std::mem::take(&mut self.cur));
                    State::Start
                }
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::QuoteInQuoted, b'"') => {
                    self.cur.push(b'"');
                    State::Quoted
                }
                (State::Quoted, b) => {
                    self.cur.push(b);
                    State::Quoted
                }
                // Text after a closing quote, or a quote inside an unquoted field: kept as written.
                (_, b) => {
                    self.cur.push(b);
                    State::Unquoted
                }
            };
        }
        if self.state == State::Quoted {
            return false;
        }
        self.fields.push(std::mem::take(&mut self.cur));
        true
    }

    fn too_long(&self) -> bool {
        self.lines.len() > MAX_ROW_LINES || self.bytes > MAX_ROW_BYTES
    }
}

/// Close up `", "` to `","`. ThreatFox separates its quoted fields with a comma and a space;
/// by RFC 4180 a field that starts with a space is not quoted, so its quotes would stay in the
/// cell and a comma inside it (`"c2,CobaltStrike"`) would split it.
fn close_up(line: &[u8]) -> Vec<u8> {
    let mut closed = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(b"\", \"") {
            closed.extend_from_slice(b"\",\"");
            i += 4;
        } else {
            closed.push(line[i]);
            i += 1;
        }
    }
    closed
}

/// Read a table: leading comments, header detection, rows.
pub(crate) fn read_table(input: &mut dyn BufRead, opts: &Options, names: &Names, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
    skip_bom(input)?;
    let mut reader = LineReader::new(input, AtEof::Yield);
    // Lines to read again before the reader's next (those after an unterminated quote's start).
    let mut replay: VecDeque<(u64, Vec<u8>, Vec<u8>)> = VecDeque::new();
    let mut row = Row::new();
    let mut table = Table { roles: None, last_comment: None, column: opts.column.as_ref(), names, parse_opts: ParseOptions::default() };
    loop {
        let (number, line, ending) = match replay.pop_front() {
            Some(l) => l,
            None => match reader.next_line()? {
                Some(l) if names.spaced_separators => (l.number, close_up(l.bytes), l.ending.to_vec()),
                Some(l) => (l.number, l.bytes.to_vec(), l.ending.to_vec()),
                // The end, inside a quoted field: the lines after its start are rows again.
                None if !row.lines.is_empty() => {
                    unterminated(&mut row, &mut replay, out);
                    continue;
                }
                None => break,
            },
        };
        if row.lines.is_empty() {
            // Between rows: blank lines and `#` comments (the last one before the table may be
            // abuse.ch's header).
            let t = String::from_utf8_lossy(&line);
            let t = t.trim();
            if t.is_empty() {
                out(Entry::Blank);
                continue;
            }
            if t.starts_with('#') {
                out(Entry::Comment);
                if table.roles.is_none() {
                    table.last_comment = Some(t.to_owned());
                }
                continue;
            }
        }
        if row.push(number, &line, &ending) {
            let start = row.lines[0].0;
            let fields: Vec<String> = row.fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            row.clear();
            table.row(start, fields, out)?;
        } else if row.too_long() {
            unterminated(&mut row, &mut replay, out);
        }
    }
    Ok(())
}

/// Report the open row's first line as an unterminated quote and queue its other lines to be
/// read again as rows.
fn unterminated(row: &mut Row, replay: &mut VecDeque<(u64, Vec<u8>, Vec<u8>)>, out: &mut dyn FnMut(Entry)) {
    let mut lines = std::mem::take(&mut row.lines);
    row.clear();
    let (start, first, _) = lines.remove(0);
    for l in lines.into_iter().rev() {
        replay.push_front(l);
    }
    out(rejected(
        start,
        "unterminated_quote",
        &String::from_utf8_lossy(&first),
        format!(
            "a quoted field opened on this line is not closed (by the end of the input, or within {MAX_ROW_LINES} lines / {} KiB); reading goes on at the next line",
            MAX_ROW_BYTES / 1024
        ),
    ));
}

/// Header detection and rows, once the rows are split.
struct Table<'a> {
    roles: Option<Roles>,
    last_comment: Option<String>,
    column: Option<&'a Column>,
    names: &'a Names,
    parse_opts: ParseOptions,
}

impl Table<'_> {
    fn row(&mut self, line: u64, fields: Vec<String>, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        let (names, column, parse_opts) = (self.names, self.column, &self.parse_opts);
        if self.roles.is_none() && names.header_in_comments {
            // abuse.ch puts the header in the comment block: `# id,dateadded,url,...`.
            if let Some(c) = self.last_comment.take().filter(|c| c.contains(',')) {
                let header: Vec<String> =
                    c.trim_start_matches('#').split(',').map(|h| h.trim().trim_matches('"').trim().to_owned()).collect();
                let candidate = Roles::from_header(header, names, column).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                if candidate.value.is_some() {
                    self.roles = Some(candidate);
                }
            }
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            out(Entry::Blank);
            return Ok(());
        }
        let Some(r) = &self.roles else {
            // The first row: a header unless one of its cells is a value.
            let is_data = fields.iter().any(|f| parse(f, None, parse_opts).is_ok());
            if is_data {
                let value = match column {
                    Some(Column::Name(n)) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("--column {n}: the table has no header row (give a column number)"),
                        ))
                    }
                    Some(Column::Number(n)) => Some(n - 1),
                    None => fields.iter().position(|f| parse(f, None, parse_opts).is_ok()),
                };
                let r = Roles { value, ..Roles::default() };
                out(r.record(line, &fields));
                self.roles = Some(r);
            } else {
                // Without a column named like a value, the next row picks it (below).
                let r = Roles::from_header(fields, names, column).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                out(Entry::Header);
                self.roles = Some(r);
            }
            return Ok(());
        };
        if r.value.is_none() && !r.header.is_empty() {
            let found = fields.iter().position(|f| parse(f, None, parse_opts).is_ok());
            let header = r.header.clone();
            let mut nr = Roles::from_header(header, names, found.map(|i| Column::Number(i + 1)).as_ref())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            if found.is_none() {
                nr.value = None;
            }
            out(nr.record(line, &fields));
            if nr.value.is_some() {
                self.roles = Some(nr);
            }
            return Ok(());
        }
        out(r.record(line, &fields));
        Ok(())
    }
}
