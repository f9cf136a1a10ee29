//! TAXII 2.1, read-only: discovery at `/taxii2/`, one API root at `/taxii2/apiary/`.
//!
//! Collections: one per feed the caller may read, id = UUIDv5 of the feed's `owner/name`
//! (stable across restarts and nodes), plus one for the hub's BLOCK tier (`hub/block`): until
//! the hub scores indicators, that is every value in the feeds the caller may read that passes
//! the blocklist rules, within the CIF-style default windows. Objects are the STIX 2.1
//! `indicator`s of the export (`apiary_core::export::stix`): same ids, same rules (special-use
//! and excluded values never, held values never, TLP:RED only for the owner and those it was
//! shared with).
//!
//! An object's `date_added` and `version` are the record's last-seen time, so a value seen
//! again is a new version of the same object and `added_after` polling picks it up. Pages come
//! oldest first, as TAXII 2.1 orders by date added: follow `next` to the end, or poll with
//! `added_after` = the last page's `X-TAXII-Date-Added-Last`. The hub keeps only the latest
//! version of each object, so `versions/` lists one. An object lookup (`objects/<id>/`) maps the
//! id to its value from the ids a scan of the collection remembered (one store statement per
//! collection, again only for an id not seen yet), then reads that value's records alone; at most
//! four lookups run at once, more are answered 429.
//!
//! Auth: HTTP Basic with the token as the password (what TAXII clients send; the user name is
//! not checked), or the hub's own `Authorization: Bearer` header. Anonymous callers see the
//! public feeds. Every response is `application/taxii+json;version=2.1`; a request whose
//! `Accept` excludes it is answered 406.

use std::collections::{HashMap, HashSet};

use apiary_core::export::stix::{self, IndicatorObject};
use apiary_core::export::{Policy, Window};
use apiary_core::parse_time;
use apiary_store::{Feed, StoreError};
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::auth::{readable_feeds, Caller};
use crate::export::{allowlist, export_now, Selection, Walk, BLOCK_TIER};
use crate::AppState;

/// The TAXII 2.1 media type.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// The STIX 2.1 media type, for collections and manifests.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";
/// The one API root's path segment.
pub const API_ROOT: &str = "apiary";
/// Page size when the request names none, and the largest one served.
pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 10_000;

/// The TAXII routes with their own middleware (TAXII error bodies, HTTP Basic), ready to merge
/// beside the hub's router.
pub fn routes(state: AppState) -> Router {
    let mut r = Router::new();
    // TAXII URLs end in `/`; accept them without it too.
    for (path, handler) in [
        ("/taxii2", get(discovery)),
        ("/taxii2/{root}", get(api_root)),
        ("/taxii2/{root}/collections", get(collections)),
        ("/taxii2/{root}/collections/{id}", get(collection)),
        ("/taxii2/{root}/collections/{id}/objects", get(objects)),
        ("/taxii2/{root}/collections/{id}/objects/{oid}", get(object)),
        ("/taxii2/{root}/collections/{id}/objects/{oid}/versions", get(versions)),
        ("/taxii2/{root}/collections/{id}/manifest", get(manifest)),
    ] {
        r = r.route(&format!("{path}/"), handler.clone()).route(path, handler);
    }
    r.fallback(|| async { TaxiiError::new(StatusCode::NOT_FOUND, "not found", "no such TAXII endpoint") })
        .layer(axum::middleware::from_fn(require_accept))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::authenticate))
        .layer(axum::middleware::from_fn(basic_auth))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(crate::error::panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .with_state(state)
}

// ------------------------------------------------------------------ errors and responses

/// A TAXII error message (`title`, `description`, `http_status`).
#[derive(Debug)]
pub struct TaxiiError {
    status: StatusCode,
    title: &'static str,
    description: String,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> TaxiiError {
        TaxiiError { status, title, description: description.into() }
    }
    fn bad(description: impl Into<String>) -> TaxiiError {
        Self::new(StatusCode::BAD_REQUEST, "bad request", description)
    }
    fn not_found(description: impl Into<String>) -> TaxiiError {
        Self::new(StatusCode::NOT_FOUND, "not found", description)
    }
}

impl From<StoreError> for TaxiiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the hub is busy; retry shortly"),
            StoreError::NotFound(m) => Self::not_found(m),
            StoreError::Invalid(m) => Self::bad(m),
            other => {
                tracing::error!("taxii: {other}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "internal store error; see the hub's log")
            }
        }
    }
}

