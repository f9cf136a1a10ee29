//! Feed files: the blocklist and threat-intel formats people publish, read into [`Report`]s.
//!
//! Two layers, as in the rest of this crate:
//!
//! 1. A [`Format`] reads bytes and hands out [`Entry`]s: a [`Record`] (the raw value as written,
//!    a type hint, tags, description, times and everything else the row said), a rejected row
//!    with its line number and reason, or a note that a line was a comment, blank, a header or
//!    a metadata record. A format never understands a value: it only finds it.
//! 2. [`FeedReader`] gives every record's value to [`apiary_core::parse`] (the one parser),
//!    turns what the core accepts into a [`Report`], counts what it refuses, and classifies each
//!    distinct value against the allowlist (the exclude and hold rules) so that the summary can
//!    say what an export of the feed will leave out.
//!
//! One file per format; [`FORMATS`] lists them with their names (`--format NAME`), and
//! [`auto`] picks one from the content. Nothing in a file stops the reader: a bad row is a
//! rejection, and the next row is read.

pub mod abusech_csv;
pub mod auto;
pub mod csv;
pub mod jsonl;
pub mod misp;
pub mod netset;
pub mod spamhaus_drop;
pub mod spamhaus_drop_json;
pub mod stix;
pub mod text;

#[cfg(test)]
mod tests;

use crate::lines::{decode_lossy, AtEof, LineReader};
use crate::report::{idempotency_key, Report};
use apiary_core::{parse, parse_time, Allowlist, IType, ListUse, ParseOptions, RejectCode};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read};

/// One feed file format.
pub trait Format: Sync {
    /// The name used on the command line (`--format NAME`).
    fn name(&self) -> &'static str;
    /// One line for `--help` and the docs.
    fn about(&self) -> &'static str;
    /// Read the whole input, handing every entry to `out`. An `Err` is an I/O failure only:
    /// content problems are [`Entry::Rejected`], and reading goes on.
    fn read(&self, input: &mut dyn BufRead, opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()>;
}

/// Every format, in the order `--help` lists them. `auto` is first: it detects one of the others.
pub static FORMATS: &[&dyn Format] = &[
    &auto::Auto,
    &text::Text,
    &netset::Netset,
    &spamhaus_drop::SpamhausDrop,
    &spamhaus_drop_json::SpamhausDropJson,
    &abusech_csv::AbuseChCsv,
    &csv::Csv,
    &jsonl::Jsonl,
    &stix::Stix,
    &misp::Misp,
];

/// The format called `name`.
pub fn format(name: &str) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|f| f.name() == name)
}

/// The names of every format, for messages.
pub fn format_names() -> Vec<&'static str> {
    FORMATS.iter().map(|f| f.name()).collect()
}

/// Which column holds the value (CSV formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A header name, matched without regard to case or surrounding spaces.
    Name(String),
    /// A 1-based column number (as `cut -f` counts).
    Number(usize),
}

impl Column {
    /// `3` is a column number, anything else a header name.
    pub fn from_arg(s: &str) -> Result<Column, String> {
        match s.trim().parse::<usize>() {
            Ok(0) => Err("column numbers start at 1".into()),
            Ok(n) => Ok(Column::Number(n)),
            Err(_) if s.trim().is_empty() => Err("empty column name".into()),
            Err(_) => Ok(Column::Name(s.trim().to_owned())),
        }
    }
}

/// Options a format may use.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The value column (`csv`; also accepted by `abusech-csv`).
    pub column: Option<Column>,
}

/// One value as a feed wrote it, with what the row said about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// 1-based line where the row (or object) starts; 0 when the format has no lines to point at.
    pub line: u64,
    /// The value exactly as written (quotes already removed by the format's own syntax).
    pub value: String,
    /// What the feed says the value is (the core checks it, never trusts it).
    pub hint: Option<IType>,
    /// A port given beside the value (Feodo's `dst_port`, MISP's `ip-dst|port`).
    pub port: Option<u16>,
    pub tags: Vec<String>,
    pub description: Option<String>,
    /// First and last seen as written; [`FeedReader`] reads them with [`apiary_core::parse_time`].
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// `tcp`, `udp`, ... when the feed says.
    pub protocol: Option<String>,
    /// A TLP label the feed gave the value (`clear`, `green`, `amber`, `red`).
    pub tlp: Option<String>,
    /// Everything else worth keeping, by the feed's own field names.
    pub extra: Map<String, Value>,
}

impl Record {
    /// A record with just a value, at a line.
    pub fn new(line: u64, value: impl Into<String>) -> Record {
        Record { line, value: value.into(), ..Record::default() }
    }
}

