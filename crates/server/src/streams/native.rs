//! The native stream: `GET /api/v1/stream` (Server-Sent Events) and `GET /api/v1/stream/ws`
//! (the same as websocket text frames), with the filters of [`super::filter`] and resume by
//! `Last-Event-ID` (or `?after=SEQ`).
//!
//! SSE frames: `id: <seq>`, `event: sighting`, `data: <native JSON>`; after a lag,
//! `event: lagged` with `{"resume_after": seq}` (the stream then catches up from the log by
//! itself); a comment line after `heartbeat` without events.
//!
//! Delivery is batched: a stream waits for its next event, then takes everything already
//! queued for it into one write (one HTTP body chunk, one websocket flush), each event's bytes
//! made once for all streams ([`super::wire`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use apiary_bus::{Event, Follow, FollowItem};
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::access::{subscribed_feeds, Access};
use super::filter::{FilterParams, StreamFilter};
use super::wire;
use crate::auth::{token_from_header, Caller};
use crate::error::ApiError;
use crate::AppState;

/// What a stream session yields next.
pub enum Out {
    Event(Arc<Event>),
    /// Fell behind after this seq; the events that follow come from the log.
    Lagged(i64),
    /// The stream is over (token revoked, bus closed, store error), with why.
    End(String),
}

/// One consumer's stream: access, filters, and a follow of the right feeds.
pub struct Session {
    state: AppState,
    access: Access,
    pub filter: StreamFilter,
    follow: Follow,
    /// Taken from the follow, waiting for an access check that reads the store.
    pending: Option<Arc<Event>>,
    refresh: Interval,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// The token a request carried, to check it again while the stream lasts.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    token_from_header(v).ok().flatten().map(str::to_string)
}

impl Session {
    /// Check the filter against the caller's access and start following after `cursor`
    /// (from now when `None`).
    pub async fn open(
        state: &AppState,
        caller: Caller,
        token: Option<String>,
        filter: StreamFilter,
        cursor: Option<i64>,
    ) -> Result<Session, ApiError> {
        let access = Access::resolve(state, caller, token).await?;
        // Asked-for feeds must be readable now (404 otherwise, as everywhere).
        for name in &filter.feeds {
            access.feed_id(name)?;
        }
        if filter.subscriptions {
            access.caller.principal()?;
        }
        let feeds = feed_set(state, &access, &filter).await?;
        let follow = state.streams.follow(feeds, cursor).await?;
        let every = state.streams.options.access_refresh;
        let mut refresh = interval_at(Instant::now() + every, every);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let closing = state.streams.closing();
        Ok(Session { state: state.clone(), access, filter, follow, pending: None, refresh, closing })
    }

    pub fn cursor(&self) -> i64 {
        self.follow.cursor()
    }

    /// The next event the caller may read and asked for. Cancel-safe: an event taken from the
    /// follow is kept until it is returned.
    pub async fn next(&mut self) -> Out {
        loop {
            if *self.closing.borrow() {
                return Out::End("the hub is shutting down".into());
            }
            if let Some(ev) = &self.pending {
                let allowed = self.access.allows(&self.state, ev.sighting.feed_id).await
                    && self.access.tlp_allows(ev.sighting.feed_id, ev.sighting.tlp);
                let ev = self.pending.take().expect("pending checked above");
                if allowed && self.filter.matches(&ev.sighting) {
                    return Out::Event(ev);
                }
                continue;
            }
            tokio::select! {
                _ = self.closing.changed() => continue,
                item = self.follow.next() => match item {
                    Ok(Some(item)) => {
                        if let Some(out) = self.take(item) {
                            return out;
                        }
                    }
                    Ok(None) => return Out::End("the hub is shutting down".into()),
                    Err(e) => return Out::End(format!("cannot read the sightings log: {e}")),
                },
                _ = self.refresh.tick() => {
                    match self.access.refresh(&self.state).await {
                        Ok(true) => {}
                        Ok(false) => return Out::End("the token was revoked or expired".into()),
                        Err(e) => {
                            tracing::warn!("stream: cannot read access again: {e:?}");
                            continue;
                        }
                    }
                    if let Ok(feeds) = feed_set(&self.state, &self.access, &self.filter).await {
                        if let Err(e) = self.follow.set_feeds(feeds).await {
                            return Out::End(format!("cannot follow the feeds: {e}"));
                        }
                    }
                }
            }
        }
    }

