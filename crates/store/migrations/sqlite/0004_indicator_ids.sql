-- Apiary SQLite schema, version 4: every distinct value is stored once, in `indicators`,
-- under an integer id; feed records and sightings refer to it by that id.
--
-- Before, a new value cost random inserts into five large B-trees (the feed records' value,
-- address and host indexes, their row, and the text-keyed indicators table), each keyed by
-- the value text or its search keys, so a bulk append of new values dirtied (and wrote to
-- the WAL) pages all over every index. Now the value text, its itype and its search keys
-- live in one row per value with two indexes (value, and address or host); the feed
-- record's identity (indicator_id, feed_id) grows at the end like the ids it is made of,
-- and the sightings log no longer repeats the value and itype of its record.
--
-- Ids are kept: feed record ids (the API's record ids and cursors) and sighting seqs.

ALTER TABLE indicators RENAME TO indicators_v3;

-- The hub-wide aggregate of one value, and the value's search keys:
--   addr_start/addr_end  first and last address of an ipv4/ipv6 value or CIDR, as 4- or
--                        16-byte big-endian BLOBs (memcmp order = numeric order)
--   host_key             reversed labels of an fqdn or a URL's host name ('com.example.www.')
CREATE TABLE indicators (
    id          INTEGER PRIMARY KEY,
    value       TEXT NOT NULL UNIQUE,
    itype       TEXT NOT NULL,
    firsttime   INTEGER NOT NULL,
    lasttime    INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    feeds       INTEGER NOT NULL,
    sources     INTEGER NOT NULL,
    reserved    TEXT,
    -- Distinct reporters (user ids), a sorted JSON array; `sources` is its length.
    reporters   TEXT NOT NULL DEFAULT '[]',
    addr_start  BLOB,
    addr_end    BLOB,
    host_key    TEXT
);

INSERT INTO indicators (value, itype, firsttime, lasttime, count, feeds, sources, reserved, reporters,
                        addr_start, addr_end, host_key)
SELECT i.value, i.itype, i.firsttime, i.lasttime, i.count, i.feeds, i.sources, i.reserved, i.reporters,
       k.addr_start, k.addr_end, k.host_key
FROM indicators_v3 i
LEFT JOIN feed_records k ON k.id = (SELECT min(r.id) FROM feed_records r WHERE r.value = i.value)
ORDER BY i.value;

-- A feed record whose value had no hub-wide row (never written so by the store, but a
-- database edited by hand may hold one) gets one rebuilt from its records.
INSERT INTO indicators (value, itype, firsttime, lasttime, count, feeds, sources, reserved, reporters,
                        addr_start, addr_end, host_key)
SELECT r.value, min(r.itype), min(r.firsttime), max(r.lasttime), sum(r.count), count(*), 0, max(r.reserved), '[]',
       min(r.addr_start), min(r.addr_end), min(r.host_key)
FROM feed_records r
WHERE NOT EXISTS (SELECT 1 FROM indicators_v3 i WHERE i.value = r.value)
GROUP BY r.value
ORDER BY r.value;

DROP TABLE indicators_v3;
CREATE INDEX indicators_by_addr ON indicators(itype, addr_start, addr_end) WHERE addr_start IS NOT NULL;
CREATE INDEX indicators_by_host ON indicators(host_key) WHERE host_key IS NOT NULL;

-- The aggregate of one value in one feed.
CREATE TABLE feed_records_v4 (
    id                  INTEGER PRIMARY KEY,
    feed_id             INTEGER NOT NULL REFERENCES feeds(id),
    indicator_id        INTEGER NOT NULL REFERENCES indicators(id),
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
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (indicator_id, feed_id)
);
INSERT INTO feed_records_v4 (id, feed_id, indicator_id, firsttime, lasttime, reporttime, count, tags, ports,
                             protocol, description, tlp, claimed_confidence, reserved, created_at, updated_at)
SELECT r.id, r.feed_id, i.id, r.firsttime, r.lasttime, r.reporttime, r.count, r.tags, r.ports,
       r.protocol, r.description, r.tlp, r.claimed_confidence, r.reserved, r.created_at, r.updated_at
FROM feed_records r JOIN indicators i ON i.value = r.value
ORDER BY r.id;
DROP TABLE feed_records;
ALTER TABLE feed_records_v4 RENAME TO feed_records;
CREATE INDEX feed_records_by_lasttime ON feed_records(lasttime DESC, id DESC);
CREATE INDEX feed_records_by_feed ON feed_records(feed_id, lasttime DESC, id DESC);

-- Every report, append-only; seq is the position in the sightings log. Its value and itype
-- are its record's.
CREATE TABLE sightings_v4 (
    seq                 INTEGER PRIMARY KEY,
    feed_id             INTEGER NOT NULL REFERENCES feeds(id),
    record_id           INTEGER NOT NULL REFERENCES feed_records(id),
    reporter_id         INTEGER NOT NULL REFERENCES users(id),
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
INSERT INTO sightings_v4 (seq, feed_id, record_id, reporter_id, reserved, observed_at, observed_until, received_at,
                          tags, ports, protocol, description, tlp, claimed_confidence, sensor, count, extra,
                          idempotency_key)
SELECT seq, feed_id, record_id, reporter_id, reserved, observed_at, observed_until, received_at,
       tags, ports, protocol, description, tlp, claimed_confidence, sensor, count, extra, idempotency_key
FROM sightings ORDER BY seq;
DROP TABLE sightings;
ALTER TABLE sightings_v4 RENAME TO sightings;
CREATE INDEX sightings_by_record ON sightings(record_id, seq);
CREATE UNIQUE INDEX sightings_by_idempotency_key ON sightings(feed_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
