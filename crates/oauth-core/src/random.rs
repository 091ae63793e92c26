//! Randomness from the operating system, for verifiers, flow ids and session tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use rand::rngs::SysRng;

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
