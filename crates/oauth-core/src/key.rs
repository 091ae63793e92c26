//! [`ApiKey`]: the user-controlled key ModelGates issues, as a secret type.
//!
//! The rules: the key is a [`secrecy::SecretString`] (its memory is wiped on drop), `Debug`
//! redacts, there is no `Display`, and comparison is in constant time. The value is read only through [`ApiKey::expose_secret`], so every
//! place that handles the raw key is visible in a code search.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

pub use crate::limit::{InvalidSpendLimit, KeyRequest, SpendLimit};

/// A user-controlled ModelGates API key: a Bearer token that spends the user's money.
///
/// ```
/// use modelgates_oauth_core::ApiKey;
///
/// let key = ApiKey::new("sk-mg-v1-0123456789abcdef");
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// assert_eq!(key.masked(), "sk-mg-v1…cdef");
/// assert_eq!(key.expose_secret(), "sk-mg-v1-0123456789abcdef");
/// ```
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key received from ModelGates or read from storage.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(secret_string(key.into()))
    }

    /// The key itself. Send it only as a Bearer token or to encrypted storage.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// A form safe to show a person: the first 8 and last 4 characters around an ellipsis, or
    /// only an ellipsis when the key is too short for that to hide most of it.
    #[must_use]
    pub fn masked(&self) -> String {
        let key = self.expose_secret();
        if key.len() < 24 || !key.is_ascii() {
            return "…".to_owned();
        }
        format!("{}…{}", &key[..8], &key[key.len() - 4..])
    }
}

/// `text` as a [`SecretString`], leaving no unwiped copy behind. A `SecretString` holds a
/// `Box<str>`, and boxing a `String` that has spare capacity reallocates, which frees the old
/// buffer with the secret still in it: such a string is copied into an exact allocation and
/// wiped instead.
#[must_use]
#[doc(hidden)]
pub fn secret_string(text: String) -> SecretString {
    if text.len() == text.capacity() {
        SecretString::from(text)
    } else {
        let text = Zeroizing::new(text);
        SecretString::from(text.as_str())
    }
}

impl From<SecretString> for ApiKey {
    /// A key the app already keeps as a [`SecretString`].
    fn from(key: SecretString) -> Self {
        Self(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        let (this, other) = (self.expose_secret(), other.expose_secret());
        this.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for ApiKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_key() {
        let key = ApiKey::new("sk-mg-v1-secretsecretsecret");
        let printed = format!("{key:?} {:#?}", Some(&key));
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn equality_compares_whole_values() {
        assert_eq!(ApiKey::new("abc"), ApiKey::new("abc"));
        assert_ne!(ApiKey::new("abc"), ApiKey::new("abd"));
        assert_ne!(ApiKey::new("abc"), ApiKey::new("abcd"));
    }

    #[test]
    fn masked_hides_the_middle_and_short_keys_entirely() {
        let key = ApiKey::new("sk-mg-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaawxyz");
        assert_eq!(key.masked(), "sk-mg-v1…wxyz");
        assert_eq!(ApiKey::new("short-key").masked(), "…");
    }
}
