//! The two cookies: the encrypted flow cookie and the protected key cookie, and secret rotation.
//!
//! The rules this module applies:
//!
//! * **Flow cookie** (between `/login` and `/callback`): AES-256-GCM-encrypted and
//!   authenticated with the `cookie` crate's private jar, with the cookie's name as associated
//!   data and a purpose tag inside, so no other value of ours can stand in for it. It holds the
//!   per-flow binding id, the PKCE verifier and method, `return_to` and the issue time; a proxy
//!   log or HAR file that records it together with a callback URL learns nothing it can redeem.
//!   It is checked (authenticity, then age) before any call to ModelGates.
//! * **Key cookie**: the store's token, AES-256-GCM-encrypted and authenticated with the
//!   cookie's name as associated data (the private jar), or HMAC-signed and purpose-tagged for
//!   stores whose token is only an opaque id.
//! * Both are `HttpOnly`, `Path=/`, and `Secure` with a `__Host-` name on https. The flow
//!   cookie is `SameSite=Lax` (the callback is a top-level cross-site navigation, which
//!   `Strict` would break); the key cookie is `Lax` unless configured `Strict`. With a
//!   configured cookie Domain the key cookie carries it and a `__Secure-` name instead.
//! * **Rotation**: values are made with the newest secret and opened with any configured one,
//!   newest first; a value opened with an older secret is reported so the caller re-issues it.
//! * Values longer than 4096 bytes are refused before any cryptography, and at most
//!   three cookies of one name are tried, so a header stuffed with thousands of
//!   them costs a few decryptions, not thousands.
//! * The `Cookie` header is read as bytes, pair by pair: a pair that is not ours is skipped
//!   whatever bytes it holds, so a sibling subdomain's `tracker=café` does not hide our
//!   cookies.

use std::time::Duration;

