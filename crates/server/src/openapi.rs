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
    #[test]
    fn document_is_openapi_3_json_listing_every_native_route() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("openapi.json is valid JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/api/v1/health",
            "/api/v1/feeds",
            "/api/v1/feeds/{owner}/{feed}",
            "/api/v1/feeds/{owner}/{feed}/indicators",
            "/api/v1/indicators",
            "/api/v1/indicators/{value}",
            "/api/v1/tokens",
            "/api/v1/tokens/{id}",
            "/api/v1/users",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing from openapi.json");
        }
    }
}
