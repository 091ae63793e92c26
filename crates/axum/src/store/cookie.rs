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
    // One buffer, sized for the longest escaping (6 bytes a character), so that no
    // reallocation leaves an unwiped copy of the key behind.
    let escapable = key.key.expose_secret().len()
        + key.user_id.as_ref().map_or(0, String::len)
        + key.app_data.as_ref().map_or(0, String::len);
    let mut json = Zeroizing::new(Vec::with_capacity(96 + 6 * escapable));
    serde_json::to_writer(&mut *json, &payload).expect("plain data serialises");
    Zeroizing::new(String::from_utf8(std::mem::take(&mut *json)).expect("JSON is UTF-8"))
}

/// The inverse of [`encode_stored`]; `None` for anything else.
pub fn decode_stored(json: &str) -> Option<StoredKey> {
    let stored = decode_plain(json).or_else(|| decode_with_serde(json))?;
    (!stored.key.expose_secret().is_empty()).then_some(stored)
}

/// Any JSON of the payload's shape, read by serde_json.
fn decode_with_serde(json: &str) -> Option<StoredKey> {
    let payload: CookiePayload<'_> = serde_json::from_str(json).ok()?;
    Some(StoredKey {
        key: ApiKey::new(payload.key.into_owned()),
        user_id: payload.user_id.map(Cow::into_owned),
        issued_at: payload.issued_at,
        expires_at: payload.expires_at,
        app_data: payload.app_data.map(Cow::into_owned),
    })
}

/// The JSON [`encode_stored`] writes, read without a general parser when it is plain:
/// `{"k":"…","u":"…","t":N,"x":N,"a":"…"}` in that order (`u`, `x` and `a` optional), no
/// escaped or control characters in its strings, numbers without leading zeros. `None` for
/// anything else, which serde_json then reads; on what this accepts the two agree (a
/// proptest holds it). Every signed-in request with the cookie store reads one.
fn decode_plain(json: &str) -> Option<StoredKey> {
    let mut rest = json.strip_prefix("{\"k\":")?;
    let key = plain_string(&mut rest)?;
    let user_id = optional(&mut rest, ",\"u\":", plain_string)?;
    rest = rest.strip_prefix(",\"t\":")?;
    let issued_at = plain_number(&mut rest)?;
    let expires_at = optional(&mut rest, ",\"x\":", plain_number)?;
    let app_data = optional(&mut rest, ",\"a\":", plain_string)?;
    (rest == "}").then(|| StoredKey {
        key: ApiKey::new(key),
        user_id: user_id.map(str::to_owned),
        issued_at,
        expires_at,
        app_data: app_data.map(str::to_owned),
    })
}

/// An optional field: `Some(None)` when `rest` does not start with `name`, else its value read
/// by `read` (`None` when that fails), and `rest` moved past it.
fn optional<'a, T>(
    rest: &mut &'a str,
    name: &str,
    read: impl FnOnce(&mut &'a str) -> Option<T>,
) -> Option<Option<T>> {
    match rest.strip_prefix(name) {
        Some(after) => {
            *rest = after;
            read(rest).map(Some)
        }
        None => Some(None),
    }
}

/// A JSON string at the start of `rest` with nothing to unescape, and `rest` moved past it.
fn plain_string<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let body = rest.strip_prefix('"')?;
    let end = memchr::memchr(b'"', body.as_bytes())?;
    let text = &body[..end];
    // Without an early exit, so that the check runs on whole vectors.
    let escaped = text
        .bytes()
        .fold(false, |found, byte| found | (byte == b'\\') | (byte < 0x20));
    if escaped {
        return None;
    }
    *rest = &body[end + 1..];
    Some(text)
}

/// A JSON unsigned integer at the start of `rest` (no sign, no leading zero, no fraction, no
/// exponent, within `u64`), and `rest` moved past it; read in one pass.
fn plain_number(rest: &mut &str) -> Option<u64> {
    let bytes = rest.as_bytes();
    let (mut value, mut digits) = (0u64, 0);
    while let Some(digit) = bytes.get(digits).filter(|byte| byte.is_ascii_digit()) {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        digits += 1;
    }
    let leading_zero = digits > 1 && bytes[0] == b'0';
    if digits == 0 || leading_zero || matches!(bytes.get(digits), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    *rest = &rest[digits..];
    Some(value)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(key: &StoredKey) -> (String, Option<String>, u64, Option<u64>, Option<String>) {
        (
            key.key.expose_secret().to_owned(),
            key.user_id.clone(),
            key.issued_at,
            key.expires_at,
            key.app_data.clone(),
        )
    }

    proptest::proptest! {
        /// What the plain reader accepts, serde_json reads the same; what the encoder writes
        /// for a key of the usual characters, the plain reader reads.
        #[test]
        fn the_plain_reader_agrees_with_serde_json(
            key in "[A-Za-z0-9_-]{1,60}|.{0,20}",
            user_id in proptest::option::of("[a-z0-9_]{1,30}|.{0,10}"),
            issued_at in proptest::num::u64::ANY,
            expires_at in proptest::option::of(proptest::num::u64::ANY),
            app_data in proptest::option::of(".{0,20}"),
        ) {
            let stored = StoredKey {
                key: ApiKey::new(key),
                user_id,
                issued_at,
                expires_at,
                app_data,
            };
            let json = encode_stored(&stored);
            let serde = decode_with_serde(&json).expect("serde reads what serde wrote");
            match decode_plain(&json) {
                Some(plain) => proptest::prop_assert_eq!(fields(&plain), fields(&serde)),
                None => proptest::prop_assert!(
                    json.contains('\\'),
                    "plain JSON refused: {}", &*json
                ),
            }
        }

        /// Made-up JSON: the plain reader never accepts what serde_json reads differently.
        #[test]
        fn the_plain_reader_accepts_nothing_serde_reads_otherwise(json in r#"\{"k":"[a-z\\"]{0,4}"(,"u":"[a-z]{0,3}")?,"t":[0-9.e-]{1,4}(,"x":(null|[0-9]{1,3}))?\}[ ]?"#) {
            if let Some(plain) = decode_plain(&json) {
                let serde = decode_with_serde(&json);
                proptest::prop_assert!(serde.is_some(), "{json}");
                proptest::prop_assert_eq!(fields(&plain), fields(&serde.unwrap()));
            }
        }
    }

    #[test]
    fn a_plain_payload_reads_without_serde_and_an_empty_key_is_refused() {
        let json = r#"{"k":"sk-mg-v1-abc","u":"user_1","t":1764800000,"x":1764900000}"#;
        let read = decode_plain(json).unwrap();
        assert_eq!(
            fields(&read),
            (
                "sk-mg-v1-abc".to_owned(),
                Some("user_1".to_owned()),
                1_764_800_000,
                Some(1_764_900_000),
                None
            )
        );
        assert!(decode_stored(r#"{"k":"","t":1}"#).is_none());
        assert!(
            decode_plain(r#"{"k":"a\"b","t":1}"#).is_none(),
            "an escape goes to serde"
        );
        assert_eq!(
            decode_stored(r#"{"k":"a\"b","t":1}"#).map(|key| fields(&key).0),
            Some("a\"b".to_owned())
        );
        assert!(decode_plain(r#"{"k":"a","t":01}"#).is_none());
        assert!(decode_plain(r#"{"k":"a","t":1.5}"#).is_none());
        assert!(decode_plain(r#"{"k":"a","t":1} "#).is_none());
    }
}
