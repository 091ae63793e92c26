//! What the flow cookie carries: the per-flow binding id, the PKCE verifier and method,
//! `return_to` and the issue time, as compact JSON.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use modelgates_oauth_core::{ChallengeMethod, CodeVerifier, Pkce};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::primitives::random_bytes;

/// The per-flow random value that binds a callback to the browser that started the sign-in:
/// kept in the flow cookie and carried in the callback URL sent to ModelGates.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct FlowId(String);

impl FlowId {
    /// 128 fresh random bits, base64url: 22 characters that need no escaping in a URL path.
    pub(crate) fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<16>()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a callback URL's value is this one, compared in constant time.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl std::fmt::Debug for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowId(<redacted>)")
    }
}

/// What `/login` remembers for `/callback`.
#[derive(Debug)]
pub(crate) struct FlowState {
    /// The value the callback URL must carry.
    pub(crate) id: FlowId,
    /// `None` when the sign-in sent no challenge.
    pub(crate) pkce: Option<Pkce>,
    pub(crate) return_to: String,
    /// Seconds since the Unix epoch.
    pub(crate) issued_at: u64,
}

/// The flow cookie's JSON. Strings are `Cow` because JSON escapes cannot be borrowed.
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
}

impl FlowState {
    /// The flow as JSON (wiped from memory when dropped: it holds the verifier).
    pub(super) fn encode(&self) -> zeroize::Zeroizing<String> {
        let wire = FlowWire {
            id: Cow::Borrowed(self.id.as_str()),
            verifier: self
                .pkce
                .as_ref()
                .map(|pkce| Cow::Borrowed(pkce.verifier().expose_secret())),
            method: self.pkce.as_ref().map(Pkce::method),
            return_to: Cow::Borrowed(&self.return_to),
            issued_at: self.issued_at,
        };
        zeroize::Zeroizing::new(serde_json::to_string(&wire).expect("plain data serialises"))
    }

    pub(super) fn decode(json: &str) -> Option<Self> {
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
            id: FlowId(wire.id.into_owned()),
            pkce,
            return_to: wire.return_to.into_owned(),
            issued_at: wire.issued_at,
        })
    }

    /// Whether the flow is older than `max_age`, or claims to come from the future.
    pub(crate) fn is_expired(&self, max_age: Duration, now: u64) -> bool {
        const CLOCK_SKEW: u64 = 60;
        self.issued_at > now + CLOCK_SKEW || now.saturating_sub(self.issued_at) > max_age.as_secs()
    }
}