impl From<crate::ApiError> for TaxiiError {
    fn from(e: crate::ApiError) -> Self {
        TaxiiError { status: e.status, title: "error", description: e.message }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({"title": self.title, "description": self.description, "http_status": self.status.as_u16().to_string()});
        let mut resp = taxii_response(body.to_string());
        *resp.status_mut() = self.status;
        if matches!(self.status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

fn taxii_response(body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    resp
}

type Reply = Result<Response, TaxiiError>;

// ------------------------------------------------------------------ middleware

/// HTTP Basic → the hub's bearer token (the password is the token; a lone user name counts
/// as the token too). A 401 invites Basic credentials, as TAXII clients expect.
async fn basic_auth(mut req: Request, next: Next) -> Response {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("basic")).map(|(_, c)| c.trim().to_string()));
    if let Some(creds) = basic {
        let decoded = base64::engine::general_purpose::STANDARD.decode(creds.as_bytes()).ok().and_then(|b| String::from_utf8(b).ok());
        let Some(decoded) = decoded else {
            return TaxiiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "malformed Basic credentials").into_response();
        };
        let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
        let token = if password.is_empty() { user } else { password };
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(v) => {
                req.headers_mut().insert(header::AUTHORIZATION, v);
            }
            Err(_) => return TaxiiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "malformed token").into_response(),
        }
    }
    let mut resp = as_taxii_error(next.run(req).await).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"apiary\""));
    }
    resp
}

/// The hub's own refusals (bad token, rate limit: `{"error":{"code","message"}}`) as TAXII
/// error messages, keeping the status and `Retry-After`.
async fn as_taxii_error(resp: Response) -> Response {
    let status = resp.status();
    let is_taxii = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/taxii+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_taxii {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
    let hub: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let description = hub["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let title = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::TOO_MANY_REQUESTS => "too many requests",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
        _ => "error",
    };
    let mut out = TaxiiError::new(status, title, description).into_response();
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

/// Whether an `Accept` value admits TAXII 2.1 (absent, `*/*`, `application/*`, or
/// `application/taxii+json` without a version or with 2.1).
pub fn accepts_taxii(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(|p| p.trim().to_ascii_lowercase());
        let media = parts.next().unwrap_or_default();
        let params: Vec<String> = parts.filter(|p| !p.starts_with("q=")).collect();
        match media.as_str() {
            "*/*" | "application/*" => true,
            "application/taxii+json" => params.iter().all(|p| p.replace(' ', "") != "version=2.0") && params.iter().all(|p| !p.starts_with("version=") || p.replace(' ', "") == "version=2.1"),
            _ => false,
        }
    })
}

async fn require_accept(req: Request, next: Next) -> Response {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !accepts_taxii(accept) {
        let accept = accept.unwrap_or_default().to_string();
        return TaxiiError::new(StatusCode::NOT_ACCEPTABLE, "not acceptable", format!("this server answers {MEDIA_TYPE}, not `{accept}`"))
            .into_response();
    }
    next.run(req).await
}

// ------------------------------------------------------------------ discovery, root, collections

fn root_url(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/taxii2/{API_ROOT}/", state.base_url(headers))
}

fn check_root(root: &str) -> Result<(), TaxiiError> {
    if root == API_ROOT {
        Ok(())
    } else {
        Err(TaxiiError::not_found(format!("no API root `{root}`; the one API root is `{API_ROOT}`")))
    }
}

async fn discovery(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let root = root_url(&state, &headers);
    Ok(taxii_response(
        json!({
            "title": "Apiary",
            "description": "Apiary threat-intelligence hub: one collection per readable feed, plus the BLOCK tier.",
            "default": root,
            "api_roots": [root],
        })
        .to_string(),
    ))
}

async fn api_root(State(state): State<AppState>, Path(root): Path<String>) -> Reply {
    check_root(&root)?;
    Ok(taxii_response(
        json!({
            "title": "Apiary",
            "description": "Indicators of the hub's feeds as STIX 2.1, read-only.",
            "versions": [MEDIA_TYPE],
            "max_content_length": state.config.max_body_bytes,
        })
        .to_string(),
    ))
}

/// One collection: a feed, or the BLOCK tier over every readable feed.
struct CollectionRef {
    id: String,
    title: String,
    description: String,
    feeds: Vec<Feed>,
    block: bool,
}

