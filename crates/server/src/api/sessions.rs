//! Honeypot sessions, sensors and the correlation across honeynets (docs/sessions.md):
//!
//! - `POST /api/v1/feeds/{owner}/{feed}/sessions`: store sessions (JSON array or JSON lines of
//!   session records; `apiary import cowrie --hub` sends them with its sightings);
//! - `GET|POST /api/v1/feeds/{owner}/{feed}/sensors`, `DELETE …/sensors/{name}`: sensors and
//!   their declared networks;
//! - `GET /api/v1/sessions`, `/api/v1/attackers/{ip}`, `/api/v1/payloads/{sha256}`,
//!   `/api/v1/attackers` (seen by several sensors), `/api/v1/campaigns`, `/api/v1/campaigns/{id}`:
//!   the views.
//!
//! Who sees what: only feeds the caller may read contribute. Sensor locations are secrets:
//! sensor names and honeypot addresses are shown only for feeds the caller owns (or to an
//! admin); everyone else gets counts of sensors and networks. The views are built by the
//! `*_view` functions, which `apiary sessions|attacker|campaigns --data` call too.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use apiary_core::sessions::{
    attacker_address, attacker_profile, campaigns, command_sequence, credential_list, distinct_sessions,
    networks_of, payload_hash, Campaign, Link, LinkKind, SensorRef, SessionRecord,
};
use apiary_core::{parse, IType, ParseOptions};
use apiary_store::{Feed, NewSensor, NewSession, Sensor, SessionQuery, Store, StoredSession};
use axum::body::Bytes;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{readable_feed, readable_feeds, writable_feed, Caller};
use crate::error::{parse_json, ApiError};
use crate::AppState;

/// Most sessions one POST may carry.
pub const MAX_SESSIONS_PER_POST: usize = 10_000;
/// Sessions listed by default, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Sessions an attacker's or a payload's profile is computed from, at most.
const PROFILE_SESSIONS: usize = 10_000;
/// Credentials, sequences and payloads listed in a profile, at most.
const MAX_LISTED: usize = 100;

/// What a caller may see: the feeds it may read, and those whose sensors it may see named.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub feeds: Vec<Feed>,
    pub named: HashSet<i64>,
}

impl Viewer {
    /// The view of a request's caller.
    pub async fn of(state: &AppState, caller: &Caller) -> Result<Viewer, ApiError> {
        let feeds = readable_feeds(state, caller, None).await?;
        let named = feeds
            .iter()
            .filter(|f| names_sensors(caller, f))
            .map(|f| f.id)
            .collect();
        Ok(Viewer { feeds, named })
    }

    /// Everything, named (the offline CLI on the data directory: an administrator).
    pub fn everything(feeds: Vec<Feed>) -> Viewer {
        let named = feeds.iter().map(|f| f.id).collect();
        Viewer { feeds, named }
    }

    fn feed_ids(&self) -> Vec<i64> {
        self.feeds.iter().map(|f| f.id).collect()
    }

    fn feed_name(&self, id: i64) -> String {
        self.feeds
            .iter()
            .find(|f| f.id == id)
            .map(Feed::full_name)
            .unwrap_or_default()
    }
}

/// Whether `caller` may see the sensor names (and honeypot addresses) of `feed`: its owner
/// (with a read or write token) or an admin.
pub fn names_sensors(caller: &Caller, feed: &Feed) -> bool {
    match &caller.0 {
        Some(p) => {
            (p.admin && p.scopes.admin)
                || (p.user_id == feed.owner_id && (p.scopes.read || p.scopes.write))
        }
        None => false,
    }
}

/// The declared network of each registered sensor of the viewer's feeds.
async fn networks(
    store: &dyn Store,
    viewer: &Viewer,
) -> Result<HashMap<SensorRef, String>, ApiError> {
    let sensors = store.list_sensors(Some(&viewer.feed_ids())).await?;
    Ok(sensors
        .into_iter()
        .filter_map(|s| {
            let net = s.network()?;
            Some((
                SensorRef {
                    feed_id: s.feed_id,
                    sensor: s.name,
                },
                net,
            ))
        })
        .collect())
}

