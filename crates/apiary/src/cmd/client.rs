//! Client commands: talk to a running hub over the native API (`/api/v1/`, docs/native-api.md).

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Which hub to talk to, and as whom.
#[derive(Args, Debug, Clone)]
pub struct HubArgs {
    /// The hub's base URL.
    #[arg(long, value_name = "URL", env = "APIARY_HUB", default_value = "http://127.0.0.1:8080")]
    pub hub: String,
    /// An API token (from `apiary token create`). Reading public feeds needs none.
    #[arg(long, value_name = "TOKEN", env = "APIARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A native-API client. Blocking: the CLI does one thing at a time.
pub struct Hub {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

/// An error reply from the hub (`{"error":{"code","message"}}`), or a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{status} {code}: {message}")]
    Status { status: u16, code: String, message: String, body: Value, retry_after: Option<u64> },
    #[error("cannot reach the hub at {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
}

/// The reply to a publish (`POST .../indicators`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct PublishReply {
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub rejected: Vec<RejectedItem>,
    #[serde(default)]
    pub items: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RejectedItem {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Hub {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Hub> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--hub must be an http:// or https:// URL, not {base:?}");
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("apiary-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Hub { base, token: token.filter(|t| !t.is_empty()), http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    fn send(&self, r: reqwest::blocking::RequestBuilder) -> Result<(u16, Value), HubError> {
        let url = self.base.clone();
        let resp = r.send().map_err(|source| HubError::Transport { url: url.clone(), source })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = resp.text().map_err(|source| HubError::Transport { url, source })?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        let code = body["error"]["code"].as_str().unwrap_or("error").to_owned();
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.as_str().map(str::to_owned).unwrap_or_else(|| body.to_string()));
        Err(HubError::Status { status, code, message, body, retry_after })
    }

    /// Publish to `owner/feed`: `body` is JSON lines, one item per line.
    pub fn publish_ndjson(&self, owner: &str, feed: &str, body: Vec<u8>) -> Result<PublishReply, HubError> {
        let r = self
            .req(reqwest::Method::POST, &format!("/api/v1/feeds/{}/{}/indicators", enc(owner), enc(feed)))
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        match self.send(r) {
            Ok((_, v)) => Ok(serde_json::from_value(v).unwrap_or_default()),
            // Every item rejected: 422 with the same body shape.
            Err(HubError::Status { status: 422, body, .. }) if body.get("rejected").is_some() => {
                Ok(serde_json::from_value(body).unwrap_or_default())
            }
            Err(e) => Err(e),
        }
    }

    /// Create a feed owned by `owner` (the caller, or anyone if the caller is an admin).
    pub fn create_feed(&self, owner: &str, feed: &str, description: Option<&str>) -> Result<Value, HubError> {
        let r = self.req(reqwest::Method::POST, "/api/v1/feeds").json(&json!({
            "name": feed,
            "owner": owner,
            "description": description,
        }));
        self.send(r).map(|(_, v)| v)
    }

    /// Any native-API call with an optional JSON body; the reply's JSON.
    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, HubError> {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        self.send(r).map(|(_, v)| v)
    }

    /// `GET /api/v1/indicators` with query parameters.
    pub fn query(&self, params: &[(&str, String)]) -> Result<Value, HubError> {
        let r = self.req(reqwest::Method::GET, "/api/v1/indicators").query(params);
        self.send(r).map(|(_, v)| v)
    }
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

// ---------------------------------------------------------------- publish

/// Publish indicators to one of your feeds on a hub.
#[derive(Args, Debug)]
#[command(
    after_help = concat!("Publish indicators to a feed on a hub (POST /api/v1/feeds/USER/FEED/indicators).\n\n\
Values are normalised by the hub: `045.095.147.236`, `hxxp://a[.]example/x` and `[2001:db8::1]:22`\n\
are understood. Values the hub refuses are listed with the reason; the others are stored.\n\
Special-use values (private, documentation, ...) and values on an exclude allowlist are stored\n\
but never scored or exported: a warning on stderr names them. A duplicate is an item whose\n\
idempotency key the feed already holds: it is not stored again.\n\
Exit status: 0 when every value was accepted, 1 when some were rejected, 2 when the hub could\n\
not be reached or refused the request.\n\n",
        "Examples:
  export APIARY_HUB=http://127.0.0.1:8080 APIARY_TOKEN=...
  apiary publish alice/ssh-scanners 185.222.209.108 45.95.147.0/24 --tags scanner,ssh
  apiary publish alice/phish --file urls.txt --tags phishing --description \"reported by users\"
  grep -v '^#' blocklist.txt | apiary publish alice/blocklist --file - --json")
)]
pub struct PublishArgs {
    /// The feed, `USER/FEED`.
    #[arg(value_name = "USER/FEED")]
    pub feed: String,
    /// Values to publish (addresses, CIDRs, domains, URLs, e-mails, hashes, ASNs).
    #[arg(value_name = "VALUE", required_unless_present = "file")]
    pub values: Vec<String>,
    /// Read values from a file, one per line (`-` for standard input); blank lines and lines
    /// starting with `#` are skipped.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Comma-separated tags for every value.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// A note kept with every value's sighting (why it is listed).
    #[arg(long)]
    pub description: Option<String>,
    /// TLP label: clear, green, amber, red.
    #[arg(long)]
    pub tlp: Option<String>,
    /// Your confidence in the values (0–10, as CSIRTG clients send it).
    #[arg(long)]
    pub confidence: Option<f64>,
    /// Print the hub's replies as JSON (one per request) instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

const PUBLISH_BATCH: usize = 5_000;

pub fn run_publish(a: PublishArgs) -> anyhow::Result<ExitCode> {
    let (owner, feed) = super::admin::split_feed(&a.feed)?;
    let mut values = a.values.clone();
    if let Some(path) = &a.file {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            ))
        };
        for line in reader.split(b'\n') {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            let text = String::from_utf8_lossy(&line);
            let v = text.trim().trim_start_matches('\u{feff}');
            if !v.is_empty() && !v.starts_with('#') {
                values.push(v.to_owned());
            }
        }
    }
    if values.is_empty() {
        bail!("nothing to publish: give values as arguments or with --file");
    }
    let hub = Hub::new(&a.hub.hub, a.hub.token.clone())?;
    let tags: Vec<&str> = a.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    let mut rejected = Vec::new();
    let mut never_served = NeverServed::default();
    let stdout = std::io::stdout();
    for (n, chunk) in values.chunks(PUBLISH_BATCH).enumerate() {
        let mut body = Vec::with_capacity(chunk.len() * 64);
        for v in chunk {
            let mut item = json!({ "indicator": v });
            if !tags.is_empty() {
                item["tags"] = json!(tags);
            }
            if let Some(d) = &a.description {
                item["description"] = json!(d);
            }
            if let Some(t) = &a.tlp {
                item["tlp"] = json!(t);
            }
            if let Some(c) = a.confidence {
                item["claimed_confidence"] = json!(c);
            }
            serde_json::to_writer(&mut body, &item)?;
            body.push(b'\n');
        }
        let reply = match hub.publish_ndjson(&owner, &feed, body) {
            Ok(r) => r,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("publish to {} failed", a.feed))),
        };
        if a.json {
            let mut out = stdout.lock();
            let v = json!({
                "accepted": reply.accepted,
                "duplicates": reply.duplicates,
                "rejected": reply.rejected.iter().map(|r| json!({
                    "index": r.index.map(|i| i + (n * PUBLISH_BATCH) as u64),
                    "input": r.input, "code": r.code, "message": r.message,
                })).collect::<Vec<_>>(),
                "items": reply.items,
            });
            writeln!(out, "{v}")?;
        }
        never_served.check(&reply.items);
        accepted += reply.accepted;
        duplicates += reply.duplicates;
        rejected.extend(reply.rejected.into_iter().map(|mut r| {
            r.index = r.index.map(|i| i + (n * PUBLISH_BATCH) as u64);
            r
        }));
    }
    if !a.json {
        println!("accepted {accepted}, {duplicates} duplicates (same key, not stored again), rejected {}", rejected.len());
        for r in &rejected {
            let input = r
                .input
                .clone()
                .or_else(|| r.index.and_then(|i| values.get(i as usize).cloned()))
                .unwrap_or_default();
            println!(
                "  rejected {input:?}: {} ({})",
                super::terminal_safe(r.message.as_deref().unwrap_or("refused")),
                super::terminal_safe(r.code.as_deref().unwrap_or("?"))
            );
        }
    }
    never_served.warn();
    Ok(if rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Published values the hub stores but never scores or exports: special-use values (private,
/// documentation, ...) and values on a built-in `exclude` allowlist, judged the way the hub's
/// trust job judges them (`standing_of`) from the normalised values in the publish reply. The
/// hub's own `--allowlist` lists are not known here, so this can miss some, never over-warn.
#[derive(Default)]
struct NeverServed {
    lists: Option<apiary_core::Allowlist>,
    seen: std::collections::BTreeSet<String>,
    found: Vec<(String, String)>,
}

impl NeverServed {
    const SHOWN: usize = 20;

    fn check(&mut self, items: &[Value]) {
        let lists = self.lists.get_or_insert_with(apiary_core::Allowlist::builtin);
        for item in items {
            let Some(value) = item["indicator"].as_str() else { continue };
            if !self.seen.insert(value.to_owned()) {
                continue;
            }
            let Ok(ind) = apiary_core::parse(value, None, &apiary_core::ParseOptions::default()) else { continue };
            let standing = apiary_server::trust::engine::standing_of(&ind.value, ind.itype, ind.reserved.map(|r| r.as_str()), lists);
            if let apiary_core::trust::Standing::Excluded(why) = standing {
                self.found.push((value.to_owned(), why));
            }
        }
    }

    fn warn(&self) {
        for (value, why) in self.found.iter().take(Self::SHOWN) {
            eprintln!("warning: {} is {why}: stored, but never scored or exported", super::terminal_safe(value));
        }
        if self.found.len() > Self::SHOWN {
            eprintln!("warning: and {} more such values", self.found.len() - Self::SHOWN);
        }
    }
}

// ---------------------------------------------------------------- search

/// Search a hub for a value: one record per feed that holds it.
#[derive(Args, Debug)]
#[command(
    after_help = concat!("Search a hub for a value (GET /api/v1/indicators?q=VALUE).\n\n\
The hub normalises the value first, so `hxxp://a[.]example/x` finds `http://a.example/x`. One\n\
record is printed per feed that holds the value, with native field names: indicator, itype,\n\
feed, firsttime, lasttime, reporttime, count, tags, portlist, protocol, ... A CIDR finds the\n\
addresses inside it with --within.\n\n",
        "Examples:
  apiary search 185.222.209.108
  apiary search 185.222.209.0/24 --within --limit 500
  apiary search 'hxxp://malware-drop[.]net/x.sh' --json | jq -r .feed
  APIARY_HUB=https://hub.example APIARY_TOKEN=... apiary search 185.222.209.108")
)]
pub struct SearchArgs {
    /// The value to look for.
    pub value: String,
    /// Treat VALUE as a CIDR and find the addresses and ranges inside it.
    #[arg(long)]
    pub within: bool,
    /// Only this feed, `USER/FEED`.
    #[arg(long, value_name = "USER/FEED")]
    pub feed: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON lines: one object per feed record, native field names.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn run_search(a: SearchArgs) -> anyhow::Result<ExitCode> {
    let hub = Hub::new(&a.hub.hub, a.hub.token.clone())?;
    let mut records: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    while records.len() < a.limit {
        let mut params = vec![(if a.within { "within" } else { "q" }, a.value.clone())];
        params.push(("limit", (a.limit - records.len()).min(1000).to_string()));
        if let Some(f) = &a.feed {
            params.push(("feed", f.clone()));
        }
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let page = match hub.query(&params) {
            Ok(p) => p,
            Err(HubError::Status { status: 422, message, .. }) => {
                eprintln!("error: the hub does not understand {:?}: {}", a.value, super::terminal_safe(&message));
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("search failed")),
        };
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let empty = items.is_empty();
        records.extend(items);
        cursor = page["next"].as_str().map(str::to_owned);
        if cursor.is_none() || empty {
            break;
        }
    }
    records.truncate(a.limit);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.json {
        for r in &records {
            writeln!(out, "{r}")?;
        }
    } else if records.is_empty() {
        writeln!(out, "{} was not found", a.value)?;
    } else {
        writeln!(
            out,
            "{:<28} {:<40} {:<7} {:>6}  {:<20} {:<20} {:>10} {:<10} {:<24} PORTS",
            "FEED", "INDICATOR", "ITYPE", "COUNT", "FIRSTTIME", "LASTTIME", "CONFIDENCE", "TIER", "TAGS"
        )?;
        for r in &records {
            let list = |v: &Value| {
                v.as_array()
                    .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            };
            let s = |k: &str| super::terminal_safe(r[k].as_str().unwrap_or("")).into_owned();
            writeln!(
                out,
                "{:<28} {:<40} {:<7} {:>6}  {:<20} {:<20} {:>10} {:<10} {:<24} {}",
                s("feed"),
                s("indicator"),
                s("itype"),
                r["count"].as_i64().unwrap_or(0),
                short_time(&s("firsttime")),
                short_time(&s("lasttime")),
                // The hub's score (docs/trust.md); "-" for a value it has not scored.
                r["confidence"].as_f64().map_or("-".to_string(), |c| format!("{c:.0}")),
                r["tier"].as_str().map_or("-".to_string(), |t| super::terminal_safe(t).into_owned()),
                super::terminal_safe(&list(&r["tags"])),
                super::terminal_safe(&list(&r["portlist"])),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `2017-11-04T13:09:47.519075Z` → `2017-11-04T13:09:47Z` for the table.
pub(super) fn short_time(t: &str) -> String {
    match (t.get(..19), t.len() > 20) {
        (Some(head), true) => format!("{head}Z"),
        _ => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_and_times_shortened() {
        assert_eq!(enc("ops"), "ops");
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
        assert_eq!(short_time("2017-11-04T13:09:47.519075Z"), "2017-11-04T13:09:47Z");
        assert_eq!(short_time("2017-11-04T13:09:47Z"), "2017-11-04T13:09:47Z");
    }
}
