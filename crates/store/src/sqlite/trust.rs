//! Trust in SQLite (migration 0008): sources, indicator scores, feedback, and the lean read of
//! the sightings log the scoring job replays.

use super::{db_error, from_micros, json_list, micros, now_micros, parse_itype, SqliteStore};
use crate::trust::{
    check_reason, score_tier_from_str, tier_from_str, Feedback, FeedbackKind, IndicatorScore, NewFeedback, Source,
    SourceUpdate, TrustSighting,
};
use crate::{Result, StoreError};
use apiary_core::trust::score::ScoreTier;
use apiary_core::trust::{Beta, Tier};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// The most log entries one read returns.
const MAX_PAGE: usize = 50_000;

const SOURCE_COLUMNS: &str = "f.id, u.name || '/' || f.name, f.owner_id, u.admin, f.created_at, s.tier, s.pinned, \
     s.alpha, s.beta, s.leads, s.penalties, s.last_penalty, s.group_id, s.asn, s.updated_at \
     FROM feeds f JOIN users u ON u.id = f.owner_id LEFT JOIN sources s ON s.feed_id = f.id";

fn source_from_row(r: &Row) -> rusqlite::Result<Source> {
    let admin: bool = r.get(3)?;
    let tier: Option<String> = r.get(5)?;
    let tier = match tier.as_deref().and_then(tier_from_str) {
        Some(t) => t,
        None if admin => Tier::Seed,
        None => Tier::Probation,
    };
    Ok(Source {
        feed_id: r.get(0)?,
        feed: r.get(1)?,
        owner_id: r.get(2)?,
        tier,
        pinned: r.get::<_, Option<bool>>(6)?.unwrap_or(false),
        alpha: r.get::<_, Option<f64>>(7)?.unwrap_or(Beta::PRIOR.alpha),
        beta: r.get::<_, Option<f64>>(8)?.unwrap_or(Beta::PRIOR.beta),
        leads: r.get::<_, Option<i64>>(9)?.unwrap_or(0),
        penalties: r.get::<_, Option<i64>>(10)?.unwrap_or(0),
        last_penalty: r.get::<_, Option<i64>>(11)?.map(from_micros),
        group_id: r.get(12)?,
        asn: r.get(13)?,
        created_at: from_micros(r.get(4)?),
        updated_at: r.get::<_, Option<i64>>(14)?.map(from_micros),
    })
}

fn list_sources(c: &Connection) -> Result<Vec<Source>> {
    let mut st = c.prepare_cached(&format!("SELECT {SOURCE_COLUMNS} ORDER BY u.name, f.name")).map_err(db_error)?;
    let rows = st.query_map([], source_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn get_source(c: &Connection, owner: &str, name: &str) -> Result<Source> {
    c.prepare_cached(&format!("SELECT {SOURCE_COLUMNS} WHERE u.name = ?1 AND f.name = ?2"))
        .and_then(|mut st| st.query_row([owner, name], source_from_row).optional())
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("feed `{owner}/{name}`")))
}

