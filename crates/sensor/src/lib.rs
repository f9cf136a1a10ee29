//! `apiary sensor`: the shipper that runs beside a honeypot (docs/sensor.md).
//!
//! It follows the honeypot's JSON log ([`tail`]) across rotation and truncation, turns each
//! complete line into an event with an idempotency key, keeps events in a bounded on-disk
//! [`spool`] until the hub acknowledges them, and sends them in batches ([`client`]) to
//! `POST /api/v1/feeds/{owner}/{feed}/events`, retrying with capped, jittered exponential
//! backoff while the hub is away.
//!
//! **Exactly once.** An event's key is `sha256(sensor ␟ file fingerprint ␟ line offset)`: the
//! same line always has the same key, whichever run of the shipper reads it, so the hub stores
//! it once however often it is sent. Nothing is dropped before the hub acknowledged it: the
//! log position is persisted as acknowledged only after the hub's 2xx, and events read before
//! that wait in the spool (synced to disk) across restarts.
//!
//! **What leaves the sensor** is the event as logged minus the fields the operator lists in
//! `drop_fields` (e.g. `password`, `input`), plus the key, the sensor name and the kind.

pub mod client;
pub mod spool;
pub mod tail;

use client::{Backoff, Client, Sent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spool::{Source, Spool};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tail::{Line, Position, Tailer};

/// The shipper's settings (the `[sensor]` config file or the command's flags).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The honeypot's JSON log (e.g. `/home/cowrie/cowrie/var/log/cowrie/cowrie.json`).
    pub log: PathBuf,
    /// The hub's base URL (`https://hub.example`).
    pub hub: String,
    /// A `write` token of the feed's owner.
    pub token: String,
    /// The feed, `owner/name`.
    pub feed: String,
    /// This sensor's name (the sightings' source); defaults to the host name.
    #[serde(default)]
    pub sensor: String,
    /// Where events wait for the hub, and where the shipper keeps its position.
    pub spool: PathBuf,
    /// The honeypot kind (`cowrie`).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Top-level fields removed from every event before it leaves the sensor.
    #[serde(default)]
    pub drop_fields: Vec<String>,
    /// Events per request (the hub takes at most 10,000).
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    /// Bytes per request, at most.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Unacknowledged events the spool may hold on disk, in bytes; reading pauses beyond.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// How often to look at the log for new lines, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// First retry wait after a failed send, in milliseconds (doubles, with jitter).
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Longest retry wait, in milliseconds.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// HTTP request timeout, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Sync the spool to disk before counting events as spooled (survives power loss).
    #[serde(default = "default_true")]
    pub sync: bool,
}

