//! The native stream: `GET /api/v1/stream` (Server-Sent Events) and `GET /api/v1/stream/ws`
//! (the same as websocket text frames), with the filters of [`super::filter`] and resume by
//! `Last-Event-ID` (or `?after=SEQ`).
//!
//! SSE frames: `id: <seq>`, `event: sighting`, `data: <native JSON>`; after a lag,
//! `event: lagged` with `{"resume_after": seq}` (the stream then catches up from the log by
//! itself); a comment line every `heartbeat`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use apiary_bus::{Event, Follow, FollowItem};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::access::{subscribed_feeds, Access};
use super::filter::{FilterParams, StreamFilter};
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
        Ok(Session { state: state.clone(), access, filter, follow, refresh, closing })
    }

    pub fn cursor(&self) -> i64 {
        self.follow.cursor()
    }

    /// The next event the caller may read and asked for.
    pub async fn next(&mut self) -> Out {
        loop {
            if *self.closing.borrow() {
                return Out::End("the hub is shutting down".into());
            }
            tokio::select! {
                _ = self.closing.changed() => continue,
                item = self.follow.next() => match item {
                    Ok(Some(FollowItem::Event(ev))) => {
                        if self.access.allows(&self.state, ev.sighting.feed_id).await && self.filter.matches(&ev.sighting) {
                            return Out::Event(ev);
                        }
                    }
                    Ok(Some(FollowItem::Lagged { resume_after })) => return Out::Lagged(resume_after),
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

fn sse_event(ev: &Event, state: &AppState) -> SseEvent {
    let data = crate::enrich::event_json(&state.config.asn.get(), ev);
    SseEvent::default().id(ev.seq().to_string()).event("sighting").data(data)
}

fn lagged_json(resume_after: i64) -> String {
    serde_json::json!({"resume_after": resume_after}).to_string()
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
    let mut session = Session::open(&state, caller, request_token(&headers), filter, from).await?;
    let (tx, mut rx) = mpsc::channel::<SseEvent>(64);
    let mut opening = format!("apiary stream from seq {}", session.cursor());
    if let Some(t) = &session.filter.tier {
        opening.push_str(&format!("; tier `{t}` not applied: the hub does not score yet"));
    }
    let _ = tx.try_send(SseEvent::default().comment(opening));
    let task_state = state.clone();
    tokio::spawn(async move {
        loop {
            let out = tokio::select! {
                out = session.next() => out,
                _ = tx.closed() => break,
            };
            let frame = match out {
                Out::Event(ev) => sse_event(&ev, &task_state),
                Out::Lagged(after) => SseEvent::default().event("lagged").data(lagged_json(after)),
                Out::End(why) => {
                    let _ = tx.send(SseEvent::default().event("end").data(serde_json::json!({"reason": why}).to_string())).await;
                    break;
                }
            };
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>)));
    let keep = KeepAlive::new().interval(state.streams.options.heartbeat).text("heartbeat");
    Ok(Sse::new(stream).keep_alive(keep).into_response())
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
    let session = Session::open(&state, caller, request_token(&headers), filter, from).await?;
    let heartbeat = state.streams.options.heartbeat;
    let asn = state.config.asn.clone();
    Ok(upgrade.on_upgrade(move |socket| ws_loop(socket, session, heartbeat, asn)))
}

async fn ws_loop(mut socket: WebSocket, mut session: Session, heartbeat: Duration, asn: Arc<crate::enrich::AsnDb>) {
    let mut beat = interval_at(Instant::now() + heartbeat, heartbeat);
    loop {
        let msg = tokio::select! {
            out = session.next() => match out {
                Out::Event(ev) => Message::Text(crate::enrich::event_json(&asn.get(), &ev).into_owned().into()),
                Out::Lagged(after) => Message::Text(serde_json::json!({"type": "lagged", "resume_after": after}).to_string().into()),
                Out::End(why) => {
                    let _ = socket.send(Message::Text(serde_json::json!({"type": "end", "reason": why}).to_string().into())).await;
                    break;
                }
            },
            _ = beat.tick() => Message::Ping(Vec::new().into()),
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        if socket.send(msg).await.is_err() {
            break;
        }
    }
}
