-- User-based licenses (an extension): a license's assigned license users live in its body
-- (`users`: [{user_id, max_activations, assigned_at}]) and a device's user in the device's
-- body (`user_id`), so nothing changes shape. This index finds the licenses assigned to a
-- user (`body->'users' @> '[{"user_id": …}]'`), which a user's runtime credential needs.
CREATE INDEX licenses_users ON licenses USING gin ((body->'users') jsonb_path_ops);
