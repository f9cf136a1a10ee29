//! The CSIRTG v1 API that csirtgsdk 1.1.5 and Cowrie's `[output_csirtg]` call, unchanged
//! (../shared/spec/csirtg-compat.md; what we implemented is in docs/csirtg-compat.md).
//!
//! Client quirks handled here: reads sent as `POST` with a `null` body; both indicator body
//! shapes (csirtg-indicator 1.x and 3.x, read by [`crate::intake`]); `itype` `uri` for URLs;
//! `license` always an object; `location` in every indicator. The `//` in create paths is
//! collapsed before routing ([`crate::paths`]). Times are RFC 3339 UTC, which the CLI's table
//! printer (`arrow.get`) parses.

use apiary_core::enrich::Enrichment;
use apiary_core::IType;
use apiary_store::{Feed, FeedRecord, NewFeed, Query, StoreError, Visibility};
use axum::body::Bytes;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::indicators::page_limit;
use crate::auth::{readable_feed, readable_feeds, writable_feed, Caller};
use crate::error::{parse_json, ApiError};
use crate::intake::{shorten, Intake};
use crate::metrics::Appended;
use crate::views::time;
use crate::AppState;

/// What the CLI asks for when the user gives no `--limit`.
const CSIRTG_DEFAULT_LIMIT: usize = 25;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/search", get(search).post(search))
        .route("/api/predict", get(predict).post(predict))
        .route("/api/users/{user}/feeds", get(feeds).post(feeds))
        .route("/api/users/{user}/feeds/{feed}", get(feed_show).post(feed_show).delete(feed_delete))
        .route("/api/users/{user}/feeds/{feed}/indicators", post(indicator_create).get(feed_indicators))
        .route("/api/users/{user}/feeds/{feed}/indicators_bulk", post(indicators_bulk))
        .route("/api/users/{user}/feeds/{feed}/indicators/{id}", get(indicator_show).post(indicator_show))
        .route("/api/users/{user}/feeds/{feed}/indicators/{id}/comments", get(comments).post(comments))
}

/// csirtgsdk sends reads without query parameters as `POST` with the body `null`.
fn is_read(method: &Method, body: &[u8]) -> bool {
    if method == Method::GET {
        return true;
    }
    let b = body.trim_ascii();
    b.is_empty() || b == b"null"
}

/// The CSIRTG name of a type: `uri` for URLs, the native name otherwise.
fn compat_itype(itype: IType) -> &'static str {
    match itype {
        IType::Url => "uri",
        other => other.as_str(),
    }
}

fn license(feed: &Feed) -> Value {
    json!({"name": feed.license_name, "url": feed.license_url})
}

fn feed_view(feed: &Feed) -> Value {
    json!({
        "id": feed.id,
        "name": feed.name,
        "user": feed.owner,
        "description": feed.description,
        "license": license(feed),
        "visibility": feed.visibility,
        "created_at": time(feed.created_at),
        "updated_at": time(feed.updated_at),
    })
}

fn location(base: &str, feed: &Feed, id: i64) -> String {
    format!("{base}/api/users/{}/feeds/{}/indicators/{id}", feed.owner, feed.name)
}

/// An indicator as the CSIRTG clients read it (create reply, show, feed show, search), with
/// `asn`, `asn_desc` and `cc` from the hub's IP-to-ASN tables when it has them.
fn indicator_view(r: &FeedRecord, feed: &Feed, base: &str, net: &Enrichment) -> Value {
    let network = net.lookup_indicator(r.itype, &r.indicator);
    let [(_, asn), (_, asn_desc), (_, cc)] = crate::enrich::fields(network.as_ref());
    let portlist = (!r.portlist.is_empty())
        .then(|| r.portlist.iter().map(u16::to_string).collect::<Vec<_>>().join(","));
    json!({
        "id": r.id,
        "indicator": r.indicator,
        "itype": compat_itype(r.itype),
        "user": feed.owner,
        "feed": feed.name,
        "provider": feed.full_name(),
        "group": "everyone",
        "tlp": r.tlp.as_str(),
        "count": r.count,
        "tags": r.tags,
        "portlist": portlist,
        "protocol": r.protocol,
        "description": r.description,
        "confidence": r.claimed_confidence,
        "reserved": r.reserved,
        "firsttime": time(r.firsttime),
        "lasttime": time(r.lasttime),
        "reporttime": time(r.reporttime),
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
        "location": location(base, feed, r.id),
        "license": license(feed),
        "comments": [],
        "attachments": [],
        "asn": asn,
        "asn_desc": asn_desc,
        "cc": cc,
        "content": Value::Null,
    })
}

/// Refusals the CSIRTG client understands: it knows 422, not 409.
fn compat(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::invalid("conflict", format!("already exists: {m}")),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize, Default)]
struct SearchParams {
    q: Option<String>,
    limit: Option<String>,
}

