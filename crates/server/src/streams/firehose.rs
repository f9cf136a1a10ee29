//! `/firehose` (and `/api/firehose`): the CSIRTG firehose over the Rails ActionCable protocol,
//! as csirtgsdk's `csirtg-firehose` speaks it (docs/csirtg-compat.md, "Firehose").
//!
//! server → `{"type":"welcome"}`; every `ping` → `{"type":"ping","message":<epoch>}`;
//! client → `{"command":"subscribe","identifier":"{\"channel\":\"IndicatorsChannel\"}"}`;
//! server → `{"identifier":<same>,"type":"confirm_subscription"}`, then one
//! `{"identifier":<same>,"message":{...}}` per new sighting the token may read (native field
//! names, `provider` = `user/feed`). The native stream's filters work here too, as query
//! parameters. A lag is caught up from the log without a notice (the protocol has none).

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::filter::{FilterParams, StreamFilter};
use super::native::{request_token, Out, Session};
use super::wire;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The one channel a CSIRTG client subscribes to.
pub const CHANNEL: &str = "IndicatorsChannel";

/// `GET /firehose` with a websocket upgrade.
pub async fn handler(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<FilterParams>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let filter = StreamFilter::parse(&params, &state)?;
    let token = request_token(&headers);
    // Fail before the upgrade if the filter names a feed the caller may not read.
    let session = Session::open(&state, caller.clone(), token.clone(), filter.clone(), None).await?;
    drop(session);
    Ok(upgrade.on_upgrade(move |socket| run(socket, state, caller, token, filter)))
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

/// The identifier of a valid IndicatorsChannel subscribe command.
fn subscribe_identifier(msg: &str) -> Result<Option<String>, String> {
    let v: Value = serde_json::from_str(msg).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("command").and_then(Value::as_str) {
        Some("subscribe") => {}
        Some(_) => return Ok(None),
        None => return Err("no `command`".into()),
    }
    let identifier = v.get("identifier").and_then(Value::as_str).ok_or("no `identifier` string")?;
    let id: Value = serde_json::from_str(identifier).map_err(|e| format!("`identifier` is not a JSON string: {e}"))?;
    match id.get("channel").and_then(Value::as_str) {
        Some(CHANNEL) => Ok(Some(identifier.to_string())),
        Some(other) => Err(format!("unknown channel `{other}` (only {CHANNEL})")),
        None => Err("`identifier` names no channel".into()),
    }
}

async fn run(mut socket: WebSocket, state: AppState, caller: Caller, token: Option<String>, filter: StreamFilter) {
    if socket.send(text(json!({"type": "welcome"}))).await.is_err() {
        return;
    }
    let every = state.streams.options.ping;
    let mut ping = interval_at(Instant::now() + every, every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // (identifier as a JSON string literal, session) once subscribed.
    let mut subscribed: Option<(String, Session)> = None;
    loop {
        let next_event = async {
            match subscribed.as_mut() {
                Some((_, session)) => session.next().await,
                None => std::future::pending().await,
            }
        };
        let msg = tokio::select! {
            out = next_event => {
                let Some((ident, session)) = subscribed.as_mut() else { break };
                match send_batch(&mut socket, &state, ident, session, out).await {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => break,
                }
            }
            _ = ping.tick() => text(json!({"type": "ping", "message": chrono::Utc::now().timestamp()})),
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) => match subscribe_identifier(t.as_str()) {
                    Ok(Some(identifier)) => {
                        match Session::open(&state, caller.clone(), token.clone(), filter.clone(), None).await {
                            Ok(session) => {
                                let literal = Value::String(identifier.clone()).to_string();
                                subscribed = Some((literal, session));
                                text(json!({"identifier": identifier, "type": "confirm_subscription"}))
                            }
                            Err(e) => {
                                tracing::warn!("firehose: cannot start a subscription: {e:?}");
                                text(json!({"identifier": identifier, "type": "reject_subscription"}))
                            }
                        }
                    }
                    Ok(None) => continue,
                    Err(why) => text(json!({"type": "error", "message": why})),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        if socket.send(msg).await.is_err() {
            break;
        }
    }
}

/// Frame `first` and everything already queued after it, then flush once. `Ok(false)`: the
/// stream ended.
async fn send_batch(socket: &mut WebSocket, state: &AppState, ident: &str, session: &mut Session, first: Out) -> Result<bool, axum::Error> {
    let tables = state.config.asn.get();
    let mut bytes = 0;
    let mut next = Some(first);
    while let Some(out) = next.take() {
        match out {
            Out::Event(ev) => {
                let frame = wire::cable_message(&tables, &ev, ident);
                bytes += frame.len();
                socket.feed(Message::Text(frame)).await?;
            }
            // The protocol has no lag notice: the follow catches up from the log by itself.
            Out::Lagged(_) => {}
            Out::End(why) => {
                tracing::info!("firehose: closing a subscription: {why}");
                socket.flush().await?;
                return Ok(false);
            }
        }
        if bytes < wire::BATCH_BYTES {
            next = session.try_next();
        }
    }
    socket.flush().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::subscribe_identifier;

    #[test]
    fn subscribe_commands() {
        let ok = r#"{"command":"subscribe","identifier":"{\"channel\":\"IndicatorsChannel\"}"}"#;
        assert_eq!(subscribe_identifier(ok).unwrap().as_deref(), Some(r#"{"channel":"IndicatorsChannel"}"#));
        assert_eq!(subscribe_identifier(r#"{"command":"message","identifier":"{}"}"#).unwrap(), None);
        assert!(subscribe_identifier(r#"{"command":"subscribe","identifier":"{\"channel\":\"Other\"}"}"#).is_err());
        assert!(subscribe_identifier("nope").is_err());
    }
}
