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
-- A claim walks the eligible endpoints and takes at most a few due deliveries of each, so
-- its cost follows the number of endpoints, not the size of the backlog.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at, id)
    WHERE status = 'pending';
-- The deliveries in flight (or whose sender died holding them), counted per endpoint.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (webhook_id)
    WHERE status = 'pending' AND lease_until IS NOT NULL;
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (webhook_id, id DESC);
-- Retention: finished deliveries by the start of their series.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (series_started_at)
    WHERE status <> 'pending';

CREATE TABLE webhook_delivery_attempts (
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    status_code integer,
    error       text,
    duration_ms bigint NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
