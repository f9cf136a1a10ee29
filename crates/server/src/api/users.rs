//! Users (admin only): `GET|POST /api/v1/users`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::{views, AppState};

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let users = state.store.list_users().await?;
    Ok(Json(json!({"items": users.iter().map(views::user).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
    #[serde(default)]
    admin: bool,
}

pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let body: NewUserBody = parse_json(&body)?;
    let user = state.store.create_user(&body.name, body.admin).await?;
    Ok((StatusCode::CREATED, Json(views::user(&user))))
}
