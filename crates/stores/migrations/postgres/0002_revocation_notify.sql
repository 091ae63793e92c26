-- modelgates-axum key store, version 2: every deleted row (logout, revoke, revoke_user, purge,
-- or an app's own DELETE) is announced on the channel `modelgates_revoked`, carrying only the
-- session hash, so that the caches of every app instance (CachingStore) drop it at once.
CREATE OR REPLACE FUNCTION modelgates_keys_announce_revoked() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('modelgates_revoked', OLD.session_hash);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER modelgates_keys_announce_revoked
    AFTER DELETE ON modelgates_keys
    FOR EACH ROW EXECUTE FUNCTION modelgates_keys_announce_revoked();
