-- Release artifacts (an extension): each file of a product version. The bytes live in the
-- server's artifact store; the body says where.
CREATE TABLE artifacts (
    id          text PRIMARY KEY,
    product_id  text NOT NULL CONSTRAINT artifacts_product_fkey REFERENCES products (id),
    version_id  text NOT NULL CONSTRAINT artifacts_version_fkey REFERENCES product_versions (id),
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX artifacts_version ON artifacts (version_id);