fn limit_param(state: &AppState, limit: &Option<String>) -> Result<usize, ApiError> {
    match limit.as_deref().map(str::trim).filter(|l| !l.is_empty() && *l != "None") {
        None => Ok(CSIRTG_DEFAULT_LIMIT),
        l => page_limit(state, l),
    }
}

/// Feeds by id, loaded once per reply.
async fn feeds_of(state: &AppState, records: &[FeedRecord]) -> Result<Vec<(FeedRecord, Feed)>, ApiError> {
    let mut cache: Vec<Feed> = Vec::new();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        if !cache.iter().any(|f| f.id == r.feed_id) {
            let (owner, name) = r.feed.split_once('/').unwrap_or((&r.feed, ""));
            match state.store.get_feed(owner, name).await? {
                Some(f) => cache.push(f),
                None => continue,
            }
        }
        if let Some(f) = cache.iter().find(|f| f.id == r.feed_id) {
            out.push((r.clone(), f.clone()));
        }
    }
    Ok(out)
}

/// `GET /search?q=&limit=`: the value's records in every feed the caller may read.
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryString(p): QueryString<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).ok_or_else(|| ApiError::invalid("missing_query", "`q` is required"))?;
    let ind = apiary_core::parse(q, None, &state.parse_options)
        .map_err(|r| ApiError::invalid(r.code.as_str(), r.message))?;
    let query = Query { value: Some(ind.value), reader: caller.reader(), limit: limit_param(&state, &p.limit)?, ..Query::default() };
    let page = crate::access::query(&state, &caller, &query).await?;
    let base = state.base_url(&headers);
    let items: Vec<Value> = feeds_of(&state, &page.items).await?.iter().map(|(r, f)| indicator_view(r, f, &base, &state.config.asn.get())).collect();
    Ok(Json(Value::Array(items)))
}

/// `GET|POST /predict?q=`: 1 when the value is stored in a feed the caller may read and is not
/// a special-use address, else 0. (The trust model's scores replace this when scoring lands.)
async fn predict(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(p): QueryString<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).ok_or_else(|| ApiError::invalid("missing_query", "`q` is required"))?;
    let ind = apiary_core::parse(q, None, &state.parse_options)
        .map_err(|r| ApiError::invalid(r.code.as_str(), r.message))?;
    if ind.reserved.is_some() {
        return Ok(Json(json!({"score": 0})));
    }
    let query = Query { value: Some(ind.value.clone()), reader: caller.reader(), limit: 100, ..Query::default() };
    let known = !crate::access::query(&state, &caller, &query).await?.items.is_empty();
    if !known {
        return Ok(Json(json!({"score": 0})));
    }
    // The hub's own score (confidence / 100) once the scoring job has scored the value.
    match state.store.get_score(&ind.value).await? {
        Some(s) => Ok(Json(json!({"score": f64::from(s.confidence) / 100.0, "tier": s.tier.as_str()}))),
        None => Ok(Json(json!({"score": 1}))),
    }
}

/// `GET|POST(null) /users/{u}/feeds` lists; `POST {"feed":{...}}` creates.
async fn feeds(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if is_read(&method, &body) {
        let feeds = readable_feeds(&state, &caller, Some(&user)).await?;
        return Ok(Json(feeds.iter().map(feed_view).collect::<Vec<_>>()).into_response());
    }
    let p = caller.require_write()?;
    if p.user != user && !caller.is_admin() {
        return Err(ApiError::forbidden(format!("user {} may not create feeds for {user}", p.user)));
    }
    let body: Value = parse_json(&body)?;
    let spec = match body.get("feed") {
        Some(Value::Object(f)) => f.clone(),
        _ => body.as_object().cloned().unwrap_or_default(),
    };
    let text = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_string);
    let name = text("name").filter(|n| !n.trim().is_empty()).ok_or_else(|| ApiError::invalid("missing_field", "the feed needs a `name`"))?;
    let lic = spec.get("license");
    // Anything but a clear `public` or `private` is refused: a typo must not publish a feed meant
    // to be private.
    let visibility = match spec.get("visibility") {
        None | Some(Value::Null) => Visibility::Public,
        Some(Value::String(v)) if v.trim().eq_ignore_ascii_case("public") => Visibility::Public,
        Some(Value::String(v)) if v.trim().eq_ignore_ascii_case("private") => Visibility::Private,
        Some(v) => {
            return Err(ApiError::invalid("invalid_visibility", format!("`visibility` {v}: use \"public\" or \"private\"")));
        }
    };
    let feed = state
        .store
        .create_feed(NewFeed {
            owner: user,
            name,
            description: text("description"),
            license_name: lic.and_then(|l| l.get("name")).and_then(Value::as_str).map(str::to_string).or_else(|| text("license_name")),
            license_url: crate::api::feeds::license_url(
                lic.and_then(|l| l.get("url")).and_then(Value::as_str).map(str::to_string).or_else(|| text("license_url")),
            )?,
            visibility,
        })
        .await
        .map_err(compat)?;
    Ok((StatusCode::CREATED, Json(feed_view(&feed))).into_response())
}

