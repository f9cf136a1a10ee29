-- Apiary PostgreSQL schema: the feed comparison's latest result (apiary_core::trust::compare),
-- as JSON text, replaced by each run of the comparison job. One row.
CREATE TABLE feed_comparison (
    id           integer PRIMARY KEY CHECK (id = 1),
    computed_at  timestamptz NOT NULL,
    body         text NOT NULL
);
