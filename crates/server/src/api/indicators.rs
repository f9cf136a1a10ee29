//! Reading indicators: `GET /api/v1/indicators` (query), `GET /api/v1/indicators/{value}`
//! (detail), `GET /api/v1/feeds/{owner}/{feed}/indicators` (one feed's records).
//! Every value in a filter is normalised by `apiary_core::parse` first, exactly like a published one.

use std::collections::BTreeSet;

use apiary_core::{parse, parse_time, IType};
use apiary_store::{Feed, FeedRecord, Query};
use axum::extract::{Path, Query as QueryString, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{readable_feed, Caller};
use crate::error::ApiError;
use crate::intake::parse_tags;
use crate::{views, AppState};

/// Query-string filters shared by the query and feed-records routes.
#[derive(Debug, Deserialize, Default)]
pub struct Filters {
    pub q: Option<String>,
    pub within: Option<String>,
    pub domain: Option<String>,
    pub itype: Option<String>,
    pub tags: Option<String>,
    pub feed: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Normalise a filter value with the core, naming the parameter when it is refused.
fn normalise(param: &str, value: &str, hint: Option<IType>, state: &AppState) -> Result<apiary_core::Indicator, ApiError> {
    parse(value, hint, &state.parse_options).map_err(|r| {
        ApiError::invalid(r.code.as_str(), format!("`{param}`: {}", r.message))
    })
}

fn time_param(param: &str, value: Option<&str>) -> Result<Option<apiary_store::Timestamp>, ApiError> {
    value
        .map(|v| parse_time(v).map_err(|r| ApiError::invalid(r.code.as_str(), format!("`{param}`: {}", r.message))))
        .transpose()
}

/// Page size: the default when absent, at most `max_limit`, never zero.
pub fn page_limit(state: &AppState, limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(state.config.default_limit),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.min(state.config.max_limit)),
            _ => Err(ApiError::invalid("invalid_limit", format!("`limit` `{l}`: a whole number of at least 1"))),
        },
    }
}

/// Turn filters into a store query for `caller` (restricted to `feed` when given).
pub async fn build_query(state: &AppState, caller: &Caller, f: &Filters, feed: Option<&Feed>) -> Result<Query, ApiError> {
    let mut q = Query { reader: caller.reader(), limit: page_limit(state, nonempty(&f.limit))?, ..Query::default() };
    if let Some(v) = nonempty(&f.q) {
        q.value = Some(normalise("q", v, None, state)?.value);
    }
    if let Some(v) = nonempty(&f.within) {
        let ind = normalise("within", v, None, state)?;
        if !ind.itype.is_address() {
            return Err(ApiError::invalid("type_mismatch", format!("`within` `{v}` is not an address or CIDR")));
        }
        q.within = Some(ind.value);
    }
    if let Some(v) = nonempty(&f.domain) {
        q.domain = Some(normalise("domain", v, Some(IType::Fqdn), state)?.value);
    }
    if let Some(v) = nonempty(&f.itype) {
        q.itype = Some(IType::from_name(v).ok_or_else(|| ApiError::invalid("unknown_type", format!("unknown itype `{v}`")))?);
    }
    if let Some(v) = nonempty(&f.tags) {
        q.tags = parse_tags(Value::String(v.to_string())).map_err(|r| ApiError::invalid(r.code, r.message))?;
    }
    q.since = time_param("since", nonempty(&f.since))?;
    q.until = time_param("until", nonempty(&f.until))?;
    q.cursor = nonempty(&f.cursor).map(str::to_string);
    match (feed, nonempty(&f.feed)) {
        (Some(feed), _) => q.feed_ids = Some(vec![feed.id]),
        (None, Some(name)) => {
            let (owner, name) = name
                .split_once('/')
                .ok_or_else(|| ApiError::invalid("invalid_feed", format!("`feed` `{name}`: write it as owner/name")))?;
            q.feed_ids = Some(vec![readable_feed(state, caller, owner, name).await?.id]);
        }
        (None, None) => {}
    }
    Ok(q)
}

