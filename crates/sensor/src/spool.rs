//! The on-disk spool between the log and the hub: events read but not yet acknowledged.
//!
//! Segment files `NNNNNNNNNNNN.spool` in the spool directory hold one record per line:
//! `DEV:INO:FINGERPRINT:END:LINE<TAB>WIRE-JSON`, the source position after the event and the
//! event as it is sent. Two small state files, each replaced atomically (write, sync, rename):
//!
//! - `read.json`: the log position up to which events are in the spool (written after the
//!   segment data is synced), where reading resumes after a restart;
//! - `acked.json`: the spool cursor (segment, offset) up to which the hub acknowledged, with the
//!   log position of the last acknowledged event — written only after the hub's 2xx.
//!
//! A crash between writing records and `read.json` re-reads those lines (the hub ignores the
//! repeats by key); between a 2xx and `acked.json` resends a batch (same). The spool is bounded
//! by [`Spool::is_full`]: the shipper stops reading the log while it is full (the log itself
//! keeps the rest), and says so.

use crate::tail::Position;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Largest event the spool takes (the shipper refuses larger ones before they get here).
pub const MAX_RECORD: usize = 4 * 1024 * 1024;

/// Where the hub's acknowledgements stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    pub segment: u64,
    /// Bytes of `segment` acknowledged.
    pub offset: u64,
    /// The log position after the last acknowledged event.
    pub position: Option<Position>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ReadState {
    position: Option<Position>,
}

/// The source of one spooled event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: String,
    /// Offset after the event's line.
    pub end: u64,
    pub line: u64,
}

impl Source {
    pub fn from_position(p: &Position) -> Source {
        Source { dev: p.dev, ino: p.ino, fingerprint: p.fingerprint.clone(), end: p.offset, line: p.line }
    }
}

/// Events to send, read from the spool.
#[derive(Debug, Default)]
pub struct Batch {
    /// JSON lines, `\n`-separated.
    pub body: Vec<u8>,
    /// The source of each event, in body order.
    pub sources: Vec<Source>,
    /// The cursor after the batch.
    end_segment: u64,
    end_offset: u64,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// Bytes known complete (flushed whole records).
    len: u64,
}

pub struct Spool {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    writer: Option<(u64, BufWriter<File>, u64)>,
    acked: Acked,
    read: ReadState,
    max_bytes: u64,
    sync: bool,
    /// Records written and not yet acknowledged (counted since open; older ones are estimated
    /// from their bytes).
    unacked_records: u64,
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:012}.spool"))
}

