//! Feed exports: `GET /api/v1/feeds/{owner}/{feed}/export?format=...` (one feed) and
//! `GET /api/v1/export?format=...&tier=block` (the hub-wide BLOCK tier). docs/exports.md.
//!
//! The formats and the rules of what may leave the hub are in `apiary_core::export`; this
//! module reads the records with one [`Store::scan_records`] and streams the formatted bytes. One task per export
//! writes into a bounded channel that the response body reads, so memory stays flat however
//! large the feed and a slow client slows the task instead of filling a buffer. The same
//! engine ([`Walk`], [`run`]) serves TAXII ([`crate::taxii`]) and `apiary export --data`.
//!
//! Caching: a weak `ETag` and `Last-Modified` from the newest record the filters select, the
//! feed's own update time and the hour (windows are measured from the start of the current
//! hour, so an export and its validators are stable within the hour); `If-None-Match` /
//! `If-Modified-Since` answer 304. Bodies are gzip-compressed when the client accepts gzip.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use apiary_core::export::{self as fmt, suricata_iprep, FormatSpec, Meta, Policy, Record, Window};
use apiary_core::trust::score::ScoreTier;
use apiary_core::{parse, Allowlist, IType, ParseOptions};
use apiary_store::{ExportRecord, Feed, FeedRecord, Order, Query, Reader, Scan, Store, StoreError, Timestamp, Visibility};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as QueryString, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, DurationRound, Utc};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::{readable_feed, readable_feeds, Caller};
use crate::error::ApiError;
use crate::AppState;

/// Export routes (behind authentication, like every read), gzip-compressed on request.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/feeds/{owner}/{feed}/export", get(feed_export))
        .route("/api/v1/export", get(hub_export))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

static LISTS: OnceLock<Allowlist> = OnceLock::new();

/// The allowlist exports and TAXII apply: what [`install_allowlist`] set at start-up (the
/// built-in lists plus the operator's warninglists), or the built-in lists alone (special-use
/// ranges, big public resolvers, special-use names, empty-file hashes).
pub fn allowlist() -> &'static Allowlist {
    LISTS.get_or_init(Allowlist::builtin)
}

/// Set the hub's allowlist once, before serving. Returns false if one was already in use.
pub fn install_allowlist(lists: Allowlist) -> bool {
    LISTS.set(lists).is_ok()
}

/// Name of the hub-wide BLOCK tier, as a source in exports and a TAXII collection.
pub const BLOCK_TIER: &str = "hub/block";

/// How many bytes are gathered before a chunk goes to the client.
const CHUNK: usize = 64 * 1024;

// ------------------------------------------------------------------ parameters

/// Export parameters, as the query string (and the CLI's flags) give them.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct ExportParams {
    pub format: Option<String>,
    /// Indicator type (`ipv4`, `fqdn`, ...).
    #[serde(rename = "type", alias = "itype")]
    pub itype: Option<String>,
    /// Comma-separated tags; every one must be present.
    pub tags: Option<String>,
    /// `all`, `default`, or `30d`, `12h`, `2w`.
    pub window: Option<String>,
    /// At most this many indicators.
    pub limit: Option<String>,
    /// Comma-separated TLP labels to include.
    pub tlp: Option<String>,
    /// Minimum confidence: per feed the publisher's claim (0–10); hub-wide the hub's own score (0–100).
    pub min_confidence: Option<String>,
    /// Hub-wide: the lowest score tier (`observe`, `suspicious`, `block`; default `block`).
    pub tier: Option<String>,
    /// With `format=suricata-iprep`: answer the categories file instead.
    pub categories: Option<String>,
    /// ipset set base name.
    pub set: Option<String>,
    /// RPZ zone name.
    pub zone: Option<String>,
}

