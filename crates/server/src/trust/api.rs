//! The trust routes (docs/trust.md):
//!
//! - `GET /api/v1/scores/{*value}`: the stored score and its explanation. Admins see the feeds
//!   of each group named; everyone else sees how many sources each group holds.
//! - `GET /api/v1/sources`: the readable feeds as sources (tier, reliability, leads).
//! - `PUT /api/v1/sources/{owner}/{feed}/tier` `{"tier": "seed"}` (admin; optional `"asn"`).
//! - `POST /api/v1/false-positives` `{"value", "reason"}` (any user with a token, rate-limited).
//! - `POST /api/v1/feeds/{owner}/{feed}/retractions` `{"value", "reason"}` (the feed's writer).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use apiary_core::trust::score::{ScoreParams, ScoreTier};
use apiary_core::trust::Tier;
use apiary_core::{parse, IType};
use apiary_store::{Feedback, FeedbackKind, IndicatorScore, NewFeedback, Query, Reader, Source};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{readable_feeds, writable_feed, Caller};
use crate::error::{parse_json, ApiError};
use crate::views::time;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/scores/{*value}", get(score))
        .route("/api/v1/sources", get(sources))
        .route("/api/v1/sources/{owner}/{feed}/tier", put(set_tier))
        .route("/api/v1/false-positives", post(false_positive))
        .route("/api/v1/feeds/{owner}/{feed}/retractions", post(retract))
}

/// The tier thresholds, for readers of a score.
pub fn thresholds() -> Value {
    let p = ScoreParams::default();
    json!({
        "suspicious": (p.suspicious * 100.0).round() as u32,
        "block": (p.block * 100.0).round() as u32,
        "hold_below": (p.hold_below * 100.0).round() as u32,
        "block_needs": "confidence >= block, and a seed group or two established groups, and not held",
    })
}

/// A stored score as the API shows it: `names` (feed id → `owner/name`) for admins; without
/// it, each group's sources are a count.
pub fn score_view(s: &IndicatorScore, names: Option<&HashMap<i64, String>>, feedback: &[Feedback]) -> Value {
    let mut ex = s.explanation.clone();
    if let Some(terms) = ex.get_mut("terms").and_then(Value::as_array_mut) {
        for t in terms.iter_mut() {
            let Some(obj) = t.as_object_mut() else { continue };
            let Some(srcs) = obj.get("sources").and_then(Value::as_array).cloned() else { continue };
            match names {
                Some(names) => {
                    let named: Vec<Value> = srcs
                        .into_iter()
                        .map(|mut v| {
                            let id = v.get("source").and_then(Value::as_i64).or_else(|| v.as_i64()).unwrap_or(-1);
                            let name = names.get(&id).cloned().unwrap_or_else(|| format!("feed {id}"));
                            match v.as_object_mut() {
                                Some(o) => {
                                    o.insert("feed".into(), Value::String(name));
                                    v
                                }
                                None => json!({"source": id, "feed": name}),
                            }
                        })
                        .collect();
                    obj.insert("sources".into(), Value::Array(named));
                }
                None => {
                    obj.insert("sources".into(), json!(srcs.len()));
                }
            }
        }
    }
    let fp = feedback.iter().filter(|f| f.kind == FeedbackKind::FalsePositive).count();
    let retractions = feedback.iter().filter(|f| f.kind == FeedbackKind::Retraction).count();
    json!({
        "indicator": s.indicator,
        "itype": s.itype.as_str(),
        "confidence": s.confidence,
        "tier": s.tier.as_str(),
        "log_odds": s.log_odds,
        "excluded": ex.get("excluded").cloned().unwrap_or(Value::Null),
        "held": ex.get("held").cloned().unwrap_or(Value::Bool(false)),
        "seed_groups": ex.get("seed_groups").cloned().unwrap_or(json!(0)),
        "established_groups": ex.get("established_groups").cloned().unwrap_or(json!(0)),
        "block_withheld": ex.get("block_withheld").cloned().unwrap_or(Value::Null),
        "terms": ex.get("terms").cloned().unwrap_or(json!([])),
        "thresholds": thresholds(),
        "feedback": {"false_positives": fp, "retractions": retractions},
        "scored_at": time(s.scored_at),
    })
}

/// Feed id → `owner/name` of every feed.
pub async fn feed_names(state: &AppState) -> Result<HashMap<i64, String>, ApiError> {
    Ok(state.store.list_feeds(None).await?.into_iter().map(|f| (f.id, f.full_name())).collect())
}

