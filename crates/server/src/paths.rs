//! Path clean-up before routing.
//!
//! csirtgsdk 1.1.5 builds URLs as `remote + '/' + '/users/...'`, so creates arrive at
//! `/api//users/{user}/feeds/{feed}/indicators`. axum routes before `Router::layer` middleware
//! runs, so the rewrite wraps the whole router as a service instead.

use axum::extract::Request;
use axum::http::Uri;
use tower::util::MapRequest;
use tower::ServiceExt;

/// Wrap `service` so that every run of slashes in the request path becomes one slash.
pub fn collapse_slashes<S>(service: S) -> MapRequest<S, fn(Request) -> Request>
where
    S: tower::Service<Request> + Clone,
{
    service.map_request(rewrite as fn(Request) -> Request)
}

fn rewrite(mut req: Request) -> Request {
    let uri = req.uri();
    if !uri.path().contains("//") {
        return req;
    }
    let path = collapse(uri.path());
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(new) = Uri::from_parts(parts) {
            *req.uri_mut() = new;
        }
    }
    req
}

/// `/api//users///x` → `/api/users/x`.
pub fn collapse(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut last_slash = false;
    for c in path.chars() {
        if c == '/' {
            if last_slash {
                continue;
            }
            last_slash = true;
        } else {
            last_slash = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::collapse;

    #[test]
    fn collapses_runs_of_slashes() {
        for (input, want) in [
            ("/api//users/u/feeds/f/indicators", "/api/users/u/feeds/f/indicators"),
            ("//api///v1//health", "/api/v1/health"),
            ("/api/v1/health", "/api/v1/health"),
            ("/", "/"),
        ] {
            assert_eq!(collapse(input), want, "{input}");
        }
    }
}
