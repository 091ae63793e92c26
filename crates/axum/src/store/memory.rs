//! [`MemoryStore`]: keys in this process, behind random session ids.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};
use modelgates_oauth_core::__private::unix_now;

/// Keys kept in this process's memory behind random session ids, for single-process apps and
/// tests.
///
/// The store holds at most its capacity ([`MemoryStore::DEFAULT_CAPACITY`], 100,000 sessions,
/// unless set with [`MemoryStore::with_capacity`]; full, it took 35 MiB of memory in a
/// measurement with 52-character keys and 18-character user ids): a sign-in beyond it evicts
/// the oldest session, whose user must sign in again. Sessions older than the store's lifetime
/// are purged as new ones arrive, oldest first, at a constant cost per sign-in.
///
/// ```
/// use std::time::Duration;
/// use modelgates_axum::store::MemoryStore;
/// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
///
/// let store = MemoryStore::new(Duration::from_secs(24 * 3600));
/// let layer = ModelGatesAuth::new(ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate()))
///     .with_store(store.clone());
/// # let _ = layer;
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    sessions: Arc<Mutex<Sessions>>,
    lifetime: Duration,
    capacity: usize,
}

/// The sessions, and their tokens in the order they were saved (tokens already revoked may
/// linger in the queue until they reach its front or the queue is compacted), and the accounts
/// that were linked (a link removed as a session lingers here until a listing passes it).
#[derive(Default)]
struct Sessions {
    entries: HashMap<String, StoredKey>,
    order: VecDeque<String>,
    accounts: BTreeSet<String>,
}

impl Sessions {
    /// Drops sessions from the oldest while they have expired or the store is full.
    fn make_room(&mut self, lifetime: Duration, capacity: usize, now: u64) {
        while let Some(oldest) = self.order.front() {
            let evict = match self.entries.get(oldest) {
                None => true,
                Some(stored) => {
                    self.entries.len() >= capacity || stored.remaining(lifetime, now) == 0
                }
            };
            if !evict {
                break;
            }
            if let Some(token) = self.order.pop_front() {
                self.entries.remove(&token);
            }
        }
        if self.order.len() > capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|token| entries.contains_key(token));
        }
    }
}

impl Sessions {
    /// Keeps `key` under `id`, making room first.
    fn insert(&mut self, id: String, key: StoredKey, lifetime: Duration, capacity: usize) {
        self.make_room(lifetime, capacity, unix_now());
        self.order.push_back(id.clone());
        self.entries.insert(id, key);
    }

    /// Up to `limit` linked accounts with a live link after `after`; forgets those without.
    fn linked_accounts(
        &mut self,
        after: Option<&str>,
        limit: usize,
        lifetime: Duration,
    ) -> Vec<String> {
        use std::ops::Bound;
        let now = unix_now();
        let start = after.map_or(Bound::Unbounded, |after| Bound::Excluded(after.to_owned()));
        let (mut live, mut gone) = (Vec::new(), Vec::new());
        for account in self.accounts.range((start, Bound::Unbounded)) {
            if live.len() == limit {
                break;
            }
            let token = SessionToken::for_account(account);
            match self.entries.get(token.expose_secret()) {
                Some(stored) if stored.remaining(lifetime, now) > 0 => live.push(account.clone()),
                _ => gone.push(account.clone()),
            }
        }
        for account in gone {
            self.accounts.remove(&account);
        }
        live
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("lifetime", &self.lifetime)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(super::DEFAULT_KEY_MAX_AGE)
    }
}

impl MemoryStore {
    /// How many sessions a store holds unless told otherwise.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty store whose entries live at most `lifetime`, holding at most
    /// [`Self::DEFAULT_CAPACITY`] sessions.
    #[must_use]
    pub fn new(lifetime: Duration) -> Self {
        Self::with_capacity(lifetime, Self::DEFAULT_CAPACITY)
    }

    /// An empty store whose entries live at most `lifetime`, holding at most `capacity`
    /// sessions (at least 1): the oldest is evicted to make room.
    #[must_use]
    pub fn with_capacity(lifetime: Duration, capacity: usize) -> Self {
        Self {
            sessions: Arc::default(),
            lifetime,
            capacity: capacity.max(1),
        }
    }

    /// How many sessions are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes a session's key: its next request is signed out.
    pub fn revoke(&self, token: &SessionToken) {
        self.lock().entries.remove(token.expose_secret());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl MemoryStore {
    /// The live key of a session.
    fn find(&self, token: &SessionToken) -> Option<StoredKey> {
        let now = unix_now();
        self.lock()
            .entries
            .get(token.expose_secret())
            .filter(|stored| stored.remaining(self.lifetime, now) > 0)
            .cloned()
    }
}

impl KeyStore for MemoryStore {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    fn save(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<SessionToken, StoreError>> + Send {
        let token = SessionToken::random();
        let id = token.expose_secret().to_owned();
        self.lock().insert(id, key, self.lifetime, self.capacity);
        std::future::ready(Ok(token))
    }

    fn load(
        &self,
        token: &SessionToken,
    ) -> impl Future<Output = Result<Option<StoredKey>, StoreError>> + Send {
        std::future::ready(Ok(self.find(token)))
    }

    fn load_now(&self, token: &SessionToken) -> Option<Result<Option<StoredKey>, StoreError>> {
        Some(Ok(self.find(token)))
    }

    fn remove(&self, token: &SessionToken) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.revoke(token);
        std::future::ready(Ok(()))
    }

    fn save_link(
        &self,
        account: &str,
        key: StoredKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let id = SessionToken::for_account(account)
            .expose_secret()
            .to_owned();
        let mut sessions = self.lock();
        sessions.insert(id, key, self.lifetime, self.capacity);
        sessions.accounts.insert(account.to_owned());
        std::future::ready(Ok(()))
    }

    fn linked_accounts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        let accounts = self.lock().linked_accounts(after, limit, self.lifetime);
        std::future::ready(Ok(accounts))
    }

    fn revoke_user(
        &self,
        user_id: &str,
        keep: Option<&SessionToken>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let keep = keep.map(SessionToken::expose_secret);
        let mut sessions = self.lock();
        let before = sessions.entries.len();
        sessions.entries.retain(|token, stored| {
            stored.user_id.as_deref() != Some(user_id) || Some(token.as_str()) == keep
        });
        let removed = before - sessions.entries.len();
        std::future::ready(Ok(removed as u64))
    }
}
