//! Where a signed-in user's key lives: the [`KeyStore`] trait and its two built-in stores.
//!
//! The layer asks the store to [save](KeyStore::save) a freshly issued key and gets back a
//! [`SessionToken`] to put in the key cookie; on later requests it hands the token back to
//! [load](KeyStore::load) the key, and to [remove](KeyStore::remove) it at logout.
//!
//! * [`CookieStore`] (the default) makes the token out of the key itself, so the key lives in
//!   the browser inside an AES-256-GCM-encrypted cookie. No server state: any number of app
//!   instances behind a load balancer work with one shared secret. Logout deletes the cookie,
//!   but a copy of the cookie taken before logout stays valid until it expires.
//! * [`MemoryStore`] keeps keys in this process behind a random session id carried in a
//!   signed cookie. Logout really revokes the session, but keys are lost on restart and not
//!   shared between instances: for one-process apps and tests.
//! * `PostgresStore`, `SqliteStore` and `RedisStore` (features `postgres`, `sqlite`, `redis`)
//!   keep keys sealed at rest in a database behind a signed session id, shared by every
//!   instance that uses the same database and secret.
//!
//! The layer checks the age of every loaded key against the configured key lifetime, so a
//! store need not.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use modelgates_oauth_core::ApiKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::cookies::TokenProtection;

/// A key and what is known about it, as a store keeps it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredKey {
    /// The user-controlled key.
    pub key: ApiKey,
    /// ModelGates' id of the user, when it sent one.
    pub user_id: Option<String>,
    /// When the key was issued, in seconds since the Unix epoch.
    pub issued_at: u64,
}

impl StoredKey {
    /// A key issued now.
    #[must_use]
    pub fn new(key: ApiKey, user_id: Option<String>) -> Self {
        let issued_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            key,
            user_id,
            issued_at,
        }
    }

    /// Whether the key is older than `max_age` at `now` (seconds since the epoch).
    #[must_use]
    pub fn is_older_than(&self, max_age: Duration, now: u64) -> bool {
        now.saturating_sub(self.issued_at) >= max_age.as_secs()
    }
}

/// What the browser carries in the key cookie: the key itself or an opaque session id,
/// depending on the store. Treated as a secret: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// Wraps a token.
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }

    /// A fresh random session id: 32 bytes from the operating system, base64url.
    #[must_use]
    pub fn random() -> Self {
        Self::new(URL_SAFE_NO_PAD.encode(modelgates_oauth_core::random_bytes::<32>()))
    }

    /// The token's text.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// A store failed (a database down, a network error). The message must hold no secret.
#[derive(Debug, thiserror::Error)]
#[error("the key store failed: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error with a message (no secrets in it).
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by another.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Storage for signed-in users' keys.
///
/// Implementations must be cheap to share (the layer holds one in an `Arc`) and must never
/// log or return a key in an error.
pub trait KeyStore: Send + Sync + 'static {
    /// How the layer protects this store's tokens in the cookie: [`TokenProtection::Encrypted`]
    /// when the token reveals the key, [`TokenProtection::Signed`] when it is an opaque id.
    const TOKEN_PROTECTION: TokenProtection;

    /// Keeps a freshly issued key; returns the token the browser will carry.
    fn save(&self, key: StoredKey)
    -> impl Future<Output = Result<SessionToken, StoreError>> + Send;

    /// The key for a token, or `None` when unknown, revoked or expired.
    fn load(
        &self,
        token: &SessionToken,
    ) -> impl Future<Output = Result<Option<StoredKey>, StoreError>> + Send;

    /// Forgets the key for a token (logout). Removing an unknown token is not an error.
    fn remove(&self, token: &SessionToken) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The default store: the key travels in the encrypted cookie; the server keeps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct CookieStore;

/// The cookie store's JSON. Strings are `Cow` because JSON escapes cannot be borrowed.
#[derive(Serialize, Deserialize)]
struct CookiePayload<'a> {
    #[serde(rename = "k", borrow)]
    key: Cow<'a, str>,
    #[serde(rename = "u", skip_serializing_if = "Option::is_none", borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(rename = "t")]
    issued_at: u64,
}

/// A stored key as compact JSON: the cookie store's token, and what database stores seal.
pub(crate) fn encode_stored(key: &StoredKey) -> Zeroizing<String> {
    let payload = CookiePayload {
        key: Cow::Borrowed(key.key.expose_secret()),
        user_id: key.user_id.as_deref().map(Cow::Borrowed),
        issued_at: key.issued_at,
    };
    Zeroizing::new(serde_json::to_string(&payload).expect("plain data serialises"))
}

