//! The sign-in flow between the redirect to `/auth` and the callback, for any web framework:
//! what to remember, how to keep it sealed in the browser, and how to check the callback
//! against it.
//!
//! The rules:
//!
//! * A flow is a [`FlowState`]: a fresh 128-bit [`FlowId`], the [`Pkce`] values (or none),
//!   the local page to come back to, and the issue time.
//! * The callback URL given to ModelGates is the app's callback URL followed by one more path
//!   segment, the flow id ([`FlowState::callback_url`]). A path segment rather than a query
//!   parameter, because it survives whatever a provider does to the callback's query when it
//!   adds `code`. ModelGates documents no `state` parameter: this is what binds a callback to
//!   the browser that started it, even against a provider that would redeem a verifier for a
//!   code issued without a challenge (RFC 9700 §2.1.1).
//! * The flow travels in the browser sealed by a [`FlowSealer`]: AES-256-GCM with a fresh
//!   nonce, the caller's associated data (a cookie's name, say) and a purpose tag inside, so
//!   the browser can neither read the verifier nor forge a flow, and no other sealed value of
//!   the app can stand in for one. Sealers made with previous keys still open older flows.
//! * A callback is accepted only when, in this order, the sealed flow opens
//!   ([`FlowError::Invalid`]), it is younger than the flow lifetime and not from the future
//!   beyond a minute of clock skew ([`FlowError::Expired`]), and the flow id in the callback's
//!   path equals the sealed one, compared in constant time ([`FlowError::Mismatch`]). All of
//!   this before anything is sent to ModelGates.
//! * Single use is the app's to enforce: record each flow id whose code was sent for exchange,
//!   for as long as a flow lives, and refuse a second callback with it.
//!
//! ```
//! use std::time::Duration;
//! use modelgates_oauth_core::{ChallengeMethod, Pkce, Url};
//! use modelgates_oauth_core::flow::{FlowSealer, FlowState};
//!
//! let sealer = FlowSealer::derive(b"a secret of at least thirty-two bytes, from configuration").unwrap();
//! // At /login: remember the flow in a cookie, send the browser to /auth.
//! let flow = FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/chat");
//! let callback = flow.callback_url(&Url::parse("http://localhost:3000/callback").unwrap());
//! let cookie_value = sealer.seal(&flow, b"flow");
//!
//! // At /callback/<flow id>: open and check before exchanging the code.
//! let flow_id = callback.path_segments().unwrap().next_back();
//! let opened = sealer.open(&cookie_value, b"flow").unwrap();
//! opened.check(flow_id, Duration::from_secs(600)).unwrap();
//! assert_eq!(opened.return_to, "/chat");
//! ```

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead as _, AeadInPlace as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use url::Url;
use zeroize::Zeroizing;

use crate::pkce::{ChallengeMethod, CodeVerifier, Pkce};
use crate::random::flow_bytes;

pub use crate::callback::{CallbackError, CallbackParams};

/// Tolerated difference between clocks of instances that seal and open flows.
const CLOCK_SKEW_SECS: u64 = 60;
/// The purpose tag sealed with every flow.
const PURPOSE: &str = "flow2.";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The longest sealed value [`FlowSealer::open`] tries.
pub(crate) const MAX_SEALED_FLOW_LEN: usize = 4096;

/// Seconds since the Unix epoch; 0 on a clock set before 1970.
#[must_use]
#[doc(hidden)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The per-flow random value that binds a callback to the browser that started the sign-in.
/// A [`secrecy::SecretString`] inside: `Debug` redacts it and its memory is wiped on drop.
#[derive(Clone)]
pub struct FlowId(SecretString);

impl FlowId {
    /// 128 fresh random bits, base64url: 22 characters that need no escaping in a URL path.
    #[must_use]
    pub fn generate() -> Self {
        Self(SecretString::from(
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(flow_bytes::<16>()),
        ))
    }

    /// The id's text, as it appears in the callback URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether `candidate` (from a callback URL) is this id, compared in constant time.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        self.as_str().as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl PartialEq for FlowId {
    /// In constant time, as [`Self::matches`].
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.as_str())
    }
}

impl Eq for FlowId {}

impl std::fmt::Debug for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowId(<redacted>)")
    }
}

/// What the start of a sign-in remembers for its callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct FlowState {
    /// The value the callback URL must carry.
    pub id: FlowId,
    /// The verifier and method of the challenge sent to `/auth`; `None` when none was sent.
    pub pkce: Option<Pkce>,
    /// The local page to come back to. Check it again when using it: the rule may have
    /// tightened since the flow was sealed.
    pub return_to: String,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    /// Who started the flow, as the app names them (an opaque value, such as a hash of the app's
    /// user id), for an app that links ModelGates to its own users: the callback must come
    /// from the same one. `None` for a plain sign-in.
    pub started_by: Option<String>,
}

