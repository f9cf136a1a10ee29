//! Following a log file the way `tail -F` does, but resumable: across rotation (the file is
//! renamed and a new one created), truncation (`copytruncate`) and restarts.
//!
//! A file is known by its **fingerprint**, the SHA-256 of its first line (at most
//! [`FINGERPRINT_BYTES`] of it): a rename keeps it, a truncation or a new file changes it. A
//! [`Position`] is (fingerprint, byte offset after the last complete line, lines read), plus
//! the device and inode for messages. Only complete lines (ending in `\n`) are handed out: a
//! half line at the end of the file waits for the rest.
//!
//! - **Rotation.** At the end of the open file, the path is looked at again; if it names
//!   another file, the open (renamed) file is read to its end once more, then the new file is
//!   followed from its start.
//! - **Truncation.** A file shorter than what was read, or whose first line changed, was
//!   truncated: it is followed again from its start.
//! - **Restart.** [`Tailer::resume`] finds the file of a saved position at the path or, if it
//!   was rotated meanwhile, among its siblings (`cowrie.json.1`, `cowrie.json.2026-12-03`),
//!   finishes it, then goes on with the current file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// At most this much of the first line is hashed into the fingerprint.
pub const FINGERPRINT_BYTES: usize = 4096;
const CHUNK: usize = 64 * 1024;
/// A line longer than this is cut there (the rest of it is skipped) so memory stays bounded.
pub const MAX_LINE: usize = 1024 * 1024;

/// Where reading stands in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The file's name when it was read.
    pub file: String,
    pub dev: u64,
    pub ino: u64,
    /// Hex SHA-256 of the file's first line; empty while it has no complete line.
    pub fingerprint: String,
    /// Bytes read: the end of the last complete line.
    pub offset: u64,
    /// Complete lines read.
    pub line: u64,
}

/// One complete line, without its `\n` (and without a `\r` before it).
#[derive(Debug)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// 1-based line number in its file.
    pub number: u64,
    /// Byte offset of the line's start in its file.
    pub start: u64,
    /// True when the line was longer than [`MAX_LINE`] and was cut.
    pub cut: bool,
}

/// What happened to the files, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TailStats {
    pub rotations: u64,
    pub truncations: u64,
    /// Half lines left at the end of a file that was rotated away or truncated.
    pub half_lines_dropped: u64,
    pub lines_cut: u64,
}

/// The result of one [`Tailer::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub lines: u64,
    /// Everything written so far was read (nothing left to read now).
    pub at_end: bool,
}

struct Open {
    file: File,
    pos: Position,
    /// Bytes read from the file after `pos.offset` (a half line, or lines not yet handed out).
    buf: Vec<u8>,
    /// Skipping the rest of an over-long line.
    skipping: bool,
}

impl Open {
    fn new(file: File, name: &str, offset: u64, line: u64, fingerprint: String) -> io::Result<Open> {
        let meta = file.metadata()?;
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Open {
            file,
            pos: Position { file: name.to_owned(), dev: meta.dev(), ino: meta.ino(), fingerprint, offset, line },
            buf: Vec::new(),
            skipping: false,
        })
    }

    /// The file offset up to which bytes were read from the file.
    fn read_end(&self) -> u64 {
        self.pos.offset + self.buf.len() as u64
    }
}

