//! `apiary import feed` and `apiary pull`: feed files (and feed URLs) into a feed.
//!
//! The reading is `apiary_ingest::feeds` (one parser per format, every value through the
//! core); the writing is the Cowrie import's sink in `import.rs` (the store offline, or
//! batched POSTs to a hub). Shape of a run, as there: one thread reads and parses, the calling
//! thread writes each batch while the next one is read; a bounded channel keeps memory flat.

use super::admin::split_feed;
use super::client::Hub;
use super::import::{ensure_feed, post, resolve_target, write_batches, Summary as CowrieSummary, Target, Written};
use anyhow::{bail, Context};
use apiary_ingest::feeds::{self, Column, FeedReader, ReadOptions, ReadStats};
use apiary_ingest::Report;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What a feed import is told, shared by `import feed` and `pull`.
#[derive(Args, Debug, Clone)]
pub struct FeedTarget {
    /// The feed to import into, `USER/FEED` (created if missing, with its owner offline).
    #[arg(long, value_name = "USER/FEED")]
    pub feed: String,
    /// The file format: auto, text, netset, spamhaus-drop, spamhaus-drop-json, abusech-csv, csv,
    /// jsonl, stix, misp.
    #[arg(long, value_name = "FMT", default_value = "auto", value_parser = format_name)]
    pub format: String,
    /// CSV: the value column, a header name or a 1-based number.
    #[arg(long, value_name = "NAME|N", value_parser = Column::from_arg)]
    pub column: Option<Column>,
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
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Sightings per write to the store (or per POST to a hub, at most 2,000).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// How many problems (rejected rows, refused values) to list in the summary; all are counted.
    #[arg(long, default_value_t = 20)]
    pub show_problems: usize,
}

fn format_name(s: &str) -> Result<String, String> {
    match feeds::format(s) {
        Some(f) => Ok(f.name().to_owned()),
        None => Err(format!("unknown format `{s}` (one of: {})", feeds::format_names().join(", "))),
    }
}

/// Import feed files into a feed.
#[derive(Args, Debug)]
#[command(
    long_about = "Import feed files into a feed, offline into a data directory or through a hub.\n\n\
Formats (--format, default auto = detected from the content): text (one value per line,\n\
`#`/`;` comments), netset (FireHOL), spamhaus-drop (`CIDR ; SBLnnn`), spamhaus-drop-json,\n\
abusech-csv (Feodo Tracker, URLhaus, ThreatFox, ...), csv (generic, --column NAME|N), jsonl\n\
(native field names), stix (STIX 2.1 bundles: indicator patterns), misp (MISP event JSON).\n\
docs/feed-formats.md says what each reads and rejects.\n\n\
Every value goes through the indicator core. Rows that cannot be read and values the core\n\
refuses are counted by reason and listed with their line; the rest is imported. The summary\n\
also counts what an export of the feed will leave out: values under the exclude rules\n\
(special-use ranges, public resolvers, special-use names, empty-file hashes) and the hold\n\
rules, and CIDRs refused for a prefix shorter than the minimum (/8 for IPv4, /32 for IPv6).\n\
Importing the same file again adds nothing (each sighting carries a key made of the value,\n\
its port and its first-seen time).\n\n\
Exit status: 0 when the run completed (even with rejected rows), 1 when it stopped part way\n\
(what was written stays written), 2 when it could not start.",
    after_help = "Examples:
  apiary import feed --feed ops/firehol firehol_level1.netset
  apiary import feed --feed ops/drop --format spamhaus-drop-json drop_v4.json --json
  apiary import feed --feed ops/iocs --format csv --column indicator export.csv
  curl -s https://example.net/list.txt | apiary import feed --feed ops/list --format text -
  apiary import feed --feed ops/urlhaus --hub https://hub.example --token $TOKEN urlhaus.csv"
)]
pub struct FeedArgs {
    #[command(flatten)]
    pub target: FeedTarget,
    /// Feed files, read in the order given; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// The end-of-run summary (`--json` prints it as is).
#[derive(Debug, Serialize, Default)]
pub struct FeedSummary {
    pub mode: &'static str,
    pub feed: String,
    /// The format asked for.
    pub format: String,
    /// Each input and the format it was read as (the detected one for `auto`).
    pub inputs: Vec<InputFormat>,
    pub created_user: bool,
    pub created_feed: bool,
    #[serde(flatten)]
    pub read: ReadStats,
    /// Sightings stored now.
    pub stored: u64,
    /// Sightings already stored (the same value, port and first-seen time in this feed).
    pub duplicates: u64,
    /// Values the hub refused (through a hub only; also in `rejected`).
    pub refused_by_hub: u64,
    pub seconds: f64,
    pub values_per_second: f64,
    /// Why the run stopped part way, if it did.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct InputFormat {
    pub input: String,
    pub format: String,
}

/// One input: a name for messages and the bytes.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
}

