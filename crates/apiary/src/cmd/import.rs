//! `apiary import`: bulk imports. Today: Cowrie JSON logs, offline into a data directory or
//! through a hub. The reading is `apiary_ingest::cowrie`; this file only moves reports to a sink.
//!
//! Shape of a run: one thread reads and parses the files and derives reports in batches; the
//! calling thread writes each batch (to the store, or as a POST to the hub) while the next one is
//! parsed. A bounded channel between them keeps memory flat.

use super::admin::split_feed;
use super::store_url::StoreUrl;
use super::client::{Hub, HubError, PublishReply};
use anyhow::{bail, Context};
use apiary_ingest::cowrie::{self, Assembler, DeriveOptions, ProblemKind, ReadOptions, ReadStats};
use apiary_ingest::Report;
use apiary_store::{NewFeed, NewSighting, Store, StoreError};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub kind: ImportKind,
}

#[derive(Subcommand, Debug)]
pub enum ImportKind {
    /// Import Cowrie JSON logs (cowrie.json, cowrie.json.YYYY-MM-DD, T-Pot's cowrie logs).
    Cowrie(CowrieArgs),
    /// Import feed files (blocklists, abuse.ch CSVs, Spamhaus DROP, CSV, JSON lines, STIX, MISP).
    Feed(super::import_feed::FeedArgs),
    /// Import honeypot logs of any kind (cowrie, dionaea) as sightings.
    Honeypot(super::import_honeypot::HoneypotArgs),
    /// Import Dionaea JSON logs (log_json output): `import honeypot --kind dionaea`.
    Dionaea(super::import_honeypot::DionaeaArgs),
}

/// Import Cowrie JSON logs into a feed.
#[derive(Args, Debug)]
#[command(
    after_help = concat!("Import Cowrie JSON logs into a feed, offline into a data directory or through a hub.\n\n\
Events are assembled into sessions (per sensor and session id). Each session gives a sighting\n\
of the attacker's address (port = the honeypot's port, protocol ssh/telnet, observed from the\n\
session's start to its end, tags from how deep it went: scanner, bruteforce, login, commands,\n\
download, upload, tunnel), plus its download URLs, their hosts and payload SHA-256 hashes. The\n\
session's details (credentials, commands, client version, HASSH, ...) are kept with the\n\
attacker's sighting. Importing the same file again adds nothing: every sighting carries a key\n\
made of sensor, session, kind and value.\n\n\
Offline (the default), the import writes into --data, also while a hub serves it; the feed is\n\
created if missing, and so is its owner user (without a token). With --hub, it publishes\n\
through the hub's API with --token (write scope, as the feed's owner or an admin) and creates\n\
the feed there if missing.\n\n\
Lines that are not JSON, invalid UTF-8 (read with replacement characters) and values the\n\
indicator core refuses are counted and listed with their line numbers; the rest is imported.\n\
Exit status: 0 when the run completed (even with rejected lines), 1 when it stopped part way\n\
(what was written stays written), 2 when it could not start.\n\n",
        "Examples:
  apiary import cowrie --feed ops/honeypots /var/log/cowrie/cowrie.json*
  apiary import cowrie --feed ops/honeypots --data /srv/apiary cowrie.json.2024-05-01 --json
  apiary import cowrie --feed ops/honeypots --hub https://hub.example --token $TOKEN cowrie.json
  apiary import cowrie --feed ops/tpot --sensor tpot-fra1 cowrie.json

Import all of a sensor's rotated files in one run: a session that spans midnight is then
assembled whole (imported separately, its two halves become two sightings with the same key,
and the second is counted as a duplicate).")
)]
pub struct CowrieArgs {
    /// The feed to import into, `USER/FEED`.
    #[arg(long, value_name = "USER/FEED")]
    pub feed: String,
    /// Cowrie JSON log files, read in the order given.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Import offline into this data directory [env: APIARY_DATA] [default: ./apiary-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Import offline into this store: sqlite:DIR or postgres://USER@HOST/DB [env: APIARY_STORE].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Import through the hub at this URL instead of into a data directory [env: APIARY_HUB].
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// API token for --hub.
    #[arg(long, value_name = "TOKEN", env = "APIARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Name the sensor for every event (default: each event's `sensor` field; events without
    /// one use the file name up to its first dot).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Sightings per write to the store (or per POST to a hub, at most 2,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// How many problems (rejected lines, refused values) to list in the summary; all are counted.
    #[arg(long, default_value_t = 20)]
    pub show_problems: usize,
    /// Never draw a progress bar (it is drawn only when standard error is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Do not store the sessions themselves (only the sightings derived from them); the hub's
    /// session, attacker and campaign views then know nothing of this import.
    #[arg(long)]
    pub no_sessions: bool,
}

