//! What a [`CachingStore`](super::CachingStore) and its feed tasks share: the cache, the
//! clock, and what the feed has told it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::watch;
use tokio::time::Instant;

use modelgates_oauth_core::__private::random_bytes;

use crate::hex::{from_hex, hex};
use crate::store::StoredKey;

/// A session's SHA-256: the cache's key.
pub(super) type Digest = [u8; 32];

/// A cached key, with when its load began.
#[derive(Clone)]
pub(super) struct Cached {
    pub(super) key: StoredKey,
    pub(super) loaded_at: u64,
}

/// What the cache and its feed tasks share.
/// How big and how old the cache may grow, and how stale it may be without a feed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub(super) capacity: u64,
    pub(super) time_to_live: Duration,
    pub(super) fallback_ttl: Duration,
}

pub(super) struct Shared {
    pub(super) cache: Cache<Digest, Cached>,
    pub(super) bounds: Bounds,
    /// The clock's zero: times below are nanoseconds since it.
    pub(super) origin: Instant,
    /// Bumped by every invalidation, so that a load that raced one is not cached.
    pub(super) invalidations: AtomicU64,
    /// Whether the feed is subscribed now.
    pub(super) subscribed: AtomicBool,
    /// The send time of the latest own heartbeat heard (or of the latest subscription).
    pub(super) heard_until: AtomicU64,
    /// Tells our heartbeats from other instances'.
    pub(super) instance: String,
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) revocations_heard: AtomicU64,
    pub(super) feed_losses: AtomicU64,
    /// Logs the fallback once per loss.
    pub(super) warned: AtomicBool,
    /// Dropped with the last clone of the store: the feed tasks stop.
    pub(super) stop: watch::Sender<()>,
}

impl Shared {
    pub(super) fn new(bounds: Bounds) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(bounds.capacity)
                .time_to_live(bounds.time_to_live)
                .build(),
            bounds,
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

    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Whether an entry loaded at `loaded_at` may still be served (see the module rules).
    pub(super) fn is_fresh(&self, loaded_at: u64, now: u64) -> bool {
        let anchor = loaded_at.max(self.heard_until.load(Ordering::Acquire));
        u128::from(now.saturating_sub(anchor)) < self.bounds.fallback_ttl.as_nanos()
    }

    /// The cached key of a session, if fresh; a stale entry is dropped.
    pub(super) fn hit(&self, hash: &Digest) -> Option<StoredKey> {
        let cached = self.cache.get(hash)?;
        if self.is_fresh(cached.loaded_at, self.now()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            crate::observe::key_cache(true);
            Some(cached.key)
        } else {
            self.cache.invalidate(hash);
            None
        }
    }

    pub(super) fn invalidate(&self, hash: &Digest) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(hash);
    }

    /// Drops every cached session of `user_id` but `keep`.
    pub(super) fn invalidate_user(&self, user_id: &str, keep: Option<&Digest>) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        let doomed: Vec<Digest> = self
            .cache
            .iter()
            .filter(|(hash, cached)| {
                cached.key.user_id.as_deref() == Some(user_id) && Some(&**hash) != keep
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in doomed {
            self.cache.invalidate(&hash);
        }
    }

    /// Caches `key`, unless an invalidation arrived since `epoch`.
    pub(super) fn fill(&self, hash: Digest, key: StoredKey, loaded_at: u64, epoch: u64) {
        self.cache.insert(hash, Cached { key, loaded_at });
        // An invalidation between the load and this insert found nothing to drop: drop it now.
        if self.invalidations.load(Ordering::SeqCst) != epoch {
            self.cache.invalidate(&hash);
        }
    }

    pub(super) fn heartbeat_message(&self) -> String {
        format!("heartbeat {} {}", self.instance, self.now())
    }

    /// Acts on one message from the feed.
    pub(super) fn hear(&self, message: &str) {
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
        } else if message == "*" {
            // Every session was deleted at once (PostgreSQL's TRUNCATE trigger).
            self.revocations_heard.fetch_add(1, Ordering::Relaxed);
            crate::observe::revocation_heard();
            self.invalidations.fetch_add(1, Ordering::SeqCst);
            self.cache.invalidate_all();
            tracing::info!("every session was revoked at once; the cache is emptied");
        } else if let Some(hash) = from_hex(message) {
            self.revocations_heard.fetch_add(1, Ordering::Relaxed);
            crate::observe::revocation_heard();
            self.invalidate(&hash);
        } else {
            tracing::debug!("ignored a message on the revocation feed that is not ours");
        }
    }

    /// A subscription began: every revocation from now on will be heard, but those sent
    /// before may have been missed, so nothing cached before now is trusted.
    pub(super) fn subscribed(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
        self.heard_until.store(self.now(), Ordering::Release);
        self.subscribed.store(true, Ordering::Release);
    }

    /// The subscription was lost: `heard_until` stops, so entries age out within the fallback
    /// TTL.
    pub(super) fn lost(&self) {
        self.subscribed.store(false, Ordering::Release);
        self.feed_losses.fetch_add(1, Ordering::Relaxed);
        crate::observe::revocation_feed_lost();
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                fallback_ttl = ?self.bounds.fallback_ttl,
                "the revocation feed was lost; cached keys now live at most the fallback TTL \
                 until it is back"
            );
        }
    }
}
