//! Push subscriptions: `GET|POST /api/v1/webhooks`, `GET|DELETE /api/v1/webhooks/{id}`,
//! `POST /api/v1/webhooks/{id}/resume`. Delivery, signing and retries: `crate::streams::webhooks`.

use apiary_store::{NewWebhook, Webhook};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::streams::access::Access;
use crate::streams::filter::{FilterParams, StreamFilter};
use crate::{views, AppState};

pub fn view(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "user": w.user,
        "url": w.url,
        "filter": w.filter,
        "cursor": w.cursor,
        "state": w.state,
        "failures": w.failures,
        "last_error": w.last_error,
        "created_at": views::time(w.created_at),
        "updated_at": views::time(w.updated_at),
    })
}

fn reading_caller(caller: &Caller) -> Result<&apiary_store::Principal, ApiError> {
    let p = caller.principal()?;
    if caller.reader().is_none() {
        return Err(ApiError::forbidden("webhooks need a token with `read` scope"));
    }
    Ok(p)
}

/// A token that may read and change state (`write`): making, deleting and resuming webhooks.
fn changing_caller(caller: &Caller) -> Result<&apiary_store::Principal, ApiError> {
    reading_caller(caller)?;
    caller.require_write()
}

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    /// Admins: every user's webhooks.
    all: Option<bool>,
}

/// `GET /api/v1/webhooks`
pub async fn list(State(state): State<AppState>, caller: Caller, Query(q): Query<ListParams>) -> Result<Json<Value>, ApiError> {
    let p = reading_caller(&caller)?;
    let user = if q.all == Some(true) && caller.is_admin() { None } else { Some(p.user.as_str()) };
    let hooks = state.store.list_webhooks(user).await?;
    Ok(Json(json!({"items": hooks.iter().map(view).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    url: String,
    #[serde(default)]
    filter: Option<FilterParams>,
    /// At least 16 characters; generated when absent (returned once).
    secret: Option<String>,
    /// Deliver sightings after this seq (default: from now).
    after: Option<i64>,
}

/// `POST /api/v1/webhooks` `{"url": ..., "filter": {...}, "secret": ..., "after": seq}`
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = changing_caller(&caller)?.clone();
    let body: NewWebhookBody = parse_json(&body)?;
    let params = body.filter.unwrap_or_default();
    let filter = StreamFilter::parse(&params, &state)?;
    let access = Access::resolve(&state, caller.clone(), None).await?;
    for name in &filter.feeds {
        access.feed_id(name)?;
    }
    let secret = body.secret.unwrap_or_else(|| {
        let mut b = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut b);
        hex::encode(b)
    });
    let cursor = match body.after {
        Some(a) if a >= 0 => {
            crate::streams::native::check_cursor(&state, Some(a)).await?;
            a
        }
        Some(a) => return Err(ApiError::invalid("invalid_cursor", format!("`after` {a}: a sightings seq (0 or more)"))),
        None => state.store.last_sighting_seq().await?,
    };
    let filter_json = serde_json::to_value(&params).map_err(|e| ApiError::invalid("invalid_filter", e.to_string()))?;
    let hook = state
        .store
        .create_webhook(NewWebhook { user: p.user.clone(), url: body.url, secret: secret.clone(), filter: filter_json, cursor })
        .await?;
    state.streams.webhooks_changed.notify_one();
    let mut reply = view(&hook);
    reply["secret"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(reply)))
}

/// The webhook if the caller owns it (or is an admin); 404 otherwise.
async fn owned(state: &AppState, caller: &Caller, id: i64) -> Result<Webhook, ApiError> {
    let p = reading_caller(caller)?;
    match state.store.get_webhook(id).await? {
        Some(w) if w.user_id == p.user_id || caller.is_admin() => Ok(w),
        _ => Err(ApiError::not_found(format!("no webhook {id}"))),
    }
}

/// `GET /api/v1/webhooks/{id}`
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&owned(&state, &caller, id).await?)))
}

/// `DELETE /api/v1/webhooks/{id}`
pub async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    owned(&state, &caller, id).await?;
    changing_caller(&caller)?;
    state.store.delete_webhook(id).await?;
    state.streams.webhooks_changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/resume`: deliver again from the stored cursor.
pub async fn resume(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Json<Value>, ApiError> {
    owned(&state, &caller, id).await?;
    changing_caller(&caller)?;
    let hook = state.store.resume_webhook(id).await?;
    state.streams.webhooks_changed.notify_one();
    Ok(Json(view(&hook)))
}
