-- A signing key published ahead of use (`keys rotate --activate-in`): stored retired, with
-- the instant it starts signing; every instance switches to it then by its own clock.
ALTER TABLE signing_keys ADD COLUMN activates_at timestamptz;
