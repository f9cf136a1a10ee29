//! Cowrie's JSON log (`cowrie.json`), read as sessions.
//!
//! Each line is one event; events are folded into [`Session`]s keyed by (sensor, session) —
//! session ids are unique only per sensor. A session is handed out when its
//! `cowrie.session.closed` event is read (so memory stays bounded on large logs), the rest when
//! the caller calls [`Assembler::finish`]. [`derive::reports`] then turns a session into
//! [`Report`](crate::Report)s: the attacker address tagged by how deep it got, download URLs and
//! their hosts, payload hashes.
//!
//! Nothing in a log stops the reader: a line that is not JSON, or not an object, or has no
//! `session`, is counted and listed with its line number and the reason; invalid UTF-8 is
//! replaced (U+FFFD), counted as a warning and the event is read; unknown eventids and fields
//! are kept with the session.
//!
//! ```no_run
//! use apiary_ingest::cowrie::{Assembler, ReadOptions, derive};
//! let mut asm = Assembler::new(ReadOptions::default());
//! let mut reports = Vec::new();
//! let mut emit = |s: apiary_ingest::cowrie::Session| reports.extend(derive::reports(&s, &Default::default()).reports);
//! asm.read_path("cowrie.json".as_ref(), &mut |_| {}, &mut emit).unwrap();
//! asm.finish(&mut emit);
//! ```

pub mod derive;
pub mod event;
pub mod record;
pub mod session;

pub use derive::{reports, DeriveOptions, Derived};
pub use event::Event;
pub use session::{Command, CommandStatus, Credential, Depth, Download, Session, Tunnel, TtyLog, Upload};

use crate::lines::{decode_lossy, AtEof, LineReader};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

/// Options for reading.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Use this sensor name for every event, instead of each event's `sensor` field.
    pub sensor: Option<String>,
    /// How many problems to keep with their details (all are counted).
    pub max_problems: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { sensor: None, max_problems: 100 }
    }
}

/// Why a line was rejected, or what was odd about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Rejected: the line is not JSON (or not a JSON object).
    NotJson,
    /// Rejected: the event has no `session`, so it belongs to no session.
    NoSession,
    /// Rejected: the file ends in a half line that is not a complete event.
    IncompleteLine,
    /// Warning: invalid UTF-8, decoded with replacement characters; the event was read.
    InvalidUtf8,
    /// Warning: no readable `timestamp`; the event was read without a time.
    BadTimestamp,
    /// Warning: a value in the event was refused by the indicator core (not made a sighting).
    RejectedValue,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::NotJson => "not_json",
            ProblemKind::NoSession => "no_session",
            ProblemKind::IncompleteLine => "incomplete_line",
            ProblemKind::InvalidUtf8 => "invalid_utf8",
            ProblemKind::BadTimestamp => "bad_timestamp",
            ProblemKind::RejectedValue => "rejected_value",
        }
    }

    /// True when the line was not read at all.
    pub fn rejects_line(self) -> bool {
        matches!(self, ProblemKind::NotJson | ProblemKind::NoSession | ProblemKind::IncompleteLine)
    }
}

/// One problem, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based line number (0 when the problem is about a session, not a line).
    pub line: u64,
    pub kind: ProblemKind,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {} of {}: {}", self.line, self.file, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadStats {
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub blank_lines: u64,
    /// Lines read as events.
    pub events: u64,
    /// Lines not read (not JSON, no session, half line at the end).
    pub lines_rejected: u64,
    /// Lines with invalid UTF-8 (read, with replacement characters).
    pub lines_invalid_utf8: u64,
    pub bad_timestamps: u64,
    /// Sessions handed out.
    pub sessions: u64,
    /// Of those, sessions without a `cowrie.session.closed` event in the input.
    pub sessions_unclosed: u64,
    /// Events per eventid this reader does not know (kept raw with their session).
    pub unknown_eventids: BTreeMap<String, u64>,
    /// Counts per problem kind.
    pub problems_by_kind: BTreeMap<ProblemKind, u64>,
    /// The first problems, in reading order (at most `ReadOptions::max_problems`).
    pub problems: Vec<Problem>,
}

impl ReadStats {
    /// Record a problem: always counted, listed while under `max`.
    pub fn problem(&mut self, max: usize, file: &str, line: u64, kind: ProblemKind, message: String) {
        *self.problems_by_kind.entry(kind).or_insert(0) += 1;
        if kind.rejects_line() {
            self.lines_rejected += 1;
        }
        if self.problems.len() < max {
            self.problems.push(Problem { file: file.to_owned(), line, kind, message });
        }
    }
}

/// Folds events into sessions.
pub struct Assembler {
    opts: ReadOptions,
    open: HashMap<String, Session>,
    key_buf: String,
    stats: ReadStats,
}

impl Assembler {
    pub fn new(opts: ReadOptions) -> Assembler {
        Assembler { opts, open: HashMap::new(), key_buf: String::new(), stats: ReadStats::default() }
    }

    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Mutable stats, for callers that record problems found downstream (rejected values).
    pub fn stats_mut(&mut self) -> &mut ReadStats {
        &mut self.stats
    }

    pub fn max_problems(&self) -> usize {
        self.opts.max_problems
    }

