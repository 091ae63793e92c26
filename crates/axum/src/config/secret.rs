//! [`CookieSecret`]: the key material of every cookie, and the rules it must meet.
//!
//! The rules: a secret is at least [`MIN_SECRET_LEN`] (64) bytes, read from base64 (standard or
//! URL-safe, padded or not, with any whitespace or line breaks inside, as `openssl rand -base64 64`
//! wraps it); the first 32 bytes sign, the next 32 encrypt (the `cookie` crate's
//! `Key`). It is a [`secrecy::SecretSlice`]: its `Debug` redacts it and its memory is wiped on
//! drop. A generated secret lives as
//! long as the process: every restart signs all users out.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret as _, SecretSlice};
use zeroize::Zeroizing;

use super::error::ConfigError;
use modelgates_oauth_core::__private::random_bytes;

/// The shortest cookie secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 64;
/// The key material cookies are signed and encrypted with: at least 64 random bytes.
///
/// `Debug` redacts it; it is wiped from memory on drop.
///
/// ```
/// use modelgates_axum::CookieSecret;
///
/// let secret = CookieSecret::generate();
/// let again = CookieSecret::from_base64(&secret.to_base64()).unwrap();
/// assert_eq!(format!("{again:?}"), "CookieSecret(<redacted>)");
/// assert!(CookieSecret::from_base64("c2hvcnQ=").is_err()); // too short
/// ```
#[derive(Clone)]
pub struct CookieSecret(SecretSlice<u8>);

impl CookieSecret {
    /// Reads a secret from base64: standard or URL-safe alphabet, padded or not, with any
    /// whitespace and line breaks anywhere (so the wrapped output of `openssl rand -base64 64`
    /// is accepted as it is).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretNotBase64`] or [`ConfigError::SecretTooShort`], whose messages say
    /// how to make a good one.
    pub fn from_base64(encoded: &str) -> Result<Self, ConfigError> {
        // The copy without whitespace is wiped too: it is the secret in another form.
        let encoded: Zeroizing<String> = Zeroizing::new(
            encoded
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
        );
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded.as_bytes()).ok())
            .ok_or(ConfigError::SecretNotBase64)?;
        Self::from_bytes(bytes)
    }

    /// Uses raw bytes as the secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretTooShort`] below 64 bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        // Wrapped first, so that a refused secret is wiped too.
        let secret = SecretSlice::from(bytes);
        let len = secret.expose_secret().len();
        if len < MIN_SECRET_LEN {
            return Err(ConfigError::SecretTooShort(len));
        }
        Ok(Self(secret))
    }

    /// 64 fresh bytes from the operating system's random generator. A server using a
    /// generated secret signs everyone out whenever it restarts.
    #[must_use]
    pub fn generate() -> Self {
        Self(SecretSlice::from(random_bytes::<MIN_SECRET_LEN>().to_vec()))
    }

    /// The secret as standard base64, to store it in `MODELGATES_COOKIE_SECRET`.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes())
    }

    /// The raw secret: for deriving a key of your own from it (the database stores of
    /// `modelgates-stores` derive their sealing key so). Never log it or send it anywhere.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }

    fn bytes(&self) -> &[u8] {
        self.expose_secret()
    }

    pub(crate) fn cookie_key(&self) -> cookie::Key {
        // `Key::from` takes the first 64 bytes: 32 to sign, 32 to encrypt.
        cookie::Key::from(&self.bytes()[..MIN_SECRET_LEN])
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_must_be_long_enough_and_says_how_to_make_one() {
        let short = CookieSecret::from_bytes(vec![1; 63]).unwrap_err();
        assert_eq!(short, ConfigError::SecretTooShort(63));
        assert!(short.to_string().contains("openssl rand -base64 64"));
        assert!(CookieSecret::from_bytes(vec![1; 64]).is_ok());
        assert_eq!(
            CookieSecret::from_base64("!!!").unwrap_err(),
            ConfigError::SecretNotBase64
        );
        let secret = CookieSecret::generate();
        let url_safe = URL_SAFE_NO_PAD.encode(secret.bytes());
        assert!(CookieSecret::from_base64(&url_safe).is_ok());
    }

    /// `openssl rand -base64 64` prints 88 characters wrapped at 64 columns with a final
    /// newline; pasted into a file or a shell variable it keeps the break, and CRLF on Windows.
    #[test]
    fn wrapped_base64_with_any_whitespace_is_the_same_secret() {
        let secret = CookieSecret::generate();
        let one_line = secret.to_base64();
        let openssl_output = format!("{}\n{}\n", &one_line[..64], &one_line[64..]);
        let crlf = openssl_output.replace('\n', "\r\n");
        let spaced = format!(" \t{} {}\n", &one_line[..10], &one_line[10..]);
        let url_safe_wrapped = {
            let url_safe = URL_SAFE.encode(secret.bytes());
            format!("{}\n{}", &url_safe[..40], &url_safe[40..])
        };
        for encoded in [openssl_output, crlf, spaced, url_safe_wrapped] {
            let read = CookieSecret::from_base64(&encoded).unwrap();
            assert_eq!(read.bytes(), secret.bytes(), "{encoded:?}");
        }
        assert_eq!(
            CookieSecret::from_base64("ab\ncd!").unwrap_err(),
            ConfigError::SecretNotBase64,
            "whitespace is ignored, other characters are not"
        );
    }

    #[test]
    fn every_secret_message_recommends_the_one_line_command() {
        let command = "openssl rand -base64 64 | tr -d '\\n'";
        assert!(ConfigError::SecretNotBase64.to_string().contains(command));
        assert!(ConfigError::SecretTooShort(3).to_string().contains(command));
    }
}