/// Parsed export parameters.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub format: &'static FormatSpec,
    /// Leave out held values: the format is a blocklist, or the export is the BLOCK tier.
    pub blocklist: bool,
    pub itype: Option<IType>,
    pub tags: Vec<String>,
    pub window: Window,
    pub limit: Option<usize>,
    pub tlp: Option<Vec<String>>,
    pub min_confidence: Option<f64>,
    /// Hub-wide: the score a value must have (from the scoring job's stored scores).
    pub score: Option<ScoreFloor>,
    pub categories: bool,
    pub set: Option<String>,
    pub zone: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The hub's own score a value must have to be in a scored export.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreFloor {
    pub tier: ScoreTier,
    /// 0–100.
    pub confidence: u8,
}

impl ScoreFloor {
    /// The BLOCK tier (TAXII's tier collection, the hub-wide export's default).
    pub const BLOCK: ScoreFloor = ScoreFloor { tier: ScoreTier::Block, confidence: 0 };

    fn admits(&self, confidence: u8, tier: ScoreTier) -> bool {
        tier >= self.tier && confidence >= self.confidence
    }
}

impl ExportParams {
    /// Check and parse every parameter for a feed's export; a refusal names the parameter and
    /// what is accepted.
    pub fn parse(&self) -> Result<ExportSpec, ApiError> {
        self.parse_for(false)
    }

    /// Parse for the hub-wide scored export: `tier` (default `block`) and `min_confidence`
    /// (0–100) select by the hub's own scores.
    pub fn parse_hub(&self) -> Result<ExportSpec, ApiError> {
        self.parse_for(true)
    }