    /// The next event already queued for this stream, without waiting; `None`: ask
    /// [`Session::next`]. What a stream drains after `next` to write a batch at once.
    pub fn try_next(&mut self) -> Option<Out> {
        // (A closing hub is noticed by `next`, one batch later at most.)
        if self.pending.is_some() {
            return None;
        }
        loop {
            let item = self.follow.try_next()?;
            if let Some(out) = self.take(item) {
                return Some(out);
            }
            if self.pending.is_some() {
                return None;
            }
        }
    }

    /// What an item from the follow becomes: sent, skipped (`None`), or kept pending when its
    /// feed is new to this stream's access (the check may read the store).
    fn take(&mut self, item: FollowItem) -> Option<Out> {
        match item {
            FollowItem::Event(ev) => match self.access.check(ev.sighting.feed_id) {
                Some(true) => (self.access.tlp_allows(ev.sighting.feed_id, ev.sighting.tlp) && self.filter.matches(&ev.sighting))
                    .then_some(Out::Event(ev)),
                Some(false) => None,
                None => {
                    self.pending = Some(ev);
                    None
                }
            },
            FollowItem::Lagged { resume_after } => Some(Out::Lagged(resume_after)),
        }
    }
}

/// The feeds to follow: `None` for every feed (checked per event), else the asked-for feeds
/// and subscriptions that are readable now.
async fn feed_set(state: &AppState, access: &Access, filter: &StreamFilter) -> Result<Option<Vec<i64>>, ApiError> {
    if !filter.by_feed() {
        return Ok(None);
    }
    let mut ids: Vec<i64> = filter.feeds.iter().filter_map(|n| access.feed_id(n).ok()).collect();
    if filter.subscriptions {
        let readable = access.readable_ids();
        ids.extend(subscribed_feeds(state, &access.caller).await?.into_iter().map(|f| f.id).filter(|id| readable.contains(id)));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// Query parameters of the native stream.
#[derive(Debug, Deserialize, Default)]
pub struct StreamParams {
    #[serde(flatten)]
    pub filter: FilterParams,
    /// Resume after this seq (like `Last-Event-ID`).
    pub after: Option<String>,
}

fn cursor(headers: &HeaderMap, after: Option<&str>) -> Result<Option<i64>, ApiError> {
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    match header.or(after).map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("invalid_cursor", format!("`Last-Event-ID`/`after` `{v}`: a sightings seq (a whole number)"))),
    }
}

/// Refuse a cursor past the newest seq of the log: every seq a client saw came from the log,
/// and a stream (or webhook) resumed after a higher one would skip everything up to it, silently
/// delivering nothing for as long as that takes. No slack is needed: the log's head is read from
/// the store every node shares, after the cursor was handed out.
pub async fn check_cursor(state: &AppState, cursor: Option<i64>) -> Result<(), ApiError> {
    let Some(c) = cursor else { return Ok(()) };
    let head = state.store.last_sighting_seq().await?;
    if c > head {
        return Err(ApiError::invalid(
            "invalid_cursor",
            format!("cursor {c} is past the newest sighting ({head}): resume from a seq you received, or omit it to start from now"),
        ));
    }
    Ok(())
}

fn lagged_json(resume_after: i64) -> serde_json::Value {
    json!({"resume_after": resume_after})
}

/// The SSE body: wait for the next event (or the heartbeat), then take everything already
/// queued into the same chunk.
struct SseBody {
    session: Session,
    asn: Arc<crate::enrich::AsnDb>,
    heartbeat: Duration,
    opening: Option<Bytes>,
    ended: bool,
}

