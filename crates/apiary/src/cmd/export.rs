//! `apiary export`: a feed (or the hub-wide BLOCK tier) in a consumer's format, on stdout.
//!
//! Through a hub (`--hub`, the default) it streams `GET /api/v1/.../export`; offline
//! (`--data DIR`) it runs the same engine as the hub (`apiary_server::export`) on the data
//! directory. Either way the same rules apply (docs/exports.md).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use apiary_core::export::Meta;
use apiary_server::export::{self as engine, ExportParams, Job, BLOCK_TIER};
use apiary_store::{Reader, Store};
use chrono::{DateTime, Utc};
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::Args;

use super::admin::{runtime, split_feed};

/// Export a feed, or the hub-wide BLOCK tier, in a format firewalls, IDSs, resolvers and
/// threat-intelligence platforms load.
#[derive(Args, Debug)]
#[command(
    long_about = "Export a feed (USER/FEED) or the hub-wide BLOCK tier (--tier block) to standard output.\n\n\
Formats: text, csv, json, jsonl, zeek, suricata-iprep (--categories prints its categories file),\n\
suricata-rules, snort, ipset, nginx, nginx-geo, rpz, stix.\n\n\
What never leaves: special-use addresses, allowlisted (excluded) values, CIDRs containing an\n\
allowlisted range, held values in blocklist formats, TLP:RED except to the feed's owner and those\n\
it was shared with. By default only indicators last seen within 21 days (addresses) or 45 days\n\
(everything else) are exported; --window all exports everything.\n\n\
Through a hub (--hub, APIARY_HUB; default http://127.0.0.1:8080) the export streams from\n\
GET /api/v1/feeds/USER/FEED/export. With --data DIR it is made from the data directory itself,\n\
reading as the feed's owner (or as --as USER; the BLOCK tier offline reads public feeds unless\n\
--as names a user).",
    after_help = "Examples:
  apiary export alice/ssh-scanners --format ipset > scanners.ipset && ipset restore -exist < scanners.ipset
  apiary export alice/phish --format rpz --zone rpz.example.org > rpz.zone
  apiary export --tier block --format nginx --type ipv4 --hub https://hub.example --token $T
  apiary export alice/honeypot --format stix --window all --data ./apiary-data"
)]
#[command(group = clap::ArgGroup::new("offline").args(["data", "store"]))]
pub struct ExportArgs {
    /// The feed, `USER/FEED` (omit with --tier block).
    #[arg(value_name = "USER/FEED", required_unless_present = "tier")]
    pub feed: Option<String>,
    /// Output format (the list below; `--help` describes each).
    #[arg(long, short = 'f', default_value = "text", ignore_case = true, value_parser = format_names())]
    pub format: String,
    /// The hub-wide scored feed instead of one feed: values whose hub score reaches this tier
    /// (`observe`, `suspicious`, `block`; docs/trust.md).
    #[arg(long, value_name = "TIER", conflicts_with = "feed")]
    pub tier: Option<String>,
    /// With --format suricata-iprep: print the categories file instead of the reputation file.
    #[arg(long)]
    pub categories: bool,
    /// Only this indicator type (ipv4, ipv6, fqdn, url, email, md5, sha1, sha256, sha512, asn).
    #[arg(long = "type", value_name = "TYPE")]
    pub itype: Option<String>,
    /// Only indicators with every one of these tags (comma separated).
    #[arg(long, value_name = "TAGS")]
    pub tags: Option<String>,
    /// Window on last seen: `all`, `default`, or a length such as 30d, 12h, 2w.
    #[arg(long, value_name = "WINDOW")]
    pub window: Option<String>,
    /// At most this many indicators (newest first).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only these TLP labels (comma separated: clear, green, amber, red).
    #[arg(long, value_name = "LABELS")]
    pub tlp: Option<String>,
    /// Minimum confidence: with --tier, the hub's own score (0–100); for a feed, the
    /// publisher's own claim (0–10), and indicators without a claim are left out.
    #[arg(long, value_name = "N")]
    pub min_confidence: Option<f64>,
    /// ipset: base name of the sets (`NAME-v4`, `NAME-v6`).
    #[arg(long, value_name = "NAME")]
    pub set: Option<String>,
    /// rpz: the zone's name (for the SOA and length checks).
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// The hub's base URL (ignored when --data is given, so APIARY_HUB in the environment
    /// does not get in the way of an offline export).
    #[arg(long, value_name = "URL", env = "APIARY_HUB")]
    pub hub: Option<String>,
    /// An API token (private feeds and TLP:RED need one).
    #[arg(long, value_name = "TOKEN", env = "APIARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Export from this data directory instead of a hub (short for --store sqlite:DIR).
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub data: Option<PathBuf>,
    /// Export from this store instead of a hub: sqlite:DIR or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Offline only: MISP warninglists to apply on top of the built-in lists (a directory of
    /// `NAME/list.json`); a hub applies its own `serve --allowlist`.
    #[arg(long, value_name = "DIR", requires = "offline", env = "APIARY_ALLOWLIST")]
    pub allowlist: Option<PathBuf>,
    /// Offline only: read as this user (default: the feed's owner; anonymous for the tier).
    #[arg(long = "as", value_name = "USER", requires = "offline")]
    pub as_user: Option<String>,
}

