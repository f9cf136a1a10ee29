-- Apiary PostgreSQL schema, version 3: raw events shipped by sensors (`apiary sensor`).
-- The same table as SQLite's 0007: the idempotency key is unique per feed; `done` is false
-- while the sessionizer has not derived the session's sightings (partial index on those).

CREATE TABLE sensor_events (
    seq          bigserial PRIMARY KEY,
    feed_id      bigint NOT NULL,
    reporter_id  bigint NOT NULL,
    key          text NOT NULL,
    sensor       text NOT NULL,
    kind         text NOT NULL,
    session      text,
    eventid      text,
    closes       boolean NOT NULL DEFAULT false,
    event        text NOT NULL,
    received_at  timestamptz NOT NULL,
    done         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX sensor_events_by_key ON sensor_events (feed_id, key);
CREATE INDEX sensor_events_by_session ON sensor_events (feed_id, sensor, kind, session, seq);
CREATE INDEX sensor_events_pending ON sensor_events (feed_id, sensor, kind, session) WHERE NOT done;
