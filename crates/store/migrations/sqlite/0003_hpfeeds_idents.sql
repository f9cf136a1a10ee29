-- Apiary SQLite schema, version 3: hpfeeds broker idents.
--
-- The hpfeeds protocol authenticates with SHA1(nonce || secret), so the broker needs each
-- secret itself: it is stored as given, not hashed (unlike API tokens). The store keeps the
-- database file readable by its owner only (0600) once an ident is written.
-- `publish` and `subscribe` are JSON arrays of exact channel names. `feed_owner`/`feed_name`
-- name the feed that `cowrie.sessions` messages of this ident are recorded in (none: not
-- recorded, only relayed).

CREATE TABLE hpfeeds_idents (
    ident       TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    publish     TEXT NOT NULL DEFAULT '[]',
    subscribe   TEXT NOT NULL DEFAULT '[]',
    feed_owner  TEXT,
    feed_name   TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
