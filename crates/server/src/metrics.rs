//! Prometheus `/metrics`, in the text exposition format.
//!
//! Counted: requests by route and status, sightings appended, requests refused because the
//! store's write queue was full, requests refused by rate limits; plus the hub's resident memory.
//! Handlers report what they appended by putting [`Appended`] in their response's extensions.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{RateLimited, StoreBusy};
use crate::AppState;

/// Response extension: this many sightings were appended to the store.
#[derive(Debug, Clone, Copy)]
pub struct Appended(pub u64);

/// Request counts of one route, by method and status.
type RouteCounts = HashMap<(String, u16), u64>;

/// The hub's counters.
#[derive(Debug)]
pub struct Metrics {
    /// route → (method, status) → count
    requests: Mutex<HashMap<String, RouteCounts>>,
    sightings_appended: AtomicU64,
    store_busy: AtomicU64,
    rate_limited: AtomicU64,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            requests: Mutex::new(HashMap::new()),
            sightings_appended: AtomicU64::new(0),
            store_busy: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn record(&self, route: &str, method: &str, resp: &Response) {
        let status = resp.status().as_u16();
        {
            let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            let per_route = match map.get_mut(route) {
                Some(m) => m,
                None => map.entry(route.to_string()).or_default(),
            };
            *per_route.entry((method.to_string(), status)).or_insert(0) += 1;
        }
        let ext = resp.extensions();
        if let Some(Appended(n)) = ext.get::<Appended>() {
            self.sightings_appended.fetch_add(*n, Ordering::Relaxed);
        }
        if ext.get::<StoreBusy>().is_some() {
            self.store_busy.fetch_add(1, Ordering::Relaxed);
        }
        if ext.get::<RateLimited>().is_some() {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn sightings_appended(&self) -> u64 {
        self.sightings_appended.load(Ordering::Relaxed)
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiary_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE apiary_http_requests_total counter\n");
        {
            let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            let mut routes: Vec<_> = map.iter().collect();
            routes.sort_by(|a, b| a.0.cmp(b.0));
            for (route, counts) in routes {
                let mut counts: Vec<_> = counts.iter().collect();
                counts.sort();
                for ((method, status), n) in counts {
                    let _ = writeln!(
                        out,
                        "apiary_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                        escape(route),
                        escape(method),
                        status,
                        n
                    );
                }
            }
        }
        let counters = [
            ("apiary_sightings_appended_total", "Sightings appended through the HTTP API.", self.sightings_appended()),
            (
                "apiary_store_busy_rejections_total",
                "Requests answered 429 because the store's write queue was full.",
                self.store_busy.load(Ordering::Relaxed),
            ),
            (
                "apiary_rate_limited_total",
                "Requests answered 429 by a per-token or per-address rate limit.",
                self.rate_limited.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP apiary_uptime_seconds Seconds since the hub started.\n# TYPE apiary_uptime_seconds gauge\napiary_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        if let Some(rss) = resident_memory_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Resident set size from `/proc/self/status` (Linux); None elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Middleware: count every answered request under its route pattern (not its raw path, so
/// label cardinality stays bounded).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let resp = next.run(req).await;
    state.metrics.record(route.as_deref().unwrap_or("unmatched"), method.as_str(), &resp);
    resp
}

/// `GET /metrics`
pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
