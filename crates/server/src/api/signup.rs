//! Sign-up: `POST /api/v1/signup` makes a user and its first token, when the hub's admin has
//! opened sign-up (`apiary serve --signup`). Closed by default: then accounts are made by an
//! admin (`apiary user add`, `POST /api/v1/users`).
//!
//! Sign-ups are rate limited twice over: per client address (`--signup-rate` an hour, in a
//! burst of at most that many) and hub-wide (ten times that), so one address cannot mint
//! accounts and many cannot flood the user table. An empty bucket is a 429 with `Retry-After`.

use std::net::{IpAddr, Ipv4Addr};

use apiary_store::Scopes;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{parse_json, ApiError};
use crate::limits::{client_address, Key, Rate, RateLimiter};
use crate::{views, AppState};

/// Whether sign-up is open, and how fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignupOptions {
    pub open: bool,
    /// Sign-ups allowed per client address per hour; the hub as a whole allows ten times that.
    pub per_address_per_hour: f64,
}

impl Default for SignupOptions {
    fn default() -> Self {
        SignupOptions { open: false, per_address_per_hour: 3.0 }
    }
}

/// The buckets of sign-ups, per address and hub-wide (under the unspecified address).
#[derive(Debug)]
pub struct SignupLimiter {
    per_address: RateLimiter,
    hub: RateLimiter,
}

/// The key of the hub-wide bucket: no client has the unspecified address.
const HUB: Key = Key::Address(IpAddr::V4(Ipv4Addr::UNSPECIFIED));

impl SignupLimiter {
    pub fn new(o: &SignupOptions) -> Self {
        let n = o.per_address_per_hour.max(0.0);
        let per_address = Rate { per_second: n / 3600.0, burst: n };
        let hub = Rate { per_second: 10.0 * n / 3600.0, burst: 10.0 * n };
        SignupLimiter { per_address: RateLimiter::new(per_address, per_address), hub: RateLimiter::new(hub, hub) }
    }

    /// Take one sign-up for `ip`; `Err(seconds)` says when to retry.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.per_address.check(Key::Address(ip))?;
        self.hub.check(HUB)
    }
}

/// A sign-up is a name: anything larger is not one.
const MAX_BODY: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    name: String,
}

/// `POST /api/v1/signup` `{"name": "alice"}` → 201 `{"user": {...}, "token": "<shown once>",
/// "scopes": ["read", "write"]}`. 403 when sign-up is closed, 409 when the name is taken, 422
/// for a name the hub does not accept, 429 when too many sign-ups came from the address.
pub async fn signup(State(state): State<AppState>, req: Request) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !state.config.signup.open {
        return Err(ApiError::forbidden("sign-up is closed on this hub: ask its admin for an account"));
    }
    let ip = client_address(&req, state.config.trust_proxy);
    let body: Bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "a sign-up body is at most 4 KiB"))?;
    let body: Value = parse_json(&body)?;
    if !body.is_object() {
        return Err(ApiError::invalid("invalid_json", "a sign-up is a JSON object: {\"name\": \"...\"}"));
    }
    let body: SignupBody = serde_json::from_value(body).map_err(ApiError::bad_json)?;
    let name = body.name.trim();
    // Only a sign-up that can succeed costs one: a malformed body, a bad or a taken name do not.
    apiary_store::check_account_name("user", name)?;
    if state.store.get_user(name).await?.is_some() {
        return Err(ApiError::from(apiary_store::StoreError::Conflict(format!("user `{name}`: pick another name"))));
    }
    state.signups.check(ip).map_err(ApiError::rate_limited)?;
    let user = state.store.create_user(name, false).await?;
    let scopes = Scopes { read: true, write: true, admin: false };
    let (info, token) = state.store.create_token(&user.name, scopes, None, Some("sign-up")).await?;
    tracing::info!(user = %user.name, %ip, "signed up");
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": views::user(&user), "token": token, "token_id": info.id, "scopes": ["read", "write"]})),
    ))
}
