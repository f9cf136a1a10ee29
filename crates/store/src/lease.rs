//! Job leases: a named background job (webhook deliveries, the bus feeder, trust scoring,
//! scheduled pulls) runs on exactly one node of a hub at a time, and another node takes over
//! within about one TTL when the holder dies.
//!
//! The store keeps one row per lease (`job_leases`: holder, expiry, epoch). Acquiring succeeds
//! when the lease is free, expired, or already ours (then it renews); PostgreSQL judges expiry
//! by its own clock, so the nodes' clocks need not agree. [`LeasedJob`] is the one way jobs use
//! it:
//!
//! ```ignore
//! let job = LeasedJob::spawn(store.clone(), "trust-scoring", LeaseOptions::default(), move |stop| run_scoring(state.clone(), stop));
//! // ... at shutdown:
//! job.shutdown().await;
//! ```
//!
//! The job gets a `watch::Receiver<bool>` that turns `true` when it must stop (the lease was
//! lost or the process is shutting down); it is aborted if it has not returned `grace` later.
//! A job that returns by itself is started again while the lease is held (write periodic jobs
//! as a loop that sleeps). Losing a lease is noticed at the next renewal (every `ttl / 3`), so
//! two holders can overlap for at most about one TTL after a network partition: jobs must be
//! idempotent (resume from a stored cursor), which all of Apiary's are.

use crate::{Result, Store, Timestamp};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lease {
    pub name: String,
    /// Who holds it (see [`node_id`]).
    pub holder: String,
    /// Grows by one each time the lease changes hands.
    pub epoch: i64,
    pub expires_at: Timestamp,
}

/// Check a lease name or holder: 1–200 characters, no control characters.
pub(crate) fn check(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
        return Err(crate::StoreError::Invalid(format!("lease {what} `{}`: 1–200 printable characters", s.escape_default())));
    }
    Ok(())
}

/// The TTL as whole milliseconds, at least 1 ms.
pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4).max(1)
}

/// This process's name as a lease holder: `HOST:PID:RANDOM`, unique per process start.
pub fn node_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "node".into());
        format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>())
    })
    .clone()
}

/// Timing of a [`LeasedJob`].
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// How long a lease lasts without renewal: a dead holder's job moves after about this.
    pub ttl: Duration,
    /// How long a stopped job may take to return before it is aborted.
    pub grace: Duration,
    /// This process's holder name.
    pub holder: String,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions { ttl: Duration::from_secs(15), grace: Duration::from_secs(5), holder: node_id() }
    }
}

impl LeaseOptions {
    pub fn with_ttl(ttl: Duration) -> LeaseOptions {
        LeaseOptions { ttl, ..LeaseOptions::default() }
    }
}

/// A background job run only while this process holds its lease. Dropping it does not stop
/// it: call [`LeasedJob::shutdown`] (which also releases the lease at once).
pub struct LeasedJob {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    held: Arc<AtomicBool>,
}

impl LeasedJob {
    /// Start competing for lease `name`; while held, run `job(stop)`.
    pub fn spawn<F, Fut>(store: Arc<dyn Store>, name: &str, options: LeaseOptions, job: F) -> LeasedJob
    where
        F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stop_rx) = watch::channel(false);
        let held = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(store, name.to_string(), options, job, stop_rx, held.clone()));
        LeasedJob { stop, task, held }
    }

    /// Whether this process holds the lease (and so runs the job) now.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Stop the job (waiting up to its grace) and release the lease.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run<F, Fut>(
    store: Arc<dyn Store>,
    name: String,
    options: LeaseOptions,
    mut job: F,
    mut shutdown: watch::Receiver<bool>,
    held: Arc<AtomicBool>,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let every = (options.ttl / 3).max(Duration::from_millis(10));
    'outer: loop {
        if *shutdown.borrow() {
            break;
        }
        match store.acquire_lease(&name, &options.holder, options.ttl).await {
            Ok(Some(lease)) => {
                held.store(true, Ordering::SeqCst);
                tracing::info!("lease `{name}` acquired (epoch {}): running the job here", lease.epoch);
                let (job_stop, job_stop_rx) = watch::channel(false);
                let mut task = Some(tokio::spawn(job(job_stop_rx)));
                // Renew until the lease is lost, the job returns, or we shut down.
                let mut confirmed = tokio::time::Instant::now();
                let lost = loop {
                    let running = async {
                        match task.as_mut() {
                            Some(t) => {
                                let _ = t.await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = shutdown.changed() => break false,
                        _ = running => {
                            // Returned by itself: started again at the next renewal.
                            task = None;
                            continue;
                        }
                    }
                    match store.renew_lease(&name, &options.holder, options.ttl).await {
                        Ok(true) => {
                            confirmed = tokio::time::Instant::now();
                            if task.is_none() {
                                task = Some(tokio::spawn(job(job_stop.subscribe())));
                            }
                        }
                        Ok(false) => break true,
                        Err(e) => {
                            tracing::warn!("lease `{name}`: cannot renew: {e}");
                            // Unconfirmed for a whole TTL: another node may have it by now.
                            if confirmed.elapsed() >= options.ttl {
                                break true;
                            }
                        }
                    }
                };
                held.store(false, Ordering::SeqCst);
                let _ = job_stop.send(true);
                if let Some(mut task) = task {
                    if tokio::time::timeout(options.grace, &mut task).await.is_err() {
                        tracing::warn!("lease `{name}`: the job did not stop within {:?}; aborting it", options.grace);
                        task.abort();
                        let _ = task.await;
                    }
                }
                if lost {
                    tracing::warn!("lease `{name}` lost: the job stopped here (another node runs it)");
                } else {
                    if let Err(e) = store.release_lease(&name, &options.holder).await {
                        tracing::warn!("lease `{name}`: cannot release: {e}");
                    }
                    break 'outer;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("lease `{name}`: cannot acquire: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
