//! Where a signed-in user's key lives: the [`KeyStore`] trait and the built-in stores.
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
//! * The `modelgates-stores` crate keeps keys in databases: `PostgresStore`, `SqliteStore`
//!   and `RedisStore` (one feature each) seal keys at rest behind a signed session id, shared
//!   by every instance that uses the same database and secret; its `KeySealer` seals keys the
//!   same way for a store of your own.
//! * [`CachingStore`] puts an in-process cache in front of any store, which hears every
//!   instance's revocations through a [`RevocationFeed`] (`PostgresStore::cached()`,
//!   `RedisStore::cached()`): database stores at cookie speed, revocation intact.
//!
//! The layer checks the age of every loaded key against the configured key lifetime, so a
//! store need not. A third-party store proves it meets the contract with the conformance suite
//! in `testing` (feature `test-util`), as the database stores do.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use axum_core::BoxError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use modelgates_oauth_core::__private::{random_bytes, unix_now};
use modelgates_oauth_core::ApiKey;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::hex::hex;

mod caching;
mod cookie;
mod memory;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use caching::{CacheStats, CachingStore, RevocationFeed};
pub use cookie::CookieStore;
pub use memory::MemoryStore;

/// What the database stores of the `modelgates-stores` crate share with this one: the compact
/// JSON of a [`StoredKey`], which they seal at rest as the cookie store encrypts it. Not part
/// of the API.
#[doc(hidden)]
pub mod __private {
    pub use super::cookie::{decode_stored, encode_stored};
}

/// How long a session lives unless configured otherwise (the key cookie's default lifetime,
/// `ModelGatesConfig::with_key_max_age`): 30 days.
pub const DEFAULT_KEY_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a client is asked to wait (`Retry-After`) when the key store fails: 5 seconds.
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How a key cookie's token is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenProtection {
    /// Encrypted and authenticated: the token itself is secret (it holds the key).
    Encrypted,
    /// Signed: the token is an opaque random id; the browser may read it but not forge it.
    Signed,
}

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
    /// When ModelGates said the key stops working, in seconds since the Unix epoch: the
    /// session never outlives it.
    pub expires_at: Option<u64>,
    /// The app's value for this session, as JSON text: what its on-sign-in hook returned
    /// (see [`ModelGatesConfig::with_on_sign_in`](crate::ModelGatesConfig::with_on_sign_in)).
    /// A store keeps it as it keeps the key: sealed, or inside the encrypted cookie.
    pub app_data: Option<String>,
}

impl StoredKey {
    /// A key issued now.
    #[must_use]
    pub fn new(key: ApiKey, user_id: Option<String>) -> Self {
        Self {
            key,
            user_id,
            issued_at: unix_now(),
            expires_at: None,
            app_data: None,
        }
    }

    /// This key, with the app's value for the session (JSON text).
    #[must_use]
    pub fn with_app_data(mut self, app_data: Option<String>) -> Self {
        self.app_data = app_data;
        self
    }

    /// This key, stopping at `expires_at` (seconds since the Unix epoch), as ModelGates said.
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: Option<u64>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Whether the key is older than `max_age` at `now` (seconds since the epoch).
    #[must_use]
    pub fn is_older_than(&self, max_age: Duration, now: u64) -> bool {
        now.saturating_sub(self.issued_at) >= max_age.as_secs()
    }

    /// How many seconds a session of this key may still live at `now`: what is left of
    /// `max_age`, and never past the key's own expiry. Zero: no longer.
    #[must_use]
    pub fn remaining(&self, max_age: Duration, now: u64) -> u64 {
        let of_age = max_age
            .as_secs()
            .saturating_sub(now.saturating_sub(self.issued_at));
        match self.expires_at {
            Some(expires_at) => of_age.min(expires_at.saturating_sub(now)),
            None => of_age,
        }
    }
}

/// What the browser carries in the key cookie: the key itself or an opaque session id,
/// depending on the store. A [`secrecy::SecretString`] inside: `Debug` redacts it, its memory
/// is wiped on drop, and comparison is in constant time.
#[derive(Clone)]
pub struct SessionToken(SecretString);

