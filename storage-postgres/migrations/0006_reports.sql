-- Reports (the SDK document's reporting and ops operations).

-- The usage ledger: consumptions numbered in the order recorded, with the license's ids and
-- the feature's code as they were when recorded (usage stays with who used it).
ALTER TABLE consumptions
    ADD COLUMN sequence bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN feature_code text,
    ADD COLUMN product_id text,
    ADD COLUMN customer_id text,
    ADD COLUMN order_id text,
    ADD COLUMN subscription_id text;
UPDATE consumptions c
SET feature_code = f.code, product_id = l.product_id, customer_id = l.customer_id,
    order_id = l.order_id, subscription_id = l.subscription_id
FROM licenses l, features f
WHERE l.id = c.license_id AND f.id = c.feature_id;
UPDATE consumptions
SET body = body || jsonb_strip_nulls(jsonb_build_object(
    'feature_code', feature_code, 'product_id', product_id, 'customer_id', customer_id,
    'order_id', order_id, 'subscription_id', subscription_id));
ALTER TABLE consumptions
    ALTER COLUMN feature_code SET NOT NULL,
    ALTER COLUMN product_id SET NOT NULL;
CREATE UNIQUE INDEX consumptions_sequence ON consumptions (sequence);
-- A product's or customer's usage over a time range reads only its index.
CREATE INDEX consumptions_product_time ON consumptions (product_id, recorded_at)
    INCLUDE (amount, feature_code, license_id, customer_id);
CREATE INDEX consumptions_customer_time ON consumptions (customer_id, recorded_at)
    INCLUDE (amount, feature_code);
CREATE INDEX consumptions_license_time ON consumptions (license_id, recorded_at)
    INCLUDE (amount, feature_code);
-- Ledger pages (newest first) of a product, customer, license, order or subscription.
CREATE INDEX consumptions_product_seq ON consumptions (product_id, sequence DESC);
CREATE INDEX consumptions_customer_seq ON consumptions (customer_id, sequence DESC)
    WHERE customer_id IS NOT NULL;
CREATE INDEX consumptions_license_seq ON consumptions (license_id, sequence DESC);
CREATE INDEX consumptions_subscription ON consumptions (subscription_id, sequence DESC)
    WHERE subscription_id IS NOT NULL;
CREATE INDEX consumptions_order ON consumptions (order_id, sequence DESC) WHERE order_id IS NOT NULL;
CREATE INDEX consumptions_time ON consumptions (recorded_at);

-- What an event is about, for the activity feed's filters: the metadata's id (the engine adds
-- the license's ids to every event about a license), else the event's own resource.
ALTER TABLE events
    ADD COLUMN subject_license text GENERATED ALWAYS AS (CASE
        WHEN jsonb_typeof(metadata->'license_id') = 'string' THEN metadata->>'license_id'
        WHEN resource_type = 'license' THEN resource_id END) STORED,
    ADD COLUMN subject_product text GENERATED ALWAYS AS (CASE
        WHEN jsonb_typeof(metadata->'product_id') = 'string' THEN metadata->>'product_id'
        WHEN resource_type = 'product' THEN resource_id END) STORED,
    ADD COLUMN subject_customer text GENERATED ALWAYS AS (CASE
        WHEN jsonb_typeof(metadata->'customer_id') = 'string' THEN metadata->>'customer_id'
        WHEN resource_type = 'customer' THEN resource_id END) STORED;
CREATE INDEX events_by_license ON events (subject_license, sequence DESC)
    WHERE subject_license IS NOT NULL;
CREATE INDEX events_by_product ON events (subject_product, sequence DESC)
    WHERE subject_product IS NOT NULL;
CREATE INDEX events_by_customer ON events (subject_customer, sequence DESC)
    WHERE subject_customer IS NOT NULL;
CREATE INDEX events_by_time ON events (created_at);

-- Runtime refusals counted per five-minute bucket and what they concern.
CREATE TABLE runtime_error_counts (
    bucket_start timestamptz NOT NULL,
    endpoint     text NOT NULL,
    reason_code  text NOT NULL,
    result_class text NOT NULL,
    license_id   text,
    product_id   text,
    customer_id  text,
    app_version  text,
    count        bigint NOT NULL,
    CONSTRAINT runtime_error_counts_key UNIQUE NULLS NOT DISTINCT
        (bucket_start, endpoint, reason_code, result_class, license_id, product_id,
         customer_id, app_version)
);
CREATE INDEX runtime_error_counts_product ON runtime_error_counts (product_id, bucket_start);

-- Report exports and their files.
CREATE TABLE report_exports (
    id           text PRIMARY KEY,
    status       text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    leased_until timestamptz,
    body         jsonb NOT NULL,
    content      bytea
);
CREATE INDEX report_exports_pending ON report_exports (created_at, id) WHERE status = 'pending';
CREATE INDEX report_exports_expiry ON report_exports (expires_at);