pub fn run(a: ImportArgs) -> anyhow::Result<ExitCode> {
    match a.kind {
        ImportKind::Cowrie(c) => run_cowrie(c),
        ImportKind::Feed(f) => super::import_feed::run(f),
        ImportKind::Honeypot(h) => super::import_honeypot::run(h),
        ImportKind::Dionaea(d) => super::import_honeypot::run_dionaea(d),
    }
}

/// Where the sightings go.
pub(super) enum Target {
    Data(StoreUrl),
    Hub { url: String, token: Option<String> },
}

/// Flags given on the command line beat the environment; `--hub` and `--data` together is an error.
fn target(a: &CowrieArgs) -> anyhow::Result<Target> {
    resolve_target(&a.hub, &a.data, &a.store, &a.token)
}

/// [`target`] for any import command's `--hub`, `--data` and `--token`.
pub(super) fn resolve_target(
    hub: &Option<String>,
    data: &Option<PathBuf>,
    store: &Option<String>,
    token: &Option<String>,
) -> anyhow::Result<Target> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let offline = data.is_some() || store.is_some();
    let hub = match (hub, offline) {
        (Some(_), true) => bail!("give either --data/--store (import offline) or --hub (import through a hub), not both"),
        (Some(h), false) => Some(h.clone()),
        (None, true) => None,
        (None, false) => env("APIARY_HUB"),
    };
    Ok(match hub {
        Some(url) => Target::Hub { url, token: token.clone() },
        None => Target::Data(super::store_url::resolve(store.as_deref(), data.as_deref(), None)?),
    })
}

/// The end-of-run summary (`--json` prints it as is).
#[derive(Debug, Serialize, Default)]
pub struct Summary {
    pub mode: &'static str,
    pub feed: String,
    pub files: Vec<String>,
    pub created_user: bool,
    pub created_feed: bool,
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    pub sessions: u64,
    pub sessions_unclosed: u64,
    /// Sightings derived from the sessions.
    pub sightings: u64,
    /// Distinct values among them.
    pub indicators: u64,
    /// Sightings stored now.
    pub stored: u64,
    /// Sightings already stored by an earlier import (same key).
    pub duplicates: u64,
    /// Values refused (by the core while deriving, or by the hub).
    pub values_rejected: u64,
    pub lines_rejected: u64,
    pub lines_invalid_utf8: u64,
    pub bad_timestamps: u64,
    pub unknown_eventids: BTreeMap<String, u64>,
    pub problems_by_kind: BTreeMap<ProblemKind, u64>,
    pub problems: Vec<cowrie::Problem>,
    pub seconds: f64,
    pub events_per_second: f64,
    /// Sessions stored (new, replaced by a more complete version, already stored); absent with
    /// `--no-sessions` and for feed imports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_written: Option<apiary_store::SessionsOutcome>,
    /// Why the run stopped part way, if it did.
    pub error: Option<String>,
}

/// What the reader thread hands back.
struct ReadOutcome {
    stats: ReadStats,
    sightings: u64,
    indicators: u64,
    io_error: Option<String>,
}

