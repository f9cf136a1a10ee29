//! Feed CRUD: `GET|POST /api/v1/feeds`, `GET|PATCH|DELETE /api/v1/feeds/{owner}/{feed}`.

use apiary_store::{FeedUpdate, NewFeed, Visibility};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{readable_feed, readable_feeds, writable_feed, Caller};
use crate::error::{parse_json, ApiError};
use crate::{views, AppState};

/// `GET /api/v1/feeds`: every feed the caller may read.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let feeds = readable_feeds(&state, &caller, None).await?;
    Ok(Json(json!({"items": feeds.iter().map(views::feed).collect::<Vec<_>>()})))
}

/// A licence link must be an `http(s)` URL: anything else (`javascript:`, `data:`) would be a
/// script in the feed's page. 422 otherwise; an empty string clears it.
pub fn license_url(url: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(url) = url else { return Ok(None) };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Ok(Some(String::new()));
    }
    if is_web_url(trimmed) {
        Ok(Some(trimmed.to_string()))
    } else {
        Err(ApiError::invalid("invalid_license_url", format!("`license_url` `{}`: use an http:// or https:// URL", crate::intake::shorten(trimmed))))
    }
}

/// Whether `url` is an absolute `http://` or `https://` URL with a host (what pages link to).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !url.chars().any(|c| c.is_control() || c.is_whitespace()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFeedBody {
    name: String,
    description: Option<String>,
    license_name: Option<String>,
    license_url: Option<String>,
    visibility: Option<Visibility>,
    owner: Option<String>,
}

/// `POST /api/v1/feeds`: create a feed (owner: the caller; admins may name another).
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = caller.require_write()?;
    let body: NewFeedBody = parse_json(&body)?;
    let owner = body.owner.unwrap_or_else(|| p.user.clone());
    if owner != p.user && !caller.is_admin() {
        return Err(ApiError::forbidden("only an admin may create a feed for another user"));
    }
    let feed = state
        .store
        .create_feed(NewFeed {
            owner,
            name: body.name,
            description: body.description,
            license_name: body.license_name,
            license_url: license_url(body.license_url)?,
            visibility: body.visibility.unwrap_or_default(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(views::feed(&feed))))
}

/// `GET /api/v1/feeds/{owner}/{feed}`
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let feed = readable_feed(&state, &caller, &owner, &name).await?;
    Ok(Json(views::feed(&feed)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedUpdateBody {
    description: Option<String>,
    license_name: Option<String>,
    license_url: Option<String>,
    visibility: Option<Visibility>,
}

/// `PATCH /api/v1/feeds/{owner}/{feed}`: change description, licence or visibility.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    writable_feed(&state, &caller, &owner, &name).await?;
    let body: FeedUpdateBody = parse_json(&body)?;
    let update = FeedUpdate {
        description: body.description,
        license_name: body.license_name,
        license_url: license_url(body.license_url)?,
        visibility: body.visibility,
    };
    let feed = state.store.update_feed(&owner, &name, update).await?;
    Ok(Json(views::feed(&feed)))
}

/// `DELETE /api/v1/feeds/{owner}/{feed}`
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    writable_feed(&state, &caller, &owner, &name).await?;
    state.store.delete_feed(&owner, &name).await?;
    Ok(Json(json!({"deleted": format!("{owner}/{name}")})))
}
