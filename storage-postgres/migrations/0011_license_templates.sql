-- License templates (an extension): a policy plus a new license's defaults.
CREATE TABLE license_templates (
    id          text PRIMARY KEY,
    product_id  text NOT NULL CONSTRAINT license_templates_product_fkey REFERENCES products (id),
    policy_id   text NOT NULL CONSTRAINT license_templates_policy_fkey REFERENCES policies (id),
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX license_templates_product ON license_templates (product_id, created_at DESC, id DESC);