/// Why a callback does not belong to the flow it came with. Each is a callback request that
/// is no good (the axum layer answers 400): the user signs in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The sealed flow did not open: tampered with, sealed with another key, or not a flow.
    #[error("This sign-in could not be verified. Please sign in again.")]
    Invalid,
    /// The flow is older than its lifetime (or dated in the future).
    #[error("This sign-in took too long and has expired. Please sign in again.")]
    Expired,
    /// The callback's flow id is missing or is another flow's: the response was meant for
    /// another browser's sign-in, or was pushed into this one.
    #[error(
        "This sign-in response does not belong to the sign-in started in this browser. Please sign in again."
    )]
    Mismatch,
}

impl FlowError {
    /// A stable machine-readable code: `flow_invalid`, `flow_expired` or `flow_mismatch`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "flow_invalid",
            Self::Expired => "flow_expired",
            Self::Mismatch => "flow_mismatch",
        }
    }
}

/// The sealed JSON. Strings are `Cow` because JSON escapes cannot be borrowed.
#[derive(Serialize, Deserialize)]
struct FlowWire<'a> {
    #[serde(rename = "i", borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "v", borrow)]
    verifier: Option<Cow<'a, str>>,
    #[serde(rename = "m")]
    method: Option<ChallengeMethod>,
    #[serde(rename = "r", borrow)]
    return_to: Cow<'a, str>,
    #[serde(rename = "t")]
    issued_at: u64,
    #[serde(rename = "b", borrow, default, skip_serializing_if = "Option::is_none")]
    started_by: Option<Cow<'a, str>>,
}

impl FlowState {
    /// A flow starting now, with a fresh id.
    #[must_use]
    pub fn new(pkce: Option<Pkce>, return_to: impl Into<String>) -> Self {
        Self {
            id: FlowId::generate(),
            pkce,
            return_to: return_to.into(),
            issued_at: unix_now(),
            started_by: None,
        }
    }

    /// This flow, started by `who` (see [`Self::started_by`]).
    #[must_use]
    pub fn with_started_by(mut self, who: Option<String>) -> Self {
        self.started_by = who;
        self
    }

    /// The callback URL for this flow: `callback` followed by the flow id as one more path
    /// segment.
    #[must_use]
    pub fn callback_url(&self, callback: &Url) -> Url {
        let mut url = callback.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(self.id.as_str());
        }
        url
    }

    /// Whether the flow is older than `max_age` at `now`, or claims to come from the future.
    #[must_use]
    pub fn is_expired(&self, max_age: Duration, now: u64) -> bool {
        self.issued_at > now + CLOCK_SKEW_SECS
            || now.saturating_sub(self.issued_at) > max_age.as_secs()
    }

    /// Checks a callback against this flow: its age, then the flow id the callback's path
    /// carries (`None` when it carries none).
    ///
    /// # Errors
    ///
    /// [`FlowError::Expired`] or [`FlowError::Mismatch`].
    pub fn check(&self, presented_id: Option<&str>, max_age: Duration) -> Result<(), FlowError> {
        if self.is_expired(max_age, unix_now()) {
            return Err(FlowError::Expired);
        }
        if !presented_id.is_some_and(|id| self.id.matches(id)) {
            return Err(FlowError::Mismatch);
        }
        Ok(())
    }

    /// The flow as JSON, wiped from memory when dropped: it holds the verifier.
    fn encode(&self) -> Zeroizing<String> {
        let wire = FlowWire {
            id: Cow::Borrowed(self.id.as_str()),
            verifier: self
                .pkce
                .as_ref()
                .map(|pkce| Cow::Borrowed(pkce.verifier().expose_secret())),
            method: self.pkce.as_ref().map(Pkce::method),
            return_to: Cow::Borrowed(&self.return_to),
            issued_at: self.issued_at,
            started_by: self.started_by.as_deref().map(Cow::Borrowed),
        };
        // One buffer, sized for the longest escaping (6 bytes a character), so that no
        // reallocation leaves an unwiped copy of the verifier behind.
        let escapable = self.return_to.len() + self.started_by.as_ref().map_or(0, String::len);
        let mut text = Zeroizing::new(Vec::with_capacity(PURPOSE.len() + 256 + 6 * escapable));
        text.extend_from_slice(PURPOSE.as_bytes());
        serde_json::to_writer(&mut *text, &wire).expect("plain data serialises");
        Zeroizing::new(String::from_utf8(std::mem::take(&mut *text)).expect("JSON is UTF-8"))
    }

    fn decode(payload: &str) -> Option<Self> {
        let json = payload.strip_prefix(PURPOSE)?;
        let wire: FlowWire<'_> = serde_json::from_str(json).ok()?;
        // Both or neither: a verifier without its method (or the reverse) is not ours.
        let pkce = match (&wire.verifier, wire.method) {
            (Some(verifier), Some(method)) => {
                Some(Pkce::new(CodeVerifier::parse(verifier).ok()?, method))
            }
            (None, None) => None,
            _ => return None,
        };
        Some(Self {
            id: FlowId(crate::key::secret_string(wire.id.into_owned())),
            pkce,
            return_to: wire.return_to.into_owned(),
            issued_at: wire.issued_at,
            started_by: wire.started_by.map(Cow::into_owned),
        })
    }
}

