//! Trust in the hub: the background jobs that score indicators and model sources, and the
//! routes that show, steer and feed them (docs/trust.md; the math is `apiary_core::trust`,
//! TRUST.md).
//!
//! **Never on the ingest path.** Appends only write the sightings log; one job, started by
//! `apiary serve`, follows the log from its cursor ([`Store::trust_sightings_after`]):
//!
//! 1. every second: fold new sightings and feedback into the [`engine::Engine`] (sightings per
//!    indicator, source and vantage point), run the reliability job (judge pending reports:
//!    lead, late, benign, refuted, retracted; forgetting; tiers), and rescore the indicators
//!    touched, writing confidence, tier and explanation to the store ([`Store::put_scores`]);
//! 2. when a tier changed, and every `full_every` (recency decay): regroup the sources and
//!    rescore every indicator, writing only the scores that changed.
//!
//! The job's state is in memory and rebuilt from the log when it starts (so it is idempotent
//! and restart-safe: reliability is a function of the log and the feedback). On a hub of
//! several nodes it runs under the store's job lease `trust-scoring`, on one node at a time;
//! every node serves the stored scores.

pub mod api;
pub mod engine;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiary_core::trust::score::ScoreTier;
use apiary_store::{IndicatorScore, LeaseOptions, LeasedJob, Result, Store};
use chrono::Utc;
use tokio::sync::watch;

use engine::Engine;

/// The lease the scoring job runs under.
pub const LEASE: &str = "trust-scoring";

/// Timing of the trust job.
#[derive(Debug, Clone)]
pub struct TrustOptions {
    /// Run the job at all (off: scores stay as stored).
    pub enabled: bool,
    /// How often the log is polled for new sightings and feedback.
    pub poll: Duration,
    /// Full rescore (recency decay, reliability changes) at least this often.
    pub full_every: Duration,
    /// Threads of a full rescore.
    pub threads: usize,
}

impl Default for TrustOptions {
    fn default() -> Self {
        TrustOptions { enabled: true, poll: Duration::from_millis(500), full_every: Duration::from_secs(3600), threads: 2 }
    }
}

/// Log entries read per store call.
const LOG_PAGE: usize = 50_000;
/// Scores written per store call.
const WRITE_BATCH: usize = 10_000;

/// The running job (see [`start`]).
pub struct TrustJob {
    job: Option<LeasedJob>,
}

impl TrustJob {
    /// Stop the job and release its lease.
    pub async fn shutdown(self) {
        if let Some(job) = self.job {
            job.shutdown().await;
        }
    }
}

/// Start the scoring and reliability job under its lease.
pub fn start(store: Arc<dyn Store>, options: TrustOptions) -> TrustJob {
    if !options.enabled {
        return TrustJob { job: None };
    }
    let job = LeasedJob::spawn(store.clone(), LEASE, LeaseOptions::default(), move |stop| {
        let (store, options) = (store.clone(), options.clone());
        async move { run(store, options, stop).await }
    });
    TrustJob { job: Some(job) }
}

