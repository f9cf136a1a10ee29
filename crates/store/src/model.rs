//! Records kept by the store. Field names are the native API names.

use apiary_core::IType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub created_at: Timestamp,
}

/// Token scopes: read, write, admin.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
    pub admin: bool,
}

impl Scopes {
    /// Parse `read,write,admin` (any subset, comma separated).
    pub fn parse(s: &str) -> Option<Scopes> {
        let mut sc = Scopes::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "read" => sc.read = true,
                "write" => sc.write = true,
                "admin" => sc.admin = true,
                _ => return None,
            }
        }
        Some(sc)
    }
    pub fn to_string_list(&self) -> String {
        let mut v = Vec::new();
        if self.read { v.push("read") }
        if self.write { v.push("write") }
        if self.admin { v.push("admin") }
        v.join(",")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub scopes: Scopes,
    pub label: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
}

/// Who is calling: resolved from a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user_id: i64,
    pub user: String,
    pub admin: bool,
    pub scopes: Scopes,
    pub token_id: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Feed {
    pub id: i64,
    pub owner: String,
    pub owner_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub license_name: Option<String>,
    pub license_url: Option<String>,
    pub visibility: Visibility,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Feed {
    /// `owner/name`, the feed's name in the API and CLI.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewFeed {
    pub owner: String,
    pub name: String,
    pub description: Option<String>,
    pub license_name: Option<String>,
    pub license_url: Option<String>,
    pub visibility: Visibility,
}

#[derive(Debug, Clone, Default)]
pub struct FeedUpdate {
    pub description: Option<String>,
    pub license_name: Option<String>,
    pub license_url: Option<String>,
    pub visibility: Option<Visibility>,
}

/// TLP 1.0/2.0 label kept with every sighting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Tlp {
    Clear,
    #[default]
    Green,
    Amber,
    Red,
}

impl Tlp {
    pub fn parse(s: &str) -> Option<Tlp> {
        match s.trim().to_ascii_lowercase().as_str() {
            "white" | "clear" => Some(Tlp::Clear),
            "green" => Some(Tlp::Green),
            "amber" | "amber+strict" => Some(Tlp::Amber),
            "red" => Some(Tlp::Red),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::Red => "red",
        }
    }
}

/// One report to append. The indicator is already normalised by `apiary_core::parse`.
#[derive(Debug, Clone)]
pub struct NewSighting {
    pub feed_id: i64,
    /// The user who published it.
    pub reporter_id: i64,
    pub itype: IType,
    pub value: String,
    /// Special-use reason code (`private`, `loopback`...), if any.
    pub reserved: Option<String>,
    /// When it was observed (the publisher's time, or the receive time).
    pub observed_at: Timestamp,
    /// Optional end of the observed interval (lasttime), if the publisher sent one.
    pub observed_until: Option<Timestamp>,
    pub received_at: Timestamp,
    pub tags: Vec<String>,
    pub ports: Vec<u16>,
    pub protocol: Option<String>,
    pub description: Option<String>,
    pub tlp: Tlp,
    /// The publisher's own claim (0–10 in CSIRTG clients).
    pub claimed_confidence: Option<f64>,
    /// Honeypot sensor name, if from a sensor.
    pub sensor: Option<String>,
    /// How many events this sighting stands for (default 1).
    pub count: i64,
    /// Everything else the client sent, kept as-is.
    pub extra: serde_json::Value,
    /// Deduplication key: a repeat with the same key is not stored twice.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppendOutcome {
    /// Sighting sequence number (the sightings log position), or None for a duplicate.
    pub seq: Option<i64>,
    /// The feed record (per feed and value) id.
    pub record_id: i64,
    pub duplicate: bool,
}

/// A stored sighting.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sighting {
    pub seq: i64,
    pub feed: String,
    pub itype: IType,
    pub indicator: String,
    pub observed_at: Timestamp,
    pub received_at: Timestamp,
    pub tags: Vec<String>,
    pub portlist: Vec<u16>,
    pub protocol: Option<String>,
    pub description: Option<String>,
    pub tlp: Tlp,
    pub claimed_confidence: Option<f64>,
    pub sensor: Option<String>,
    pub count: i64,
    pub extra: serde_json::Value,
}