fn default_kind() -> String {
    "cowrie".into()
}
fn default_batch_events() -> usize {
    1000
}
fn default_batch_bytes() -> usize {
    1024 * 1024
}
fn default_spool_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_poll_ms() -> u64 {
    250
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    30_000
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_true() -> bool {
    true
}

impl Config {
    /// Settings with every default, for the given log and spool (the rest to be filled).
    pub fn new(log: PathBuf, spool: PathBuf) -> Config {
        Config {
            log,
            hub: String::new(),
            token: String::new(),
            feed: String::new(),
            sensor: String::new(),
            spool,
            kind: default_kind(),
            drop_fields: Vec::new(),
            batch_events: default_batch_events(),
            batch_bytes: default_batch_bytes(),
            spool_max_bytes: default_spool_max_bytes(),
            poll_ms: default_poll_ms(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            timeout_secs: default_timeout_secs(),
            sync: true,
        }
    }

    /// Check the settings and fill the defaults that depend on the machine.
    pub fn validated(mut self) -> Result<Config, String> {
        if self.sensor.trim().is_empty() {
            self.sensor = hostname().ok_or("no sensor name given and the host name is unreadable: set `sensor`")?;
        }
        self.sensor = self.sensor.trim().to_owned();
        if self.sensor.len() > 128 || self.sensor.chars().any(char::is_control) {
            return Err(format!("sensor name {:?}: at most 128 bytes, no control characters", self.sensor));
        }
        if !(self.hub.starts_with("http://") || self.hub.starts_with("https://")) {
            return Err(format!("hub `{}` must start with http:// or https://", self.hub));
        }
        match self.feed.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => {}
            _ => return Err(format!("feed `{}` must be OWNER/NAME", self.feed)),
        }
        if self.token.trim().is_empty() {
            return Err("no token: give a `write` token of the feed's owner".into());
        }
        if self.kind != "cowrie" {
            return Err(format!("kind `{}`: only `cowrie` is shipped so far", self.kind));
        }
        if !(1..=10_000).contains(&self.batch_events) {
            return Err("batch_events must be 1 to 10000".into());
        }
        self.batch_bytes = self.batch_bytes.clamp(4096, 16 * 1024 * 1024);
        self.poll_ms = self.poll_ms.max(10);
        self.backoff_initial_ms = self.backoff_initial_ms.max(10);
        Ok(self)
    }
}

/// The host name (from the kernel), for a sensor without a configured name.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The idempotency key of the line starting at `offset` in the file with `fingerprint`.
pub fn event_key(sensor: &str, fingerprint: &str, offset: u64) -> String {
    let mut h = Sha256::new();
    h.update(sensor.as_bytes());
    h.update([0x1f]);
    h.update(fingerprint.as_bytes());
    h.update([0x1f]);
    h.update(offset.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Why a line was not shipped, or what was odd about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub lines: u64,
    /// Events put in the spool.
    pub spooled: u64,
    /// Events the hub stored new.
    pub accepted: u64,
    /// Events the hub already held (a resend).
    pub duplicates: u64,
    /// Events the hub refused (listed in `problems`).
    pub refused: u64,
    pub not_json: u64,
    pub invalid_utf8: u64,
    pub too_large: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub tail: tail::TailStats,
    /// The first problems, with file and line.
    pub problems: Vec<Problem>,
}

const MAX_PROBLEMS: usize = 100;

impl Stats {
    fn problem(&mut self, file: &str, line: u64, reason: String) {
        tracing::warn!("line {line} of {file}: {reason}");
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { file: file.to_owned(), line, reason });
        }
    }
}

/// Turns a log line into the event sent to the hub.
pub struct Encoder {
    sensor_json: String,
    kind_json: String,
    sensor: String,
    drop: Vec<String>,
}

/// What became of a line.
#[derive(Debug, PartialEq)]
pub enum Encoded {
    /// The wire line; `lossy` when invalid UTF-8 was replaced.
    Event { wire: Vec<u8>, lossy: bool },
    NotJson(String),
}

impl Encoder {
    pub fn new(sensor: &str, kind: &str, drop: &[String]) -> Encoder {
        Encoder {
            sensor_json: serde_json::to_string(sensor).expect("a string serialises"),
            kind_json: serde_json::to_string(kind).expect("a string serialises"),
            sensor: sensor.to_owned(),
            drop: drop.to_vec(),
        }
    }

