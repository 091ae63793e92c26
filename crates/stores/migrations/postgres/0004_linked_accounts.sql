-- modelgates-axum key store, version 4: linked accounts. The app's user `account` is linked to
-- the key kept in modelgates_keys under the session hash of SessionToken::for_account(account).
-- No foreign key (a TRUNCATE of modelgates_keys must keep working): a link whose key row is
-- gone is never listed, and the purge deletes it.
CREATE TABLE IF NOT EXISTS modelgates_links (
    account      TEXT COLLATE "C" PRIMARY KEY,
    session_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS modelgates_links_session_hash ON modelgates_links (session_hash);
