//! `POST /api/v1/feeds/{owner}/{feed}/events`: raw honeypot events from a sensor shipper
//! (`apiary sensor`, docs/sensor.md); `GET` the same path: what the feed holds.
//!
//! The body is JSON lines, each `{"key": "...", "sensor": "...", "kind": "cowrie", "event": {...}}`
//! where `event` is the honeypot's own log line as an object. Every event is stored durably
//! before the answer; an event whose `key` the feed already holds is counted as a duplicate and
//! not stored again, so a shipper may resend a batch whose answer it did not get. A line that is
//! not such an object is refused with its line number and reason; the rest is kept. The
//! sessionizer (`crate::sessionize`) later folds the events into sessions and sightings.
//!
//! Writing needs a `write` token of the feed's owner (or an admin's); reading too, since raw
//! events may hold what the operator chose to keep off the public feed (credentials, commands).

use apiary_store::events::{MAX_EVENT_KEY, MAX_SENSOR_NAME};
use apiary_store::NewSensorEvent;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::{writable_feed, Caller};
use crate::error::ApiError;
use crate::intake::shorten;
use crate::AppState;

/// Most events one request may carry (more: 413, send smaller batches).
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Largest event, in bytes: the honeypot shipper's line limit (`apiary_sensor` ships log lines
/// up to 1 MiB), so nothing it sends is refused for size and lost.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Room for the envelope around an event (key, sensor, kind: 128 bytes each at most).
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024;
/// Largest request line (larger: that line is refused, the rest kept).
pub const MAX_LINE_BYTES: usize = MAX_EVENT_BYTES + MAX_ENVELOPE_BYTES;
/// Events handed to the store per call (each call is one durable batch).
const APPEND_CHUNK: usize = 2_000;

/// One refused line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRejection {
    pub line: usize,
    pub code: &'static str,
    pub message: String,
}

fn refuse(line: usize, code: &'static str, message: impl Into<String>) -> LineRejection {
    LineRejection { line, code, message: message.into() }
}

/// What a honeypot kind needs from an event: its session, its type, and whether it ends the
/// session. A new kind is one more arm here and a reader in `apiary_ingest`.
fn session_fields(kind: &str, event: &str) -> Option<(Option<String>, Option<String>, bool)> {
    #[derive(Deserialize)]
    struct Fields {
        session: Option<Value>,
        eventid: Option<Value>,
    }
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    match kind {
        "cowrie" => {
            let f: Fields = serde_json::from_str(event).ok()?;
            let eventid = text(f.eventid);
            let closes = eventid.as_deref() == Some("cowrie.session.closed");
            Some((text(f.session), eventid, closes))
        }
        _ => None,
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// One line as sent; the event is kept as the shipper wrote it (byte for byte).
#[derive(Deserialize)]
struct WireLine<'a> {
    key: Option<Value>,
    sensor: Option<Value>,
    kind: Option<Value>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
}

/// Read one line into an event to store.
pub fn decode_line(number: usize, bytes: &[u8]) -> Result<NewSensorEvent, LineRejection> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(refuse(
            number,
            "too_large",
            format!("the line is {} bytes; at most {MAX_EVENT_BYTES} per event plus {MAX_ENVELOPE_BYTES} for its envelope", bytes.len()),
        ));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(e) => Err(refuse(number, "invalid_json", format!("malformed JSON: {e}"))),
            Ok(_) => Err(refuse(number, "invalid_item", "a line must be a JSON object with key, sensor, kind and event")),
        };
    }
    let line: WireLine = serde_json::from_slice(bytes).map_err(|e| refuse(number, "invalid_json", format!("malformed JSON: {e}")))?;
    let field = |name: &'static str, v: Option<Value>, max: usize| -> Result<String, LineRejection> {
        match v {
            Some(Value::String(s)) if valid_name(&s, max) => Ok(s),
            Some(Value::String(s)) => Err(refuse(
                number,
                "invalid_field",
                format!("`{name}` {:?} must be 1 to {max} bytes without control characters", shorten(&s)),
            )),
            None | Some(Value::Null) => Err(refuse(number, "missing_field", format!("the line has no `{name}`"))),
            Some(_) => Err(refuse(number, "invalid_field", format!("`{name}` must be a string"))),
        }
    };
    let key = field("key", line.key, MAX_EVENT_KEY)?;
    let sensor = field("sensor", line.sensor, MAX_SENSOR_NAME)?;
    let kind = field("kind", line.kind, 32)?;
    let event = match line.event.map(RawValue::get) {
        Some(raw) if raw.starts_with('{') => raw,
        None | Some("null") => return Err(refuse(number, "missing_field", "the line has no `event`")),
        Some(_) => return Err(refuse(number, "invalid_field", "`event` must be a JSON object (the honeypot's log line)")),
    };
    let (session, eventid, closes_session) = session_fields(&kind, event)
        .ok_or_else(|| refuse(number, "unknown_kind", format!("unknown kind `{}` (known: cowrie)", shorten(&kind))))?;
    Ok(NewSensorEvent { key, sensor, kind, session, eventid, closes_session, event: event.to_owned() })
}

