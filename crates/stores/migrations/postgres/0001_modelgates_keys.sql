-- modelgates-axum key store, version 1. Idempotent: safe to run at every start.
-- Keys are sealed (AES-256-GCM) with a key derived from the cookie secret; session ids are
-- stored as SHA-256 hashes, so a dump of this table holds nothing usable.
CREATE TABLE IF NOT EXISTS modelgates_keys (
    session_hash TEXT PRIMARY KEY,
    user_id      TEXT,
    key_id       TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS modelgates_keys_expires_at ON modelgates_keys (expires_at);
CREATE INDEX IF NOT EXISTS modelgates_keys_user_id ON modelgates_keys (user_id);
