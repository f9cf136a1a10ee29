//! `GET /health` and `GET /api/v1/health`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::AppState;

/// `{"status":"ok", "version", "stats"}` when the store answers; 503 `{"status":"unavailable"}`
/// when it does not (a monitor's signal, not a client's load signal).
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let version = env!("CARGO_PKG_VERSION");
    match state.store.stats().await {
        Ok(stats) => (StatusCode::OK, Json(json!({"status": "ok", "version": version, "stats": stats}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "version": version, "error": {"code": "store", "message": e.to_string()}})),
        ),
    }
}
