//! Trust commands (docs/trust.md): `apiary source tier|list`, `apiary score`, `apiary feedback
//! false-positive`, `apiary retract`. With `--data DIR` they work on the data directory (the
//! store the hub serves); otherwise they ask a hub (`--hub URL --token T`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use apiary_core::{parse, ParseOptions};
use apiary_server::trust::api::{parse_tier, score_view, source_view};
use apiary_server::trust::{Job, TrustOptions};
use apiary_store::sqlite::SqliteStore;
use apiary_store::Store;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::admin::{runtime, split_feed};
use super::client::{Hub, HubArgs};
use super::terminal_safe;

/// Where to work: the data directory (offline) or a hub.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Work on this data directory instead of asking a hub (admin, offline).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub hub: HubArgs,
}

impl Target {
    fn store(&self) -> anyhow::Result<Option<Arc<dyn Store>>> {
        match &self.data {
            None => Ok(None),
            Some(dir) => {
                let s = SqliteStore::open(dir).with_context(|| format!("cannot open the data directory {}", dir.display()))?;
                Ok(Some(Arc::new(s)))
            }
        }
    }

    fn hub(&self) -> anyhow::Result<Hub> {
        Hub::new(&self.hub.hub, self.hub.token.clone())
    }
}

// ---------------------------------------------------------------- sources

/// Feeds as sources: their tier (seed, established, probation, quarantined) and reliability.
#[derive(Args, Debug)]
#[command(after_help = "Every feed is a source. Admins name the seeds; everything else is earned by the reliability
job (lead-corroborated reports) or lost (benign, refuted or retracted reports). A new feed of a
non-admin starts on probation; an admin's feed starts as a seed.

Examples:
  apiary source list --data ./apiary-data
  apiary source tier ops/honeypots seed --data ./apiary-data
  apiary source tier bob/list quarantined --hub https://hub.example --token $ADMIN_TOKEN
  apiary source tier carol/pots probation --asn 64500     # declare its sensors' network")]
pub struct SourceArgs {
    #[command(subcommand)]
    pub command: SourceCommand,
}

#[derive(Subcommand, Debug)]
pub enum SourceCommand {
    /// Set a feed's tier (admin). seed, established and quarantined are pinned (the job keeps
    /// them); probation lets the feed earn its tier again.
    #[command(after_help = "Examples:
  apiary source tier ops/honeypots seed --data ./apiary-data
  apiary source tier bob/list quarantined --hub https://hub.example --token $ADMIN_TOKEN
  apiary source tier carol/pots probation --asn 64500 --json")]
    Tier(TierArgs),
    /// List the sources: tier, reliability, leads, penalties, independence group.
    #[command(after_help = "Examples:
  apiary source list --data ./apiary-data
  apiary source list --hub https://hub.example --token $TOKEN --json")]
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct TierArgs {
    /// The feed, USER/FEED.
    pub feed: String,
    /// seed, established, probation or quarantined.
    pub tier: String,
    /// Also declare the ASN its sensors are in (sources on one ASN share an independence group).
    #[arg(long, value_name = "ASN")]
    pub asn: Option<u32>,
    /// Print the source as JSON (the hub's `/api/v1/sources` form) instead of one line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// JSON lines, one source per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub fn run_source(a: SourceArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        SourceCommand::Tier(a) => tier(a),
        SourceCommand::List(a) => list(a),
    }
}

fn tier(a: TierArgs) -> anyhow::Result<ExitCode> {
    let (owner, name) = split_feed(&a.feed)?;
    let tier = parse_tier(&a.tier).map_err(|e| anyhow::anyhow!(e.message))?;
    let view = match a.target.store()? {
        Some(store) => runtime()?.block_on(async {
            if let Some(asn) = a.asn {
                store.set_source_asn(&owner, &name, Some(i64::from(asn))).await?;
            }
            Ok::<_, anyhow::Error>(source_view(&store.set_source_tier(&owner, &name, tier).await?, true))
        })?,
        None => {
            let mut body = json!({"tier": tier.as_str()});
            if let Some(asn) = a.asn {
                body["asn"] = json!(asn);
            }
            a.target.hub()?.call(reqwest::Method::PUT, &format!("/api/v1/sources/{owner}/{name}/tier"), Some(&body))?
        }
    };
    if a.json {
        println!("{view}");
    } else {
        println!("{}: {}{}", a.feed, view["tier"].as_str().unwrap_or("?"), if view["pinned"] == true { " (pinned)" } else { "" });
    }
    Ok(ExitCode::SUCCESS)
}

fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let items: Vec<Value> = match a.target.store()? {
        Some(store) => runtime()?.block_on(async { Ok::<_, anyhow::Error>(store.list_sources().await?.iter().map(|s| source_view(s, true)).collect()) })?,
        None => a.target.hub()?.call(reqwest::Method::GET, "/api/v1/sources", None)?["items"].as_array().cloned().unwrap_or_default(),
    };
    if a.json {
        for s in &items {
            println!("{s}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<32} {:<12} {:>11} {:>6} {:>9} {:>6}", "FEED", "TIER", "RELIABILITY", "LEADS", "PENALTIES", "GROUP");
    for s in &items {
        let pinned = if s["pinned"] == true { "*" } else { "" };
        println!(
            "{:<32} {:<12} {:>11.3} {:>6} {:>9} {:>6}",
            terminal_safe(s["feed"].as_str().unwrap_or("?")),
            format!("{}{pinned}", s["tier"].as_str().unwrap_or("?")),
            s["reliability"].as_f64().unwrap_or(0.0),
            s["leads"].as_i64().unwrap_or(0),
            s["penalties"].as_i64().unwrap_or(0),
            s["group"].as_i64().map_or("-".to_string(), |g| g.to_string()),
        );
    }
    println!("(* pinned by an admin)");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- score

/// Show an indicator's score and the terms that made it.
#[derive(Args, Debug)]
#[command(after_help = "Confidence is 0–100 (σ of the log-odds); the tier is OBSERVE, SUSPICIOUS (≥ 50) or BLOCK
(≥ 90 with a seed group or two established groups, and not held). Each term says how much it
added: the type's prior, each independence group's capped evidence, the cap on unknown sources
together, holds (popular infrastructure), false-positive reports. Offline (--data) every feed is
named; through a hub only admins see feed names, others see how many sources each group has.

Examples:
  apiary score 185.222.209.108 --data ./apiary-data
  apiary score malware-drop.net --json --hub https://hub.example --token $TOKEN

Special-use values (private, documentation, ...) and values on an exclude allowlist are never
scored: `apiary parse VALUE` shows why.")]
pub struct ScoreArgs {
    /// The value (any form `apiary parse` understands).
    pub value: String,
    /// Print the score as JSON (the hub's `/api/v1/scores/VALUE` form).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub fn run_score(a: ScoreArgs) -> anyhow::Result<ExitCode> {
    let view = match a.target.store()? {
        Some(store) => {
            let ind = parse(&a.value, None, &ParseOptions::default()).map_err(|r| anyhow::anyhow!("{}: {}", r.code.as_str(), r.message))?;
            runtime()?.block_on(async {
                if store.get_score(&ind.value).await?.is_none() {
                    // No hub has scored it (yet): run the job once over the data directory.
                    Job::new(TrustOptions::default()).step(&store).await?;
                }
                let Some(s) = store.get_score(&ind.value).await? else { bail!("{} is not in any feed", ind.value) };
                let feedback = store.feedback_of(&ind.value).await?;
                let names = store.list_feeds(None).await?.into_iter().map(|f| (f.id, f.full_name())).collect();
                Ok::<_, anyhow::Error>(score_view(&s, Some(&names), &feedback))
            })?
        }
        None => a.target.hub()?.call(reqwest::Method::GET, &format!("/api/v1/scores/{}", a.value.trim()), None)?,
    };
    if a.json {
        println!("{view}");
    } else {
        print_score(&view);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_score(v: &Value) {
    println!(
        "{} ({}): confidence {} — {}",
        terminal_safe(v["indicator"].as_str().unwrap_or("?")),
        v["itype"].as_str().unwrap_or("?"),
        v["confidence"],
        v["tier"].as_str().unwrap_or("?")
    );
    if let Some(why) = v["excluded"].as_str() {
        println!("  never scored: {}", terminal_safe(why));
    }
    for t in v["terms"].as_array().into_iter().flatten() {
        let value = t["value"].as_f64().unwrap_or(0.0);
        let line = match t["term"].as_str().unwrap_or("") {
            "prior" => format!("prior for {}", t["itype"].as_str().unwrap_or("?")),
            "group" => {
                let who = match &t["sources"] {
                    Value::Array(srcs) => srcs
                        .iter()
                        .map(|s| format!("{} (w {:.2}, {} sighting(s))", terminal_safe(s["feed"].as_str().unwrap_or("?")), s["weight"].as_f64().unwrap_or(0.0), s["sightings"]))
                        .collect::<Vec<_>>()
                        .join(", "),
                    n => format!("{n} source(s)"),
                };
                let cap = if t["capped"] == true { format!(", capped at {}", t["cap"]) } else { String::new() };
                format!("{} group {}: {who}{cap}", t["class"].as_str().unwrap_or("?"), t["group"])
            }
            "unknown_cap" => format!("unknown sources together capped at {}", t["cap"]),
            "no_seed" => format!("{} established groups and no seed", t["established_groups"]),
            "false_positive_reports" => format!("{} false-positive report(s)", t["reports"]),
            "hold" => format!("held below BLOCK: {} (no seed saw it)", terminal_safe(t["list"].as_str().unwrap_or("?"))),
            "retracted" => "retracted by its feed (no weight)".to_string(),
            "quarantined" => "reported by quarantined sources (no weight)".to_string(),
            other => other.to_string(),
        };
        println!("  {value:>+6.2}  {line}");
    }
    if let Some(w) = v["block_withheld"].as_str() {
        println!("  BLOCK withheld: {w}");
    }
    let th = &v["thresholds"];
    println!("  tiers: SUSPICIOUS ≥ {}, BLOCK ≥ {} ({})", th["suspicious"], th["block"], th["block_needs"].as_str().unwrap_or(""));
}

// ---------------------------------------------------------------- feedback

/// Tell the hub a value is not malicious (any user with a token).
#[derive(Args, Debug)]
#[command(after_help = "A false-positive report lowers the value's score (bounded) and, when it comes from an admin
or the owner of a seed or established source, refutes the sources that reported it (their
reliability drops). Reports are rate-limited per user.

Example:
  apiary feedback false-positive 185.222.209.108 --reason \"our own mail relay\" --token $TOKEN")]
pub struct FeedbackArgs {
    #[command(subcommand)]
    pub command: FeedbackCommand,
}

#[derive(Subcommand, Debug)]
pub enum FeedbackCommand {
    /// Report VALUE as a false positive.
    #[command(after_help = "Example:
  apiary feedback false-positive 185.222.209.108 --reason \"our own mail relay\" --token $TOKEN")]
    FalsePositive(FalsePositiveArgs),
}