fn run_cowrie(a: CowrieArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (owner, feed) = split_feed(&a.feed)?;
    let target = target(&a)?;
    // Every file must be readable before anything is written.
    let mut total_bytes = 0u64;
    for f in &a.files {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", f.display());
        }
        std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        total_bytes += meta.len();
    }
    let progress = (!a.no_progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(total_bytes);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:40}] {percent}% {bytes_per_sec} eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb
    });

    let mut summary = Summary {
        feed: a.feed.clone(),
        files: a.files.iter().map(|f| f.display().to_string()).collect(),
        ..Summary::default()
    };
    let read_opts = ReadOptions { sensor: a.sensor.clone(), max_problems: a.show_problems };
    let batch = a.batch as usize;

    let (written, reader) = match target {
        Target::Data(url) => {
            summary.mode = "offline";
            let store = url.open()?;
            let rt = super::admin::runtime()?;
            let (feed_id, reporter_id) = rt.block_on(ensure_feed(store.as_ref(), &owner, &feed, COWRIE_FEED, &mut summary))?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(2);
            let reader =
                spawn_reader(a.files.clone(), read_opts, batch, !a.no_sessions, progress.clone(), move |b| tx.blocking_send(b).is_ok());
            let written = rt.block_on(write_cowrie_batches(store, rx, feed_id, reporter_id));
            (written, reader)
        }
        Target::Hub { url, token } => {
            summary.mode = "hub";
            let hub = Hub::new(&url, token)?;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
            let reader =
                spawn_reader(a.files.clone(), read_opts, batch, !a.no_sessions, progress.clone(), move |b| tx.send(b).is_ok());
            let mut w = Written::default();
            let post_size = batch.min(2_000);
            'outer: for b in rx.iter() {
                for chunk in b.reports.chunks(post_size) {
                    if let Err(e) = post(&hub, &owner, &feed, COWRIE_FEED, chunk, &mut w, &mut summary, a.show_problems) {
                        w.error = Some(e.to_string());
                        break 'outer;
                    }
                }
                if !b.sessions.is_empty() {
                    if let Err(e) = super::sessions::post_sessions(&hub, &owner, &feed, &b.sessions, &mut w) {
                        w.error = Some(e.to_string());
                        break 'outer;
                    }
                }
            }
            (w, reader)
        }
    };
    let read = reader.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }

    let st = read.stats;
    summary.bytes = st.bytes;
    summary.lines = st.lines;
    summary.events = st.events;
    summary.sessions = st.sessions;
    summary.sessions_unclosed = st.sessions_unclosed;
    summary.sightings = read.sightings;
    summary.indicators = read.indicators;
    summary.stored = written.stored;
    summary.duplicates = written.duplicates;
    summary.sessions_written = (!a.no_sessions).then_some(written.sessions);
    summary.values_rejected += st.problems_by_kind.get(&ProblemKind::RejectedValue).copied().unwrap_or(0) + written.refused;
    summary.lines_rejected = st.lines_rejected;
    summary.lines_invalid_utf8 = st.lines_invalid_utf8;
    summary.bad_timestamps = st.bad_timestamps;
    summary.unknown_eventids = st.unknown_eventids;
    for (k, n) in st.problems_by_kind {
        *summary.problems_by_kind.entry(k).or_insert(0) += n;
    }
    let mut problems = st.problems;
    problems.append(&mut summary.problems);
    problems.truncate(a.show_problems);
    summary.problems = problems;
    summary.error = written.error.or(read.io_error);
    summary.seconds = started.elapsed().as_secs_f64();
    summary.events_per_second = if summary.seconds > 0.0 { summary.events as f64 / summary.seconds } else { 0.0 };

    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.error.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// What the reader hands over: reports (sightings to be), and the sessions they came from.
pub(super) struct Batch {
    pub reports: Vec<Report>,
    pub sessions: Vec<apiary_core::sessions::SessionRecord>,
}

