//! The layer's cookies: one [`CookieSpec`] per cookie (its attributes as data, resolved at
//! startup), how our cookies are found in a request, and the key cookie's protection. The
//! rules the cookies follow are documented once, on
//! [`config`](crate::config#cookies).
//!
//! Key cookie values are opened here with AES-256-GCM ciphers and HMAC-SHA256 keys prepared at
//! startup, in the formats of the `cookie` crate's private and signed jars (which seal them).
//! The flow cookie's value is sealed by oauth-core's `FlowSealer` (see `flow::state`).

use std::time::Duration;

use aes_gcm::aead::{AeadInPlace as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cookie::{Cookie, CookieJar, Key, SameSite};
use hmac::{Hmac, Mac};
use http::header::{COOKIE, GetAll};
use http::{HeaderMap, HeaderValue};
use zeroize::Zeroize as _;

use crate::store::{SessionToken, TokenProtection};

#[cfg(test)]
mod tests;

/// The longest cookie value this crate will try to open.
pub(crate) const MAX_COOKIE_VALUE: usize = 4096;
/// The most bytes a cookie value is decoded into on the stack: a key cookie of the cookie
/// store (about 300 characters) or a signed session id fits; a longer value (an app's data
/// kept in the cookie) is decoded on the heap.
const INLINE_DECODED: usize = 384;

/// How many cookies of one name are tried at most.
pub(crate) const MAX_CANDIDATES: usize = 3;

const SESSION_PURPOSE: &str = "sid1.";

/// The `name=value` pairs of the request's `Cookie` headers, as bytes, trimmed. Pairs are
/// split as bytes, so another cookie's non-ASCII bytes cannot hide ours; nothing is checked
/// or copied until a name matches, and the separators are found with `memchr`, so a long
/// cookie costs little to step over.
fn raw_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    pairs_in(headers.get_all(COOKIE))
}

/// The `name=value` pairs of these `Cookie` header values, as [`raw_pairs`] splits them.
fn pairs_in(cookies: GetAll<'_, HeaderValue>) -> impl Iterator<Item = (&[u8], &[u8])> {
    cookies
        .into_iter()
        .flat_map(|value| {
            let mut rest = Some(value.as_bytes());
            std::iter::from_fn(move || {
                let pairs = rest?;
                let (pair, after) = match memchr::memchr(b';', pairs) {
                    Some(end) => (&pairs[..end], Some(&pairs[end + 1..])),
                    None => (pairs, None),
                };
                rest = after;
                Some(pair)
            })
        })
        .filter_map(|pair| {
            let (name, value) = pair.split_at(memchr::memchr(b'=', pair)?);
            Some((name.trim_ascii(), value[1..].trim_ascii()))
        })
}

/// The values of the cookies named `name` in these `Cookie` header values, as bytes, at most
/// [`MAX_CANDIDATES`] of them (the key cookie's values go to base64 as they are). A browser
/// may send several cookies of one name (set on different paths or by a subdomain); the first
/// that authenticates wins, the rest are ignored.
fn raw_values_named<'h>(
    cookies: GetAll<'h, HeaderValue>,
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> {
    pairs_in(cookies)
        .filter(move |(pair_name, _)| *pair_name == name.as_bytes())
        .map(|(_, value)| value)
        .take(MAX_CANDIDATES)
}

/// The `name=value` pairs of the request's `Cookie` headers whose name and value are both
/// UTF-8 (ours are ASCII), trimmed.
pub(crate) fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    raw_pairs(headers).filter_map(|(name, value)| {
        Some((
            std::str::from_utf8(name).ok()?,
            std::str::from_utf8(value).ok()?,
        ))
    })
}

/// The values of the cookies named `name` in `headers` that are UTF-8, at most
/// [`MAX_CANDIDATES`] of them. Only a value whose name matches is checked.
pub(crate) fn values_named<'h>(
    headers: &'h HeaderMap,
    name: &'h str,
) -> impl Iterator<Item = &'h str> {
    raw_pairs(headers)
        .filter(move |(pair_name, _)| *pair_name == name.as_bytes())
        .filter_map(|(_, value)| std::str::from_utf8(value).ok())
        .take(MAX_CANDIDATES)
}

/// Why a request's cookie was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unopened {
    /// The request has no such cookie.
    Absent,
    /// It has one, but none of its values authenticates.
    Refused,
}

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

/// One cookie's attributes, resolved once at startup. Every cookie of ours is `HttpOnly`
/// with `Path=/`.
#[derive(Debug, Clone)]
pub(crate) struct CookieSpec {
    pub(crate) name: String,
    pub(crate) same_site: SameSite,
    /// `None`: host-only.
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
}

impl CookieSpec {
    /// A host-only `SameSite=Lax` cookie.
    pub(crate) fn host_only(name: String, secure: bool) -> Self {
        Self {
            name,
            same_site: SameSite::Lax,
            domain: None,
            secure,
        }
    }