/// A stored session as the viewer may see it.
fn session_json(s: &StoredSession, viewer: &Viewer) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("feed_id");
        if !viewer.named.contains(&s.feed_id) {
            m.remove("sensor");
            m.remove("honeypot_ip");
        }
    }
    v
}

/// Counts of sensors and networks, with the sensors named where the viewer may see them.
fn sensors_json(
    sensors: &BTreeSet<SensorRef>,
    nets: &HashMap<SensorRef, String>,
    viewer: &Viewer,
) -> Value {
    let (networks, undeclared) = networks_of(sensors, &|s| nets.get(s).cloned());
    let named: Vec<Value> = sensors
        .iter()
        .filter(|s| viewer.named.contains(&s.feed_id))
        .map(|s| json!({"feed": viewer.feed_name(s.feed_id), "sensor": s.sensor, "network": nets.get(s)}))
        .collect();
    let mut v = json!({"sensors": sensors.len(), "networks": networks.len(), "undeclared_sensors": undeclared});
    if !named.is_empty() {
        v["sensor_names"] = Value::Array(named);
        // Network names only where every sensor behind them may be named.
        if sensors.iter().all(|s| viewer.named.contains(&s.feed_id)) {
            v["network_names"] = json!(networks);
        }
    }
    v
}

// ---------------------------------------------------------------- views

/// Filters of `GET /api/v1/sessions`.
#[derive(Debug, Deserialize, Default)]
pub struct SessionFilters {
    pub attacker: Option<String>,
    pub feed: Option<String>,
    pub sensor: Option<String>,
    pub payload: Option<String>,
    pub limit: Option<String>,
}

fn limit(v: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.min(max)),
            _ => Err(ApiError::invalid(
                "invalid_limit",
                format!("`limit` `{l}`: a whole number of at least 1"),
            )),
        },
    }
}

fn attacker_param(v: &str, opts: &ParseOptions) -> Result<String, ApiError> {
    attacker_address(v, opts)
        .map_err(|m| ApiError::invalid("invalid_attacker", format!("`attacker`: {m}")))
}

fn sha256_param(name: &str, v: &str) -> Result<String, ApiError> {
    payload_hash(v).map_err(|m| ApiError::invalid("invalid_sha256", format!("`{name}`: {m}")))
}

/// The sessions matching `f`, newest first.
pub async fn sessions_view(
    store: &dyn Store,
    viewer: &Viewer,
    f: &SessionFilters,
    opts: &ParseOptions,
) -> Result<Value, ApiError> {
    let mut feed_ids = viewer.feed_ids();
    if let Some(name) = f.feed.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let feed = viewer
            .feeds
            .iter()
            .find(|x| x.full_name() == name)
            .ok_or_else(|| ApiError::not_found(format!("no feed {name}")))?;
        feed_ids = vec![feed.id];
    }
    let sensor = f
        .sensor
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if sensor.is_some() {
        // Filtering by a sensor's name is for those who may see it: only named feeds.
        feed_ids.retain(|id| viewer.named.contains(id));
    }
    let q = SessionQuery {
        attacker: f
            .attacker
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|a| attacker_param(a, opts))
            .transpose()?,
        feed_ids: Some(feed_ids),
        sensor,
        payload: f
            .payload
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|p| sha256_param("payload", p))
            .transpose()?,
        link: None,
        newest_first: true,
        limit: limit(f.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
    };
    let items = store.query_sessions(&q).await?;
    Ok(json!({"items": items.iter().map(|s| session_json(s, viewer)).collect::<Vec<_>>()}))
}

/// Every campaign the viewer's feeds show (at least `min_attackers` attackers each).
async fn all_campaigns(
    store: &dyn Store,
    viewer: &Viewer,
    min_attackers: usize,
) -> Result<(Vec<Campaign>, HashMap<SensorRef, String>), ApiError> {
    let nets = networks(store, viewer).await?;
    let links = store.session_links(Some(&viewer.feed_ids())).await?;
    let found = campaigns(&links, min_attackers, &|s| nets.get(s).cloned());
    Ok((found, nets))
}