fn normalise(state: &AppState, value: &str) -> Result<apiary_core::Indicator, ApiError> {
    parse(value.trim(), None, &state.parse_options).map_err(|r| ApiError::invalid(r.code.as_str(), format!("`value`: {}", r.message)))
}

/// `GET /api/v1/scores/{value}`
async fn score(State(state): State<AppState>, caller: Caller, Path(value): Path<String>) -> Result<Json<Value>, ApiError> {
    let ind = normalise(&state, &value)?;
    // Only values the caller may see in some feed: a score must not reveal a private feed's entry.
    let visible = caller.is_admin()
        || !crate::access::query(&state, &caller, &Query { value: Some(ind.value.clone()), reader: caller.reader(), limit: 100, ..Query::default() }).await?.items.is_empty();
    if !visible {
        return Err(ApiError::not_found(format!("{} is not in any feed you may read", ind.value)));
    }
    let Some(s) = state.store.get_score(&ind.value).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_scored", format!("{} is not scored yet (the scoring job runs every second)", ind.value)));
    };
    let feedback = state.store.feedback_of(&ind.value).await?;
    let names = if caller.is_admin() { Some(feed_names(&state).await?) } else { None };
    Ok(Json(score_view(&s, names.as_ref(), &feedback)))
}

/// A source as the API shows it; the declared network only to admins and the feed's owner
/// (sensor locations are secrets).
pub fn source_view(s: &Source, show_network: bool) -> Value {
    json!({
        "feed": s.feed,
        "tier": s.tier.as_str(),
        "pinned": s.pinned,
        "reliability": (s.mean() * 1000.0).round() / 1000.0,
        "alpha": s.alpha,
        "beta": s.beta,
        "leads": s.leads,
        "penalties": s.penalties,
        "last_penalty": s.last_penalty.map(time),
        "group": s.group_id,
        "asn": if show_network { json!(s.asn) } else { Value::Null },
        "updated_at": s.updated_at.map(time),
    })
}

/// `GET /api/v1/sources`: the feeds the caller may read, as sources.
async fn sources(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let readable: std::collections::HashSet<i64> = readable_feeds(&state, &caller, None).await?.into_iter().map(|f| f.id).collect();
    let me = caller.0.as_ref().map(|p| p.user_id);
    let items: Vec<Value> = state
        .store
        .list_sources()
        .await?
        .iter()
        .filter(|s| readable.contains(&s.feed_id))
        .map(|s| source_view(s, caller.is_admin() || me == Some(s.owner_id)))
        .collect();
    Ok(Json(json!({"items": items})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierBody {
    tier: Option<String>,
    asn: Option<Option<i64>>,
}

pub fn parse_tier(s: &str) -> Result<Tier, ApiError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "seed" => Ok(Tier::Seed),
        "established" => Ok(Tier::Established),
        "probation" => Ok(Tier::Probation),
        "quarantined" => Ok(Tier::Quarantined),
        other => Err(ApiError::invalid("unknown_tier", format!("tier `{other}`: use seed, established, probation or quarantined"))),
    }
}

/// `PUT /api/v1/sources/{owner}/{feed}/tier` (admin).
async fn set_tier(State(state): State<AppState>, caller: Caller, Path((owner, name)): Path<(String, String)>, body: Bytes) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let b: TierBody = parse_json(&body)?;
    if b.tier.is_none() && b.asn.is_none() {
        return Err(ApiError::invalid("missing_field", "send `tier` (seed, established, probation, quarantined) and/or `asn`"));
    }
    // Everything is checked before anything is written: a bad tier must not leave a new ASN.
    let tier = b.tier.as_deref().map(parse_tier).transpose()?;
    if b.asn.is_some_and(|asn| asn.is_some_and(|a| !(0..=u32::MAX as i64).contains(&a))) {
        return Err(ApiError::invalid("invalid_asn", "`asn`: a number from 0 to 4294967295, or null"));
    }
    let mut s = None;
    if let Some(asn) = b.asn {
        s = Some(state.store.set_source_asn(&owner, &name, asn).await?);
    }
    if let Some(t) = tier {
        s = Some(state.store.set_source_tier(&owner, &name, t).await?);
    }
    let s = s.expect("one of tier and asn was given");
    Ok(Json(source_view(&s, true)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    value: String,
    reason: String,
    #[serde(default)]
    itype: Option<String>,
}

/// False-positive reports a user may file per hour (per hub node).
pub const FALSE_POSITIVES_PER_HOUR: usize = 30;

fn fp_allowed(user: i64) -> Result<(), ApiError> {
    static RECENT: OnceLock<Mutex<HashMap<i64, VecDeque<Instant>>>> = OnceLock::new();
    let mut map = RECENT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let q = map.entry(user).or_default();
    let hour = Duration::from_secs(3600);
    while q.front().is_some_and(|t| t.elapsed() >= hour) {
        q.pop_front();
    }
    if q.len() >= FALSE_POSITIVES_PER_HOUR {
        let wait = q.front().map_or(60, |t| hour.saturating_sub(t.elapsed()).as_secs().max(1));
        let mut e = ApiError::rate_limited(wait);
        e.message = format!("at most {FALSE_POSITIVES_PER_HOUR} false-positive reports an hour; retry in {wait} s");
        return Err(e);
    }
    q.push_back(Instant::now());
    Ok(())
}

fn feedback_view(f: &Feedback) -> Value {
    json!({
        "id": f.id,
        "kind": f.kind.as_str(),
        "indicator": f.indicator,
        "itype": f.itype.as_str(),
        "feed": f.feed,
        "user": f.user,
        "reason": f.reason,
        "created_at": time(f.created_at),
    })
}

fn feedback_body(state: &AppState, body: &[u8]) -> Result<(apiary_core::Indicator, String), ApiError> {
    let b: FeedbackBody = parse_json(body)?;
    let hint = match b.itype.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(t) => Some(IType::from_name(t).ok_or_else(|| ApiError::invalid("unknown_type", format!("unknown itype `{t}`")))?),
        None => None,
    };
    let ind = parse(b.value.trim(), hint, &state.parse_options).map_err(|r| ApiError::invalid(r.code.as_str(), format!("`value`: {}", r.message)))?;
    let reason = b.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::invalid("missing_reason", "`reason`: say why (it is kept with the report)"));
    }
    if reason.len() > apiary_store::trust::MAX_REASON {
        return Err(ApiError::invalid("reason_too_long", format!("`reason`: at most {} bytes", apiary_store::trust::MAX_REASON)));
    }
    Ok((ind, reason))
}

