-- Apiary SQLite schema, version 5: feed subscriptions and push subscriptions (webhooks).
--
-- `feed_subscriptions`: the feeds a user follows; "my subscriptions" (a feed of records and a
-- stream) is their union, always intersected with what the user may read at the time.
-- `webhooks`: a filtered stream POSTed to `url`, signed with HMAC-SHA256 under `secret`
-- (stored readable: the hub signs with it). `cursor` is the sightings-log seq delivered up to;
-- `state` is `active` or `paused` (after repeated failure, with `last_error`).

CREATE TABLE feed_subscriptions (
    user_id     INTEGER NOT NULL REFERENCES users(id),
    feed_id     INTEGER NOT NULL REFERENCES feeds(id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, feed_id)
) WITHOUT ROWID;

CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    filter      TEXT NOT NULL DEFAULT '{}',
    cursor      INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    failures    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_user ON webhooks(user_id);