pub fn run(a: FeedArgs) -> anyhow::Result<ExitCode> {
    // Every file must be readable before anything is written.
    let mut inputs = Vec::new();
    let stdin_count = a.files.iter().filter(|f| f.as_os_str() == "-").count();
    if stdin_count > 1 {
        bail!("`-` (standard input) can be given once");
    }
    for f in &a.files {
        if f.as_os_str() == "-" {
            inputs.push(Input { name: "<stdin>".into(), reader: Box::new(std::io::stdin()) });
            continue;
        }
        let meta = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", f.display());
        }
        let file = std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        let reader = gunzip_if_compressed(Box::new(file)).with_context(|| format!("cannot read {}", f.display()))?;
        inputs.push(Input { name: f.display().to_string(), reader });
    }
    let summary = import(&a.target, inputs)?;
    print(&a.target, &summary)?;
    Ok(if summary.error.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print(t: &FeedTarget, s: &FeedSummary) -> anyhow::Result<()> {
    if t.json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        print_summary(s);
    }
    Ok(())
}

/// Read `inputs` with the target's format and write what they hold to its feed.
pub fn import(t: &FeedTarget, inputs: Vec<Input>) -> anyhow::Result<FeedSummary> {
    let started = Instant::now();
    let (owner, feed) = split_feed(&t.feed)?;
    let format = feeds::format(&t.format).with_context(|| format!("unknown format `{}`", t.format))?;
    let target = resolve_target(&t.hub, &t.data, &t.store, &t.token)?;
    let description = format!("Imported from feed files ({})", t.format);
    let mut summary = FeedSummary { feed: t.feed.clone(), format: t.format.clone(), ..FeedSummary::default() };
    let opts = ReadOptions {
        format: feeds::Options { column: t.column.clone() },
        max_problems: t.show_problems,
        ..ReadOptions::default()
    };
    let batch = t.batch as usize;
    // The Cowrie sink records feed creation and hub refusals here.
    let mut sink = CowrieSummary::default();

    let (written, reader) = match target {
        Target::Data(url) => {
            summary.mode = "offline";
            let store = url.open()?;
            let rt = super::admin::runtime()?;
            let (feed_id, reporter_id) = rt.block_on(ensure_feed(store.as_ref(), &owner, &feed, &description, &mut sink))?;
            let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Report>>(2);
            let reader = spawn_reader(inputs, format, opts, batch, move |b| tx.blocking_send(b).is_ok());
            let written = rt.block_on(write_batches(store, rx, feed_id, reporter_id));
            (written, reader)
        }
        Target::Hub { url, token } => {
            summary.mode = "hub";
            let hub = Hub::new(&url, token)?;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Report>>(2);
            let reader = spawn_reader(inputs, format, opts, batch, move |b| tx.send(b).is_ok());
            let mut w = Written::default();
            'outer: for b in rx.iter() {
                for chunk in b.chunks(batch.min(2_000)) {
                    if let Err(e) = post(&hub, &owner, &feed, &description, chunk, &mut w, &mut sink, t.show_problems) {
                        w.error = Some(e.to_string());
                        break 'outer;
                    }
                }
            }
            (w, reader)
        }
    };
    let read = reader.join().map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    summary.created_user = sink.created_user;
    summary.created_feed = sink.created_feed;
    summary.inputs = read.inputs;
    summary.read = read.stats;
    summary.stored = written.stored;
    summary.duplicates = written.duplicates;
    summary.refused_by_hub = sink.values_rejected;
    if sink.values_rejected > 0 {
        summary.read.rejected += sink.values_rejected;
        *summary.read.rejected_by_reason.entry("refused_by_hub".into()).or_insert(0) += sink.values_rejected;
        for p in sink.problems {
            if summary.read.problems.len() < t.show_problems {
                summary.read.problems.push(feeds::Problem {
                    file: p.file,
                    line: p.line,
                    code: "refused_by_hub".into(),
                    input: String::new(),
                    message: p.message,
                });
            }
        }
    }
    summary.error = written.error.or(read.io_error);
    summary.seconds = started.elapsed().as_secs_f64();
    summary.values_per_second = if summary.seconds > 0.0 { summary.read.read as f64 / summary.seconds } else { 0.0 };
    Ok(summary)
}

