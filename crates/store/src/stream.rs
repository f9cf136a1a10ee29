//! What the serve stage's streams need from the record stage: the sightings log read by
//! sequence number, users' feed subscriptions, and push subscriptions (webhooks) with their
//! delivery cursor. See docs/firehose.md.

use crate::model::{Timestamp, Tlp};
use apiary_core::IType;
use serde::{Deserialize, Serialize};

/// One entry of the sightings log: a committed sighting with its position (`seq`), in the
/// native field names. This is what the firehose, the native stream and webhooks carry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedSighting {
    /// Position in the sightings log (strictly increasing in commit order).
    pub seq: i64,
    pub feed_id: i64,
    /// `owner/name`
    pub feed: String,
    /// The feed record (value in this feed) it was added to.
    pub record_id: i64,
    pub itype: IType,
    pub indicator: String,
    /// Special-use reason code, if any.
    pub reserved: Option<String>,
    pub observed_at: Timestamp,
    pub observed_until: Option<Timestamp>,
    pub received_at: Timestamp,
    pub tags: Vec<String>,
    pub portlist: Vec<u16>,
    pub protocol: Option<String>,
    pub description: Option<String>,
    pub tlp: Tlp,
    /// The publisher's own claim (0–10 in CSIRTG clients).
    pub claimed_confidence: Option<f64>,
    pub sensor: Option<String>,
    pub count: i64,
}

/// Whether a webhook is being delivered.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookState {
    Active,
    /// Stopped after repeated failure (see `last_error`) until resumed.
    Paused,
}

impl WebhookState {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Active => "active",
            WebhookState::Paused => "paused",
        }
    }
}

/// A push subscription as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Webhook {
    pub id: i64,
    pub user: String,
    pub user_id: i64,
    pub url: String,
    /// The HMAC-SHA256 key; shown once at creation, never listed.
    #[serde(skip_serializing)]
    pub secret: String,
    /// The stream filter (native stream parameters as a JSON object).
    pub filter: serde_json::Value,
    /// Delivered up to this sightings-log seq.
    pub cursor: i64,
    pub state: WebhookState,
    /// Failed attempts in a row.
    pub failures: i64,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A push subscription to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub user: String,
    pub url: String,
    pub secret: String,
    pub filter: serde_json::Value,
    /// Deliver sightings after this seq (usually the log's last seq at creation).
    pub cursor: i64,
}

/// Where a webhook's delivery stands, written by the delivery task.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookProgress {
    pub cursor: i64,
    pub failures: i64,
    pub state: WebhookState,
    pub last_error: Option<String>,
}
