//! `POST /api/v1/feeds/{owner}/{feed}/indicators`: publish one or many indicators.
//!
//! The body is one JSON object, a JSON array, JSON lines (`application/x-ndjson`), plain text
//! (one value per line; blank lines and `#` comments skipped) or CSV with an `indicator` column.
//! Good items are stored; refused ones are listed with their index, line, input, code and
//! message. 201 when something new was stored, 200 when all were duplicates, 422 (same body)
//! when every item was refused.

use apiary_store::NewSighting;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use crate::auth::{writable_feed, Caller};
use crate::error::ApiError;
use crate::intake::{shorten, Intake, ItemRejection};
use crate::metrics::Appended;
use crate::AppState;

/// Sightings handed to the store per call (each call is one durable batch).
const APPEND_CHUNK: usize = 10_000;

/// Most indicators one publish may carry (native and CSIRTG bulk; more: 413, send smaller
/// batches), as for events and sessions. It bounds the work, memory and reply of one request.
pub const MAX_ITEMS_PER_REQUEST: usize = 10_000;

/// The 413 for a body of `n` items (`n` past the cap: "more than").
pub fn too_many_items(n: Option<usize>) -> ApiError {
    let held = n.map_or(format!("more than {MAX_ITEMS_PER_REQUEST}"), |n| n.to_string());
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_many_items",
        format!("the body holds {held} indicators; send at most {MAX_ITEMS_PER_REQUEST} per request"),
    )
}

/// A JSON array read with the item cap: elements past it are counted, not built
/// ([`serde::de::IgnoredAny`]), so a huge array costs one pass and no memory.
pub enum Capped {
    Items(Vec<Value>),
    TooMany(usize),
}

impl<'de> serde::Deserialize<'de> for Capped {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Capped;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of indicators")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Capped, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    if items.len() == MAX_ITEMS_PER_REQUEST {
                        let mut n = items.len() + 1;
                        drop(items);
                        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                            n += 1;
                        }
                        return Ok(Capped::TooMany(n));
                    }
                    items.push(v);
                }
                Ok(Capped::Items(items))
            }
        }
        d.deserialize_seq(Visit)
    }
}

impl Capped {
    /// The items, or the 413 naming the cap.
    pub fn items(self) -> Result<Vec<Value>, ApiError> {
        match self {
            Capped::Items(v) => Ok(v),
            Capped::TooMany(n) => Err(too_many_items(Some(n))),
        }
    }
}

/// One item of a publish body, before the core has seen it.
#[derive(Debug)]
pub struct Item {
    pub index: usize,
    /// 1-based line of a line-oriented body (JSON lines, text, CSV).
    pub line: Option<usize>,
    pub raw: Result<Raw, ItemRejection>,
}

#[derive(Debug)]
pub enum Raw {
    Object(Map<String, Value>),
    Value(String),
}

impl Raw {
    /// What to echo as `input` if the item is refused.
    fn input(&self) -> String {
        match self {
            Raw::Value(s) => shorten(s),
            Raw::Object(m) => match m.get("indicator") {
                Some(Value::String(s)) => shorten(s),
                Some(v) => shorten(&v.to_string()),
                None => shorten(&Value::Object(m.clone()).to_string()),
            },
        }
    }
}

/// Split a body into items according to its content type.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Vec<Item>, ApiError> {
    // A UTF-8 byte order mark (Windows editors, PowerShell) is not part of any form's content.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let items = if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-lines") || ct.contains("json-seq") {
        json_lines(body)
    } else if ct == "text/plain" {
        text_lines(body)
    } else if ct == "text/csv" {
        csv_rows(body)?
    } else {
        json_body(body)?
    };
    if items.is_empty() {
        return Err(ApiError::invalid("empty", "the body holds no indicators"));
    }
    // Line forms stop reading one item past the cap.
    if items.len() > MAX_ITEMS_PER_REQUEST {
        return Err(too_many_items(None));
    }
    Ok(items)
}

fn from_json_value(v: Value) -> Result<Raw, ItemRejection> {
    match v {
        Value::Object(m) => Ok(Raw::Object(m)),
        Value::String(s) => Ok(Raw::Value(s)),
        other => Err(ItemRejection {
            code: "invalid_item".into(),
            message: format!("an item must be an indicator object or a string, not {}", shorten(&other.to_string())),
        }),
    }
}

fn json_body(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let v: Value = if body.trim_ascii_start().starts_with(b"[") {
        Value::Array(serde_json::from_slice::<Capped>(body).map_err(ApiError::bad_json)?.items()?)
    } else {
        serde_json::from_slice(body).map_err(ApiError::bad_json)?
    };
    Ok(match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, v)| Item { index, line: None, raw: from_json_value(v) })
            .collect(),
        Value::Object(m) => vec![Item { index: 0, line: None, raw: Ok(Raw::Object(m)) }],
        _ => return Err(ApiError::invalid("invalid_body", "the body must be an indicator object or a JSON array of them")),
    })
}