fn campaign_json(
    c: &Campaign,
    nets: &HashMap<SensorRef, String>,
    viewer: &Viewer,
    with_attackers: bool,
) -> Value {
    let mut v = json!({
        "id": c.id,
        "kind": c.kind,
        "key": c.key,
        "attackers": c.attackers.len(),
        "sessions": c.sessions,
        "first_seen": c.first_seen,
        "last_seen": c.last_seen,
    });
    if let (Value::Object(m), Value::Object(s)) = (&mut v, sensors_json(&c.sensors, nets, viewer)) {
        m.extend(s);
    }
    if with_attackers {
        v["attacker_list"] = json!(c.attackers);
    }
    v
}

/// An attacker's timeline and profile across the viewer's sensors.
pub async fn attacker_view(
    store: &dyn Store,
    viewer: &Viewer,
    ip: &str,
    list: usize,
    opts: &ParseOptions,
) -> Result<Value, ApiError> {
    let ip = attacker_address(ip, opts).map_err(|m| ApiError::invalid("invalid_attacker", m))?;
    let q = SessionQuery {
        attacker: Some(ip.clone()),
        feed_ids: Some(viewer.feed_ids()),
        limit: PROFILE_SESSIONS,
        ..Default::default()
    };
    let stored = store.query_sessions(&q).await?;
    if stored.is_empty() {
        return Err(ApiError::not_found(format!(
            "no sessions of {ip} in the feeds you may read"
        )));
    }
    // The same log imported into two feeds is one set of sessions (the feeds list names both).
    let sessions = distinct_sessions(&stored, |s| (s.feed_id, s.record.sensor.as_str(), s.record.session.as_str()));
    let nets = networks(store, viewer).await?;
    let refs: Vec<(i64, &SessionRecord)> =
        sessions.iter().map(|s| (s.feed_id, &s.record)).collect();
    let p = attacker_profile(&ip, &refs, &|s| nets.get(s).cloned(), MAX_LISTED);
    // Campaigns it is part of: its link keys that another attacker shares.
    let (all, _) = all_campaigns(store, viewer, 2).await?;
    let mine: Vec<Value> = all
        .iter()
        .filter(|c| {
            p.links.contains(&Link {
                kind: c.kind,
                key: c.key.clone(),
            })
        })
        .map(|c| json!({"id": c.id, "kind": c.kind, "attackers": c.attackers.len()}))
        .collect();
    let feeds: BTreeSet<String> = stored.iter().map(|s| s.feed.clone()).collect();
    let mut v = json!({
        "attacker": p.attacker,
        "first_seen": p.first_seen,
        "last_seen": p.last_seen,
        "sessions": p.sessions,
        "sessions_truncated": stored.len() >= PROFILE_SESSIONS,
        "feeds": feeds,
        "deepest": p.deepest,
        "protocols": p.protocols,
        "logins": p.logins,
        "credentials": p.credentials,
        "command_sequences": p.command_sequences,
        "payloads": p.payloads,
        "hassh": p.hassh,
        "client_versions": p.client_versions,
        "tunnels": p.tunnels,
        "campaigns": mine,
        "timeline": sessions.iter().take(list).map(|s| session_json(s, viewer)).collect::<Vec<_>>(),
    });
    if let (Value::Object(m), Value::Object(s)) = (&mut v, sensors_json(&p.sensors, &nets, viewer))
    {
        m.extend(s);
    }
    Ok(v)
}

