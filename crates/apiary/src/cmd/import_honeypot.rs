//! `apiary import honeypot --kind KIND` and `apiary import dionaea`: honeypot logs of any kind
//! in `apiary_ingest::honeypot::KINDS`, offline into a store or through a hub. The reading is
//! the kind's `Source`; the writing is the Cowrie import's sink in `import.rs`. One thread reads
//! and derives reports, the calling thread writes each batch while the next is read.

use super::admin::split_feed;
use super::client::Hub;
use super::import::{ensure_feed, post, print_summary, resolve_target, write_batches, Summary, Target, Written};
use anyhow::{bail, Context};
use apiary_ingest::honeypot::{self, ProblemKind, ReadOptions, ReadStats};
use apiary_ingest::Report;
use clap::Args;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Import honeypot logs of one kind into a feed.
#[derive(Args, Debug)]
#[command(after_help = "Import honeypot logs into a feed, offline into a data directory or through a hub.

Kinds: cowrie (cowrie.json*), dionaea (Dionaea's log_json output, dionaea.json*).
`apiary import cowrie` reads Cowrie logs with the sessions kept as well; this command reads any
kind through the same source interface and stores sightings.

Dionaea: the events of one attack share a connection_root; each gives a sighting of the
attacker's address (port = the honeypot's port, protocol = tcp/udp/tls, observed from the first
to the last event, tags from what happened: scanner, the service (smb, mssql, mysql, sip, ftp,
http, mqtt, dcerpc, ...), bruteforce for logins, commands, exploit when Dionaea names a
vulnerability, download and malware for captured files, udp-only when the address could be
spoofed), with credentials, commands and downloads kept in its details; each download gives its
URL (when recorded), the URL's host and the file's MD5. The sensor is --sensor, or the file name
up to its first dot.

Lines that are not JSON objects, or lack a connection id, are counted and listed with their line
numbers; the rest is imported. Importing a file again adds nothing (every sighting has a key of
sensor, connection root, its start and the value). Exit status: 0 when the run completed (even
with rejected lines), 1 when it stopped part way, 2 when it could not start.

Examples:
  apiary import dionaea --feed ops/dionaea /var/lib/dionaea/dionaea.json*
  apiary import honeypot --kind dionaea --feed ops/dionaea --sensor fra1 dionaea.json --json
  apiary import dionaea --feed ops/dionaea --hub https://hub.example --token $TOKEN dionaea.json")]
pub struct HoneypotArgs {
    /// The honeypot kind (cowrie, dionaea).
    #[arg(long, value_name = "KIND", value_parser = kind_name)]
    pub kind: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `apiary import dionaea`: `import honeypot --kind dionaea`.
#[derive(Args, Debug)]
#[command(after_help = "The same as `apiary import honeypot --kind dionaea` (see its --help).")]
pub struct DionaeaArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// The feed to import into, `USER/FEED` (created if missing, with its owner offline).
    #[arg(long, value_name = "USER/FEED")]
    pub feed: String,
    /// Log files, read in the order given.
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
    /// Name the sensor for every event (default: the log's own field, else the file name up
    /// to its first dot).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Sightings per write to the store (or per POST to a hub, at most 2,000).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// How many problems (rejected lines, refused values) to list in the summary; all are counted.
    #[arg(long, default_value_t = 20)]
    pub show_problems: usize,
}

fn kind_name(s: &str) -> Result<String, String> {
    honeypot::kind(s).map(|k| k.name.to_owned()).ok_or_else(|| format!("unknown kind `{s}`; kinds: {}", honeypot::names()))
}

pub fn run_dionaea(a: DionaeaArgs) -> anyhow::Result<ExitCode> {
    run(HoneypotArgs { kind: "dionaea".into(), common: a.common })
}

struct ReadOutcome {
    stats: ReadStats,
    sightings: u64,
    indicators: u64,
    io_error: Option<String>,
}