/// Make sure the feed has a `sources` row (with its defaults), and return its id.
fn ensure_source(c: &Connection, owner: &str, name: &str) -> Result<i64> {
    let s = get_source(c, owner, name)?;
    c.prepare_cached("INSERT OR IGNORE INTO sources (feed_id, tier, updated_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut st| st.execute(params![s.feed_id, s.tier.as_str(), now_micros()]))
        .map_err(db_error)?;
    Ok(s.feed_id)
}

fn set_tier(c: &Connection, owner: &str, name: &str, tier: Tier) -> Result<Source> {
    let id = ensure_source(c, owner, name)?;
    c.prepare_cached("UPDATE sources SET tier = ?2, pinned = ?3, updated_at = ?4 WHERE feed_id = ?1")
        .and_then(|mut st| st.execute(params![id, tier.as_str(), tier != Tier::Probation, now_micros()]))
        .map_err(db_error)?;
    get_source(c, owner, name)
}

fn set_asn(c: &Connection, owner: &str, name: &str, asn: Option<i64>) -> Result<Source> {
    let id = ensure_source(c, owner, name)?;
    c.prepare_cached("UPDATE sources SET asn = ?2, updated_at = ?3 WHERE feed_id = ?1")
        .and_then(|mut st| st.execute(params![id, asn, now_micros()]))
        .map_err(db_error)?;
    get_source(c, owner, name)
}

fn update_sources(c: &Connection, updates: &[SourceUpdate]) -> Result<()> {
    let now = now_micros();
    let mut st = c
        .prepare_cached(
            "INSERT INTO sources (feed_id, tier, alpha, beta, leads, penalties, last_penalty, group_id, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM feeds WHERE id = ?1) \
             ON CONFLICT (feed_id) DO UPDATE SET \
               tier = CASE WHEN sources.pinned THEN sources.tier ELSE excluded.tier END, \
               alpha = excluded.alpha, beta = excluded.beta, leads = excluded.leads, penalties = excluded.penalties, \
               last_penalty = excluded.last_penalty, group_id = excluded.group_id, updated_at = excluded.updated_at",
        )
        .map_err(db_error)?;
    for u in updates {
        st.execute(params![
            u.feed_id,
            u.tier.as_str(),
            u.alpha,
            u.beta,
            u.leads,
            u.penalties,
            u.last_penalty.map(micros),
            u.group_id,
            now
        ])
        .map_err(db_error)?;
    }
    Ok(())
}

fn put_scores(c: &Connection, scores: &[IndicatorScore]) -> Result<()> {
    let mut st = c
        .prepare_cached(
            "INSERT INTO indicator_scores (value, itype, confidence, tier, log_odds, explanation, scored_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (value) DO UPDATE SET itype = excluded.itype, \
             confidence = excluded.confidence, tier = excluded.tier, log_odds = excluded.log_odds, \
             explanation = excluded.explanation, scored_at = excluded.scored_at",
        )
        .map_err(db_error)?;
    for s in scores {
        let explanation = serde_json::to_string(&s.explanation).map_err(|e| StoreError::Internal(e.to_string()))?;
        st.execute(params![
            s.indicator,
            s.itype.as_str(),
            i64::from(s.confidence),
            s.tier.as_str(),
            s.log_odds.filter(|v| v.is_finite()),
            explanation,
            micros(s.scored_at)
        ])
        .map_err(db_error)?;
    }
    Ok(())
}

fn bad_column(what: &str, v: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("unknown {what} `{v}`").into())
}

fn score_tier(s: &str) -> rusqlite::Result<ScoreTier> {
    score_tier_from_str(s).ok_or_else(|| bad_column("score tier", s))
}

fn get_score(c: &Connection, value: &str) -> Result<Option<IndicatorScore>> {
    c.prepare_cached(
        "SELECT value, itype, confidence, tier, log_odds, explanation, scored_at FROM indicator_scores WHERE value = ?1",
    )
    .and_then(|mut st| {
        st.query_row([value], |r| {
            let explanation: String = r.get(5)?;
            Ok(IndicatorScore {
                indicator: r.get(0)?,
                itype: parse_itype(&r.get::<_, String>(1)?)?,
                confidence: r.get::<_, i64>(2)?.clamp(0, 100) as u8,
                tier: score_tier(&r.get::<_, String>(3)?)?,
                log_odds: r.get(4)?,
                explanation: serde_json::from_str(&explanation).unwrap_or(serde_json::Value::Null),
                scored_at: from_micros(r.get(6)?),
            })
        })
        .optional()
    })
    .map_err(db_error)
}

fn score_tiers(c: &Connection, values: &[String]) -> Result<Vec<(String, u8, ScoreTier)>> {
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(500) {
        let sql = format!(
            "SELECT value, confidence, tier FROM indicator_scores WHERE value IN ({})",
            vec!["?"; chunk.len()].join(",")
        );
        let mut st = c.prepare_cached(&sql).map_err(db_error)?;
        let rows = st
            .query_map(params_from_iter(chunk.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.clamp(0, 100) as u8, score_tier(&r.get::<_, String>(2)?)?))
            })
            .map_err(db_error)?;
        for row in rows {
            out.push(row.map_err(db_error)?);
        }
    }
    Ok(out)
}