    pub fn encode(&self, bytes: &[u8], fingerprint: &str, offset: u64) -> Encoded {
        let (text, lossy) = match std::str::from_utf8(bytes) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), false),
            Err(_) => (String::from_utf8_lossy(bytes), true),
        };
        let text = text.trim();
        let event: String = if self.drop.is_empty() {
            // Checked, then sent as written.
            match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) if text.starts_with('{') => text.to_owned(),
                Ok(_) => return Encoded::NotJson("a JSON value but not an object".into()),
                Err(e) => return Encoded::NotJson(format!("not JSON ({e})")),
            }
        } else {
            // The other fields' values go out as logged (not parsed and printed again).
            if !text.starts_with('{') {
                return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                    Ok(_) => Encoded::NotJson("a JSON value but not an object".into()),
                    Err(e) => Encoded::NotJson(format!("not JSON ({e})")),
                };
            }
            match serde_json::from_str::<std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>>(text) {
                Ok(mut m) => {
                    for f in &self.drop {
                        m.remove(f);
                    }
                    serde_json::to_string(&m).expect("raw values serialise")
                }
                Err(e) => return Encoded::NotJson(format!("not JSON ({e})")),
            }
        };
        let key = event_key(&self.sensor, fingerprint, offset);
        let mut wire = Vec::with_capacity(event.len() + 160);
        wire.extend_from_slice(b"{\"key\":\"");
        wire.extend_from_slice(key.as_bytes());
        wire.extend_from_slice(b"\",\"sensor\":");
        wire.extend_from_slice(self.sensor_json.as_bytes());
        wire.extend_from_slice(b",\"kind\":");
        wire.extend_from_slice(self.kind_json.as_bytes());
        wire.extend_from_slice(b",\"event\":");
        wire.extend_from_slice(event.as_bytes());
        wire.push(b'}');
        Encoded::Event { wire, lossy }
    }
}

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep following the log until stopped.
    Follow,
    /// Ship what the log holds now, then return.
    Once,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("the hub refuses this shipper: {0} (check --token and --feed)")]
    Refused(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Run the shipper until the log is shipped (`Once`) or `stop` is set (`Follow`).
pub fn run(config: &Config, mode: Mode, stop: &AtomicBool) -> Result<Stats, Error> {
    let client = Client::new(&config.hub, &config.feed, &config.token, Duration::from_secs(config.timeout_secs))
        .map_err(Error::Config)?;
    let mut spool = Spool::open(&config.spool, config.spool_max_bytes, config.sync)
        .map_err(io(format!("spool {}", config.spool.display())))?;
    let mut tailer = match spool.read_position() {
        Some(p) => {
            tracing::info!("resuming {} after line {} of {}", config.log.display(), p.line, p.file);
            Tailer::resume(&config.log, p).map_err(io(format!("log {}", config.log.display())))?
        }
        None => Tailer::new(&config.log),
    };
    if !spool.is_empty() {
        tracing::info!("{} events in the spool from the last run: sending them first", spool.unacked_records());
    }
    tracing::info!("shipping {} as sensor `{}` to {}", config.log.display(), config.sensor, client.url());
    let encoder = Encoder::new(&config.sensor, &config.kind, &config.drop_fields);
    let mut stats = Stats::default();
    let mut backoff = Backoff::new(Duration::from_millis(config.backoff_initial_ms), Duration::from_millis(config.backoff_max_ms));
    let mut next_send = Instant::now();
    let mut batch_events = config.batch_events;
    let poll = Duration::from_millis(config.poll_ms);
    let mut last_report = Instant::now();
    let mut was_full = false;

    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Read while the spool has room; while the hub answers, only a few batches ahead.
        let hub_away = backoff.failures() > 0;
        let at_end;
        let full = spool.is_full();
        if full && !was_full {
            tracing::warn!(
                "spool full ({} bytes unacknowledged): reading paused until the hub takes events",
                spool.unacked_bytes()
            );
        }
        was_full = full;
        if !full && (hub_away || spool.unacked_records() < 4 * batch_events as u64) {
            let want = (4 * batch_events) as u64;
            let mut failed: Option<std::io::Error> = None;
            let polled = tailer
                .poll(want, &mut |line: &Line, pos: &Position| {
                    if failed.is_some() {
                        return;
                    }
                    if let Err(e) = ship_line(&encoder, &mut spool, &mut stats, line, pos) {
                        failed = Some(e);
                    }
                })
                .map_err(io(format!("reading {}", config.log.display())))?;
            if let Some(e) = failed {
                return Err(io(format!("spool {}", config.spool.display()))(e));
            }
            at_end = polled.at_end;
            if polled.lines > 0 {
                if let Some(pos) = tailer.position() {
                    spool.commit(pos).map_err(io(format!("spool {}", config.spool.display())))?;
                }
            }
        } else {
            at_end = false;
        }

        // Send while there is something to send and the backoff allows.
        let mut sent_any = false;
        if !spool.is_empty() && Instant::now() >= next_send {
            let batch = spool
                .next_batch(batch_events, config.batch_bytes)
                .map_err(io(format!("spool {}", config.spool.display())))?;
            if !batch.is_empty() {
                stats.requests += 1;
                match client.send(batch.body.clone()) {
                    Sent::Acked(reply) => {
                        stats.accepted += reply.accepted;
                        stats.duplicates += reply.duplicates;
                        for r in &reply.rejected {
                            stats.refused += 1;
                            let line = batch.sources.get(r.line.saturating_sub(1)).map_or(0, |s| s.line);
                            stats.problem(&config.log.display().to_string(), line, format!("refused by the hub: {} ({})", r.message, r.code));
                        }
                        spool.ack(&batch).map_err(io(format!("spool {}", config.spool.display())))?;
                        if backoff.failures() > 0 {
                            tracing::info!("hub reachable again; sending the spool ({} events)", spool.unacked_records());
                        }
                        backoff.reset();
                        sent_any = true;
                    }
                    Sent::TooLarge if batch.len() > 1 => {
                        batch_events = (batch.len() / 2).max(1);
                        tracing::warn!("the hub found a batch of {} events too large: sending {batch_events} at a time", batch.len());
                    }
                    Sent::TooLarge => {
                        stats.refused += 1;
                        let line = batch.sources[0].line;
                        stats.problem(&config.log.display().to_string(), line, "refused by the hub: the event alone is over its size limit".into());
                        spool.ack(&batch).map_err(io(format!("spool {}", config.spool.display())))?;
                    }
                    Sent::Refused(why) => {
                        stats.failed_requests += 1;
                        if mode == Mode::Once {
                            return Err(Error::Refused(why));
                        }
                        let wait = backoff.next_delay().max(Duration::from_secs(5));
                        tracing::error!("the hub refuses this shipper: {why}; check the token and feed (retry in {:.1} s)", wait.as_secs_f64());
                        next_send = Instant::now() + wait;
                    }
                    Sent::Retry { why, after } => {
                        stats.failed_requests += 1;
                        let wait = backoff.next_delay().max(after.unwrap_or_default());
                        tracing::warn!(
                            "hub not reached ({why}); {} events wait in the spool, retry {} in {:.1} s",
                            spool.unacked_records(),
                            backoff.failures(),
                            wait.as_secs_f64()
                        );
                        next_send = Instant::now() + wait;
                    }
                }
            }
        }

        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            report(&stats, &spool, tailer.position());
        }
        if mode == Mode::Once && at_end && spool.is_empty() {
            break;
        }
        if sent_any || (!at_end && !spool.is_full()) {
            continue;
        }
        // Nothing to do until the log grows or the next try is due.
        let until_send = next_send.saturating_duration_since(Instant::now());
        let wait = if spool.is_empty() { poll } else { poll.min(until_send) };
        std::thread::sleep(wait.max(Duration::from_millis(1)));
    }
    stats.tail = tailer.stats().clone();
    report(&stats, &spool, tailer.position());
    Ok(stats)
}

