//! The sessionizer: raw events shipped by sensors (`POST .../events`, `api::events`) become
//! sessions and sightings.
//!
//! A background task asks the store for sessions that are ready — a pending event closes the
//! session (`cowrie.session.closed`), or none arrived for [`Options::idle`] — reads all of each
//! session's events, folds them with the Cowrie assembler (`apiary_ingest::cowrie`), derives
//! the sightings with the same code as a log import (the sensor is the shipper's sensor name),
//! appends them through the one intake path (`intake::report_sighting` → `Store::append_sightings`),
//! stores the sessions themselves (`Store::append_sessions`, for attacker timelines and
//! campaigns), and only then marks the events done.
//!
//! Exactly once, across crashes and restarts: a crash after the sightings committed and before
//! the events were marked derives them again on the next run, and the sightings' idempotency
//! keys (sensor, session, kind, value) make the second append a no-op. Events arriving for a
//! session already derived make it pending again; it is then derived from all its events, which
//! adds what is new (a new URL, a payload) and repeats nothing.

use apiary_core::ParseOptions;
use apiary_ingest::cowrie::{self, Assembler, DeriveOptions, ReadOptions};
use apiary_store::{NewSession, NewSighting, PendingSession, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of the sessionizer.
#[derive(Debug, Clone)]
pub struct Options {
    /// A session with no `cowrie.session.closed` is derived once no event arrived for this long.
    pub idle: Duration,
    /// How often to look for ready sessions when the last look found none.
    pub poll: Duration,
    /// Most sessions derived per round (their sightings are one append).
    pub batch: usize,
    /// Most events read per session (a bound on memory; the rest are marked done unread).
    pub max_events_per_session: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { idle: Duration::from_secs(300), poll: Duration::from_secs(1), batch: 500, max_events_per_session: 50_000 }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub sessions: usize,
    pub sightings: usize,
    pub duplicates: usize,
}

/// The running task; [`Sessionizer::shutdown`] stops it between rounds.
pub struct Sessionizer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sessionizer {
    pub fn start(store: Arc<dyn Store>, parse: ParseOptions, opts: Options) -> Sessionizer {
        let (stop, mut stopped) = watch::channel(false);
        let derive = DeriveOptions { parse, ..DeriveOptions::default() };
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let wait = match round(store.as_ref(), &derive, &opts).await {
                    Ok(r) if r.sessions > 0 => {
                        failures = 0;
                        tracing::debug!(sessions = r.sessions, sightings = r.sightings, duplicates = r.duplicates, "sessionizer");
                        Duration::ZERO
                    }
                    Ok(_) => {
                        failures = 0;
                        opts.poll
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if !matches!(e, StoreError::Busy) {
                            tracing::warn!("sessionizer: {e}; retrying");
                        }
                        opts.poll * failures.min(30)
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => return,
                }
                if *stopped.borrow() {
                    return;
                }
            }
        });
        Sessionizer { stop, task }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Derive the sessions ready now; returns what was done.
pub async fn round(store: &dyn Store, derive: &DeriveOptions, opts: &Options) -> Result<Round, StoreError> {
    let idle_before = chrono::Utc::now() - chrono::Duration::from_std(opts.idle).unwrap_or(chrono::Duration::MAX);
    let ready = store.ready_sensor_sessions(idle_before, opts.batch).await?;
    if ready.is_empty() {
        return Ok(Round::default());
    }
    let now = chrono::Utc::now();
    let mut batch: Vec<NewSighting> = Vec::new();
    let mut sessions: Vec<NewSession> = Vec::new();
    for p in &ready {
        for s in assemble(store, p, opts.max_events_per_session).await? {
            let record = cowrie::record::record_parsing(&s, &derive.parse);
            match record.check_times(now) {
                Ok(()) => sessions.push(NewSession { feed_id: p.feed_id, record }),
                Err((code, why)) => tracing::warn!(sensor = %p.sensor, session = %p.session, "sessionizer: session not stored: {why} ({code})"),
            }
            let derived = cowrie::reports(&s, derive);
            for (what, value, why) in &derived.rejected {
                tracing::debug!(sensor = %p.sensor, session = %p.session, "sessionizer: `{what}` {value:?} refused: {why}");
            }
            for r in derived.reports {
                match crate::intake::report_sighting(r, p.feed_id, p.reporter_id, now) {
                    Ok(s) => batch.push(s),
                    Err(e) => tracing::warn!(sensor = %p.sensor, session = %p.session, "sessionizer: a report refused: {} ({})", e.message, e.code),
                }
            }
        }
    }
    let mut done = Round { sessions: ready.len(), ..Round::default() };
    // The sessions themselves (attacker timelines, campaigns): stored once per (feed, sensor,
    // session); a version with more events replaces the stored one.
    match store.append_sessions(sessions).await {
        Ok(_) => {}
        Err(StoreError::Busy) => return Err(StoreError::Busy),
        Err(e) => tracing::warn!("sessionizer: sessions not stored: {e}"),
    }
    if !batch.is_empty() {
        match append(store, batch).await {
            Ok(outcomes) => {
                done.duplicates = outcomes.iter().filter(|o| o.duplicate).count();
                done.sightings = outcomes.len() - done.duplicates;
            }
            // The feed went away (deleted) between the upload and now: nothing to add it to.
            Err(StoreError::NotFound(why)) | Err(StoreError::Invalid(why)) => {
                tracing::warn!("sessionizer: sightings of {} sessions not stored: {why}", ready.len());
            }
            Err(e) => return Err(e),
        }
    }
    store.finish_sensor_sessions(&ready).await?;
    Ok(done)
}

/// Every event of a pending session, folded into sessions (one, or more if the honeypot reused
/// the id after a close).
async fn assemble(store: &dyn Store, p: &PendingSession, max: usize) -> Result<Vec<cowrie::Session>, StoreError> {
    let events = store.sensor_session_events(p.feed_id, &p.sensor, &p.kind, &p.session, max).await?;
    let mut out = Vec::new();
    if p.kind != "cowrie" {
        return Ok(out);
    }
    let mut asm = Assembler::new(ReadOptions { sensor: Some(p.sensor.clone()), max_problems: 0 });
    let name = format!("sensor {}", p.sensor);
    for e in &events {
        asm.push_line(&name, &p.sensor, e.seq as u64, e.event.as_bytes(), true, &mut |s| out.push(s));
    }
    asm.finish(&mut |s| out.push(s));
    Ok(out)
}

/// Append, waiting out a busy store a few times (the events stay pending if it stays busy).
async fn append(store: &dyn Store, batch: Vec<NewSighting>) -> Result<Vec<apiary_store::AppendOutcome>, StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match store.append_sightings(batch.clone()).await {
            Err(StoreError::Busy) if tries < 6 => tokio::time::sleep(Duration::from_millis(50 << tries)).await,
            other => return other,
        }
    }
}
