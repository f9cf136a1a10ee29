//! `cowrie.sessions` messages of an ident mapped to a feed → sightings in that feed.
//!
//! The message is read as a Cowrie session (`apiary_ingest::hpfeeds::cowrie_sessions`),
//! derived into reports by the same code as a log import (every value through
//! `apiary_core::parse`), and appended through the store with the session itself
//! (`Store::append_sessions`, for the attacker and campaign views): durable before the next frame of
//! that connection is read. The sensor is the message's `sensor` field, else the ident. The
//! feed's owner is the reporter. Reports carry idempotency keys, so a sensor that also ships its
//! log (under the same sensor name) is not counted twice.

use apiary_core::ParseOptions;
use apiary_ingest::cowrie::DeriveOptions;
use apiary_ingest::hpfeeds::cowrie_sessions;
use apiary_store::hpfeeds::split_feed;
use apiary_store::{NewSighting, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Tries of an append refused with `Busy` before the message is given up (and logged).
const BUSY_TRIES: u32 = 5;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Sightings stored and duplicates skipped.
    Stored { stored: usize, duplicates: usize },
    /// Not recorded; the reason was logged.
    Dropped(String),
}

pub struct Recorder {
    store: Arc<dyn Store>,
    derive: DeriveOptions,
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>, parse: ParseOptions) -> Recorder {
        Recorder { store, derive: DeriveOptions { parse, ..DeriveOptions::default() } }
    }

    /// Record one message published by `ident` into `feed` (`owner/name`).
    pub async fn record(&self, ident: &str, feed: &str, payload: &[u8]) -> Recorded {
        let outcome = self.try_record(ident, feed, payload).await;
        match &outcome {
            Recorded::Stored { stored, duplicates } => {
                tracing::debug!(ident, feed, stored, duplicates, "hpfeeds: cowrie session recorded")
            }
            Recorded::Dropped(why) => tracing::warn!(ident, feed, "hpfeeds: cowrie.sessions message not recorded: {why}"),
        }
        outcome
    }

    async fn try_record(&self, ident: &str, feed: &str, payload: &[u8]) -> Recorded {
        let msg = match cowrie_sessions::parse(payload, ident, &format!("hpfeeds:{ident}")) {
            Ok(m) => m,
            Err(e) => return Recorded::Dropped(e.to_string()),
        };
        let s = &msg.session;
        for w in &msg.warnings {
            tracing::warn!(ident, session = %s.session, "hpfeeds: cowrie.sessions message: {w}");
        }
        let derived = cowrie_sessions::reports(s, &self.derive);
        for (what, value, why) in &derived.rejected {
            tracing::info!(ident, session = %s.session, "hpfeeds: `{what}` {value:?} refused: {why}");
        }
        let record = apiary_ingest::cowrie::record::record_parsing(s, &self.derive.parse);
        let (owner, name) = match split_feed(feed) {
            Ok(x) => x,
            Err(e) => return Recorded::Dropped(e.to_string()),
        };
        let feed = match self.store.get_feed(owner, name).await {
            Ok(Some(f)) => f,
            Ok(None) => return Recorded::Dropped(format!("the ident's feed `{feed}` does not exist")),
            Err(e) => return Recorded::Dropped(format!("reading feed `{feed}`: {e}")),
        };
        // The session itself (a log import of the same session, with more events, replaces it);
        // not when its times break the hub's rule (a startTime in 2999), its reports are judged alone.
        let store_session = match record.check_times(chrono::Utc::now()) {
            Ok(()) => true,
            Err((code, why)) => {
                tracing::warn!(ident, session = %s.session, "hpfeeds: session not stored: {why} ({code})");
                false
            }
        };
        let mut tries = 0;
        while store_session {
            tries += 1;
            match self.store.append_sessions(vec![apiary_store::NewSession { feed_id: feed.id, record: record.clone() }]).await {
                Ok(_) => break,
                Err(StoreError::Busy) if tries < BUSY_TRIES => tokio::time::sleep(Duration::from_millis(50 << tries)).await,
                Err(e) => return Recorded::Dropped(format!("store (session): {e}")),
            }
        }
        if derived.reports.is_empty() {
            return Recorded::Stored { stored: 0, duplicates: 0 };
        }
        let now = chrono::Utc::now();
        let batch: Vec<NewSighting> = derived
            .reports
            .into_iter()
            .filter_map(|r| match crate::intake::report_sighting(r, feed.id, feed.owner_id, now) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(ident, session = %s.session, "hpfeeds: a report refused: {} ({})", e.message, e.code);
                    None
                }
            })
            .collect();
        if batch.is_empty() {
            return Recorded::Stored { stored: 0, duplicates: 0 };
        }
        let mut tries = 0;
        loop {
            tries += 1;
            match self.store.append_sightings(batch.clone()).await {
                Ok(outcomes) => {
                    let duplicates = outcomes.iter().filter(|o| o.duplicate).count();
                    return Recorded::Stored { stored: outcomes.len() - duplicates, duplicates };
                }
                Err(StoreError::Busy) if tries < BUSY_TRIES => {
                    tokio::time::sleep(Duration::from_millis(50 << tries)).await;
                }
                Err(e) => return Recorded::Dropped(format!("store: {e}")),
            }
        }
    }
}
