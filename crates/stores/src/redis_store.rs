//! [`RedisStore`] (feature `redis`): keys in Redis, shared by any number of app instances, and
//! [`RedisRevocations`], the pub/sub feed of its [`CachingStore`].
//!
//! The rules are on [`RedisStore`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, PubSub};

use crate::at_rest::{SealedKey, StoreSettings};
use crate::transport::{DATABASE_TIMEOUT, check_redis};
use modelgates_axum::store::{
    CachingStore, FlowSpend, KeyStore, RevocationFeed, SessionToken, StoreError, StoredKey,
    TokenProtection,
};
use modelgates_oauth_core::__private::unix_now;

/// Keys in Redis, shared by any number of app instances.
///
/// The rules: keys are sealed at rest (see [`KeySealer`](crate::KeySealer)); the browser carries only a random
/// session id in a signed cookie, and Redis holds only its SHA-256 hash, under
/// `modelgates:session:<hash>` with a TTL equal to the key's remaining lifetime, so Redis
/// purges expired entries itself. A per-user set `modelgates:user:<user id>` lists a user's
/// sessions for `revoke_user`; its TTL only ever grows, to that of the user's longest-lived
/// session. One multiplexed, automatically reconnecting connection
/// (`ConnectionManager`) serves all requests. Every revocation (`remove`, `revoke`,
/// `revoke_user`) deletes and publishes the session hash on `modelgates:revoked` in one
/// `MULTI`, so every instance's cache hears it; keys deleted by other means (an expiry, a
/// `DEL` outside this crate) are not announced.
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_stores::RedisStore;
///
/// let store = RedisStore::connect("redis://127.0.0.1/", &config).await?;
/// let layer = ModelGatesAuth::new(config).with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    connection: ConnectionManager,
    settings: StoreSettings,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::fmt_store(f, "RedisStore", &self.settings)
    }
}

fn redis_error(what: &str) -> impl Fn(redis::RedisError) -> StoreError + '_ {
    move |error| StoreError::with_source(format!("{what} failed"), error)
}

fn session_key(hash: &str) -> String {
    format!("modelgates:session:{hash}")
}

fn spent_flow_key(flow_id: &str) -> String {
    let hash = crate::spent_flow_hash(flow_id);
    format!("modelgates:flow:{hash}")
}

fn user_key(user_id: &str) -> String {
    format!("modelgates:user:{user_id}")
}

/// The sorted set of linked accounts (all scored 0, so ordered by their bytes for
/// `ZRANGEBYLEX` paging). A link whose session is gone lingers until a listing passes it.
const LINKS_KEY: &str = "modelgates:links";

/// `EXPIRE KEYS[1] ARGV[1]` only when that lengthens the key's life (a key without a TTL, as
/// a set `SADD` just made, counts as shorter): a user's index must outlive every session it
/// lists, so a short session saved after a long one must not shorten it. A script rather than
/// `EXPIRE … GT`, which needs Redis 7 and never sets a TTL on a key without one.
const EXTEND_TTL: &str = "local ttl = redis.call('TTL', KEYS[1]) \
    if ttl >= 0 and ttl >= tonumber(ARGV[1]) then return 0 end \
    return redis.call('EXPIRE', KEYS[1], ARGV[1])";

/// The channel on which revocations are announced.
const CHANNEL: &str = "modelgates:revoked";

/// Adds to `pipe`: delete the sessions of `hashes` and announce each.
fn revoke_in(pipe: &mut redis::Pipeline, hashes: &[String]) {
    for hash in hashes {
        pipe.del(session_key(hash)).ignore();
        pipe.publish(CHANNEL, hash).ignore();
    }
}

impl RedisStore {
    /// A store over an existing connection made by `client` (which also opens the
    /// subscriptions of [`Self::revocations`]).
    #[must_use]
    pub fn new(
        client: redis::Client,
        connection: ConnectionManager,
        settings: StoreSettings,
    ) -> Self {
        Self {
            client,
            connection,
            settings,
        }
    }