/// What a format hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Record(Record),
    /// A row that could not be read; `code` is a short snake_case reason.
    Rejected { line: u64, code: &'static str, input: String, message: String },
    /// A well-formed item that is not an indicator to import (a MISP `text` attribute, an
    /// attribute not meant for detection, a STIX comparison on a property that names no value).
    Skipped { line: u64, reason: String },
    Comment,
    Blank,
    /// A CSV header row.
    Header,
    /// A record about the file itself (Spamhaus's trailing metadata line), with a note.
    Metadata { line: u64, note: String },
}

/// A rejection helper for the formats.
pub(crate) fn rejected(line: u64, code: &'static str, input: &str, message: impl Into<String>) -> Entry {
    Entry::Rejected { line, code, input: shorten(input), message: message.into() }
}

/// At most 200 characters of an input, for messages.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= 200 {
        s.to_owned()
    } else {
        let head: String = s.chars().take(200).collect();
        format!("{head}…")
    }
}

/// Skip a UTF-8 byte order mark at the start of the input.
pub(crate) fn skip_bom(input: &mut dyn BufRead) -> io::Result<()> {
    let buf = input.fill_buf()?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    Ok(())
}

/// Hand every line of the input (without a BOM, without its line ending, invalid UTF-8
/// replaced) to `f` with its 1-based number.
pub(crate) fn each_line(input: &mut dyn BufRead, f: &mut dyn FnMut(u64, &str)) -> io::Result<()> {
    skip_bom(input)?;
    let mut lines = LineReader::new(input, AtEof::Yield);
    while let Some(l) = lines.next_line()? {
        let (text, _) = decode_lossy(l.bytes);
        f(l.number, &text);
    }
    Ok(())
}

/// Finds where things are in a JSON document, for line numbers in messages. Objects are
/// looked up in document order, so each search starts where the last one ended.
pub(crate) struct Locator<'a> {
    doc: &'a str,
    offset: usize,
    line: u64,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(doc: &'a str) -> Locator<'a> {
        Locator { doc, offset: 0, line: 1 }
    }

    /// The line of the next occurrence of `needle` (a quoted id, say); 0 when it is not found.
    pub(crate) fn line_of(&mut self, needle: &str) -> u64 {
        if needle.is_empty() {
            return 0;
        }
        let at = match self.doc[self.offset..].find(needle) {
            Some(i) => self.offset + i,
            None => match self.doc.find(needle) {
                // Out of order: count from the start.
                Some(i) => {
                    self.offset = 0;
                    self.line = 1;
                    i
                }
                None => return 0,
            },
        };
        self.line += self.doc.as_bytes()[self.offset..at].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = at;
        self.line
    }
}

/// Read a whole document (JSON formats), without a BOM, decoding invalid UTF-8 lossily.
pub(crate) fn read_document(input: &mut dyn BufRead) -> io::Result<String> {
    skip_bom(input)?;
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Text of a JSON scalar (strings as they are, numbers and booleans as written).
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Hex SHA-256 of a downloaded feed, to tell a changed file from the same one served again.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// How [`FeedReader`] reads.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Limits and policy for the core parser (the minimum prefix lengths among them).
    pub parse: ParseOptions,
    /// The allowlist whose exclude and hold rules the summary counts against.
    pub allowlist: Allowlist,
    /// How many problems to keep with their details (all are counted).
    pub max_problems: usize,
    /// Format options (the CSV column).
    pub format: Options,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { parse: ParseOptions::default(), allowlist: Allowlist::builtin(), max_problems: 100, format: Options::default() }
    }
}

/// One rejected row or refused value, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based line (0 when the format gives no line).
    pub line: u64,
    /// A short reason code: a core rejection code (`invalid_address`, `prefix_too_short`, ...)
    /// or a format's (`not_json`, `missing_column`, ...).
    pub code: String,
    /// The value or row as written (at most 200 characters).
    pub input: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {} of {}: {} ({})", self.line, self.file, self.message, self.code)
        } else {
            write!(f, "{}: {} ({})", self.file, self.message, self.code)
        }
    }
}

/// What a [`FeedReader`] read, kept over every file it was given.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadStats {
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub comment_lines: u64,
    pub blank_lines: u64,
    pub header_rows: u64,
    pub metadata_records: u64,
    /// Values read from the files: records found plus rows rejected.
    pub read: u64,
    /// Values the core accepted (each became a report).
    pub accepted: u64,
    /// Distinct values among them.
    pub distinct: u64,
    /// Rows rejected and values the core refused, in total and by reason code.
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Refused for a prefix shorter than the minimum (`/0`, `224.0.0.0/3`): also in `rejected`.
    pub min_prefix: u64,
    /// Items read but not meant to be imported, in total and by reason.
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Distinct accepted values an exclude rule (special-use ranges, resolvers, special names,
    /// or a list of the allowlist) matches, or that overlap an excluded range: stored, never exported.
    pub excluded: u64,
    pub excluded_by_list: BTreeMap<String, u64>,
    /// Distinct accepted values a hold rule matches (and no exclude rule): stored, flagged, kept
    /// out of blocklists until a trusted source confirms.
    pub held: u64,
    pub held_by_list: BTreeMap<String, u64>,
    /// Distinct values an export of the feed lists: `distinct - excluded - held`.
    pub exportable: u64,
    /// Times that could not be read (the value was imported without them).
    pub bad_times: u64,
    /// Descriptions longer than `apiary_core::limits::MAX_DESCRIPTION` characters, imported cut
    /// to that length.
    pub descriptions_truncated: u64,
    /// Notes about the files (a metadata record's count checked against what was read).
    pub notes: Vec<String>,
    /// The first problems, in reading order (at most `ReadOptions::max_problems`).
    pub problems: Vec<Problem>,
}

