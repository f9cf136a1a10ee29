-- Apiary SQLite schema, version 7: raw events shipped by sensors (`apiary sensor`).
--
-- `sensor_events`: each event as sent (`event`, JSON text) with the shipper's idempotency key,
-- unique per feed, so resent batches store nothing twice. `done` = 0 while the sessionizer has
-- not yet derived its session's sightings; the partial index keeps finding pending sessions
-- cheap however many events are done. Events without a session are stored done.

CREATE TABLE sensor_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    feed_id      INTEGER NOT NULL REFERENCES feeds(id),
    reporter_id  INTEGER NOT NULL,
    key          TEXT NOT NULL,
    sensor       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    session      TEXT,
    eventid      TEXT,
    closes       INTEGER NOT NULL DEFAULT 0,
    event        TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    done         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sensor_events_by_key ON sensor_events(feed_id, key);
CREATE INDEX sensor_events_by_session ON sensor_events(feed_id, sensor, kind, session, seq);
CREATE INDEX sensor_events_pending ON sensor_events(feed_id, sensor, kind, session) WHERE done = 0;
