-- Job leases (issue 8): a named background job runs on the one node holding its lease.
-- Expiry is judged by the database's clock (now()), so nodes' clocks need not agree.
-- `epoch` grows each time the lease changes hands (a fencing number for the job).
CREATE TABLE IF NOT EXISTS job_leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    epoch       bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL
);
