-- Idempotency records expire (the server purges them after LICENTIA_IDEMPOTENCY_TTL):
-- the purge finds the oldest ones by this index.
CREATE INDEX idempotency_records_created ON idempotency_records (created_at);
