-- modelgates-axum key store, version 2: spent sign-in flows, shared by every process that uses
-- this file (a hash of the flow id, until the flow would have expired anyway).
CREATE TABLE IF NOT EXISTS modelgates_spent_flows (
    flow_hash  TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS modelgates_spent_flows_expires_at ON modelgates_spent_flows (expires_at);
