//! [`CachingStore`]: an in-process cache in front of any [`KeyStore`], kept honest across app
//! instances by a [`RevocationFeed`].
//!
//! The rules it applies are on [`CachingStore`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};

/// How a [`CachingStore`] has fared, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads answered from the cache.
    pub hits: u64,
    /// Loads that went to the store.
    pub misses: u64,
    /// Revocations heard on the feed.
    pub revocations_heard: u64,
    /// Times the feed's subscription was lost.
    pub feed_losses: u64,
    /// Whether the feed is subscribed now.
    pub subscribed: bool,
}

const DEFAULT_CAPACITY: u64 = 100_000;
const DEFAULT_TIME_TO_LIVE: Duration = Duration::from_secs(5 * 60);
const DEFAULT_FALLBACK_TTL: Duration = Duration::from_secs(5);
/// The longest wait between two attempts to subscribe again.
const MAX_RESUBSCRIBE_DELAY: Duration = Duration::from_secs(5);

/// An in-process cache in front of a [`KeyStore`].
///
/// The rules it applies:
///
/// * The cache is moka's, bounded in entries
///   ([`with_max_capacity`](Self::with_max_capacity), default 100,000) and in age
///   ([`with_time_to_live`](Self::with_time_to_live), default 5 minutes). It is keyed by the
///   session's SHA-256 ([`SessionToken::hash`]), never by the token, and holds
///   [`StoredKey`]s, whose [`ApiKey`](modelgates_oauth_core::ApiKey) zeroizes its memory when
///   dropped.
/// * A load that misses goes to the store; a store error is returned, never hidden by a stale
///   entry. A save goes to the store, then fills the cache. A remove (logout, and the sign-out
///   after ModelGates refused a key) goes to the store first, then drops the entry here.
/// * Revocations made by any instance reach this one through the feed as session hashes and
///   drop their entries. A load that was in flight when a revocation arrived is answered but
///   not cached.
/// * The fallback TTL ([`with_fallback_ttl`](Self::with_fallback_ttl), default 5 s) bounds
///   how long a revoked key can be served when revocations cannot be heard. An entry is served only
///   while `now − max(loaded_at, heard_until) < fallback_ttl`, where `heard_until` is the send
///   time of the latest heartbeat that this instance published on the channel and heard back
///   on its current subscription. The channel delivers in order, so every revocation made
///   before that heartbeat was sent has been heard by then. Heartbeats go out four times per
///   fallback TTL. A feed that drops, stalls or never subscribed stops advancing
///   `heard_until`: a key revoked anywhere is then served at most the fallback TTL after its
///   revocation. A new subscription empties the cache, since revocations sent while the feed
///   was down were lost.
/// * Without a feed ([`new`](Self::new) alone), entries live the fallback TTL: right for
///   one instance, where every logout goes through this cache.
///
/// `PostgresStore::cached` and `RedisStore::cached` (crate `modelgates-stores`) set all
/// of this up with their own feeds.
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_axum::store::CachingStore;
/// use modelgates_stores::PostgresStore;
/// use std::time::Duration;
///
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", &config).await?;
/// let cached = CachingStore::new(store.clone())
///     .with_max_capacity(50_000)
///     .with_fallback_ttl(Duration::from_secs(2))
///     .listen(store.revocations())
///     .await?;
/// let layer = ModelGatesAuth::new(config).with_store(cached);
/// # Ok(())
/// # }
/// ```
pub struct CachingStore<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for CachingStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CachingStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingStore")
            .field("inner", &self.inner)
            .field("bounds", &self.shared.bounds)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S: KeyStore> CachingStore<S> {
    /// A cache in front of `inner`, without a feed: entries live the fallback TTL. Add a feed
    /// with [`Self::listen`] when several instances share the store.
    #[must_use]
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared::new(Bounds {
                capacity: DEFAULT_CAPACITY,
                time_to_live: DEFAULT_TIME_TO_LIVE,
                fallback_ttl: DEFAULT_FALLBACK_TTL,
            })),
        }
    }

    /// The same store with a cache of new bounds.
    ///
    /// # Panics
    ///
    /// After [`Self::listen`]: the feed would be left listening for a cache nobody uses.
    fn rebuilt(self, bounds: Bounds) -> Self {
        assert!(
            !self.is_listening(),
            "CachingStore: call with_max_capacity, with_time_to_live and with_fallback_ttl \
             before listen"
        );
        Self {
            inner: self.inner,
            shared: Arc::new(Shared::new(bounds)),
        }
    }

    fn is_listening(&self) -> bool {
        self.shared.stop.receiver_count() > 0
    }

    /// At most `capacity` keys are cached; the least useful are evicted first (default
    /// 100,000).
    ///
    /// # Panics
    ///
    /// When called after [`Self::listen`].
    #[must_use]
    pub fn with_max_capacity(self, capacity: u64) -> Self {
        let bounds = Bounds {
            capacity,
            ..self.shared.bounds
        };
        self.rebuilt(bounds)
    }

    /// A cached key is loaded again from the store at least this often, revoked or not
    /// (default 5 minutes).
    ///
    /// # Panics
    ///
    /// When called after [`Self::listen`].
    #[must_use]
    pub fn with_time_to_live(self, time_to_live: Duration) -> Self {
        let bounds = Bounds {
            time_to_live,
            ..self.shared.bounds
        };
        self.rebuilt(bounds)
    }

    /// The longest a key revoked elsewhere is still served when revocations cannot be heard
    /// (default 5 s); heartbeats go out four times as often.
    ///
    /// # Panics
    ///
    /// When called after [`Self::listen`].
    #[must_use]
    pub fn with_fallback_ttl(self, fallback_ttl: Duration) -> Self {
        let bounds = Bounds {
            fallback_ttl: fallback_ttl.max(Duration::from_millis(1)),
            ..self.shared.bounds
        };
        self.rebuilt(bounds)
    }

    /// Subscribes to `feed`, then keeps listening in a background task (re-subscribing when
    /// the subscription is lost) until the last clone of this store is dropped.
    ///
    /// Call within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When the first subscription fails.
    ///
    /// # Panics
    ///
    /// When this store already listens to a feed: one feed's heartbeats say nothing of
    /// another's revocations.
    pub async fn listen<F: RevocationFeed>(self, feed: F) -> Result<Self, StoreError> {
        assert!(
            !self.is_listening(),
            "CachingStore: listen to one feed only"
        );
        let feed = Arc::new(feed);
        let subscription = feed.subscribe().await?;
        self.shared.subscribed();
        let (shared, stop) = (Arc::downgrade(&self.shared), self.shared.stop.subscribe());
        tokio::spawn(receive(
            shared.clone(),
            feed.clone(),
            subscription,
            stop.clone(),
        ));
        let every = self.shared.bounds.fallback_ttl / 4;
        tokio::spawn(send_heartbeats(shared, feed, every, stop));
        Ok(self)
    }
}

