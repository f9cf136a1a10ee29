//! A real hub for tests: the app on an ephemeral port over a SqliteStore in a temp directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use apiary_server::{app, AppState, Config};
use apiary_store::sqlite::SqliteStore;
use apiary_store::{NewFeed, Scopes, Store, Visibility};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub struct Hub {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    pub admin: String,
    pub dir: tempfile::TempDir,
}

pub fn scopes(s: &str) -> Scopes {
    Scopes::parse(s).unwrap()
}

impl Hub {
    pub async fn start() -> Hub {
        Self::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        Self::serve(config, store, dir).await
    }

    /// Serve `store` (kept in `dir`).
    pub async fn serve(config: Config, store: Arc<dyn Store>, dir: tempfile::TempDir) -> Hub {
        if store.get_user("admin").await.unwrap().is_none() {
            store.create_user("admin", true).await.unwrap();
        }
        let (_, admin) = store
            .create_token("admin", scopes("read,write,admin"), None, None)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(AppState::new(config, store.clone()));
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Hub {
            base: format!("http://{addr}"),
            store,
            client: reqwest::Client::new(),
            admin,
            dir,
        }
    }

    /// A user with a token of the given scopes.
    pub async fn user(&self, name: &str, token_scopes: &str) -> String {
        if self.store.get_user(name).await.unwrap().is_none() {
            self.store.create_user(name, false).await.unwrap();
        }
        self.store
            .create_token(name, scopes(token_scopes), None, None)
            .await
            .unwrap()
            .1
    }

    pub async fn feed(&self, owner: &str, name: &str, visibility: Visibility) {
        self.store
            .create_feed(NewFeed {
                owner: owner.into(),
                name: name.into(),
                visibility,
                ..NewFeed::default()
            })
            .await
            .unwrap();
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        r
    }

    /// A request as csirtgsdk 1.1.5 sends it (headers seen on the wire).
    pub fn csirtg(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}/api{}", self.base, path))
            .header("Accept", "application/vnd.csirtg.v1")
            .header("Authorization", format!("Token token={token}"))
            .header("Content-Type", "application/json")
            .header("User-Agent", "csirtgsdk-python/1.1.5")
    }
}

/// Status and JSON body; fails the test if the body is not JSON.
pub async fn json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("reply with status {status} is not JSON ({e}): {text}"));
    (status, body)
}

/// Assert the error shape and return the code.
pub fn error_code(body: &Value) -> String {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without message: {body}"
    );
    code.to_string()
}