/// Replace `path` with `bytes` atomically (and durably when `sync`).
pub fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_data()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if sync {
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> io::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

impl Spool {
    /// Open (creating) the spool in `dir`, bounded to `max_bytes` of unacknowledged events.
    pub fn open(dir: &Path, max_bytes: u64, sync: bool) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let acked: Acked = read_json(&dir.join("acked.json"))?;
        let read: ReadState = read_json(&dir.join("read.json"))?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".spool")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut segments = VecDeque::new();
        for id in ids {
            if id < acked.segment {
                std::fs::remove_file(seg_path(dir, id))?;
                continue;
            }
            // A crash may have left a half record at the end: only whole lines count.
            let mut bytes = Vec::new();
            File::open(seg_path(dir, id))?.read_to_end(&mut bytes)?;
            let len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i as u64 + 1);
            segments.push_back(Segment { id, len });
        }
        let mut spool = Spool { dir: dir.to_owned(), segments, writer: None, acked, read, max_bytes, sync, unacked_records: 0 };
        spool.unacked_records = spool.count_unacked()?;
        Ok(spool)
    }

    fn count_unacked(&self) -> io::Result<u64> {
        let mut n = 0;
        for s in &self.segments {
            let mut bytes = Vec::new();
            File::open(seg_path(&self.dir, s.id))?.read_to_end(&mut bytes)?;
            let from = if s.id == self.acked.segment { self.acked.offset.min(s.len) as usize } else { 0 };
            n += bytes[from..s.len as usize].iter().filter(|b| **b == b'\n').count() as u64;
        }
        Ok(n)
    }

    /// The log position reading resumes from (what the spool holds up to), if any.
    pub fn read_position(&self) -> Option<&Position> {
        self.read.position.as_ref().or(self.acked.position.as_ref())
    }

    pub fn acked(&self) -> &Acked {
        &self.acked
    }

    /// Bytes of events not yet acknowledged.
    pub fn unacked_bytes(&self) -> u64 {
        let mut n = 0;
        for s in &self.segments {
            n += if s.id == self.acked.segment { s.len.saturating_sub(self.acked.offset) } else { s.len };
        }
        n + self.writer.as_ref().map_or(0, |(_, _, pending)| *pending)
    }

    pub fn unacked_records(&self) -> u64 {
        self.unacked_records
    }

    /// True when reading must wait for acknowledgements.
    pub fn is_full(&self) -> bool {
        self.unacked_bytes() >= self.max_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.unacked_records == 0
    }

    /// Add one event (buffered until [`Spool::commit`]).
    pub fn push(&mut self, source: &Source, wire: &[u8]) -> io::Result<()> {
        let need_new = match &self.writer {
            None => true,
            Some((id, _, pending)) => {
                let len = self.segments.iter().find(|s| s.id == *id).map_or(0, |s| s.len);
                len + pending >= SEGMENT_BYTES
            }
        };
        if need_new {
            self.flush_writer()?;
            // Always a new number, above the acknowledged cursor's segment too.
            let id = self.segments.back().map_or(0, |s| s.id).max(self.acked.segment) + 1;
            let f = OpenOptions::new().create(true).append(true).open(seg_path(&self.dir, id))?;
            self.segments.push_back(Segment { id, len: 0 });
            self.writer = Some((id, BufWriter::with_capacity(256 * 1024, f), 0));
        }
        let (_, w, pending) = self.writer.as_mut().expect("writer");
        let head = format!("{}:{}:{}:{}:{}\t", source.dev, source.ino, source.fingerprint, source.end, source.line);
        w.write_all(head.as_bytes())?;
        w.write_all(wire)?;
        w.write_all(b"\n")?;
        *pending += (head.len() + wire.len() + 1) as u64;
        self.unacked_records += 1;
        Ok(())
    }

    fn flush_writer(&mut self) -> io::Result<()> {
        if let Some((id, w, pending)) = self.writer.as_mut() {
            if *pending > 0 {
                w.flush()?;
                if self.sync {
                    w.get_ref().sync_data()?;
                }
                if let Some(s) = self.segments.iter_mut().find(|s| s.id == *id) {
                    s.len += *pending;
                }
                *pending = 0;
            }
        }
        Ok(())
    }

    /// Make the events pushed so far durable, and record that the log was read up to `read`.
    pub fn commit(&mut self, read: &Position) -> io::Result<()> {
        self.flush_writer()?;
        self.read.position = Some(read.clone());
        let bytes = serde_json::to_vec(&self.read).map_err(io::Error::other)?;
        write_atomic(&self.dir.join("read.json"), &bytes, self.sync)
    }

    /// The next events to send: at most `max_events`, and at most `max_bytes` of body unless
    /// a single event is larger.
    pub fn next_batch(&mut self, max_events: usize, max_bytes: usize) -> io::Result<Batch> {
        self.flush_writer()?;
        let mut batch = Batch { end_segment: self.acked.segment, end_offset: self.acked.offset, ..Batch::default() };
        for s in &self.segments {
            if s.id < self.acked.segment {
                continue;
            }
            let from = if s.id == self.acked.segment { self.acked.offset } else { 0 };
            if from >= s.len {
                continue;
            }
            let mut f = File::open(seg_path(&self.dir, s.id))?;
            f.seek(SeekFrom::Start(from))?;
            let mut data = vec![0u8; (s.len - from).min(max_bytes as u64 * 2 + 2 * MAX_RECORD as u64) as usize];
            let n = read_full(&mut f, &mut data)?;
            data.truncate(n);
            let mut at = 0usize;
            while let Some(i) = data[at..].iter().position(|b| *b == b'\n') {
                let rec = &data[at..at + i];
                let Some(tab) = rec.iter().position(|b| *b == b'\t') else {
                    at += i + 1;
                    continue;
                };
                let wire = &rec[tab + 1..];
                if !batch.is_empty() && (batch.len() >= max_events || batch.body.len() + wire.len() + 1 > max_bytes) {
                    return Ok(batch);
                }
                if let Some(src) = parse_source(&rec[..tab]) {
                    if !batch.body.is_empty() {
                        batch.body.push(b'\n');
                    }
                    batch.body.extend_from_slice(wire);
                    batch.sources.push(src);
                }
                at += i + 1;
                batch.end_segment = s.id;
                batch.end_offset = from + at as u64;
            }
            if !batch.is_empty() && (batch.len() >= max_events || from + (at as u64) < s.len) {
                return Ok(batch);
            }
        }
        Ok(batch)
    }

    /// The hub acknowledged `batch`: move the cursor past it and drop finished segments.
    pub fn ack(&mut self, batch: &Batch) -> io::Result<()> {
        self.acked.segment = batch.end_segment;
        self.acked.offset = batch.end_offset;
        if let Some(last) = batch.sources.last() {
            let file = self.read.position.as_ref().map(|p| p.file.clone()).unwrap_or_default();
            self.acked.position = Some(Position {
                file,
                dev: last.dev,
                ino: last.ino,
                fingerprint: last.fingerprint.clone(),
                offset: last.end,
                line: last.line,
            });
        }
        let bytes = serde_json::to_vec(&self.acked).map_err(io::Error::other)?;
        write_atomic(&self.dir.join("acked.json"), &bytes, self.sync)?;
        self.unacked_records = self.unacked_records.saturating_sub(batch.len() as u64);
        let writing = self.writer.as_ref().map(|(id, _, _)| *id);
        while let Some(s) = self.segments.front() {
            let finished = s.id < self.acked.segment || (s.id == self.acked.segment && self.acked.offset >= s.len && Some(s.id) != writing);
            if !finished {
                break;
            }
            std::fs::remove_file(seg_path(&self.dir, s.id))?;
            if s.id == self.acked.segment {
                self.acked.segment += 1;
                self.acked.offset = 0;
            }
            self.segments.pop_front();
        }
        Ok(())
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn parse_source(head: &[u8]) -> Option<Source> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split(':');
    let dev = parts.next()?.parse().ok()?;
    let ino = parts.next()?.parse().ok()?;
    let fingerprint = parts.next()?.to_owned();
    let end = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some(Source { dev, ino, fingerprint, end, line })
}