    fn parse_for(&self, hub: bool) -> Result<ExportSpec, ApiError> {
        let name = given(&self.format).unwrap_or("text");
        let format = fmt::by_name(name)
            .ok_or_else(|| ApiError::invalid("unknown_format", format!("unknown format `{name}`; formats: {}", fmt::names())))?;
        let itype = given(&self.itype)
            .map(|t| IType::from_name(t).ok_or_else(|| ApiError::invalid("unknown_type", format!("unknown type `{t}`"))))
            .transpose()?;
        let tags = given(&self.tags)
            .map(|t| t.split(',').map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()).collect())
            .unwrap_or_default();
        let window = match given(&self.window) {
            None => Window::Default,
            Some(w) => Window::parse(w).ok_or_else(|| {
                ApiError::invalid("invalid_window", format!("`window` `{w}`: use `all`, `default`, or a length like 30d, 12h, 2w"))
            })?,
        };
        let limit = given(&self.limit)
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| ApiError::invalid("invalid_limit", format!("`limit` `{l}`: a whole number of at least 1")))
            })
            .transpose()?;
        let tlp = given(&self.tlp)
            .map(|list| {
                list.split(',')
                    .map(|t| {
                        let t = t.trim().to_ascii_lowercase();
                        match t.as_str() {
                            "clear" | "white" | "green" | "amber" | "red" => Ok(t),
                            _ => Err(ApiError::invalid("invalid_tlp", format!("`tlp` `{t}`: use clear, green, amber, red"))),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let max = if hub { 100.0 } else { 10.0 };
        let min_confidence = given(&self.min_confidence)
            .map(|c| {
                c.parse::<f64>().ok().filter(|c| (0.0..=max).contains(c)).ok_or_else(|| {
                    ApiError::invalid("invalid_confidence", format!("`min_confidence` `{c}`: a number from 0 to {max}"))
                })
            })
            .transpose()?;
        let tier = given(&self.tier)
            .map(|tier| match tier.to_ascii_lowercase().as_str() {
                "observe" => Ok(ScoreTier::Observe),
                "suspicious" => Ok(ScoreTier::Suspicious),
                "block" => Ok(ScoreTier::Block),
                _ => Err(ApiError::invalid("unknown_tier", format!("`tier` `{tier}`: use observe, suspicious or block"))),
            })
            .transpose()?;
        if tier.is_some() && !hub {
            return Err(ApiError::invalid("unknown_tier", "`tier` selects the hub-wide export (/api/v1/export), not a feed's"));
        }
        let (min_confidence, score) = if hub {
            // Hub-wide: the hub's own score. Without either filter, the BLOCK tier.
            let floor = match (tier, min_confidence) {
                (None, None) => ScoreFloor::BLOCK,
                (t, c) => ScoreFloor { tier: t.unwrap_or(ScoreTier::Observe), confidence: c.unwrap_or(0.0).ceil() as u8 },
            };
            (None, Some(floor))
        } else {
            (min_confidence, None)
        };
        // A flag is a boolean: `maybe` must not count as yes.
        let categories = match given(&self.categories).map(str::to_ascii_lowercase).as_deref() {
            None | Some("0" | "false" | "no" | "off") => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some(other) => {
                return Err(ApiError::invalid("invalid_flag", format!("`categories` `{other}`: use true or false")));
            }
        };
        // A set name the format cannot use would silently become `apiary` and replace that set.
        if let Some(set) = given(&self.set) {
            if fmt::ipset::set_base(set) != set {
                return Err(ApiError::invalid(
                    "invalid_set",
                    format!("`set` `{set}`: use 1 to 24 letters, digits, '-', '_' or '.'"),
                ));
            }
        }
        Ok(ExportSpec {
            format,
            blocklist: format.blocklist,
            itype,
            tags,
            window,
            limit,
            tlp,
            min_confidence,
            score,
            categories,
            set: given(&self.set).map(str::to_string),
            zone: given(&self.zone).map(str::to_string),
        })
    }
}

impl ExportSpec {
    /// The filters in one line, for comment headers.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("type {}", self.itype.map_or("any", IType::as_str))];
        if !self.tags.is_empty() {
            parts.push(format!("tags {}", self.tags.join(",")));
        }
        parts.push(format!("window {}", self.window.describe()));
        if let Some(t) = &self.tlp {
            parts.push(format!("tlp {}", t.join(",")));
        }
        if let Some(c) = self.min_confidence {
            parts.push(format!("claimed confidence >= {c}"));
        }
        if let Some(f) = self.score {
            parts.push(format!("hub score tier >= {}", f.tier.as_str()));
            if f.confidence > 0 {
                parts.push(format!("hub confidence >= {}", f.confidence));
            }
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit {l}"));
        }
        parts.join(", ")
    }
}

// ------------------------------------------------------------------ walking the store

/// Which records an export or a TAXII collection walks through.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The feeds (one, or every readable one for the hub-wide tier).
    pub feeds: Vec<Feed>,
    /// Who reads (None: anonymous).
    pub reader: Option<Reader>,
    /// The reader is an admin user (whatever its token's scopes). Admins read every feed, but
    /// being an admin is not being someone a TLP:RED feed was shared with.
    pub reader_is_admin: bool,
    pub itype: Option<IType>,
    pub tags: Vec<String>,
    /// Only this value (normalised): a TAXII object lookup.
    pub value: Option<String>,
    /// Oldest last-seen time to fetch.
    pub since: Option<Timestamp>,
    /// Keep only the first (newest) record of each value (hub-wide: one line per value).
    pub dedupe: bool,
    /// Only values whose stored score meets this (the hub-wide scored export, TAXII's tier).
    pub score: Option<ScoreFloor>,
}

/// A walk through the records of a [`Selection`]: newest first (exports) or oldest first
/// (TAXII), a store page at a time ([`Walk::page`], which ends exactly where its cursor says)
/// or as one scan of the store running beside the caller ([`Walk::scan`], exports).
pub struct Walk {
    store: Arc<dyn Store>,
    sel: Selection,
    cursor: Option<String>,
    order: Order,
    done: bool,
    /// feed id → (owner id, private?)
    owners: HashMap<i64, (i64, bool)>,
    red: HashMap<i64, bool>,
    /// Hashes of values already exported (hub-wide only): 8 bytes per distinct value.
    seen: HashSet<u64>,
    /// Read with [`Store::scan_records`] instead of pages (exports).
    scan: Option<Scan>,
    scanning: Option<Scanning>,
    /// Feed id → values its owner retracted: never exported from that feed (loaded once).
    retracted: Option<HashMap<i64, HashSet<String>>>,
}

/// A store scan in progress: its batches, and the task that sends them.
struct Scanning {
    batches: mpsc::Receiver<Vec<ExportRecord>>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

/// Batches of a scan the store may read ahead of the formatter (about 8,000 records).
const SCAN_AHEAD: usize = 8;

impl Walk {
    pub fn new(store: Arc<dyn Store>, sel: Selection, cursor: Option<String>) -> Walk {
        let owners = sel.feeds.iter().map(|f| (f.id, (f.owner_id, f.visibility == Visibility::Private))).collect();
        Walk {
            store,
            sel,
            cursor,
            order: Order::NewestFirst,
            done: false,
            owners,
            red: HashMap::new(),
            seen: HashSet::new(),
            scan: None,
            scanning: None,
            retracted: None,
        }
    }

    /// Walk oldest first (TAXII: pages in the order objects were added).
    pub fn oldest_first(mut self) -> Walk {
        self.order = Order::OldestFirst;
        self
    }

    /// Read the whole selection as one store scan ([`Store::scan_records`]) that runs beside
    /// the caller, so the store and the formatter use two cores. `details`: whether the format
    /// writes tags, ports, protocol and description. [`Walk::page`] then returns the scan's
    /// batches whatever it is asked for, and [`Walk::cursor`] means nothing.
    pub fn scan(mut self, details: bool) -> Walk {
        self.scan = Some(Scan { details, ..Scan::default() });
        self
    }

    fn query(&self, limit: usize) -> Query {
        Query {
            value: self.sel.value.clone(),
            itype: self.sel.itype,
            tags: self.sel.tags.clone(),
            feed_ids: Some(self.sel.feeds.iter().map(|f| f.id).collect()),
            reader: self.sel.reader.clone(),
            since: self.sel.since,
            limit,
            cursor: self.cursor.clone(),
            order: self.order,
            ..Query::default()
        }
    }

    /// The next records: a store page of at most `want` (None at the end), or the scan's next
    /// batch. The cursor moves past the whole page, so a caller that pages with `want` = what
    /// it still needs never skips.
    pub async fn page(&mut self, want: usize) -> Result<Option<Vec<ExportRecord>>, StoreError> {
        if self.done || self.sel.feeds.is_empty() {
            return Ok(None);
        }
        let items = match self.scan {
            Some(scan) => {
                if self.scanning.is_none() {
                    let (tx, rx) = mpsc::channel(SCAN_AHEAD);
                    let (store, q) = (self.store.clone(), self.query(scan.batch));
                    let task = tokio::spawn(async move { store.scan_records(&q, scan, tx).await });
                    self.scanning = Some(Scanning { batches: rx, task });
                }
                let scanning = self.scanning.as_mut().expect("started above");
                match scanning.batches.recv().await {
                    Some(batch) => batch,
                    None => {
                        self.done = true;
                        let task = self.scanning.take().expect("started above").task;
                        task.await.map_err(|e| StoreError::Internal(format!("export scan failed: {e}")))??;
                        return Ok(None);
                    }
                }
            }
            None => {
                let page = self.store.query(&self.query(want.clamp(1, 10_000))).await?;
                self.done = page.next.is_none();
                self.cursor = page.next;
                page.items.into_iter().map(ExportRecord::from).collect()
            }
        };
        Ok(Some(self.trust_filter(items).await?))
    }

    /// Leave out what the trust rules take out of a page: values retracted from their feed, and
    /// (scored exports) values whose stored score is below the floor or not scored yet.
    async fn trust_filter(&mut self, mut items: Vec<ExportRecord>) -> Result<Vec<ExportRecord>, StoreError> {
        if self.retracted.is_none() {
            let ids: Vec<i64> = self.sel.feeds.iter().map(|f| f.id).collect();
            let mut retracted: HashMap<i64, HashSet<String>> = HashMap::new();
            for (feed, value) in self.store.retractions(Some(&ids)).await? {
                retracted.entry(feed).or_default().insert(value);
            }
            self.retracted = Some(retracted);
        }
        let retracted = self.retracted.as_ref().expect("loaded above");
        if !retracted.is_empty() {
            items.retain(|r| !retracted.get(&r.feed_id).is_some_and(|values| values.contains(&r.indicator)));
        }
        if let Some(floor) = self.sel.score {
            let values: Vec<String> = items.iter().map(|r| r.indicator.clone()).collect::<HashSet<_>>().into_iter().collect();
            let scores: HashMap<String, (u8, ScoreTier)> =
                self.store.score_tiers(&values).await?.into_iter().map(|(v, c, t)| (v, (c, t))).collect();
            items.retain(|r| scores.get(&r.indicator).is_some_and(|&(c, t)| floor.admits(c, t)));
        }
        Ok(items)
    }

    /// Cursor for the records after the last page returned (None at the end).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The newest record the selection holds, if any.
    pub async fn newest(&self) -> Result<Option<FeedRecord>, StoreError> {
        if self.sel.feeds.is_empty() {
            return Ok(None);
        }
        let mut q = self.query(1);
        q.cursor = None;
        q.order = Order::NewestFirst;
        Ok(self.store.query(&q).await?.items.into_iter().next())
    }

    /// Whether TLP:RED records of `feed_id` may go to this reader: the feed's owner, or a user
    /// the (private) feed was shared with. A public feed is not "shared" with its readers, and
    /// admins are not an exception: on a public feed RED reaches its owner only.
    pub async fn red_ok(&mut self, feed_id: i64) -> Result<bool, StoreError> {
        let Some(reader) = &self.sel.reader else { return Ok(false) };
        if let Some(&ok) = self.red.get(&feed_id) {
            return Ok(ok);
        }
        let ok = match self.owners.get(&feed_id) {
            None => false,
            Some(&(owner, _)) if owner == reader.user_id => true,
            // For a private feed, access means the owner, an admin or a grant; admins are excluded above.
            Some(&(_, private)) => private && !self.sel.reader_is_admin && self.store.has_feed_access(feed_id, reader.user_id).await?,
        };
        self.red.insert(feed_id, ok);
        Ok(ok)
    }

    /// False when the value was already seen in this walk (hub-wide dedupe).
    pub fn first_sighting(&mut self, value: &str) -> bool {
        if !self.sel.dedupe {
            return true;
        }
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        self.seen.insert(h.finish())
    }

    /// Check a record against the policy (and dedupe); the record to export, or why not.
    /// `names` maps feed ids to `owner/name` ([`Selection::feed_names`]).
    pub async fn admit<'r>(
        &mut self,
        policy: &Policy<'_>,
        r: &'r ExportRecord,
        names: &'r HashMap<i64, String>,
    ) -> Result<Result<Record<'r>, &'static str>, StoreError> {
        let red_ok = if r.tlp == apiary_store::Tlp::Red { self.red_ok(r.feed_id).await? } else { false };
        let mut rec = record_of(r, names.get(&r.feed_id).map_or("", String::as_str));
        match policy.check(&rec, r.reserved.as_deref(), red_ok) {
            Err(skip) => Ok(Err(skip.as_str())),
            Ok(_) if !self.first_sighting(r.indicator.as_str()) => Ok(Err("listed_by_another_feed")),
            Ok(verdict) => {
                rec.held = verdict.held;
                Ok(Ok(rec))
            }
        }
    }
}

impl Drop for Walk {
    /// A walk given up early (the client went away, the limit was reached) stops its scan.
    fn drop(&mut self) {
        if let Some(s) = self.scanning.take() {
            s.task.abort();
        }
    }
}

impl Selection {
    /// Feed id → `owner/name`, for [`Walk::admit`].
    pub fn feed_names(&self) -> HashMap<i64, String> {
        self.feeds.iter().map(|f| (f.id, f.full_name())).collect()
    }
}

/// A stored record as the export formats see it.
pub fn record_of<'r>(r: &'r ExportRecord, feed: &'r str) -> Record<'r> {
    Record {
        value: &r.indicator,
        itype: r.itype,
        feed,
        firsttime: r.firsttime,
        lasttime: r.lasttime,
        reporttime: r.reporttime,
        count: r.count,
        tags: &r.tags,
        ports: &r.portlist,
        protocol: r.protocol.as_deref(),
        description: r.description.as_deref(),
        tlp: r.tlp.as_str(),
        confidence: r.claimed_confidence,
        held: false,
    }
}

/// "Now" for windows: the start of the current hour, so an export is stable within the hour.
pub fn export_now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(chrono::Duration::hours(1)).unwrap_or(now)
}