impl CollectionRef {
    fn json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "can_read": true,
            "can_write": false,
            "media_types": [STIX_MEDIA_TYPE],
        })
    }

    /// The STIX scope of its indicators (see `stix::indicator_id`) and their creator.
    fn scope(&self) -> (&str, String) {
        if self.block {
            (BLOCK_TIER, "apiary".into())
        } else {
            (self.title.as_str(), self.feeds[0].owner.clone())
        }
    }
}

/// The id of a feed's collection.
pub fn collection_id(name: &str) -> String {
    stix::uuid("collection", name).to_string()
}

async fn readable_collections(state: &AppState, caller: &Caller) -> Result<Vec<CollectionRef>, TaxiiError> {
    let feeds = readable_feeds(state, caller, None).await?;
    let mut out: Vec<CollectionRef> = feeds
        .iter()
        .map(|f| CollectionRef {
            id: collection_id(&f.full_name()),
            title: f.full_name(),
            description: f.description.clone().unwrap_or_else(|| format!("Indicators of the feed {}", f.full_name())),
            feeds: vec![f.clone()],
            block: false,
        })
        .collect();
    out.push(CollectionRef {
        id: collection_id(BLOCK_TIER),
        title: BLOCK_TIER.into(),
        description: "The hub's BLOCK tier: until scoring exists, every value of the feeds you may read that passes the \
                      blocklist rules (no special-use, allowlisted or held values), last seen within the default windows \
                      (addresses 21 days, others 45 days)."
            .into(),
        feeds,
        block: true,
    });
    Ok(out)
}

async fn find_collection(state: &AppState, caller: &Caller, root: &str, id: &str) -> Result<CollectionRef, TaxiiError> {
    check_root(root)?;
    readable_collections(state, caller)
        .await?
        .into_iter()
        .find(|c| c.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| TaxiiError::not_found(format!("no collection {id} that you may read")))
}

async fn collections(State(state): State<AppState>, caller: Caller, Path(root): Path<String>) -> Reply {
    check_root(&root)?;
    let list: Vec<_> = readable_collections(&state, &caller).await?.iter().map(CollectionRef::json).collect();
    Ok(taxii_response(json!({ "collections": list }).to_string()))
}

async fn collection(State(state): State<AppState>, caller: Caller, Path((root, id)): Path<(String, String)>) -> Reply {
    Ok(taxii_response(find_collection(&state, &caller, &root, &id).await?.json().to_string()))
}

// ------------------------------------------------------------------ objects

/// The filters of an objects/manifest request.
#[derive(Debug, Default)]
struct Filters {
    added_after: Option<DateTime<Utc>>,
    limit: usize,
    next: Option<String>,
    ids: Option<HashSet<String>>,
    types: Option<Vec<String>>,
    /// Exact versions asked for (`match[version]=<timestamp>`); `first`, `last` and `all`
    /// all mean the one version the hub keeps.
    versions: Option<Vec<String>>,
    spec_versions: Option<Vec<String>>,
    /// Only the records of this value (an object lookup, see [`find_object`]); not a query parameter.
    value: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= b.len() => match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn stix_time(param: &str, v: &str) -> Result<DateTime<Utc>, TaxiiError> {
    parse_time(v).map_err(|r| TaxiiError::bad(format!("`{param}` `{v}`: {}", r.message)))
}

impl Filters {
    fn parse(query: Option<&str>) -> Result<Filters, TaxiiError> {
        let mut f = Filters { limit: DEFAULT_LIMIT, ..Filters::default() };
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k), percent_decode(v));
            match k.as_str() {
                "added_after" => f.added_after = Some(stix_time("added_after", &v)?),
                "limit" => {
                    f.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| TaxiiError::bad(format!("`limit` `{v}`: a whole number of at least 1")))?
                        .min(MAX_LIMIT)
                }
                "next" => f.next = Some(v).filter(|v| !v.is_empty()),
                "match[id]" => f.ids = Some(list(&v).into_iter().collect()),
                "match[type]" => f.types = Some(list(&v)),
                "match[version]" => {
                    let vs = list(&v);
                    for x in &vs {
                        if !matches!(x.as_str(), "first" | "last" | "all") {
                            stix_time("match[version]", x)?;
                        }
                    }
                    let exact: Vec<String> = vs.into_iter().filter(|x| !matches!(x.as_str(), "first" | "last" | "all")).collect();
                    // A mix of keywords and timestamps: the keywords already cover the one version.
                    if !exact.is_empty() && !v.split(',').any(|x| matches!(x.trim(), "first" | "last" | "all")) {
                        f.versions = Some(exact);
                    }
                }
                "match[spec_version]" => f.spec_versions = Some(list(&v)),
                _ => {}
            }
        }
        Ok(f)
    }

    /// False when the type or spec_version filters rule out every indicator.
    fn may_match(&self) -> bool {
        self.types.as_ref().is_none_or(|t| t.iter().any(|t| t == "indicator"))
            && self.spec_versions.as_ref().is_none_or(|s| s.iter().any(|s| s == "2.1"))
    }
}

