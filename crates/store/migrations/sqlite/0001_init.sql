-- Apiary SQLite schema, version 1.
-- Times are INTEGER microseconds since the Unix epoch (UTC). Lists (tags, ports) are JSON text.
-- Foreign keys are documented with REFERENCES but enforced by the single writer (the pragma
-- stays off: checking them on every appended sighting costs more than it protects).

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    admin       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

-- Only the SHA-256 of a token is kept; the plaintext is shown once at creation.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    hash        BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_by_user ON tokens(user_id);

CREATE TABLE feeds (
    id            INTEGER PRIMARY KEY,
    owner_id      INTEGER NOT NULL REFERENCES users(id),
    name          TEXT NOT NULL,
    description   TEXT,
    license_name  TEXT,
    license_url   TEXT,
    visibility    TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

-- Read access to private feeds for users other than the owner.
CREATE TABLE feed_grants (
    feed_id  INTEGER NOT NULL REFERENCES feeds(id),
    user_id  INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (feed_id, user_id)
) WITHOUT ROWID;

-- The aggregate of one value in one feed (identity: value + feed; the value is canonical
-- so it implies its itype). Search keys:
--   addr_start/addr_end  first and last address of an ipv4/ipv6 value or CIDR, as 4- or
--                        16-byte big-endian BLOBs (memcmp order = numeric order)
--   host_key             reversed labels of an fqdn or a URL's host name ('com.example.www.')
CREATE TABLE feed_records (
    id                  INTEGER PRIMARY KEY,
    feed_id             INTEGER NOT NULL REFERENCES feeds(id),
    value               TEXT NOT NULL,
    itype               TEXT NOT NULL,
    firsttime           INTEGER NOT NULL,
    lasttime            INTEGER NOT NULL,
    reporttime          INTEGER NOT NULL,
    count               INTEGER NOT NULL,
    tags                TEXT NOT NULL,
    ports               TEXT NOT NULL,
    protocol            TEXT,
    description         TEXT,
    tlp                 TEXT NOT NULL,
    claimed_confidence  REAL,
    reserved            TEXT,
    addr_start          BLOB,
    addr_end            BLOB,
    host_key            TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (value, feed_id)
);
CREATE INDEX feed_records_by_lasttime ON feed_records(lasttime DESC, id DESC);
CREATE INDEX feed_records_by_feed ON feed_records(feed_id, lasttime DESC, id DESC);
CREATE INDEX feed_records_by_addr ON feed_records(itype, addr_start, addr_end) WHERE addr_start IS NOT NULL;
CREATE INDEX feed_records_by_host ON feed_records(host_key) WHERE host_key IS NOT NULL;

CREATE TABLE record_tags (
    tag        TEXT NOT NULL,
    record_id  INTEGER NOT NULL REFERENCES feed_records(id),
    PRIMARY KEY (tag, record_id)
) WITHOUT ROWID;

-- Every report, append-only; seq is the position in the sightings log.
CREATE TABLE sightings (
    seq                 INTEGER PRIMARY KEY,
    feed_id             INTEGER NOT NULL REFERENCES feeds(id),
    record_id           INTEGER NOT NULL REFERENCES feed_records(id),
    reporter_id         INTEGER NOT NULL REFERENCES users(id),
    itype               TEXT NOT NULL,
    value               TEXT NOT NULL,
    reserved            TEXT,
    observed_at         INTEGER NOT NULL,
    observed_until      INTEGER,
    received_at         INTEGER NOT NULL,
    tags                TEXT NOT NULL,
    ports               TEXT NOT NULL,
    protocol            TEXT,
    description         TEXT,
    tlp                 TEXT NOT NULL,
    claimed_confidence  REAL,
    sensor              TEXT,
    count               INTEGER NOT NULL,
    extra               TEXT NOT NULL,
    idempotency_key     TEXT
);
CREATE INDEX sightings_by_record ON sightings(record_id, seq);
-- A repeated key within one feed is the same report (keys are per feed so that one
-- publisher cannot suppress another's reports by reusing its keys).
CREATE UNIQUE INDEX sightings_by_idempotency_key ON sightings(feed_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The hub-wide aggregate of one value.
CREATE TABLE indicators (
    value      TEXT PRIMARY KEY,
    itype      TEXT NOT NULL,
    firsttime  INTEGER NOT NULL,
    lasttime   INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    feeds      INTEGER NOT NULL,
    sources    INTEGER NOT NULL,
    reserved   TEXT
) WITHOUT ROWID;

-- Distinct reporters of a value (indicators.sources counts these rows).
CREATE TABLE indicator_sources (
    value        TEXT NOT NULL,
    reporter_id  INTEGER NOT NULL,
    PRIMARY KEY (value, reporter_id)
) WITHOUT ROWID;
