//! Who is calling, and what they may do.
//!
//! Authentication: every request with an `Authorization` header is resolved by
//! `Store::authenticate` (no cache: a token created or revoked by the admin CLI in another
//! process counts at once). Accepted forms: `Bearer <t>`, `Token token=<t>` (CSIRTG, with or
//! without spaces or quotes), `Token <t>`. csirtgsdk sends `Token token=None` when no token is
//! configured; that, like an empty token, counts as anonymous.
//!
//! Authorization: public feeds are readable by anyone; private feeds by their owner, users
//! granted access, and admins — to anyone else a private feed does not exist (404). Writing needs
//! a token with `write` scope of the feed's owner, or an admin's token with `admin` scope (403).

use std::convert::Infallible;

use apiary_store::{Feed, Principal, Reader, Visibility};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::limits::{client_address, Key};
use crate::AppState;

/// The caller of a request: a principal, or nobody (anonymous).
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or_default())
    }
}

impl Caller {
    /// The principal, or 401 when the request carries no token.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.0
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("this needs a token: send `Authorization: Bearer <token>`"))
    }

    /// True for an admin user calling with an `admin`-scoped token.
    pub fn is_admin(&self) -> bool {
        self.0.as_ref().is_some_and(|p| p.admin && p.scopes.admin)
    }

    /// How the store should filter reads for this caller (None: public feeds only).
    /// A token without `read` (or `admin`) scope reads like an anonymous caller.
    pub fn reader(&self) -> Option<Reader> {
        let p = self.0.as_ref()?;
        (p.scopes.read || p.scopes.admin).then_some(Reader { user_id: p.user_id, admin: p.admin && p.scopes.admin })
    }

    pub fn require_admin(&self) -> Result<&Principal, ApiError> {
        let p = self.principal()?;
        if p.admin && p.scopes.admin {
            Ok(p)
        } else {
            Err(ApiError::forbidden("this needs an admin user's token with `admin` scope"))
        }
    }

    pub fn require_write(&self) -> Result<&Principal, ApiError> {
        let p = self.principal()?;
        if p.scopes.write || (p.admin && p.scopes.admin) {
            Ok(p)
        } else {
            Err(ApiError::forbidden("this needs a token with `write` scope"))
        }
    }

    /// Whether this caller may publish to (or change) `feed`.
    pub fn can_write(&self, feed: &Feed) -> bool {
        match &self.0 {
            Some(p) => (p.scopes.write && p.user_id == feed.owner_id) || (p.admin && p.scopes.admin),
            None => false,
        }
    }
}

/// An `Authorization` scheme other than `Bearer` and `Token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownScheme;

/// Extract the token from an `Authorization` value. `Ok(None)`: no token (anonymous).
pub fn token_from_header(value: &str) -> Result<Option<&str>, UnknownScheme> {
    let value = value.trim();
    let (scheme, rest) = value.split_at(value.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(value.len()));
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim()
    } else if scheme.eq_ignore_ascii_case("token") {
        let rest = rest.trim_start();
        // `Token token=<t>`, `Token token = "<t>"`, or `Token <t>`.
        let rest = match rest.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("token") && rest[5..].trim_start().starts_with('=') => {
                rest[5..].trim_start()[1..].trim()
            }
            _ => rest.strip_prefix('=').unwrap_or(rest).trim(),
        };
        rest.trim_matches('"')
    } else {
        return Err(UnknownScheme);
    };
    if token.is_empty() || token == "None" {
        Ok(None)
    } else {
        Ok(Some(token))
    }
}

