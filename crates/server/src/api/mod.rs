//! The native API under `/api/v1/` (docs/native-api.md; machine-readable in `openapi.json`).
//! One module per group of routes.

pub mod events;
pub mod compare;
pub mod feeds;
pub mod health;
pub mod indicators;
pub mod publish;
pub mod sessions;
pub mod signup;
pub mod subscriptions;
pub mod tokens;
pub mod users;
pub mod webhooks;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::AppState;

/// Routes that need no token and no rate limit: health, metrics, the API description.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/api/v1/health", get(health::health))
        .route("/metrics", get(crate::metrics::handler))
        .route("/api/v1/openapi.json", get(crate::openapi::handler))
}

/// Routes behind authentication and rate limits.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/feeds", get(feeds::list).post(feeds::create))
        .route("/api/v1/compare", get(compare::rows))
        .route("/api/v1/compare/overlap", get(compare::overlap))
        .route("/api/v1/feeds/{owner}/{feed}", get(feeds::show).patch(feeds::update).delete(feeds::remove))
        .route("/api/v1/feeds/{owner}/{feed}/indicators", get(indicators::feed_records).post(publish::publish))
        .route("/api/v1/feeds/{owner}/{feed}/events", get(events::list).post(events::ingest))
        .route("/api/v1/indicators", get(indicators::query))
        .route("/api/v1/indicators/{*value}", get(indicators::detail))
        .route("/api/v1/feeds/{owner}/{feed}/sessions", post(sessions::publish))
        .route("/api/v1/feeds/{owner}/{feed}/sensors", get(sessions::sensors).post(sessions::add_sensor))
        .route("/api/v1/feeds/{owner}/{feed}/sensors/{name}", delete(sessions::remove_sensor))
        .route("/api/v1/sessions", get(sessions::list))
        .route("/api/v1/attackers", get(sessions::attackers))
        .route("/api/v1/attackers/{ip}", get(sessions::attacker))
        .route("/api/v1/payloads/{sha256}", get(sessions::payload))
        .route("/api/v1/campaigns", get(sessions::campaigns_list))
        .route("/api/v1/campaigns/{id}", get(sessions::campaign))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", delete(tokens::revoke))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/signup", post(signup::signup))
        .route("/api/v1/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route("/api/v1/subscriptions/indicators", get(subscriptions::records))
        .route("/api/v1/subscriptions/{owner}/{feed}", delete(subscriptions::remove))
        .route("/api/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/v1/webhooks/{id}", get(webhooks::show).delete(webhooks::remove))
        .route("/api/v1/webhooks/{id}/resume", post(webhooks::resume))
        .route("/api/v1/stream", get(crate::streams::native::sse))
        .route("/api/v1/stream/ws", get(crate::streams::native::ws))
        .route("/firehose", get(crate::streams::firehose::handler))
        .route("/api/firehose", get(crate::streams::firehose::handler))
}
