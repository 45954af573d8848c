-- License updates kept heap-only (HOT, issue 11: the write path). PostgreSQL updates a row
-- without touching its indexes only when no indexed value changes, and a value an index
-- computes from counts as the whole column: 0016's index on `body->'users'` made every
-- change of a license's body (a consume's counters, an activation's timestamps) a change of
-- an indexed value, so each such update wrote a new entry into all of the table's indexes.
-- The assigned users now have a column of their own, derived from the body as `pool` and
-- `contract_id` are: it changes only when the users do, and the index is on it.
ALTER TABLE licenses ADD COLUMN assigned_users jsonb GENERATED ALWAYS AS (body->'users') STORED;
CREATE INDEX licenses_assigned_users ON licenses USING gin (assigned_users jsonb_path_ops);
DROP INDEX licenses_users;
