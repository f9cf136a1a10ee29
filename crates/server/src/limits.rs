//! Token-bucket rate limits, per token and per client address.
//!
//! Requests with a valid token draw from that token's bucket; anonymous requests (and requests
//! with a bad token, so guessing tokens is slowed too) draw from their address's bucket. An empty
//! bucket is a 429 with `Retry-After`. The body-size limit lives in the router
//! (`DefaultBodyLimit`, answered 413 in JSON).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};

/// A sustained rate and a burst size. `per_second == 0` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Token(i64),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets for every token and address seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    token: Rate,
    anonymous: Rate,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

/// Above this many buckets, idle (refilled) ones are dropped so memory stays bounded.
const PRUNE_AT: usize = 50_000;

impl RateLimiter {
    pub fn new(token: Rate, anonymous: Rate) -> Self {
        RateLimiter { token, anonymous, buckets: Mutex::new(HashMap::new()) }
    }

    /// Take one request from `key`'s bucket. `Err(seconds)` says when to retry.
    pub fn check(&self, key: Key) -> Result<(), u64> {
        let rate = match key {
            Key::Token(_) => self.token,
            Key::Address(_) => self.anonymous,
        };
        self.check_at(key, rate, Instant::now())
    }

    /// Whether `key` has a request left, without taking it (`Err(seconds)`: when it will).
    pub fn peek(&self, key: Key) -> Result<(), u64> {
        let rate = match key {
            Key::Token(_) => self.token,
            Key::Address(_) => self.anonymous,
        };
        if rate.per_second <= 0.0 {
            return Ok(());
        }
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = buckets.get(&key) else { return Ok(()) };
        let tokens = (b.tokens + Instant::now().saturating_duration_since(b.last).as_secs_f64() * rate.per_second).min(rate.burst.max(1.0));
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(((1.0 - tokens) / rate.per_second).ceil().max(1.0) as u64)
        }
    }

    fn check_at(&self, key: Key, rate: Rate, now: Instant) -> Result<(), u64> {
        if rate.per_second <= 0.0 {
            return Ok(());
        }
        let burst = rate.burst.max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| {
                let refilled = b.tokens + now.duration_since(b.last).as_secs_f64() * rate.per_second;
                refilled < burst
            });
        }
        let b = buckets.entry(key).or_insert(Bucket { tokens: burst, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate.per_second).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / rate.per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// Middleware: a request whose `Content-Length` is over the body limit is a 413 before its body
/// is read, so a client that sent `Expect: 100-continue` gets no `100 Continue` and no
/// connection is held for a body that would be refused anyway.
pub async fn declared_length(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = state.config.max_body_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        let mut resp = crate::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over the limit of {limit} bytes"),
        )
        .into_response();
        // The unread body is not drained: the connection ends with this reply.
        resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        return resp;
    }
    next.run(req).await
}

/// The body media types the API reads (JSON in its forms, text lines, CSV; a form-encoded
/// type is what `curl -d` sends with JSON, read as JSON).
pub const ACCEPTED_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
    "application/json-seq",
    "text/plain",
    "text/csv",
    "application/x-www-form-urlencoded",
];

/// Whether a request body of this `Content-Type` is one the API reads.
pub fn accepted_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.is_empty()
        || ACCEPTED_MEDIA_TYPES.contains(&essence.as_str())
        || essence.ends_with("+json")
        || essence.contains("ndjson")
        || essence.contains("json-lines")
        || essence.starts_with("application/vnd.csirtg")
}

/// Middleware: a body of a type the API does not read (`image/png`, `multipart/form-data`) is
/// a 415 naming the accepted types, instead of being read as JSON.
pub async fn media_type(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let has_body = !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::DELETE | axum::http::Method::OPTIONS)
        && req.headers().get(axum::http::header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() != b"0");
    if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
        let ct = String::from_utf8_lossy(ct.as_bytes()).into_owned();
        if has_body && !accepted_media_type(&ct) {
            return crate::ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("a `{ct}` body is not read here; send one of: {}", ACCEPTED_MEDIA_TYPES.join(", ")),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The client's address: the first `X-Forwarded-For` entry when the hub trusts its proxy,
/// else the peer address of the connection.
pub fn client_address(req: &Request, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let rate = Rate { per_second: 2.0, burst: 3.0 };
        let lim = RateLimiter::new(rate, rate);
        let key = Key::Token(1);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(lim.check_at(key, rate, t0), Ok(()));
        }
        assert_eq!(lim.check_at(key, rate, t0), Err(1));
        // Half a second at 2/s gives one request back.
        assert_eq!(lim.check_at(key, rate, t0 + Duration::from_millis(500)), Ok(()));
        // Another key has its own bucket.
        assert_eq!(lim.check_at(Key::Token(2), rate, t0), Ok(()));
    }

    #[test]
    fn media_types() {
        for ct in ["application/json", "application/json; charset=utf-8", "APPLICATION/X-NDJSON", "text/csv", "", "application/stix+json", "application/x-www-form-urlencoded"] {
            assert!(accepted_media_type(ct), "{ct}");
        }
        for ct in ["image/png", "multipart/form-data; boundary=x", "application/octet-stream", "application/xml"] {
            assert!(!accepted_media_type(ct), "{ct}");
        }
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let rate = Rate { per_second: 0.0, burst: 0.0 };
        let lim = RateLimiter::new(rate, rate);
        for _ in 0..10_000 {
            assert!(lim.check(Key::Token(1)).is_ok());
        }
    }
}
