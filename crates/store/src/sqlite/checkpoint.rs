//! WAL checkpoints on their own thread and connection.
//!
//! Copying WAL frames back into the database file (and syncing it) is the slowest part of a
//! write-heavy run. Done by the writer, every commit that crosses the threshold pays for it;
//! done here, the writer keeps appending to the WAL while the copy runs (WAL allows both).

use super::{db_error, open_error, SqliteOptions};
use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// How often the checkpointer copies committed frames into the database file.
const INTERVAL: Duration = Duration::from_millis(200);

/// WAL size (pages) at which the writer checkpoints by itself, as a fallback.
pub(crate) const WRITER_FALLBACK_PAGES: u32 = 65_536;

/// The checkpoint thread; stops (after a last checkpoint) when dropped.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path, opts: &SqliteOptions) -> Result<Checkpointer> {
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        conn.busy_timeout(opts.busy_timeout).map_err(db_error)?;
        let sync = match opts.durability {
            super::Durability::Full => "FULL",
            super::Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous={sync}; PRAGMA wal_autocheckpoint=0;")).map_err(db_error)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("apiary-store-checkpoint".into())
            .spawn(move || loop {
                let done = !matches!(stopped.recv_timeout(INTERVAL), Err(mpsc::RecvTimeoutError::Timeout));
                if done {
                    // The store is closing (the writer has finished): copy everything back and
                    // empty the WAL file, so the next process to open the directory (an export
                    // after an import) does not first read back a WAL of hundreds of MB.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                        tracing::debug!(error = %e, "closing WAL checkpoint did not finish; the next open recovers it");
                    }
                    return;
                }
                // PASSIVE never waits for the writer or readers: it copies what it can.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer will checkpoint instead");
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
