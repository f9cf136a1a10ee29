-- Apiary PostgreSQL schema, version 1 (the SQLite schema's version 5, in PostgreSQL's terms).
-- Times are timestamptz (microseconds, like SQLite's integers); lists are arrays; `extra` is jsonb.
-- TLP is a smallint rank (0 clear, 1 green, 2 amber, 3 red) so that "most restrictive" is greatest().

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    admin       boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL
);

-- Only the SHA-256 of a token is kept; the plaintext is shown once at creation.
CREATE TABLE tokens (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    hash        bytea NOT NULL UNIQUE,
    scopes      text NOT NULL,
    label       text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX tokens_by_user ON tokens(user_id);

CREATE TABLE feeds (
    id            bigserial PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users(id),
    name          text NOT NULL,
    description   text,
    license_name  text,
    license_url   text,
    visibility    text NOT NULL CHECK (visibility IN ('public', 'private')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE feed_grants (
    feed_id  bigint NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES users(id),
    PRIMARY KEY (feed_id, user_id)
);

-- The hub-wide aggregate of one value, and its search keys:
--   addr      the address or CIDR of an ipv4/ipv6 value (GiST inet_ops: "within a CIDR" is `<<=`)
--   host_key  reversed labels of an fqdn or a URL's host ('com.example.www.'): "this domain and
--             below" is a prefix match on a text_pattern_ops index
-- `feeds` and `sources` are counted from feed_records and indicator_reporters when read.
CREATE TABLE indicators (
    id          bigserial PRIMARY KEY,
    value       text NOT NULL UNIQUE,
    itype       text NOT NULL,
    firsttime   timestamptz NOT NULL,
    lasttime    timestamptz NOT NULL,
    count       bigint NOT NULL,
    reserved    text,
    addr        inet,
    host_key    text
);
CREATE INDEX indicators_by_addr ON indicators USING gist (addr inet_ops) WHERE addr IS NOT NULL;
CREATE INDEX indicators_by_host ON indicators (host_key text_pattern_ops) WHERE host_key IS NOT NULL;

-- Distinct reporters (users) of a value.
CREATE TABLE indicator_reporters (
    indicator_id  bigint NOT NULL REFERENCES indicators(id) ON DELETE CASCADE,
    reporter_id   bigint NOT NULL,
    PRIMARY KEY (indicator_id, reporter_id)
);

-- The aggregate of one value in one feed.
CREATE TABLE feed_records (
    id                  bigserial PRIMARY KEY,
    feed_id             bigint NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    indicator_id        bigint NOT NULL REFERENCES indicators(id),
    firsttime           timestamptz NOT NULL,
    lasttime            timestamptz NOT NULL,
    reporttime          timestamptz NOT NULL,
    count               bigint NOT NULL,
    tags                text[] NOT NULL,
    ports               integer[] NOT NULL,
    protocol            text,
    description         text,
    tlp                 smallint NOT NULL,
    claimed_confidence  double precision,
    reserved            text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (indicator_id, feed_id)
);
CREATE INDEX feed_records_by_lasttime ON feed_records (lasttime DESC, id DESC);
CREATE INDEX feed_records_by_feed ON feed_records (feed_id, lasttime DESC, id DESC);
CREATE INDEX feed_records_by_tags ON feed_records USING gin (tags);

-- Every report, append-only, partitioned by month of arrival (received_at); seq is the
-- position in the sightings log. Partitions are created on demand by
-- apiary_sightings_partition() and dropped by apiary_drop_sightings_before() (retention).
CREATE SEQUENCE sightings_seq;
CREATE TABLE sightings (
    seq                 bigint NOT NULL,
    feed_id             bigint NOT NULL,
    record_id           bigint NOT NULL,
    reporter_id         bigint NOT NULL,
    reserved            text,
    observed_at         timestamptz NOT NULL,
    observed_until      timestamptz,
    received_at         timestamptz NOT NULL,
    tags                text[] NOT NULL,
    ports               integer[] NOT NULL,
    protocol            text,
    description         text,
    tlp                 smallint NOT NULL,
    claimed_confidence  double precision,
    sensor              text,
    count               bigint NOT NULL,
    extra               jsonb NOT NULL,
    idempotency_key     text,
    PRIMARY KEY (seq, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX sightings_by_record ON sightings (record_id, seq);
CREATE INDEX sightings_by_feed ON sightings (feed_id, seq);

-- Idempotency keys, per feed. A unique index on the partitioned table would have to include
-- received_at, so the keys live in a table of their own (kept when old partitions are dropped:
-- a very late retry is still recognised).
CREATE TABLE sighting_keys (
    feed_id          bigint NOT NULL,
    idempotency_key  text NOT NULL,
    record_id        bigint NOT NULL,
    PRIMARY KEY (feed_id, idempotency_key)
);

-- The monthly partition holding `at` (UTC months), created if missing; returns its name.
CREATE FUNCTION apiary_sightings_partition(at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    month timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    part text := 'sightings_' || to_char(month, 'YYYY_MM');
BEGIN
    IF to_regclass(quote_ident(part)) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF sightings FOR VALUES FROM (%L) TO (%L)',
                           part, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
        EXCEPTION WHEN duplicate_table OR unique_violation OR invalid_object_definition THEN
            -- Another session created it at the same moment.
            NULL;
        END;
    END IF;
    RETURN part;
END $$;

-- Retention: drop every monthly partition wholly before `cutoff`; returns the dropped names.
-- Aggregates (feed records, indicators) keep counting what the dropped sightings added.
CREATE FUNCTION apiary_drop_sightings_before(cutoff timestamptz) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'sightings'::regclass AND c.relname ~ '^sightings_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        IF ((to_date(substr(part, 11), 'YYYY_MM')::timestamp + interval '1 month') AT TIME ZONE 'UTC') <= cutoff THEN
            EXECUTE format('DROP TABLE %I', part);
            RETURN NEXT part;
        END IF;
    END LOOP;
END $$;

CREATE TABLE hpfeeds_idents (
    ident       text PRIMARY KEY,
    secret      text NOT NULL,
    publish     text[] NOT NULL DEFAULT '{}',
    subscribe   text[] NOT NULL DEFAULT '{}',
    feed_owner  text,
    feed_name   text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE feed_subscriptions (
    user_id     bigint NOT NULL REFERENCES users(id),
    feed_id     bigint NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, feed_id)
);

CREATE TABLE webhooks (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    url         text NOT NULL,
    secret      text NOT NULL,
    filter      jsonb NOT NULL DEFAULT '{}',
    cursor      bigint NOT NULL,
    state       text NOT NULL CHECK (state IN ('active', 'paused')),
    failures    bigint NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX webhooks_by_user ON webhooks(user_id);
