//! What a long-lived stream may carry: the feeds its token may read, read again every few
//! seconds (a revoked token ends the stream; a feed made private stops flowing).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use apiary_store::{Feed, Principal};

use crate::auth::{readable_feeds, Caller};
use crate::error::ApiError;
use crate::AppState;

/// The readable feeds of one stream's caller.
pub struct Access {
    token: Option<String>,
    pub caller: Caller,
    /// Readable feed ids → `owner/name`.
    readable: HashMap<i64, String>,
    /// Readable feeds whose TLP:RED sightings the caller may see too ([`crate::access::red_visible`]).
    red: HashSet<i64>,
    /// Feeds found unreadable since the last full refresh (not worth another read per event).
    refused: HashSet<i64>,
    read_at: Instant,
}

impl Access {
    /// Resolve the caller's readable feeds now. `token` is kept to check it again later.
    pub async fn resolve(state: &AppState, caller: Caller, token: Option<String>) -> Result<Access, ApiError> {
        let mut a = Access { token, caller, readable: HashMap::new(), red: HashSet::new(), refused: HashSet::new(), read_at: Instant::now() };
        a.reload(state).await?;
        Ok(a)
    }

    async fn reload(&mut self, state: &AppState) -> Result<(), ApiError> {
        let feeds = readable_feeds(state, &self.caller, None).await?;
        self.red = feeds.iter().filter(|f| crate::access::red_visible(&self.caller, f)).map(|f| f.id).collect();
        self.readable = feeds.into_iter().map(|f| (f.id, f.full_name())).collect();
        self.read_at = Instant::now();
        Ok(())
    }

    /// Read the token and the readable feeds again. `Ok(false)`: the token is no longer valid.
    pub async fn refresh(&mut self, state: &AppState) -> Result<bool, ApiError> {
        if let Some(t) = &self.token {
            match state.store.authenticate(t).await? {
                Some(p) => self.caller = Caller(Some(p)),
                None => return Ok(false),
            }
        }
        self.reload(state).await?;
        self.refused.clear();
        Ok(true)
    }

    /// Whether an event of `feed_id` may be sent, from what is known now; `None`: a feed not
    /// seen before, ask [`Access::allows`] (which may read the store).
    pub fn check(&self, feed_id: i64) -> Option<bool> {
        if self.readable.contains_key(&feed_id) {
            Some(true)
        } else if self.refused.contains(&feed_id) || self.read_at.elapsed().as_secs() < 1 {
            Some(false)
        } else {
            None
        }
    }

    /// Whether an event of `feed_id` may be sent. A feed not seen before (created since the
    /// last read) triggers a fresh read, at most once a second; one found unreadable is not read
    /// again until the periodic refresh.
    pub async fn allows(&mut self, state: &AppState, feed_id: i64) -> bool {
        if self.readable.contains_key(&feed_id) {
            return true;
        }
        if self.refused.contains(&feed_id) {
            return false;
        }
        if self.read_at.elapsed().as_secs() >= 1 && self.reload(state).await.is_ok() {
            if self.readable.contains_key(&feed_id) {
                return true;
            }
            self.refused.insert(feed_id);
        }
        false
    }

    /// Whether a readable feed's sighting labelled `tlp` may be sent (RED only to the feed's
    /// owner and those it was shared with). Ask after [`Access::check`] or [`Access::allows`].
    pub fn tlp_allows(&self, feed_id: i64, tlp: apiary_store::Tlp) -> bool {
        tlp != apiary_store::Tlp::Red || self.red.contains(&feed_id)
    }

    pub fn readable_ids(&self) -> HashSet<i64> {
        self.readable.keys().copied().collect()
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.caller.0.as_ref()
    }

    /// The id of a readable feed named `owner/name`, or a 404 naming it.
    pub fn feed_id(&self, name: &str) -> Result<i64, ApiError> {
        self.readable
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
            .ok_or_else(|| ApiError::not_found(format!("no feed {name}")))
    }
}

/// The caller's subscribed feeds that it may still read.
pub async fn subscribed_feeds(state: &AppState, caller: &Caller) -> Result<Vec<Feed>, ApiError> {
    let p = caller.principal()?;
    let mut out = Vec::new();
    for f in state.store.list_subscriptions(&p.user).await? {
        if crate::auth::can_read(state, caller, &f).await? {
            out.push(f);
        }
    }
    Ok(out)
}
