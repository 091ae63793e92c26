//! [`RedisStore`] (feature `redis`): keys in Redis, shared by any number of app instances.
//!
//! The rules: keys are sealed at rest (see [`KeySealer`]); the browser carries only a random
//! session id in a signed cookie, and Redis holds only its SHA-256 hash, under
//! `modelgates:session:<hash>` with a TTL equal to the key's remaining lifetime, so Redis
//! purges expired entries itself. A per-user set `modelgates:user:<user id>` lists a user's
//! sessions for `revoke_user`. One multiplexed, automatically reconnecting connection
//! (`ConnectionManager`) serves all requests.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;

use super::sealed::{KeySealer, SealedKey, session_hash};
use super::transport::check_redis;
use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};
use crate::config::ModelGatesConfig;
use crate::primitives::unix_now;

/// Keys in Redis.
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_axum::store::RedisStore;
///
/// let store = RedisStore::connect("redis://127.0.0.1/", &config).await?;
/// let layer = ModelGatesAuth::new(config).with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    sealer: KeySealer,
    lifetime: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("sealer", &self.sealer)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn redis_error(what: &str) -> impl FnOnce(redis::RedisError) -> StoreError + '_ {
    move |error| StoreError::with_source(format!("{what} failed"), error)
}

fn session_key(hash: &str) -> String {
    format!("modelgates:session:{hash}")
}

fn user_key(user_id: &str) -> String {
    format!("modelgates:user:{user_id}")
}

impl RedisStore {
    /// A store over an existing connection.
    #[must_use]
    pub fn new(connection: ConnectionManager, sealer: KeySealer, lifetime: Duration) -> Self {
        Self {
            connection,
            sealer,
            lifetime,
        }
    }

    /// Connects to `url` and keeps keys as long as the layer's key cookie lives, sealed with
    /// its secrets.
    ///
    /// A server off this machine must be reached over TLS (`rediss://`); `redis://` to another
    /// host is refused unless the URL asks for plaintext explicitly with `plaintext=true`.
    ///
    /// # Errors
    ///
    /// When the URL is invalid or refused, or Redis cannot be reached.
    pub async fn connect(url: &str, config: &ModelGatesConfig) -> Result<Self, StoreError> {
        let url = check_redis(url)?;
        let client =
            redis::Client::open(url.as_str()).map_err(redis_error("opening the Redis URL"))?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(redis_error("connecting to Redis"))?;
        Ok(Self::new(
            connection,
            KeySealer::from_config(config),
            config.key_max_age,
        ))
    }

    /// Removes a session's key: its next request is signed out.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
        let _: () = self
            .connection
            .clone()
            .del(session_key(&session_hash(token)))
            .await
            .map_err(redis_error("revoking a session"))?;
        Ok(())
    }

    /// Removes every key of a ModelGates user, on every device; returns how many.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        let hashes: Vec<String> = connection
            .smembers(user_key(user_id))
            .await
            .map_err(redis_error("listing a user's sessions"))?;
        let mut keys: Vec<String> = hashes.iter().map(|h| session_key(h)).collect();
        keys.push(user_key(user_id));
        let removed: u64 = connection
            .del(keys)
            .await
            .map_err(redis_error("revoking a user's keys"))?;
        Ok(removed.saturating_sub(1))
    }
}

impl KeyStore for RedisStore {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        let now = unix_now();
        let remaining = self
            .lifetime
            .as_secs()
            .saturating_sub(now.saturating_sub(key.issued_at));
        if remaining == 0 {
            return Err(StoreError::new(
                "the key is already older than the store's lifetime",
            ));
        }
        let token = SessionToken::random();
        let hash = session_hash(&token);
        let sealed = self.sealer.seal(&key, &hash);
        let value = format!("{}.{}", sealed.key_id, STANDARD.encode(&sealed.sealed));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set_ex(session_key(&hash), value, remaining)
            .ignore();
        if let Some(user_id) = &key.user_id {
            pipe.sadd(user_key(user_id), &hash)
                .ignore()
                .expire(
                    user_key(user_id),
                    i64::try_from(remaining).unwrap_or(i64::MAX),
                )
                .ignore();
        }
        let _: () = pipe
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error("saving a key"))?;
        Ok(token)
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        let hash = session_hash(token);
        let value: Option<String> = self
            .connection
            .clone()
            .get(session_key(&hash))
            .await
            .map_err(redis_error("loading a key"))?;
        Ok(value.and_then(|value| {
            let (key_id, encoded) = value.split_once('.')?;
            let sealed = SealedKey {
                key_id: key_id.to_owned(),
                sealed: STANDARD.decode(encoded).ok()?,
            };
            self.sealer.open(&sealed, &hash)
        }))
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.revoke(token).await
    }
}
