-- Apiary SQLite schema, version 6: honeypot sessions and sensors (crates/store/src/sessions.rs).
--
-- `sessions`: one row per (feed, sensor, session id). Columns the queries filter or correlate
-- on are columns; the lists (credentials, commands, downloads, uploads, tunnels) are one JSON
-- object in `detail`. `events` decides which version of a session is the more complete one;
-- `revision` counts replacements. `commands_key` and `hassh_credentials_key` are the link keys
-- of apiary_core::sessions (precomputed, so a campaign scan reads no JSON).
-- `session_payloads`: the payload SHA-256s of a session (downloads and uploads), for
-- "which attackers sent this payload". Times are microseconds since the epoch.
-- `sensors`: sensors registered in a feed with their declared network (ASN and/or prefix).
-- A feed's sessions and sensors go with it (trigger; the store runs with foreign keys off).

CREATE TABLE sessions (
    id                     INTEGER PRIMARY KEY,
    feed_id                INTEGER NOT NULL,
    sensor                 TEXT NOT NULL,
    session                TEXT NOT NULL,
    attacker               TEXT,
    attacker_port          INTEGER,
    honeypot_ip            TEXT,
    honeypot_port          INTEGER,
    protocol               TEXT,
    start_at               INTEGER,
    end_at                 INTEGER,
    duration               REAL,
    client_version         TEXT,
    hassh                  TEXT,
    login_success          INTEGER NOT NULL,
    depth                  TEXT NOT NULL,
    ttylog_sha256          TEXT,
    commands_key           TEXT,
    hassh_credentials_key  TEXT,
    events                 INTEGER NOT NULL,
    closed                 INTEGER NOT NULL,
    detail                 TEXT NOT NULL,
    revision               INTEGER NOT NULL DEFAULT 0,
    received_at            INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    UNIQUE (feed_id, sensor, session)
);
CREATE INDEX sessions_by_attacker ON sessions(attacker, start_at);

CREATE TABLE session_payloads (
    session_id  INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    PRIMARY KEY (sha256, session_id)
) WITHOUT ROWID;
CREATE INDEX session_payloads_by_session ON session_payloads(session_id);

CREATE TABLE sensors (
    feed_id     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    asn         INTEGER,
    prefix      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (feed_id, name)
) WITHOUT ROWID;

CREATE TRIGGER sessions_go_with_their_feed AFTER DELETE ON feeds BEGIN
    DELETE FROM session_payloads WHERE session_id IN (SELECT id FROM sessions WHERE feed_id = OLD.id);
    DELETE FROM sessions WHERE feed_id = OLD.id;
    DELETE FROM sensors WHERE feed_id = OLD.id;
END;
