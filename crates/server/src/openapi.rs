//! `GET /api/v1/openapi.json`: the native API, described by hand in `openapi.json` beside this file.

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI 3 document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn handler() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    //! The document is checked against the router in two ways: every `.route("...")` written in
    //! this crate's source (so a route added in any module counts) must be documented with its
    //! methods, and every documented path and method must reach a handler of the real app
    //! (not the "no such endpoint" fallback, not 405). Pages under `src/web/` are not API.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use tower::ServiceExt;

    const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

    /// Routes of other contracts, described in their own docs (csirtg-compat.md, taxii): not
    /// in the native document. A new route outside `/api/v1/` must be added here or documented.
    const NOT_NATIVE: [&str; 10] = [
        "/api/search",
        "/api/predict",
        "/api/users/{user}/feeds",
        "/api/users/{user}/feeds/{feed}",
        "/api/users/{user}/feeds/{feed}/indicators",
        "/api/users/{user}/feeds/{feed}/indicators_bulk",
        "/api/users/{user}/feeds/{feed}/indicators/{id}",
        "/api/users/{user}/feeds/{feed}/indicators/{id}/comments",
        "/firehose",
        "/api/firehose",
    ];

    /// Files whose routes are built from non-literal paths (TAXII 2.1, its own contract).
    const COMPUTED_ROUTES_OK: [&str; 1] = ["taxii.rs"];

    fn document() -> serde_json::Value {
        serde_json::from_str(super::DOCUMENT).expect("openapi.json is valid JSON")
    }

    /// `{*value}` (axum's catch-all) is `{value}` in OpenAPI.
    fn openapi_path(route: &str) -> String {
        route.replace("{*", "{")
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The text of a call's arguments from just after `(` to its matching `)`.
    fn call_args(s: &str) -> &str {
        let mut depth = 1;
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &s[..i];
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// Method routers named in a route's arguments: `get(h)`, `.post(h)`, `routing::put(h)`
    /// (a handler path like `webhooks::delete(` is not one).
    fn methods_in(args: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for m in METHODS {
            let pat = format!("{m}(");
            let mut from = 0;
            while let Some(at) = args[from..].find(&pat) {
                let i = from + at;
                from = i + pat.len();
                let before = &args[..i];
                let prev = before.chars().last();
                let word_start = prev.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let via_path = before.ends_with("::") && !before.ends_with("routing::");
                if word_start && !via_path {
                    found.insert(m.to_string());
                }
            }
        }
        found
    }

    /// Every route written in this crate's source, path → methods.
    fn source_routes() -> BTreeMap<String, BTreeSet<String>> {
        let mut files = Vec::new();
        rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let call = concat!(".rou", "te(");
        let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            // Web pages (`src/web/`, HTML for people) are not API; docs/web.md describes them.
            if name == "openapi.rs" || file.components().any(|c| c.as_os_str() == "web") {
                continue;
            }
            // Comments are not routes.
            let text: String = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let mut rest = text.as_str();
            while let Some(at) = rest.find(call) {
                rest = &rest[at + call.len()..];
                let args = call_args(rest);
                let Some(lit) = args.trim_start().strip_prefix('"') else {
                    assert!(
                        COMPUTED_ROUTES_OK.contains(&name.as_str()),
                        "{name}: a route with a computed path; write the path as a literal so the openapi test sees it"
                    );
                    continue;
                };
                let path = &lit[..lit.find('"').unwrap()];
                let methods = methods_in(&lit[path.len() + 1..]);
                assert!(!methods.is_empty(), "{name}: route {path}: no method router found");
                routes.entry(path.to_string()).or_default().extend(methods);
            }
        }
        routes
    }

    #[test]
    fn document_is_openapi_3_json() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert!(doc["paths"].as_object().unwrap().len() > 10);
    }

    #[test]
    fn every_route_in_the_source_is_documented_with_its_methods() {
        let doc = document();
        let routes = source_routes();
        assert!(routes.contains_key("/api/v1/feeds") && routes.contains_key("/api/v1/stream"), "the scan found the routers");
        let mut missing = Vec::new();
        for (route, methods) in &routes {
            if NOT_NATIVE.contains(&route.as_str()) {
                continue;
            }
            let path = openapi_path(route);
            for m in methods {
                if doc["paths"].get(&path).and_then(|p| p.get(m)).is_none() {
                    missing.push(format!("{} {path}", m.to_uppercase()));
                }
            }
        }
        assert!(missing.is_empty(), "routes missing from crates/server/src/openapi.json: {missing:#?}");
        // And nothing documented that the source does not route.
        let known: BTreeMap<String, &BTreeSet<String>> = routes.iter().map(|(r, m)| (openapi_path(r), m)).collect();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys().filter(|k| METHODS.contains(&k.as_str())) {
                assert!(known.get(path).is_some_and(|ms| ms.contains(m)), "openapi.json documents {} {path}, which no route serves", m.to_uppercase());
            }
        }
    }

    /// Each documented operation reaches a handler of the assembled app (a route written in a
    /// module that is never merged would fail here).
    #[tokio::test]
    async fn every_documented_operation_is_served_by_the_app() {
        use apiary_store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(apiary_store::sqlite::SqliteStore::open(dir.path()).unwrap());
        store.create_user("admin", true).await.unwrap();
        let scopes = apiary_store::Scopes::parse("read,write,admin").unwrap();
        let (_, token) = store.create_token("admin", scopes, None, None).await.unwrap();
        let app = crate::app(crate::AppState::new(crate::Config::default(), store));
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let concrete = path.replace("{id}", "1").replace("{owner}", "admin").replace("{feed}", "nofeed");
            let concrete = concrete
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            for m in item.as_object().unwrap().keys().filter(|k| METHODS.contains(&k.as_str())) {
                let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
                let req = Request::builder()
                    .method(method)
                    .uri(&concrete)
                    .header("Authorization", format!("Bearer {token}"))
                    .header("Content-Type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap();
                let resp = app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
                if status == StatusCode::NOT_FOUND {
                    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
                    let text = String::from_utf8_lossy(&body);
                    assert!(!text.contains("no such endpoint"), "{m} {path}: {text}");
                }
            }
        }
    }

    #[test]
    fn method_scan_reads_chained_and_qualified_routers() {
        let m = methods_in(r#", get(feeds::show).patch(feeds::update).delete(hooks::delete))"#);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), ["delete", "get", "patch"]);
        assert_eq!(methods_in(", axum::routing::put(x))").len(), 1);
        assert!(methods_in(", any_get(x))").is_empty());
    }
}
