//! Apiary's sources: readers that turn honeypot logs and feed files into [`Report`]s.
//!
//! Pipeline stage: **sources**. A source reads bytes from the outside world, keeps everything it
//! does not understand, and hands each value to [`apiary_core::parse`] (never a parser of its
//! own). What comes out is a [`Report`]: one normalised indicator with its context, ready to be
//! recorded by whichever sink the caller chooses (the store directly, or a hub over HTTP). This
//! crate depends on the core only; the store and the server sit downstream.
//!
//! - [`lines`]: a byte-oriented line reader (invalid UTF-8 is decoded lossily, a half line at the
//!   end of a file being written is left for later).
//! - [`cowrie`]: Cowrie's JSON log, assembled into sessions, then into reports.
//! - [`hpfeeds`]: the hpfeeds wire codec, and Cowrie's `cowrie.sessions` messages read as sessions.

pub mod cowrie;
pub mod feeds;
pub mod honeypot;
pub mod hpfeeds;
pub mod lines;
pub mod report;

pub use report::{idempotency_key, Report};