impl ExportArgs {
    /// The parsed parameters: the hub-wide scored feed without a feed, else the feed's.
    fn spec(&self) -> Result<apiary_server::export::ExportSpec, apiary_server::ApiError> {
        match self.feed {
            None => self.params().parse_hub(),
            Some(_) => self.params().parse(),
        }
    }

    fn params(&self) -> ExportParams {
        ExportParams {
            format: Some(self.format.clone()),
            itype: self.itype.clone(),
            tags: self.tags.clone(),
            window: self.window.clone(),
            limit: self.limit.map(|l| l.to_string()),
            tlp: self.tlp.clone(),
            min_confidence: self.min_confidence.map(|c| c.to_string()),
            tier: self.tier.clone(),
            categories: self.categories.then(|| "true".into()),
            set: self.set.clone(),
            zone: self.zone.clone(),
        }
    }
}

pub fn run(a: ExportArgs) -> anyhow::Result<ExitCode> {
    // Check the parameters here first, so a typo fails the same way offline and online.
    a.spec().map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let offline_store = match (&a.store, &a.data) {
        (None, None) => None,
        (store, data) => Some(super::store_url::resolve(store.as_deref(), data.as_deref(), None)?),
    };
    if let (Some(dir), Some(_)) = (&a.allowlist, &offline_store) {
        let mut lists = apiary_core::Allowlist::builtin();
        super::parse::load_dir(&mut lists, dir)
            .with_context(|| format!("cannot load the allowlist directory {}", dir.display()))?;
        apiary_server::export::install_allowlist(lists);
    }
    match &offline_store {
        Some(url) => offline(&a, url),
        None => through_hub(&a),
    }
}

