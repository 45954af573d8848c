-- The webhook outbox (DESIGN 5): one delivery per (event, subscribed endpoint), written by the
-- statement that appends the event, so a delivery commits exactly when its event does.
-- Senders claim due deliveries with FOR UPDATE SKIP LOCKED and a lease; `attempts` numbers
-- the claims, so a report from a sender whose lease ran out changes nothing.
ALTER TABLE webhooks ADD COLUMN paused_until timestamptz;

CREATE TABLE webhook_deliveries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id        text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_sequence    bigint NOT NULL REFERENCES events (sequence),
    status            text NOT NULL DEFAULT 'pending',
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    lease_until       timestamptz,
    series_started_at timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_sequence)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (webhook_id, id DESC);

CREATE TABLE webhook_delivery_attempts (
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    status_code integer,
    error       text,
    duration_ms bigint NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
