-- Apiary SQLite schema, version 8: trust (issue 6). See crates/store/src/trust.rs and TRUST.md.
--
-- `sources`: a feed as a source. A feed without a row has the defaults (an admin's feed is a
-- seed, any other on probation with Beta(1, 9)); the reliability job and `apiary source tier`
-- write rows. `pinned`: the tier was set by an admin and the job leaves it alone.
-- `indicator_scores`: the scoring job's output per value: confidence 0–100, tier, log-odds (NULL
-- when excluded) and the explanation (JSON terms, source ids = feed ids).
-- `feedback`: false-positive reports (any user) and retractions (a feed's owner), kept for ever.

CREATE TABLE IF NOT EXISTS sources (
    feed_id       INTEGER PRIMARY KEY REFERENCES feeds(id),
    tier          TEXT NOT NULL CHECK (tier IN ('seed', 'established', 'probation', 'quarantined')),
    pinned        INTEGER NOT NULL DEFAULT 0,
    alpha         REAL NOT NULL DEFAULT 1,
    beta          REAL NOT NULL DEFAULT 9,
    leads         INTEGER NOT NULL DEFAULT 0,
    penalties     INTEGER NOT NULL DEFAULT 0,
    last_penalty  INTEGER,
    group_id      INTEGER,
    asn           INTEGER,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS indicator_scores (
    value        TEXT PRIMARY KEY,
    itype        TEXT NOT NULL,
    confidence   INTEGER NOT NULL,
    tier         TEXT NOT NULL CHECK (tier IN ('OBSERVE', 'SUSPICIOUS', 'BLOCK')),
    log_odds     REAL,
    explanation  TEXT NOT NULL,
    scored_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS indicator_scores_by_tier ON indicator_scores(tier, confidence);
CREATE INDEX IF NOT EXISTS indicator_scores_by_time ON indicator_scores(scored_at);

CREATE TABLE IF NOT EXISTS feedback (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('false_positive', 'retraction')),
    value       TEXT NOT NULL,
    itype       TEXT NOT NULL,
    feed_id     INTEGER REFERENCES feeds(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_value ON feedback(value);
CREATE INDEX IF NOT EXISTS feedback_retractions ON feedback(feed_id, value) WHERE kind = 'retraction';
