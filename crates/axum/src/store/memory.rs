//! [`MemoryStore`]: keys in this process, behind random session ids.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};
use crate::primitives::unix_now;

/// Keys kept in this process's memory behind random session ids, for single-process apps and
/// tests. Entries older than the store's lifetime are purged as new ones arrive.
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
    entries: Arc<Mutex<HashMap<String, StoredKey>>>,
    lifetime: Duration,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(crate::config::DEFAULT_KEY_MAX_AGE)
    }
}

impl MemoryStore {
    /// An empty store whose entries live at most `lifetime`.
    #[must_use]
    pub fn new(lifetime: Duration) -> Self {
        Self {
            entries: Arc::default(),
            lifetime,
        }
    }

    /// How many sessions are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes a session's key: its next request is signed out.
    pub fn revoke(&self, token: &SessionToken) {
        self.lock().remove(token.expose_secret());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredKey>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KeyStore for MemoryStore {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    fn save(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<SessionToken, StoreError>> + Send {
        let token = SessionToken::random();
        let now = unix_now();
        let mut entries = self.lock();
        entries.retain(|_, stored| !stored.is_older_than(self.lifetime, now));
        entries.insert(token.expose_secret().to_owned(), key);
        std::future::ready(Ok(token))
    }

    fn load(
        &self,
        token: &SessionToken,
    ) -> impl Future<Output = Result<Option<StoredKey>, StoreError>> + Send {
        let now = unix_now();
        let found = self
            .lock()
            .get(token.expose_secret())
            .filter(|stored| !stored.is_older_than(self.lifetime, now))
            .cloned();
        std::future::ready(Ok(found))
    }

    fn remove(&self, token: &SessionToken) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.revoke(token);
        std::future::ready(Ok(()))
    }
}