/// One object of a page: its JSON, id, date added and version.
struct Item {
    json: String,
    id: String,
    added: String,
}

/// A page of a collection's objects.
struct ItemPage {
    items: Vec<Item>,
    next: Option<String>,
}

/// Records read from the store per request while filling a page.
const STORE_PAGE: usize = 1_000;

/// Walk `coll` for the objects `f` selects, at most `f.limit`, oldest first: TAXII pages run
/// in the order objects were added, so `added_after` = the last page's
/// `X-TAXII-Date-Added-Last` and `next` both continue where a page ended.
async fn page(state: &AppState, caller: &Caller, coll: &CollectionRef, f: &Filters) -> Result<ItemPage, TaxiiError> {
    if !f.may_match() {
        return Ok(ItemPage { items: Vec::new(), next: None });
    }
    let now = export_now();
    let window = if coll.block { Window::Default } else { Window::All };
    let mut policy = Policy::new(allowlist(), true, now);
    policy.window = window;
    let since = [window.since(now, None), f.added_after].into_iter().flatten().max();
    let sel = Selection {
        feeds: coll.feeds.clone(),
        reader: caller.reader(),
        reader_is_admin: caller.0.as_ref().is_some_and(|p| p.admin),
        itype: None,
        tags: Vec::new(),
        value: f.value.clone(),
        since,
        // A value in several feeds is one object of the BLOCK tier: its latest version is kept
        // below (the walk's own dedupe keeps the first, which oldest first is the stalest).
        dedupe: false,
        // The BLOCK-tier collection serves the scoring job's BLOCK tier.
        score: coll.block.then_some(crate::export::ScoreFloor::BLOCK),
    };
    let names = sel.feed_names();
    let mut walk = Walk::new(state.store.clone(), sel, f.next.clone()).oldest_first();
    let (scope, producer) = coll.scope();
    let identity = stix::identity_id(&producer);
    let versions: Option<Vec<i64>> =
        f.versions.as_ref().map(|vs| vs.iter().filter_map(|v| parse_time(v).ok()).map(|t| t.timestamp_millis()).collect());
    // Objects in order; an earlier version of an object found again is emptied (BLOCK tier).
    let mut items: Vec<Option<Item>> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut live = 0;
    // The page ends after the last record looked at, wherever that is in a store page, so the
    // `next` cursor is exact however many records the filters skip.
    let mut last: Option<String> = None;
    let mut exhausted = false;
    'fill: while live < f.limit {
        let Some(records) = walk.page(STORE_PAGE.max(f.limit)).await? else {
            exhausted = true;
            break;
        };
        for r in &records {
            if live >= f.limit {
                break 'fill;
            }
            last = Some(r.cursor());
            if f.added_after.is_some_and(|a| r.lasttime.timestamp_millis() <= a.timestamp_millis()) {
                continue;
            }
            let Ok(rec) = walk.admit(&policy, r, &names).await? else { continue };
            let Some(obj) = IndicatorObject::of(&rec, scope, &identity) else { continue };
            if f.ids.as_ref().is_some_and(|ids| !ids.contains(&obj.id)) {
                continue;
            }
            // `modified` (the version) is the record's last-seen time.
            if versions.as_ref().is_some_and(|v| !v.contains(&r.lasttime.timestamp_millis())) {
                continue;
            }
            let json = serde_json::to_string(&obj).map_err(|e| TaxiiError::from(StoreError::Internal(e.to_string())))?;
            if let Some(earlier) = at.insert(obj.id.clone(), items.len()) {
                if items[earlier].take().is_some() {
                    live -= 1;
                }
            }
            items.push(Some(Item { added: obj.modified.clone(), id: obj.id.clone(), json }));
            live += 1;
        }
        exhausted = walk.cursor().is_none();
    }
    let next = if exhausted { None } else { last };
    Ok(ItemPage { items: items.into_iter().flatten().collect(), next })
}

