//! TLP:RED on read routes: the one rule every route that shows records, sightings or stream
//! events applies (docs/exports.md rule 5, the same as exports and TAXII).
//!
//! RED goes only to the feed's owner and to users granted access to a *private* feed. A public
//! feed is not "shared" with its readers, and admin rights are not an exception. AMBER, GREEN
//! and CLEAR go to whoever may read the feed (feed visibility is checked by the store query and
//! [`crate::auth`]). Routes read through [`query`] and [`sightings_of`] instead of the store's
//! own methods; streams ask [`red_visible`] once per feed (`crate::streams::access`).

use std::collections::HashMap;

use apiary_store::{Feed, FeedRecord, Page, Query, Sighting, Tlp, Visibility};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Whether `caller`, who may read `feed`, may also see its TLP:RED records.
pub fn red_visible(caller: &Caller, feed: &Feed) -> bool {
    let Some(reader) = caller.reader() else { return false };
    let admin_user = caller.0.as_ref().is_some_and(|p| p.admin);
    // A reader of a private feed is its owner, an admin, or a grantee; admins are not grantees.
    reader.user_id == feed.owner_id || (feed.visibility == Visibility::Private && !admin_user)
}

/// Per-request memo of [`red_visible`] by feed name (`owner/name`).
pub struct RedRule<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    feeds: HashMap<String, bool>,
}

impl<'a> RedRule<'a> {
    pub fn new(state: &'a AppState, caller: &'a Caller) -> Self {
        RedRule { state, caller, feeds: HashMap::new() }
    }

    /// Whether an item of feed `owner/name` labelled `tlp` may be shown.
    pub async fn allows(&mut self, feed: &str, tlp: Tlp) -> Result<bool, ApiError> {
        if tlp != Tlp::Red {
            return Ok(true);
        }
        if self.caller.reader().is_none() {
            return Ok(false);
        }
        if let Some(&ok) = self.feeds.get(feed) {
            return Ok(ok);
        }
        let (owner, name) = feed.split_once('/').unwrap_or((feed, ""));
        let ok = match self.state.store.get_feed(owner, name).await? {
            Some(f) => red_visible(self.caller, &f),
            None => false,
        };
        self.feeds.insert(feed.to_string(), ok);
        Ok(ok)
    }

    /// The records the caller may see.
    pub async fn records(&mut self, items: Vec<FeedRecord>) -> Result<Vec<FeedRecord>, ApiError> {
        let mut out = Vec::with_capacity(items.len());
        for r in items {
            if self.allows(&r.feed, r.tlp).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The sightings the caller may see.
    pub async fn sightings(&mut self, items: Vec<Sighting>) -> Result<Vec<Sighting>, ApiError> {
        let mut out = Vec::with_capacity(items.len());
        for s in items {
            if self.allows(&s.feed, s.tlp).await? {
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// `Store::query` for `caller`: the page without the RED records it may not see. (A page may
/// come out shorter than its limit; its cursor still continues after the last record read.)
pub async fn query(state: &AppState, caller: &Caller, q: &Query) -> Result<Page<FeedRecord>, ApiError> {
    let mut page = state.store.query(q).await?;
    page.items = RedRule::new(state, caller).records(page.items).await?;
    Ok(page)
}

/// `Store::sightings_of` for `caller`, without the RED sightings it may not see.
pub async fn sightings_of(
    state: &AppState,
    caller: &Caller,
    value: &str,
    feed_ids: Option<&[i64]>,
    limit: usize,
) -> Result<Vec<Sighting>, ApiError> {
    let items = state.store.sightings_of(value, feed_ids, limit).await?;
    RedRule::new(state, caller).sightings(items).await
}

/// One record for `caller`, or `None` when it is RED and not theirs to see.
pub async fn record(state: &AppState, caller: &Caller, record: FeedRecord) -> Result<Option<FeedRecord>, ApiError> {
    let ok = RedRule::new(state, caller).allows(&record.feed, record.tlp).await?;
    Ok(ok.then_some(record))
}
