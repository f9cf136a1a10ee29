//! Apiary's serve stage: the HTTP hub.
//!
//! One axum [`Router`] serves the CSIRTG v1 compatibility API (`/api/...`, see [`csirtg`]), the
//! native API (`/api/v1/...`, see [`api`]), `/health`, Prometheus `/metrics` and the OpenAPI
//! document. Every value a client sends goes through `apiary_core::parse` (in [`intake`]); every
//! record comes from the [`Store`]. Nothing here caches accounts: each request authenticates
//! against the store, so a token made by the admin CLI in another process works at once.
//!
//! Request path, outside in: `//` collapsed to `/` ([`paths`]) → routing → body limit → JSON
//! errors → metrics → panic guard → authentication and rate limits ([`auth`], [`limits`]) →
//! handler.

pub mod access;
pub mod api;
pub mod auth;
pub mod compare;
pub mod enrich;
pub mod csirtg;
pub mod error;
pub mod export;
pub mod hpfeeds;
pub mod intake;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod paths;
pub mod sessionize;
pub mod streams;
pub mod taxii;
pub mod trust;
pub mod views;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apiary_core::ParseOptions;
use apiary_store::Store;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::Router;

pub use error::ApiError;
pub use api::signup::SignupOptions;
pub use limits::Rate;

/// Settings of the hub. `apiary serve` fills this from flags, `APIARY_*` variables and the
/// config file (docs/configuration.md); tests build it directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL for links the hub hands out (CSIRTG `location`), e.g. `https://hub.example`.
    /// When unset, links are built from the request's `Host` header.
    pub public_url: Option<String>,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Largest request body accepted, in bytes (bulk publishes included). Larger → 413.
    pub max_body_bytes: usize,
    /// Request rate allowed per token.
    pub token_rate: Rate,
    /// Request rate allowed per client address for requests without a (valid) token.
    pub anonymous_rate: Rate,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_proxy: bool,
    /// Default and largest page size of queries.
    pub default_limit: usize,
    pub max_limit: usize,
    /// Run the hpfeeds broker too (off when `None`); see [`hpfeeds`].
    pub hpfeeds: Option<hpfeeds::BrokerConfig>,
    /// The firehose, native stream and webhooks; see [`streams`].
    pub streams: streams::StreamOptions,
    /// The operator's IP-to-ASN tables (`--asn-db`); see [`enrich`].
    pub asn: std::sync::Arc<enrich::AsnDb>,
    /// The sessionizer of shipped sensor events; see [`sessionize`].
    pub sessionize: sessionize::Options,
    /// The scoring and reliability job; see [`trust`].
    pub trust: trust::TrustOptions,
    /// The feed comparison job; see [`compare`].
    pub compare: compare::CompareOptions,
    /// Whether anyone may make an account (`POST /api/v1/signup`), and how fast.
    pub signup: api::signup::SignupOptions,
    /// A connection that has not sent a whole request head in this time is closed (slowloris).
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long is abandoned (400).
    pub body_read_timeout: Duration,
    /// Connections served at once; more are closed as they are accepted.
    pub max_connections: usize,
}

/// PEM certificate chain and private key for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            tls: None,
            max_body_bytes: 16 * 1024 * 1024,
            token_rate: Rate { per_second: 10_000.0, burst: 20_000.0 },
            anonymous_rate: Rate { per_second: 20.0, burst: 60.0 },
            trust_proxy: false,
            default_limit: 100,
            max_limit: 10_000,
            hpfeeds: None,
            streams: streams::StreamOptions::default(),
            asn: enrich::AsnDb::none(),
            sessionize: sessionize::Options::default(),
            trust: trust::TrustOptions::default(),
            compare: compare::CompareOptions::default(),
            signup: api::signup::SignupOptions::default(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Shared state of every handler: passed explicitly, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub limiter: Arc<limits::RateLimiter>,
    pub metrics: Arc<metrics::Metrics>,
    pub parse_options: Arc<ParseOptions>,
    /// The bus and everything streamed from it.
    pub streams: Arc<streams::Streams>,
    /// Sign-ups taken, per address and hub-wide.
    pub signups: Arc<api::signup::SignupLimiter>,
    /// Values retracted by their feeds' owners: never streamed for that feed again.
    pub retractions: Arc<streams::filter::Retractions>,
}

impl AppState {
    /// State with streams on an in-process bus (its feeder starts with the first subscriber).
    pub fn new(config: Config, store: Arc<dyn Store>) -> Self {
        let streams = streams::Streams::in_process(store.clone(), config.streams.clone());
        AppState::with_streams(config, store, streams)
    }