#[derive(Debug, Deserialize, Default)]
struct FeedParams {
    limit: Option<String>,
    lasttime: Option<String>,
}

/// The feed's records, newest first as the store pages them.
async fn feed_records(state: &AppState, caller: &Caller, feed: &Feed, p: &FeedParams) -> Result<Vec<FeedRecord>, ApiError> {
    let since = match p.lasttime.as_deref().map(str::trim).filter(|t| !t.is_empty() && *t != "None") {
        None => None,
        Some(t) => Some(
            apiary_core::parse_time(t).map_err(|r| ApiError::invalid(r.code.as_str(), format!("`lasttime`: {}", r.message)))?,
        ),
    };
    let query = Query {
        feed_ids: Some(vec![feed.id]),
        reader: caller.reader(),
        since,
        limit: limit_param(state, &p.limit)?,
        ..Query::default()
    };
    Ok(crate::access::query(state, caller, &query).await?.items)
}

/// `GET|POST(null) /users/{u}/feeds/{f}?limit=&lasttime=`: the feed with its indicators.
async fn feed_show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
    QueryString(p): QueryString<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    let feed = readable_feed(&state, &caller, &user, &name).await?;
    let base = state.base_url(&headers);
    let records = feed_records(&state, &caller, &feed, &p).await?;
    let mut view = feed_view(&feed);
    view["indicators"] = records.iter().map(|r| indicator_view(r, &feed, &base, &state.config.asn.get())).collect();
    Ok(Json(view))
}

/// `GET /users/{u}/feeds/{f}/indicators`: the feed's indicators as a list.
async fn feed_indicators(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
    QueryString(p): QueryString<FeedParams>,
) -> Result<Json<Value>, ApiError> {
    let feed = readable_feed(&state, &caller, &user, &name).await?;
    let base = state.base_url(&headers);
    let records = feed_records(&state, &caller, &feed, &p).await?;
    Ok(Json(records.iter().map(|r| indicator_view(r, &feed, &base, &state.config.asn.get())).collect()))
}

/// `DELETE /users/{u}/feeds/{f}`
async fn feed_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let feed = writable_feed(&state, &caller, &user, &name).await?;
    state.store.delete_feed(&user, &name).await?;
    Ok(Json(json!({"message": "feed deleted", "feed": feed_view(&feed)})))
}

/// The indicator object of a create body, with the body's other fields (`comment`, `content`,
/// `attachment`...) kept alongside so they are stored with the sighting.
fn indicator_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut top) = body else {
        return Err(ApiError::invalid("invalid_body", "expected {\"indicator\": {...}}"));
    };
    let mut obj = match top.remove("indicator") {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => Map::from_iter([("indicator".to_string(), Value::String(s))]),
        _ => return Err(ApiError::invalid("missing_field", "the body has no `indicator` object")),
    };
    for (k, v) in top {
        if !v.is_null() {
            obj.entry(k).or_insert(v);
        }
    }
    Ok(obj)
}

/// `POST /users/{u}/feeds/{f}/indicators`: store one sighting; 201 with the feed record and
/// its `location`. Only after the store has made it durable.
async fn indicator_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let feed = writable_feed(&state, &caller, &user, &name).await?;
    let principal = caller.principal()?;
    let obj = indicator_object(parse_json(&body)?)?;
    let intake = Intake {
        feed_id: feed.id,
        reporter_id: principal.user_id,
        received_at: chrono::Utc::now(),
        options: &state.parse_options,
        uuid_is_key: true,
    };
    let sighting = intake.from_object(obj).map_err(|r| ApiError::invalid(r.code, r.message))?;
    let outcome = state
        .store
        .append_sightings(vec![sighting])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Internal("append returned no outcome".into()))?;
    let record = state
        .store
        .get_record(outcome.record_id)
        .await?
        .ok_or_else(|| StoreError::Internal(format!("record {} missing after append", outcome.record_id)))?;
    let view = indicator_view(&record, &feed, &state.base_url(&headers), &state.config.asn.get());
    let appended = Appended(u64::from(!outcome.duplicate));
    Ok((StatusCode::CREATED, Extension(appended), Json(view)).into_response())
}

