-- Management users (an extension): e-mail unique; the password's Argon2id PHC string and the
-- SHA-256 of the pending one-time token (invitation or password reset) in columns of their
-- own, never in `body`; the TOTP secret (which must be read back) sealed under the master key
-- when there is one (`totp_secret_sealed`), else as is.
CREATE TABLE users (
    id            text PRIMARY KEY,
    email         text NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash text,
    token_hash    bytea CONSTRAINT users_token_hash_key UNIQUE,
    totp_secret   bytea,
    totp_secret_sealed bytea,
    created_at    timestamptz NOT NULL,
    body          jsonb NOT NULL
);