/// The aggregate of one value in one feed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedRecord {
    pub id: i64,
    pub feed_id: i64,
    /// `owner/name`
    pub feed: String,
    pub indicator: String,
    pub itype: IType,
    pub firsttime: Timestamp,
    pub lasttime: Timestamp,
    pub reporttime: Timestamp,
    pub count: i64,
    pub tags: Vec<String>,
    pub portlist: Vec<u16>,
    pub protocol: Option<String>,
    pub description: Option<String>,
    pub tlp: Tlp,
    pub claimed_confidence: Option<f64>,
    pub reserved: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A feed record as an export reads it ([`crate::Store::scan_records`]): no feed name (the
/// caller knows its feeds by id) and no bookkeeping times, so a million of them cost no more
/// than the formats need. Without [`Scan::details`] the tags, ports, protocol and description
/// are left empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    pub id: i64,
    pub feed_id: i64,
    pub indicator: String,
    pub itype: IType,
    pub firsttime: Timestamp,
    pub lasttime: Timestamp,
    pub reporttime: Timestamp,
    pub count: i64,
    pub tags: Vec<String>,
    pub portlist: Vec<u16>,
    pub protocol: Option<String>,
    pub description: Option<String>,
    pub tlp: Tlp,
    pub claimed_confidence: Option<f64>,
    pub reserved: Option<String>,
}

impl ExportRecord {
    /// The [`Query::cursor`] of the records after this one (in the order it was read in).
    pub fn cursor(&self) -> String {
        crate::sqlite::keys::Cursor { lasttime: self.lasttime.timestamp_micros(), id: self.id }.encode()
    }
}

impl From<FeedRecord> for ExportRecord {
    fn from(r: FeedRecord) -> Self {
        ExportRecord {
            id: r.id,
            feed_id: r.feed_id,
            indicator: r.indicator,
            itype: r.itype,
            firsttime: r.firsttime,
            lasttime: r.lasttime,
            reporttime: r.reporttime,
            count: r.count,
            tags: r.tags,
            portlist: r.portlist,
            protocol: r.protocol,
            description: r.description,
            tlp: r.tlp,
            claimed_confidence: r.claimed_confidence,
            reserved: r.reserved,
        }
    }
}

/// How [`crate::Store::scan_records`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    /// Fill the detail fields (tags, ports, protocol, description): only the formats that
    /// write them need them, and decoding them is most of a record's cost.
    pub details: bool,
    /// Records per batch sent.
    pub batch: usize,
}

impl Default for Scan {
    fn default() -> Self {
        Scan { details: true, batch: 1024 }
    }
}

/// The hub-wide aggregate of one value.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndicatorSummary {
    pub indicator: String,
    pub itype: IType,
    pub firsttime: Timestamp,
    pub lasttime: Timestamp,
    pub count: i64,
    pub feeds: i64,
    pub sources: i64,
    pub reserved: Option<String>,
}

/// Filters for [`crate::Store::query`]. All set filters must match.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Exact value (normalised).
    pub value: Option<String>,
    /// Addresses (and CIDRs) contained in this CIDR (normalised, e.g. `198.51.100.0/24`).
    pub within: Option<String>,
    /// Domain and its subdomains (for fqdn; URL hosts too).
    pub domain: Option<String>,
    pub itype: Option<IType>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// Only these feeds (ids). None = every feed the caller may read (`readable_by`).
    pub feed_ids: Option<Vec<i64>>,
    /// Restrict to feeds this user may read (public + own + granted; admins see all).
    /// None = anonymous (public feeds only).
    pub reader: Option<Reader>,
    /// lasttime >= since
    pub since: Option<Timestamp>,
    /// lasttime <= until
    pub until: Option<Timestamp>,
    pub limit: usize,
    /// Opaque cursor from a previous page (of a query in the same order).
    pub cursor: Option<String>,
    /// Newest first (the default: what searches and exports want) or oldest first (TAXII,
    /// whose pages run in the order objects were added).
    pub order: Order,
}

/// The order of [`Query`] results: by last-seen time, then record id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

#[derive(Debug, Clone)]
pub struct Reader {
    pub user_id: i64,
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Cursor for the next page, if there is one.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Stats {
    pub users: i64,
    pub feeds: i64,
    pub sightings: i64,
    pub records: i64,
    pub indicators: i64,
}

/// Names of users and feeds appear in URLs (`/feeds/{owner}/{feed}`): keep them plain. The one
/// rule both stores (and the sign-up route, before it spends a sign-up) apply.
pub fn check_account_name(what: &str, name: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(crate::StoreError::Invalid(format!(
            "{what} name `{name}`: use 1 to 64 letters, digits, '-', '_', '.' (not first) or '@'"
        )))
    }
}
