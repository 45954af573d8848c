-- Per-product signing keys: a key belongs to the global ring (product_id NULL) or to one
-- product's own ring. No foreign key: a deleted product's retired keys stay listed so that
-- what they signed still verifies. Each ring has at most one active key.
ALTER TABLE signing_keys ADD COLUMN product_id text;
DROP INDEX signing_keys_one_active;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((coalesce(product_id, '')))
    WHERE status = 'active';