/// How a distinct value was classified against the allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Export,
    Exclude,
    Hold,
}

/// Reads feed files with any [`Format`] and turns their records into [`Report`]s.
pub struct FeedReader {
    opts: ReadOptions,
    stats: ReadStats,
    /// Distinct values seen so far (itype, value) with their verdict.
    seen: HashMap<(IType, String), Verdict>,
    /// When the reading started: reported times more than a day after it are refused.
    now: chrono::DateTime<chrono::Utc>,
    /// The file being read, shared by its reports' `source`.
    file: Option<std::sync::Arc<str>>,
}

impl FeedReader {
    pub fn new(opts: ReadOptions) -> FeedReader {
        FeedReader { opts, stats: ReadStats::default(), seen: HashMap::new(), now: chrono::Utc::now(), file: None }
    }

    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    pub fn into_stats(self) -> ReadStats {
        self.stats
    }

    /// Read one input (a file, standard input, a download) named `file` in messages, handing
    /// each report to `emit`. Returns the format actually used (for `auto`, the one detected).
    pub fn read(&mut self, format: &dyn Format, file: &str, input: impl Read, emit: &mut dyn FnMut(Report)) -> io::Result<&'static str> {
        let mut counting = BufReader::with_capacity(1 << 16, Counting { inner: input, bytes: 0, newlines: 0, last: None });
        let opts = self.opts.format.clone();
        let resolved = if format.name() == auto::Auto.name() {
            auto::read_detected(&mut counting, &opts, &mut |e| self.entry(file, e, emit))?
        } else {
            format.read(&mut counting, &opts, &mut |e| self.entry(file, e, emit))?;
            format
        };
        let c = counting.into_inner();
        self.stats.files += 1;
        self.stats.bytes += c.bytes;
        self.stats.lines += c.newlines + u64::from(c.last.is_some_and(|b| b != b'\n'));
        self.stats.exportable = self.seen.values().filter(|v| **v == Verdict::Export).count() as u64;
        Ok(resolved.name())
    }

    fn problem(&mut self, file: &str, line: u64, code: &str, input: &str, message: String) {
        self.stats.rejected += 1;
        *self.stats.rejected_by_reason.entry(code.to_owned()).or_insert(0) += 1;
        if self.stats.problems.len() < self.opts.max_problems {
            self.stats.problems.push(Problem { file: file.to_owned(), line, code: code.to_owned(), input: shorten(input), message });
        }
    }

    fn entry(&mut self, file: &str, e: Entry, emit: &mut dyn FnMut(Report)) {
        match e {
            Entry::Comment => self.stats.comment_lines += 1,
            Entry::Blank => self.stats.blank_lines += 1,
            Entry::Header => self.stats.header_rows += 1,
            Entry::Metadata { line, note } => {
                self.stats.metadata_records += 1;
                self.stats.notes.push(if line > 0 { format!("{file} line {line}: {note}") } else { format!("{file}: {note}") });
            }
            Entry::Skipped { reason, .. } => {
                self.stats.skipped += 1;
                *self.stats.skipped_by_reason.entry(reason).or_insert(0) += 1;
            }
            Entry::Rejected { line, code, input, message } => {
                self.stats.read += 1;
                self.problem(file, line, code, &input, message);
            }
            Entry::Record(r) => {
                self.stats.read += 1;
                if let Some(report) = self.record(file, r) {
                    emit(report);
                }
            }
        }
    }

    /// One record through the core: a report, or a counted refusal.
    fn record(&mut self, file: &str, r: Record) -> Option<Report> {
        let ind = match parse(&r.value, r.hint, &self.opts.parse) {
            Ok(ind) => ind,
            Err(rej) => {
                if rej.code == RejectCode::PrefixTooShort {
                    self.stats.min_prefix += 1;
                }
                self.problem(file, r.line, rej.code.as_str(), &r.value, rej.message);
                return None;
            }
        };
        let time = |raw: &Option<String>, stats: &mut ReadStats| {
            raw.as_deref().filter(|t| !t.trim().is_empty()).and_then(|t| match parse_time(t) {
                Ok(t) => Some(t),
                Err(_) => {
                    stats.bad_times += 1;
                    None
                }
            })
        };
        let first = time(&r.first_seen, &mut self.stats);
        let last = time(&r.last_seen, &mut self.stats);
        let (observed_at, observed_until) = match (first, last) {
            (Some(f), Some(l)) if l > f => (Some(f), Some(l)),
            (Some(f), _) => (Some(f), None),
            (None, l) => (l, None),
        };
        // The hub's one rule for reported times (a value dated 2999 would top every list).
        for (field, t) in [("first_seen", observed_at), ("last_seen", observed_until)] {
            if let Some(Err((code, message))) = t.map(|t| apiary_core::check_reported_time(field, t, self.now)) {
                self.problem(file, r.line, code, &r.value, message);
                return None;
            }
        }
        let protocol = r.protocol.filter(|p| !p.trim().is_empty()).map(|p| p.trim().to_ascii_lowercase());
        if let Some(Err(message)) = protocol.as_deref().map(|p| apiary_core::limits::check_ident("protocol", p)) {
            // An identifier is never cut (it would name something else): the record is refused.
            self.problem(file, r.line, "field_too_long", &r.value, message);
            return None;
        }
        let mut description = r.description.filter(|d| !d.trim().is_empty());
        if let Some(d) = description.as_mut() {
            if apiary_core::limits::truncate_chars(d, apiary_core::limits::MAX_DESCRIPTION) {
                self.stats.descriptions_truncated += 1;
            }
        }
        self.stats.accepted += 1;
        let port = r.port.or(ind.port);
        let key = (ind.itype, ind.value.clone());
        if !self.seen.contains_key(&key) {
            let verdict = self.classify(&ind);
            self.seen.insert(key, verdict);
            self.stats.distinct += 1;
        }
        let mut extra = r.extra;
        if r.value.trim() != ind.value {
            extra.insert("original_indicator".into(), Value::String(r.value.clone()));
        }
        if let Some(t) = &r.tlp {
            extra.insert("tlp".into(), Value::String(t.clone()));
        }
        let port_text = port.map(|p| p.to_string()).unwrap_or_default();
        let first_text = observed_at.map(apiary_core::format_time).unwrap_or_default();
        let idempotency_key = idempotency_key(&["feed", ind.itype.as_str(), &ind.value, &port_text, &first_text]);
        let mut tags: Vec<String> = Vec::with_capacity(r.tags.len());
        for t in r.tags {
            let t = t.trim().to_lowercase();
            if !t.is_empty() && !tags.contains(&t) {
                tags.push(t);
            }
        }
        Some(Report {
            indicator: ind,
            tags,
            port,
            protocol,
            observed_at,
            observed_until,
            sensor: None,
            description,
            count: 1,
            extra: Value::Object(extra),
            idempotency_key,
            source: Some((self.source_file(file), r.line)).filter(|(_, line)| *line > 0),
        })
    }

    fn source_file(&mut self, file: &str) -> std::sync::Arc<str> {
        match &self.file {
            Some(f) if &**f == file => f.clone(),
            _ => self.file.insert(std::sync::Arc::from(file)).clone(),
        }
    }

    /// Reserved addresses and exclude-list matches (including CIDRs overlapping an excluded
    /// range) are excluded; hold-list matches held; the rest exported.
    fn classify(&mut self, ind: &apiary_core::Indicator) -> Verdict {
        let listed = self.opts.allowlist.check(ind);
        let excluding: Vec<&str> = listed.iter().filter(|l| l.use_ == ListUse::Exclude).map(|l| l.list.as_str()).collect();
        if ind.reserved.is_some() || !excluding.is_empty() {
            self.stats.excluded += 1;
            if excluding.is_empty() {
                *self.stats.excluded_by_list.entry("reserved".into()).or_insert(0) += 1;
            }
            for l in excluding {
                *self.stats.excluded_by_list.entry(l.to_owned()).or_insert(0) += 1;
            }
            return Verdict::Exclude;
        }
        let holding: Vec<&str> = listed.iter().filter(|l| l.use_ == ListUse::Hold).map(|l| l.list.as_str()).collect();
        if !holding.is_empty() {
            self.stats.held += 1;
            for l in holding {
                *self.stats.held_by_list.entry(l.to_owned()).or_insert(0) += 1;
            }
            return Verdict::Hold;
        }
        Verdict::Export
    }
}

/// Counts bytes and newlines as they pass, for the summary.
struct Counting<R> {
    inner: R,
    bytes: u64,
    newlines: u64,
    last: Option<u8>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.bytes += n as u64;
            self.newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }
}
