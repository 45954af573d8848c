-- licentia schema, version 1.
--
-- Every record is kept whole as its contract JSON in `body` (jsonb), so a field added to a
-- record needs no migration. Beside it, typed columns carry what the database itself must
-- check or find quickly: keys, references (foreign keys), unique values, the times lists are
-- ordered by, and the hashes secrets are looked up by. The store writes both from the same
-- record in the same statement; nothing else writes these tables.
--
-- Constraint names are part of the store: errors are mapped to domain errors by name
-- (see src/error.rs).

CREATE TABLE products (
    id          text PRIMARY KEY,
    code        text NOT NULL CONSTRAINT products_code_key UNIQUE,
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX products_newest ON products (created_at DESC, id DESC);

CREATE TABLE product_versions (
    id          text PRIMARY KEY,
    product_id  text NOT NULL CONSTRAINT product_versions_product_fkey
                REFERENCES products (id) ON DELETE CASCADE,
    version     text NOT NULL,
    -- The version without build metadata: equal here means equal semver precedence.
    precedence  text NOT NULL,
    released_at timestamptz NOT NULL,
    body        jsonb NOT NULL,
    CONSTRAINT product_versions_version_key UNIQUE (product_id, version)
);
CREATE INDEX product_versions_lookup ON product_versions (product_id, precedence, released_at DESC);

CREATE TABLE policies (
    id          text PRIMARY KEY,
    product_id  text NOT NULL CONSTRAINT policies_product_fkey REFERENCES products (id),
    code        text NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL,
    CONSTRAINT policies_code_key UNIQUE (product_id, code)
);
CREATE INDEX policies_newest ON policies (product_id, created_at DESC, id DESC);

CREATE TABLE features (
    id          text PRIMARY KEY,
    product_id  text NOT NULL CONSTRAINT features_product_fkey REFERENCES products (id),
    code        text NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL,
    CONSTRAINT features_code_key UNIQUE (product_id, code)
);
CREATE INDEX features_newest ON features (product_id, created_at DESC, id DESC);

CREATE TABLE custom_fields (
    id            text PRIMARY KEY,
    product_id    text NOT NULL CONSTRAINT custom_fields_product_fkey
                  REFERENCES products (id) ON DELETE CASCADE,
    resource_type text NOT NULL,
    code          text NOT NULL,
    created_at    timestamptz NOT NULL,
    body          jsonb NOT NULL,
    CONSTRAINT custom_fields_code_key UNIQUE (product_id, resource_type, code)
);
CREATE INDEX custom_fields_newest ON custom_fields (product_id, created_at DESC, id DESC);

-- A value belongs to a definition and to a customer or a license (by id, so no foreign key
-- can name both); it is shown joined with its definition as the definition is now.
CREATE TABLE custom_values (
    definition_id text NOT NULL CONSTRAINT custom_values_definition_fkey
                  REFERENCES custom_fields (id) ON DELETE CASCADE,
    resource_id   text NOT NULL,
    body          jsonb NOT NULL,
    PRIMARY KEY (resource_id, definition_id)
);
CREATE INDEX custom_values_definition ON custom_values (definition_id);

CREATE TABLE customers (
    id          text PRIMARY KEY,
    code        text NOT NULL CONSTRAINT customers_code_key UNIQUE,
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX customers_newest ON customers (created_at DESC, id DESC);

CREATE TABLE subscriptions (
    id              text PRIMARY KEY,
    product_id      text NOT NULL CONSTRAINT subscriptions_product_fkey REFERENCES products (id),
    customer_id     text CONSTRAINT subscriptions_customer_fkey REFERENCES customers (id),
    external_system text NOT NULL,
    external_id     text NOT NULL,
    created_at      timestamptz NOT NULL,
    body            jsonb NOT NULL,
    CONSTRAINT subscriptions_external_key UNIQUE (product_id, external_system, external_id)
);
CREATE INDEX subscriptions_newest ON subscriptions (product_id, created_at DESC, id DESC);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);

CREATE TABLE orders (
    id              text PRIMARY KEY,
    product_id      text NOT NULL CONSTRAINT orders_product_fkey REFERENCES products (id),
    customer_id     text CONSTRAINT orders_customer_fkey REFERENCES customers (id),
    subscription_id text CONSTRAINT orders_subscription_fkey REFERENCES subscriptions (id),
    external_system text NOT NULL,
    external_id     text NOT NULL,
    created_at      timestamptz NOT NULL,
    body            jsonb NOT NULL,
    CONSTRAINT orders_external_key UNIQUE (product_id, external_system, external_id)
);
CREATE INDEX orders_newest ON orders (product_id, created_at DESC, id DESC);
CREATE INDEX orders_customer ON orders (customer_id);

CREATE TABLE licenses (
    id                text PRIMARY KEY,
    product_id        text NOT NULL CONSTRAINT licenses_product_fkey REFERENCES products (id),
    policy_id         text NOT NULL CONSTRAINT licenses_policy_fkey REFERENCES policies (id),
    customer_id       text CONSTRAINT licenses_customer_fkey REFERENCES customers (id),
    order_id          text CONSTRAINT licenses_order_fkey REFERENCES orders (id),
    subscription_id   text CONSTRAINT licenses_subscription_fkey REFERENCES subscriptions (id),
    -- SHA-256 of the license key; the key itself is never stored.
    key_hash          bytea NOT NULL CONSTRAINT licenses_key_hash_key UNIQUE,
    status            text NOT NULL,
    expires_at        timestamptz,
    last_validated_at timestamptz,
    created_at        timestamptz NOT NULL,
    body              jsonb NOT NULL
);
CREATE INDEX licenses_newest ON licenses (created_at DESC, id DESC);
CREATE INDEX licenses_product ON licenses (product_id, created_at DESC, id DESC);
CREATE INDEX licenses_policy ON licenses (policy_id);
CREATE INDEX licenses_customer ON licenses (customer_id);
CREATE INDEX licenses_order ON licenses (order_id);
CREATE INDEX licenses_subscription ON licenses (subscription_id);

CREATE TABLE devices (
    id          text PRIMARY KEY,
    license_id  text NOT NULL CONSTRAINT devices_license_fkey REFERENCES licenses (id),
    binding_key text NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
-- One live device per binding per license.
CREATE UNIQUE INDEX devices_live_binding_key ON devices (license_id, binding_key)
    WHERE status = 'active';
CREATE INDEX devices_by_binding ON devices (license_id, binding_key);
CREATE INDEX devices_newest ON devices (license_id, created_at DESC, id DESC);

CREATE TABLE license_features (
    license_id   text NOT NULL CONSTRAINT license_features_license_fkey REFERENCES licenses (id),
    feature_id   text NOT NULL CONSTRAINT license_features_feature_fkey REFERENCES features (id),
    feature_code text NOT NULL,
    body         jsonb NOT NULL,
    PRIMARY KEY (license_id, feature_id)
);
CREATE INDEX license_features_feature ON license_features (feature_id);

-- Leases not checked in (a checked-in lease is removed, as in the aggregate).
CREATE TABLE leases (
    id             text PRIMARY KEY,
    license_id     text NOT NULL CONSTRAINT leases_license_fkey REFERENCES licenses (id),
    token_hash     bytea NOT NULL CONSTRAINT leases_token_hash_key UNIQUE,
    checked_out_at timestamptz NOT NULL,
    body           jsonb NOT NULL
);
CREATE INDEX leases_license ON leases (license_id);

-- A consumption event_id counts once per license (and so once per license and feature).
CREATE TABLE consumptions (
    license_id  text NOT NULL CONSTRAINT consumptions_license_fkey REFERENCES licenses (id),
    event_id    text NOT NULL,
    feature_id  text NOT NULL,
    amount      bigint NOT NULL,
    recorded_at timestamptz NOT NULL,
    body        jsonb NOT NULL,
    CONSTRAINT consumptions_event_id_key PRIMARY KEY (license_id, event_id)
);

-- Stored outcomes of idempotent requests, replayed byte for byte.
CREATE TABLE idempotency_records (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer NOT NULL,
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    CONSTRAINT idempotency_records_key PRIMARY KEY (scope, key)
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash   bytea NOT NULL CONSTRAINT api_keys_token_hash_key UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    body         jsonb NOT NULL
);
CREATE INDEX api_keys_newest ON api_keys (created_at DESC, id DESC);

CREATE TABLE webhooks (
    id          text PRIMARY KEY,
    -- Kept to sign deliveries (HMAC needs the secret itself, not a hash of it).
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX webhooks_newest ON webhooks (created_at DESC, id DESC);

-- The signing key set. `seed` is the Ed25519 seed, sealed under the store's master key when
-- one is configured (`sealed`), else as is.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    position    integer NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL,
    sealed      boolean NOT NULL,
    seed        bytea NOT NULL
);
-- At most one active key: concurrent rotations cannot both leave theirs active.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE status = 'active';

-- The append-only audit log. Sequences come from an identity column: they strictly increase.
CREATE TABLE events (
    sequence      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type    text NOT NULL,
    actor_type    text NOT NULL,
    actor_id      text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text,
    metadata      jsonb NOT NULL,
    ip_address    text,
    created_at    timestamptz NOT NULL
);
CREATE INDEX events_by_type ON events (event_type, sequence DESC);
CREATE INDEX events_by_resource ON events (resource_type, resource_id, sequence DESC);
CREATE INDEX events_by_actor_type ON events (actor_type, sequence DESC);
