-- Optimistic runtime writes (issue 11: the write path's round trips).
--
-- A runtime write may decide on a snapshot of its license's aggregate, read without a lock
-- (and batched with other snapshots), and then write its whole effect in ONE autocommitted
-- statement that first moves the license's revision on, but only from the revision the
-- snapshot showed. Every write of a license's aggregate (the license row, its devices,
-- leases, feature assignments, consumptions, the idempotency record and events it writes
-- with them, and the read path's touches) moves the revision on in the same transaction, so
-- a matching revision means nothing the decision read has changed since: the decision is as
-- good as one taken under the row lock. A revision that moved on writes nothing, and the
-- write is decided again under the lock.
--
-- A constant default: adding the column rewrites nothing, and no index covers it, so a
-- revision bump alone keeps the license update heap-only (0017).
ALTER TABLE licenses ADD COLUMN revision bigint NOT NULL DEFAULT 0;

-- Aborts the statement that evaluates it as a unique violation of `p_constraint`: an
-- autocommitted write refuses itself with it (a device or lease id another license holds),
-- where a transaction's client would roll back instead. The error maps to `AlreadyExists`
-- by the constraint's name, as the violation itself would.
CREATE FUNCTION licentia_refuse_write(p_constraint text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION 'the write names a row of another license'
        USING ERRCODE = 'unique_violation', CONSTRAINT = p_constraint;
END
$$;
