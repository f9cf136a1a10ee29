//! Honeypot logs behind one interface: a [`Source`] folds the lines of one honeypot kind's log
//! into [`Report`]s, counting what it could not read in the shared [`ReadStats`]. [`KINDS`] is
//! the registry `apiary import honeypot --kind NAME` picks from; a new kind is one new file
//! here with a `Source` and one entry in [`KINDS`].
//!
//! - [`cowrie`]: Cowrie's JSON log, through [`crate::cowrie`]'s session assembler.
//! - [`dionaea`]: Dionaea's flat `log_json` output, grouped by `connection_root`.

pub mod cowrie;
pub mod dionaea;

use std::io::Read;
use std::path::Path;

pub use crate::cowrie::{Problem, ProblemKind, ReadOptions, ReadStats};
use crate::lines::{AtEof, LineReader};
use crate::Report;

/// One honeypot kind's reader.
pub trait Source: Send {
    /// Fold one line in (`complete` is false for a last line with no newline). Reports that
    /// are ready go to `out`; `default_sensor` names the sensor when the log does not.
    fn push_line(&mut self, file: &str, default_sensor: &str, number: u64, bytes: &[u8], complete: bool, out: &mut dyn FnMut(Report));
    /// The input is over: hand out what is still held.
    fn finish(&mut self, out: &mut dyn FnMut(Report));
    fn stats(&self) -> &ReadStats;
    fn stats_mut(&mut self) -> &mut ReadStats;
    fn into_stats(self: Box<Self>) -> ReadStats;
}

/// A registered honeypot kind.
pub struct Kind {
    pub name: &'static str,
    pub about: &'static str,
    pub new: fn(ReadOptions) -> Box<dyn Source>,
}

/// Every honeypot kind, by name.
pub const KINDS: &[Kind] = &[
    Kind { name: "cowrie", about: "Cowrie JSON log (cowrie.json*)", new: cowrie::new },
    Kind { name: "dionaea", about: "Dionaea JSON log (log_json output, dionaea.json*)", new: dionaea::new },
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name.eq_ignore_ascii_case(name.trim()))
}

pub fn names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The sensor name a file gives when its events name none: the file name up to its first dot.
pub fn sensor_from_path(path: &Path, fallback: &str) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().split('.').next().unwrap_or("").to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// Read all of `input` into `source`. `progress` gets the bytes read so far (every few
/// thousand lines). Only an I/O error stops the read.
pub fn read(
    source: &mut dyn Source,
    input: impl Read,
    name: &str,
    default_sensor: &str,
    progress: &mut dyn FnMut(u64),
    out: &mut dyn FnMut(Report),
) -> std::io::Result<()> {
    let mut reader = LineReader::new(input, AtEof::Yield);
    let mut n = 0u64;
    source.stats_mut().files += 1;
    while let Some(line) = reader.next_line()? {
        let stats = source.stats_mut();
        stats.lines += 1;
        stats.bytes += line.bytes.len() as u64 + u64::from(line.complete);
        source.push_line(name, default_sensor, line.number, line.bytes, line.complete, out);
        n += 1;
        if n.is_multiple_of(4096) {
            progress(reader.consumed());
        }
    }
    progress(reader.consumed());
    Ok(())
}
