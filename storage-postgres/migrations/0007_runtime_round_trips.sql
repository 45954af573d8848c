-- The per-license transaction in fewer round trips (issue 11: the write path's tail).
--
-- `licentia_aggregate` is the one definition of "the rest of a license's aggregate": the
-- read path calls it inside its single snapshot statement, and `licentia_lock_aggregate`
-- calls it after taking the license's row lock. It is a STABLE SQL function, so the planner
-- inlines it and it reads its caller's snapshot.
--
-- Parameters: the license's id, policy and product; the device statuses always loaded; the
-- queried binding key; the queried version's precedence key; the queried consumption
-- `event_id`; the idempotency scope and key.
CREATE FUNCTION licentia_aggregate(
    p_license_id text, p_policy_id text, p_product_id text, p_always_loaded text[],
    p_binding_key text, p_precedence text, p_event_id text, p_idem_scope text, p_idem_key text)
RETURNS TABLE (
    policy jsonb, devices jsonb, features jsonb, leases jsonb, has_catalog boolean,
    version_entry jsonb, consumption jsonb, idem_request_hash bytea, idem_status integer,
    idem_body bytea, idem_created_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT p.body, d.devices, f.features, s.leases, v.has_catalog, v.version_entry, c.body,
       i.request_hash, i.status, i.body, i.created_at
FROM policies p
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(dv.body ORDER BY dv.created_at, dv.id), '[]'::jsonb) AS devices
    FROM devices dv
    WHERE dv.license_id = p_license_id
      AND (dv.status = ANY(p_always_loaded) OR dv.binding_key = p_binding_key)) d
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(lf.body ORDER BY lf.feature_code, lf.feature_id), '[]'::jsonb)
           AS features
    FROM license_features lf WHERE lf.license_id = p_license_id) f
CROSS JOIN LATERAL (
    SELECT coalesce(jsonb_agg(ls.body ORDER BY ls.checked_out_at, ls.id), '[]'::jsonb) AS leases
    FROM leases ls WHERE ls.license_id = p_license_id) s
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT 1 FROM product_versions pv WHERE pv.product_id = p_product_id)
               AS has_catalog,
           (SELECT pv.body FROM product_versions pv
            WHERE pv.product_id = p_product_id AND pv.precedence = p_precedence
            ORDER BY pv.released_at DESC, pv.id DESC LIMIT 1) AS version_entry) v
LEFT JOIN consumptions c ON c.license_id = p_license_id AND c.event_id = p_event_id
LEFT JOIN idempotency_records i ON i.scope = p_idem_scope AND i.key = p_idem_key
WHERE p.id = p_policy_id
$$;

-- Locks the license named by id (or, when the id is NULL, by key hash) with FOR UPDATE and
-- returns it with its aggregate: one round trip where a lock and a load took two. No row:
-- no such license (or its key was replaced while we waited for the lock: the re-check of
-- the locked row's new version no longer matches).
--
-- Why this is consistent: the function is VOLATILE, so under READ COMMITTED each statement
-- in it takes a new snapshot. The RETURN QUERY statement starts after the lock is granted,
-- so it sees every commit made on the license before, as the separate load statement did.
CREATE FUNCTION licentia_lock_aggregate(
    p_id text, p_key_hash bytea, p_always_loaded text[], p_binding_key text,
    p_precedence text, p_event_id text, p_idem_scope text, p_idem_key text)
RETURNS TABLE (
    license jsonb, key_hash bytea, last_validated_at timestamptz,
    policy jsonb, devices jsonb, features jsonb, leases jsonb, has_catalog boolean,
    version_entry jsonb, consumption jsonb, idem_request_hash bytea, idem_status integer,
    idem_body bytea, idem_created_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    locked text;
BEGIN
    IF p_id IS NOT NULL THEN
        SELECT l.id INTO locked FROM licenses l WHERE l.id = p_id FOR UPDATE;
    ELSE
        SELECT l.id INTO locked FROM licenses l WHERE l.key_hash = p_key_hash FOR UPDATE;
    END IF;
    IF locked IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT l.body, l.key_hash, l.last_validated_at, a.*
        FROM licenses l
        CROSS JOIN LATERAL licentia_aggregate(
            l.id, l.policy_id, l.product_id, p_always_loaded, p_binding_key, p_precedence,
            p_event_id, p_idem_scope, p_idem_key) a
        WHERE l.id = locked;
END
$$;