/// The job's loop: catch up from the log, then poll, until `stop`.
pub async fn run(store: Arc<dyn Store>, options: TrustOptions, mut stop: watch::Receiver<bool>) {
    let mut job = Job::new(options.clone());
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = job.step(&store).await {
            tracing::warn!("trust job: {e}; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(options.poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy)]
pub struct StepReport {
    pub sightings: usize,
    pub feedback: usize,
    pub rescored: usize,
    pub written: usize,
    pub full: bool,
    /// Where the time went: reading the log and feedback, folding and judging; scoring and
    /// explaining; writing the scores.
    pub read: Duration,
    pub score: Duration,
    pub write: Duration,
}

/// The job: its engine and when it last rescored everything.
pub struct Job {
    engine: Option<Engine>,
    options: TrustOptions,
    last_full: Option<Instant>,
    first: bool,
}

impl Job {
    pub fn new(options: TrustOptions) -> Job {
        Job { engine: Some(Engine::new(crate::export::allowlist())), options, last_full: None, first: true }
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine is back after every step")
    }

    /// One round: sources, new sightings, feedback, judging, rescoring, writing.
    pub async fn step(&mut self, store: &Arc<dyn Store>) -> Result<StepReport> {
        let mut report = StepReport::default();
        let mut engine = self.engine.take().expect("the engine is back after every step");
        let result = self.step_with(store, &mut engine, &mut report).await;
        self.engine = Some(engine);
        result.map(|()| report)
    }

    /// One step with a full rescore (every indicator), whatever the schedule.
    pub async fn step_full(&mut self, store: &Arc<dyn Store>) -> Result<StepReport> {
        self.last_full = None;
        self.step(store).await
    }

    async fn step_with(&mut self, store: &Arc<dyn Store>, engine: &mut Engine, report: &mut StepReport) -> Result<()> {
        let started = Instant::now();
        let sources = store.list_sources().await?;
        let sensors = store.list_sensors(None).await?;
        engine.sync_sources(&sources, &sensors, self.first);
        if engine.rebuild {
            // A sensor already seen was (re)declared in another network: its sightings must be
            // folded in again with their new vantage point.
            tracing::info!("trust job: a sensor's declared network changed; rebuilding from the log");
            *engine = Engine::new(crate::export::allowlist());
            self.first = true;
            engine.sync_sources(&sources, &sensors, true);
        }
        if self.first {
            engine.regroup();
        }
        loop {
            let page = store.trust_sightings_after(engine.cursor, LOG_PAGE).await?;
            if page.is_empty() {
                break;
            }
            // A feed created after the source sync: sync again before folding its sightings in.
            if page.iter().any(|s| engine.sources.get(s.feed_id as usize).is_none_or(|x| !x.exists)) {
                let sources = store.list_sources().await?;
                let sensors = store.list_sensors(None).await?;
                engine.sync_sources(&sources, &sensors, false);
            }
            report.sightings += page.len();
            for s in &page {
                engine.add_sighting(s);
            }
            // Judge as the log goes by, so a replay judges in the order things happened.
            engine.judge();
            if page.len() < LOG_PAGE {
                break;
            }
        }
        loop {
            let page = store.feedback_after(engine.feedback_cursor, 1000).await?;
            if page.is_empty() {
                break;
            }
            report.feedback += page.len();
            for f in &page {
                engine.add_feedback(f);
            }
        }
        engine.clock = engine.clock.max(Utc::now().timestamp());
        let tiers_before: Vec<_> = engine.sources.iter().map(|s| s.meta.tier).collect();
        engine.judge();
        let tiers_changed = engine.tiers_changed || engine.sources.iter().map(|s| s.meta.tier).ne(tiers_before.iter().copied());
        let full = self.first || tiers_changed || self.last_full.is_none_or(|t| t.elapsed() >= self.options.full_every);
        let indices = if full {
            engine.regroup();
            engine.take_dirty();
            engine.all()
        } else {
            engine.take_dirty()
        };
        report.full = full;
        report.rescored = indices.len();
        report.read = started.elapsed();
        // Score and write a batch at a time: a million explanations at once would be gigabytes.
        for part in indices.chunks(WRITE_BATCH) {
            let t = Instant::now();
            let scores = rescore(engine, part, full, self.options.threads);
            report.score += t.elapsed();
            report.written += scores.len();
            let t = Instant::now();
            store.put_scores(scores).await?;
            report.write += t.elapsed();
        }
        if full || report.sightings > 0 || report.feedback > 0 {
            store.update_sources(engine.source_updates()).await?;
        }
        if full {
            self.last_full = Some(Instant::now());
        }
        self.first = false;
        Ok(())
    }
}

/// Score `indices` and build the rows to write: every one when touched (its explanation
/// changed), only those whose confidence or tier moved on a full rescore.
pub fn rescore(engine: &mut Engine, indices: &[u32], full: bool, threads: usize) -> Vec<IndicatorScore> {
    let now = Utc::now();
    let ts = now.timestamp();
    let threads = threads.max(1);
    let chunk = indices.len().div_ceil(threads).max(1);
    let eng: &Engine = engine;
    let parts: Vec<Vec<(u32, (u8, u8), Option<IndicatorScore>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut scratch = engine::ScoreScratch::default();
                    let mut out = Vec::new();
                    for &i in part {
                        let score = eng.score(&mut scratch, i, ts);
                        let key = (score.confidence(), tier_rank(score.tier));
                        let item = &eng.items[i as usize];
                        if full && item.stored == Some(key) {
                            continue;
                        }
                        let ex = eng.explain(i, ts);
                        let mut explanation = serde_json::to_value(&ex).unwrap_or(serde_json::Value::Null);
                        eng.name_vantage(&mut explanation);
                        let row = IndicatorScore {
                            indicator: item.value.to_string(),
                            itype: item.itype,
                            confidence: ex.confidence,
                            tier: ex.tier,
                            log_odds: ex.log_odds,
                            explanation,
                            scored_at: now,
                        };
                        out.push((i, key, Some(row)));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut rows = Vec::new();
    for part in parts {
        for (i, key, row) in part {
            engine.items[i as usize].stored = Some(key);
            rows.extend(row);
        }
    }
    rows
}

fn tier_rank(t: ScoreTier) -> u8 {
    match t {
        ScoreTier::Observe => 0,
        ScoreTier::Suspicious => 1,
        ScoreTier::Block => 2,
    }
}
