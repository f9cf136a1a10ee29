//! `apiary migrate`: copy a SQLite hub into PostgreSQL (docs/scale-out.md, "Moving a hub").

use super::store_url::StoreUrl;
use anyhow::{bail, Context};
use apiary_store::postgres::PostgresStore;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Copy a SQLite hub (users, token hashes, feeds, grants, hpfeeds idents, values, feed records,
/// the sightings log with its seqs and idempotency keys, subscriptions, webhooks, sources with
/// their pinned tiers, feedback, sensors, raw sensor events with their keys, sessions) into an empty
/// PostgreSQL database, then check every table's count. One transaction: on any failure or
/// count mismatch nothing is kept. A target that already holds users, feeds or sightings is
/// refused. Stop the hub (or accept that what it writes during the copy stays behind) first.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary migrate --from sqlite:/srv/apiary --to postgres://apiary@db1/apiary
  apiary migrate --from /srv/apiary --to postgres://apiary@db1/apiary --json

Then start the nodes with: apiary serve --store postgres://apiary@db1/apiary --bus nats://nats1:4222
Tokens keep working (their hashes are copied); stream cursors and webhook cursors stay valid
(log seqs are kept).")]
pub struct MigrateArgs {
    /// The SQLite hub: sqlite:DIR or a data directory.
    #[arg(long, value_name = "sqlite:DIR")]
    pub from: String,
    /// The PostgreSQL database (empty; its schema is created): postgres://USER@HOST[:PORT]/DB,
    /// optionally ?schema=NAME for a schema of its own.
    #[arg(long, value_name = "postgres://...")]
    pub to: String,
    /// Print the result as one JSON object (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: MigrateArgs) -> anyhow::Result<ExitCode> {
    let StoreUrl::Sqlite(dir) = StoreUrl::parse(&a.from)? else { bail!("--from must be a SQLite hub (sqlite:DIR), not {}", a.from) };
    let to = StoreUrl::parse(&a.to)?;
    let StoreUrl::Postgres(url) = &to else { bail!("--to must be postgres://USER@HOST/DB, not {}", a.to) };
    let rt = super::admin::runtime()?;
    let started = std::time::Instant::now();
    let report = rt.block_on(async {
        let store = PostgresStore::connect(url).await.with_context(|| format!("cannot open {}", to.label()))?;
        let mut last_table = String::new();
        // On a terminal one line per table, rewritten in place; otherwise (a log) one line per update.
        let tty = std::io::stderr().is_terminal();
        store
            .import_sqlite(&dir, |table, done, total| {
                let mut err = std::io::stderr();
                if !tty {
                    let _ = writeln!(err, "{table}: {done}/{total}");
                    return;
                }
                if table != last_table && !last_table.is_empty() {
                    let _ = writeln!(err);
                }
                let _ = write!(err, "\r{table}: {done}/{total}");
                last_table = table.to_string();
            })
            .await
            .with_context(|| format!("cannot migrate {} into {}", dir.display(), to.label()))
    })?;
    if std::io::stderr().is_terminal() {
        eprintln!(); // ends the progress line
    }
    if a.json {
        let tables: Vec<serde_json::Value> = report
            .tables
            .iter()
            .map(|(t, s, p)| serde_json::json!({"table": t, "sqlite": s, "postgres": p}))
            .collect();
        let skipped: Vec<serde_json::Value> = report.not_copied.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect();
        println!(
            "{}",
            serde_json::json!({"from": format!("sqlite:{}", dir.display()), "to": to.label(), "verified": report.verified(),
                "seconds": started.elapsed().as_secs_f64(), "tables": tables, "not_copied": skipped})
        );
    } else {
        println!("copied {} into {} in {:.1} s; counts verified:", dir.display(), to.label(), started.elapsed().as_secs_f64());
        for (t, s, p) in &report.tables {
            println!("  {t:<20} {s:>10} = {p}");
        }
        for (t, n) in &report.not_copied {
            println!("  not copied: {t} ({n} rows; derived, made again by the hub's jobs)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