/// One export to produce.
pub struct Job {
    pub store: Arc<dyn Store>,
    pub selection: Selection,
    pub spec: ExportSpec,
    pub meta: Meta,
    pub now: DateTime<Utc>,
}

/// What an export wrote and left out.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub exported: u64,
    pub skipped: BTreeMap<&'static str, u64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exported {}", self.exported)?;
        if !self.skipped.is_empty() {
            let parts: Vec<String> = self.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
            write!(f, "; left out: {}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Why an export stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The reader of the chunks went away (client disconnected).
    #[error("the export's reader went away")]
    Closed,
}

/// Produce `job`, sending chunks of at most about 64 KiB to `out`.
pub async fn run(job: Job, out: mpsc::Sender<Bytes>) -> Result<Summary, ExportError> {
    let mut policy = Policy::new(allowlist(), job.spec.blocklist, job.now);
    policy.window = job.spec.window;
    policy.tlp = job.spec.tlp.clone();
    policy.min_confidence = job.spec.min_confidence;
    let mut format = (job.spec.format.new)(&job.meta);
    let names = job.selection.feed_names();
    let mut walk = Walk::new(job.store, job.selection, None).scan(job.spec.format.details);
    let mut summary = Summary::default();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    let io = |e: std::io::Error| StoreError::Internal(format!("formatting the export: {e}"));
    format.header(&mut buf).map_err(io)?;
    let limit = job.spec.limit.unwrap_or(usize::MAX);
    while (summary.exported as usize) < limit {
        let Some(page) = walk.page(limit - summary.exported as usize).await? else { break };
        for r in &page {
            if summary.exported as usize >= limit {
                break;
            }
            match walk.admit(&policy, r, &names).await? {
                Ok(rec) if format.accepts(&rec) => {
                    format.record(&rec, &mut buf).map_err(io)?;
                    summary.exported += 1;
                }
                Ok(_) => *summary.skipped.entry("not_expressible_in_format").or_default() += 1,
                Err(why) => *summary.skipped.entry(why).or_default() += 1,
            }
            if buf.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096)));
                out.send(chunk).await.map_err(|_| ExportError::Closed)?;
            }
        }
    }
    format.footer(&mut buf).map_err(io)?;
    if !buf.is_empty() {
        out.send(Bytes::from(buf)).await.map_err(|_| ExportError::Closed)?;
    }
    Ok(summary)
}

