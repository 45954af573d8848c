-- Idempotency records whose stored answer holds secrets (the keys of licenses created in
-- bulk) are sealed under the master key when one is configured.
ALTER TABLE idempotency_records ADD COLUMN sealed boolean NOT NULL DEFAULT false;
