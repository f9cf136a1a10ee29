//! Native JSON views of stored records (field names as in docs/native-api.md; times RFC 3339 UTC).
//! The CSIRTG routes have their own views in [`crate::csirtg`].

use std::collections::{BTreeSet, HashMap};

use apiary_core::enrich::Enrichment;
use apiary_core::time::format_time;
use apiary_core::trust::score::ScoreTier;
use apiary_store::{Feed, FeedRecord, Sighting, Store, StoreError, TokenInfo, User};
use serde_json::{json, Value};

pub fn time(t: apiary_store::Timestamp) -> String {
    format_time(t)
}

fn opt_time(t: Option<apiary_store::Timestamp>) -> Value {
    t.map(|t| Value::String(format_time(t))).unwrap_or(Value::Null)
}

/// The hub's own scores (confidence 0–100, tier) of the values on one page of records, by value,
/// as the scoring job stored them; a value it has not scored is absent.
#[derive(Debug, Default)]
pub struct Scores(HashMap<String, (u8, ScoreTier)>);

impl Scores {
    /// One batched lookup for the page's distinct values, not one query per record.
    pub async fn of(store: &dyn Store, records: &[FeedRecord]) -> Result<Scores, StoreError> {
        let values: Vec<String> = records.iter().map(|r| r.indicator.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        if values.is_empty() {
            return Ok(Scores::default());
        }
        Ok(Scores(store.score_tiers(&values).await?.into_iter().map(|(v, c, t)| (v, (c, t))).collect()))
    }

    /// The scores of one value already read (an indicator's detail view).
    pub fn one(value: &str, score: Option<(u8, ScoreTier)>) -> Scores {
        Scores(score.map(|s| (value.to_string(), s)).into_iter().collect())
    }

    /// The score of `value`, if it has one.
    pub fn get(&self, value: &str) -> Option<(u8, ScoreTier)> {
        self.0.get(value).copied()
    }
}

/// A feed record: the aggregate of one value in one feed, with the hub's score of the value
/// (`confidence`, `tier`; null until the scoring job has scored it).
pub fn record(r: &FeedRecord, scores: &Scores) -> Value {
    let score = scores.get(&r.indicator);
    json!({
        "id": r.id,
        "indicator": r.indicator,
        "itype": r.itype.as_str(),
        "feed": r.feed,
        "firsttime": time(r.firsttime),
        "lasttime": time(r.lasttime),
        "reporttime": time(r.reporttime),
        "count": r.count,
        "tags": r.tags,
        "portlist": r.portlist,
        "protocol": r.protocol,
        "description": r.description,
        "tlp": r.tlp.as_str(),
        "confidence": score.map(|(c, _)| c),
        "tier": score.map(|(_, t)| t.as_str()),
        "claimed_confidence": r.claimed_confidence,
        "reserved": r.reserved,
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
    })
}

/// A feed record with its network fields (`asn`, `asn_desc`, `cc`; see [`crate::enrich`]).
pub fn record_in(net: &Enrichment, scores: &Scores, r: &FeedRecord) -> Value {
    let mut v = record(r, scores);
    crate::enrich::annotate(&mut v, net, r.itype, &r.indicator);
    v
}

/// A stored sighting with its network fields.
pub fn sighting_in(net: &Enrichment, s: &Sighting) -> Value {
    let mut v = sighting(s);
    crate::enrich::annotate(&mut v, net, s.itype, &s.indicator);
    v
}

/// One stored sighting, with the fields its publisher sent that the hub has no column for.
pub fn sighting(s: &Sighting) -> Value {
    json!({
        "seq": s.seq,
        "feed": s.feed,
        "indicator": s.indicator,
        "itype": s.itype.as_str(),
        "observed_at": time(s.observed_at),
        "received_at": time(s.received_at),
        "tags": s.tags,
        "portlist": s.portlist,
        "protocol": s.protocol,
        "description": s.description,
        "tlp": s.tlp.as_str(),
        "claimed_confidence": s.claimed_confidence,
        "sensor": s.sensor,
        "count": s.count,
        "extra": s.extra,
    })
}

pub fn feed(f: &Feed) -> Value {
    json!({
        "id": f.id,
        "feed": f.full_name(),
        "owner": f.owner,
        "name": f.name,
        "description": f.description,
        "license_name": f.license_name,
        "license_url": f.license_url,
        "visibility": f.visibility,
        "created_at": time(f.created_at),
        "updated_at": time(f.updated_at),
    })
}

pub fn token(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "user": t.user,
        "scopes": t.scopes.to_string_list(),
        "label": t.label,
        "created_at": time(t.created_at),
        "expires_at": opt_time(t.expires_at),
        "revoked": t.revoked,
    })
}

pub fn user(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "admin": u.admin,
        "created_at": time(u.created_at),
    })
}
