//! The web pages: server-rendered HTML with a little vanilla JavaScript, served by the hub
//! itself with every asset inside the binary (no CDN, works offline). docs/web.md.
//!
//! Pages read the same [`Store`](apiary_store::Store) as the API and apply the same visibility
//! rules ([`crate::auth`]): a private feed never appears to someone who cannot read it. A
//! browser keeps its token in `localStorage` and sends it as the API's `Authorization` header,
//! never as a cookie (so no cross-site request can act for it). A page is first rendered for an
//! anonymous reader; when a token is kept, `app.js` fetches the same URL again with the header
//! and `X-Apiary-Fragment: 1` and swaps in the `<main>` rendered for the signed-in reader.
//!
//! No page waits on a slow query: the hub-wide figures (overview, feed quality, overlaps) come
//! from [`digest`], which a background task keeps up to date by reading the sightings log;
//! lists are paged; one indicator is a few indexed lookups.

mod account;
mod assets;
mod attackers;
mod compare;
pub mod digest;
mod feed;
mod html;
mod indicator;
mod live;
mod overview;
mod score;
pub mod svg;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use crate::auth::Caller;
use crate::AppState;

pub use html::esc;
pub use score::trust_score;

/// The pages and their assets, as a router with its state applied (merged into [`crate::app`]).
pub fn routes(state: AppState) -> Router {
    let web = digest::Web::new(state.store.clone());
    // Warm the figures before the first page view when a runtime is at hand.
    if tokio::runtime::Handle::try_current().is_ok() {
        web.start();
    }
    let pages = Router::new()
        .route("/", get(overview::page))
        .route("/feeds", get(feed::list))
        .route("/feeds/{owner}/{feed}", get(feed::page))
        .route("/indicators", get(indicator::search))
        .route("/indicators/{*value}", get(indicator::page))
        .route("/attackers", get(attackers::page))
        .route("/campaigns/{id}", get(attackers::campaign))
        .route("/compare", get(compare::page))
        .route("/live", get(live::page))
        .route("/account", get(account::page))
        .layer(Extension(web))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::authenticate))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(crate::error::panic_response))
        .with_state(state);
    Router::new().route("/assets/{name}", get(assets::serve)).merge(pages)
}

/// Navigation entries: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/feeds", "Feeds"),
    ("/attackers", "Attackers"),
    ("/compare", "Compare"),
    ("/live", "Live"),
    ("/account", "Account"),
];

/// What a page handler knows about its request: who is reading, and whether only `<main>` is
/// wanted (the signed-in re-render).
pub struct Ctx {
    pub caller: Caller,
    pub fragment: bool,
    pub web: Arc<digest::Web>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let fragment = parts.headers.get("x-apiary-fragment").is_some();
        let web = parts.extensions.get::<Arc<digest::Web>>().cloned().expect("web extension layered in routes()");
        Ok(Ctx { caller, fragment, web })
    }
}

impl Ctx {
    /// The signed-in user's name, if any.
    pub fn user(&self) -> Option<&str> {
        self.caller.0.as_ref().map(|p| p.user.as_str())
    }

    /// A whole page (or, for the signed-in re-render, its `<main>` only).
    pub fn page(&self, title: &str, active: &str, body: String) -> Response {
        self.page_status(StatusCode::OK, title, active, body)
    }

    pub fn page_status(&self, status: StatusCode, title: &str, active: &str, body: String) -> Response {
        let user = self.user().unwrap_or("");
        let main = format!(
            "<main id=\"main\" data-user=\"{}\" data-admin=\"{}\" data-title=\"{}\" tabindex=\"-1\">{body}</main>",
            esc(user),
            self.caller.is_admin(),
            esc(title)
        );
        let html = if self.fragment { main } else { html::shell(title, active, &main) };
        let mut resp = (status, html).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        // What a page shows depends on the token; nothing of it may sit in a shared cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        h.insert(header::VARY, HeaderValue::from_static("Authorization, X-Apiary-Fragment"));
        h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
        );
        resp
    }

    /// An error page with a status and a reason.
    pub fn error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let body = format!(
            "<h1>{}</h1><p class=\"notice\" role=\"alert\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
            esc(title),
            esc(message)
        );
        self.page_status(status, title, "", body)
    }

    /// Turn an API error (store failure, refused filter) into an error page.
    pub fn api_error(&self, e: crate::ApiError) -> Response {
        let title = match e.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::UNPROCESSABLE_ENTITY => "Not understood",
            StatusCode::TOO_MANY_REQUESTS => "Busy",
            s if s.is_server_error() => "Something went wrong",
            _ => "Refused",
        };
        let mut resp = self.error(e.status, title, &e.message);
        if let Some(secs) = e.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A response for a request that is not a page at all.
pub fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The raw path of a request, as sent (percent-encoding kept).
pub fn raw_path(req: &Request) -> &str {
    req.uri().path()
}
