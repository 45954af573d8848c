-- Webhook secrets sealed at rest like signing seeds: under the store's master key, with the
-- endpoint id as associated data. A row holds its secret either sealed or (written without a
-- master key) in the clear, never both; clear ones are sealed at the next start with a key.
ALTER TABLE webhooks ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE webhooks ADD COLUMN secret_sealed bytea;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_one_secret
    CHECK ((secret IS NULL) <> (secret_sealed IS NULL));