/// What the reader thread hands back.
struct ReadOutcome {
    stats: ReadStats,
    inputs: Vec<InputFormat>,
    io_error: Option<String>,
}

/// Read every input on a thread of its own; hand batches of reports to `sink` (false = stop).
fn spawn_reader(
    inputs: Vec<Input>,
    format: &'static dyn feeds::Format,
    opts: ReadOptions,
    batch: usize,
    mut sink: impl FnMut(Vec<Report>) -> bool + Send + 'static,
) -> std::thread::JoinHandle<ReadOutcome> {
    std::thread::Builder::new()
        .name("feed-reader".into())
        .spawn(move || {
            let mut reader = FeedReader::new(opts);
            let mut pending: Vec<Report> = Vec::with_capacity(batch);
            let mut open = true;
            let mut io_error = None;
            let mut used = Vec::new();
            for input in inputs {
                let res = reader.read(format, &input.name, input.reader, &mut |r| {
                    pending.push(r);
                    if pending.len() >= batch && open {
                        open = sink(std::mem::replace(&mut pending, Vec::with_capacity(batch)));
                    }
                });
                match res {
                    Ok(f) => used.push(InputFormat { input: input.name, format: f.to_owned() }),
                    Err(e) => {
                        io_error = Some(format!("reading {} failed: {e}", input.name));
                        break;
                    }
                }
                if !open {
                    break;
                }
            }
            if open && !pending.is_empty() {
                sink(pending);
            }
            ReadOutcome { stats: reader.into_stats(), inputs: used, io_error }
        })
        .expect("spawn the reader thread")
}

fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn by_reason(m: &BTreeMap<String, u64>) -> String {
    m.iter().map(|(k, n)| format!("{k} {}", thousands(*n))).collect::<Vec<_>>().join(", ")
}