/// Seals flows for the browser and opens them again: AES-256-GCM under the newest key, opened
/// with any configured key, newest first.
///
/// The sealed text is `base64(nonce ‖ ciphertext ‖ tag)`, the format of the `cookie` crate's
/// private cookies: a sealer made with a `cookie::Key`'s encryption half and the cookie's name
/// as associated data opens that crate's private cookies, and the reverse.
#[derive(Clone)]
pub struct FlowSealer {
    /// Newest first.
    ciphers: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for FlowSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowSealer")
            .field("keys", &self.ciphers.len())
            .finish()
    }
}

/// A secret too short to derive a sealing key from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the secret has {0} bytes; at least 32 random bytes are needed (make 64 with `openssl rand -base64 64 | tr -d '\\n'`)"
)]
pub struct SecretTooShort(pub usize);

impl FlowSealer {
    /// A sealer with one 256-bit AES key.
    #[must_use]
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            ciphers: vec![Aes256Gcm::new(key.into())],
        }
    }

    /// A sealer whose key is derived from an app secret of at least 32 random bytes:
    /// `SHA-256("modelgates-oauth-core flow v1" ‖ secret)`.
    ///
    /// # Errors
    ///
    /// [`SecretTooShort`] below 32 bytes.
    pub fn derive(secret: &[u8]) -> Result<Self, SecretTooShort> {
        if secret.len() < 32 {
            return Err(SecretTooShort(secret.len()));
        }
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(
            Sha256::new()
                .chain_update(b"modelgates-oauth-core flow v1")
                .chain_update(secret)
                .finalize()
                .into(),
        );
        Ok(Self::new(&key))
    }

    /// Also opens flows sealed with `previous` (for key rotation); new flows are still sealed
    /// with the newest key.
    #[must_use]
    pub fn with_previous(mut self, previous: impl IntoIterator<Item = Self>) -> Self {
        self.ciphers
            .extend(previous.into_iter().flat_map(|sealer| sealer.ciphers));
        self
    }

    /// Seals `flow`, bound to `associated_data` (which [`Self::open`] must be given again).
    #[must_use]
    pub fn seal(&self, flow: &FlowState, associated_data: &[u8]) -> String {
        let nonce = flow_bytes::<NONCE_LEN>();
        let plaintext = flow.encode();
        // Nonce, ciphertext and tag in one buffer sized once, the flow encrypted where it was
        // copied.
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext.as_bytes());
        let tag = self.ciphers[0]
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                associated_data,
                &mut sealed[NONCE_LEN..],
            )
            .expect("AES-GCM encryption of a short message cannot fail");
        sealed.extend_from_slice(&tag);
        // The same text as `base64`'s `STANDARD` engine writes, with vector instructions.
        base64_simd::STANDARD.encode_to_string(sealed)
    }

    /// Opens a sealed flow. Values longer than 4,096 bytes are refused before any
    /// cryptography.
    ///
    /// # Errors
    ///
    /// [`FlowError::Invalid`] when no key opens it, or it opens to something that is not a flow.
    pub fn open(&self, sealed: &str, associated_data: &[u8]) -> Result<FlowState, FlowError> {
        if sealed.len() > MAX_SEALED_FLOW_LEN {
            return Err(FlowError::Invalid);
        }
        let data = STANDARD.decode(sealed).map_err(|_| FlowError::Invalid)?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(FlowError::Invalid);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let plaintext = self
            .ciphers
            .iter()
            .find_map(|cipher| {
                let payload = Payload {
                    msg: ciphertext,
                    aad: associated_data,
                };
                cipher.decrypt(Nonce::from_slice(nonce), payload).ok()
            })
            .map(Zeroizing::new)
            .ok_or(FlowError::Invalid)?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| FlowError::Invalid)?;
        FlowState::decode(text).ok_or(FlowError::Invalid)
    }
}

#[cfg(test)]
mod tests;
