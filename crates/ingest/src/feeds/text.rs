//! `text`: one value per line, the commonest blocklist shape (Emerging Threats, blocklist.de,
//! most "plain" downloads).
//!
//! A line starting with `#` or `;` is a comment; so is everything after ` #` or ` ;` (a comment
//! marker after whitespace: a URL's `#fragment` or `;param` is not a comment). The value is the
//! first word of what is left; the rest of the line (or the inline comment) becomes the
//! description.

use super::{each_line, Entry, Format, Options, Record};
use std::io::{self, BufRead};

pub struct Text;

impl Format for Text {
    fn name(&self) -> &'static str {
        "text"
    }

    fn about(&self) -> &'static str {
        "one value per line; `#`/`;` comment lines and inline comments"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        each_line(input, &mut |n, line| out(text_line(n, line, &['#', ';'])))
    }
}

/// One line of a plain list as the `text` format reads it (the hub's `text/plain` publish uses
/// it too, so both take the same lines): `None` for a blank or comment line, else the value and
/// its description (the inline comment, or the rest of the line).
pub fn value_of_line(line: &str) -> Option<(String, Option<String>)> {
    match text_line(0, line, &['#', ';']) {
        Entry::Record(r) => Some((r.value, r.description)),
        _ => None,
    }
}

/// One line of a list: blank, comment, or a record (first word + description).
pub(crate) fn text_line(n: u64, line: &str, markers: &[char]) -> Entry {
    let t = line.trim();
    if t.is_empty() {
        return Entry::Blank;
    }
    if t.starts_with(markers) {
        return Entry::Comment;
    }
    let (body, comment) = split_comment(t, markers);
    let body = body.trim();
    let (value, rest) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], body[i..].trim()),
        None => (body, ""),
    };
    let mut rec = Record::new(n, value);
    let desc = if comment.is_empty() { rest } else { comment };
    if !desc.is_empty() {
        rec.description = Some(desc.to_owned());
    }
    Entry::Record(rec)
}

/// Split `value # comment` at the first comment marker that follows whitespace.
pub(crate) fn split_comment<'a>(line: &'a str, markers: &[char]) -> (&'a str, &'a str) {
    let b = line.as_bytes();
    for (i, c) in line.char_indices() {
        if markers.contains(&c) && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return (&line[..i], line[i + c.len_utf8()..].trim());
        }
    }
    (line, "")
}