fn print_summary(s: &FeedSummary) {
    let r = &s.read;
    let where_ = if s.mode == "hub" { "through the hub" } else { "offline" };
    println!("imported {} input(s) into {} {where_}", s.inputs.len().max(r.files as usize), s.feed);
    for i in &s.inputs {
        println!("  {} read as {}", i.input, i.format);
    }
    if s.created_user {
        println!("  created user {} (no token yet: apiary token create --user ...)", s.feed.split('/').next().unwrap_or(""));
    }
    if s.created_feed {
        println!("  created feed {}", s.feed);
    }
    println!(
        "  values read   {:>12}  ({} lines, {} comments, {} blank, {} bytes)",
        thousands(r.read),
        thousands(r.lines),
        thousands(r.comment_lines),
        thousands(r.blank_lines),
        thousands(r.bytes)
    );
    println!("  accepted      {:>12}  ({} distinct values)", thousands(r.accepted), thousands(r.distinct));
    println!("  stored        {:>12}", thousands(s.stored));
    println!("  duplicates    {:>12}  (already imported)", thousands(s.duplicates));
    let reasons = if r.rejected_by_reason.is_empty() { String::new() } else { format!("  ({})", by_reason(&r.rejected_by_reason)) };
    println!("  rejected      {:>12}{reasons}", thousands(r.rejected));
    if r.skipped > 0 {
        println!("  skipped       {:>12}  ({})", thousands(r.skipped), by_reason(&r.skipped_by_reason));
    }
    println!("not exported (by the export rules):");
    let lists = |m: &BTreeMap<String, u64>| if m.is_empty() { String::new() } else { format!("  ({})", by_reason(m)) };
    println!("  excluded      {:>12}{}", thousands(r.excluded), lists(&r.excluded_by_list));
    println!("  held          {:>12}{}", thousands(r.held), lists(&r.held_by_list));
    println!("  min prefix    {:>12}  (refused, prefix shorter than the minimum)", thousands(r.min_prefix));
    println!("  exportable    {:>12}  distinct values", thousands(r.exportable));
    if r.bad_times > 0 {
        println!("  unreadable times {:>9}  (imported without them)", thousands(r.bad_times));
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
    println!("  time          {:>11.2}s  ({:.0} values/s)", s.seconds, s.values_per_second);
    if r.rejected > 0 {
        println!("problems:");
        for p in &r.problems {
            println!("  {}", super::terminal_safe(&p.to_string()));
        }
        if (r.problems.len() as u64) < r.rejected {
            println!("  ... {} more (raise --show-problems to list them)", r.rejected - r.problems.len() as u64);
        }
    }
    if let Some(e) = &s.error {
        println!("stopped: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// apiary pull

/// Fetch a feed URL and import what changed.
#[derive(Args, Debug)]
#[command(
    long_about = "Fetch a feed URL and import it into a feed, once or on a schedule (--every).\n\n\
The download is conditional: the ETag and Last-Modified of the last fetch are sent back\n\
(If-None-Match, If-Modified-Since), so an unchanged feed costs a 304 and imports nothing. A\n\
server that ignores them is still caught: a body identical to the last one (same SHA-256) is\n\
not imported again. A changed file is imported whole; the values it still lists are counted\n\
as duplicates, and only new ones are stored.\n\n\
The state (per URL and feed) is kept in DATA/pull-state.json offline, or in --state FILE\n\
(default ./apiary-pull-state.json through a hub).",
    after_help = "Examples:
  apiary pull https://rules.example.net/compromised-ips.txt --feed ops/et --format text
  apiary pull https://www.spamhaus.org/drop/drop_v4.json --feed ops/drop --every 12h
  apiary pull https://feodotracker.abuse.ch/downloads/ipblocklist.csv --feed ops/feodo --hub https://hub.example --token $TOKEN --every 1h"
)]
pub struct PullArgs {
    /// The feed URL (http or https).
    #[arg(value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    pub target: FeedTarget,
    /// Fetch again at this interval (`90s`, `15m`, `1h`, `1d`) until stopped; default: once.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub every: Option<Duration>,
    /// The state file (ETag, Last-Modified, last body's hash).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Refuse downloads larger than this many bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub max_bytes: u64,
}

/// `90s`, `15m`, `1h`, `1d` (a bare number is seconds); at least one second.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not an interval like 90s, 15m, 1h or 1d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("the interval must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

/// What was learnt from the last fetch of one URL into one feed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PullState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub sha256: Option<String>,
    pub fetched_at: Option<String>,
}

/// The state file: `"URL feed"` → state.
type StateFile = BTreeMap<String, PullState>;

/// One pull's outcome, printed with `--json` as `{"status": ..., "import": {...}}`.
#[derive(Debug, Serialize)]
pub struct PullReport {
    pub url: String,
    /// `imported`, `not_modified` (304), `unchanged` (same body as last time) or `all_refused`
    /// (every line refused: not remembered, so the next pull imports it again).
    pub status: &'static str,
    pub http_status: u16,
    pub bytes: u64,
    pub import: Option<FeedSummary>,
}

pub fn run_pull(a: PullArgs) -> anyhow::Result<ExitCode> {
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        bail!("{} is not an http or https URL", a.url);
    }
    split_feed(&a.target.feed)?;
    let state_path = match (&a.state, resolve_target(&a.target.hub, &a.target.data, &a.target.store, &a.target.token)?) {
        (Some(p), _) => p.clone(),
        (None, Target::Data(url)) => {
            url.sqlite_dir().map(|d| d.join("pull-state.json")).unwrap_or_else(|| PathBuf::from("./apiary-pull-state.json"))
        }
        (None, Target::Hub { .. }) => PathBuf::from("./apiary-pull-state.json"),
    };
    let http = reqwest::blocking::Client::builder()
        .user_agent(concat!("apiary/", env!("CARGO_PKG_VERSION"), " (feed pull)"))
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(600))
        .build()?;
    loop {
        let code = match pull_once(&http, &a, &state_path) {
            Ok(report) => {
                if a.target.json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    match &report.import {
                        Some(s) => print_summary(s),
                        None => println!("{}: {} (HTTP {}), nothing to import", report.url, report.status.replace('_', " "), report.http_status),
                    }
                }
                if report.import.as_ref().is_some_and(|s| s.error.is_some()) {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            // On a schedule, one failed fetch is reported and the next one tried.
            Err(e) if a.every.is_some() => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
            Err(e) => return Err(e),
        };
        match a.every {
            Some(every) => std::thread::sleep(every),
            None => return Ok(code),
        }
    }
}

fn state_key(url: &str, feed: &str) -> String {
    format!("{url} {feed}")
}