fn through_hub(a: &ExportArgs) -> anyhow::Result<ExitCode> {
    let base = a.hub.as_deref().unwrap_or("http://127.0.0.1:8080").trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--hub must be an http:// or https:// URL, not {base:?}");
    }
    let path = match &a.feed {
        Some(f) => {
            let (owner, name) = split_feed(f)?;
            format!("/api/v1/feeds/{}/{}/export", enc(&owner), enc(&name))
        }
        None => "/api/v1/export".to_string(),
    };
    let p = a.params();
    let query: Vec<(&str, String)> = [
        ("format", p.format),
        ("type", p.itype),
        ("tags", p.tags),
        ("window", p.window),
        ("limit", p.limit),
        ("tlp", p.tlp),
        ("min_confidence", p.min_confidence),
        ("tier", p.tier),
        ("categories", p.categories),
        ("set", p.set),
        ("zone", p.zone),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let http = reqwest::blocking::Client::builder()
        .timeout(None)
        .user_agent(concat!("apiary-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let mut req = http.get(format!("{base}{path}")).query(&query);
    if let Some(t) = a.token.as_deref().filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let mut resp = req.send().with_context(|| format!("cannot reach the hub at {base}"))?;
    let status = resp.status();
    if !status.is_success() {
        let mut text = String::new();
        let _ = resp.take(64 * 1024).read_to_string(&mut text);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let message = v["error"]["message"].as_str().map(str::to_owned).unwrap_or(text);
        bail!("the hub answered {}: {message}", status.as_u16());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A reader that stops early (`| head`) closes our stdout: that is not the hub's failure.
    let copied = std::io::copy(&mut resp, &mut out).and_then(|_| out.flush());
    match copied {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("export interrupted (the hub or the connection failed mid-way)"),
    }
}

fn offline(a: &ExportArgs, url: &super::store_url::StoreUrl) -> anyhow::Result<ExitCode> {
    let spec = a.spec().map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if spec.categories {
        if spec.format.name != "suricata-iprep" {
            bail!("--categories goes with --format suricata-iprep");
        }
        print!("{}", apiary_core::export::suricata_iprep::categories());
        return Ok(ExitCode::SUCCESS);
    }
    let store: Arc<dyn Store> = url.open()?;
    let rt = runtime()?;
    let summary = rt.block_on(async {
        let reader = match &a.as_user {
            Some(u) => {
                let user = store.get_user(u).await?.with_context(|| format!("no user {u:?}"))?;
                Some(Reader { user_id: user.id, admin: user.admin })
            }
            None => None,
        };
        let reader_is_admin = reader.as_ref().is_some_and(|r| r.admin);
        let (feeds, reader, meta, dedupe, mut spec) = match &a.feed {
            Some(f) => {
                let (owner, name) = split_feed(f)?;
                let feed = store.get_feed(&owner, &name).await?.with_context(|| format!("no feed {owner}/{name}"))?;
                let reader = reader.unwrap_or(Reader { user_id: feed.owner_id, admin: false });
                let readable = store.list_readable_feeds(Some(&reader), Some(&owner)).await?.into_iter().any(|f| f.id == feed.id);
                if !readable {
                    bail!("user {:?} may not read {owner}/{name}", a.as_user.as_deref().unwrap_or_default());
                }
                let meta = Meta::new(&feed.full_name(), &feed.owner, feed.created_at, Utc::now());
                (vec![feed], Some(reader), meta, false, spec.clone())
            }
            None => {
                let feeds = store.list_readable_feeds(reader.as_ref(), None).await?;
                let mut spec = spec.clone();
                spec.blocklist = true;
                (feeds, reader, Meta::new(BLOCK_TIER, "apiary", DateTime::UNIX_EPOCH, Utc::now()), true, spec)
            }
        };
        let mut meta = meta;
        let now = engine::export_now();
        meta.filter = spec.describe();
        if let Some(s) = spec.set.take() {
            meta.set_name = s;
        }
        if let Some(z) = spec.zone.take() {
            meta.zone = format!("{}.", z.trim_end_matches('.'));
        }
        let selection = engine::selection(&spec, feeds, reader, reader_is_admin, now, dedupe);
        let job = Job { store: store.clone(), selection, spec, meta, now };
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let task = tokio::spawn(engine::run(job, tx));
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        while let Some(chunk) = rx.recv().await {
            out.write_all(&chunk).context("cannot write to standard output")?;
        }
        out.flush()?;
        Ok::<_, anyhow::Error>(task.await.context("export task failed")??)
    })?;
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// Percent-encode a path segment.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The export formats as clap's possible values, each with its one-line description.
fn format_names() -> PossibleValuesParser {
    apiary_core::export::FORMATS.iter().map(|f| PossibleValue::new(f.name).help(f.description)).into()
}