/// Read every file on a thread of its own; hand batches of reports (and, with `sessions`, the
/// sessions' records) to `sink` (false = stop).
fn spawn_reader(
    files: Vec<PathBuf>,
    opts: ReadOptions,
    batch: usize,
    sessions: bool,
    progress: Option<indicatif::ProgressBar>,
    mut sink: impl FnMut(Batch) -> bool + Send + 'static,
) -> std::thread::JoinHandle<ReadOutcome> {
    std::thread::Builder::new()
        .name("cowrie-reader".into())
        .spawn(move || {
            let max = opts.max_problems;
            let mut asm = Assembler::new(opts);
            let derive_opts = DeriveOptions::default();
            let mut pending = Batch { reports: Vec::with_capacity(batch), sessions: Vec::new() };
            let mut rejected: Vec<cowrie::Problem> = Vec::new();
            let mut rejected_count = 0u64;
            let mut sightings = 0u64;
            let mut seen: HashSet<u64> = HashSet::new();
            let mut open = true;
            let mut io_error = None;
            let mut on_session = |s: cowrie::Session, pending: &mut Batch| {
                let d = cowrie::reports(&s, &derive_opts);
                if sessions {
                    // The attacker's report (the one with the session's depth) has the address
                    // the core normalised: no second parse.
                    let attacker = d
                        .reports
                        .iter()
                        .find(|r| r.extra.get("depth").is_some() && r.indicator.itype.is_address())
                        .map(|r| r.indicator.value.clone());
                    pending.sessions.push(cowrie::record::record(&s, attacker));
                }
                for (what, value, why) in d.rejected {
                    rejected_count += 1;
                    if rejected.len() < max {
                        rejected.push(cowrie::Problem {
                            file: s.first_seen_at.0.clone(),
                            line: s.first_seen_at.1,
                            kind: ProblemKind::RejectedValue,
                            message: format!("session {} ({}): `{what}` {value:?} refused: {why}", s.session, s.sensor),
                        });
                    }
                }
                for r in d.reports {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    r.indicator.value.hash(&mut h);
                    seen.insert(h.finish());
                    sightings += 1;
                    pending.reports.push(r);
                }
            };
            let mut done_bytes = 0u64;
            for path in &files {
                let mut consumed = 0u64;
                let res = asm.read_path(
                    path,
                    &mut |n| {
                        consumed = n;
                        if let Some(pb) = &progress {
                            pb.set_position(done_bytes + n);
                        }
                    },
                    &mut |s| {
                        on_session(s, &mut pending);
                        if pending.reports.len() >= batch && open {
                            let next = Batch { reports: Vec::with_capacity(batch), sessions: Vec::new() };
                            open = sink(std::mem::replace(&mut pending, next));
                        }
                    },
                );
                done_bytes += consumed;
                if let Err(e) = res {
                    io_error = Some(format!("reading {} failed: {e}", path.display()));
                    break;
                }
                if !open {
                    break;
                }
            }
            if open && io_error.is_none() {
                asm.finish(&mut |s| on_session(s, &mut pending));
            }
            if open && !(pending.reports.is_empty() && pending.sessions.is_empty()) {
                sink(pending);
            }
            let mut stats = asm.into_stats();
            *stats.problems_by_kind.entry(ProblemKind::RejectedValue).or_insert(0) += rejected_count;
            stats.problems_by_kind.retain(|_, n| *n > 0);
            stats.problems.extend(rejected);
            stats.problems.truncate(max);
            ReadOutcome { stats, sightings, indicators: seen.len() as u64, io_error }
        })
        .expect("spawn the reader thread")
}

#[derive(Default)]
pub(super) struct Written {
    pub stored: u64,
    pub duplicates: u64,
    /// Reports the hub's rules refused (a time in the future, an over-long identifier).
    pub refused: u64,
    pub sessions: apiary_store::SessionsOutcome,
    pub error: Option<String>,
}

impl Written {
    /// Count one finished append (of those in flight); the first failure is kept.
    pub(super) fn merge(&mut self, res: Result<Result<(u64, u64, u64), StoreError>, tokio::task::JoinError>) {
        match res {
            Ok(Ok((stored, duplicates, refused))) => {
                self.stored += stored;
                self.duplicates += duplicates;
                self.refused += refused;
            }
            Ok(Err(e)) => {
                self.error.get_or_insert_with(|| format!("writing to the store failed: {e}"));
            }
            Err(e) => {
                self.error.get_or_insert_with(|| format!("a write to the store did not finish: {e}"));
            }
        }
    }
}

/// The description a feed gets when a Cowrie import creates it.
const COWRIE_FEED: &str = "Imported from Cowrie honeypot logs";