const FEEDBACK_COLUMNS: &str = "b.id, b.kind, b.value, b.itype, b.feed_id, fu.name || '/' || f.name, u.name, b.reason, b.created_at, b.user_id, u.admin \
     FROM feedback b JOIN users u ON u.id = b.user_id LEFT JOIN feeds f ON f.id = b.feed_id LEFT JOIN users fu ON fu.id = f.owner_id";

fn feedback_from_row(r: &Row) -> rusqlite::Result<Feedback> {
    let kind: String = r.get(1)?;
    Ok(Feedback {
        id: r.get(0)?,
        kind: FeedbackKind::parse(&kind).ok_or_else(|| bad_column("feedback kind", &kind))?,
        indicator: r.get(2)?,
        itype: parse_itype(&r.get::<_, String>(3)?)?,
        feed_id: r.get(4)?,
        feed: r.get(5)?,
        user: r.get(6)?,
        reason: r.get(7)?,
        created_at: from_micros(r.get(8)?),
        user_id: r.get(9)?,
        user_admin: r.get(10)?,
    })
}

fn add_feedback(c: &Connection, new: &NewFeedback) -> Result<Feedback> {
    check_reason(&new.reason)?;
    let user_exists: Option<i64> = c
        .prepare_cached("SELECT id FROM users WHERE id = ?1")
        .and_then(|mut st| st.query_row([new.user_id], |r| r.get(0)).optional())
        .map_err(db_error)?;
    if user_exists.is_none() {
        return Err(StoreError::NotFound(format!("user {}", new.user_id)));
    }
    match (new.kind, new.feed_id) {
        (FeedbackKind::Retraction, None) => return Err(StoreError::Invalid("a retraction names its feed".into())),
        (_, Some(id)) => {
            let feed: Option<i64> = c
                .prepare_cached("SELECT id FROM feeds WHERE id = ?1")
                .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
                .map_err(db_error)?;
            if feed.is_none() {
                return Err(StoreError::NotFound(format!("feed {id}")));
            }
        }
        _ => {}
    }
    c.prepare_cached(
        "INSERT INTO feedback (kind, value, itype, feed_id, user_id, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            new.kind.as_str(),
            new.indicator,
            new.itype.as_str(),
            new.feed_id,
            new.user_id,
            new.reason.trim(),
            now_micros()
        ])
    })
    .map_err(db_error)?;
    let id = c.last_insert_rowid();
    c.prepare_cached(&format!("SELECT {FEEDBACK_COLUMNS} WHERE b.id = ?1"))
        .and_then(|mut st| st.query_row([id], feedback_from_row))
        .map_err(db_error)
}

