-- Telemetry records (an extension): what devices report, numbered in the order received.
CREATE TABLE telemetry (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    license_id  text NOT NULL CONSTRAINT telemetry_license_fkey REFERENCES licenses (id),
    received_at timestamptz NOT NULL,
    well_formed boolean NOT NULL,
    problems    jsonb NOT NULL,
    payload     jsonb NOT NULL
);
-- A license's records, newest first.
CREATE INDEX telemetry_license ON telemetry (license_id, id DESC);
-- The retention purge.
CREATE INDEX telemetry_received ON telemetry (received_at);