/// Find the feed, creating it (and its owner) if missing. Returns (feed id, reporter id).
pub(super) async fn ensure_feed(
    store: &dyn Store,
    owner: &str,
    name: &str,
    description: &str,
    summary: &mut Summary,
) -> anyhow::Result<(i64, i64)> {
    let user = match store.get_user(owner).await? {
        Some(u) => u,
        None => match store.create_user(owner, false).await {
            Ok(u) => {
                summary.created_user = true;
                u
            }
            // Created meanwhile by someone else (a hub on the same data).
            Err(StoreError::Conflict(_)) => store.get_user(owner).await?.context("user vanished")?,
            Err(e) => return Err(e).with_context(|| format!("cannot create user {owner}")),
        },
    };
    let feed = match store.get_feed(owner, name).await? {
        Some(f) => f,
        None => {
            let new = NewFeed {
                owner: owner.to_owned(),
                name: name.to_owned(),
                description: Some(description.to_owned()),
                ..NewFeed::default()
            };
            match store.create_feed(new).await {
                Ok(f) => {
                    summary.created_feed = true;
                    f
                }
                Err(StoreError::Conflict(_)) => store.get_feed(owner, name).await?.context("feed vanished")?,
                Err(e) => return Err(e).with_context(|| format!("cannot create feed {owner}/{name}")),
            }
        }
    };
    Ok((feed.id, user.id))
}

/// Write every batch `rx` delivers to the store, two appends in flight (the store's writer
/// commits one while the next is queued); stops at the first failure.
pub(super) async fn write_batches(
    store: std::sync::Arc<dyn Store>,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Report>>,
    feed_id: i64,
    reporter_id: i64,
) -> Written {
    let mut w = Written::default();
    let mut inflight = tokio::task::JoinSet::new();
    while let Some(b) = rx.recv().await {
        while inflight.len() >= 2 {
            if let Some(res) = inflight.join_next().await {
                w.merge(res);
            }
        }
        if w.error.is_some() {
            break;
        }
        let store = store.clone();
        inflight.spawn(async move { append(store.as_ref(), b, feed_id, reporter_id).await });
    }
    drop(rx);
    while let Some(res) = inflight.join_next().await {
        w.merge(res);
    }
    w
}

/// [`write_batches`] for a Cowrie import: each batch's sightings and sessions are appended
/// together (the store's writer commits both in one group), two batches in flight.
async fn write_cowrie_batches(
    store: std::sync::Arc<dyn Store>,
    mut rx: tokio::sync::mpsc::Receiver<Batch>,
    feed_id: i64,
    reporter_id: i64,
) -> Written {
    let mut w = Written::default();
    let mut inflight = tokio::task::JoinSet::new();
    let merge = |w: &mut Written, res: Result<(Result<(u64, u64, u64), StoreError>, Result<apiary_store::SessionsOutcome, StoreError>), tokio::task::JoinError>| match res {
        Ok((sightings, sessions)) => {
            w.merge(Ok(sightings));
            match sessions {
                Ok(o) => w.sessions.add(o),
                Err(e) => {
                    w.error.get_or_insert_with(|| format!("writing sessions to the store failed: {e}"));
                }
            }
        }
        Err(e) => w.merge(Err(e)),
    };
    while let Some(b) = rx.recv().await {
        while inflight.len() >= 2 {
            if let Some(res) = inflight.join_next().await {
                merge(&mut w, res);
            }
        }
        if w.error.is_some() {
            break;
        }
        let store = store.clone();
        inflight.spawn(async move {
            let sessions: Vec<apiary_store::NewSession> =
                b.sessions.into_iter().map(|record| apiary_store::NewSession { feed_id, record }).collect();
            let (a, s) = tokio::join!(append(store.as_ref(), b.reports, feed_id, reporter_id), store.append_sessions(sessions));
            (a, s)
        });
    }
    drop(rx);
    while let Some(res) = inflight.join_next().await {
        merge(&mut w, res);
    }
    w
}

/// Append one batch; returns (stored, duplicates, refused by the hub's rules).
pub(super) async fn append(store: &dyn Store, batch: Vec<Report>, feed_id: i64, reporter_id: i64) -> Result<(u64, u64, u64), StoreError> {
    let now = Utc::now();
    let mut refused = 0u64;
    let sightings: Vec<NewSighting> = batch
        .into_iter()
        .filter_map(|r| match apiary_server::intake::report_sighting(r, feed_id, reporter_id, now) {
            Ok(s) => Some(s),
            Err(e) => {
                refused += 1;
                tracing::debug!("import: report refused: {} ({})", e.message, e.code);
                None
            }
        })
        .collect();
    if sightings.is_empty() {
        return Ok((0, 0, refused));
    }
    let outcomes = store.append_sightings(sightings).await?;
    let dup = outcomes.iter().filter(|o| o.duplicate).count() as u64;
    Ok((outcomes.len() as u64 - dup, dup, refused))
}

