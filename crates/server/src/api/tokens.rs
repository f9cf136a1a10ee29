//! Tokens: `GET|POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`.
//! Callers manage their own tokens; admins may name another user (`user`).

use apiary_core::parse_time;
use apiary_store::Scopes;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::{views, AppState};

#[derive(Debug, Deserialize, Default)]
pub struct UserParam {
    user: Option<String>,
}

/// The user whose tokens are meant: the caller, or (admins only) the one named.
fn target_user(caller: &Caller, named: Option<String>) -> Result<String, ApiError> {
    let p = caller.principal()?;
    match named {
        Some(u) if u != p.user => {
            caller.require_admin()?;
            Ok(u)
        }
        _ => Ok(p.user.clone()),
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UserParam>,
) -> Result<Json<Value>, ApiError> {
    let user = target_user(&caller, q.user)?;
    let tokens = state.store.list_tokens(&user).await?;
    Ok(Json(json!({"items": tokens.iter().map(views::token).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    scopes: Value,
    expires_at: Option<String>,
    label: Option<String>,
    user: Option<String>,
}

/// `POST /api/v1/tokens` → 201 `{"token": "<shown once>", ...}`. A token never gets scopes its
/// creator's token lacks (admins excepted).
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: NewTokenBody = parse_json(&body)?;
    let user = target_user(&caller, body.user)?;
    let text = match &body.scopes {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        _ => String::new(),
    };
    let scopes = Scopes::parse(&text)
        .filter(|s| s.read || s.write || s.admin)
        .ok_or_else(|| ApiError::invalid("invalid_scopes", format!("scopes `{text}`: use read, write, admin (comma separated)")))?;
    let p = caller.principal()?;
    let allowed = caller.is_admin() || ((!scopes.read || p.scopes.read) && (!scopes.write || p.scopes.write) && !scopes.admin);
    if !allowed {
        return Err(ApiError::forbidden("a token cannot grant scopes its creator's token does not have"));
    }
    let expires = match body.expires_at.as_deref() {
        None => None,
        Some(t) => {
            let t = parse_time(t).map_err(|r| ApiError::invalid(r.code.as_str(), format!("`expires_at`: {}", r.message)))?;
            if t <= chrono::Utc::now() {
                return Err(ApiError::invalid("invalid_time", "expires_at is in the past"));
            }
            Some(t)
        }
    };
    let (info, secret) = state.store.create_token(&user, scopes, expires, body.label.as_deref()).await?;
    let mut reply = views::token(&info);
    reply["token"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(reply)))
}

/// `DELETE /api/v1/tokens/{id}`: revoke.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<UserParam>,
) -> Result<Json<Value>, ApiError> {
    let user = target_user(&caller, q.user)?;
    let id: i64 = id.parse().map_err(|_| ApiError::not_found(format!("no token {id}")))?;
    state.store.revoke_token(&user, id).await?;
    Ok(Json(json!({"revoked": id})))
}
