//! The one error type of the hub, and the guarantee that every reply is JSON.
//!
//! Errors are `{"error":{"code":"...","message":"..."}}` with a status a client can act on.
//! Load never becomes a 5xx: a full store queue or a rate limit is a 429 with `Retry-After`
//! (the CSIRTG client stalls a honeypot for minutes after a 5xx).

use std::any::Any;
use std::borrow::Cow;

use apiary_store::StoreError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Marks a response refused because the store was busy (counted by `/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct StoreBusy;

/// Marks a response refused by a rate limit (counted by `/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct RateLimited;

/// An error reply.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    busy: bool,
    limited: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), retry_after: None, busy: false, limited: false }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 422: the request was understood but its content is refused.
    pub fn invalid(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after} s"),
        );
        e.retry_after = Some(retry_after);
        e.limited = true;
        e
    }
    pub fn busy(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("the hub's write queue is full; retry in {retry_after} s"),
        );
        e.retry_after = Some(retry_after);
        e.busy = true;
        e
    }
    /// Malformed JSON in a body: 422 with serde's reason (line and column).
    pub fn bad_json(err: serde_json::Error) -> Self {
        Self::invalid("invalid_json", format!("malformed JSON body: {err}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", format!("already exists: {m}")),
            StoreError::Invalid(m) => ApiError::invalid("invalid", m),
            // The writer drains its queue in milliseconds: a second is ample.
            StoreError::Busy => ApiError::busy(1),
            StoreError::Internal(m) => {
                tracing::error!("store error: {m}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal store error; see the hub's log")
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

/// The JSON body of an error.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({"error": {"code": code, "message": message}})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(error_body(&self.code, &self.message))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.busy {
            resp.extensions_mut().insert(StoreBusy);
        }
        if self.limited {
            resp.extensions_mut().insert(RateLimited);
        }
        resp
    }
}

/// Fallback for paths no route knows.
pub async fn no_route(req: Request) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {} {}", req.method(), req.uri().path()))
}

/// Replace any non-JSON error reply (axum's extractor rejections, 405s, body-limit 413s) with
/// the JSON error shape, keeping the status and the reason text.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let mut out = Response::from_parts(parts, Body::from(error_body(code, &message).to_string()));
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out.headers_mut().remove(header::CONTENT_LENGTH);
    out
}

/// A handler panicked: log it and answer 500 in JSON (a bug of ours, never client input).
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!("handler panicked: {detail}");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the hub's log").into_response()
}

/// Parse a JSON body, answering 422 with the reason when it is malformed.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // A leading UTF-8 byte order mark is skipped, as in every other body form.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(ApiError::bad_json)
}
