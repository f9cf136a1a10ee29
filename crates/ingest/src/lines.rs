//! Reading a log as bytes, one line at a time.
//!
//! Logs written by honeypots hold whatever attackers typed: invalid UTF-8 is normal, and a file
//! that is still being written ends in a half line. This reader never fails on content: it hands
//! out raw bytes with their line number and byte offset, and says whether the line was complete.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};

/// What to do with bytes after the last newline when the input ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtEof {
    /// A finished file: hand out the fragment as a line with `complete: false`.
    Yield,
    /// A file still being written (tailing): keep the fragment and wait for its newline; a later
    /// call continues it once more bytes arrive.
    Hold,
}

/// One line of input, without its line ending (`\n`, `\r\n` or a lone `\r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    /// Byte offset of the line's first byte in the input.
    pub offset: u64,
    pub bytes: &'a [u8],
    /// The line ending as written (`\n`, `\r\n`, `\r`; empty for a fragment): a quoted CSV
    /// field that spans lines keeps it.
    pub ending: &'a [u8],
    /// False for a fragment at the end of the input with no newline after it.
    pub complete: bool,
}

/// A buffered line reader over any byte source.
pub struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    /// Bytes of `buf` that belong to a held fragment (AtEof::Hold).
    pending: bool,
    number: u64,
    /// Offset of the next unread line's start: everything before it has been handed out.
    consumed: u64,
    at_eof: AtEof,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, at_eof: AtEof) -> Self {
        LineReader {
            inner: BufReader::with_capacity(1 << 20, inner),
            buf: Vec::with_capacity(4096),
            pending: false,
            number: 0,
            consumed: 0,
            at_eof,
        }
    }

    /// Start counting from a known position (a shipper resuming at a saved offset).
    pub fn starting_at(mut self, line_number: u64, offset: u64) -> Self {
        self.number = line_number;
        self.consumed = offset;
        self
    }

    /// Bytes handed out so far (complete lines, plus a yielded fragment). With [`AtEof::Hold`]
    /// this is the position to persist: a held fragment is not counted.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next line, or `None` at the end of the input (or, with [`AtEof::Hold`], when only a
    /// fragment without its line ending is left).
    ///
    /// A line ends at `\n`, `\r\n` or a lone `\r` (old Mac files: without it a whole file would
    /// be one line). A UTF-8 byte order mark at offset 0 is not part of the first line.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if !self.pending {
            self.buf.clear();
        }
        self.pending = false;
        let complete = loop {
            let avail = self.inner.fill_buf()?;
            if self.buf.last() == Some(&b'\r') {
                // A `\r` ended the bytes read so far: the next byte says whether it is `\r\n`.
                if avail.is_empty() && self.at_eof == AtEof::Hold {
                    self.pending = true;
                    return Ok(None);
                }
                if avail.first() == Some(&b'\n') {
                    self.buf.push(b'\n');
                    self.inner.consume(1);
                }
                break true;
            }
            if avail.is_empty() {
                break false;
            }
            match memchr::memchr2(b'\n', b'\r', avail) {
                Some(i) => {
                    let lf = avail[i] == b'\n';
                    self.buf.extend_from_slice(&avail[..=i]);
                    self.inner.consume(i + 1);
                    if lf {
                        break true;
                    }
                }
                None => {
                    let n = avail.len();
                    self.buf.extend_from_slice(avail);
                    self.inner.consume(n);
                }
            }
        };
        if self.buf.is_empty() {
            return Ok(None);
        }
        if !complete && self.at_eof == AtEof::Hold {
            self.pending = true;
            return Ok(None);
        }
        self.number += 1;
        let offset = self.consumed;
        self.consumed += self.buf.len() as u64;
        let mut end = self.buf.len();
        if complete {
            if self.buf[end - 1] == b'\n' {
                end -= 1;
            }
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        let start = if offset == 0 && self.buf[..end].starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        Ok(Some(Line { number: self.number, offset, bytes: &self.buf[start..end], ending: &self.buf[end..], complete }))
    }
}

/// Decode bytes as UTF-8, replacing invalid sequences with U+FFFD. The flag says whether any
/// replacement happened (the caller reports it with the line number).
pub fn decode_lossy(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    // `from_utf8` validates much faster than the lossy decoder walks chunks; valid lines are the rule.
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (Cow::Owned(String::from_utf8_lossy(bytes).into_owned()), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], at_eof: AtEof) -> Vec<(u64, u64, Vec<u8>, bool)> {
        let mut r = LineReader::new(input, at_eof);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.number, l.offset, l.bytes.to_vec(), l.complete));
        }
        out
    }

    #[test]
    fn lines_numbers_offsets_and_crlf() {
        let got = collect(b"a\r\nbb\n\nccc", AtEof::Yield);
        assert_eq!(
            got,
            vec![
                (1, 0, b"a".to_vec(), true),
                (2, 3, b"bb".to_vec(), true),
                (3, 6, b"".to_vec(), true),
                (4, 7, b"ccc".to_vec(), false),
            ]
        );
    }

    #[test]
    fn lone_cr_is_a_line_break_and_crlf_one() {
        let got = collect(b"68.2.2.1\r68.2.2.2\r\n68.2.2.3\r", AtEof::Yield);
        let lines: Vec<_> = got.iter().map(|(n, o, b, c)| (*n, *o, String::from_utf8(b.clone()).unwrap(), *c)).collect();
        assert_eq!(
            lines,
            vec![(1, 0, "68.2.2.1".into(), true), (2, 9, "68.2.2.2".into(), true), (3, 19, "68.2.2.3".into(), true)]
        );
        // A `\r` at the end of what a growing file holds so far waits for the next byte.
        let mut r = LineReader::new(&b"a\r"[..], AtEof::Hold);
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn bom_at_offset_zero_is_skipped() {
        let got = collect(b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBFx\n", AtEof::Yield);
        assert_eq!(got[0].2, b"{\"a\":1}".to_vec());
        assert_eq!(got[1].2, b"\xEF\xBB\xBFx".to_vec(), "only at the start of the input");
    }

    #[test]
    fn hold_keeps_fragment_until_its_newline() {
        // A growing file: first only a half line is there, then the rest arrives.
        struct Growing(Vec<&'static [u8]>);
        impl Read for Growing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                let chunk = self.0[0];
                if chunk.is_empty() {
                    // An empty chunk stands for "nothing more yet" (EOF for now).
                    self.0.remove(0);
                    return Ok(0);
                }
                let n = chunk.len().min(out.len());
                out[..n].copy_from_slice(&chunk[..n]);
                self.0[0] = &chunk[n..];
                if self.0[0].is_empty() {
                    self.0.remove(0);
                }
                Ok(n)
            }
        }
        let mut r = LineReader::new(Growing(vec![b"one\ntw", b"", b"o\n"]), AtEof::Hold);
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"one");
        assert_eq!(r.consumed(), 4);
        assert!(r.next_line().unwrap().is_none(), "the fragment is held, not handed out");
        assert_eq!(r.consumed(), 4, "a held fragment is not counted as consumed");
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.number, l.offset, l.bytes, l.complete), (2, 4, &b"two"[..], true));
        assert_eq!(r.consumed(), 8);
    }

    #[test]
    fn lossy_decoding_flags_replacements() {
        assert_eq!(decode_lossy(b"ok"), (Cow::Borrowed("ok"), false));
        let (s, lossy) = decode_lossy(b"echo \xA1\xFF");
        assert!(lossy);
        assert_eq!(s, "echo \u{FFFD}\u{FFFD}");
    }
}