/// One page of records as `{"items", "next"}`, each with its network fields and the hub's score.
pub async fn page_json(state: &AppState, items: &[FeedRecord], next: Option<String>) -> Result<Value, ApiError> {
    let scores = views::Scores::of(state.store.as_ref(), items).await?;
    let net = state.config.asn.get();
    Ok(json!({"items": items.iter().map(|r| views::record_in(&net, &scores, r)).collect::<Vec<_>>(), "next": next}))
}

/// `GET /api/v1/indicators?q=&within=&domain=&itype=&tags=&feed=&since=&until=&limit=&cursor=`
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(f): QueryString<Filters>,
) -> Result<Json<Value>, ApiError> {
    let q = build_query(&state, &caller, &f, None).await?;
    let page = crate::access::query(&state, &caller, &q).await?;
    Ok(Json(page_json(&state, &page.items, page.next).await?))
}

/// `GET /api/v1/feeds/{owner}/{feed}/indicators?...`
pub async fn feed_records(
    State(state): State<AppState>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    QueryString(f): QueryString<Filters>,
) -> Result<Json<Value>, ApiError> {
    let feed = readable_feed(&state, &caller, &owner, &name).await?;
    let q = build_query(&state, &caller, &f, Some(&feed)).await?;
    let page = crate::access::query(&state, &caller, &q).await?;
    Ok(Json(page_json(&state, &page.items, page.next).await?))
}

/// How many sightings the detail view lists.
const DETAIL_SIGHTINGS: usize = 100;

/// `GET /api/v1/indicators/{value}`: the value across the feeds the caller may read, its
/// per-feed records and its latest sightings. The summary is computed over those readable
/// records only, so it never reveals private feeds.
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(value): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ind = normalise("value", &value, None, &state)?;
    let q = Query { value: Some(ind.value.clone()), reader: caller.reader(), limit: state.config.max_limit, ..Query::default() };
    let records = crate::access::query(&state, &caller, &q).await?.items;
    if records.is_empty() {
        return Err(ApiError::not_found(format!("{} is not in any feed you may read", ind.value)));
    }
    let feed_ids: Vec<i64> = records.iter().map(|r| r.feed_id).collect();
    let sightings = crate::access::sightings_of(&state, &caller, &ind.value, Some(&feed_ids), DETAIL_SIGHTINGS).await?;
    let owners: BTreeSet<&str> = records.iter().filter_map(|r| r.feed.split('/').next()).collect();
    let net = state.config.asn.get();
    let summary = json!({
        "firsttime": records.iter().map(|r| r.firsttime).min().map(views::time),
        "lasttime": records.iter().map(|r| r.lasttime).max().map(views::time),
        "count": records.iter().map(|r| r.count).sum::<i64>(),
        "feeds": records.len(),
        "sources": owners.len(),
        "tags": records.iter().flat_map(|r| r.tags.iter()).collect::<BTreeSet<_>>(),
    });
    // The hub's own score (the scoring job's, crate::trust): GET /api/v1/scores/{value} explains it.
    let score = state.store.get_score(&ind.value).await?;
    let scores = views::Scores::one(&ind.value, score.as_ref().map(|s| (s.confidence, s.tier)));
    Ok(Json(json!({
        "indicator": ind.value,
        "itype": ind.itype.as_str(),
        "confidence": score.as_ref().map(|s| s.confidence),
        "tier": score.as_ref().map(|s| s.tier.as_str()),
        "score": crate::trust::api::score_summary(score.as_ref()),
        "reserved": ind.reserved.map(|r| r.as_str()),
        "summary": summary,
        "records": records.iter().map(|r| views::record_in(&net, &scores, r)).collect::<Vec<_>>(),
        "sightings": sightings.iter().map(|s| views::sighting_in(&net, s)).collect::<Vec<_>>(),
    })))
}