fn lines(body: &[u8]) -> impl Iterator<Item = (usize, std::borrow::Cow<'_, str>)> {
    body.split(|b| *b == b'\n').enumerate().map(|(i, l)| (i + 1, String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l))))
}

fn json_lines(body: &[u8]) -> Vec<Item> {
    lines(body)
        .filter(|(_, l)| !l.trim().is_empty())
        .take(MAX_ITEMS_PER_REQUEST + 1)
        .enumerate()
        .map(|(index, (line, text))| Item {
            index,
            line: Some(line),
            raw: serde_json::from_str::<Value>(&text)
                .map_err(|e| ItemRejection { code: "invalid_json".into(), message: format!("malformed JSON: {e}") })
                .and_then(from_json_value),
        })
        .collect()
}

/// A plain list, read line by line as `apiary import feed --format text` reads it: `#`/`;`
/// comment lines, inline comments after whitespace (kept as the description), any line ending.
fn text_lines(body: &[u8]) -> Vec<Item> {
    use apiary_ingest::lines::{decode_lossy, AtEof, LineReader};
    let mut reader = LineReader::new(body, AtEof::Yield);
    let mut items = Vec::new();
    // Reading a slice cannot fail.
    while let Ok(Some(l)) = reader.next_line() {
        let Some((value, description)) = apiary_ingest::feeds::text::value_of_line(&decode_lossy(l.bytes).0) else { continue };
        let raw = match description {
            None => Raw::Value(value),
            Some(d) => {
                let mut m = Map::new();
                m.insert("indicator".into(), Value::String(value));
                m.insert("description".into(), Value::String(d));
                Raw::Object(m)
            }
        };
        items.push(Item { index: items.len(), line: Some(l.number as usize), raw: Ok(raw) });
        if items.len() > MAX_ITEMS_PER_REQUEST {
            break;
        }
    }
    items
}