pub fn run(a: HoneypotArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let kind = honeypot::kind(&a.kind).context("unknown kind")?;
    let c = a.common;
    let (owner, feed) = split_feed(&c.feed)?;
    let target = resolve_target(&c.hub, &c.data, &c.store, &c.token)?;
    for f in &c.files {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", f.display());
        }
        std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
    }
    let description = format!("Imported from {} honeypot logs", kind.name);
    let mut summary = Summary { feed: c.feed.clone(), files: c.files.iter().map(|f| f.display().to_string()).collect(), ..Summary::default() };
    let opts = ReadOptions { sensor: c.sensor.clone(), max_problems: c.show_problems };
    let batch = c.batch as usize;
    let (written, reader) = match target {
        Target::Data(url) => {
            summary.mode = "offline";
            let store = url.open()?;
            let rt = super::admin::runtime()?;
            let (feed_id, reporter_id) = rt.block_on(ensure_feed(store.as_ref(), &owner, &feed, &description, &mut summary))?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Report>>(2);
            let reader = spawn_reader(kind, c.files.clone(), opts, batch, move |b| tx.blocking_send(b).is_ok());
            (rt.block_on(write_batches(store, rx, feed_id, reporter_id)), reader)
        }
        Target::Hub { url, token } => {
            summary.mode = "hub";
            let hub = Hub::new(&url, token)?;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Report>>(2);
            let reader = spawn_reader(kind, c.files.clone(), opts, batch, move |b| tx.send(b).is_ok());
            let mut w = Written::default();
            'outer: for b in rx.iter() {
                for chunk in b.chunks(batch.min(2_000)) {
                    if let Err(e) = post(&hub, &owner, &feed, &description, chunk, &mut w, &mut summary, c.show_problems) {
                        w.error = Some(e.to_string());
                        break 'outer;
                    }
                }
            }
            (w, reader)
        }
    };
    let read = reader.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
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
    summary.values_rejected += st.problems_by_kind.get(&ProblemKind::RejectedValue).copied().unwrap_or(0);
    summary.lines_rejected = st.lines_rejected;
    summary.lines_invalid_utf8 = st.lines_invalid_utf8;
    summary.bad_timestamps = st.bad_timestamps;
    summary.unknown_eventids = st.unknown_eventids;
    for (k, n) in st.problems_by_kind {
        *summary.problems_by_kind.entry(k).or_insert(0) += n;
    }
    let mut problems = st.problems;
    problems.append(&mut summary.problems);
    problems.truncate(c.show_problems);
    summary.problems = problems;
    summary.error = written.error.or(read.io_error);
    summary.seconds = started.elapsed().as_secs_f64();
    summary.events_per_second = if summary.seconds > 0.0 { summary.events as f64 / summary.seconds } else { 0.0 };
    if c.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.error.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn spawn_reader(
    kind: &'static honeypot::Kind,
    files: Vec<PathBuf>,
    opts: ReadOptions,
    batch: usize,
    mut sink: impl FnMut(Vec<Report>) -> bool + Send + 'static,
) -> std::thread::JoinHandle<ReadOutcome> {
    std::thread::Builder::new()
        .name(format!("{}-reader", kind.name))
        .spawn(move || {
            let mut source = (kind.new)(opts);
            let mut pending: Vec<Report> = Vec::with_capacity(batch);
            let mut seen: HashSet<String> = HashSet::new();
            let mut sightings = 0u64;
            let mut open = true;
            let mut io_error = None;
            let mut take = |r: Report, pending: &mut Vec<Report>, open: &mut bool| {
                sightings += 1;
                if !seen.contains(&r.indicator.value) {
                    seen.insert(r.indicator.value.clone());
                }
                pending.push(r);
                if pending.len() >= batch && *open {
                    *open = sink(std::mem::replace(pending, Vec::with_capacity(batch)));
                }
            };
            for path in &files {
                let file = match std::fs::File::open(path) {
                    Ok(f) => f,
                    Err(e) => {
                        io_error = Some(format!("cannot open {}: {e}", path.display()));
                        break;
                    }
                };
                let name = path.display().to_string();
                let sensor = honeypot::sensor_from_path(path, kind.name);
                let res = honeypot::read(source.as_mut(), file, &name, &sensor, &mut |_| {}, &mut |r| take(r, &mut pending, &mut open));
                if let Err(e) = res {
                    io_error = Some(format!("reading {} failed: {e}", path.display()));
                    break;
                }
                if !open {
                    break;
                }
            }
            if open && io_error.is_none() {
                source.finish(&mut |r| take(r, &mut pending, &mut open));
            }
            if open && !pending.is_empty() {
                sink(std::mem::take(&mut pending));
            }
            let mut stats = source.into_stats();
            stats.problems_by_kind.retain(|_, n| *n > 0);
            ReadOutcome { stats, sightings, indicators: seen.len() as u64, io_error }
        })
        .expect("spawn the reader thread")
}
