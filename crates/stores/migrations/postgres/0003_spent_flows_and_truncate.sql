-- modelgates-axum key store, version 3.
-- Spent sign-in flows, shared by every instance: a callback replayed on another instance finds
-- its flow here and is refused. Only a hash of the flow id is kept, until the flow would have
-- expired anyway.
CREATE UNLOGGED TABLE IF NOT EXISTS modelgates_spent_flows (
    flow_hash  TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS modelgates_spent_flows_expires_at ON modelgates_spent_flows (expires_at);
-- A TRUNCATE of the keys table deletes every session without firing the row trigger: it is
-- announced as `*`, and every instance's cache drops everything it holds.
CREATE OR REPLACE FUNCTION modelgates_keys_announce_truncated() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('modelgates_revoked', '*');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER modelgates_keys_announce_truncated
    AFTER TRUNCATE ON modelgates_keys
    FOR EACH STATEMENT EXECUTE FUNCTION modelgates_keys_announce_truncated();
