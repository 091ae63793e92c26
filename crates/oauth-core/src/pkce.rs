//! Proof Key for Code Exchange (RFC 7636): verifiers, challenges and their method.
//!
//! The rules this module applies:
//!
//! * A generated [`CodeVerifier`] is 32 bytes from the operating system's random generator,
//!   base64url-encoded without padding: 43 characters, 256 bits of entropy (RFC 7636 §4.1).
//! * A parsed verifier must be 43 to 128 characters from the unreserved set
//!   `A-Z a-z 0-9 - . _ ~`; anything else is an [`InvalidVerifier`] error.
//! * [`ChallengeMethod::S256`] derives the challenge as `BASE64URL-NOPAD(SHA256(verifier))`,
//!   exactly as ModelGates' own TypeScript sample does. [`ChallengeMethod::Plain`] sends the
//!   verifier itself and is documented as weaker: anyone who sees the authorization URL can
//!   redeem an intercepted code.
//!
//! * A [`Pkce`] is one sign-in's half of the exchange: a verifier together with the method of
//!   the challenge sent for it. The two travel as one value, so a verifier can never be sent
//!   with the wrong method, nor a method without its verifier.
//!
//! ```
//! use modelgates_oauth_core::{ChallengeMethod, Pkce};
//!
//! let pkce = Pkce::generate(ChallengeMethod::S256);
//! let challenge = pkce.challenge();
//! assert_eq!(challenge.as_str().len(), 43);
//! assert_eq!(challenge.method(), ChallengeMethod::S256);
//! ```

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Shortest verifier RFC 7636 allows.
pub(crate) const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier RFC 7636 allows.
pub(crate) const MAX_VERIFIER_LEN: usize = 128;

/// The secret half of PKCE: kept by the app, sent only in the key exchange.
///
/// A [`secrecy::SecretString`] inside: `Debug` prints `CodeVerifier(<redacted>)`, there is no
/// `Display`, comparison is in constant time, and the memory holding the value is wiped on
/// drop. Read the value with [`CodeVerifier::expose_secret`].
///
/// ```
/// use modelgates_oauth_core::pkce::CodeVerifier;
///
/// let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
/// assert_eq!(format!("{verifier:?}"), "CodeVerifier(<redacted>)");
/// assert!(CodeVerifier::parse("too-short").is_err());
/// ```
#[derive(Clone)]
pub struct CodeVerifier(SecretString);

impl CodeVerifier {
    /// A fresh verifier from 32 bytes of the operating system's random generator.
    ///
    /// # Panics
    ///
    /// Panics only if the operating system cannot supply random bytes, a condition under which
    /// no secure sign-in is possible at all.
    #[must_use]
    pub fn generate() -> Self {
        let bytes = Zeroizing::new(crate::random::flow_bytes::<32>());
        Self(SecretString::from(
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes.as_slice()),
        ))
    }

    /// Validates a verifier received from elsewhere (a cookie, a file, a test vector).
    ///
    /// # Errors
    ///
    /// [`InvalidVerifier`] when the length is outside 43..=128 or a character is not unreserved.
    pub fn parse(value: &str) -> Result<Self, InvalidVerifier> {
        let len = value.len();
        if !(MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&len) {
            return Err(InvalidVerifier::Length(len));
        }
        if !value.bytes().all(is_unreserved) {
            return Err(InvalidVerifier::Character);
        }
        Ok(Self(SecretString::from(value)))
    }

    /// The verifier's text. Call it only to send the verifier to ModelGates or to seal it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The challenge derived from this verifier with `method`.
    #[must_use]
    pub fn challenge(&self, method: ChallengeMethod) -> CodeChallenge {
        let value = match method {
            ChallengeMethod::S256 => base64_simd::URL_SAFE_NO_PAD
                .encode_to_string(Sha256::digest(self.expose_secret().as_bytes())),
            ChallengeMethod::Plain => self.expose_secret().to_owned(),
        };
        CodeChallenge { value, method }
    }
}

impl PartialEq for CodeVerifier {
    fn eq(&self, other: &Self) -> bool {
        let (this, other) = (self.expose_secret(), other.expose_secret());
        this.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for CodeVerifier {}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier(<redacted>)")
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Why a string is not a valid PKCE code verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidVerifier {
    /// The verifier is shorter than 43 or longer than 128 characters.
    #[error(
        "a PKCE code verifier must be 43 to 128 characters long, this one has {0}; \
         use CodeVerifier::generate() to make a valid one"
    )]
    Length(usize),
    /// The verifier holds a character outside `A-Z a-z 0-9 - . _ ~`.
    #[error(
        "a PKCE code verifier may only contain A-Z, a-z, 0-9 and - . _ ~; \
         use CodeVerifier::generate() to make a valid one"
    )]
    Character,
}

