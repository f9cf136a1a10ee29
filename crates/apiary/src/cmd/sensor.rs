//! `apiary sensor run`: the shipper beside a honeypot (crate `apiary-sensor`, docs/sensor.md).

use anyhow::{bail, Context};
use apiary_sensor::{Config, Mode};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

/// Ship a honeypot's log to a hub, exactly once (`apiary sensor run`).
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary sensor run --config /etc/apiary/sensor.toml
  apiary sensor run --log var/log/cowrie/cowrie.json --hub https://hub.example --token-file sensor.token \\
      --feed ops/honeypots --spool /var/lib/apiary-sensor

`apiary sensor run --help` lists every setting; docs/sensor.md explains the guarantees.")]
pub struct SensorArgs {
    #[command(subcommand)]
    pub command: SensorCommand,
}

#[derive(Subcommand, Debug)]
pub enum SensorCommand {
    /// Follow the honeypot's JSON log and ship every event to a feed on the hub.
    Run(RunArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary sensor run --log /home/cowrie/cowrie/var/log/cowrie/cowrie.json --hub https://hub.example \\
      --token-file /etc/apiary/sensor.token --feed ops/honeypots --sensor fra1 --spool /var/lib/apiary-sensor
  apiary sensor run --config /etc/apiary/sensor.toml
  apiary sensor run --config sensor.toml --once --json     # ship what is there now, print counts, exit

It follows the log across rotation (rename + new file) and truncation (copytruncate), ships only
complete lines, keeps events in a bounded spool on disk while the hub is away (retrying with capped,
jittered exponential backoff), and records its position as shipped only after the hub acknowledged.
Every event carries an idempotency key (sensor, file, line offset), so restarting either side never
stores an event twice. --drop removes fields (e.g. password,input) before anything leaves the sensor.

The config file is TOML with the same names (log, hub, token, feed, sensor, spool, drop_fields,
batch_events, spool_max_bytes, poll_ms, backoff_initial_ms, backoff_max_ms, ...), optionally under
[sensor]; flags override it. The feed's owner registers the sensor's network with
`apiary feed sensor ...`. See docs/sensor.md.")]
pub struct RunArgs {
    /// A TOML config file (see below); flags given too override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The honeypot's JSON log (Cowrie's cowrie.json), or the config file's `log`.
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
    /// The hub's base URL.
    #[arg(long, value_name = "URL", env = "APIARY_HUB")]
    pub hub: Option<String>,
    /// A write token of the feed's owner (visible in the process list: prefer --token-file or APIARY_TOKEN).
    #[arg(long, value_name = "TOKEN", env = "APIARY_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the token from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The feed, OWNER/NAME.
    #[arg(long, value_name = "OWNER/FEED")]
    pub feed: Option<String>,
    /// This sensor's name, the source of its sightings (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Directory for the spool and the shipper's position (keep it across restarts); at most
    /// spool_max_bytes on disk [default: 256 MiB].
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Fields removed from every event before it leaves the sensor (repeat or comma-separate).
    #[arg(long, value_name = "FIELD", value_delimiter = ',')]
    pub drop: Vec<String>,
    /// Events per request [default: 1000, or the config file's batch_events].
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Ship what the log holds now (waiting for the hub if it is away), then exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: print the counts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Log filter (error, warn, info, debug).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

fn config(a: &RunArgs) -> anyhow::Result<Config> {
    let mut c = match &a.config {
        Some(path) => apiary_sensor::load_config(path).map_err(anyhow::Error::msg)?,
        None => {
            let (Some(log), Some(spool)) = (&a.log, &a.spool) else {
                bail!("give --config FILE, or at least --log PATH, --hub URL, --token, --feed OWNER/FEED and --spool DIR");
            };
            Config::new(log.clone(), spool.clone())
        }
    };
    if let Some(v) = &a.log {
        c.log = v.clone();
    }
    if let Some(v) = &a.spool {
        c.spool = v.clone();
    }
    if let Some(v) = &a.hub {
        c.hub = v.clone();
    }
    if let Some(v) = &a.token {
        c.token = v.clone();
    }
    if let Some(path) = &a.token_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the token file {}", path.display()))?;
        c.token = text.lines().next().unwrap_or("").trim().to_owned();
    }
    if let Some(v) = &a.feed {
        c.feed = v.clone();
    }
    if let Some(v) = &a.sensor {
        c.sensor = v.clone();
    }
    if !a.drop.is_empty() {
        c.drop_fields = a.drop.iter().map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect();
    }
    if let Some(n) = a.batch {
        c.batch_events = n;
    }
    c.validated().map_err(anyhow::Error::msg)
}

pub fn run(a: SensorArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        SensorCommand::Run(a) => run_sensor(a),
    }
}

fn run_sensor(a: RunArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_new(&a.log_level).with_context(|| format!("log filter `{}`", a.log_level))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let config = config(&a)?;
    let mode = if a.once { Mode::Once } else { Mode::Follow };
    // Every step is durable as it happens, so an interrupt (or kill -9) loses nothing: the
    // process needs no shutdown hook.
    let stop = AtomicBool::new(false);
    let stats = apiary_sensor::run(&config, mode, &stop)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else if a.once {
        println!(
            "{} lines read; hub stored {} new events, {} it already held, refused {}; {} lines not JSON, {} with invalid UTF-8",
            stats.lines, stats.accepted, stats.duplicates, stats.refused, stats.not_json, stats.invalid_utf8
        );
        for p in &stats.problems {
            println!("  line {} of {}: {}", p.line, super::terminal_safe(&p.file), super::terminal_safe(&p.reason));
        }
    }
    Ok(ExitCode::SUCCESS)
}