    /// Connects to `url` and keeps keys as long as `settings` say; given the layer's
    /// configuration (`&config`), as long as its key cookie lives, sealed with its secrets.
    ///
    /// A server off this machine must be reached over TLS (`rediss://`); `redis://` to another
    /// host is refused unless the URL asks for plaintext explicitly with `plaintext=true`.
    ///
    /// # Errors
    ///
    /// When the URL is invalid or refused, or Redis cannot be reached.
    pub async fn connect(
        url: &str,
        settings: impl Into<StoreSettings>,
    ) -> Result<Self, StoreError> {
        let url = check_redis(url)?;
        let client =
            redis::Client::open(url.as_str()).map_err(redis_error("opening the Redis URL"))?;
        // A lost connection is re-made on the next command; two quick retries, not the
        // default six over 6 s, so a request during an outage is answered 503 at once.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(DATABASE_TIMEOUT)
            .set_response_timeout(DATABASE_TIMEOUT)
            .set_number_of_retries(2)
            .set_max_delay(500);
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(redis_error("connecting to Redis"))?;
        Ok(Self::new(client, connection, settings.into()))
    }

    /// Removes a session's key: its next request is signed out.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        revoke_in(pipe.atomic(), &[token.hash()]);
        let _: () = pipe
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error("revoking a session"))?;
        Ok(())
    }

    /// The feed on which every instance hears this store's revocations.
    #[must_use]
    pub fn revocations(&self) -> RedisRevocations {
        RedisRevocations {
            client: self.client.clone(),
            connection: self.connection.clone(),
        }
    }

    /// This store behind a [`CachingStore`] with the default bounds, listening to
    /// [`Self::revocations`]. Call within a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
    /// use modelgates_axum::ModelGatesAuth;
    /// use modelgates_stores::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1/", &config).await?;
    /// let layer = ModelGatesAuth::new(config).with_store(store.cached().await?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When subscribing fails.
    pub async fn cached(&self) -> Result<CachingStore<Self>, StoreError> {
        CachingStore::new(self.clone())
            .listen(self.revocations())
            .await
    }
}

impl RedisStore {
    /// Adds to `pipe`: keep `key` under `token` for its remaining life, in its user's index.
    fn save_in(
        &self,
        pipe: &mut redis::Pipeline,
        token: &SessionToken,
        key: &StoredKey,
    ) -> Result<(), StoreError> {
        let remaining = key.remaining(self.settings.lifetime, unix_now());
        if remaining == 0 {
            return Err(StoreError::new(
                "the key is already older than the store's lifetime, or expired",
            ));
        }
        let hash = token.hash();
        let sealed = self.settings.sealer.seal(key, &hash);
        let value = format!("{}.{}", sealed.key_id, STANDARD.encode(&sealed.sealed));
        pipe.set_ex(session_key(&hash), value, remaining).ignore();
        if let Some(user_id) = &key.user_id {
            pipe.sadd(user_key(user_id), &hash)
                .ignore()
                .cmd("EVAL")
                .arg(EXTEND_TTL)
                .arg(1)
                .arg(user_key(user_id))
                .arg(remaining)
                .ignore();
        }
        Ok(())
    }
}

