//! [`CookieStore`], the default: the key itself, encrypted, is the cookie's token.

use std::borrow::Cow;
use std::future::Future;

use modelgates_oauth_core::ApiKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};

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
    #[serde(rename = "x", skip_serializing_if = "Option::is_none", default)]
    expires_at: Option<u64>,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none", default, borrow)]
    app_data: Option<Cow<'a, str>>,
}

/// A stored key as compact JSON: the cookie store's token, and what database stores seal.
pub fn encode_stored(key: &StoredKey) -> Zeroizing<String> {
    let payload = CookiePayload {
        key: Cow::Borrowed(key.key.expose_secret()),
        user_id: key.user_id.as_deref().map(Cow::Borrowed),
        issued_at: key.issued_at,
        expires_at: key.expires_at,
        app_data: key.app_data.as_deref().map(Cow::Borrowed),
    };
    Zeroizing::new(serde_json::to_string(&payload).expect("plain data serialises"))
}

/// The inverse of [`encode_stored`]; `None` for anything else.
pub fn decode_stored(json: &str) -> Option<StoredKey> {
    let payload: CookiePayload<'_> = serde_json::from_str(json).ok()?;
    (!payload.key.is_empty()).then(|| StoredKey {
        key: ApiKey::new(payload.key.into_owned()),
        user_id: payload.user_id.map(Cow::into_owned),
        issued_at: payload.issued_at,
        expires_at: payload.expires_at,
        app_data: payload.app_data.map(Cow::into_owned),
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

    fn load_now(&self, token: &SessionToken) -> Option<Result<Option<StoredKey>, StoreError>> {
        Some(Ok(Self::decode(token)))
    }

    fn revoke_user(
        &self,
        _user_id: &str,
        _keep: Option<&SessionToken>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        std::future::ready(Err(StoreError::unsupported(
            "the cookie store keeps keys only in the users' browsers, so it cannot sign a user \
             out of their other devices: use a server-side store (MemoryStore, PostgresStore, \
             SqliteStore, RedisStore) for that",
        )))
    }
}
