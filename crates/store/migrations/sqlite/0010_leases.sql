-- Job leases (issue 8): a named background job runs on the one process holding its lease.
-- `expires_at` is Unix microseconds; `epoch` grows each time the lease changes hands.
CREATE TABLE IF NOT EXISTS job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);