/// Which attackers sent a payload, on how many sensors and networks.
pub async fn payload_view(
    store: &dyn Store,
    viewer: &Viewer,
    sha256: &str,
) -> Result<Value, ApiError> {
    let sha = sha256_param("sha256", sha256)?;
    let q = SessionQuery {
        payload: Some(sha.clone()),
        feed_ids: Some(viewer.feed_ids()),
        limit: PROFILE_SESSIONS,
        ..Default::default()
    };
    let stored = store.query_sessions(&q).await?;
    if stored.is_empty() {
        return Err(ApiError::not_found(format!(
            "no sessions with payload {sha} in the feeds you may read"
        )));
    }
    let sessions = distinct_sessions(&stored, |s| (s.feed_id, s.record.sensor.as_str(), s.record.session.as_str()));
    let nets = networks(store, viewer).await?;
    let mut sensors = BTreeSet::new();
    let mut urls: Vec<String> = Vec::new();
    let mut attackers: BTreeMap<
        String,
        (
            u64,
            Option<apiary_store::Timestamp>,
            Option<apiary_store::Timestamp>,
        ),
    > = BTreeMap::new();
    let (mut first, mut last) = (None, None);
    for s in &sessions {
        let r = &s.record;
        sensors.insert(SensorRef {
            feed_id: s.feed_id,
            sensor: r.sensor.clone(),
        });
        for t in r.downloads.iter().chain(&r.uploads) {
            if t.sha256.as_deref() == Some(sha.as_str()) {
                if let Some(u) = &t.url {
                    if !urls.contains(u) && urls.len() < MAX_LISTED {
                        urls.push(u.clone());
                    }
                }
            }
        }
        let when = r.start.or(r.end);
        first = first.min(when).or(when);
        last = last.max(r.end.or(r.start));
        if let Some(a) = &r.attacker {
            let e = attackers.entry(a.clone()).or_insert((0, when, when));
            e.0 += 1;
            e.1 = e.1.min(when).or(when);
            e.2 = e.2.max(r.end.or(r.start));
        }
    }
    let list: Vec<Value> = attackers
        .iter()
        .map(
            |(a, (n, f, l))| json!({"attacker": a, "sessions": n, "first_seen": f, "last_seen": l}),
        )
        .collect();
    let mut v = json!({
        "sha256": sha,
        "campaign": apiary_core::sessions::campaign_id(LinkKind::Payload, &sha),
        "sessions": sessions.len(),
        "first_seen": first,
        "last_seen": last,
        "urls": urls,
        "attackers": list,
    });
    if let (Value::Object(m), Value::Object(s)) = (&mut v, sensors_json(&sensors, &nets, viewer)) {
        m.extend(s);
    }
    Ok(v)
}

/// Filters of `GET /api/v1/attackers`.
#[derive(Debug, Deserialize, Default)]
pub struct AttackerFilters {
    pub min_sensors: Option<String>,
    pub min_networks: Option<String>,
    pub limit: Option<String>,
}

fn count_param(name: &str, v: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("invalid_count", format!("`{name}`: a whole number"))),
    }
}