// ------------------------------------------------------------------ HTTP

/// `GET /api/v1/feeds/{owner}/{feed}/export?format=&type=&tags=&window=&limit=&tlp=&min_confidence=`
pub async fn feed_export(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    QueryString(params): QueryString<ExportParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let spec = params.parse()?;
    let feed = readable_feed(&state, &caller, &owner, &name).await?;
    let meta = Meta::new(&feed.full_name(), &feed.owner, feed.created_at, Utc::now());
    respond(&state, &caller, spec, vec![feed], meta, false, &headers).await
}

/// `GET /api/v1/export?format=&tier=block&min_confidence=&...`: the hub-wide scored feed over
/// every feed the caller may read, one line per value: values whose stored score (the scoring
/// job's, `crate::trust`) reaches the tier (default BLOCK) and the minimum confidence (0–100).
pub async fn hub_export(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(params): QueryString<ExportParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut spec = params.parse_hub()?;
    // The tier is a blocklist whatever the format: held values never enter it.
    spec.blocklist = true;
    let feeds = readable_feeds(&state, &caller, None).await?;
    let meta = Meta::new(BLOCK_TIER, "apiary", DateTime::UNIX_EPOCH, Utc::now());
    respond(&state, &caller, spec, feeds, meta, true, &headers).await
}

