-- Apiary SQLite schema, version 2: the distinct reporters of a value move into the
-- indicators row (a sorted JSON array of user ids) instead of a table of their own.
-- The row is read and rewritten on every append of the value anyway, so this saves one
-- index insert per new (value, reporter) pair. Reporters are the hub's users: few per value.

ALTER TABLE indicators ADD COLUMN reporters TEXT NOT NULL DEFAULT '[]';

UPDATE indicators SET reporters = (
    SELECT coalesce(json_group_array(reporter_id), '[]')
    FROM (SELECT reporter_id FROM indicator_sources s WHERE s.value = indicators.value ORDER BY reporter_id)
);

DROP TABLE indicator_sources;
