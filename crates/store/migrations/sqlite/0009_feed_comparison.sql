-- Apiary SQLite schema: the feed comparison's latest result (apiary_core::trust::compare),
-- as JSON, replaced by each run of the comparison job. One row.
CREATE TABLE feed_comparison (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    computed_at  INTEGER NOT NULL,
    body         TEXT NOT NULL
);
