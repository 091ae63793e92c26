//! [`CachingStore`]: an in-process cache in front of any [`KeyStore`], kept honest across app
//! instances by a [`RevocationFeed`].
//!
//! The rules this module applies:
//!
//! * The cache is moka's, bounded in entries ([`CachingStore::with_max_capacity`], default
//!   100,000) and in age ([`CachingStore::with_time_to_live`], default 5 minutes). It is keyed
//!   by the session's SHA-256 ([`SessionToken::hash`]), never by the token, and holds
//!   [`StoredKey`]s, whose [`ApiKey`](modelgates_oauth_core::ApiKey) zeroizes its memory when
//!   dropped.
//! * A load that misses goes to the store; a store error is returned, never hidden by a stale
//!   entry. A save goes to the store, then fills the cache. A remove (logout, and the sign-out
//!   after ModelGates refused a key) goes to the store first, then drops the entry here.
//! * Revocations made by any instance reach this one through the feed as session hashes and
//!   drop their entries. A load that was in flight when a revocation arrived is answered but
//!   not cached.
//! * The fallback TTL ([`CachingStore::with_fallback_ttl`], default 5 s) bounds how long a
//!   revoked key can be served when revocations cannot be heard. An entry is served only
//!   while `now − max(loaded_at, heard_until) < fallback_ttl`, where `heard_until` is the send
//!   time of the latest heartbeat that this instance published on the channel and heard back
//!   on its current subscription. The channel delivers in order, so every revocation made
//!   before that heartbeat was sent has been heard by then. Heartbeats go out four times per
//!   fallback TTL. A feed that drops, stalls or never subscribed stops advancing
//!   `heard_until`: a key revoked anywhere is then served at most the fallback TTL after its
//!   revocation. A new subscription empties the cache, since revocations sent while the feed
//!   was down were lost.
//! * Without a feed ([`CachingStore::new`] alone), entries live the fallback TTL: right for
//!   one instance, where every logout goes through this cache.
//!
//! [`PostgresStore::cached`](super::PostgresStore::cached) and
//! [`RedisStore::cached`](super::RedisStore::cached) set all of this up with their own feeds.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};
use crate::primitives::{from_hex, hex, random_bytes};