/// Attackers seen by several sensors (`min_sensors`, default 2) and declared networks
/// (`min_networks`, default 0): the correlation across honeynets. Most networks first, then
/// most sensors, then most sessions.
pub async fn attackers_view(
    store: &dyn Store,
    viewer: &Viewer,
    f: &AttackerFilters,
) -> Result<Value, ApiError> {
    let min_sensors = count_param("min_sensors", f.min_sensors.as_deref(), 2)?;
    let min_networks = count_param("min_networks", f.min_networks.as_deref(), 0)?;
    let lim = limit(f.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let nets = networks(store, viewer).await?;
    let pairs = store.attacker_sensors(Some(&viewer.feed_ids())).await?;
    struct Acc {
        sensors: BTreeSet<SensorRef>,
        sessions: u64,
        first: Option<apiary_store::Timestamp>,
        last: Option<apiary_store::Timestamp>,
    }
    let mut by: BTreeMap<&str, Acc> = BTreeMap::new();
    for p in &pairs {
        let a = by.entry(&p.attacker).or_insert(Acc {
            sensors: BTreeSet::new(),
            sessions: 0,
            first: None,
            last: None,
        });
        a.sensors.insert(SensorRef {
            feed_id: p.feed_id,
            sensor: p.sensor.clone(),
        });
        a.sessions += p.sessions;
        a.first = match (a.first, p.first_seen) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.last = a.last.max(p.last_seen);
    }
    let mut rows: Vec<(usize, usize, u64, &str, &Acc)> = by
        .iter()
        .filter(|(_, a)| a.sensors.len() >= min_sensors)
        .map(|(ip, a)| {
            let (n, _) = networks_of(&a.sensors, &|s| nets.get(s).cloned());
            (n.len(), a.sensors.len(), a.sessions, *ip, a)
        })
        .filter(|r| r.0 >= min_networks)
        .collect();
    rows.sort_by(|x, y| {
        y.0.cmp(&x.0)
            .then(y.1.cmp(&x.1))
            .then(y.2.cmp(&x.2))
            .then(x.3.cmp(y.3))
    });
    let total = rows.len();
    let items: Vec<Value> = rows
        .into_iter()
        .take(lim)
        .map(|(_, _, sessions, ip, a)| {
            let mut v = json!({"attacker": ip, "sessions": sessions, "first_seen": a.first, "last_seen": a.last});
            if let (Value::Object(m), Value::Object(x)) = (&mut v, sensors_json(&a.sensors, &nets, viewer)) {
                m.extend(x);
            }
            v
        })
        .collect();
    Ok(json!({"total": total, "items": items}))
}

/// Filters of `GET /api/v1/campaigns`.
#[derive(Debug, Deserialize, Default)]
pub struct CampaignFilters {
    pub kind: Option<String>,
    pub min_attackers: Option<String>,
    pub limit: Option<String>,
}

/// Campaigns: link keys shared by several attackers, most attackers first.
pub async fn campaigns_view(
    store: &dyn Store,
    viewer: &Viewer,
    f: &CampaignFilters,
) -> Result<Value, ApiError> {
    let kind = match f.kind.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(k) => Some(LinkKind::from_name(k).ok_or_else(|| {
            ApiError::invalid(
                "invalid_kind",
                format!("`kind` {k:?}: payload, ttylog, commands or hassh_credentials"),
            )
        })?),
    };
    let min = match f
        .min_attackers
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => 2,
        Some(m) => m.parse::<usize>().ok().filter(|m| *m >= 2).ok_or_else(|| {
            ApiError::invalid(
                "invalid_min_attackers",
                "`min_attackers`: a whole number of at least 2",
            )
        })?,
    };
    let lim = limit(f.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let (all, nets) = all_campaigns(store, viewer, min).await?;
    let total = all
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .count();
    let items: Vec<Value> = all
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .take(lim)
        .map(|c| campaign_json(c, &nets, viewer, false))
        .collect();
    Ok(json!({"total": total, "items": items}))
}

/// One campaign: its attackers, sensors and networks, and what links them.
pub async fn campaign_view(
    store: &dyn Store,
    viewer: &Viewer,
    id: &str,
) -> Result<Value, ApiError> {
    let (all, nets) = all_campaigns(store, viewer, 2).await?;
    let c = all
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    let mut v = campaign_json(c, &nets, viewer, true);
    // What the key stands for, read off one of its sessions.
    let q = SessionQuery {
        feed_ids: Some(viewer.feed_ids()),
        link: Some(Link {
            kind: c.kind,
            key: c.key.clone(),
        }),
        limit: 1,
        ..Default::default()
    };
    if let Some(s) = store.query_sessions(&q).await?.into_iter().next() {
        match c.kind {
            LinkKind::Commands => {
                v["commands"] = json!(command_sequence(&s.record.commands)
                    .map(|x| x.split('\n').map(str::to_owned).collect::<Vec<_>>()));
                v["example"] = json!(s.record.commands);
            }
            LinkKind::HasshCredentials => {
                v["hassh"] = json!(s.record.hassh);
                v["credentials"] = json!(credential_list(&s.record.credentials).map(|l| l
                    .split('\n')
                    .map(|x| x
                        .split_once('\t')
                        .map(|(u, p)| json!([u, p]))
                        .unwrap_or(json!([x])))
                    .collect::<Vec<_>>()));
            }
            LinkKind::Payload => {
                let urls: Vec<&String> = s
                    .record
                    .downloads
                    .iter()
                    .chain(&s.record.uploads)
                    .filter(|t| t.sha256.as_deref() == Some(c.key.as_str()))
                    .filter_map(|t| t.url.as_ref())
                    .collect();
                v["urls"] = json!(urls);
            }
            LinkKind::Ttylog => {}
        }
    }
    Ok(v)
}

// ---------------------------------------------------------------- handlers

/// `GET /api/v1/sessions`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(f): QueryString<SessionFilters>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&state, &caller).await?;
    Ok(Json(
        sessions_view(state.store.as_ref(), &viewer, &f, &state.parse_options).await?,
    ))
}

