//! `apiary simulate`: run the trust model and the baselines on a simulated Internet with
//! adversaries, and print one table (or JSON lines). The world and the models live in
//! `apiary_core::trust::sim`; this file only reads flags and prints.

use apiary_core::trust::sim::{self, Adversary, Row, WorldParams};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `apiary simulate`.
#[derive(Args, Debug)]
#[command(after_long_help = LONG_HELP)]
pub struct SimulateArgs {
    /// The world's random seed: the same seed prints the same table.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object per line:
    /// {"model","adversary","share","precision","recall","auc","poison","ttb_hours"}.
    #[arg(long)]
    pub json: bool,

    /// Adversary shares of all sources (0 runs the world without adversaries).
    #[arg(long, value_delimiter = ',', default_value = "0,0.05,0.1,0.2,0.3")]
    pub shares: Vec<f64>,

    /// Adversary types to run: copycat-concentrated, copycat-distributed, patient,
    /// patient-rotating [default: all four].
    #[arg(long, value_delimiter = ',', value_parser = parse_adversary)]
    pub adversaries: Vec<Adversary>,

    /// A world a tenth of the size (for tests and quick looks).
    #[arg(long)]
    pub small: bool,

    /// Worlds run in parallel.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,

    /// Attacker addresses [default: 30000; with --small 8000].
    #[arg(long)]
    pub attackers: Option<usize>,
    /// Pareto shape of attacker activity [default: 1.1].
    #[arg(long)]
    pub pareto_shape: Option<f64>,
    /// Share of attackers localized to one region [default: 0.3].
    #[arg(long)]
    pub localized: Option<f64>,
    /// Popular benign addresses [default: 4000; with --small 1000].
    #[arg(long)]
    pub popular: Option<usize>,
    /// Share of non-allowlisted popular addresses inside hold-listed ranges [default: 0.8].
    #[arg(long)]
    pub hold_coverage: Option<f64>,
    /// Research scanners [default: 300; with --small 60].
    #[arg(long)]
    pub research_scanners: Option<usize>,
    /// Seed honeypots [default: 10; with --small 6].
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Noisy public feeds [default: 20; with --small 8].
    #[arg(long)]
    pub noisy_feeds: Option<usize>,
    /// Other sources (honest honeypots, some replaced by adversaries) [default: 170; with --small 66].
    #[arg(long)]
    pub others: Option<usize>,
    /// Benign targets each adversary family injects [default: 300; with --small 80].
    #[arg(long)]
    pub targets: Option<usize>,
    /// Days patient Sybils behave before injecting [default: 45].
    #[arg(long)]
    pub patience_days: Option<f64>,
    /// Warm-up days before the evaluation window [default: 40].
    #[arg(long)]
    pub warmup_days: Option<f64>,
    /// Days of the evaluation window [default: 30].
    #[arg(long)]
    pub days: Option<f64>,
}

const LONG_HELP: &str = "\
The world (the defaults of the trust model, TRUST.md): ~30,000 attackers with Pareto(1.1)
activity, 30% localized to one region; 4,000 popular benign addresses (half allowlisted, most of
the rest in hold-listed ranges); 300 research scanners; 10 seed honeypots, 20 noisy public feeds
(0-15% false positives, some copying), 170 other sources of which `share` of all sources are
adversaries: copycat Sybils (copy public feeds and co-inject benign targets; on 3 ASNs or one each)
or patient Sybils (run real honeypots until trusted, then inject; all of them, or ~3 per target).
Everyone starts on day 0; the evaluation window follows the warm-up.

Columns: precision of BLOCK; recall on attackers honest sensors in >= 2 networks saw; AUC of the
peak score; poison = share of the adversary's targets that reached BLOCK; ttb_hours = median hours
from a mass scanner's first activity to BLOCK. null where undefined. See TRUST.md.

Examples:
  apiary simulate --seed 1
  apiary simulate --small --json --shares 0,0.3
  apiary simulate --small --adversaries patient --attackers 20000 --pareto-shape 1.3 --localized 0.5";

fn parse_adversary(s: &str) -> Result<Adversary, String> {
    Adversary::from_name(s).ok_or_else(|| format!("unknown adversary `{s}`"))
}

pub fn run(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    let mut p = if a.small { WorldParams::small() } else { WorldParams::default() };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { p.$f = v; } )* };
    }
    set!(attackers, pareto_shape, localized, popular, hold_coverage, research_scanners, seeds, noisy_feeds, others, targets, patience_days, warmup_days, days);
    if let Some(bad) = a.shares.iter().find(|s| !(0.0..=1.0).contains(*s)) {
        anyhow::bail!("--shares: {bad} is not a fraction between 0 and 1");
    }
    let adversaries = if a.adversaries.is_empty() { Adversary::ATTACKS.to_vec() } else { a.adversaries.clone() };
    let rows = sim::run_all(&p, a.seed, &a.shares, &adversaries, a.threads);
    let mut out = std::io::stdout().lock();
    if a.json {
        for r in &rows {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
    } else {
        print_table(&mut out, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3}"));
    writeln!(out, "{:<20} {:<22} {:>5} {:>9} {:>7} {:>6} {:>7} {:>9}", "model", "adversary", "share", "precision", "recall", "auc", "poison", "ttb_hours")?;
    for r in rows {
        writeln!(
            out,
            "{:<20} {:<22} {:>5} {:>9} {:>7} {:>6} {:>7} {:>9}",
            r.model,
            r.adversary,
            r.share,
            f(r.precision),
            f(r.recall),
            f(r.auc),
            f(r.poison),
            r.ttb_hours.map_or("-".to_string(), |x| format!("{x:.1}"))
        )?;
    }
    Ok(())
}