impl SessionToken {
    /// Wraps a token.
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(modelgates_oauth_core::__private::secret_string(
            token.into(),
        ))
    }

    /// A token already kept as a secret.
    pub(crate) fn from_secret(token: SecretString) -> Self {
        Self(token)
    }

    /// A fresh random session id: 32 bytes from the operating system, base64url.
    #[must_use]
    pub fn random() -> Self {
        Self::new(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
    }

    /// The token's text.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The token under which the link of the app's user `account` is kept (linked-account
    /// mode, see [`KeyStore::save_link`]): load and remove it as any session's. It never goes
    /// in a cookie, and cannot be mistaken for a random session id (those hold no `:`).
    #[must_use]
    pub fn for_account(account: &str) -> Self {
        Self::new(format!("modelgates-link:{account}"))
    }

    /// The hex SHA-256 of the token: the name under which the database stores keep a session
    /// (so a dump holds no usable cookie), and the only thing a revocation notification
    /// carries.
    #[must_use]
    pub fn hash(&self) -> String {
        hex(&self.digest())
    }

    /// The SHA-256 of the token, as bytes.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.expose_secret().as_bytes()).into()
    }
}

impl PartialEq for SessionToken {
    fn eq(&self, other: &Self) -> bool {
        let (this, other) = (self.expose_secret(), other.expose_secret());
        subtle::ConstantTimeEq::ct_eq(this.as_bytes(), other.as_bytes()).into()
    }
}

impl Eq for SessionToken {}

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
    source: Option<BoxError>,
    unsupported: bool,
}

impl StoreError {
    /// An error with a message (no secrets in it).
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
            unsupported: false,
        }
    }

    /// The store cannot do what was asked, whatever the circumstances (the cookie store
    /// cannot find a user's sessions: they live only in browsers). `message` says what to use
    /// instead.
    #[must_use]
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self {
            unsupported: true,
            ..Self::new(message)
        }
    }

    /// The message, without the causes.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the store cannot do this at all (see [`Self::unsupported`]), rather than
    /// having failed this time.
    #[must_use]
    pub fn is_unsupported(&self) -> bool {
        self.unsupported
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
            unsupported: false,
        }
    }
}