impl KeyStore for RedisStore {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        let token = SessionToken::random();
        let mut pipe = redis::pipe();
        self.save_in(pipe.atomic(), &token, &key)?;
        let _: () = pipe
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error("saving a key"))?;
        Ok(token)
    }

    /// In one `MULTI`: the key linked before deleted and announced, the new one saved, the
    /// account added to `modelgates:links`.
    async fn save_link(&self, account: &str, key: StoredKey) -> Result<(), StoreError> {
        let token = SessionToken::for_account(account);
        let mut pipe = redis::pipe();
        revoke_in(pipe.atomic(), &[token.hash()]);
        self.save_in(&mut pipe, &token, &key)?;
        pipe.zadd(LINKS_KEY, account, 0).ignore();
        let _: () = pipe
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error("saving a link"))?;
        Ok(())
    }

    /// `ZRANGEBYLEX` pages, each account's session checked with `EXISTS`; accounts whose
    /// session is gone are dropped from the set on the way.
    async fn linked_accounts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        let failed = redis_error("listing linked accounts");
        let mut start = after.map_or_else(|| "-".to_owned(), |after| format!("({after}"));
        let mut live = Vec::new();
        while live.len() < limit {
            let wanted = limit - live.len();
            let page: Vec<String> = connection
                .zrangebylex_limit(
                    LINKS_KEY,
                    &start,
                    "+",
                    0,
                    isize::try_from(wanted).unwrap_or(isize::MAX),
                )
                .await
                .map_err(&failed)?;
            let Some(last) = page.last() else { break };
            start = format!("({last}");
            let mut pipe = redis::pipe();
            for account in &page {
                pipe.exists(session_key(&SessionToken::for_account(account).hash()));
            }
            let exists: Vec<bool> = pipe.query_async(&mut connection).await.map_err(&failed)?;
            let (found, gone): (Vec<_>, Vec<_>) =
                page.iter().zip(exists).partition(|(_, exists)| *exists);
            if !gone.is_empty() {
                let gone: Vec<&String> = gone.into_iter().map(|(account, _)| account).collect();
                let _: () = connection.zrem(LINKS_KEY, gone).await.map_err(&failed)?;
            }
            live.extend(found.into_iter().map(|(account, _)| account.clone()));
            if page.len() < wanted {
                break;
            }
        }
        Ok(live)
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        let hash = token.hash();
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
            self.settings.sealer.open(&sealed, &hash)
        }))
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.revoke(token).await
    }

    /// `SET modelgates:flow:<SHA-256 of the id> 1 NX PX <lives>`: only the first caller sets it.
    async fn spend_flow(&self, flow_id: &str, lives: Duration) -> Result<FlowSpend, StoreError> {
        let lives_ms = u64::try_from(lives.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = redis::cmd("SET")
            .arg(spent_flow_key(flow_id))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(lives_ms + 1000)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error("recording a spent sign-in flow"))?;
        Ok(crate::flow_spend(set.is_some()))
    }

    /// `PING`.
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error("checking Redis"))?;
        Ok(())
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        keep: Option<&SessionToken>,
    ) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        let mut hashes: Vec<String> = connection
            .smembers(user_key(user_id))
            .await
            .map_err(redis_error("listing a user's sessions"))?;
        let kept = keep.map(SessionToken::hash);
        hashes.retain(|hash| Some(hash) != kept.as_ref());
        let mut pipe = redis::pipe();
        pipe.atomic();
        if hashes.is_empty() {
            pipe.cmd("ECHO").arg(0);
        } else {
            // Counted first, so the answer is the number of live sessions revoked.
            let keys: Vec<String> = hashes.iter().map(|h| session_key(h)).collect();
            pipe.exists(keys);
        }
        revoke_in(&mut pipe, &hashes);
        match &kept {
            Some(_) if !hashes.is_empty() => {
                pipe.srem(user_key(user_id), &hashes).ignore();
            }
            Some(_) => {}
            None => {
                pipe.del(user_key(user_id)).ignore();
            }
        }
        let (removed,): (u64,) = pipe
            .query_async(&mut connection)
            .await
            .map_err(redis_error("revoking a user's keys"))?;
        Ok(removed)
    }
}

/// The revocation feed of a [`RedisStore`]: a subscription to `modelgates:revoked` on a
/// connection of its own, and heartbeats published on the store's connection. Made by
/// [`RedisStore::revocations`].
#[derive(Clone)]
pub struct RedisRevocations {
    client: redis::Client,
    connection: ConnectionManager,
}

impl std::fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("channel", &CHANNEL)
            .finish_non_exhaustive()
    }
}

impl RevocationFeed for RedisRevocations {
    type Subscription = PubSub;

    async fn subscribe(&self) -> Result<PubSub, StoreError> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(redis_error("listening for revocations"))?;
        pubsub
            .subscribe(CHANNEL)
            .await
            .map_err(redis_error("listening for revocations"))?;
        Ok(pubsub)
    }

    async fn next(&self, pubsub: &mut PubSub) -> Option<String> {
        // The stream ends when the connection is lost.
        let message = pubsub.on_message().next().await?;
        Some(message.get_payload().unwrap_or_default())
    }

    async fn publish(&self, message: &str) -> Result<(), StoreError> {
        let _: () = self
            .connection
            .clone()
            .publish(CHANNEL, message)
            .await
            .map_err(redis_error("publishing on the revocation feed"))?;
        Ok(())
    }
}
