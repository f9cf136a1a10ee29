-- Apiary PostgreSQL schema: trust (issue 6), the SQLite schema's version 8 in PostgreSQL's terms.
-- See crates/store/migrations/sqlite/0008_trust.sql for what each table holds.

CREATE TABLE IF NOT EXISTS sources (
    feed_id       bigint PRIMARY KEY REFERENCES feeds(id) ON DELETE CASCADE,
    tier          text NOT NULL CHECK (tier IN ('seed', 'established', 'probation', 'quarantined')),
    pinned        boolean NOT NULL DEFAULT false,
    alpha         double precision NOT NULL DEFAULT 1,
    beta          double precision NOT NULL DEFAULT 9,
    leads         bigint NOT NULL DEFAULT 0,
    penalties     bigint NOT NULL DEFAULT 0,
    last_penalty  timestamptz,
    group_id      bigint,
    asn           bigint,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS indicator_scores (
    value        text PRIMARY KEY,
    itype        text NOT NULL,
    confidence   smallint NOT NULL,
    tier         text NOT NULL CHECK (tier IN ('OBSERVE', 'SUSPICIOUS', 'BLOCK')),
    log_odds     double precision,
    explanation  jsonb NOT NULL,
    scored_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS indicator_scores_by_tier ON indicator_scores(tier, confidence);
CREATE INDEX IF NOT EXISTS indicator_scores_by_time ON indicator_scores(scored_at);

CREATE TABLE IF NOT EXISTS feedback (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('false_positive', 'retraction')),
    value       text NOT NULL,
    itype       text NOT NULL,
    feed_id     bigint REFERENCES feeds(id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users(id),
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_value ON feedback(value);
CREATE INDEX IF NOT EXISTS feedback_retractions ON feedback(feed_id, value) WHERE kind = 'retraction';
