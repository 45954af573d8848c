-- Pools and reseller contracts (extensions).
CREATE TABLE contracts (
    id          text PRIMARY KEY,
    customer_id text NOT NULL CONSTRAINT contracts_customer_fkey REFERENCES customers (id),
    product_id  text NOT NULL CONSTRAINT contracts_product_fkey REFERENCES products (id),
    policy_id   text NOT NULL CONSTRAINT contracts_policy_fkey REFERENCES policies (id),
    template_id text CONSTRAINT contracts_template_fkey REFERENCES license_templates (id),
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX contracts_newest ON contracts (created_at DESC, id DESC);
CREATE INDEX contracts_customer ON contracts (customer_id, created_at DESC, id DESC);

-- Derived from the license record itself, so no write path can let them disagree.
ALTER TABLE licenses
    ADD COLUMN pool text GENERATED ALWAYS AS (body->>'pool') STORED,
    ADD COLUMN contract_id text GENERATED ALWAYS AS (body->>'contract_id') STORED
        CONSTRAINT licenses_contract_fkey REFERENCES contracts (id);
-- What an assignment picks from: the pool's unassigned licenses.
CREATE INDEX licenses_pool ON licenses (pool) WHERE pool IS NOT NULL AND customer_id IS NULL;
-- What a contract's quota counts.
CREATE INDEX licenses_contract ON licenses (contract_id) WHERE contract_id IS NOT NULL;
