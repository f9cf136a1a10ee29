//! The single writer: one thread owns the write connection and commits queued requests in
//! groups (group commit), so that many small durable writes share one WAL sync.
//!
//! Requests arrive on a bounded channel. The writer takes the first waiting request, then
//! everything else already queued (up to a weight limit), runs each inside its own SAVEPOINT
//! of one `BEGIN IMMEDIATE` transaction, commits once, and only then answers every request.
//! A request that fails rolls back to its savepoint and leaves the others untouched.
//!
//! A heavy request (a bulk batch of [`HEAVY_WEIGHT`] or more) commits alone, without a
//! savepoint: it has no WAL sync to share worth the name, and inside a savepoint every page it
//! touches is copied to the statement journal, which each of its statements then walks when it
//! ends — quadratic in the batch (a Cowrie import whose sightings and sessions met in one group
//! spent 90 % of its time there).

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Work for the writer. `run` does the database work (inside a savepoint) and reports whether
/// to keep it; `finish` answers the caller once the transaction is committed (or failed).
pub(crate) trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> bool;
    fn finish(self: Box<Self>, committed: Result<()>);
}

pub(crate) struct Request {
    pub job: Box<dyn WriteJob>,
    /// How much work the request carries (sightings, or 1), to bound a group's size.
    pub weight: usize,
}

/// A job built from a closure; its result reaches the caller through a oneshot channel.
pub(crate) struct FnJob<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    pub fn boxed(work: F) -> (Box<dyn WriteJob>, oneshot::Receiver<Result<T>>) {
        let (reply, rx) = oneshot::channel();
        (Box::new(FnJob { work: Some(work), result: None, reply }), rx)
    }
}

impl<T, F> WriteJob for FnJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            self.result = Some(Err(StoreError::Internal("write job run twice".into())));
            return false;
        };
        // A bug in one request must not stop the writer (and with it every later write): a
        // panic fails that request, its changes are rolled back, and the writer goes on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::Internal("a write request failed unexpectedly (panic)".into())));
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn finish(self: Box<Self>, committed: Result<()>) {
        let answer = match committed {
            Ok(()) => self.result.unwrap_or_else(|| Err(StoreError::Internal("write was not run".into()))),
            Err(e) => Err(e),
        };
        // The caller may have gone away (timeout, dropped connection): nothing to tell then.
        let _ = self.reply.send(answer);
    }
}

/// Most work one transaction takes on before it commits (in sightings); keeps the latency of
/// a queued single append bounded while a bulk import is running.
const MAX_GROUP_WEIGHT: usize = 50_000;

/// Longest a group waits for more requests before it commits (see [`run`]).
const MAX_GATHER_DELAY: Duration = Duration::from_micros(1500);

/// A request at least this heavy commits in a transaction of its own (module documentation).
pub(crate) const HEAVY_WEIGHT: usize = 1_000;

/// The writer loop; returns when every sender is gone and the queue is drained.
///
/// Callers send their next request only after the reply to the previous one, so right after
/// a commit the queue holds just the few requests that came in during it, while the rest of
/// the callers are about to send. Committing at once would alternate small and large groups,
/// each paying a full WAL sync; instead, when the last group was larger than what is queued,
/// the writer gathers for up to [`MAX_GATHER_DELAY`] until it holds as many again.
pub(crate) fn run(conn: Connection, mut rx: mpsc::Receiver<Request>) {
    let mut last_group = 1usize;
    // A heavy request met while gathering: it goes next, alone.
    let mut held: Option<Request> = None;
    while let Some(first) = held.take().or_else(|| rx.blocking_recv()) {
        if first.weight >= HEAVY_WEIGHT {
            commit_group(&conn, vec![first]);
            continue;
        }
        let mut weight = first.weight;
        let mut group = vec![first];
        let gather_until = Instant::now() + MAX_GATHER_DELAY;
        loop {
            match rx.try_recv() {
                Ok(req) if req.weight >= HEAVY_WEIGHT => {
                    held = Some(req);
                    break;
                }
                Ok(req) => {
                    weight += req.weight;
                    group.push(req);
                    if weight >= MAX_GROUP_WEIGHT {
                        break;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty)
                    if group.len() < last_group && weight < MAX_GROUP_WEIGHT / 10 && Instant::now() < gather_until =>
                {
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(_) => break,
            }
        }
        last_group = group.len();
        commit_group(&conn, group);
    }
}

fn commit_group(conn: &Connection, group: Vec<Request>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let err = e;
        for req in group {
            req.job.finish(Err(clone_error(&err)));
        }
        return;
    }
    let mut jobs = Vec::with_capacity(group.len());
    if group.len() == 1 {
        // Alone in its transaction, a request needs no savepoint (whose statement journal
        // costs a copy of every page it touches): a failure rolls back the whole transaction.
        let mut req = group.into_iter().next().expect("one request");
        if req.job.run(conn) {
            let committed = exec(conn, "COMMIT");
            if committed.is_err() {
                let _ = exec(conn, "ROLLBACK");
            }
            req.job.finish(committed);
        } else {
            let rolled_back = exec(conn, "ROLLBACK");
            req.job.finish(rolled_back);
        }
        return;
    }
    for mut req in group {
        let outcome = exec(conn, "SAVEPOINT job").and_then(|()| {
            if !req.job.run(conn) {
                exec(conn, "ROLLBACK TO job")?;
            }
            exec(conn, "RELEASE job")
        });
        jobs.push((req.job, outcome));
    }
    let committed = exec(conn, "COMMIT");
    if committed.is_err() {
        // Leave no half-open transaction behind for the next group.
        let _ = exec(conn, "ROLLBACK");
    }
    for (job, outcome) in jobs {
        let answer = match (&committed, outcome) {
            (Err(e), _) => Err(clone_error(e)),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        };
        job.finish(answer);
    }
}

/// Run a transaction-control statement, prepared once per connection (they run several
/// times per group; parsing them each time shows in a profile of single appends).
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut st| st.execute([])).map(|_| ()).map_err(super::db_error)
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Busy => StoreError::Busy,
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}
