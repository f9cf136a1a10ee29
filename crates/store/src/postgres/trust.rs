//! Trust in PostgreSQL (migration 0004): sources, indicator scores, feedback, and the lean read
//! of the sightings log the scoring job replays. The same rules as `sqlite/trust.rs`.

use super::{parse_itype, pg_error, PostgresStore};
use crate::model::Timestamp;
use crate::trust::{
    check_reason, score_tier_from_str, tier_from_str, Feedback, FeedbackKind, IndicatorScore, NewFeedback, Source,
    SourceUpdate, TrustSighting,
};
use crate::{Result, StoreError};
use apiary_core::trust::score::ScoreTier;
use apiary_core::trust::{Beta, Tier};
use chrono::Utc;
use tokio_postgres::Row;

const MAX_PAGE: i64 = 50_000;

const SOURCE_COLUMNS: &str = "f.id, u.name || '/' || f.name, f.owner_id, u.admin, f.created_at, s.tier, s.pinned, \
     s.alpha, s.beta, s.leads, s.penalties, s.last_penalty, s.group_id, s.asn, s.updated_at \
     FROM feeds f JOIN users u ON u.id = f.owner_id LEFT JOIN sources s ON s.feed_id = f.id";

fn source_from_row(r: &Row) -> Source {
    let admin: bool = r.get(3);
    let tier = match r.get::<_, Option<&str>>(5).and_then(tier_from_str) {
        Some(t) => t,
        None if admin => Tier::Seed,
        None => Tier::Probation,
    };
    Source {
        feed_id: r.get(0),
        feed: r.get(1),
        owner_id: r.get(2),
        tier,
        pinned: r.get::<_, Option<bool>>(6).unwrap_or(false),
        alpha: r.get::<_, Option<f64>>(7).unwrap_or(Beta::PRIOR.alpha),
        beta: r.get::<_, Option<f64>>(8).unwrap_or(Beta::PRIOR.beta),
        leads: r.get::<_, Option<i64>>(9).unwrap_or(0),
        penalties: r.get::<_, Option<i64>>(10).unwrap_or(0),
        last_penalty: r.get(11),
        group_id: r.get(12),
        asn: r.get(13),
        created_at: r.get(4),
        updated_at: r.get(14),
    }
}

const FEEDBACK_COLUMNS: &str = "b.id, b.kind, b.value, b.itype, b.feed_id, fu.name || '/' || f.name, u.name, b.reason, b.created_at, b.user_id, u.admin \
     FROM feedback b JOIN users u ON u.id = b.user_id LEFT JOIN feeds f ON f.id = b.feed_id LEFT JOIN users fu ON fu.id = f.owner_id";

fn feedback_from_row(r: &Row) -> Result<Feedback> {
    let kind: &str = r.get(1);
    Ok(Feedback {
        id: r.get(0),
        kind: FeedbackKind::parse(kind).ok_or_else(|| StoreError::Internal(format!("unknown feedback kind `{kind}`")))?,
        indicator: r.get(2),
        itype: parse_itype(r.get(3))?,
        feed_id: r.get(4),
        feed: r.get(5),
        user: r.get(6),
        reason: r.get(7),
        created_at: r.get(8),
        user_id: r.get(9),
        user_admin: r.get(10),
    })
}

fn score_tier(s: &str) -> Result<ScoreTier> {
    score_tier_from_str(s).ok_or_else(|| StoreError::Internal(format!("unknown score tier `{s}`")))
}