    /// Sessions still open (read, not yet closed).
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// Read a whole file. `progress` gets the bytes read so far in this file (called every few
    /// thousand lines); `out` gets each closed session. Only an I/O error stops the read.
    pub fn read_path(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(u64),
        out: &mut dyn FnMut(Session),
    ) -> std::io::Result<()> {
        let file = std::fs::File::open(path)?;
        let name = path.display().to_string();
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().split('.').next().unwrap_or("").to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "cowrie".to_owned());
        self.read(file, &name, &stem, progress, out)
    }

    /// Read events from any byte source. `name` names it in problems; `default_sensor` is used
    /// for events without a `sensor` field (unless [`ReadOptions::sensor`] overrides all).
    pub fn read<R: Read>(
        &mut self,
        input: R,
        name: &str,
        default_sensor: &str,
        progress: &mut dyn FnMut(u64),
        out: &mut dyn FnMut(Session),
    ) -> std::io::Result<()> {
        self.stats.files += 1;
        let mut reader = LineReader::new(input, AtEof::Yield);
        let mut n = 0u64;
        while let Some(line) = reader.next_line()? {
            self.stats.lines += 1;
            self.stats.bytes += line.bytes.len() as u64 + u64::from(line.complete);
            let (number, bytes, complete) = (line.number, line.bytes, line.complete);
            self.push_line(name, default_sensor, number, bytes, complete, out);
            n += 1;
            if n.is_multiple_of(4096) {
                progress(reader.consumed());
            }
        }
        progress(reader.consumed());
        Ok(())
    }

    /// Fold one line in. `complete` is false for a last line with no newline after it.
    pub fn push_line(
        &mut self,
        file: &str,
        default_sensor: &str,
        number: u64,
        bytes: &[u8],
        complete: bool,
        out: &mut dyn FnMut(Session),
    ) {
        let max = self.opts.max_problems;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            self.stats.blank_lines += 1;
            return;
        }
        let (text, lossy) = decode_lossy(bytes);
        let ev = match Event::parse(&text) {
            Ok(ev) => ev,
            Err(e) => {
                let (kind, msg) = if complete {
                    (ProblemKind::NotJson, format!("not a JSON object ({e}), line skipped"))
                } else {
                    (
                        ProblemKind::IncompleteLine,
                        format!("half line at the end of the file, no newline ({e}); skipped"),
                    )
                };
                self.stats.problem(max, file, number, kind, msg);
                return;
            }
        };
        if lossy {
            self.stats.lines_invalid_utf8 += 1;
            self.stats.problem(
                max,
                file,
                number,
                ProblemKind::InvalidUtf8,
                "invalid UTF-8, kept with replacement characters".to_owned(),
            );
        }
        let Some(session_id) = ev.session.as_deref().filter(|s| !s.is_empty()) else {
            self.stats.problem(
                max,
                file,
                number,
                ProblemKind::NoSession,
                "event has no `session`, so it belongs to no session; skipped".to_owned(),
            );
            return;
        };
        self.stats.events += 1;
        let sensor = self
            .opts
            .sensor
            .as_deref()
            .or(ev.sensor.as_deref().filter(|s| !s.is_empty()))
            .unwrap_or(default_sensor);
        let time = match ev.timestamp.as_deref() {
            Some(ts) => match apiary_core::parse_time(ts) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.stats.bad_timestamps += 1;
                    self.stats.problem(
                        max,
                        file,
                        number,
                        ProblemKind::BadTimestamp,
                        format!("unreadable `timestamp` {ts:?} ({e}); event read without a time"),
                    );
                    None
                }
            },
            None => {
                self.stats.bad_timestamps += 1;
                self.stats.problem(
                    max,
                    file,
                    number,
                    ProblemKind::BadTimestamp,
                    "no `timestamp`; event read without a time".to_owned(),
                );
                None
            }
        };
        let eventid = ev.eventid.as_deref().unwrap_or("");
        self.key_buf.clear();
        self.key_buf.push_str(sensor);
        self.key_buf.push('\x1f');
        self.key_buf.push_str(session_id);
        let session = match self.open.get_mut(self.key_buf.as_str()) {
            Some(s) => s,
            None => self
                .open
                .entry(self.key_buf.clone())
                .or_insert_with(|| Session::new(sensor, session_id, file, number)),
        };
        if !session.apply(&ev, eventid, time, &text) {
            *self.stats.unknown_eventids.entry(eventid.to_owned()).or_insert(0) += 1;
        }
        if session.closed {
            let s = self.open.remove(self.key_buf.as_str()).expect("session present");
            self.stats.sessions += 1;
            out(s);
        }
    }

    /// Hand out every session still open (no `cowrie.session.closed` seen), oldest first.
    pub fn finish(&mut self, out: &mut dyn FnMut(Session)) {
        let mut rest: Vec<Session> = self.open.drain().map(|(_, s)| s).collect();
        rest.sort_by(|a, b| a.first_seen_at.cmp(&b.first_seen_at));
        for s in rest {
            self.stats.sessions += 1;
            self.stats.sessions_unclosed += 1;
            out(s);
        }
    }

    /// The final counts.
    pub fn into_stats(self) -> ReadStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