    /// This spec under another name (a flow's own cookie).
    pub(crate) fn renamed(&self, name: String) -> Self {
        Self {
            name,
            ..self.clone()
        }
    }

    /// Whether the request carries this cookie at all.
    pub(crate) fn is_present(&self, headers: &HeaderMap) -> bool {
        values_named(headers, &self.name).next().is_some()
    }

    fn build(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.name.clone(), value))
            .http_only(true)
            .same_site(self.same_site)
            .path("/")
            .secure(self.secure)
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    /// `Set-Cookie` carrying `value` for `max_age`.
    /// What follows `name=value` in this cookie's `Set-Cookie` with `max_age`, as the `cookie`
    /// crate renders it.
    pub(crate) fn attributes(&self, max_age: Duration) -> String {
        let header = self.set(String::new(), max_age);
        let text = header.to_str().expect("a cookie header is ASCII");
        text.strip_prefix(&format!("{}=", self.name))
            .expect("a cookie header starts with its name")
            .to_owned()
    }

    pub(crate) fn set(&self, value: String, max_age: Duration) -> HeaderValue {
        let mut cookie = self.build(value);
        cookie.set_max_age(time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX / 1000),
        ));
        header_value(&cookie)
    }

    /// `Set-Cookie` that deletes the cookie.
    pub(crate) fn removal(&self) -> HeaderValue {
        let mut cookie = self.build(String::new());
        cookie.make_removal();
        header_value(&cookie)
    }
}

/// The key cookie: its spec, and the cookie keys (newest first) that protect its token.
#[derive(Clone)]
pub(crate) struct KeyCookie {
    pub(crate) spec: CookieSpec,
    keys: Vec<Key>,
    /// AES-256-GCM with each key's encryption half, expanded once rather than per request.
    ciphers: Vec<Aes256Gcm>,
    /// HMAC-SHA256 keyed with each key's signing half, its key blocks hashed once.
    macs: Vec<HmacSha256>,
}