fn csv_rows(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(body);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::invalid("invalid_csv", format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if !headers.iter().any(|h| h == "indicator") {
        return Err(ApiError::invalid("invalid_csv", "the CSV has no `indicator` column in its header"));
    }
    let mut items = Vec::new();
    for (index, row) in reader.records().take(MAX_ITEMS_PER_REQUEST + 1).enumerate() {
        let item = match row {
            Ok(row) => {
                let line = row.position().map(|p| p.line() as usize);
                let obj: Map<String, Value> = headers
                    .iter()
                    .zip(row.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
                    .collect();
                Item { index, line, raw: Ok(Raw::Object(obj)) }
            }
            Err(e) => Item {
                index,
                line: e.position().map(|p| p.line() as usize),
                raw: Err(ItemRejection { code: "invalid_csv".into(), message: format!("CSV: {e}") }),
            },
        };
        items.push(item);
    }
    Ok(items)
}

/// The publish handler.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    let principal = caller.principal()?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let started = std::time::Instant::now();
    let items = decode(content_type, &body)?;
    let decoded = started.elapsed();

    let intake = Intake {
        feed_id: feed.id,
        reporter_id: principal.user_id,
        received_at: chrono::Utc::now(),
        options: &state.parse_options,
        uuid_is_key: false,
    };
    let mut good: Vec<(usize, NewSighting)> = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for item in items {
        let input = item.raw.as_ref().map(Raw::input).unwrap_or_default();
        let parsed = item.raw.and_then(|raw| match raw {
            Raw::Object(m) => intake.from_object(m),
            Raw::Value(s) => intake.from_value(&s),
        });
        match parsed {
            Ok(s) => good.push((item.index, s)),
            Err(r) => rejected.push(json!({
                "index": item.index, "line": item.line, "input": input, "code": r.code, "message": r.message,
            })),
        }
    }

    let parsed_at = started.elapsed();
    let mut accepted = 0u64;
    let mut duplicates = 0u64;
    let mut stored = Vec::with_capacity(good.len());
    while !good.is_empty() {
        let rest = good.split_off(good.len().min(APPEND_CHUNK));
        let chunk = std::mem::replace(&mut good, rest);
        let described: Vec<(usize, String, &'static str)> =
            chunk.iter().map(|(i, s)| (*i, s.value.clone(), s.itype.as_str())).collect();
        let outcomes = state.store.append_sightings(chunk.into_iter().map(|(_, s)| s).collect()).await?;
        for ((index, value, itype), o) in described.into_iter().zip(outcomes) {
            if o.duplicate {
                duplicates += 1;
            } else {
                accepted += 1;
            }
            stored.push(json!({
                "index": index, "id": o.record_id, "seq": o.seq, "indicator": value, "itype": itype, "duplicate": o.duplicate,
            }));
        }
    }

    tracing::debug!(
        feed = %feed.full_name(),
        items = stored.len() + rejected.len(),
        decode_ms = decoded.as_secs_f64() * 1e3,
        parse_ms = (parsed_at - decoded).as_secs_f64() * 1e3,
        store_ms = (started.elapsed() - parsed_at).as_secs_f64() * 1e3,
        "publish"
    );
    let status = if stored.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if accepted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let reply = json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected, "items": stored});
    Ok((status, Extension(Appended(accepted)), Json(reply)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(items: &[Item]) -> Vec<(usize, Option<usize>, bool)> {
        items.iter().map(|i| (i.index, i.line, i.raw.is_ok())).collect()
    }

    #[test]
    fn decodes_each_body_form() {
        let json = decode("application/json", br#"[{"indicator":"a"},"b",3]"#).unwrap();
        assert_eq!(shape(&json), vec![(0, None, true), (1, None, true), (2, None, false)]);

        let one = decode("", br#"{"indicator":"a"}"#).unwrap();
        assert_eq!(shape(&one), vec![(0, None, true)]);

        let nd = decode("application/x-ndjson", b"{\"indicator\":\"a\"}\n\n{bad\r\n\"c\"\n").unwrap();
        assert_eq!(shape(&nd), vec![(0, Some(1), true), (1, Some(3), false), (2, Some(4), true)]);

        let text = decode("text/plain; charset=utf-8", b"# header\n198.51.100.1\n\n example.com \n").unwrap();
        assert_eq!(shape(&text), vec![(0, Some(2), true), (1, Some(4), true)]);
        assert!(matches!(&text[1].raw, Ok(Raw::Value(v)) if v == "example.com"));
        // The lines `import feed --format text` takes: inline `#`, `;` and tab comments, `;`
        // comment lines, CR-only endings.
        let text = decode("text/plain", b"198.51.100.1 # scanner\r; note\rexample.com\t; c2\n198.51.100.2\tseen twice\n").unwrap();
        assert_eq!(shape(&text), vec![(0, Some(1), true), (1, Some(3), true), (2, Some(4), true)]);
        match &text[0].raw {
            Ok(Raw::Object(m)) => assert_eq!((m["indicator"].as_str(), m["description"].as_str()), (Some("198.51.100.1"), Some("scanner"))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(&text[1].raw, Ok(Raw::Object(m)) if m["indicator"] == "example.com"));

        let csv = decode("text/csv", b"Indicator,tags\n198.51.100.1,\"scanner,ssh\"\nexample.com,\n").unwrap();
        assert_eq!(shape(&csv), vec![(0, Some(2), true), (1, Some(3), true)]);
        match &csv[0].raw {
            Ok(Raw::Object(m)) => assert_eq!(m["tags"], "scanner,ssh"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_over_the_item_cap_are_413_in_every_form() {
        let n = MAX_ITEMS_PER_REQUEST + 1;
        let array = format!("[{}]", vec!["\"192.0.2.1\""; n].join(","));
        let lines = "192.0.2.1\n".repeat(n);
        let ndjson = "\"192.0.2.1\"\n".repeat(n);
        let csv = format!("indicator\n{}", lines);
        for (ct, body) in [("application/json", &array), ("text/plain", &lines), ("application/x-ndjson", &ndjson), ("text/csv", &csv)] {
            let err = decode(ct, body.as_bytes()).unwrap_err();
            assert_eq!((err.status, &*err.code), (StatusCode::PAYLOAD_TOO_LARGE, "too_many_items"), "{ct}");
            assert!(err.message.contains("10000"), "{}", err.message);
        }
        // The array's count is exact; at the cap it is accepted.
        assert!(decode("application/json", array.as_bytes()).unwrap_err().message.contains(&n.to_string()));
        let at_cap = format!("[{}]", vec!["\"192.0.2.1\""; MAX_ITEMS_PER_REQUEST].join(","));
        assert_eq!(decode("application/json", at_cap.as_bytes()).unwrap().len(), MAX_ITEMS_PER_REQUEST);
    }

    #[test]
    fn refuses_bodies_without_items() {
        for (ct, body) in [
            ("application/json", &b"[]"[..]),
            ("application/json", b"{not json"),
            ("application/json", b"42"),
            ("text/plain", b"\n# only a comment\n"),
            ("text/csv", b"value,tags\n1.2.3.4,x\n"),
        ] {
            let err = decode(ct, body).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{ct} {:?}", String::from_utf8_lossy(body));
        }
    }
}