/// Follows one path.
pub struct Tailer {
    path: PathBuf,
    open: Option<Open>,
    stats: TailStats,
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// The fingerprint of an open file: the hash of its first line (or of its first
/// [`FINGERPRINT_BYTES`]); `None` while the first line is not complete.
pub fn fingerprint(file: &File) -> io::Result<Option<String>> {
    let mut head = vec![0u8; FINGERPRINT_BYTES + 1];
    let mut n = 0;
    while n < head.len() {
        let got = file.read_at(&mut head[n..], n as u64)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let head = &head[..n];
    Ok(match head.iter().position(|b| *b == b'\n') {
        Some(i) => Some(hash_first_line(&head[..i])),
        None if n > FINGERPRINT_BYTES => Some(hash_first_line(head)),
        None => None,
    })
}

fn hash_first_line(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    hex::encode(Sha256::digest(&line[..line.len().min(FINGERPRINT_BYTES)]))
}

impl Tailer {
    /// Follow `path` from the start of the file there now (or of the first one to appear).
    pub fn new(path: &Path) -> Tailer {
        Tailer { path: path.to_owned(), open: None, stats: TailStats::default() }
    }

    /// Follow `path` from a saved position: in the file at the path if its fingerprint matches,
    /// else in a rotated sibling with that fingerprint (finished first), else from the start.
    pub fn resume(path: &Path, saved: &Position) -> io::Result<Tailer> {
        let mut t = Tailer::new(path);
        if saved.fingerprint.is_empty() {
            return Ok(t);
        }
        if let Ok(f) = File::open(path) {
            if fingerprint(&f)?.as_deref() == Some(saved.fingerprint.as_str()) {
                let offset = if f.metadata()?.len() >= saved.offset { saved.offset } else { 0 };
                let line = if offset == saved.offset { saved.line } else { 0 };
                t.open = Some(Open::new(f, &file_name(path), offset, line, saved.fingerprint.clone())?);
                return Ok(t);
            }
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let stem = file_name(path);
        let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                let n = file_name(p);
                n != stem && n.starts_with(&stem)
            })
            .collect();
        // The file with the saved inode first, then newest names first.
        candidates.sort_by_key(|p| {
            let same_ino = std::fs::metadata(p).map(|m| m.ino() == saved.ino && m.dev() == saved.dev).unwrap_or(false);
            (!same_ino, std::cmp::Reverse(file_name(p)))
        });
        for p in candidates {
            let Ok(f) = File::open(&p) else { continue };
            if fingerprint(&f)?.as_deref() == Some(saved.fingerprint.as_str()) && f.metadata()?.len() >= saved.offset {
                tracing::info!("{} was rotated to {} while stopped: finishing it first", path.display(), p.display());
                t.open = Some(Open::new(f, &file_name(&p), saved.offset, saved.line, saved.fingerprint.clone())?);
                return Ok(t);
            }
        }
        tracing::warn!(
            "the file last read ({}, line {}) is gone and no sibling of {} has its first line; reading {} from its start",
            saved.file,
            saved.line,
            path.display(),
            path.display()
        );
        Ok(t)
    }

    pub fn stats(&self) -> &TailStats {
        &self.stats
    }

    /// Where reading stands (after the last line handed out); `None` before a file was opened.
    pub fn position(&self) -> Option<&Position> {
        self.open.as_ref().map(|o| &o.pos)
    }

    /// Hand out up to `max` complete lines. `out` gets each line and the position after it.
    pub fn poll(&mut self, max: u64, out: &mut dyn FnMut(&Line, &Position)) -> io::Result<Polled> {
        if self.open.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.open = Some(Open::new(f, &file_name(&self.path), 0, 0, String::new())?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Polled { lines: 0, at_end: true }),
                Err(e) => return Err(e),
            }
        }
        self.check_truncated()?;
        let mut lines = 0;
        loop {
            lines += self.drain_buffer(max - lines, out);
            if lines >= max {
                return Ok(Polled { lines, at_end: false });
            }
            if self.fill()? > 0 {
                continue;
            }
            // At the end of the open file: has the path moved on to another file?
            if self.rotated()? {
                continue;
            }
            return Ok(Polled { lines, at_end: true });
        }
    }

    /// Read the next chunk into the buffer; the bytes read.
    fn fill(&mut self) -> io::Result<usize> {
        let o = self.open.as_mut().expect("open");
        let start = o.buf.len();
        o.buf.resize(start + CHUNK, 0);
        let n = loop {
            match o.file.read(&mut o.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    o.buf.truncate(start);
                    return Err(e);
                }
            }
        };
        o.buf.truncate(start + n);
        Ok(n)
    }

    /// Hand out the complete lines in the buffer (at most `max`).
    fn drain_buffer(&mut self, max: u64, out: &mut dyn FnMut(&Line, &Position)) -> u64 {
        let o = self.open.as_mut().expect("open");
        let mut consumed = 0usize;
        let mut n = 0;
        while n < max {
            let rest = &o.buf[consumed..];
            let Some(i) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() > MAX_LINE && !o.skipping {
                    // Hand out the head of an over-long line; skip the rest up to its newline.
                    o.pos.line += 1;
                    let start = o.pos.offset;
                    o.pos.offset += rest.len() as u64;
                    if o.pos.fingerprint.is_empty() && start == 0 {
                        o.pos.fingerprint = hash_first_line(rest);
                    }
                    self.stats.lines_cut += 1;
                    out(&Line { bytes: &rest[..MAX_LINE], number: o.pos.line, start, cut: true }, &o.pos);
                    consumed += rest.len();
                    o.skipping = true;
                    n += 1;
                } else if o.skipping && !rest.is_empty() {
                    o.pos.offset += rest.len() as u64;
                    consumed += rest.len();
                }
                break;
            };
            let raw = &rest[..i];
            let start = o.pos.offset;
            o.pos.offset += i as u64 + 1;
            consumed += i + 1;
            if o.skipping {
                o.skipping = false;
                continue;
            }
            o.pos.line += 1;
            if start == 0 {
                o.pos.fingerprint = hash_first_line(raw);
            }
            let bytes = raw.strip_suffix(b"\r").unwrap_or(raw);
            // A UTF-8 byte order mark starts some files: it is not part of the first event.
            let bytes = if start == 0 { bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes) } else { bytes };
            let cut = bytes.len() > MAX_LINE;
            if cut {
                self.stats.lines_cut += 1;
            }
            out(&Line { bytes: &bytes[..bytes.len().min(MAX_LINE)], number: o.pos.line, start, cut }, &o.pos);
            n += 1;
        }
        o.buf.drain(..consumed);
        n
    }

    /// A file shorter than what was read, or with another first line, was truncated (and maybe
    /// written again): follow it from its start.
    fn check_truncated(&mut self) -> io::Result<()> {
        let o = self.open.as_mut().expect("open");
        let len = o.file.metadata()?.len();
        let rewritten = len < o.read_end()
            || (!o.pos.fingerprint.is_empty()
                && len > o.read_end()
                && fingerprint(&o.file)?.is_some_and(|fp| fp != o.pos.fingerprint));
        if rewritten {
            tracing::warn!(
                "{} was truncated (copytruncate?) after line {}: reading it again from its start",
                o.pos.file,
                o.pos.line
            );
            self.stats.truncations += 1;
            if !o.buf.is_empty() && !o.skipping {
                self.stats.half_lines_dropped += 1;
            }
            o.file.seek(SeekFrom::Start(0))?;
            o.buf.clear();
            o.skipping = false;
            o.pos.offset = 0;
            o.pos.line = 0;
            o.pos.fingerprint.clear();
        }
        Ok(())
    }

    /// At the end of the open file: if the path now names another file, switch to it (true).
    fn rotated(&mut self) -> io::Result<bool> {
        let o = self.open.as_ref().expect("open");
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if meta.dev() == o.pos.dev && meta.ino() == o.pos.ino {
            return Ok(false);
        }
        // Whatever the writer put in the old file before it moved on was read (we are at its
        // end); a half line left there will never be completed.
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let o = self.open.as_ref().expect("open");
        if !o.buf.is_empty() && !o.skipping {
            self.stats.half_lines_dropped += 1;
            tracing::warn!("{}: half line after line {} dropped: the file was rotated away", o.pos.file, o.pos.line);
        }
        tracing::info!("{} rotated after line {} of {}: following the new file", self.path.display(), o.pos.line, o.pos.file);
        self.stats.rotations += 1;
        self.open = Some(Open::new(file, &file_name(&self.path), 0, 0, String::new())?);
        Ok(true)
    }
}
