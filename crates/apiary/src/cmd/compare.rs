//! `apiary feed compare`: the feed comparison table (docs/compare.md), from a hub
//! (`GET /api/v1/compare`, what its comparison job last stored) or computed now from a data
//! directory (the same code as the hub's job, `apiary_server::compare`).

use anyhow::{bail, Context};
use apiary_core::trust::compare::{Comparison, FeedRow};
use clap::Args;
use serde_json::Value;
use std::process::ExitCode;

use super::admin::{runtime, DataDir};
use super::terminal_safe;

/// Compare the feeds: volume, overlap, latency and marginal lift per feed.
#[derive(Args, Debug)]
#[command(
    after_help = "What each feed adds, measured against the others and the trusted (seed-tier) feeds:\n\
volume, new per day, exclusive contribution, trusted overlap and recall, latency and lead rate,\n\
lifetime, allowlisted share, and marginal lift (BLOCK-tier values that would drop without the\n\
feed). Rows are sorted by marginal lift. docs/compare.md explains every column.\n\n\
With --hub (or APIARY_HUB) the table is the hub's: its comparison job recomputes it every 10\n\
minutes, and you see the feeds your token may read. Without, it is computed now from the data\n\
directory (--data, APIARY_DATA; default ./apiary-data), over every feed.\n\n\
Examples:
  apiary feed compare --data ./apiary-data
  apiary feed compare --hub https://hub.example --token $T
  apiary feed compare --json | jq 'select(.marginal_lift > 0)'
  apiary feed compare --overlap"
)]
pub struct CompareArgs {
    /// Read the comparison from this hub instead of computing it from a data directory.
    #[arg(long, value_name = "URL", env = "APIARY_HUB")]
    pub hub: Option<String>,
    /// An API token for the hub (without one, public feeds only).
    #[arg(long, value_name = "TOKEN", env = "APIARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON lines: one row per feed (with --overlap: the matrix as one object).
    #[arg(long)]
    pub json: bool,
    /// Print the pairwise overlap matrix (|A ∩ B|, the diagonal is the volume) instead.
    #[arg(long)]
    pub overlap: bool,
    /// Only values of this type (ipv4, ipv6, fqdn, url, email, md5, sha1, sha256, sha512, asn);
    /// computed from the data directory only (a hub compares all types together).
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "hub")]
    pub itype: Option<String>,
}

pub fn run(a: CompareArgs, data: DataDir) -> anyhow::Result<ExitCode> {
    let (header, rows, overlap) = match &a.hub {
        Some(hub) => from_hub(hub, a.token.as_deref(), a.overlap)?,
        None => {
            let itype = match &a.itype {
                None => None,
                Some(t) => Some(apiary_core::IType::from_name(t).with_context(|| format!("--type {t:?}: not an indicator type"))?),
            };
            let c = from_data(&data, itype)?;
            let header = header_of(&c);
            (header, c.rows.iter().map(row_json).collect(), overlap_json(&c))
        }
    };
    if a.overlap {
        print_overlap(&overlap, a.json);
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        for r in &rows {
            println!("{r}");
        }
    } else {
        println!("{header}");
        print_table(&rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn from_data(data: &DataDir, itype: Option<apiary_core::IType>) -> anyhow::Result<Comparison> {
    let store = data.open()?;
    let rt = runtime()?;
    let c = rt
        .block_on(apiary_server::compare::compute(
            store.as_ref(),
            apiary_server::export::allowlist(),
            chrono::Utc::now().timestamp(),
            itype,
        ))
        .context("cannot compare the feeds")?;
    Ok(c)
}

fn header_of(c: &Comparison) -> String {
    format!(
        "{} values, {} listed by a trusted feed, {} at BLOCK; trusted: {}",
        c.values, c.trusted_values, c.block_values, c.trusted_by
    )
}

fn row_json(r: &FeedRow) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    v
}

fn overlap_json(c: &Comparison) -> Value {
    serde_json::json!({"feeds": c.overlap.feeds, "intersect": c.overlap.intersect, "differential": c.overlap.differential})
}

fn from_hub(hub: &str, token: Option<&str>, overlap: bool) -> anyhow::Result<(String, Vec<Value>, Value)> {
    let base = hub.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--hub must be an http:// or https:// URL, not {base:?}");
    }
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("apiary-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let get = |path: &str| -> anyhow::Result<Value> {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            req = req.bearer_auth(t);
        }
        let resp = req.send().with_context(|| format!("cannot reach the hub at {base}"))?;
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body["error"]["message"].as_str().unwrap_or("no message");
            bail!("the hub answered {}: {}", status.as_u16(), terminal_safe(msg));
        }
        Ok(body)
    };
    let body = get("/api/v1/compare")?;
    if body["pending"].as_bool() == Some(true) {
        bail!("the hub has not compared its feeds yet (its job runs shortly after start, then every 10 minutes); try again in a minute");
    }
    let header = format!(
        "{} values, {} listed by a trusted feed, {} at BLOCK; trusted: {} (computed {})",
        body["values"],
        body["trusted_values"],
        body["block_values"],
        terminal_safe(body["trusted_by"].as_str().unwrap_or("?")),
        terminal_safe(body["computed_at"].as_str().unwrap_or("?"))
    );
    let rows = body["items"].as_array().cloned().unwrap_or_default();
    let matrix = if overlap { get("/api/v1/compare/overlap")? } else { Value::Null };
    Ok((header, rows, matrix))
}