use aes_gcm::aead::{AeadInPlace as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cookie::{Cookie, CookieJar, Key, SameSite};
use hmac::{Hmac, Mac};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use crate::store::TokenProtection;

mod flow_state;
#[cfg(test)]
mod tests;

pub(crate) use flow_state::{FlowId, FlowState};

/// The longest cookie value this crate will try to open.
pub(crate) const MAX_COOKIE_VALUE: usize = 4096;

/// How many cookies of one name are tried at most.
pub(crate) const MAX_CANDIDATES: usize = 3;

const FLOW_PURPOSE: &str = "flow2.";
const SESSION_PURPOSE: &str = "sid1.";

/// A successfully opened value, and whether it was made with an older secret.
#[derive(Debug)]
pub(crate) struct Opened<T> {
    pub(crate) value: T,
    pub(crate) needs_reissue: bool,
}

/// The `cookie` crate's private-cookie format: base64(nonce ‖ ciphertext ‖ tag).
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The `cookie` crate's signed-cookie format: base64(HMAC-SHA256(value)) ‖ value.
const BASE64_DIGEST_LEN: usize = 44;

type HmacSha256 = Hmac<sha2_for_hmac::Sha256>;

/// The cookie keys (newest first), names and attributes.
#[derive(Clone)]
pub(crate) struct CookieCodec {
    keys: Vec<Key>,
    /// AES-256-GCM with each key's encryption half, expanded once rather than per request.
    ciphers: Vec<Aes256Gcm>,
    /// HMAC-SHA256 keyed with each key's signing half, its key blocks hashed once.
    macs: Vec<HmacSha256>,
    pub(crate) flow_name: String,
    pub(crate) key_name: String,
    secure: bool,
    key_same_site: SameSite,
    key_domain: Option<String>,
}

impl CookieCodec {
    pub(crate) fn new(keys: Vec<Key>, flow_name: String, key_name: String, secure: bool) -> Self {
        assert!(!keys.is_empty(), "at least the current secret");
        let ciphers = keys
            .iter()
            .map(|key| Aes256Gcm::new_from_slice(key.encryption()).expect("a 32-byte key"))
            .collect();
        let macs = keys
            .iter()
            .map(|key| <HmacSha256 as Mac>::new_from_slice(key.signing()).expect("any key length"))
            .collect();
        Self {
            keys,
            ciphers,
            macs,
            flow_name,
            key_name,
            secure,
            key_same_site: SameSite::Lax,
            key_domain: None,
        }
    }

    /// The key cookie's `SameSite` and `Domain` (the flow cookie is always `Lax`, host-only).
    pub(crate) fn with_key_attributes(
        mut self,
        same_site: SameSite,
        domain: Option<String>,
    ) -> Self {
        self.key_same_site = same_site;
        self.key_domain = domain;
        self
    }

    fn newest(&self) -> &Key {
        &self.keys[0]
    }

    /// The values of cookies named `name`, out of every `Cookie` header, at most
    /// [`MAX_CANDIDATES`] of them.
    ///
    /// A browser may send several cookies of one name (set on different paths or by a
    /// subdomain); the first that authenticates wins, the rest are ignored. Pairs are split
    /// as bytes, so another cookie's non-ASCII bytes cannot hide ours.
    fn candidates<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b';'))
            .filter_map(move |pair| {
                let (pair_name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
                (pair_name.trim_ascii() == name.as_bytes()).then(|| value[1..].trim_ascii())
            })
            // Our values are ASCII: a value that is not cannot be ours.
            .filter_map(|value| std::str::from_utf8(value).ok())
            .take(MAX_CANDIDATES)
    }

    /// Whether a cookie named `name` is present at all.
    pub(crate) fn is_present(headers: &HeaderMap, name: &str) -> bool {
        Self::candidates(headers, name).next().is_some()
    }

    /// Opens our cookie `name` with the first key that authenticates it, newest first.
    fn open(
        &self,
        headers: &HeaderMap,
        name: &str,
        unseal: impl Fn(usize, &str) -> Option<String>,
    ) -> Option<Opened<String>> {
        Self::candidates(headers, name)
            .filter(|value| value.len() <= MAX_COOKIE_VALUE)
            .find_map(|value| {
                (0..self.keys.len()).find_map(|index| {
                    Some(Opened {
                        value: unseal(index, value)?,
                        needs_reissue: index > 0,
                    })
                })
            })
    }

    /// Opens a signed value: HMAC verified, purpose checked, payload base64url-decoded.
    ///
    /// The format is the `cookie` crate's signed jar's (which signs our values), verified here
    /// with a MAC keyed at startup, without copying the value.
    fn open_signed(
        &self,
        headers: &HeaderMap,
        name: &str,
        purpose: &str,
    ) -> Option<Opened<String>> {
        self.open(headers, name, |index, value| {
            if !value.is_char_boundary(BASE64_DIGEST_LEN) {
                return None;
            }
            let (digest, signed) = value.split_at(BASE64_DIGEST_LEN);
            let mut decoded = [0u8; BASE64_DIGEST_LEN];
            let length = STANDARD.decode_slice(digest, &mut decoded).ok()?;
            let mut mac = self.macs[index].clone();
            mac.update(signed.as_bytes());
            mac.verify_slice(&decoded[..length]).ok()?;
            let encoded = signed.strip_prefix(purpose)?;
            String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
        })
    }

    /// Opens an encrypted value: authenticated and decrypted with the name as associated data.
    ///
    /// The format is the `cookie` crate's private jar's (which seals our values), opened here
    /// with the ciphers expanded at startup and in place, in the one buffer base64 decoding
    /// needs: the same AES-256-GCM check, without a key schedule and four copies per request.
    fn open_private(&self, headers: &HeaderMap, name: &str) -> Option<Opened<String>> {
        self.open(headers, name, |index, value| {
            let mut data = Zeroizing::new(STANDARD.decode(value).ok()?);
            if data.len() < NONCE_LEN + TAG_LEN {
                return None;
            }
            let (nonce, rest) = data.split_at_mut(NONCE_LEN);
            let (message, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
            self.ciphers[index]
                .decrypt_in_place_detached(
                    Nonce::from_slice(nonce),
                    name.as_bytes(),
                    message,
                    Tag::from_slice(tag),
                )
                .ok()?;
            let length = message.len();
            data.copy_within(NONCE_LEN..NONCE_LEN + length, 0);
            data.truncate(length);
            // The buffer moves into the string; the zeroizing wrapper keeps an empty vector.
            String::from_utf8(std::mem::take(&mut *data)).ok()
        })
    }

    /// Signs `payload`, base64url-encoded first so that any text makes a valid cookie value.
    fn seal_signed(&self, name: &str, purpose: &str, payload: &str) -> String {
        let encoded = URL_SAFE_NO_PAD.encode(payload);
        let mut jar = CookieJar::new();
        jar.signed_mut(self.newest())
            .add(Cookie::new(name.to_owned(), format!("{purpose}{encoded}")));
        jar.get(name).expect("just added").value().to_owned()
    }

    fn seal_private(&self, name: &str, payload: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(self.newest())
            .add(Cookie::new(name.to_owned(), payload.to_owned()));
        jar.get(name).expect("just added").value().to_owned()
    }

    /// A cookie with the attributes every cookie of ours has, and the key cookie's own.
    fn with_attributes(&self, name: &str, value: String) -> Cookie<'static> {
        let is_key = name == self.key_name;
        let mut cookie = Cookie::build((name.to_owned(), value))
            .http_only(true)
            .same_site(if is_key {
                self.key_same_site
            } else {
                SameSite::Lax
            })
            .path("/")
            .secure(self.secure)
            .build();
        if let Some(domain) = self.key_domain.as_ref().filter(|_| is_key) {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    fn build(&self, name: &str, value: String, max_age: Duration) -> HeaderValue {
        let mut cookie = self.with_attributes(name, value);
        cookie.set_max_age(time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX / 1000),
        ));
        header_value(&cookie)
    }

    fn removal(&self, name: &str) -> HeaderValue {
        let mut cookie = self.with_attributes(name, String::new());
        cookie.make_removal();
        header_value(&cookie)
    }

    // --- the flow cookie ---

    /// `Set-Cookie` for a new flow.
    pub(crate) fn flow_cookie(&self, flow: &FlowState, max_age: Duration) -> HeaderValue {
        let payload = Zeroizing::new(format!("{FLOW_PURPOSE}{}", flow.encode().as_str()));
        let value = self.seal_private(&self.flow_name, &payload);
        self.build(&self.flow_name, value, max_age)
    }

    /// Opens the flow cookie: `Ok(None)` when absent, `Err` when present but not authentic.
    pub(crate) fn open_flow(&self, headers: &HeaderMap) -> Result<Option<FlowState>, ()> {
        if !Self::is_present(headers, &self.flow_name) {
            return Ok(None);
        }
        let opened = self.open_private(headers, &self.flow_name).ok_or(())?;
        let payload = Zeroizing::new(opened.value);
        let json = payload.strip_prefix(FLOW_PURPOSE).ok_or(())?;
        FlowState::decode(json).map(Some).ok_or(())
    }

    /// `Set-Cookie` that deletes the flow cookie.
    pub(crate) fn clear_flow(&self) -> HeaderValue {
        self.removal(&self.flow_name)
    }

    // --- the key cookie ---

    /// `Set-Cookie` carrying a store token.
    pub(crate) fn key_cookie(
        &self,
        token: &str,
        protection: TokenProtection,
        max_age: Duration,
    ) -> HeaderValue {
        let value = match protection {
            TokenProtection::Encrypted => self.seal_private(&self.key_name, token),
            TokenProtection::Signed => self.seal_signed(&self.key_name, SESSION_PURPOSE, token),
        };
        self.build(&self.key_name, value, max_age)
    }

    /// Opens the key cookie's token, if present and authentic.
    pub(crate) fn open_key(
        &self,
        headers: &HeaderMap,
        protection: TokenProtection,
    ) -> Option<Opened<String>> {
        match protection {
            TokenProtection::Encrypted => self.open_private(headers, &self.key_name),
            TokenProtection::Signed => self.open_signed(headers, &self.key_name, SESSION_PURPOSE),
        }
    }

    /// `Set-Cookie` that deletes the key cookie.
    pub(crate) fn clear_key(&self) -> HeaderValue {
        self.removal(&self.key_name)
    }
}

/// A `Set-Cookie` value. Names are checked when the layer is built and values are base64 or
/// base64url, so the text is always a valid header value.
fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    HeaderValue::try_from(cookie.to_string())
        .expect("cookie names are checked at startup and cookie values are base64")
}