/// The selection of an export request.
pub fn selection(spec: &ExportSpec, feeds: Vec<Feed>, reader: Option<Reader>, reader_is_admin: bool, now: DateTime<Utc>, dedupe: bool) -> Selection {
    Selection { feeds, reader, reader_is_admin, itype: spec.itype, tags: spec.tags.clone(), value: None, since: spec.window.since(now, spec.itype), dedupe, score: spec.score }
}

async fn respond(
    state: &AppState,
    caller: &Caller,
    spec: ExportSpec,
    feeds: Vec<Feed>,
    mut meta: Meta,
    dedupe: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if spec.categories {
        if spec.format.name != "suricata-iprep" {
            return Err(ApiError::invalid("invalid_categories", "`categories` goes with `format=suricata-iprep`"));
        }
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], suricata_iprep::categories()).into_response());
    }
    let now = export_now();
    meta.filter = spec.describe();
    meta.base_url = Some(state.base_url(headers));
    if let Some(s) = &spec.set {
        meta.set_name = s.clone();
    }
    if let Some(z) = &spec.zone {
        let z = z.trim_end_matches('.');
        if z.is_empty() || parse(z, Some(IType::Fqdn), &ParseOptions::default()).is_err() {
            return Err(ApiError::invalid("invalid_zone", format!("`zone` `{z}` is not a domain name")));
        }
        meta.zone = format!("{z}.");
    }
    let sel = selection(&spec, feeds, caller.reader(), caller.0.as_ref().is_some_and(|p| p.admin), now, dedupe);

    // Validators: the newest selected record, the feeds' own updates, the hour, the request.
    let newest = Walk::new(state.store.clone(), sel.clone(), None).newest().await?;
    let feeds_updated = sel.feeds.iter().map(|f| f.updated_at).max();
    // Scores and retractions change an export without a new record.
    let feed_ids: Vec<i64> = sel.feeds.iter().map(|f| f.id).collect();
    let retractions = state.store.retractions(Some(&feed_ids)).await?.len();
    let scores_at = match sel.score {
        Some(_) => state.store.scores_updated_at().await?,
        None => None,
    };
    let mut last_modified = newest.as_ref().map(|r| r.updated_at.max(r.lasttime)).into_iter().chain(feeds_updated).chain(scores_at).max();
    if spec.window != Window::All {
        last_modified = last_modified.map(|t| t.max(now)).or(Some(now));
    }
    let mut h = DefaultHasher::new();
    (spec.format.name, spec.blocklist, format!("{:?}", (&spec.itype, &spec.tags, &spec.window, &spec.limit, &spec.tlp)), spec.min_confidence.map(f64::to_bits)).hash(&mut h);
    (&spec.set, &spec.zone, &meta.source, sel.feeds.iter().map(|f| (f.id, f.updated_at.timestamp_micros())).collect::<Vec<_>>()).hash(&mut h);
    (caller.reader().map(|r| (r.user_id, r.admin)), newest.as_ref().map(|r| (r.id, r.count, r.updated_at.timestamp_micros())), now.timestamp()).hash(&mut h);
    (allowlist().len(), env!("CARGO_PKG_VERSION")).hash(&mut h);
    (retractions, scores_at.map(|t| t.timestamp_micros()), spec.score.map(|f| (f.tier, f.confidence))).hash(&mut h);
    let etag = format!("W/\"{:016x}\"", h.finish());
    let last_modified_text = last_modified.map(http_date);

    if not_modified(headers, &etag, last_modified) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        set_validators(resp.headers_mut(), &etag, last_modified_text.as_deref());
        return Ok(resp);
    }

    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let job = Job { store: state.store.clone(), selection: sel, spec: spec.clone(), meta, now };
    let source = job.meta.source.clone();
    let (err_tx, mut err_rx) = mpsc::channel::<std::io::Error>(1);
    tokio::spawn(async move {
        match run(job, tx).await {
            Ok(summary) => tracing::debug!("export of {source}: {summary}"),
            Err(ExportError::Closed) => tracing::debug!("export of {source}: client went away"),
            Err(ExportError::Store(e)) => {
                tracing::error!("export of {source} stopped: {e}");
                let _ = err_tx.send(std::io::Error::other(format!("export stopped: {e}"))).await;
            }
        }
    });
    // Chunks until the task ends; a store failure mid-way ends the body with an error, so the
    // client sees a broken transfer rather than a short file that looks complete.
    let stream = futures_util::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
        std::task::Poll::Ready(Some(b)) => std::task::Poll::Ready(Some(Ok(b))),
        std::task::Poll::Ready(None) => err_rx.poll_recv(cx).map(|e| e.map(Err)),
        std::task::Poll::Pending => std::task::Poll::Pending,
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(spec.format.media_type));
    set_validators(resp.headers_mut(), &etag, last_modified_text.as_deref());
    Ok(resp)
}