/// A report as a native publish item. The session context goes in as extra top-level fields,
/// which the hub keeps with the sighting, as an offline import does.
fn to_item(r: &Report) -> Value {
    let mut item = match &r.extra {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let native = json!({
        "indicator": r.indicator.value,
        "itype": r.indicator.itype.as_str(),
        "tags": r.tags,
        "portlist": r.port.map(|p| vec![p]).unwrap_or_default(),
        "protocol": r.protocol,
        "description": r.description,
        "firsttime": r.observed_at.map(fmt),
        "lasttime": r.observed_until.map(fmt),
        "sensor": r.sensor,
        "count": r.count,
        "idempotency_key": r.idempotency_key,
    });
    if let (Value::Object(m), Value::Object(n)) = (&mut item, native) {
        for (k, v) in n {
            if !v.is_null() {
                m.insert(k, v);
            }
        }
    }
    item
}

/// POST one chunk, creating the feed on 404, waiting on 429/503, halving on 413.
#[allow(clippy::too_many_arguments)]
pub(super) fn post(
    hub: &Hub,
    owner: &str,
    feed: &str,
    description: &str,
    chunk: &[Report],
    w: &mut Written,
    summary: &mut Summary,
    max_problems: usize,
) -> anyhow::Result<()> {
    let mut body = Vec::with_capacity(chunk.len() * 512);
    for r in chunk {
        serde_json::to_writer(&mut body, &to_item(r))?;
        body.push(b'\n');
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match hub.publish_ndjson(owner, feed, body.clone()) {
            Ok(reply) => {
                record_reply(&reply, hub.base(), chunk, w, summary, max_problems);
                return Ok(());
            }
            Err(HubError::Status { status: 404, .. }) if !summary.created_feed && attempt <= 2 => {
                match hub.create_feed(owner, feed, Some(description)) {
                    Ok(_) => summary.created_feed = true,
                    Err(HubError::Status { status: 409, .. }) => {}
                    Err(e) => bail!("feed {owner}/{feed} does not exist on {} and cannot be created: {e}", hub.base()),
                }
            }
            Err(HubError::Status { status: 413, .. }) if chunk.len() > 1 => {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                post(hub, owner, feed, description, a, w, summary, max_problems)?;
                return post(hub, owner, feed, description, b, w, summary, max_problems);
            }
            Err(HubError::Status { status: 429 | 502 | 503 | 504, retry_after, .. }) if attempt <= 20 => {
                let wait = retry_after.map(Duration::from_secs).unwrap_or(Duration::from_millis(250 << attempt.min(5)));
                std::thread::sleep(wait.min(Duration::from_secs(30)));
            }
            Err(HubError::Transport { .. }) if attempt <= 3 => std::thread::sleep(Duration::from_secs(1)),
            Err(e) => bail!("publishing to {owner}/{feed} on {} failed: {e}", hub.base()),
        }
    }
}

fn record_reply(reply: &PublishReply, hub_name: &str, chunk: &[Report], w: &mut Written, summary: &mut Summary, max: usize) {
    w.stored += reply.accepted;
    w.duplicates += reply.duplicates;
    for r in &reply.rejected {
        summary.values_rejected += 1;
        *summary.problems_by_kind.entry(ProblemKind::RejectedValue).or_insert(0) += 1;
        if summary.problems.len() < max {
            let rep = r.index.and_then(|i| chunk.get(i as usize));
            // The file and line the value came from, when the source had lines (a feed file).
            let (file, line) = match rep.and_then(|x| x.source.as_ref()) {
                Some((file, line)) => (file.to_string(), *line),
                None => (hub_name.to_owned(), 0),
            };
            summary.problems.push(cowrie::Problem {
                file,
                line,
                kind: ProblemKind::RejectedValue,
                message: format!(
                    "{:?} refused by the hub: {} ({}){}",
                    r.input.clone().or_else(|| rep.map(|x| x.indicator.value.clone())).unwrap_or_default(),
                    r.message.as_deref().unwrap_or(""),
                    r.code.as_deref().unwrap_or(""),
                    rep.and_then(|x| x.extra["session"].as_str()).map(|s| format!(", session {s}")).unwrap_or_default()
                ),
            });
        }
    }
}

pub(super) fn print_summary(s: &Summary) {
    let thousands = |n: u64| {
        let d = n.to_string();
        let mut out = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let where_ = if s.mode == "hub" { "through the hub" } else { "offline" };
    println!("imported {} file(s) into {} {where_}", s.files.len(), s.feed);
    if s.created_user {
        println!("  created user {} (no token yet: apiary token create --user ...)", s.feed.split('/').next().unwrap_or(""));
    }
    if s.created_feed {
        println!("  created feed {}", s.feed);
    }
    println!(
        "  events read   {:>12}  ({} lines, {} bytes)",
        thousands(s.events),
        thousands(s.lines),
        thousands(s.bytes)
    );
    println!("  sessions      {:>12}  ({} without a close event)", thousands(s.sessions), thousands(s.sessions_unclosed));
    println!("  sightings     {:>12}  ({} distinct indicators)", thousands(s.sightings), thousands(s.indicators));
    println!("  stored        {:>12}", thousands(s.stored));
    println!("  duplicates    {:>12}  (already imported)", thousands(s.duplicates));
    if let Some(o) = &s.sessions_written {
        println!(
            "  sessions kept {:>12}  ({} replaced by a more complete version, {} already stored)",
            thousands(o.stored),
            thousands(o.replaced),
            thousands(o.duplicates)
        );
    }
    println!("  lines rejected{:>12}", thousands(s.lines_rejected));
    if s.lines_invalid_utf8 > 0 {
        println!("  invalid UTF-8 {:>12}  (read with replacement characters)", thousands(s.lines_invalid_utf8));
    }
    if s.bad_timestamps > 0 {
        println!("  bad timestamps{:>12}", thousands(s.bad_timestamps));
    }
    if s.values_rejected > 0 {
        println!("  values refused{:>12}", thousands(s.values_rejected));
    }
    if !s.unknown_eventids.is_empty() {
        let list: Vec<String> = s.unknown_eventids.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        println!("  unknown eventids kept: {}", list.join(", "));
    }
    println!("  time          {:>11.2}s  ({:.0} events/s)", s.seconds, s.events_per_second);
    let total: u64 = s.problems_by_kind.values().sum();
    if total > 0 {
        let kinds: Vec<String> = s.problems_by_kind.iter().map(|(k, n)| format!("{} {n}", k.as_str())).collect();
        println!("problems: {} ({})", thousands(total), kinds.join(", "));
        for p in &s.problems {
            println!("  {}", super::terminal_safe(&p.to_string()));
        }
        if (s.problems.len() as u64) < total {
            println!("  ... {} more (raise --show-problems to list them)", total - s.problems.len() as u64);
        }
    }
    if let Some(e) = &s.error {
        println!("stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_becomes_a_native_item_with_its_context() {
        let ind = apiary_core::parse("192.0.2.7", None, &Default::default()).unwrap();
        let r = Report {
            indicator: ind,
            tags: vec!["bruteforce".into()],
            port: Some(2222),
            protocol: Some("ssh".into()),
            observed_at: Some(chrono::DateTime::parse_from_rfc3339("2022-07-17T16:52:55.41167Z").unwrap().with_timezone(&Utc)),
            observed_until: None,
            sensor: Some("s1".into()),
            description: None,
            count: 1,
            extra: json!({"session": "abc", "depth": "auth_attempt"}),
            idempotency_key: "k".into(),
            source: None,
        };
        let item = to_item(&r);
        assert_eq!(item["indicator"], "192.0.2.7");
        assert_eq!(item["portlist"], json!([2222]));
        assert_eq!(item["firsttime"], "2022-07-17T16:52:55.411670Z");
        assert_eq!(item["session"], "abc");
        assert_eq!(item["idempotency_key"], "k");
        assert!(item.get("lasttime").is_none() && item.get("description").is_none());
    }
}
