-- Device registrations (an extension): serials registered on a license, each with a device
-- secret and at most one session. `body` is the record without its hashes, which have
-- columns of their own (looked up by, never serialized).
CREATE TABLE device_registrations (
    id                 text PRIMARY KEY,
    license_id         text NOT NULL
        CONSTRAINT device_registrations_license_fkey REFERENCES licenses (id),
    serial             text NOT NULL CONSTRAINT device_registrations_serial_key UNIQUE,
    secret_hash        bytea NOT NULL,
    -- The activated device (compared by an activation's write, under the license's lock).
    device_id          text,
    session_token_hash bytea CONSTRAINT device_registrations_session_key UNIQUE,
    created_at         timestamptz NOT NULL,
    body               jsonb NOT NULL
);
-- A license's registrations, by serial.
CREATE INDEX device_registrations_license ON device_registrations (license_id, serial);