/// Split a body into events and refusals (blank lines skipped; line numbers are 1-based).
pub fn decode(body: &[u8]) -> (Vec<NewSensorEvent>, Vec<LineRejection>) {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match decode_line(i + 1, line) {
            Ok(e) => good.push(e),
            Err(r) => bad.push(r),
        }
    }
    (good, bad)
}

/// `POST /api/v1/feeds/{owner}/{feed}/events`
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    let principal = caller.principal()?;
    let lines = body.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
    if lines > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!("the body holds {lines} events; send at most {MAX_EVENTS_PER_REQUEST} per request"),
        ));
    }
    let (mut events, rejected) = decode(&body);
    if events.is_empty() && rejected.is_empty() {
        return Err(ApiError::invalid("empty", "the body holds no events"));
    }
    let received_at = chrono::Utc::now();
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(APPEND_CHUNK));
        let chunk = std::mem::replace(&mut events, rest);
        for o in state.store.append_sensor_events(feed.id, principal.user_id, received_at, chunk).await? {
            if o.duplicate {
                duplicates += 1;
            } else {
                accepted += 1;
            }
        }
    }
    tracing::debug!(feed = %feed.full_name(), accepted, duplicates, rejected = rejected.len(), "sensor events");
    let status = if accepted + duplicates == 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if accepted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let rejected: Vec<Value> =
        rejected.iter().map(|r| json!({"line": r.line, "code": r.code, "message": r.message})).collect();
    Ok((status, Json(json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected}))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// List the events after this seq (without it: only the counts).
    after: Option<i64>,
    limit: Option<usize>,
}

/// One stored event as listed; `event` goes out byte for byte as stored (parsing and printing
/// it again could change a number).
#[derive(Serialize)]
struct Listed<'a> {
    seq: i64,
    key: &'a str,
    sensor: &'a str,
    kind: &'a str,
    session: Option<&'a str>,
    eventid: Option<&'a str>,
    received_at: apiary_store::Timestamp,
    done: bool,
    event: &'a RawValue,
}

#[derive(Serialize)]
struct ListReply<'a> {
    feed: String,
    events: i64,
    pending: i64,
    sensors: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<Listed<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Option<i64>>,
}