/// Middleware: resolve the token, apply rate limits, and attach the [`Caller`].
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.to_str().map(str::to_owned));
    let token = match header {
        None => None,
        Some(Ok(v)) => match token_from_header(&v) {
            Ok(t) => t.map(str::to_owned),
            Err(UnknownScheme) => {
                return ApiError::unauthorized("unsupported Authorization scheme: use `Bearer <token>` or `Token token=<token>`")
                    .into_response()
            }
        },
        Some(Err(_)) => return ApiError::unauthorized("the Authorization header is not valid text").into_response(),
    };
    let principal = match token {
        None => None,
        Some(t) => match state.store.authenticate(&t).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                // Bad tokens draw from the address's bucket, so guessing is slowed down too.
                let ip = client_address(&req, state.config.trust_proxy);
                if let Err(secs) = state.limiter.check(Key::Address(ip)) {
                    return ApiError::rate_limited(secs).into_response();
                }
                return ApiError::unauthorized("unknown, revoked or expired token").into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let key = match &principal {
        Some(p) => Key::Token(p.token_id),
        None => Key::Address(client_address(&req, state.config.trust_proxy)),
    };
    if let Err(secs) = state.limiter.check(key) {
        return ApiError::rate_limited(secs).into_response();
    }
    req.extensions_mut().insert(Caller(principal));
    next.run(req).await
}

/// Whether `caller` may read `feed`.
pub async fn can_read(state: &AppState, caller: &Caller, feed: &Feed) -> Result<bool, ApiError> {
    if feed.visibility == Visibility::Public {
        return Ok(true);
    }
    match caller.reader() {
        None => Ok(false),
        Some(r) if r.admin || r.user_id == feed.owner_id => Ok(true),
        Some(r) => Ok(state.store.has_feed_access(feed.id, r.user_id).await?),
    }
}

fn no_feed(owner: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("no feed {owner}/{name}"))
}

/// The feed `owner/name` if the caller may read it; 404 otherwise (private feeds are not
/// revealed to those who may not read them).
pub async fn readable_feed(state: &AppState, caller: &Caller, owner: &str, name: &str) -> Result<Feed, ApiError> {
    let feed = state.store.get_feed(owner, name).await?.ok_or_else(|| no_feed(owner, name))?;
    if can_read(state, caller, &feed).await? {
        Ok(feed)
    } else {
        Err(no_feed(owner, name))
    }
}

/// The feed `owner/name` if the caller may write to it: 401 without a token, 404 if the caller
/// cannot even read it, 403 if they can read but not write.
pub async fn writable_feed(state: &AppState, caller: &Caller, owner: &str, name: &str) -> Result<Feed, ApiError> {
    let p = caller.principal()?;
    let feed = state.store.get_feed(owner, name).await?.ok_or_else(|| no_feed(owner, name))?;
    if caller.can_write(&feed) {
        return Ok(feed);
    }
    if !can_read(state, caller, &feed).await? {
        return Err(no_feed(owner, name));
    }
    Err(ApiError::forbidden(format!(
        "user {} may not write to {owner}/{name}: writing needs a `write` token of its owner (or an admin's)",
        p.user
    )))
}

/// Every feed (of `owner`, or all) the caller may read.
pub async fn readable_feeds(state: &AppState, caller: &Caller, owner: Option<&str>) -> Result<Vec<Feed>, ApiError> {
    let mut out = Vec::new();
    for feed in state.store.list_feeds(owner).await? {
        if can_read(state, caller, &feed).await? {
            out.push(feed);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::token_from_header;

    #[test]
    fn token_header_forms() {
        for (header, want) in [
            ("Bearer abc123", Ok(Some("abc123"))),
            ("bearer  abc123 ", Ok(Some("abc123"))),
            ("Token token=abc123", Ok(Some("abc123"))),
            ("Token token = abc123", Ok(Some("abc123"))),
            ("Token token=\"abc123\"", Ok(Some("abc123"))),
            ("Token abc123", Ok(Some("abc123"))),
            ("token=abc123", Ok(Some("abc123"))),
            ("Token token=None", Ok(None)),
            ("Token token=", Ok(None)),
            ("Basic dXNlcjpwYXNz", Err(super::UnknownScheme)),
        ] {
            assert_eq!(token_from_header(header), want, "{header}");
        }
    }
}