/// The `X-TAXII-Date-Added-First/Last` headers of a page.
fn date_headers(resp: &mut Response, items: &[Item]) {
    let first = items.iter().map(|i| i.added.as_str()).min();
    let last = items.iter().map(|i| i.added.as_str()).max();
    for (name, v) in [("x-taxii-date-added-first", first), ("x-taxii-date-added-last", last)] {
        if let Some(Ok(v)) = v.map(HeaderValue::from_str) {
            resp.headers_mut().insert(name, v);
        }
    }
}

/// `{"more", "next", "objects"}` around already-serialised objects.
fn envelope(items: &[Item], next: Option<&str>, objects: impl Fn(&Item) -> String) -> String {
    let mut body = String::with_capacity(items.iter().map(|i| i.json.len() + 2).sum::<usize>() + 128);
    body.push_str(&format!("{{\"more\":{}", next.is_some()));
    if let Some(n) = next {
        body.push_str(&format!(",\"next\":{}", serde_json::Value::String(n.to_string())));
    }
    if !items.is_empty() {
        body.push_str(",\"objects\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&objects(item));
        }
        body.push(']');
    }
    body.push('}');
    body
}

async fn objects(
    State(state): State<AppState>,
    caller: Caller,
    Path((root, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Reply {
    let coll = find_collection(&state, &caller, &root, &id).await?;
    let f = Filters::parse(q.as_deref())?;
    let page = page(&state, &caller, &coll, &f).await?;
    let mut resp = taxii_response(envelope(&page.items, page.next.as_deref(), |i| i.json.clone()));
    date_headers(&mut resp, &page.items);
    Ok(resp)
}

async fn manifest(
    State(state): State<AppState>,
    caller: Caller,
    Path((root, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Reply {
    let coll = find_collection(&state, &caller, &root, &id).await?;
    let f = Filters::parse(q.as_deref())?;
    let page = page(&state, &caller, &coll, &f).await?;
    let mut resp = taxii_response(envelope(&page.items, page.next.as_deref(), |i| {
        json!({"id": i.id, "date_added": i.added, "version": i.added, "media_type": STIX_MEDIA_TYPE}).to_string()
    }));
    date_headers(&mut resp, &page.items);
    Ok(resp)
}

/// Object lookups (`objects/<id>/` and `versions/`) running at once; more are answered 429,
/// as a lookup of an id not seen yet scans its collection.
const MAX_LOOKUPS: usize = 4;
/// Object ids remembered across collections; past this the map starts again.
const MAX_KNOWN_IDS: usize = 1_000_000;

/// Object id → value, per collection id. Ids are hashes of (scope, type, value) and never change
/// meaning, so an entry stays true; a value added since the last scan is found by scanning again.
fn known_ids() -> &'static std::sync::Mutex<HashMap<String, HashMap<String, String>>> {
    static IDS: std::sync::OnceLock<std::sync::Mutex<HashMap<String, HashMap<String, String>>>> = std::sync::OnceLock::new();
    IDS.get_or_init(Default::default)
}

fn lookups() -> &'static tokio::sync::Semaphore {
    static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_LOOKUPS);
    &LOOKUPS
}

/// The value whose object in `coll` has id `oid`: from [`known_ids`], else by one scan of the
/// collection's records (one store statement, no details), which refreshes the collection's map.
async fn value_of(state: &AppState, caller: &Caller, coll: &CollectionRef, oid: &str) -> Result<Option<String>, TaxiiError> {
    let known = |oid: &str| known_ids().lock().ok().and_then(|m| m.get(&coll.id).and_then(|ids| ids.get(oid).cloned()));
    if let Some(v) = known(oid) {
        return Ok(Some(v));
    }
    if !oid.starts_with("indicator--") {
        return Ok(None);
    }
    let sel = Selection {
        feeds: coll.feeds.clone(),
        reader: caller.reader(),
        reader_is_admin: caller.0.as_ref().is_some_and(|p| p.admin),
        itype: None,
        tags: Vec::new(),
        value: None,
        since: None,
        dedupe: false,
        score: None,
    };
    let (scope, _) = coll.scope();
    let mut walk = Walk::new(state.store.clone(), sel, None).scan(false);
    let mut ids = HashMap::new();
    while let Some(batch) = walk.page(0).await? {
        for r in batch {
            ids.entry(stix::indicator_id(scope, r.itype, &r.indicator)).or_insert(r.indicator);
        }
    }
    let found = ids.get(oid).cloned();
    if let Ok(mut m) = known_ids().lock() {
        let others: usize = m.iter().filter(|(k, _)| **k != coll.id).map(|(_, v)| v.len()).sum();
        if others + ids.len() > MAX_KNOWN_IDS {
            m.clear();
        }
        if ids.len() <= MAX_KNOWN_IDS {
            m.insert(coll.id.clone(), ids);
        }
    }
    Ok(found)
}

/// The one object `oid` of a collection: its value from [`value_of`], then a walk through that
/// value's records only, under the same rules as a page.
async fn find_object(state: &AppState, caller: &Caller, root: &str, id: &str, oid: &str, q: Option<&str>) -> Result<Vec<Item>, TaxiiError> {
    let coll = find_collection(state, caller, root, id).await?;
    let mut f = Filters::parse(q)?;
    let Ok(_permit) = lookups().try_acquire() else {
        return Err(TaxiiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests", format!("more than {MAX_LOOKUPS} object lookups at once; retry shortly")));
    };
    let not_found = || TaxiiError::not_found(format!("no object {oid} in collection {id}"));
    let Some(value) = value_of(state, caller, &coll, oid).await? else { return Err(not_found()) };
    f.ids = Some(HashSet::from([oid.to_string()]));
    f.value = Some(value);
    f.limit = MAX_LIMIT;
    f.next = None;
    let mut found = Vec::new();
    loop {
        let p = page(state, caller, &coll, &f).await?;
        found.extend(p.items);
        match p.next {
            Some(next) => f.next = Some(next),
            None => break,
        }
    }
    // Several feeds in the BLOCK tier: the latest version only, as a page keeps.
    if found.len() > 1 {
        let latest = found.iter().map(|i| i.added.clone()).max();
        found.retain(|i| Some(&i.added) == latest.as_ref());
        found.truncate(1);
    }
    if found.is_empty() {
        return Err(not_found());
    }
    Ok(found)
}

async fn object(
    State(state): State<AppState>,
    caller: Caller,
    Path((root, id, oid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Reply {
    let items = find_object(&state, &caller, &root, &id, &oid, q.as_deref()).await?;
    let mut resp = taxii_response(envelope(&items, None, |i| i.json.clone()));
    date_headers(&mut resp, &items);
    Ok(resp)
}

async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((root, id, oid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Reply {
    let items = find_object(&state, &caller, &root, &id, &oid, q.as_deref()).await?;
    let versions: Vec<&str> = items.iter().map(|i| i.added.as_str()).collect();
    let mut resp = taxii_response(json!({"more": false, "versions": versions}).to_string());
    date_headers(&mut resp, &items);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_values() {
        for (accept, ok) in [
            (None, true),
            (Some("application/taxii+json;version=2.1"), true),
            (Some("application/taxii+json; version=2.1"), true),
            (Some("application/taxii+json"), true),
            (Some("text/html, */*;q=0.1"), true),
            (Some("application/taxii+json;version=2.0"), false),
            (Some("application/vnd.oasis.taxii+json; version=2.0"), false),
            (Some("application/json"), false),
            (Some("text/html"), false),
        ] {
            assert_eq!(accepts_taxii(accept), ok, "{accept:?}");
        }
    }

    #[test]
    fn filters_parse() {
        let f = Filters::parse(Some("added_after=2026-01-01T00:00:00.000Z&limit=5&match%5Btype%5D=indicator,malware&match[version]=all&next=abc%3D")).unwrap();
        assert_eq!(f.limit, 5);
        assert_eq!(f.next.as_deref(), Some("abc="));
        assert!(f.added_after.is_some() && f.versions.is_none() && f.may_match());
        let f = Filters::parse(Some("match[type]=malware")).unwrap();
        assert!(!f.may_match());
        let f = Filters::parse(Some("match[spec_version]=2.0")).unwrap();
        assert!(!f.may_match());
        assert!(Filters::parse(Some("limit=0")).is_err());
        assert!(Filters::parse(Some("added_after=yesterday")).is_err());
        assert_eq!(Filters::parse(Some("limit=999999")).unwrap().limit, MAX_LIMIT);
    }
}