impl SseBody {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            return Some(opening);
        }
        if self.ended {
            return None;
        }
        let first = match tokio::time::timeout(self.heartbeat, self.session.next()).await {
            Ok(out) => out,
            Err(_) => return Some(Bytes::from_static(b": heartbeat\n\n")),
        };
        let tables = self.asn.get();
        let mut chunk = BytesMut::with_capacity(16 * 1024);
        let mut next = Some(first);
        while let Some(out) = next.take() {
            match out {
                Out::Event(ev) => wire::put_sse_frame(&mut chunk, &tables, &ev),
                Out::Lagged(after) => chunk.extend_from_slice(&wire::sse_other("lagged", &lagged_json(after))),
                Out::End(why) => {
                    chunk.extend_from_slice(&wire::sse_other("end", &json!({"reason": why})));
                    self.ended = true;
                    break;
                }
            }
            if chunk.len() < wire::BATCH_BYTES {
                next = self.session.try_next();
            }
        }
        Some(chunk.freeze())
    }
}

/// `GET /api/v1/stream`
pub async fn sse(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<Response, ApiError> {
    let filter = StreamFilter::parse(&params.filter, &state)?;
    let from = cursor(&headers, params.after.as_deref())?;
    check_cursor(&state, from).await?;
    let session = Session::open(&state, caller, request_token(&headers), filter, from).await?;
    let mut opening = format!("apiary stream from seq {}", session.cursor());
    if let Some(t) = &session.filter.tier {
        // The parsed tier, never the raw parameter (nothing a caller sends reaches an SSE line).
        opening.push_str(&format!("; tier {} not applied: streams do not filter by score yet", t.as_str()));
    }
    let body = SseBody {
        session,
        asn: state.config.asn.clone(),
        heartbeat: state.streams.options.heartbeat,
        opening: Some(wire::sse_comment(&opening)),
        ended: false,
    };
    // Polled by the connection itself: no task or queue between the bus and the socket, and a
    // client that stops reading stops the polling (its bus queue then fills and it lags alone).
    let chunks = futures_util::stream::unfold(body, |mut body| async move {
        body.next_chunk().await.map(|chunk| (Ok::<_, Infallible>(chunk), body))
    });
    Ok(([(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache")], Body::from_stream(chunks)).into_response())
}

/// `GET /api/v1/stream/ws`: the native stream as websocket text frames (each a sighting's
/// native JSON; a lag is `{"type":"lagged","resume_after":N}`).
pub async fn ws(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let filter = StreamFilter::parse(&params.filter, &state)?;
    let from = cursor(&headers, params.after.as_deref())?;
    check_cursor(&state, from).await?;
    let session = Session::open(&state, caller, request_token(&headers), filter, from).await?;
    let heartbeat = state.streams.options.heartbeat;
    let asn = state.config.asn.clone();
    Ok(upgrade.on_upgrade(move |socket| ws_loop(socket, session, heartbeat, asn)))
}

async fn ws_loop(mut socket: WebSocket, mut session: Session, heartbeat: Duration, asn: Arc<crate::enrich::AsnDb>) {
    let mut beat = interval_at(Instant::now() + heartbeat, heartbeat);
    loop {
        let first = tokio::select! {
            out = session.next() => out,
            _ = beat.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
                continue;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        // This event and everything already queued, framed, then one flush.
        let tables = asn.get();
        let (mut bytes, mut ended) = (0, false);
        let mut next = Some(first);
        while let Some(out) = next.take() {
            let text = match out {
                Out::Event(ev) => wire::ws_text(&tables, &ev),
                Out::Lagged(after) => json!({"type": "lagged", "resume_after": after}).to_string().into(),
                Out::End(why) => {
                    ended = true;
                    json!({"type": "end", "reason": why}).to_string().into()
                }
            };
            bytes += text.len();
            if socket.feed(Message::Text(text)).await.is_err() {
                return;
            }
            if !ended && bytes < wire::BATCH_BYTES {
                next = session.try_next();
            }
        }
        if socket.flush().await.is_err() || ended {
            break;
        }
    }
}