/// The inverse of [`encode_stored`]; `None` for anything else.
pub(crate) fn decode_stored(json: &str) -> Option<StoredKey> {
    let payload: CookiePayload<'_> = serde_json::from_str(json).ok()?;
    (!payload.key.is_empty()).then(|| StoredKey {
        key: ApiKey::new(payload.key.into_owned()),
        user_id: payload.user_id.map(Cow::into_owned),
        issued_at: payload.issued_at,
    })
}

impl CookieStore {
    fn encode(key: &StoredKey) -> SessionToken {
        SessionToken::new(encode_stored(key).as_str())
    }

    fn decode(token: &SessionToken) -> Option<StoredKey> {
        decode_stored(token.expose_secret())
    }
}

impl KeyStore for CookieStore {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Encrypted;

    fn save(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<SessionToken, StoreError>> + Send {
        std::future::ready(Ok(Self::encode(&key)))
    }

    fn load(
        &self,
        token: &SessionToken,
    ) -> impl Future<Output = Result<Option<StoredKey>, StoreError>> + Send {
        std::future::ready(Ok(Self::decode(token)))
    }

    fn remove(&self, _token: &SessionToken) -> impl Future<Output = Result<(), StoreError>> + Send {
        // Nothing is kept server-side; the layer deletes the cookie.
        std::future::ready(Ok(()))
    }
}

/// Keys kept in this process's memory behind random session ids, for single-process apps and
/// tests. Entries older than the store's lifetime are purged as new ones arrive.
///
/// ```
/// use std::time::Duration;
/// use modelgates_axum::{CookieSecret, MemoryStore, ModelGatesAuth, ModelGatesConfig};
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

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

impl KeyStore for MemoryStore {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    fn save(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = Result<SessionToken, StoreError>> + Send {
        let token = SessionToken::random();
        let now = Self::now();
        let mut entries = self.lock();
        entries.retain(|_, stored| !stored.is_older_than(self.lifetime, now));
        entries.insert(token.expose_secret().to_owned(), key);
        std::future::ready(Ok(token))
    }

    fn load(
        &self,
        token: &SessionToken,
    ) -> impl Future<Output = Result<Option<StoredKey>, StoreError>> + Send {
        let now = Self::now();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract every store must meet.
    async fn conformance<S: KeyStore>(store: &S) {
        // A user id with characters JSON must escape, as ModelGates may send.
        let key = StoredKey::new(
            ApiKey::new("sk-mg-v1-conformance"),
            Some("user \"1\" \\ é".into()),
        );
        let token = store.save(key.clone()).await.unwrap();
        let loaded = store.load(&token).await.unwrap().expect("saved key loads");
        assert_eq!(loaded.key, key.key);
        assert_eq!(loaded.user_id, key.user_id);
        assert_eq!(loaded.issued_at, key.issued_at);
        assert!(!format!("{token:?}").contains("conformance"));
        let other = store
            .save(StoredKey::new(ApiKey::new("sk-other"), None))
            .await
            .unwrap();
        assert_ne!(token, other);
        assert_eq!(
            store.load(&other).await.unwrap().unwrap().key,
            ApiKey::new("sk-other")
        );
        assert!(
            store
                .load(&SessionToken::new("unknown"))
                .await
                .unwrap()
                .is_none()
        );
        store.remove(&SessionToken::new("unknown")).await.unwrap();
    }

    #[tokio::test]
    async fn cookie_store_meets_the_contract() {
        conformance(&CookieStore).await;
    }

    #[tokio::test]
    async fn memory_store_meets_the_contract_and_revokes() {
        let store = MemoryStore::default();
        conformance(&store).await;
        let token = store
            .save(StoredKey::new(ApiKey::new("k"), None))
            .await
            .unwrap();
        store.remove(&token).await.unwrap();
        assert!(
            store.load(&token).await.unwrap().is_none(),
            "removed means gone"
        );
    }

    #[tokio::test]
    async fn memory_store_purges_expired_entries() {
        let store = MemoryStore::new(Duration::from_secs(60));
        let mut old = StoredKey::new(ApiKey::new("old"), None);
        old.issued_at -= 120;
        let token = store.save(old).await.unwrap();
        assert!(store.load(&token).await.unwrap().is_none());
        store
            .save(StoredKey::new(ApiKey::new("new"), None))
            .await
            .unwrap();
        assert_eq!(store.len(), 1, "the expired entry was purged");
    }
}