impl<S> CachingStore<S> {
    /// The store behind the cache, for its own methods (such as `revoke_user`).
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Drops this instance's cached entry for `token`, if any.
    pub fn invalidate(&self, token: &SessionToken) {
        self.shared.invalidate(&token.digest());
    }

    /// Counts since the store was made.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let shared = &self.shared;
        CacheStats {
            hits: shared.hits.load(Ordering::Relaxed),
            misses: shared.misses.load(Ordering::Relaxed),
            revocations_heard: shared.revocations_heard.load(Ordering::Relaxed),
            feed_losses: shared.feed_losses.load(Ordering::Relaxed),
            subscribed: shared.subscribed.load(Ordering::Acquire),
        }
    }
}

impl<S: KeyStore> KeyStore for CachingStore<S> {
    const TOKEN_PROTECTION: TokenProtection = S::TOKEN_PROTECTION;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        let (epoch, saved_at) = (
            self.shared.invalidations.load(Ordering::SeqCst),
            self.shared.now(),
        );
        let token = self.inner.save(key.clone()).await?;
        self.shared.fill(token.digest(), key, saved_at, epoch);
        Ok(token)
    }

    fn load_now(&self, token: &SessionToken) -> Option<Result<Option<StoredKey>, StoreError>> {
        self.shared.hit(&token.digest()).map(|key| Ok(Some(key)))
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        let shared = &self.shared;
        let hash = token.digest();
        if let Some(key) = shared.hit(&hash) {
            return Ok(Some(key));
        }
        shared.misses.fetch_add(1, Ordering::Relaxed);
        crate::observe::key_cache(false);
        let (epoch, loaded_at) = (shared.invalidations.load(Ordering::SeqCst), shared.now());
        let loaded = self.inner.load(token).await?;
        if let Some(key) = &loaded {
            shared.fill(hash, key.clone(), loaded_at, epoch);
        }
        Ok(loaded)
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        let removed = self.inner.remove(token).await;
        self.shared.invalidate(&token.digest());
        removed
    }

    /// The store's save (which announces the replaced key to every instance), then this
    /// instance's entry replaced.
    async fn save_link(&self, account: &str, key: StoredKey) -> Result<(), StoreError> {
        let token = SessionToken::for_account(account);
        self.shared.invalidate(&token.digest());
        let (epoch, saved_at) = (
            self.shared.invalidations.load(Ordering::SeqCst),
            self.shared.now(),
        );
        self.inner.save_link(account, key.clone()).await?;
        self.shared.fill(token.digest(), key, saved_at, epoch);
        Ok(())
    }

    /// The store's own list: links are listed from the store, never from the cache.
    fn linked_accounts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<String>, StoreError>> + Send {
        self.inner.linked_accounts(after, limit)
    }

    /// The store's own record: spent flows are never cached.
    fn spend_flow(
        &self,
        flow_id: &str,
        lives: Duration,
    ) -> impl std::future::Future<Output = Result<super::FlowSpend, StoreError>> + Send {
        self.inner.spend_flow(flow_id, lives)
    }

    /// The store's own revocation (announced to every instance through its feed), and this
    /// instance's cached sessions of the user dropped at once.
    /// The store's own answer: the cache answers for keys, not for the store.
    fn ping(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.inner.ping()
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        keep: Option<&SessionToken>,
    ) -> Result<u64, StoreError> {
        let revoked = self.inner.revoke_user(user_id, keep).await;
        let kept = keep.map(SessionToken::digest);
        self.shared.invalidate_user(user_id, kept.as_ref());
        revoked
    }
}

mod feed;
mod shared;
#[cfg(test)]
mod tests;

pub use feed::RevocationFeed;
use feed::{receive, send_heartbeats};
use shared::{Bounds, Shared};