/// A publish/subscribe channel on which every instance hears the sessions revoked anywhere.
///
/// The store behind the cache publishes the [hash](SessionToken::hash) of every session it
/// revokes; the cache subscribes, and publishes its own heartbeats to learn how far behind
/// the channel it is. Implemented by [`PostgresRevocations`](super::PostgresRevocations)
/// (`LISTEN`/`NOTIFY`) and [`RedisRevocations`](super::RedisRevocations) (pub/sub).
///
/// The channel must deliver each subscriber's messages in the order they were published, and
/// a subscription must report its loss (`None`) rather than silently skip messages.
pub trait RevocationFeed: Send + Sync + 'static {
    /// A live subscription.
    type Subscription: Send + 'static;

    /// Subscribes; returns once every message published from now on will be received.
    fn subscribe(&self) -> impl Future<Output = Result<Self::Subscription, StoreError>> + Send;

    /// The next message, or `None` when the subscription is lost (it is not used again).
    fn next(
        &self,
        subscription: &mut Self::Subscription,
    ) -> impl Future<Output = Option<String>> + Send;

    /// Publishes `message` to every subscriber.
    fn publish(&self, message: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

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

/// An in-process cache in front of a [`KeyStore`]; see the [module docs](self) for its rules.
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_axum::store::{CachingStore, PostgresStore};
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
            .field("max_capacity", &self.shared.cache.policy().max_capacity())
            .field("time_to_live", &self.shared.cache.policy().time_to_live())
            .field("fallback_ttl", &self.shared.fallback_ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A session's SHA-256: the cache's key.
type Digest = [u8; 32];

/// A cached key, with when its load began.
#[derive(Clone)]
struct Cached {
    key: StoredKey,
    loaded_at: u64,
}

/// What the cache and its feed tasks share.
struct Shared {
    cache: Cache<Digest, Cached>,
    fallback_ttl: Duration,
    /// The clock's zero: times below are nanoseconds since it.
    origin: Instant,
    /// Bumped by every invalidation, so that a load that raced one is not cached.
    invalidations: AtomicU64,
    /// Whether the feed is subscribed now.
    subscribed: AtomicBool,
    /// The send time of the latest own heartbeat heard (or of the latest subscription).
    heard_until: AtomicU64,
    /// Tells our heartbeats from other instances'.
    instance: String,
    hits: AtomicU64,
    misses: AtomicU64,
    revocations_heard: AtomicU64,
    feed_losses: AtomicU64,
    /// Logs the fallback once per loss.
    warned: AtomicBool,
    /// Dropped with the last clone of the store: the feed tasks stop.
    stop: watch::Sender<()>,
}

impl Shared {
    fn new(capacity: u64, time_to_live: Duration, fallback_ttl: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(time_to_live)
                .build(),
            fallback_ttl,
            origin: Instant::now(),
            invalidations: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            heard_until: AtomicU64::new(0),
            instance: hex(&random_bytes::<8>()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            revocations_heard: AtomicU64::new(0),
            feed_losses: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            stop: watch::channel(()).0,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Whether an entry loaded at `loaded_at` may still be served (see the module rules).
    fn is_fresh(&self, loaded_at: u64, now: u64) -> bool {
        let anchor = loaded_at.max(self.heard_until.load(Ordering::Acquire));
        u128::from(now.saturating_sub(anchor)) < self.fallback_ttl.as_nanos()
    }

    /// The cached key of a session, if fresh; a stale entry is dropped.
    fn hit(&self, hash: &Digest) -> Option<StoredKey> {
        let cached = self.cache.get(hash)?;
        if self.is_fresh(cached.loaded_at, self.now()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Some(cached.key)
        } else {
            self.cache.invalidate(hash);
            None
        }
    }

    fn invalidate(&self, hash: &Digest) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(hash);
    }

    /// Caches `key`, unless an invalidation arrived since `epoch`.
    fn fill(&self, hash: Digest, key: StoredKey, loaded_at: u64, epoch: u64) {
        self.cache.insert(hash, Cached { key, loaded_at });
        // An invalidation between the load and this insert found nothing to drop: drop it now.
        if self.invalidations.load(Ordering::SeqCst) != epoch {
            self.cache.invalidate(&hash);
        }
    }

    fn heartbeat_message(&self) -> String {
        format!("heartbeat {} {}", self.instance, self.now())
    }

    /// Acts on one message from the feed.
    fn hear(&self, message: &str) {
        if let Some(heartbeat) = message.strip_prefix("heartbeat ") {
            let own = heartbeat
                .split_once(' ')
                .filter(|(instance, _)| *instance == self.instance)
                .and_then(|(_, sent)| sent.parse::<u64>().ok());
            if let Some(sent) = own.filter(|sent| *sent <= self.now()) {
                self.heard_until.fetch_max(sent, Ordering::AcqRel);
                if self.warned.swap(false, Ordering::Relaxed) {
                    tracing::info!("the revocation feed is back; cached keys are served again");
                }
            }
        } else if let Some(hash) = from_hex(message) {
            self.revocations_heard.fetch_add(1, Ordering::Relaxed);
            self.invalidate(&hash);
        } else {
            tracing::debug!("ignored a message on the revocation feed that is not ours");
        }
    }

    /// A subscription began: every revocation from now on will be heard, but those sent
    /// before may have been missed, so nothing cached before now is trusted.
    fn subscribed(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
        self.heard_until.store(self.now(), Ordering::Release);
        self.subscribed.store(true, Ordering::Release);
    }

    /// The subscription was lost: `heard_until` stops, so entries age out within the fallback
    /// TTL.
    fn lost(&self) {
        self.subscribed.store(false, Ordering::Release);
        self.feed_losses.fetch_add(1, Ordering::Relaxed);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                fallback_ttl = ?self.fallback_ttl,
                "the revocation feed was lost; cached keys now live at most the fallback TTL \
                 until it is back"
            );
        }
    }
}

impl<S: KeyStore> CachingStore<S> {
    /// A cache in front of `inner`, without a feed: entries live the fallback TTL. Add a feed
    /// with [`Self::listen`] when several instances share the store.
    #[must_use]
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared::new(
                DEFAULT_CAPACITY,
                DEFAULT_TIME_TO_LIVE,
                DEFAULT_FALLBACK_TTL,
            )),
        }
    }

    /// Rebuilds the cache with new bounds; for the builder methods, before any use.
    fn rebuilt(self, capacity: u64, time_to_live: Duration, fallback_ttl: Duration) -> Self {
        Self {
            inner: self.inner,
            shared: Arc::new(Shared::new(capacity, time_to_live, fallback_ttl)),
        }
    }

    fn time_to_live(&self) -> Duration {
        self.shared
            .cache
            .policy()
            .time_to_live()
            .unwrap_or(DEFAULT_TIME_TO_LIVE)
    }

    /// At most `capacity` keys are cached; the least useful are evicted first (default
    /// 100,000). Call before [`Self::listen`].
    #[must_use]
    pub fn with_max_capacity(self, capacity: u64) -> Self {
        let (ttl, fallback) = (self.time_to_live(), self.shared.fallback_ttl);
        self.rebuilt(capacity, ttl, fallback)
    }

    /// A cached key is loaded again from the store at least this often, revoked or not
    /// (default 5 minutes). Call before [`Self::listen`].
    #[must_use]
    pub fn with_time_to_live(self, time_to_live: Duration) -> Self {
        let (capacity, fallback) = (
            self.shared
                .cache
                .policy()
                .max_capacity()
                .unwrap_or(DEFAULT_CAPACITY),
            self.shared.fallback_ttl,
        );
        self.rebuilt(capacity, time_to_live, fallback)
    }

    /// The longest a key revoked elsewhere is still served when revocations cannot be heard
    /// (default 5 s); heartbeats go out four times as often. Call before [`Self::listen`].
    #[must_use]
    pub fn with_fallback_ttl(self, fallback_ttl: Duration) -> Self {
        let capacity = self
            .shared
            .cache
            .policy()
            .max_capacity()
            .unwrap_or(DEFAULT_CAPACITY);
        let ttl = self.time_to_live();
        self.rebuilt(capacity, ttl, fallback_ttl.max(Duration::from_millis(1)))
    }

    /// Subscribes to `feed`, then keeps listening in a background task (re-subscribing when
    /// the subscription is lost) until the last clone of this store is dropped.
    ///
    /// Call within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// When the first subscription fails.
    pub async fn listen<F: RevocationFeed>(self, feed: F) -> Result<Self, StoreError> {
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
        let every = self.shared.fallback_ttl / 4;
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

/// Hears the feed until the store is dropped, re-subscribing after each loss.
async fn receive<F: RevocationFeed>(
    shared: Weak<Shared>,
    feed: Arc<F>,
    mut subscription: F::Subscription,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let message = tokio::select! {
            message = feed.next(&mut subscription) => message,
            _ = stop.changed() => return,
        };
        let Some(shared_now) = shared.upgrade() else {
            return;
        };
        if let Some(message) = message {
            shared_now.hear(&message);
            continue;
        }
        shared_now.lost();
        drop(shared_now);
        let mut delay = Duration::from_millis(50);
        subscription = loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return,
            }
            match feed.subscribe().await {
                Ok(subscription) => break subscription,
                Err(error) => {
                    tracing::warn!(%error, "subscribing to the revocation feed failed; retrying");
                    delay = (delay * 2).min(MAX_RESUBSCRIBE_DELAY);
                }
            }
        };
        let Some(shared_now) = shared.upgrade() else {
            return;
        };
        shared_now.subscribed();
    }
}

/// Publishes a heartbeat every `every` until the store is dropped.
async fn send_heartbeats<F: RevocationFeed>(
    shared: Weak<Shared>,
    feed: Arc<F>,
    every: Duration,
    mut stop: watch::Receiver<()>,
) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(message) = shared.upgrade().map(|shared| shared.heartbeat_message()) else {
            return;
        };
        if let Err(error) = feed.publish(&message).await {
            tracing::debug!(%error, "publishing a heartbeat on the revocation feed failed");
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
}

#[cfg(test)]
mod tests;