/// `GET /api/v1/feeds/{owner}/{feed}/events[?after=SEQ&limit=N]`: counts, and the stored
/// events after a seq (oldest first) when `after` is given.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    let counts = state.store.sensor_event_counts(feed.id).await?;
    let limit = params.limit.unwrap_or(state.config.default_limit).clamp(1, state.config.max_limit);
    let stored = match params.after {
        Some(after) => Some(state.store.sensor_events_after(feed.id, after, limit).await?),
        None => None,
    };
    let items = stored.as_ref().map(|events| {
        events
            .iter()
            .filter_map(|e| {
                Some(Listed {
                    seq: e.seq,
                    key: &e.key,
                    sensor: &e.sensor,
                    kind: &e.kind,
                    session: e.session.as_deref(),
                    eventid: e.eventid.as_deref(),
                    received_at: e.received_at,
                    done: e.done,
                    event: serde_json::from_str::<&RawValue>(&e.event).ok()?,
                })
            })
            .collect::<Vec<_>>()
    });
    let next = stored.as_ref().map(|events| (events.len() == limit).then(|| events.last().map(|e| e.seq)).flatten());
    let reply = ListReply { feed: feed.full_name(), events: counts.events, pending: counts.pending, sensors: counts.sensors, items, next };
    Ok(Json(reply).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_events_or_refusals_with_their_number() {
        let body = concat!(
            r#"{"key":"k1","sensor":"pot1","kind":"cowrie","event":{"eventid":"cowrie.session.connect","session":"abc","src_ip":"192.0.2.1"}}"#,
            "\n\n",
            "not json\n",
            r#"{"key":"k2","sensor":"pot1","kind":"cowrie","event":{"eventid":"cowrie.session.closed","session":"abc"}}"#,
            "\r\n",
            r#"{"key":"k3","sensor":"pot1","kind":"dionaea","event":{}}"#,
            "\n",
            r#"{"key":"","sensor":"pot1","kind":"cowrie","event":{}}"#,
            "\n",
            r#"{"key":"k5","sensor":"pot1","kind":"cowrie","event":"text"}"#,
            "\n",
            r#"{"key":"k6","sensor":"pot1","kind":"cowrie","event":{"eventid":"cowrie.log.stats"}}"#,
        );
        let (good, bad) = decode(body.as_bytes());
        assert_eq!(good.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["k1", "k2", "k6"]);
        assert_eq!(good[0].session.as_deref(), Some("abc"));
        assert!(!good[0].closes_session && good[1].closes_session);
        assert_eq!(good[2].session, None, "no session: stored, never sessionized");
        assert!(good[0].event.contains(r#""src_ip":"192.0.2.1""#));
        let codes: Vec<(usize, &str)> = bad.iter().map(|r| (r.line, r.code)).collect();
        assert_eq!(codes, [(3, "invalid_json"), (5, "unknown_kind"), (6, "invalid_field"), (7, "invalid_field")]);
    }

    #[test]
    fn an_event_as_large_as_the_shippers_line_limit_is_accepted() {
        // The sensor ships lines up to 1 MiB (apiary_sensor::tail::MAX_LINE).
        let event = format!(r#"{{"eventid":"cowrie.command.input","session":"s1","input":"{}"}}"#, "x".repeat(MAX_EVENT_BYTES - 80));
        assert!(event.len() <= MAX_EVENT_BYTES);
        let line = format!(r#"{{"key":"{}","sensor":"{}","kind":"cowrie","event":{event}}}"#, "k".repeat(128), "s".repeat(128));
        let (good, bad) = decode(format!("{line}\n").as_bytes());
        assert_eq!((good.len(), bad.len()), (1, 0), "{bad:?}");
    }

    #[test]
    fn an_oversized_line_is_refused_alone() {
        let big = format!(
            r#"{{"key":"k","sensor":"s","kind":"cowrie","event":{{"input":"{}"}}}}"#,
            "x".repeat(MAX_LINE_BYTES)
        );
        let body = format!("{big}\n{}\n", r#"{"key":"k2","sensor":"s","kind":"cowrie","event":{}}"#);
        let (good, bad) = decode(body.as_bytes());
        assert_eq!(good.len(), 1);
        assert_eq!((bad[0].line, bad[0].code), (1, "too_large"));
    }
}