    pub fn with_streams(config: Config, store: Arc<dyn Store>, streams: Arc<streams::Streams>) -> Self {
        let limiter = limits::RateLimiter::new(config.token_rate, config.anonymous_rate);
        AppState {
            signups: Arc::new(api::signup::SignupLimiter::new(&config.signup)),
            retractions: streams::filter::Retractions::new(store.clone()),
            streams,
            store,
            limiter: Arc::new(limiter),
            metrics: Arc::new(metrics::Metrics::new()),
            parse_options: Arc::new(ParseOptions::default()),
            config: Arc::new(config),
        }
    }

    /// The base URL links are built on: `--public-url`, else the request's own host.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| self.config.listen.to_string());
        let scheme = if self.config.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}")
    }
}

/// The whole hub as one router. `//` in paths is collapsed before routing (the CSIRTG client
/// sends `/api//users/...`), so the real routes sit behind a path-rewriting fallback service.
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so per-address limits
/// see the client's address.
pub fn app(state: AppState) -> Router {
    let guarded = Router::new()
        .merge(api::routes())
        .merge(csirtg::routes())
        .merge(export::routes())
        .merge(trust::api::routes())
        .fallback(error::no_route)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    let routes = Router::new()
        .merge(api::public_routes())
        .merge(guarded)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        // `Content-Encoding: gzip` bodies are inflated as they are read, so the body limit
        // counts inflated bytes (no zip bombs); other encodings are a 415.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(limits::media_type))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state.clone());
    let body_timeout = state.config.body_read_timeout;
    Router::new()
        .merge(taxii::routes(state.clone()))
        .merge(web::routes(state.clone()))
        .fallback_service(paths::collapse_slashes(routes))
        // Before any body is read: a declared length over the limit is a 413 at once (no
        // `100 Continue`), a body that stalls is abandoned.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(state, limits::declared_length))
}

/// How long requests in flight may take to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(30);

/// Run the hub until `shutdown` resolves, then finish in-flight requests and return.
pub async fn serve(
    config: Config,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let tls = config.tls.clone();
    let streams = streams::Streams::in_process(store.clone(), config.streams.clone());
    let hpfeeds = hpfeeds::start(config.hpfeeds.as_ref(), store.clone(), ParseOptions::default(), streams.clone()).await?;
    let sessionizer = sessionize::Sessionizer::start(store.clone(), ParseOptions::default(), config.sessionize.clone());
    let trust = trust::start(store.clone(), config.trust.clone());
    let compare = compare::start(store.clone(), config.compare.clone());
    let state = AppState::with_streams(config, store, streams.clone());
    // Retracted values must not stream, also right after a restart.
    state.retractions.refresh().await.map_err(|e| anyhow::anyhow!("cannot read the retractions: {e}"))?;
    streams.start(&state).await.map_err(|e| anyhow::anyhow!("cannot start the firehose: {e}"))?;
    // Open streams end at the signal, so that they do not hold up the graceful shutdown.
    let shutdown = {
        let streams = streams.clone();
        async move {
            shutdown.await;
            streams.close();
        }
    };
    let conn = ConnLimits { header_read_timeout: state.config.header_read_timeout, max_connections: state.config.max_connections };
    let router = app(state);
    match tls {
        None => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
            tracing::info!("listening on http://{}", listener.local_addr()?);
            serve_http(listener, router, conn, shutdown).await;
        }
        Some(files) => {
            // One crypto provider for the process; ring is already built for the HTTP client.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot load TLS certificate {} / key {}: {e}",
                        files.cert.display(),
                        files.key.display()
                    )
                })?;
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(GRACE));
            });
            tracing::info!("listening on https://{listen}");
            let mut server = axum_server::bind_rustls(listen, tls).handle(handle);
            server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(conn.header_read_timeout);
            server.serve(service).await?;
        }
    }
    if let Some(broker) = hpfeeds {
        broker.shutdown().await;
    }
    sessionizer.shutdown().await;
    streams.shutdown().await;
    trust.shutdown().await;
    compare.shutdown().await;
    Ok(())
}

/// Per-connection limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serve `router` over plain HTTP (HTTP/1.1 with upgrades, and h2c) until `shutdown` resolves:
/// a connection must send its request head within `header_read_timeout`, at most
/// `max_connections` are served at once (more are closed on accept). At the signal it stops
/// accepting and gives requests in flight GRACE to finish, then stops anyway (an idle
/// keep-alive client must not keep the hub up).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("{} connections open; closing one from {peer}", limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceBuilder::new()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
            .service(router.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(GRACE) => tracing::warn!("connections still open {} s after the signal; stopping anyway", GRACE.as_secs()),
    }
}