fn pct(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{:.1}", x * 100.0))
}

fn num(v: &Value, decimals: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.decimals$}"))
}

/// The table, columns aligned to their widest cell.
fn print_table(rows: &[Value]) {
    let head = [
        "FEED",
        "TRUSTED",
        "VOLUME",
        "NEW/DAY",
        "EXCL%",
        "T-OVERLAP%",
        "T-RECALL%",
        "LATENCY-H",
        "LEAD%",
        "LIFETIME-H",
        "ALLOW%",
        "BLOCK",
        "LIFT",
    ];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        cells.push(vec![
            terminal_safe(r["feed"].as_str().unwrap_or("?")).into_owned(),
            if r["trusted"].as_bool() == Some(true) {
                "yes".into()
            } else {
                "no".into()
            },
            r["volume"].to_string(),
            num(&r["new_per_day"], 1),
            pct(&r["exclusive_share"]),
            pct(&r["trusted_overlap_share"]),
            pct(&r["trusted_recall"]),
            num(&r["latency_median_hours"], 1),
            pct(&r["lead_rate"]),
            num(&r["lifetime_median_hours"], 1),
            pct(&r["allowlisted_share"]),
            r["block"].to_string(),
            r["marginal_lift"].to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| cells.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn print_overlap(m: &Value, json: bool) {
    if json {
        println!("{m}");
        return;
    }
    let feeds: Vec<String> = m["feeds"]
        .as_array()
        .map(|a| a.iter().map(|f| terminal_safe(f.as_str().unwrap_or("?")).into_owned()).collect())
        .unwrap_or_default();
    let w0 = feeds.iter().map(|f| f.chars().count()).max().unwrap_or(4).max(4);
    println!(
        "|A ∩ B| (row A, column B; the diagonal is A's volume). Columns: {}",
        (1..=feeds.len())
            .map(|i| format!("{i}={}", feeds[i - 1]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let cols: Vec<String> = (1..=feeds.len()).map(|i| i.to_string()).collect();
    let cw: Vec<usize> = (0..feeds.len())
        .map(|b| {
            m["intersect"]
                .as_array()
                .map_or(1, |rows| rows.iter().map(|r| r[b].to_string().len()).max().unwrap_or(1))
                .max(cols[b].len())
        })
        .collect();
    let mut head = format!("{:<w0$}", "FEED");
    for (b, c) in cols.iter().enumerate() {
        head.push_str(&format!("  {c:>w$}", w = cw[b]));
    }
    println!("{head}");
    for (a, f) in feeds.iter().enumerate() {
        let mut line = format!("{f:<w0$}");
        for (b, w) in cw.iter().enumerate() {
            line.push_str(&format!("  {:>w$}", m["intersect"][a][b].to_string(), w = w));
        }
        println!("{line}");
    }
}