impl PostgresStore {
    pub(super) async fn trust_list_sources(&self) -> Result<Vec<Source>> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {SOURCE_COLUMNS} ORDER BY u.name COLLATE \"C\", f.name COLLATE \"C\""), &[])
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(source_from_row).collect())
    }

    async fn trust_source(&self, owner: &str, name: &str) -> Result<Source> {
        let client = self.client().await?;
        client
            .query_opt(&format!("SELECT {SOURCE_COLUMNS} WHERE u.name = $1 AND f.name = $2"), &[&owner, &name])
            .await
            .map_err(pg_error)?
            .map(|r| source_from_row(&r))
            .ok_or_else(|| StoreError::NotFound(format!("feed `{owner}/{name}`")))
    }

    /// Write one column set of a source row, creating the row with its defaults first.
    async fn trust_upsert_source(&self, owner: &str, name: &str, tier: Option<Tier>, asn: Option<Option<i64>>) -> Result<Source> {
        let s = self.trust_source(owner, name).await?;
        let client = self.client().await?;
        let now = Utc::now();
        client
            .execute(
                "INSERT INTO sources (feed_id, tier, updated_at) VALUES ($1, $2, $3) ON CONFLICT (feed_id) DO NOTHING",
                &[&s.feed_id, &s.tier.as_str(), &now],
            )
            .await
            .map_err(pg_error)?;
        if let Some(tier) = tier {
            client
                .execute(
                    "UPDATE sources SET tier = $2, pinned = $3, updated_at = $4 WHERE feed_id = $1",
                    &[&s.feed_id, &tier.as_str(), &(tier != Tier::Probation), &now],
                )
                .await
                .map_err(pg_error)?;
        }
        if let Some(asn) = asn {
            client
                .execute("UPDATE sources SET asn = $2, updated_at = $3 WHERE feed_id = $1", &[&s.feed_id, &asn, &now])
                .await
                .map_err(pg_error)?;
        }
        self.trust_source(owner, name).await
    }

    pub(super) async fn trust_set_tier(&self, owner: &str, name: &str, tier: Tier) -> Result<Source> {
        self.trust_upsert_source(owner, name, Some(tier), None).await
    }

    pub(super) async fn trust_set_asn(&self, owner: &str, name: &str, asn: Option<i64>) -> Result<Source> {
        self.trust_upsert_source(owner, name, None, Some(asn)).await
    }

    pub(super) async fn trust_update_sources(&self, updates: Vec<SourceUpdate>) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = updates.iter().map(|u| u.feed_id).collect();
        let tiers: Vec<&str> = updates.iter().map(|u| u.tier.as_str()).collect();
        let alphas: Vec<f64> = updates.iter().map(|u| u.alpha).collect();
        let betas: Vec<f64> = updates.iter().map(|u| u.beta).collect();
        let leads: Vec<i64> = updates.iter().map(|u| u.leads).collect();
        let penalties: Vec<i64> = updates.iter().map(|u| u.penalties).collect();
        let last: Vec<Option<Timestamp>> = updates.iter().map(|u| u.last_penalty).collect();
        let groups: Vec<Option<i64>> = updates.iter().map(|u| u.group_id).collect();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO sources (feed_id, tier, alpha, beta, leads, penalties, last_penalty, group_id, updated_at) \
                 SELECT u.* , now() FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::bigint[], \
                   $6::bigint[], $7::timestamptz[], $8::bigint[]) AS u(feed_id, tier, alpha, beta, leads, penalties, last_penalty, group_id) \
                 WHERE EXISTS (SELECT 1 FROM feeds f WHERE f.id = u.feed_id) \
                 ON CONFLICT (feed_id) DO UPDATE SET \
                   tier = CASE WHEN sources.pinned THEN sources.tier ELSE excluded.tier END, \
                   alpha = excluded.alpha, beta = excluded.beta, leads = excluded.leads, penalties = excluded.penalties, \
                   last_penalty = excluded.last_penalty, group_id = excluded.group_id, updated_at = excluded.updated_at",
                &[&ids, &tiers, &alphas, &betas, &leads, &penalties, &last, &groups],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    pub(super) async fn trust_put_scores(&self, scores: Vec<IndicatorScore>) -> Result<()> {
        if scores.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        // Batches of unnest arrays: one statement per 5,000 scores, whatever the total.
        for chunk in scores.chunks(5_000) {
            let values: Vec<&str> = chunk.iter().map(|s| s.indicator.as_str()).collect();
            let itypes: Vec<&str> = chunk.iter().map(|s| s.itype.as_str()).collect();
            let conf: Vec<i16> = chunk.iter().map(|s| i16::from(s.confidence)).collect();
            let tiers: Vec<&str> = chunk.iter().map(|s| s.tier.as_str()).collect();
            let lo: Vec<Option<f64>> = chunk.iter().map(|s| s.log_odds.filter(|v| v.is_finite())).collect();
            let ex: Vec<&serde_json::Value> = chunk.iter().map(|s| &s.explanation).collect();
            let at: Vec<Timestamp> = chunk.iter().map(|s| s.scored_at).collect();
            client
                .execute(
                    "INSERT INTO indicator_scores (value, itype, confidence, tier, log_odds, explanation, scored_at) \
                     SELECT DISTINCT ON (v) v, t, c, tr, l, e, a FROM unnest($1::text[], $2::text[], $3::int2[], $4::text[], \
                       $5::float8[], $6::jsonb[], $7::timestamptz[]) AS x(v, t, c, tr, l, e, a) \
                     ON CONFLICT (value) DO UPDATE SET itype = excluded.itype, confidence = excluded.confidence, \
                       tier = excluded.tier, log_odds = excluded.log_odds, explanation = excluded.explanation, \
                       scored_at = excluded.scored_at",
                    &[&values, &itypes, &conf, &tiers, &lo, &ex, &at],
                )
                .await
                .map_err(pg_error)?;
        }
        Ok(())
    }

    pub(super) async fn trust_get_score(&self, value: &str) -> Result<Option<IndicatorScore>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT value, itype, confidence, tier, log_odds, explanation, scored_at FROM indicator_scores WHERE value = $1",
                &[&value],
            )
            .await
            .map_err(pg_error)?;
        row.map(|r| {
            Ok(IndicatorScore {
                indicator: r.get(0),
                itype: parse_itype(r.get(1))?,
                confidence: r.get::<_, i16>(2).clamp(0, 100) as u8,
                tier: score_tier(r.get(3))?,
                log_odds: r.get(4),
                explanation: r.get(5),
                scored_at: r.get(6),
            })
        })
        .transpose()
    }

    pub(super) async fn trust_score_tiers(&self, values: &[String]) -> Result<Vec<(String, u8, ScoreTier)>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = client
            .query("SELECT value, confidence, tier FROM indicator_scores WHERE value = ANY($1)", &[&values])
            .await
            .map_err(pg_error)?;
        rows.iter().map(|r| Ok((r.get(0), r.get::<_, i16>(1).clamp(0, 100) as u8, score_tier(r.get(2))?))).collect()
    }

    pub(super) async fn trust_scores_updated_at(&self) -> Result<Option<Timestamp>> {
        let client = self.client().await?;
        let r = client.query_one("SELECT max(scored_at) FROM indicator_scores", &[]).await.map_err(pg_error)?;
        Ok(r.get(0))
    }

    pub(super) async fn trust_add_feedback(&self, new: NewFeedback) -> Result<Feedback> {
        check_reason(&new.reason)?;
        if new.kind == FeedbackKind::Retraction && new.feed_id.is_none() {
            return Err(StoreError::Invalid("a retraction names its feed".into()));
        }
        let client = self.client().await?;
        if client.query_opt("SELECT 1 FROM users WHERE id = $1", &[&new.user_id]).await.map_err(pg_error)?.is_none() {
            return Err(StoreError::NotFound(format!("user {}", new.user_id)));
        }
        if let Some(id) = new.feed_id {
            if client.query_opt("SELECT 1 FROM feeds WHERE id = $1", &[&id]).await.map_err(pg_error)?.is_none() {
                return Err(StoreError::NotFound(format!("feed {id}")));
            }
        }
        let row = client
            .query_one(
                "INSERT INTO feedback (kind, value, itype, feed_id, user_id, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[&new.kind.as_str(), &new.indicator, &new.itype.as_str(), &new.feed_id, &new.user_id, &new.reason.trim(), &Utc::now()],
            )
            .await
            .map_err(pg_error)?;
        let id: i64 = row.get(0);
        let r = client.query_one(&format!("SELECT {FEEDBACK_COLUMNS} WHERE b.id = $1"), &[&id]).await.map_err(pg_error)?;
        feedback_from_row(&r)
    }

    pub(super) async fn trust_feedback_after(&self, after: i64, limit: usize) -> Result<Vec<Feedback>> {
        let limit = limit.clamp(1, 10_000) as i64;
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {FEEDBACK_COLUMNS} WHERE b.id > $1 ORDER BY b.id LIMIT $2"), &[&after, &limit])
            .await
            .map_err(pg_error)?;
        rows.iter().map(feedback_from_row).collect()
    }

    pub(super) async fn trust_feedback_of(&self, value: &str) -> Result<Vec<Feedback>> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {FEEDBACK_COLUMNS} WHERE b.value = $1 ORDER BY b.id LIMIT 1000"), &[&value])
            .await
            .map_err(pg_error)?;
        rows.iter().map(feedback_from_row).collect()
    }

    pub(super) async fn trust_retractions(&self, feed_ids: Option<&[i64]>) -> Result<Vec<(i64, String)>> {
        if feed_ids.is_some_and(|ids| ids.is_empty()) {
            return Ok(Vec::new());
        }
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT feed_id, value FROM feedback WHERE kind = 'retraction' AND ($1::bigint[] IS NULL OR feed_id = ANY($1))",
                &[&ids],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn trust_log_after(&self, after: i64, limit: usize) -> Result<Vec<TrustSighting>> {
        let limit = (limit as i64).clamp(1, MAX_PAGE);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.seq, s.feed_id, i.value, i.itype, s.reserved, s.observed_at, s.observed_until, s.received_at, \
                 s.tags, s.sensor, (f.visibility = 'public' AND s.tlp < 2) \
                 FROM sightings s JOIN feed_records r ON r.id = s.record_id \
                 JOIN indicators i ON i.id = r.indicator_id JOIN feeds f ON f.id = s.feed_id \
                 WHERE s.seq > $1 ORDER BY s.seq LIMIT $2",
                &[&after, &limit],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                Ok(TrustSighting {
                    seq: r.get(0),
                    feed_id: r.get(1),
                    indicator: r.get(2),
                    itype: parse_itype(r.get(3))?,
                    reserved: r.get(4),
                    observed_at: r.get(5),
                    observed_until: r.get(6),
                    received_at: r.get(7),
                    tags: r.get(8),
                    sensor: r.get(9),
                    shared: r.get(10),
                })
            })
            .collect()
    }
}
