-- Apiary PostgreSQL schema, version 2: honeypot sessions and sensors (crates/store/src/sessions.rs).
-- The SQLite schema 0006 in PostgreSQL's types; see that file for what each column is.
-- A feed's sessions and sensors go with it (ON DELETE CASCADE).

CREATE TABLE sessions (
    id                     bigserial PRIMARY KEY,
    feed_id                bigint NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    sensor                 text NOT NULL,
    session                text NOT NULL,
    attacker               text,
    attacker_port          integer,
    honeypot_ip            text,
    honeypot_port          integer,
    protocol               text,
    start_at               timestamptz,
    end_at                 timestamptz,
    duration               double precision,
    client_version         text,
    hassh                  text,
    login_success          boolean NOT NULL,
    depth                  text NOT NULL,
    ttylog_sha256          text,
    commands_key           text,
    hassh_credentials_key  text,
    events                 bigint NOT NULL,
    closed                 boolean NOT NULL,
    detail                 jsonb NOT NULL,
    revision               integer NOT NULL DEFAULT 0,
    received_at            timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    UNIQUE (feed_id, sensor, session)
);
CREATE INDEX sessions_by_attacker ON sessions(attacker, start_at);

CREATE TABLE session_payloads (
    session_id  bigint NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    sha256      text NOT NULL,
    PRIMARY KEY (sha256, session_id)
);
CREATE INDEX session_payloads_by_session ON session_payloads(session_id);

CREATE TABLE sensors (
    feed_id     bigint NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    name        text NOT NULL,
    asn         bigint,
    prefix      text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (feed_id, name)
);
