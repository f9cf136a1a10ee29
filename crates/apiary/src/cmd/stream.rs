//! Streams and subscriptions, as a client of a hub (docs/firehose.md):
//! `apiary subscribe|unsubscribe OWNER/FEED`, `apiary subscriptions`, `apiary stream`, and
//! `apiary webhook create|list|delete|resume`.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::HubArgs;

fn client(timeout: Option<Duration>) -> anyhow::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("apiary-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

fn base(hub: &HubArgs) -> anyhow::Result<String> {
    let b = hub.hub.trim_end_matches('/').to_string();
    if !(b.starts_with("http://") || b.starts_with("https://")) {
        bail!("--hub must be an http:// or https:// URL, not {b:?}");
    }
    Ok(b)
}

fn authed(req: reqwest::blocking::RequestBuilder, hub: &HubArgs) -> reqwest::blocking::RequestBuilder {
    match hub.token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// Send, and turn an error reply into a message naming the hub's code.
fn send(req: reqwest::blocking::RequestBuilder, what: &str) -> anyhow::Result<Option<Value>> {
    let resp = req.send().with_context(|| format!("{what}: cannot reach the hub"))?;
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    if !status.is_success() {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let msg = v["error"]["message"].as_str().unwrap_or(text.as_str());
        bail!("{what}: {} {}", status.as_u16(), msg);
    }
    Ok(if text.is_empty() { None } else { Some(serde_json::from_str(&text).context("the hub's reply is not JSON")?) })
}

/// Control characters written as escapes, so a value cannot drive the terminal.
fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[derive(Args, Debug)]
#[command(after_help = "Subscriptions are kept by the hub for your token's user; `apiary stream --subscriptions`
and webhooks with `--subscriptions` follow them (docs/firehose.md).

Examples:
  apiary subscribe alice/honeypot --hub https://hub.example --token $TOKEN
  apiary unsubscribe alice/honeypot")]
pub struct SubscribeArgs {
    /// The feed, as OWNER/NAME.
    pub feed: String,
    #[command(flatten)]
    pub hub: HubArgs,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary subscriptions --hub https://hub.example --token $TOKEN
  apiary subscriptions --json")]
pub struct SubscriptionsArgs {
    /// Print the hub's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn run_subscribe(a: SubscribeArgs) -> anyhow::Result<ExitCode> {
    let url = format!("{}/api/v1/subscriptions", base(&a.hub)?);
    send(authed(client(Some(Duration::from_secs(60)))?.post(url).json(&json!({"feed": a.feed})), &a.hub), "subscribe")?;
    println!("subscribed to {}", safe(&a.feed));
    Ok(ExitCode::SUCCESS)
}

pub fn run_unsubscribe(a: SubscribeArgs) -> anyhow::Result<ExitCode> {
    let Some((owner, name)) = a.feed.split_once('/') else { bail!("write the feed as OWNER/NAME, not {:?}", a.feed) };
    let url = format!("{}/api/v1/subscriptions/{owner}/{name}", base(&a.hub)?);
    send(authed(client(Some(Duration::from_secs(60)))?.delete(url), &a.hub), "unsubscribe")?;
    println!("unsubscribed from {}", safe(&a.feed));
    Ok(ExitCode::SUCCESS)
}

pub fn run_subscriptions(a: SubscriptionsArgs) -> anyhow::Result<ExitCode> {
    let url = format!("{}/api/v1/subscriptions", base(&a.hub)?);
    let v = send(authed(client(Some(Duration::from_secs(60)))?.get(url), &a.hub), "subscriptions")?.unwrap_or(Value::Null);
    if a.json {
        println!("{v}");
    } else {
        for f in v["items"].as_array().into_iter().flatten() {
            println!("{}", safe(f["feed"].as_str().unwrap_or("")));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The native stream's filters, as flags.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this feed (OWNER/NAME); repeat for several.
    #[arg(long = "feed", value_name = "OWNER/NAME")]
    pub feeds: Vec<String>,
    /// Only my subscribed feeds (with --feed: their union).
    #[arg(long)]
    pub subscriptions: bool,
    /// Only these types (comma separated: ipv4,fqdn,url...).
    #[arg(long)]
    pub itype: Option<String>,
    /// Only sightings with every one of these tags (comma separated).
    #[arg(long)]
    pub tags: Option<String>,
    /// Only addresses (and URLs with an address host) inside these CIDRs (comma separated).
    #[arg(long, visible_alias = "cidr")]
    pub network: Option<String>,
    /// Only addresses (and URLs with an address host) of these AS numbers, e.g. AS64500,64501
    /// (the hub needs --asn-db).
    #[arg(long)]
    pub asn: Option<String>,
    /// Only sightings whose publisher claimed at least this confidence.
    #[arg(long)]
    pub confidence: Option<f64>,
}

impl FilterArgs {
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        if !self.feeds.is_empty() {
            m.insert("feeds".into(), Value::String(self.feeds.join(",")));
        }
        if self.subscriptions {
            m.insert("subscriptions".into(), Value::String("true".into()));
        }
        for (k, v) in [("itype", &self.itype), ("tags", &self.tags), ("network", &self.network), ("asn", &self.asn)] {
            if let Some(v) = v {
                m.insert(k.into(), Value::String(v.clone()));
            }
        }
        if let Some(c) = self.confidence {
            m.insert("confidence".into(), Value::String(c.to_string()));
        }
        Value::Object(m)
    }

    fn to_query(&self) -> Vec<(String, String)> {
        self.to_json()
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default()
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Reads GET /api/v1/stream (server-sent events). Without --after it starts at the newest
sighting; with --after SEQ the hub replays its log from there, then continues live. A dropped
connection is resumed after the last seq printed, so nothing is missed or printed twice.
The table is tab-separated: SEQ, REPORTTIME (when the hub recorded it), FEED, ITYPE, INDICATOR,
TAGS. Filters combine (all must match); see docs/firehose.md.

Examples:
  apiary stream --hub https://hub.example --token $TOKEN
  apiary stream --feed alice/honeypot --itype ipv4,ipv6 --tags ssh
  apiary stream --subscriptions --json | jq -r .indicator
  apiary stream --network 185.222.209.0/24 --after 120000 --limit 50")]
pub struct StreamArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Start after this sightings seq (replayed from the hub's log); default: from now.
    #[arg(long, value_name = "SEQ")]
    pub after: Option<i64>,
    /// One JSON object per line (the hub's native fields) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many sightings.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Print the native stream; reconnect after a dropped connection, resuming from the last
/// seq seen (so nothing is missed or printed twice).
pub fn run_stream(a: StreamArgs) -> anyhow::Result<ExitCode> {
    let url = format!("{}/api/v1/stream", base(&a.hub)?);
    let http = client(None)?;
    let mut last = a.after;
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    if !a.json {
        writeln!(out, "SEQ\tREPORTTIME\tFEED\tITYPE\tINDICATOR\tTAGS")?;
        out.flush()?;
    }
    loop {
        let mut req = authed(http.get(&url).query(&a.filter.to_query()), &a.hub).header("Accept", "text/event-stream");
        if let Some(seq) = last {
            req = req.header("Last-Event-ID", seq.to_string());
        }
        let resp = match req.send() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("apiary stream: cannot reach the hub ({e}); retrying in 2 s");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let v: Value = resp.json().unwrap_or(Value::Null);
            bail!("stream: {status} {}", v["error"]["message"].as_str().unwrap_or(""));
        }
        let (mut id, mut event, mut data) = (None::<i64>, String::new(), String::new());
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                match event.as_str() {
                    "sighting" => {
                        let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                        if a.json {
                            writeln!(out, "{data}")?;
                        } else {
                            writeln!(
                                out,
                                "{}\t{}\t{}\t{}\t{}\t{}",
                                v["seq"],
                                super::client::short_time(v["reporttime"].as_str().unwrap_or("-")),
                                safe(v["feed"].as_str().unwrap_or("")),
                                v["itype"].as_str().unwrap_or(""),
                                safe(v["indicator"].as_str().unwrap_or("")),
                                safe(&v["tags"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default()),
                            )?;
                        }
                        out.flush()?;
                        last = id.or(last);
                        printed += 1;
                        if a.limit.is_some_and(|l| printed >= l) {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    "lagged" => eprintln!("apiary stream: fell behind; the hub is catching up from its log ({data})"),
                    "end" => {
                        eprintln!("apiary stream: the hub ended the stream: {data}");
                        return Ok(ExitCode::FAILURE);
                    }
                    _ => {}
                }
                (id, event, data) = (None, String::new(), String::new());
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        eprintln!("apiary stream: connection closed; reconnecting after seq {}", last.map(|s| s.to_string()).unwrap_or("(now)".into()));
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[derive(Args, Debug)]
#[command(after_help = "A webhook POSTs batches of sightings (JSON) to URL as they are recorded, signed with
HMAC-SHA256 in X-Apiary-Signature (docs/firehose.md); it resumes from its cursor after a failure and is
paused after repeated failures (`webhook resume`). Filters are those of `apiary stream`
(docs/firehose.md).

Examples:
  apiary webhook create https://soc.example/hooks/apiary --feed alice/honeypot --itype ipv4
  apiary webhook create https://soc.example/hooks/apiary --subscriptions --secret \"$(openssl rand -hex 16)\"
  apiary webhook list
  apiary webhook resume 3
  apiary webhook delete 3")]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// POST a filtered stream to URL (signed with HMAC-SHA256; the secret is printed once).
    #[command(after_help = "Examples:
  apiary webhook create https://soc.example/hooks/apiary --feed alice/honeypot --itype ipv4,ipv6
  apiary webhook create https://soc.example/hooks/apiary --subscriptions --after 120000")]
    Create {
        /// Where to POST the batches (http:// or https://).
        url: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// The signing secret (16+ characters); generated when absent.
        #[arg(long)]
        secret: Option<String>,
        /// Deliver sightings after this seq; default: from now.
        #[arg(long, value_name = "SEQ")]
        after: Option<i64>,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// My webhooks: id, state, failures, cursor, last update, URL, filter, last error.
    #[command(after_help = "Examples:
  apiary webhook list
  apiary webhook list --json | jq '.items[] | select(.state == \"paused\")'")]
    List {
        /// Print the hub's JSON (`GET /api/v1/webhooks`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Delete a webhook.
    #[command(after_help = "Example:
  apiary webhook delete 3")]
    Delete {
        /// The webhook's id (from `webhook list`).
        id: i64,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Resume a paused webhook from its stored cursor.
    #[command(after_help = "Example:
  apiary webhook resume 3")]
    Resume {
        /// The webhook's id (from `webhook list`).
        id: i64,
        #[command(flatten)]
        hub: HubArgs,
    },
}

pub fn run_webhook(a: WebhookArgs) -> anyhow::Result<ExitCode> {
    let http = client(Some(Duration::from_secs(60)))?;
    match a.command {
        WebhookCommand::Create { url, filter, secret, after, hub } => {
            let body = json!({"url": url, "filter": filter.to_json(), "secret": secret, "after": after});
            let v = send(authed(http.post(format!("{}/api/v1/webhooks", base(&hub)?)).json(&body), &hub), "webhook create")?
                .unwrap_or(Value::Null);
            println!("webhook {} created, delivering after seq {}", v["id"], v["cursor"]);
            println!("secret (shown once): {}", v["secret"].as_str().unwrap_or(""));
        }
        WebhookCommand::List { json, hub } => {
            let v = send(authed(http.get(format!("{}/api/v1/webhooks", base(&hub)?)), &hub), "webhook list")?.unwrap_or(Value::Null);
            if json {
                println!("{v}");
            } else {
                println!("ID\tSTATE\tFAILURES\tCURSOR\tUPDATED\tURL\tFILTER\tLAST_ERROR");
                for w in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        w["id"],
                        w["state"].as_str().unwrap_or(""),
                        w["failures"],
                        w["cursor"],
                        super::client::short_time(w["updated_at"].as_str().unwrap_or("-")),
                        safe(w["url"].as_str().unwrap_or("")),
                        safe(&w["filter"].to_string()),
                        safe(w["last_error"].as_str().unwrap_or("-")),
                    );
                }
            }
        }
        WebhookCommand::Delete { id, hub } => {
            send(authed(http.delete(format!("{}/api/v1/webhooks/{id}", base(&hub)?)), &hub), "webhook delete")?;
            println!("webhook {id} deleted");
        }
        WebhookCommand::Resume { id, hub } => {
            let v = send(authed(http.post(format!("{}/api/v1/webhooks/{id}/resume", base(&hub)?)), &hub), "webhook resume")?
                .unwrap_or(Value::Null);
            println!("webhook {id} {} from seq {}", v["state"].as_str().unwrap_or(""), v["cursor"]);
        }
    }
    Ok(ExitCode::SUCCESS)
}
