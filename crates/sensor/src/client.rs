//! Sending batches to the hub, and the backoff between failed tries.

use rand::Rng;
use serde::Deserialize;
use std::time::Duration;

/// What the hub said about a batch.
#[derive(Debug)]
pub enum Sent {
    /// Stored (2xx, or 422 with every line refused): the batch is done.
    Acked(Reply),
    /// 413: the batch is too large for the hub; send fewer events at once.
    TooLarge,
    /// Try again later (unreachable, 5xx, 429, timeout); `after` is the hub's `Retry-After`.
    Retry { why: String, after: Option<Duration> },
    /// The hub refuses this shipper (401/403/404): the token or feed is wrong.
    Refused(String),
}

/// The hub's answer to a batch.
#[derive(Debug, Default, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Deserialize)]
pub struct Rejected {
    /// Line of the batch (1-based).
    pub line: usize,
    pub code: String,
    pub message: String,
}

pub struct Client {
    http: reqwest::blocking::Client,
    url: String,
    token: String,
}

impl Client {
    /// A client of the hub at `hub` (base URL) posting to feed `feed` (`owner/name`).
    pub fn new(hub: &str, feed: &str, token: &str, timeout: Duration) -> Result<Client, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("apiary-sensor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let url = format!("{}/api/v1/feeds/{}/events", hub.trim_end_matches('/'), feed);
        Ok(Client { http, url, token: token.to_owned() })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn send(&self, body: Vec<u8>) -> Sent {
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body)
            .send();
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Sent::Retry { why: describe(&e), after: None },
        };
        let status = resp.status().as_u16();
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().unwrap_or_default();
        match status {
            200..=299 | 422 => match serde_json::from_str::<Reply>(&text) {
                Ok(reply) if status != 422 || text.contains("\"accepted\"") => Sent::Acked(reply),
                // A 422 without counts is about the request, not its lines: try again later.
                _ => Sent::Retry { why: format!("HTTP {status}: {}", short(&text)), after },
            },
            413 => Sent::TooLarge,
            401 | 403 | 404 => Sent::Refused(format!("HTTP {status}: {}", short(&text))),
            _ => Sent::Retry { why: format!("HTTP {status}: {}", short(&text)), after },
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "cannot connect".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    }
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// Exponential backoff with jitter, capped: the n-th wait is a random time between half and
/// all of `min(initial × 2ⁿ, max)`, so many sensors that lost the hub together do not return
/// in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max: max.max(initial), failures: 0 }
    }

    /// The wait before the next try, after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + Duration::from_secs_f64(rand::thread_rng().gen::<f64>() * half.as_secs_f64())
    }

    /// The upper bound of the next wait.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} within [{:?}, {ceiling:?}]", ceiling / 2);
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        // Jitter: the waits are not all the same.
        let waits: std::collections::HashSet<_> = (0..20).map(|_| { b.reset(); b.next_delay() }).collect();
        assert!(waits.len() > 1);
    }
}