/// `POST /api/v1/false-positives` (any user with a token).
async fn false_positive(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = caller.require_write()?;
    let (ind, reason) = feedback_body(&state, &body)?;
    // A report on a value the reporter cannot see anywhere would reveal that it exists.
    let q = Query { value: Some(ind.value.clone()), reader: caller.reader(), limit: 100, ..Query::default() };
    if crate::access::query(&state, &caller, &q).await?.items.is_empty() {
        return Err(ApiError::not_found(format!("{} is not in any feed you may read", ind.value)));
    }
    fp_allowed(p.user_id)?;
    let f = state
        .store
        .add_feedback(NewFeedback { kind: FeedbackKind::FalsePositive, indicator: ind.value, itype: ind.itype, feed_id: None, user_id: p.user_id, reason })
        .await?;
    Ok((StatusCode::CREATED, Json(feedback_view(&f))))
}

/// `POST /api/v1/feeds/{owner}/{feed}/retractions` (the feed's owner or an admin).
async fn retract(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let feed = writable_feed(&state, &caller, &owner, &name).await?;
    let p = caller.principal()?;
    let (ind, reason) = feedback_body(&state, &body)?;
    // Only a value the feed listed can be retracted (RED included: the writer may see it).
    let listed = Query { value: Some(ind.value.clone()), feed_ids: Some(vec![feed.id]), reader: Some(Reader { user_id: feed.owner_id, admin: true }), limit: 1, ..Query::default() };
    if state.store.query(&listed).await?.items.is_empty() {
        return Err(ApiError::not_found(format!("{} is not in {owner}/{name}", ind.value)));
    }
    let f = state
        .store
        .add_feedback(NewFeedback { kind: FeedbackKind::Retraction, indicator: ind.value, itype: ind.itype, feed_id: Some(feed.id), user_id: p.user_id, reason })
        .await?;
    // Out of this node's streams at once (other nodes read it within a second).
    state.retractions.record(feed.id, &f.indicator);
    Ok((StatusCode::CREATED, Json(feedback_view(&f))))
}

/// The hub's score of a value as the CSIRTG `predict` route and the indicator detail show it.
pub fn score_summary(s: Option<&IndicatorScore>) -> Value {
    match s {
        Some(s) => json!({"confidence": s.confidence, "tier": s.tier.as_str(), "scored_at": time(s.scored_at)}),
        None => json!({"confidence": Value::Null, "tier": Value::Null, "scored_at": Value::Null}),
    }
}

/// Whether a tier meets a floor.
pub fn meets(tier: ScoreTier, floor: ScoreTier) -> bool {
    tier >= floor
}
