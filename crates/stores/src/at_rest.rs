//! Keys encrypted at rest, for the database stores and third-party ones; the rules are on
//! [`KeySealer`].

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use modelgates_axum::store::__private::{decode_stored, encode_stored};
use modelgates_axum::store::StoredKey;
use modelgates_axum::{CookieSecret, ModelGatesConfig};
use modelgates_oauth_core::__private::random_bytes;

use crate::hex;

const NONCE_LEN: usize = 12;

/// Seals and opens stored keys with keys derived from the cookie secrets, for the database
/// stores and for a store of your own.
///
/// The rules it applies:
///
/// * A [`StoredKey`] is sealed with AES-256-GCM under a key derived from the cookie secret
///   (`SHA-256("modelgates-axum at-rest v1" || secret)`), with a fresh random 96-bit nonce, and
///   the row's session hash as associated data, so a sealed value moved to another row does not
///   open.
/// * Each sealed value carries the id of the key that sealed it (the first 8 bytes of a hash of
///   that key, in hex). Previous secrets open older values, so rotating the cookie secret keeps
///   stored sessions alive; values are always sealed with the current secret.
/// * Session ids are stored only as their SHA-256 hash: a database dump holds neither usable
///   keys nor usable session cookies.
#[derive(Clone)]
pub struct KeySealer {
    /// Newest first: (id, cipher).
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeySealer").field("key_ids", &ids).finish()
    }
}

/// A sealed key as a store keeps it: two columns of a row, say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// Which secret sealed it (16 hex digits), so rotation knows which one opens it.
    pub key_id: String,
    /// Nonce followed by ciphertext and tag.
    pub sealed: Vec<u8>,
}

impl KeySealer {
    /// A sealer for the current secret and any previous ones (newest first).
    #[must_use]
    pub fn new<'a>(
        current: &'a CookieSecret,
        previous: impl IntoIterator<Item = &'a CookieSecret>,
    ) -> Self {
        Self::from_secrets(std::iter::once(current).chain(previous))
    }

    /// A sealer for a layer configuration's current and previous secrets.
    #[must_use]
    pub fn from_config(config: &ModelGatesConfig) -> Self {
        Self::from_secrets(config.cookie_secrets())
    }

    /// A sealer for `secrets`, newest first.
    fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a CookieSecret>) -> Self {
        let keys = secrets
            .into_iter()
            .map(|secret| {
                let derived: Zeroizing<[u8; 32]> = Zeroizing::new(
                    Sha256::new()
                        .chain_update(b"modelgates-axum at-rest v1")
                        .chain_update(secret.expose_secret())
                        .finalize()
                        .into(),
                );
                let id_hash = Sha256::new()
                    .chain_update(b"key id")
                    .chain_update(derived.as_slice())
                    .finalize();
                let id = hex(&id_hash[..8]);
                let cipher = Aes256Gcm::new_from_slice(derived.as_slice()).expect("a 32-byte key");
                (id, cipher)
            })
            .collect::<Vec<_>>();
        assert!(!keys.is_empty(), "at least the current secret");
        Self { keys }
    }

    /// Seals `key` for the row `session_hash` (the session's [hash](modelgates_axum::store::SessionToken::hash)),
    /// with the current secret. A store of your own keeps the result and hands it back to
    /// [`Self::open`] with the same hash.
    #[must_use]
    pub fn seal(&self, key: &StoredKey, session_hash: &str) -> SealedKey {
        let (key_id, cipher) = &self.keys[0];
        let nonce = random_bytes::<NONCE_LEN>();
        let plaintext = encode_stored(key);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: session_hash.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        SealedKey {
            key_id: key_id.clone(),
            sealed,
        }
    }

    /// Opens a sealed key of row `session_hash`; `None` when no configured secret opens it, or
    /// it was sealed for another row.
    #[must_use]
    pub fn open(&self, sealed: &SealedKey, session_hash: &str) -> Option<StoredKey> {
        let (_, cipher) = self.keys.iter().find(|(id, _)| *id == sealed.key_id)?;
        let (nonce, ciphertext) = sealed.sealed.split_at_checked(NONCE_LEN)?;
        let payload = Payload {
            msg: ciphertext,
            aad: session_hash.as_bytes(),
        };
        let plaintext = Zeroizing::new(cipher.decrypt(Nonce::from_slice(nonce), payload).ok()?);
        decode_stored(std::str::from_utf8(&plaintext).ok()?)
    }
}

/// What a database store needs: the sealer of keys at rest, and how long a session lives
/// (rows expire after it). Made from the layer's configuration with `(&config).into()`, which
/// `connect(url, &config)` does for you, or by hand for a store with its own secrets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreSettings {
    /// Seals keys at rest.
    pub sealer: KeySealer,
    /// How long a saved session lives.
    pub lifetime: std::time::Duration,
}

/// A database store's settings from the layer's configuration: its secrets seal keys at rest,
/// and rows live as long as the key cookie, so `PostgresStore::connect(&url, &config)` reads.
impl From<&ModelGatesConfig> for StoreSettings {
    fn from(config: &ModelGatesConfig) -> Self {
        Self::new(KeySealer::from_config(config), config.key_max_age())
    }
}

impl StoreSettings {
    /// Settings with this sealer and session lifetime.
    #[must_use]
    pub fn new(sealer: KeySealer, lifetime: std::time::Duration) -> Self {
        Self { sealer, lifetime }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelgates_oauth_core::ApiKey;

    #[test]
    fn seals_open_only_for_their_row_and_their_secrets() {
        let (old, new) = (CookieSecret::generate(), CookieSecret::generate());
        let before = KeySealer::new(&old, []);
        let after = KeySealer::new(&new, [&old]);
        let key = StoredKey::new(ApiKey::new("sk-mg-v1-secret-value"), Some("user".into()));
        let sealed = before.seal(&key, "row-1");
        assert!(!String::from_utf8_lossy(&sealed.sealed).contains("secret-value"));
        assert_eq!(
            after.open(&sealed, "row-1").unwrap().key,
            key.key,
            "rotation"
        );
        assert!(after.open(&sealed, "row-2").is_none(), "bound to its row");
        assert!(
            KeySealer::new(&new, []).open(&sealed, "row-1").is_none(),
            "old secret dropped"
        );
        let mut tampered = sealed.clone();
        *tampered.sealed.last_mut().unwrap() ^= 1;
        assert!(before.open(&tampered, "row-1").is_none());
        assert_ne!(
            after.seal(&key, "row-1").key_id,
            sealed.key_id,
            "sealed with the newest"
        );
    }
}