/// How the challenge is derived from the verifier (`code_challenge_method`).
///
/// Serialised as ModelGates spells it: `"S256"` and `"plain"`.
///
/// ```
/// use modelgates_oauth_core::ChallengeMethod;
///
/// assert_eq!(ChallengeMethod::default(), ChallengeMethod::S256);
/// assert_eq!("plain".parse::<ChallengeMethod>().unwrap(), ChallengeMethod::Plain);
/// assert_eq!(serde_json::to_string(&ChallengeMethod::S256).unwrap(), "\"S256\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChallengeMethod {
    /// `BASE64URL(SHA256(verifier))`: the default and the only recommended method.
    #[default]
    #[serde(rename = "S256")]
    S256,
    /// The verifier itself. Weaker: a code intercepted together with the authorization URL can
    /// be redeemed by whoever intercepted it. Use only where SHA-256 is unavailable.
    #[serde(rename = "plain")]
    Plain,
}

impl ChallengeMethod {
    /// The wire name: `"S256"` or `"plain"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

impl fmt::Display for ChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChallengeMethod {
    type Err = UnknownChallengeMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "S256" => Ok(Self::S256),
            "plain" => Ok(Self::Plain),
            _ => Err(UnknownChallengeMethod),
        }
    }
}

/// A string that is neither `S256` nor `plain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code_challenge_method: use \"S256\" (recommended) or \"plain\"")]
pub struct UnknownChallengeMethod;

/// The public half of PKCE, sent in the `/auth` URL together with its method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge {
    value: String,
    method: ChallengeMethod,
}

impl CodeChallenge {
    /// The challenge text, as sent in `code_challenge`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The method it was derived with, as sent in `code_challenge_method`.
    #[must_use]
    pub const fn method(&self) -> ChallengeMethod {
        self.method
    }
}

/// One sign-in's PKCE values: the secret verifier and the method of the challenge sent for it.
///
/// Made by [`Pkce::generate`] when the sign-in starts, kept by the app (in a cookie, a file)
/// until the callback, and given whole to
/// [`ModelGatesClient::exchange_code`](crate::ModelGatesClient::exchange_code). `Debug`
/// redacts the verifier.
///
/// ```
/// use modelgates_oauth_core::{ChallengeMethod, Pkce};
/// use modelgates_oauth_core::pkce::CodeVerifier;
///
/// let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
/// let pkce = Pkce::new(verifier, ChallengeMethod::S256);
/// assert_eq!(pkce.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// assert!(!format!("{pkce:?}").contains("dBjft"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: CodeVerifier,
    method: ChallengeMethod,
}

impl Pkce {
    /// A fresh verifier (see [`CodeVerifier::generate`]) for a challenge made with `method`.
    #[must_use]
    pub fn generate(method: ChallengeMethod) -> Self {
        Self::new(CodeVerifier::generate(), method)
    }

    /// Pairs a verifier kept from earlier with the method its challenge used.
    #[must_use]
    pub fn new(verifier: CodeVerifier, method: ChallengeMethod) -> Self {
        Self { verifier, method }
    }

    /// The challenge to send in the `/auth` URL.
    #[must_use]
    pub fn challenge(&self) -> CodeChallenge {
        self.verifier.challenge(self.method)
    }

    /// The secret verifier, sent only in the key exchange.
    #[must_use]
    pub fn verifier(&self) -> &CodeVerifier {
        &self.verifier
    }

    /// The challenge method.
    #[must_use]
    pub const fn method(&self) -> ChallengeMethod {
        self.method
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_unreserved_string_of_valid_length_parses(v in "[A-Za-z0-9._~-]{43,128}") {
            let verifier = CodeVerifier::parse(&v).unwrap();
            prop_assert_eq!(verifier.expose_secret(), v.as_str());
            let plain = verifier.challenge(ChallengeMethod::Plain);
            prop_assert_eq!(plain.as_str(), v.as_str());
        }

        #[test]
        fn a_reserved_character_anywhere_is_refused(
            prefix in "[A-Za-z0-9._~-]{0,60}",
            bad in "[^A-Za-z0-9._~-]",
            suffix in "[A-Za-z0-9._~-]{43,60}",
        ) {
            let candidate = format!("{prefix}{bad}{suffix}");
            prop_assert!(CodeVerifier::parse(&candidate).is_err());
        }

        #[test]
        fn wrong_lengths_are_refused(v in "[A-Za-z0-9._~-]{0,42}|[A-Za-z0-9._~-]{129,200}") {
            prop_assert_eq!(CodeVerifier::parse(&v), Err(InvalidVerifier::Length(v.len())));
        }

        #[test]
        fn s256_challenges_are_43_base64url_chars_and_deterministic(v in "[A-Za-z0-9._~-]{43,128}") {
            let verifier = CodeVerifier::parse(&v).unwrap();
            let challenge = verifier.challenge(ChallengeMethod::S256);
            prop_assert_eq!(challenge.as_str().len(), 43);
            prop_assert!(challenge.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(challenge, verifier.challenge(ChallengeMethod::S256));
            // Decoded by the `base64` crate: the challenge is the digest in base64url.
            let digest = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, verifier.challenge(ChallengeMethod::S256).as_str()).unwrap();
            let expected = Sha256::digest(v.as_bytes());
            prop_assert_eq!(digest.as_slice(), expected.as_slice());
        }
    }
}