/// Storage for signed-in users' keys.
///
/// Implementations must be cheap to share (the layer holds one in an `Arc`) and must never
/// log or return a key in an error. A store that wraps another (to count, to cache) must
/// forward every method the inner store implements, [`spend_flow`](Self::spend_flow) and
/// [`revoke_user`](Self::revoke_user) included: their defaults would quietly turn a shared
/// store's spent flows into per-process ones and its revocations into "unsupported".
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

    /// The key for a token when the store can answer without waiting (the key is in memory,
    /// or in the token itself); `None` sends the layer to [`load`](Self::load).
    ///
    /// The layer asks this first on every signed-in request, so that such answers cost no
    /// boxed future. When it answers, it must answer as `load` would. The default never does.
    fn load_now(&self, token: &SessionToken) -> Option<Result<Option<StoredKey>, StoreError>> {
        let _ = token;
        None
    }

    /// Records the sign-in flow `flow_id` as spent for at least `lives` (the flow's lifetime),
    /// atomically: of any number of concurrent calls with one id, on any number of instances
    /// sharing the store, exactly one is answered [`FlowSpend::First`].
    ///
    /// The layer calls it when a callback is about to send its code to ModelGates, so that a
    /// callback replayed on another instance is refused; it is also the sign-in's proof that
    /// the store accepts writes before a key is issued. A store shared by several instances
    /// must implement it (the database stores do: a row, a key with a TTL); the default
    /// answers [`FlowSpend::NotKept`] and the layer keeps spent flows in its process.
    ///
    /// # Errors
    ///
    /// When the store fails: the callback is answered 503 and nothing is sent to ModelGates.
    fn spend_flow(
        &self,
        flow_id: &str,
        lives: Duration,
    ) -> impl Future<Output = Result<FlowSpend, StoreError>> + Send {
        let _ = (flow_id, lives);
        std::future::ready(Ok(FlowSpend::NotKept))
    }

    /// Forgets every session of the ModelGates user `user_id`, on every device, except the
    /// session of `keep` (the one asking, for "sign out everywhere else"); returns how many
    /// were forgotten. A store that announces revocations to other instances announces these.
    ///
    /// # Errors
    ///
    /// When the store fails; or an error for which [`StoreError::is_unsupported`] holds when
    /// the store cannot find a user's sessions: the default, and [`CookieStore`], whose
    /// sessions live only in the browsers that hold them.
    fn revoke_user(
        &self,
        user_id: &str,
        keep: Option<&SessionToken>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = (user_id, keep);
        std::future::ready(Err(StoreError::unsupported(
            "this key store cannot find a user's sessions to revoke them: use a server-side \
             store (MemoryStore, PostgresStore, SqliteStore, RedisStore)",
        )))
    }

    /// Keeps `key` as the ModelGates link of the app's user `account` (linked-account mode:
    /// [`ModelGatesConfig::with_linked_accounts`](crate::ModelGatesConfig::with_linked_accounts)),
    /// replacing the key linked before, if any. The link is then loaded and removed like a
    /// session, under [`SessionToken::for_account`]`(account)`, and it counts for
    /// [`revoke_user`](Self::revoke_user) like any session of the ModelGates user. A store that
    /// announces revocations to other instances announces the replaced key, so no instance's
    /// cache keeps serving it.
    ///
    /// # Errors
    ///
    /// When the store fails; or an error for which [`StoreError::is_unsupported`] holds: the
    /// default, and [`CookieStore`], which has nowhere to keep a key but a browser.
    fn save_link(
        &self,
        account: &str,
        key: StoredKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (account, key);
        std::future::ready(Err(links_unsupported()))
    }

    /// Up to `limit` accounts that have a live link, in ascending byte order, starting after
    /// `after` (`None`: from the first). Fewer than `limit` means there are no more: a
    /// background job pages through every linked user with the last account of each page.
    ///
    /// # Errors
    ///
    /// As [`save_link`](Self::save_link).
    fn linked_accounts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        let _ = (after, limit);
        std::future::ready(Err(links_unsupported()))
    }

    /// Whether the store answers now: one cheap round trip to its database (`SELECT 1`,
    /// `PING`), bounded by the store's timeouts, for a readiness probe
    /// ([`ModelGatesAuth::ready`](crate::ModelGatesAuth::ready)). The default, for stores
    /// that live in the process or the cookie, is always ready.
    ///
    /// # Errors
    ///
    /// When the store does not answer, with the store's message.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// The error of a store that cannot keep links.
fn links_unsupported() -> StoreError {
    StoreError::unsupported(
        "this key store cannot keep linked accounts: use a server-side store (MemoryStore, \
         PostgresStore, SqliteStore, RedisStore)",
    )
}

/// What a store answered when asked to record a sign-in flow as spent
/// ([`KeyStore::spend_flow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowSpend {
    /// Recorded now: this is the flow's first callback, on every instance sharing the store.
    First,
    /// Recorded before: a replayed callback.
    Replayed,
    /// This store keeps no spent flows (it is not shared between instances): the layer keeps
    /// them in this process.
    NotKept,
}

/// A boxed future of a store's answer.
pub(crate) type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a signed-in request may ask of its store, behind a trait object, so that handlers and
/// response futures can reach it without naming the store's type. Boxed only when used.
pub(crate) trait ErasedStore: Send + Sync + 'static {
    fn remove_boxed<'a>(&'a self, token: &'a SessionToken) -> StoreFuture<'a, ()>;
    fn revoke_user_boxed<'a>(
        &'a self,
        user_id: &'a str,
        keep: Option<&'a SessionToken>,
    ) -> StoreFuture<'a, u64>;
}

impl<K: KeyStore> ErasedStore for K {
    fn remove_boxed<'a>(&'a self, token: &'a SessionToken) -> StoreFuture<'a, ()> {
        Box::pin(self.remove(token))
    }

    fn revoke_user_boxed<'a>(
        &'a self,
        user_id: &'a str,
        keep: Option<&'a SessionToken>,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.revoke_user(user_id, keep))
    }
}