/// Largest event line the hub accepts: an event of [`tail::MAX_LINE`] plus its envelope (the
/// hub's `MAX_LINE_BYTES`, kept equal so that what is shipped is never refused for size).
pub const MAX_WIRE: usize = tail::MAX_LINE + 4 * 1024;

fn ship_line(encoder: &Encoder, spool: &mut Spool, stats: &mut Stats, line: &Line, pos: &Position) -> std::io::Result<()> {
    stats.lines += 1;
    if line.bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    if line.cut {
        stats.too_large += 1;
        stats.problem(&pos.file, line.number, format!("line longer than {} bytes: not shipped", tail::MAX_LINE));
        return Ok(());
    }
    match encoder.encode(line.bytes, &pos.fingerprint, line.start) {
        Encoded::Event { wire, lossy } => {
            if wire.len() > MAX_WIRE.min(spool::MAX_RECORD) {
                // Only when invalid UTF-8 replaced grew the line past what the hub takes.
                stats.too_large += 1;
                stats.problem(&pos.file, line.number, format!("event of {} bytes: over the hub's limit, not shipped", wire.len()));
                return Ok(());
            }
            if lossy {
                stats.invalid_utf8 += 1;
                stats.problem(&pos.file, line.number, "invalid UTF-8, shipped with replacement characters".into());
            }
            spool.push(&Source::from_position(pos), &wire)?;
            stats.spooled += 1;
        }
        Encoded::NotJson(why) => {
            stats.not_json += 1;
            stats.problem(&pos.file, line.number, format!("{why}; line skipped"));
        }
    }
    Ok(())
}

fn report(stats: &Stats, spool: &Spool, pos: Option<&Position>) {
    let at = pos.map(|p| format!("line {} of {}", p.line, p.file)).unwrap_or_else(|| "no file yet".into());
    tracing::info!(
        "read {} lines ({at}); hub stored {} new, {} already held, {} refused; {} not JSON; spool: {} events",
        stats.lines,
        stats.accepted,
        stats.duplicates,
        stats.refused,
        stats.not_json,
        spool.unacked_records()
    );
}

/// Read a config file (TOML, the keys of [`Config`], optionally under `[sensor]`).
pub fn load_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: toml::Value = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let table = match value.get("sensor") {
        Some(t) if t.is_table() => t.clone(),
        _ => value,
    };
    table.try_into().map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
