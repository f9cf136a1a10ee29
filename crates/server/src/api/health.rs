//! `GET /health` and `GET /api/v1/health`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct HealthParams {
    /// `?stats=true` adds the store's row counts (they count whole tables: not for every probe).
    #[serde(default)]
    stats: bool,
}

/// `{"status":"ok","version"}` when the store answers (a cheap read of the accounts table);
/// 503 `{"status":"unavailable"}` when it does not — a monitor's signal, not a client's load signal.
pub async fn health(State(state): State<AppState>, Query(p): Query<HealthParams>) -> impl IntoResponse {
    let version = env!("CARGO_PKG_VERSION");
    let unavailable = |e: apiary_store::StoreError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "version": version, "error": {"code": "store", "message": e.to_string()}})),
        )
    };
    if let Err(e) = state.store.list_users().await {
        return unavailable(e);
    }
    let mut body = json!({"status": "ok", "version": version});
    if p.stats {
        match state.store.stats().await {
            Ok(stats) => body["stats"] = serde_json::to_value(stats).unwrap_or(Value::Null),
            Err(e) => return unavailable(e),
        }
    }
    (StatusCode::OK, Json(body))
}