fn load_state(path: &Path) -> anyhow::Result<StateFile> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("{} is not a pull state file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write through a temporary file and a rename, so a crash never leaves half a state file.
fn save_state(path: &Path, state: &StateFile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A gzip file (`import feed x.gz`) is read decompressed; anything else as it is.
fn gunzip_if_compressed(reader: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut r = std::io::BufReader::new(reader);
    let head = std::io::BufRead::fill_buf(&mut r)?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

fn pull_once(http: &reqwest::blocking::Client, a: &PullArgs, state_path: &Path) -> anyhow::Result<PullReport> {
    use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
    let mut all = load_state(state_path)?;
    let key = state_key(&a.url, &a.target.feed);
    let prev = all.get(&key).cloned().unwrap_or_default();
    let mut req = http.get(&a.url);
    if let Some(e) = &prev.etag {
        req = req.header(IF_NONE_MATCH, e);
    }
    if let Some(m) = &prev.last_modified {
        req = req.header(IF_MODIFIED_SINCE, m);
    }
    let resp = req.send().with_context(|| format!("cannot fetch {}", a.url))?;
    let status = resp.status();
    let report = |status_word, bytes, import| PullReport { url: a.url.clone(), status: status_word, http_status: status.as_u16(), bytes, import };
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(report("not_modified", 0, None));
    }
    if !status.is_success() {
        bail!("fetching {} failed: HTTP {status}", a.url);
    }
    let header = |name| resp.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_owned);
    let resp_gzip = header(reqwest::header::CONTENT_ENCODING).is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"));
    let etag = header(ETAG);
    let last_modified = header(LAST_MODIFIED);
    let mut body = Vec::new();
    resp.take(a.max_bytes + 1).read_to_end(&mut body).with_context(|| format!("reading the body of {} failed", a.url))?;
    if body.len() as u64 > a.max_bytes {
        bail!("{} is larger than --max-bytes {}", a.url, a.max_bytes);
    }
    let sha = feeds::content_hash(&body);
    let bytes = body.len() as u64;
    // A gzip body (Content-Encoding: gzip, or a `.gz` feed): read what it holds, not its bytes.
    let gzip = resp_gzip || body.starts_with(&GZIP_MAGIC);
    if gzip {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .take(a.max_bytes + 1)
            .read_to_end(&mut plain)
            .with_context(|| format!("compressed input: the gzip body of {} cannot be decompressed", a.url))?;
        if plain.len() as u64 > a.max_bytes {
            bail!("{} is larger than --max-bytes {} once decompressed", a.url, a.max_bytes);
        }
        body = plain;
    }
    let next = PullState { etag, last_modified, sha256: Some(sha.clone()), fetched_at: Some(apiary_core::format_time(chrono::Utc::now())) };
    if prev.sha256.as_deref() == Some(sha.as_str()) {
        all.insert(key, next);
        save_state(state_path, &all)?;
        return Ok(report("unchanged", bytes, None));
    }
    let summary = import(&a.target, vec![Input { name: a.url.clone(), reader: Box::new(std::io::Cursor::new(body)) }])?;
    // Remember this version only when it was imported whole: a failed run is fetched again, and
    // so is one whose every line was refused (a body read wrongly must not be `unchanged` next).
    let all_refused = summary.read.read > 0 && summary.read.rejected == summary.read.read;
    if summary.error.is_none() && !all_refused {
        all.insert(key, next);
        save_state(state_path, &all)?;
    }
    Ok(report(if all_refused { "all_refused" } else { "imported" }, bytes, Some(summary)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_files_are_read_decompressed_and_others_as_they_are() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"198.51.100.1\n198.51.100.2\n").unwrap();
        let bytes = gz.finish().unwrap();
        let mut text = String::new();
        gunzip_if_compressed(Box::new(std::io::Cursor::new(bytes))).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "198.51.100.1\n198.51.100.2\n");
        let mut text = String::new();
        gunzip_if_compressed(Box::new(&b"\x1f"[..])).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "\x1f", "one byte that could start gzip is not gzip");
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_interval("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_interval("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_interval("30").unwrap(), Duration::from_secs(30));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("1w").is_err());
        assert!(parse_interval("h").is_err());
    }

    #[test]
    fn format_names_are_checked() {
        assert_eq!(format_name("misp").unwrap(), "misp");
        let e = format_name("xml").unwrap_err();
        assert!(e.contains("spamhaus-drop-json"), "{e}");
    }
}