impl KeyCookie {
    pub(crate) fn new(spec: CookieSpec, keys: Vec<Key>) -> Self {
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
            spec,
            keys,
            ciphers,
            macs,
        }
    }

    /// `Set-Cookie` carrying a store token.
    pub(crate) fn set(
        &self,
        token: &str,
        protection: TokenProtection,
        max_age: Duration,
    ) -> HeaderValue {
        let value = match protection {
            TokenProtection::Encrypted => self.seal_private(token),
            TokenProtection::Signed => self.seal_signed(token),
        };
        self.spec.set(value, max_age)
    }

    /// Opens the key cookie's token, if present and authentic.
    pub(crate) fn open(
        &self,
        headers: &HeaderMap,
        protection: TokenProtection,
    ) -> Option<Opened<SessionToken>> {
        self.read(headers, protection).ok()
    }

    /// As [`Self::open`], telling an absent cookie from a refused one, in one scan of the
    /// headers.
    #[inline]
    pub(crate) fn read(
        &self,
        headers: &HeaderMap,
        protection: TokenProtection,
    ) -> Result<Opened<SessionToken>, Unopened> {
        let cookies = headers.get_all(COOKIE);
        if cookies.iter().next().is_none() {
            // Most signed-out requests: no `Cookie` header, nothing more to look at (and no
            // call into the cryptography's large frame).
            return Err(Unopened::Absent);
        }
        self.read_cookies(cookies, protection)
    }

    /// [`Self::read`] once the request has `Cookie` headers.
    #[inline(never)]
    fn read_cookies(
        &self,
        cookies: GetAll<'_, HeaderValue>,
        protection: TokenProtection,
    ) -> Result<Opened<SessionToken>, Unopened> {
        match protection {
            TokenProtection::Encrypted => self.open_private(cookies),
            TokenProtection::Signed => self.open_signed(cookies),
        }
    }

    /// `Set-Cookie` that deletes the key cookie.
    pub(crate) fn clear(&self) -> HeaderValue {
        self.spec.removal()
    }

    /// Opens our cookie with the first key that authenticates it, newest first.
    fn open_with(
        &self,
        cookies: GetAll<'_, HeaderValue>,
        unseal: impl Fn(usize, &[u8]) -> Option<SessionToken>,
    ) -> Result<Opened<SessionToken>, Unopened> {
        let mut present = false;
        let opened = raw_values_named(cookies, &self.spec.name)
            .inspect(|_| present = true)
            .filter(|value| value.len() <= MAX_COOKIE_VALUE)
            .find_map(|value| {
                (0..self.keys.len()).find_map(|index| {
                    Some(Opened {
                        value: unseal(index, value)?,
                        needs_reissue: index > 0,
                    })
                })
            });
        match opened {
            Some(opened) => Ok(opened),
            None if present => Err(Unopened::Refused),
            None => Err(Unopened::Absent),
        }
    }

    fn open_signed(
        &self,
        cookies: GetAll<'_, HeaderValue>,
    ) -> Result<Opened<SessionToken>, Unopened> {
        self.open_with(cookies, |index, value| {
            let (digest, signed) = value.split_at_checked(BASE64_DIGEST_LEN)?;
            let mut decoded = [0u8; BASE64_DIGEST_LEN];
            let length = STANDARD.decode_slice(digest, &mut decoded).ok()?;
            let mut mac = self.macs[index].clone();
            mac.update(signed);
            mac.verify_slice(&decoded[..length]).ok()?;
            let encoded = signed.strip_prefix(SESSION_PURPOSE.as_bytes())?;
            with_decoded(&base64_simd::URL_SAFE_NO_PAD, encoded, token_of)
        })
    }

    /// Opens an encrypted value: authenticated and decrypted with the name as associated data.
    ///
    /// The format is the `cookie` crate's private jar's (which seals our values), opened here
    /// with the ciphers expanded at startup and in place, in a stack buffer: the same AES-256-GCM
    /// check, without a key schedule and four copies per request, and one heap allocation, the
    /// token's own. Only the decrypted part ever holds plaintext, and it is wiped.
    fn open_private(
        &self,
        cookies: GetAll<'_, HeaderValue>,
    ) -> Result<Opened<SessionToken>, Unopened> {
        let name = self.spec.name.as_bytes();
        self.open_with(cookies, |index, value| {
            // Nonce, ciphertext and tag: nothing secret until decrypted in place.
            with_decoded(&base64_simd::STANDARD, value, |data| {
                if data.len() < NONCE_LEN + TAG_LEN {
                    return None;
                }
                let (nonce, rest) = data.split_at_mut(NONCE_LEN);
                let (message, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
                self.ciphers[index]
                    .decrypt_in_place_detached(
                        Nonce::from_slice(nonce),
                        name,
                        message,
                        Tag::from_slice(tag),
                    )
                    .ok()?;
                token_of(message)
            })
        })
    }

    /// Signs `payload`, base64url-encoded first so that any text makes a valid cookie value.
    fn seal_signed(&self, payload: &str) -> String {
        let encoded = URL_SAFE_NO_PAD.encode(payload);
        let name = &self.spec.name;
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.keys[0]).add(Cookie::new(
            name.clone(),
            format!("{SESSION_PURPOSE}{encoded}"),
        ));
        jar.get(name).expect("just added").value().to_owned()
    }

    fn seal_private(&self, payload: &str) -> String {
        let name = &self.spec.name;
        let mut jar = CookieJar::new();
        jar.private_mut(&self.keys[0])
            .add(Cookie::new(name.clone(), payload.to_owned()));
        jar.get(name).expect("just added").value().to_owned()
    }
}

/// Decodes base64 `value` and hands the bytes to `open`: on the stack when they fit
/// [`INLINE_DECODED`] (no allocation, and little to clear), on the heap otherwise (wiped when
/// done, as `open` may leave plaintext there).
///
/// `base64-simd` decodes with the CPU's vector instructions (a sixth of the instructions of
/// the `base64` crate's engine for a key cookie) by the same strict rules: the engine's
/// padding, no whitespace, canonical trailing bits (a test holds the two to agree).
fn with_decoded<T>(
    engine: &base64_simd::Base64,
    value: &[u8],
    open: impl FnOnce(&mut [u8]) -> Option<T>,
) -> Option<T> {
    if engine.estimated_decoded_length(value.len()) <= INLINE_DECODED {
        let mut inline = [0u8; INLINE_DECODED];
        let decoded = engine
            .decode(value, base64_simd::Out::from_slice(&mut inline))
            .ok()?;
        open(decoded)
    } else {
        let mut heap = zeroize::Zeroizing::new(engine.decode_to_vec(value).ok()?);
        open(&mut heap)
    }
}

/// The token in an opened cookie's bytes, in an allocation of its exact size (so that no
/// reallocation leaves an unwiped copy behind); `None` unless UTF-8. The bytes are wiped
/// either way: only they, not the whole buffer they sit in, ever held the plaintext.
fn token_of(bytes: &mut [u8]) -> Option<SessionToken> {
    let token = std::str::from_utf8(bytes)
        .ok()
        .map(|text| SessionToken::from_secret(secrecy::SecretString::from(text)));
    bytes.zeroize();
    token
}

/// A `Set-Cookie` value. Names are checked when the layer is built and values are base64 or
/// base64url, so the text is always a valid header value.
fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    HeaderValue::try_from(cookie.to_string())
        .expect("cookie names are checked at startup and cookie values are base64")
}
