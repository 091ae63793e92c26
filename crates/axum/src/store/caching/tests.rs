//! The cache's rules, on a `MemoryStore` shared by two caches ("instances") and an in-process
//! feed that can be cut, on Tokio's paused clock: no sleeps, no flakes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use modelgates_oauth_core::ApiKey;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use super::shared::{Bounds, Shared};
use super::*;
use crate::store::MemoryStore;

/// A publish/subscribe bus in this process, which a test can cut: while cut, messages are
/// lost, subscriptions end and new ones are refused.
#[derive(Clone)]
struct Bus {
    sender: broadcast::Sender<String>,
    cut: Arc<AtomicBool>,
}

impl Bus {
    fn new() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    fn send(&self, message: &str) {
        if !self.cut.load(Ordering::SeqCst) {
            let _ = self.sender.send(message.to_owned());
        }
    }

    /// Cuts the bus (waking every subscriber, so that it notices) or mends it.
    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            let _ = self.sender.send("the bus is cut".to_owned());
        }
    }
}

impl RevocationFeed for Bus {
    type Subscription = broadcast::Receiver<String>;

    async fn subscribe(&self) -> Result<Self::Subscription, StoreError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(StoreError::new("the bus is cut"));
        }
        Ok(self.sender.subscribe())
    }

    async fn next(&self, subscription: &mut Self::Subscription) -> Option<String> {
        let message = subscription.recv().await.ok()?;
        (!self.cut.load(Ordering::SeqCst)).then_some(message)
    }

    async fn publish(&self, message: &str) -> Result<(), StoreError> {
        self.send(message);
        Ok(())
    }
}

/// The shared database: a `MemoryStore` that counts loads, publishes every removal on the
/// bus (as the real stores' revocations do), and can hold a load until released.
#[derive(Clone)]
struct Database {
    store: MemoryStore,
    bus: Bus,
    loads: Arc<AtomicUsize>,
    gate: Arc<Mutex<Option<Arc<Notify>>>>,
}

impl Database {
    fn new(bus: &Bus) -> Self {
        Self {
            store: MemoryStore::default(),
            bus: bus.clone(),
            loads: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new(Mutex::new(None)),
        }
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// Revokes a session, as another instance or an admin would.
    async fn revoke(&self, token: &SessionToken) {
        self.store.remove(token).await.unwrap();
        self.bus.send(&token.hash());
    }
}

impl KeyStore for Database {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        self.store.save(key).await
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let found = self.store.load(token).await;
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.notified().await;
        }
        found
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.revoke(token).await;
        Ok(())
    }
}

const FALLBACK: Duration = Duration::from_secs(4);

async fn instance(database: &Database) -> CachingStore<Database> {
    CachingStore::new(database.clone())
        .with_fallback_ttl(FALLBACK)
        .listen(database.bus.clone())
        .await
        .unwrap()
}

/// Lets the feed tasks run until they wait again.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Moves the paused clock in heartbeat-sized steps, letting the feed tasks run in between.
async fn pass(time: Duration) {
    let step = FALLBACK / 8;
    let mut passed = Duration::ZERO;
    while passed < time {
        tokio::time::advance(step).await;
        settle().await;
        passed += step;
    }
}

fn key(name: &str) -> StoredKey {
    StoredKey::new(ApiKey::new(format!("sk-mg-v1-{name}")), Some(name.into()))
}

async fn signed_in(a: &CachingStore<Database>, b: &CachingStore<Database>) -> SessionToken {
    let token = a.save(key("alice")).await.unwrap();
    assert!(b.load(&token).await.unwrap().is_some(), "B loads the key");
    token
}

#[tokio::test(start_paused = true)]
async fn the_conformance_suite_passes() {
    let bus = Bus::new();
    crate::store::testing::conformance(&instance(&Database::new(&bus)).await).await;
}

#[tokio::test(start_paused = true)]
async fn a_cached_key_is_served_without_the_store_while_heartbeats_are_heard() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let (a, b) = (instance(&database).await, instance(&database).await);
    let token = signed_in(&a, &b).await;
    assert_eq!(
        database.loads(),
        1,
        "A's save filled A's cache; B loaded once"
    );
    pass(FALLBACK * 3).await;
    for _ in 0..100 {
        assert!(a.load(&token).await.unwrap().is_some());
        assert!(b.load(&token).await.unwrap().is_some());
    }
    assert_eq!(
        database.loads(),
        1,
        "past the fallback TTL, heartbeats keep entries"
    );
    assert_eq!(b.stats().hits, 100);
}

#[tokio::test(start_paused = true)]
async fn a_revocation_anywhere_drops_the_entry_on_every_instance() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let (a, b) = (instance(&database).await, instance(&database).await);

    // Logout on A: `remove` through A's cache.
    let token = signed_in(&a, &b).await;
    a.remove(&token).await.unwrap();
    settle().await;
    assert!(b.load(&token).await.unwrap().is_none(), "logout on A");
    assert!(a.load(&token).await.unwrap().is_none());

    // A revocation made on the database by anyone (an admin's `revoke_user`).
    let token = signed_in(&a, &b).await;
    assert!(a.load(&token).await.unwrap().is_some());
    database.revoke(&token).await;
    settle().await;
    assert!(
        a.load(&token).await.unwrap().is_none(),
        "admin revocation, A"
    );
    assert!(
        b.load(&token).await.unwrap().is_none(),
        "admin revocation, B"
    );
    assert_eq!(b.stats().revocations_heard, 2);
}

