//! Push subscriptions: a filtered stream POSTed to a URL.
//!
//! [`Deliveries`] owns one task per active webhook and a supervisor that reads the webhook list
//! every `reconcile` (or at once after an API change): new or resumed webhooks start, deleted
//! or paused ones stop. Each delivery follows the log from the webhook's stored cursor, so a
//! restart, a pause or a lag resumes exactly where it stopped.
//!
//! A POST carries `{"webhook": id, "events": [native sightings...], "cursor": last seq}` and
//! the headers `X-Apiary-Webhook`, `X-Apiary-Timestamp` (Unix seconds) and
//! `X-Apiary-Signature: sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of
//! `"<timestamp>.<body>"`. Any 2xx acknowledges the batch (the cursor is stored); anything else
//! is retried with exponential backoff; after `max_attempts` failures in a row the webhook is
//! paused with the last error, reported in the log and in `GET /api/v1/webhooks`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apiary_store::{Principal, Scopes, Webhook, WebhookProgress, WebhookState};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::filter::{FilterParams, StreamFilter};
use super::native::{Out, Session};
use crate::auth::Caller;
use crate::AppState;

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Failed attempts in a row before the webhook is paused.
    pub max_attempts: u32,
    /// The first retry waits this long; each next one twice as long, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Most events per POST.
    pub batch: usize,
    /// How long a batch waits for more events after its first.
    pub linger: Duration,
    /// Timeout of one POST.
    pub timeout: Duration,
    /// How often the supervisor reads the webhook list.
    pub reconcile: Duration,
    /// The `webhooks` job lease's TTL: how soon another node takes over the deliveries.
    pub lease_ttl: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            max_attempts: 8,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            batch: 500,
            linger: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
            reconcile: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

/// The `X-Apiary-Signature` value of a delivery.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut msg = format!("{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), &msg)))
}

/// The running deliveries and their supervisor. The supervisor runs on one node of a hub at a
/// time, under the `webhooks` job lease (docs/scale-out.md): a webhook is delivered once, and
/// another node takes over from the stored cursors when the holder dies.
pub struct Deliveries {
    job: apiary_store::LeasedJob,
    pub changed: Arc<Notify>,
}

/// The job lease of the webhook deliveries.
pub const WEBHOOKS_LEASE: &str = "webhooks";

impl Deliveries {
    pub fn start(state: AppState, changed: Arc<Notify>) -> Deliveries {
        let lease = apiary_store::LeaseOptions { ttl: state.streams.options.webhooks.lease_ttl, ..Default::default() };
        let (store, notify) = (state.store.clone(), changed.clone());
        let job = apiary_store::LeasedJob::spawn(store, WEBHOOKS_LEASE, lease, move |stop| supervise(state.clone(), notify.clone(), stop));
        Deliveries { job, changed }
    }

    /// Whether this node delivers the webhooks now (holds the lease).
    pub fn is_running_here(&self) -> bool {
        self.job.is_held()
    }

    /// Stop every delivery (acknowledged cursors are already stored) and the supervisor.
    pub async fn shutdown(self) {
        self.job.shutdown().await;
    }
}