fn feedback_after(c: &Connection, after: i64, limit: usize) -> Result<Vec<Feedback>> {
    let limit = limit.clamp(1, 10_000);
    let mut st = c
        .prepare_cached(&format!("SELECT {FEEDBACK_COLUMNS} WHERE b.id > ?1 ORDER BY b.id LIMIT {limit}"))
        .map_err(db_error)?;
    let rows = st.query_map([after], feedback_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn feedback_of(c: &Connection, value: &str) -> Result<Vec<Feedback>> {
    let mut st = c
        .prepare_cached(&format!("SELECT {FEEDBACK_COLUMNS} WHERE b.value = ?1 ORDER BY b.id LIMIT 1000"))
        .map_err(db_error)?;
    let rows = st.query_map([value], feedback_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

fn retractions(c: &Connection, feed_ids: Option<&[i64]>) -> Result<Vec<(i64, String)>> {
    let (filter, args): (String, Vec<Value>) = match feed_ids {
        Some([]) => return Ok(Vec::new()),
        Some(ids) => (
            format!(" AND feed_id IN ({})", vec!["?"; ids.len()].join(",")),
            ids.iter().map(|i| Value::Integer(*i)).collect(),
        ),
        None => (String::new(), Vec::new()),
    };
    let sql = format!("SELECT DISTINCT feed_id, value FROM feedback WHERE kind = 'retraction'{filter}");
    let mut st = c.prepare(&sql).map_err(db_error)?;
    let rows = st.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

/// The log without the joins and columns the model does not use (no feed names, no JSON but tags).
fn trust_sightings_after(c: &Connection, after: i64, limit: usize) -> Result<Vec<TrustSighting>> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut st = c
        .prepare_cached(&format!(
            "SELECT s.seq, s.feed_id, i.value, i.itype, s.reserved, s.observed_at, s.observed_until, s.received_at, \
             s.tags, s.sensor, (f.visibility = 'public' AND s.tlp NOT IN ('amber', 'red')) \
             FROM sightings s JOIN feed_records r ON r.id = s.record_id \
             JOIN indicators i ON i.id = r.indicator_id JOIN feeds f ON f.id = s.feed_id \
             WHERE s.seq > ?1 ORDER BY s.seq LIMIT {limit}"
        ))
        .map_err(db_error)?;
    let rows = st
        .query_map([after], |r| {
            let tags: String = r.get(8)?;
            Ok(TrustSighting {
                seq: r.get(0)?,
                feed_id: r.get(1)?,
                indicator: r.get(2)?,
                itype: parse_itype(&r.get::<_, String>(3)?)?,
                reserved: r.get(4)?,
                observed_at: from_micros(r.get(5)?),
                observed_until: r.get::<_, Option<i64>>(6)?.map(from_micros),
                received_at: from_micros(r.get(7)?),
                tags: if tags == "[]" { Vec::new() } else { json_list(&tags)? },
                sensor: r.get(9)?,
                shared: r.get(10)?,
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_error)
}

impl SqliteStore {
    pub(super) async fn trust_list_sources(&self) -> Result<Vec<Source>> {
        self.read(list_sources).await
    }

    pub(super) async fn trust_set_tier(&self, owner: &str, name: &str, tier: Tier) -> Result<Source> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.write(1, true, move |c| set_tier(c, &owner, &name, tier)).await
    }

    pub(super) async fn trust_set_asn(&self, owner: &str, name: &str, asn: Option<i64>) -> Result<Source> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.write(1, true, move |c| set_asn(c, &owner, &name, asn)).await
    }

    pub(super) async fn trust_update_sources(&self, updates: Vec<SourceUpdate>) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write(updates.len(), true, move |c| update_sources(c, &updates)).await
    }

    pub(super) async fn trust_put_scores(&self, scores: Vec<IndicatorScore>) -> Result<()> {
        if scores.is_empty() {
            return Ok(());
        }
        self.write(scores.len(), true, move |c| put_scores(c, &scores)).await
    }

    pub(super) async fn trust_get_score(&self, value: &str) -> Result<Option<IndicatorScore>> {
        let value = value.to_string();
        self.read(move |c| get_score(c, &value)).await
    }

    pub(super) async fn trust_score_tiers(&self, values: &[String]) -> Result<Vec<(String, u8, ScoreTier)>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let values = values.to_vec();
        self.read(move |c| score_tiers(c, &values)).await
    }

    pub(super) async fn trust_scores_updated_at(&self) -> Result<Option<crate::model::Timestamp>> {
        self.read(|c| {
            c.query_row("SELECT max(scored_at) FROM indicator_scores", [], |r| r.get::<_, Option<i64>>(0))
                .map(|v| v.map(from_micros))
                .map_err(db_error)
        })
        .await
    }

    pub(super) async fn trust_add_feedback(&self, new: NewFeedback) -> Result<Feedback> {
        self.write(1, true, move |c| add_feedback(c, &new)).await
    }

    pub(super) async fn trust_feedback_after(&self, after: i64, limit: usize) -> Result<Vec<Feedback>> {
        self.read(move |c| feedback_after(c, after, limit)).await
    }

    pub(super) async fn trust_feedback_of(&self, value: &str) -> Result<Vec<Feedback>> {
        let value = value.to_string();
        self.read(move |c| feedback_of(c, &value)).await
    }

    pub(super) async fn trust_retractions(&self, feed_ids: Option<&[i64]>) -> Result<Vec<(i64, String)>> {
        let ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| retractions(c, ids.as_deref())).await
    }

    pub(super) async fn trust_log_after(&self, after: i64, limit: usize) -> Result<Vec<TrustSighting>> {
        self.read(move |c| trust_sightings_after(c, after, limit)).await
    }
}