fn set_validators(h: &mut HeaderMap, etag: &str, last_modified: Option<&str>) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(Ok(v)) = last_modified.map(HeaderValue::from_str) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// An HTTP date (`Thu, 03 Dec 2026 17:00:00 GMT`).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// RFC 9110: `If-None-Match` (weak comparison) decides when present; otherwise
/// `If-Modified-Since`, at one-second precision.
fn not_modified(headers: &HeaderMap, etag: &str, last_modified: Option<DateTime<Utc>>) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').any(|t| t.trim() == "*" || opaque(t) == opaque(etag));
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v.trim()).ok());
    match (since, last_modified) {
        (Some(since), Some(lm)) => lm.timestamp() <= since.timestamp(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        let p = ExportParams { format: Some("pdf".into()), ..Default::default() };
        assert_eq!(p.parse().unwrap_err().code, "unknown_format");
        let p = ExportParams { window: Some("3y".into()), ..Default::default() };
        assert_eq!(p.parse().unwrap_err().code, "invalid_window");
        let p = ExportParams { tier: Some("watch".into()), ..Default::default() };
        assert_eq!(p.parse_hub().unwrap_err().code, "unknown_tier");
        let p = ExportParams { tier: Some("block".into()), ..Default::default() };
        assert_eq!(p.parse().unwrap_err().code, "unknown_tier", "a feed's export has no tier");
        let hub = ExportParams::default().parse_hub().unwrap();
        assert_eq!(hub.score, Some(ScoreFloor::BLOCK), "hub-wide: BLOCK by default");
        let p = ExportParams { min_confidence: Some("75".into()), ..Default::default() };
        assert_eq!(p.parse_hub().unwrap().score, Some(ScoreFloor { tier: ScoreTier::Observe, confidence: 75 }));
        assert_eq!(p.parse().unwrap_err().code, "invalid_confidence", "per feed: the claim, 0–10");
        let p = ExportParams { tlp: Some("green,purple".into()), ..Default::default() };
        assert_eq!(p.parse().unwrap_err().code, "invalid_tlp");
        let p = ExportParams { format: Some("csv".into()), itype: Some("ip".into()), window: Some("all".into()), limit: Some("10".into()), ..Default::default() };
        let s = p.parse().unwrap();
        assert_eq!((s.format.name, s.itype, s.window, s.limit), ("csv", Some(IType::Ipv4), Window::All, Some(10)));
    }

    #[test]
    fn conditional_requests() {
        let lm = DateTime::parse_from_rfc3339("2026-12-03T17:00:00Z").unwrap().with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(not_modified(&h, "W/\"abc\"", Some(lm)));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("W/\"other\""));
        h.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_str(&http_date(lm)).unwrap());
        assert!(!not_modified(&h, "W/\"abc\"", Some(lm)), "If-None-Match decides when present");
        h.remove(header::IF_NONE_MATCH);
        assert!(not_modified(&h, "W/\"abc\"", Some(lm)));
        assert!(!not_modified(&h, "W/\"abc\"", Some(lm + chrono::Duration::seconds(1))));
    }
}
