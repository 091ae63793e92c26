//! Randomness for secrets, ids and nonces, from two sources:
//!
//! - [`random_bytes`] and [`random_token`]: straight from the operating system (a system call
//!   each), for what lives long (cookie secrets, session tokens, the loopback path).
//! - The flow's own values: from the thread's generator (`rand::rng()`: ChaCha12, seeded from the
//!   operating system and reseeded every 64 KiB of output, what the `cookie`, `oauth2` and
//!   `tower-sessions` crates use), for what one sign-in mints and forgets within minutes: the
//!   flow id, the PKCE verifier and the flow cookie's nonce. A sign-in then costs no system
//!   call. Like those crates it is not reseeded when a process is forked or a virtual machine
//!   restored from a snapshot; the long-lived secrets above do not depend on it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::SysRng;
use rand::{Rng as _, TryRng as _};

/// `N` bytes from the operating system's random generator, for secrets, ids and nonces.
///
/// ```
/// let nonce: [u8; 12] = modelgates_oauth_core::random::random_bytes();
/// assert_ne!(nonce, modelgates_oauth_core::random::random_bytes::<12>());
/// ```
///
/// # Panics
///
/// When the operating system has no randomness to give: continuing would mint guessable
/// secrets.
#[must_use]
#[doc(hidden)]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random generator failed; refusing to mint weak secrets");
    bytes
}

/// `N` bytes from the operating system's random generator as base64url without padding: a
/// token that needs no escaping in a URL, a path segment or a cookie. 16 bytes (128 bits) is
/// enough for an unguessable identifier.
///
/// ```
/// let token = modelgates_oauth_core::random::random_token::<16>();
/// assert_eq!(token.len(), 22);
/// assert_ne!(token, modelgates_oauth_core::random::random_token::<16>());
/// ```
///
/// # Panics
///
/// When the operating system has no randomness to give.
#[must_use]
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// `N` bytes from the thread's cryptographic generator, for the values one sign-in mints
/// (see the module docs for why not the operating system's directly).
pub(crate) fn flow_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}