#[tokio::test(start_paused = true)]
async fn a_lost_feed_serves_a_revoked_key_no_longer_than_the_fallback_ttl() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let (a, b) = (instance(&database).await, instance(&database).await);
    let token = signed_in(&a, &b).await;
    pass(FALLBACK * 2).await;

    bus.set_cut(true);
    let revoked_at = Instant::now();
    database.revoke(&token).await;
    settle().await;
    assert!(!b.stats().subscribed, "B noticed the loss");
    assert_eq!(b.stats().revocations_heard, 0, "the revocation was lost");

    // Served from the cache until the fallback TTL, counted from the last heartbeat heard…
    assert!(b.load(&token).await.unwrap().is_some());
    // …and never after it.
    pass(FALLBACK).await;
    assert!(revoked_at.elapsed() <= FALLBACK + FALLBACK / 8);
    assert!(
        b.load(&token).await.unwrap().is_none(),
        "refused after the TTL"
    );

    // The feed comes back: B subscribes again and caches again.
    bus.set_cut(false);
    pass(FALLBACK * 2).await;
    let stats = b.stats();
    assert!(stats.subscribed, "B subscribed again");
    assert_eq!(stats.feed_losses, 1);
    let token = signed_in(&a, &b).await;
    let loads = database.loads();
    pass(FALLBACK * 2).await;
    assert!(b.load(&token).await.unwrap().is_some());
    assert_eq!(
        database.loads(),
        loads,
        "cached again after the feed came back"
    );
}

#[tokio::test(start_paused = true)]
async fn entries_loaded_before_a_resubscription_do_not_outlive_the_fallback_ttl() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let (a, b) = (instance(&database).await, instance(&database).await);
    let token = signed_in(&a, &b).await;

    // The feed drops for a moment, and a revocation is lost in that moment.
    bus.set_cut(true);
    settle().await;
    database.revoke(&token).await;
    bus.set_cut(false);
    pass(FALLBACK / 2).await;
    assert!(b.stats().subscribed, "B is back");

    // Heartbeats heard after the re-subscription do not vouch for the older entry.
    assert!(b.load(&token).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_load_that_raced_a_revocation_is_not_cached() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let (a, b) = (instance(&database).await, instance(&database).await);
    let token = a.save(key("bob")).await.unwrap();

    // B's load reads the row, then stalls; the revocation lands meanwhile.
    let gate = Arc::new(Notify::new());
    *database.gate.lock().unwrap() = Some(gate.clone());
    let racing = tokio::spawn({
        let (b, token) = (b.clone(), token.clone());
        async move { b.load(&token).await.unwrap() }
    });
    settle().await;
    database.revoke(&token).await;
    settle().await;
    *database.gate.lock().unwrap() = None;
    gate.notify_one();
    assert!(
        racing.await.unwrap().is_some(),
        "the racing load began before"
    );
    assert!(
        b.load(&token).await.unwrap().is_none(),
        "but its result was not cached"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_evicts_and_every_user_still_gets_their_own_key() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let a = instance(&database).await;
    let b = CachingStore::new(database.clone())
        .with_max_capacity(8)
        .with_fallback_ttl(FALLBACK)
        .listen(bus.clone())
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for i in 0..100 {
        let stored = key(&format!("user-{i}"));
        sessions.push((a.save(stored.clone()).await.unwrap(), stored.key));
    }
    for _ in 0..3 {
        for (token, expected) in &sessions {
            let loaded = b.load(token).await.unwrap().expect("a live session loads");
            assert_eq!(&loaded.key, expected, "no key crosses over");
        }
    }
    b.shared.cache.run_pending_tasks();
    assert!(b.shared.cache.entry_count() <= 8, "the bound holds");
    let revoked = &sessions[0].0;
    database.revoke(revoked).await;
    settle().await;
    assert!(b.load(revoked).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn without_a_feed_entries_live_the_fallback_ttl() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let cache = CachingStore::new(database.clone()).with_fallback_ttl(FALLBACK);
    let token = cache.save(key("carol")).await.unwrap();
    assert!(cache.load(&token).await.unwrap().is_some());
    assert_eq!(database.loads(), 0, "filled by the save");
    database.revoke(&token).await;
    tokio::time::advance(FALLBACK).await;
    assert!(cache.load(&token).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_feed_tasks_stop_with_the_last_clone() {
    let bus = Bus::new();
    let database = Database::new(&bus);
    let cache = instance(&database).await;
    settle().await;
    assert_eq!(bus.sender.receiver_count(), 1);
    drop(cache);
    settle().await;
    assert_eq!(
        bus.sender.receiver_count(),
        0,
        "the subscription was dropped"
    );
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "before listen")]
async fn bounds_cannot_change_once_listening() {
    let bus = Bus::new();
    let _ = instance(&Database::new(&bus)).await.with_max_capacity(10);
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "one feed only")]
async fn a_cache_listens_to_one_feed_only() {
    let bus = Bus::new();
    let _ = instance(&Database::new(&bus))
        .await
        .listen(bus.clone())
        .await;
}

#[test]
fn heartbeats_of_other_instances_and_foreign_messages_are_ignored() {
    let shared = Shared::new(Bounds {
        capacity: 10,
        time_to_live: DEFAULT_TIME_TO_LIVE,
        fallback_ttl: FALLBACK,
    });
    shared.hear("heartbeat someone-else 1");
    shared.hear(&format!("heartbeat {} {}", shared.instance, u64::MAX - 1));
    shared.hear("not a hash");
    assert_eq!(shared.heard_until.load(Ordering::SeqCst), 0);
    assert_eq!(shared.revocations_heard.load(Ordering::SeqCst), 0);
}