async fn supervise(state: AppState, changed: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let every = state.streams.options.webhooks.reconcile;
    let mut running: HashMap<i64, (watch::Sender<bool>, JoinHandle<()>)> = HashMap::new();
    loop {
        match state.store.list_webhooks(None).await {
            Ok(hooks) => {
                let active: HashMap<i64, Webhook> =
                    hooks.into_iter().filter(|h| h.state == WebhookState::Active).map(|h| (h.id, h)).collect();
                running.retain(|id, (tx, task)| {
                    let keep = active.contains_key(id) && !task.is_finished();
                    if !keep {
                        let _ = tx.send(true);
                    }
                    keep
                });
                for (id, hook) in active {
                    running.entry(id).or_insert_with(|| {
                        let (tx, rx) = watch::channel(false);
                        (tx, tokio::spawn(deliver(state.clone(), hook, rx)))
                    });
                }
            }
            Err(e) => tracing::warn!("webhooks: cannot read the webhook list: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = changed.notified() => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (tx, task)) in running.drain() {
        let _ = tx.send(true);
        let _ = task.await;
    }
}

/// Deliver one webhook until it is paused, deleted or the hub stops.
async fn deliver(state: AppState, hook: Webhook, mut stop: watch::Receiver<bool>) {
    let opts = state.streams.options.webhooks.clone();
    let admin = matches!(state.store.get_user(&hook.user).await, Ok(Some(u)) if u.admin);
    let caller = Caller(Some(Principal {
        user_id: hook.user_id,
        user: hook.user.clone(),
        admin,
        scopes: Scopes { read: true, write: false, admin },
        token_id: 0,
    }));
    let filter = serde_json::from_value::<FilterParams>(hook.filter.clone())
        .map_err(|e| format!("stored filter: {e}"))
        .and_then(|p| StreamFilter::parse(&p, &state).map_err(|e| format!("stored filter: {e:?}")));
    let session = match filter {
        Ok(f) => Session::open(&state, caller, None, f, Some(hook.cursor)).await.map_err(|e| format!("{e:?}")),
        Err(e) => Err(e),
    };
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            pause(&state, &hook, 0, format!("cannot start: {e}")).await;
            return;
        }
    };
    let client = match reqwest::Client::builder().timeout(opts.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("webhook {}: cannot build an HTTP client: {e}", hook.id);
            return;
        }
    };
    loop {
        // A batch: the first event (waiting as long as it takes), then what follows within `linger`.
        let first = tokio::select! {
            out = session.next() => match out {
                Out::Event(ev) => ev,
                Out::Lagged(_) => continue,
                Out::End(why) => { tracing::info!("webhook {}: stream ended: {why}", hook.id); return; }
            },
            _ = stop.changed() => return,
        };
        let mut last = first.seq();
        let mut events = vec![first];
        let deadline = tokio::time::Instant::now() + opts.linger;
        while events.len() < opts.batch {
            match tokio::time::timeout_at(deadline, session.next()).await {
                Ok(Out::Event(ev)) => {
                    last = ev.seq();
                    events.push(ev);
                }
                Ok(Out::Lagged(_)) => {}
                Ok(Out::End(_)) | Err(_) => break,
            }
        }
        let body = format!(
            "{{\"webhook\":{},\"cursor\":{last},\"events\":[{}]}}",
            hook.id,
            events.iter().map(|e| crate::enrich::event_json(&state.config.asn.get(), e)).collect::<Vec<_>>().join(",")
        );
        let mut failures: i64 = 0;
        loop {
            let ts = chrono::Utc::now().timestamp();
            let result = client
                .post(&hook.url)
                .header("Content-Type", "application/json")
                .header("User-Agent", "apiary-webhook/1")
                .header("X-Apiary-Webhook", hook.id.to_string())
                .header("X-Apiary-Timestamp", ts.to_string())
                .header("X-Apiary-Signature", signature(&hook.secret, ts, body.as_bytes()))
                .body(body.clone())
                .send()
                .await;
            let error = match result {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("HTTP {} from {}", r.status().as_u16(), hook.url)),
                Err(e) => Some(format!("POST {}: {e}", hook.url)),
            };
            let Some(error) = error else {
                let progress = WebhookProgress { cursor: last, failures: 0, state: WebhookState::Active, last_error: None };
                if let Err(e) = state.store.set_webhook_progress(hook.id, progress).await {
                    tracing::warn!("webhook {}: cannot store the cursor {last}: {e}", hook.id);
                }
                break;
            };
            failures += 1;
            if failures >= i64::from(opts.max_attempts) {
                pause(&state, &hook, failures, error).await;
                return;
            }
            let shift = u32::try_from(failures - 1).unwrap_or(31).min(20);
            let wait = opts.first_backoff.saturating_mul(1 << shift).min(opts.max_backoff);
            tracing::debug!("webhook {}: attempt {failures} failed ({error}); retrying in {wait:?}", hook.id);
            let progress = WebhookProgress { cursor: 0, failures, state: WebhookState::Active, last_error: Some(error) };
            let _ = state.store.set_webhook_progress(hook.id, progress).await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Pause after repeated failure. The stored cursor stays at the last acknowledged batch (the
/// store never moves it back), so a resume redelivers the failed batch first.
async fn pause(state: &AppState, hook: &Webhook, failures: i64, error: String) {
    tracing::warn!("webhook {} ({}) paused after {failures} failed attempts: {error}", hook.id, hook.url);
    let progress = WebhookProgress { cursor: 0, failures, state: WebhookState::Paused, last_error: Some(error) };
    if let Err(e) = state.store.set_webhook_progress(hook.id, progress).await {
        tracing::warn!("webhook {}: cannot record the pause: {e}", hook.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
