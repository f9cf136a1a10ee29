//! Feed subscriptions: `GET|POST /api/v1/subscriptions`, `DELETE
//! /api/v1/subscriptions/{owner}/{feed}`, and the "my subscriptions" feed of records
//! `GET /api/v1/subscriptions/indicators` (the union of the subscribed feeds the caller may
//! read, with the filters of `GET /api/v1/indicators`). Streaming them: `GET
//! /api/v1/stream?subscriptions=true`.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::indicators::{build_query, Filters};
use crate::auth::{readable_feed, Caller};
use crate::error::{parse_json, ApiError};
use crate::streams::access::subscribed_feeds;
use crate::{views, AppState};

/// A token that may read, or 401/403.
fn reading_caller(caller: &Caller) -> Result<&apiary_store::Principal, ApiError> {
    let p = caller.principal()?;
    if caller.reader().is_none() {
        return Err(ApiError::forbidden("subscriptions need a token with `read` scope"));
    }
    Ok(p)
}

/// A token that may read and change state (`write`): subscribing and unsubscribing.
fn changing_caller(caller: &Caller) -> Result<&apiary_store::Principal, ApiError> {
    reading_caller(caller)?;
    caller.require_write()
}

/// `GET /api/v1/subscriptions`: the caller's subscribed feeds it may still read.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    reading_caller(&caller)?;
    let feeds = subscribed_feeds(&state, &caller).await?;
    Ok(Json(json!({"items": feeds.iter().map(views::feed).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    /// `owner/name`
    feed: String,
}

/// `POST /api/v1/subscriptions` `{"feed": "owner/name"}`: follow a feed the caller may read.
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = changing_caller(&caller)?.clone();
    let body: SubscribeBody = parse_json(&body)?;
    let (owner, name) = body
        .feed
        .split_once('/')
        .ok_or_else(|| ApiError::invalid("invalid_feed", format!("`feed` `{}`: write it as owner/name", body.feed)))?;
    readable_feed(&state, &caller, owner, name).await?;
    let feed = state.store.subscribe_feed(&p.user, owner, name).await?;
    state.streams.webhooks_changed.notify_one();
    Ok((StatusCode::CREATED, Json(views::feed(&feed))))
}

/// `DELETE /api/v1/subscriptions/{owner}/{feed}`
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let p = changing_caller(&caller)?;
    state.store.unsubscribe_feed(&p.user, &owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/subscriptions/indicators?...`: records of the subscribed feeds, newest first.
pub async fn records(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(f): QueryString<Filters>,
) -> Result<Json<Value>, ApiError> {
    reading_caller(&caller)?;
    if f.feed.is_some() {
        return Err(ApiError::invalid("invalid_filter", "`feed` does not apply here: these are your subscribed feeds"));
    }
    let mut q = build_query(&state, &caller, &f, None).await?;
    let ids: Vec<i64> = subscribed_feeds(&state, &caller).await?.iter().map(|f| f.id).collect();
    if ids.is_empty() {
        return Ok(Json(json!({"items": [], "next": null})));
    }
    q.feed_ids = Some(ids);
    let page = crate::access::query(&state, &caller, &q).await?;
    Ok(Json(crate::api::indicators::page_json(&state, &page.items, page.next).await?))
}
