//! The feed comparison: `GET /api/v1/compare` (one row per feed) and `GET /api/v1/compare/overlap`
//! (the pairwise matrix). Both serve what the comparison job last stored ([`crate::compare`]),
//! cut to the feeds the caller may read; nothing is computed on the request path.

use std::collections::HashSet;

use apiary_core::trust::compare::Comparison;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{readable_feeds, Caller};
use crate::error::ApiError;
use crate::AppState;

/// The stored comparison cut to the caller's readable feeds (None before the job's first run).
async fn visible(state: &AppState, caller: &Caller) -> Result<Option<Comparison>, ApiError> {
    let Some(c) = state.store.get_feed_comparison().await? else {
        return Ok(None);
    };
    let readable: HashSet<i64> = readable_feeds(state, caller, None).await?.iter().map(|f| f.id).collect();
    Ok(Some(c.restrict(|id| readable.contains(&id))))
}

fn computed_at(c: &Comparison) -> Value {
    chrono::DateTime::from_timestamp(c.computed_at, 0).map_or(Value::Null, |t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// `GET /api/v1/compare`: one row per readable feed, sorted by marginal lift.
pub async fn rows(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let Some(c) = visible(&state, &caller).await? else {
        return Ok(Json(json!({"computed_at": null, "pending": true, "items": []})));
    };
    let items: Vec<Value> = c
        .rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "computed_at": computed_at(&c),
        "trusted_by": c.trusted_by,
        "values": c.values,
        "trusted_values": c.trusted_values,
        "block_values": c.block_values,
        "items": items,
    })))
}

/// `GET /api/v1/compare/overlap`: `intersect[a][b] = |A ∩ B|`, `differential[a][b] = |A ∖ B| / |A|`.
pub async fn overlap(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let Some(c) = visible(&state, &caller).await? else {
        return Ok(Json(
            json!({"computed_at": null, "pending": true, "feeds": [], "intersect": [], "differential": []}),
        ));
    };
    Ok(Json(json!({
        "computed_at": computed_at(&c),
        "feeds": c.overlap.feeds,
        "intersect": c.overlap.intersect,
        "differential": c.overlap.differential,
    })))
}