/// `POST /users/{u}/feeds/{f}/indicators_bulk` `{"indicators":[...]}` (csirtgsdk's bulk shape:
/// `tag_list`, `comment: {content}`): stores the good ones; 201 with them and the refused ones,
/// 422 when all were refused.
async fn indicators_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let feed = writable_feed(&state, &caller, &user, &name).await?;
    let principal = caller.principal()?;
    // The list is read with the publish cap (413 past it), without building the rest.
    #[derive(serde::Deserialize)]
    struct Bulk {
        indicators: Option<crate::api::publish::Capped>,
    }
    let body: Bulk = parse_json(&body)?;
    let Some(list) = body.indicators else {
        return Err(ApiError::invalid("invalid_body", "expected {\"indicators\": [...]}"));
    };
    let list = list.items()?;
    let intake = Intake {
        feed_id: feed.id,
        reporter_id: principal.user_id,
        received_at: chrono::Utc::now(),
        options: &state.parse_options,
        uuid_is_key: true,
    };
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    for (index, item) in list.into_iter().enumerate() {
        let input = item.get("indicator").map(|v| shorten(&v.to_string())).unwrap_or_default();
        let parsed = match item {
            Value::Object(m) => intake.from_object(m),
            Value::String(s) => intake.from_value(&s),
            _ => Err(crate::intake::ItemRejection { code: "invalid_item".into(), message: "not an indicator object".into() }),
        };
        match parsed {
            Ok(s) => good.push(s),
            Err(r) => rejected.push(json!({"index": index, "input": input, "code": r.code, "message": r.message})),
        }
    }
    if good.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"indicators": [], "rejected": rejected}))).into_response());
    }
    let outcomes = state.store.append_sightings(good).await?;
    let appended = outcomes.iter().filter(|o| !o.duplicate).count() as u64;
    let base = state.base_url(&headers);
    let mut created = Vec::with_capacity(outcomes.len());
    for o in &outcomes {
        if let Some(r) = state.store.get_record(o.record_id).await? {
            created.push(indicator_view(&r, &feed, &base, &state.config.asn.get()));
        }
    }
    Ok((StatusCode::CREATED, Extension(Appended(appended)), Json(json!({"indicators": created, "rejected": rejected})))
        .into_response())
}

/// The record `id` of feed `user/name`, if the caller may read it.
async fn record_in_feed(
    state: &AppState,
    caller: &Caller,
    user: &str,
    name: &str,
    id: &str,
) -> Result<(FeedRecord, Feed), ApiError> {
    let feed = readable_feed(state, caller, user, name).await?;
    let missing = || ApiError::not_found(format!("no indicator {id} in {user}/{name}"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    let record = state.store.get_record(id).await?.filter(|r| r.feed_id == feed.id).ok_or_else(missing)?;
    let record = crate::access::record(state, caller, record).await?.ok_or_else(missing)?;
    Ok((record, feed))
}

/// `GET|POST(null) /users/{u}/feeds/{f}/indicators/{id}`
async fn indicator_show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((user, name, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (record, feed) = record_in_feed(&state, &caller, &user, &name, &id).await?;
    Ok(Json(indicator_view(&record, &feed, &state.base_url(&headers), &state.config.asn.get())))
}

/// `GET|POST(null) /users/{u}/feeds/{f}/indicators/{id}/comments`: the `comment`s publishers
/// sent with this value's sightings in this feed.
async fn comments(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, name, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (record, feed) = record_in_feed(&state, &caller, &user, &name, &id).await?;
    let sightings = crate::access::sightings_of(&state, &caller, &record.indicator, Some(&[feed.id]), 1000).await?;
    let comments: Vec<Value> = sightings
        .iter()
        .filter_map(|s| {
            let text = match s.extra.get("comment")? {
                Value::String(t) => t.clone(),
                Value::Object(c) => c.get("content")?.as_str()?.to_string(),
                _ => return None,
            };
            Some(json!({"comment": text, "user": feed.owner, "created_at": time(s.received_at)}))
        })
        .collect();
    Ok(Json(Value::Array(comments)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_with_null_or_empty_body_is_a_read() {
        assert!(is_read(&Method::POST, b"null"));
        assert!(is_read(&Method::POST, b" null\n"));
        assert!(is_read(&Method::POST, b""));
        assert!(is_read(&Method::GET, b"{\"feed\":{}}"));
        assert!(!is_read(&Method::POST, b"{\"feed\":{\"name\":\"x\"}}"));
    }

    #[test]
    fn create_body_keeps_top_level_fields_with_the_indicator() {
        let obj = indicator_object(json!({"indicator": {"indicator": "198.51.100.7", "tags": "a"}, "comment": "seen twice", "content": null}))
            .unwrap();
        assert_eq!(obj["comment"], "seen twice");
        assert!(!obj.contains_key("content"));
        assert!(indicator_object(json!(null)).is_err());
        assert!(indicator_object(json!({"comment": "x"})).is_err());
    }

    #[test]
    fn urls_are_uri_on_compat_routes() {
        assert_eq!(compat_itype(IType::Url), "uri");
        assert_eq!(compat_itype(IType::Ipv4), "ipv4");
    }
}