#[derive(Args, Debug)]
pub struct FalsePositiveArgs {
    /// The value that is not malicious (any form `apiary parse` understands).
    pub value: String,
    /// Why (kept with the report).
    #[arg(long)]
    pub reason: String,
    /// Print the hub's reply as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn run_feedback(a: FeedbackArgs) -> anyhow::Result<ExitCode> {
    let FeedbackCommand::FalsePositive(a) = a.command;
    let hub = Hub::new(&a.hub.hub, a.hub.token.clone())?;
    let v = hub.call(reqwest::Method::POST, "/api/v1/false-positives", Some(&json!({"value": a.value, "reason": a.reason})))?;
    if a.json {
        println!("{v}");
    } else {
        println!("reported {} as a false positive (#{})", terminal_safe(v["indicator"].as_str().unwrap_or("?")), v["id"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// Take a value back from one of your feeds (kept in history; gone from its exports and streams).
#[derive(Args, Debug)]
#[command(after_help = "The retraction is kept; the value leaves the feed's exports and is no longer streamed for the
feed, and its sightings in the feed no longer count for the score. A source whose reports are
often retracted loses reliability.

Example:
  apiary retract alice/ssh-scanners 185.222.209.108 --reason \"our own scanner\" --token $TOKEN")]
pub struct RetractArgs {
    /// The feed, USER/FEED.
    pub feed: String,
    /// The value to take back.
    pub value: String,
    /// Why (kept with the retraction).
    #[arg(long)]
    pub reason: String,
    /// Print the hub's reply as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn run_retract(a: RetractArgs) -> anyhow::Result<ExitCode> {
    let (owner, name) = split_feed(&a.feed)?;
    let hub = Hub::new(&a.hub.hub, a.hub.token.clone())?;
    let v = hub.call(
        reqwest::Method::POST,
        &format!("/api/v1/feeds/{owner}/{name}/retractions"),
        Some(&json!({"value": a.value, "reason": a.reason})),
    )?;
    if a.json {
        println!("{v}");
    } else {
        println!("retracted {} from {} (#{})", terminal_safe(v["indicator"].as_str().unwrap_or("?")), a.feed, v["id"]);
    }
    Ok(ExitCode::SUCCESS)
}