#[derive(Debug, Deserialize, Default)]
pub struct ListParam {
    pub limit: Option<String>,
}

/// `GET /api/v1/attackers`
pub async fn attackers(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(f): QueryString<AttackerFilters>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&state, &caller).await?;
    Ok(Json(
        attackers_view(state.store.as_ref(), &viewer, &f).await?,
    ))
}

/// `GET /api/v1/attackers/{ip}`
pub async fn attacker(
    State(state): State<AppState>,
    caller: Caller,
    Path(ip): Path<String>,
    QueryString(p): QueryString<ListParam>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&state, &caller).await?;
    let list = limit(p.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok(Json(
        attacker_view(
            state.store.as_ref(),
            &viewer,
            &ip,
            list,
            &state.parse_options,
        )
        .await?,
    ))
}

/// `GET /api/v1/payloads/{sha256}`
pub async fn payload(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&state, &caller).await?;
    Ok(Json(
        payload_view(state.store.as_ref(), &viewer, &sha).await?,
    ))
}

/// `GET /api/v1/campaigns`
pub async fn campaigns_list(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(f): QueryString<CampaignFilters>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&state, &caller).await?;
    Ok(Json(
        campaigns_view(state.store.as_ref(), &viewer, &f).await?,
    ))
}

/// `GET /api/v1/campaigns/{id}`
pub async fn campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let viewer = Viewer::of(&state, &caller).await?;
    Ok(Json(
        campaign_view(state.store.as_ref(), &viewer, &id).await?,
    ))
}

/// `POST /api/v1/feeds/{owner}/{feed}/sessions`: a JSON array, one object, or JSON lines of
/// session records. Each is checked (`SessionRecord::check`); refused ones are listed with
/// their index (and line), the rest stored. 201 when something new was stored, 200 when all
/// were already stored, 422 when every one was refused.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
    // (index, line, the item or why it is refused)
    let mut items: Vec<(usize, Option<usize>, Result<Value, String>)> = Vec::new();
    if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-lines") {
        for (i, l) in body.split(|b| *b == b'\n').enumerate() {
            let text = String::from_utf8_lossy(l);
            if text.trim().is_empty() {
                continue;
            }
            items.push((
                items.len(),
                Some(i + 1),
                serde_json::from_str(&text).map_err(|e| format!("malformed JSON: {e}")),
            ));
        }
    } else {
        match serde_json::from_slice::<Value>(body).map_err(ApiError::bad_json)? {
            Value::Array(a) => {
                items.extend(a.into_iter().enumerate().map(|(i, v)| (i, None, Ok(v))))
            }
            o @ Value::Object(_) => items.push((0, None, Ok(o))),
            _ => {
                return Err(ApiError::invalid(
                    "invalid_body",
                    "the body must be a session object or a JSON array of them",
                ))
            }
        }
    }
    if items.is_empty() {
        return Err(ApiError::invalid("empty", "the body holds no sessions"));
    }
    if items.len() > MAX_SESSIONS_PER_POST {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_sessions",
            format!(
                "{} sessions in one request; send at most {MAX_SESSIONS_PER_POST}",
                items.len()
            ),
        ));
    }
    let mut good = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    let now = chrono::Utc::now();
    for (index, line, item) in items {
        let checked = item.map_err(|m| ("invalid_session", m)).and_then(|v| {
            let mut r: SessionRecord =
                serde_json::from_value(v).map_err(|e| ("invalid_session", format!("not a session record: {e}")))?;
            r.check(&state.parse_options).map_err(|m| ("invalid_session", m))?;
            // The one rule for reported times (in_future, before 1970), and end not before start.
            r.check_times(now)?;
            Ok(r)
        });
        match checked {
            Ok(record) => good.push(NewSession { feed_id: feed.id, record }),
            Err((code, message)) => rejected.push(json!({"index": index, "line": line, "code": code, "message": message})),
        }
    }
    let outcome = if good.is_empty() {
        Default::default()
    } else {
        state.store.append_sessions(good).await?
    };
    let status = if outcome.stored + outcome.replaced + outcome.duplicates == 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if outcome.stored + outcome.replaced > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(
            json!({"stored": outcome.stored, "replaced": outcome.replaced, "duplicates": outcome.duplicates, "rejected": rejected}),
        ),
    ))
}

/// One feed's sensors as the viewer may see them.
pub async fn sensors_view(store: &dyn Store, feed: &Feed, named: bool) -> Result<Value, ApiError> {
    let registered = store.list_sensors(Some(&[feed.id])).await?;
    let seen = store.sensors_seen(Some(&[feed.id])).await?;
    let mut rows: BTreeMap<String, Value> = BTreeMap::new();
    for s in &registered {
        rows.insert(
            s.name.clone(),
            json!({"name": s.name, "declared": true, "asn": s.asn, "prefix": s.prefix, "network": s.network(), "sessions": 0}),
        );
    }
    for s in &seen {
        let row = rows
            .entry(s.name.clone())
            .or_insert_with(|| json!({"name": s.name, "declared": false, "network": null}));
        row["sessions"] = json!(s.sessions);
        row["first_seen"] = json!(s.first_seen);
        row["last_seen"] = json!(s.last_seen);
    }
    let networks: BTreeSet<String> = registered.iter().filter_map(Sensor::network).collect();
    let undeclared = rows.values().filter(|r| r["declared"] == false).count();
    let mut v = json!({
        "feed": feed.full_name(),
        "sensors": rows.len(),
        "declared": registered.len(),
        "undeclared": undeclared,
        "networks": networks.len(),
    });
    if named {
        v["items"] = Value::Array(rows.into_values().collect());
    }
    Ok(v)
}

/// `GET /api/v1/feeds/{owner}/{feed}/sensors`: named for the owner and admins, counts for
/// every other reader.
pub async fn sensors(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let feed = readable_feed(&state, &caller, &owner, &name).await?;
    Ok(Json(
        sensors_view(state.store.as_ref(), &feed, names_sensors(&caller, &feed)).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SensorBody {
    name: String,
    asn: Option<Value>,
    prefix: Option<String>,
}

/// An ASN as a number or `AS64500`.
pub fn parse_asn(v: &Value) -> Result<Option<u32>, String> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err("`asn` must be a number such as 64500 or AS64500".into()),
    };
    let digits = text
        .strip_prefix("AS")
        .or_else(|| text.strip_prefix("as"))
        .unwrap_or(&text);
    match digits.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(format!(
            "`asn` {text:?} is not an AS number (1 to 4294967295)"
        )),
    }
}

/// A declared prefix: an address or CIDR, as the core writes it (an address is its /32 or /128).
pub fn parse_prefix(v: &str, opts: &ParseOptions) -> Result<String, String> {
    let ind = parse(v, None, opts).map_err(|e| format!("`prefix`: {}", e.message))?;
    if !ind.itype.is_address() {
        return Err(format!("`prefix` {v:?} is not an address or CIDR"));
    }
    Ok(if ind.is_cidr() {
        ind.value
    } else if ind.itype == IType::Ipv6 {
        format!("{}/128", ind.value)
    } else {
        format!("{}/32", ind.value)
    })
}

/// `POST /api/v1/feeds/{owner}/{feed}/sensors`: register a sensor (or change its network).
pub async fn add_sensor(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    let b: SensorBody = parse_json(&body)?;
    let asn = b
        .asn
        .as_ref()
        .map(parse_asn)
        .transpose()
        .map_err(|m| ApiError::invalid("invalid_asn", m))?
        .flatten();
    let prefix = b
        .prefix
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| parse_prefix(p, &state.parse_options))
        .transpose()
        .map_err(|m| ApiError::invalid("invalid_prefix", m))?;
    let s = state
        .store
        .upsert_sensor(NewSensor {
            feed_id: feed.id,
            name: b.name.trim().to_owned(),
            asn,
            prefix,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"feed": feed.full_name(), "name": s.name, "asn": s.asn, "prefix": s.prefix, "network": s.network()}),
        ),
    ))
}

/// `DELETE /api/v1/feeds/{owner}/{feed}/sensors/{name}`
pub async fn remove_sensor(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name, sensor)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    state.store.delete_sensor(feed.id, &sensor).await?;
    Ok(Json(json!({"deleted": sensor, "feed": feed.full_name()})))
}
