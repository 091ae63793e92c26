//! The two cookies: the signed flow cookie and the protected key cookie, and secret rotation.
//!
//! The rules this module applies:
//!
//! * **Flow cookie** (between `/login` and `/callback`): HMAC-SHA256-signed with the `cookie`
//!   crate's signed jar. It holds the PKCE verifier, the method, `return_to` and the issue
//!   time, tagged with a purpose so no other signed value can stand in for it. It is checked
//!   (signature, then age) before any call to ModelGates.
//! * **Key cookie**: the store's token, AES-256-GCM-encrypted and authenticated with the
//!   cookie's name as associated data (the private jar), or HMAC-signed and purpose-tagged for
//!   stores whose token is only an opaque id.
//! * Both are `HttpOnly`, `SameSite=Lax` (the callback is a top-level cross-site navigation,
//!   which `Strict` would break), `Path=/`, and `Secure` with a `__Host-` name on https.
//! * **Rotation**: values are made with the newest secret and opened with any configured one,
//!   newest first; a value opened with an older secret is reported so the caller re-issues it.
//! * Values longer than [`MAX_COOKIE_VALUE`] are refused before any cryptography.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, CookieJar, Key, SameSite};
use http::HeaderMap;
use http::header::COOKIE;
use modelgates_oauth_core::{ChallengeMethod, CodeVerifier};
use serde::{Deserialize, Serialize};

/// The longest cookie value this crate will try to open.
pub(crate) const MAX_COOKIE_VALUE: usize = 4096;

const FLOW_PURPOSE: &str = "flow1.";
const SESSION_PURPOSE: &str = "sid1.";

/// How a key cookie's token is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenProtection {
    /// Encrypted and authenticated: the token itself is secret (it holds the key).
    Encrypted,
    /// Signed: the token is an opaque random id; the browser may read it but not forge it.
    Signed,
}

/// A successfully opened value, and whether it was made with an older secret.
#[derive(Debug)]
pub(crate) struct Opened<T> {
    pub(crate) value: T,
    pub(crate) needs_reissue: bool,
}

/// The cookie keys (newest first), names and attributes.
#[derive(Clone)]
pub(crate) struct CookieCodec {
    keys: Vec<Key>,
    pub(crate) flow_name: String,
    pub(crate) key_name: String,
    secure: bool,
}

impl CookieCodec {
    pub(crate) fn new(keys: Vec<Key>, flow_name: String, key_name: String, secure: bool) -> Self {
        assert!(!keys.is_empty(), "at least the current secret");
        Self {
            keys,
            flow_name,
            key_name,
            secure,
        }
    }

    fn newest(&self) -> &Key {
        &self.keys[0]
    }

    /// The value of our cookie `name` that opens, out of every `Cookie` header.
    ///
    /// A browser may send several cookies of one name (set on different paths or by a
    /// subdomain); the first that authenticates wins, the rest are ignored.
    fn candidates<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(move |cookie| cookie.name() == name)
            .filter_map(|cookie| cookie.value_raw())
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
        unseal: impl Fn(&Key, Cookie<'static>) -> Option<String>,
    ) -> Option<Opened<String>> {
        Self::candidates(headers, name)
            .filter(|value| value.len() <= MAX_COOKIE_VALUE)
            .find_map(|value| {
                self.keys.iter().enumerate().find_map(|(index, key)| {
                    let cookie = Cookie::new(name.to_owned(), value.to_owned());
                    Some(Opened {
                        value: unseal(key, cookie)?,
                        needs_reissue: index > 0,
                    })
                })
            })
    }

    /// Opens a signed value: HMAC verified, purpose checked, payload base64url-decoded.
    fn open_signed(
        &self,
        headers: &HeaderMap,
        name: &str,
        purpose: &str,
    ) -> Option<Opened<String>> {
        self.open(headers, name, |key, cookie| {
            let verified = CookieJar::new().signed(key).verify(cookie)?;
            let encoded = verified.value().strip_prefix(purpose)?;
            String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
        })
    }

    /// Opens an encrypted value: authenticated and decrypted with the name as associated data.
    fn open_private(&self, headers: &HeaderMap, name: &str) -> Option<Opened<String>> {
        self.open(headers, name, |key, cookie| {
            let opened = CookieJar::new().private(key).decrypt(cookie)?;
            Some(opened.value().to_owned())
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

    fn build(&self, name: &str, value: String, max_age: Duration) -> String {
        let max_age =
            time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX / 1000));
        Cookie::build((name.to_owned(), value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .max_age(max_age)
            .build()
            .to_string()
    }

    fn removal(&self, name: &str) -> String {
        let mut cookie = Cookie::build((name.to_owned(), ""))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build();
        cookie.make_removal();
        cookie.to_string()
    }

    // --- the flow cookie ---

    /// `Set-Cookie` for a new flow.
    pub(crate) fn flow_cookie(&self, flow: &FlowState, max_age: Duration) -> String {
        let value = self.seal_signed(&self.flow_name, FLOW_PURPOSE, &flow.encode());
        self.build(&self.flow_name, value, max_age)
    }

    /// Opens the flow cookie: `Ok(None)` when absent, `Err` when present but not authentic.
    pub(crate) fn open_flow(&self, headers: &HeaderMap) -> Result<Option<FlowState>, ()> {
        if !Self::is_present(headers, &self.flow_name) {
            return Ok(None);
        }
        let opened = self
            .open_signed(headers, &self.flow_name, FLOW_PURPOSE)
            .ok_or(())?;
        FlowState::decode(&opened.value).map(Some).ok_or(())
    }

    /// `Set-Cookie` that deletes the flow cookie.
    pub(crate) fn clear_flow(&self) -> String {
        self.removal(&self.flow_name)
    }

    // --- the key cookie ---

    /// `Set-Cookie` carrying a store token.
    pub(crate) fn key_cookie(
        &self,
        token: &str,
        protection: TokenProtection,
        max_age: Duration,
    ) -> String {
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
    pub(crate) fn clear_key(&self) -> String {
        self.removal(&self.key_name)
    }
}

/// What `/login` remembers for `/callback`.
#[derive(Debug)]
pub(crate) struct FlowState {
    pub(crate) verifier: Option<CodeVerifier>,
    pub(crate) method: Option<ChallengeMethod>,
    pub(crate) return_to: String,
    /// Seconds since the Unix epoch.
    pub(crate) issued_at: u64,
}

/// The flow cookie's JSON. Strings are `Cow` because JSON escapes cannot be borrowed.
#[derive(Serialize, Deserialize)]
struct FlowWire<'a> {
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
    fn encode(&self) -> zeroize::Zeroizing<String> {
        let wire = FlowWire {
            verifier: self
                .verifier
                .as_ref()
                .map(|v| Cow::Borrowed(v.expose_secret())),
            method: self.method,
            return_to: Cow::Borrowed(&self.return_to),
            issued_at: self.issued_at,
        };
        zeroize::Zeroizing::new(serde_json::to_string(&wire).expect("plain data serialises"))
    }

    fn decode(json: &str) -> Option<Self> {
        let wire: FlowWire<'_> = serde_json::from_str(json).ok()?;
        let verifier = match &wire.verifier {
            Some(v) => Some(CodeVerifier::parse(v).ok()?),
            None => None,
        };
        if verifier.is_some() != wire.method.is_some() {
            return None;
        }
        Some(Self {
            verifier,
            method: wire.method,
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

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn codec(keys: Vec<Key>) -> CookieCodec {
        CookieCodec::new(
            keys,
            "modelgates_flow".into(),
            "modelgates_key".into(),
            false,
        )
    }

    fn headers(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        headers
    }

    fn flow() -> FlowState {
        FlowState {
            verifier: Some(CodeVerifier::generate()),
            method: Some(ChallengeMethod::S256),
            return_to: "/chat?x=1".into(),
            issued_at: unix_now(),
        }
    }

    #[test]
    fn flow_cookie_round_trips_and_has_the_attributes() {
        let codec = codec(vec![Key::generate()]);
        let original = flow();
        let set_cookie = codec.flow_cookie(&original, Duration::from_secs(600));
        assert!(set_cookie.contains("HttpOnly"));
        assert!(set_cookie.contains("SameSite=Lax"));
        assert!(set_cookie.contains("Path=/"));
        assert!(set_cookie.contains("Max-Age=600"));
        assert!(!set_cookie.contains("Secure"));
        let opened = codec.open_flow(&headers(&set_cookie)).unwrap().unwrap();
        assert_eq!(opened.verifier, original.verifier);
        assert_eq!(opened.return_to, "/chat?x=1");
    }

    #[test]
    fn every_single_byte_change_is_rejected() {
        let codec = codec(vec![Key::generate()]);
        let set_cookie = codec.flow_cookie(&flow(), Duration::from_secs(600));
        let value = set_cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        for i in 0..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            let mut h = HeaderMap::new();
            h.insert(
                COOKIE,
                HeaderValue::from_str(&format!("modelgates_flow={tampered}")).unwrap(),
            );
            assert!(codec.open_flow(&h).is_err(), "byte {i}");
        }
    }

    #[test]
    fn rotation_opens_old_values_and_flags_them() {
        let (old, new) = (Key::generate(), Key::generate());
        let before = codec(vec![old.clone()]);
        let after = codec(vec![new, old]);
        let set_cookie =
            before.key_cookie("token", TokenProtection::Encrypted, Duration::from_secs(60));
        let opened = after
            .open_key(&headers(&set_cookie), TokenProtection::Encrypted)
            .unwrap();
        assert_eq!(opened.value, "token");
        assert!(opened.needs_reissue);
        let fresh = after.key_cookie("token", TokenProtection::Encrypted, Duration::from_secs(60));
        assert!(
            !after
                .open_key(&headers(&fresh), TokenProtection::Encrypted)
                .unwrap()
                .needs_reissue
        );
    }

    #[test]
    fn a_key_cookie_cannot_stand_in_for_a_flow_cookie() {
        let codec = codec(vec![Key::generate()]);
        let signed_session =
            codec.key_cookie("anything", TokenProtection::Signed, Duration::from_secs(60));
        let value = signed_session
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1;
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("modelgates_flow={value}")).unwrap(),
        );
        assert!(codec.open_flow(&h).is_err());
    }

    #[test]
    fn expiry_and_future_dates() {
        let mut state = flow();
        let now = unix_now();
        assert!(!state.is_expired(Duration::from_secs(600), now));
        state.issued_at = now - 601;
        assert!(state.is_expired(Duration::from_secs(600), now));
        state.issued_at = now + 3600;
        assert!(state.is_expired(Duration::from_secs(600), now));
    }

    /// Found by proptest: a flow whose JSON needs escapes (`"`) failed to decode, because the
    /// decoder borrowed strings from the JSON.
    #[test]
    fn regression_flow_with_json_escapes_round_trips() {
        let codec = codec(vec![Key::generate()]);
        let mut state = flow();
        state.return_to = "\"\\\u{1F860}".into();
        let set_cookie = codec.flow_cookie(&state, Duration::from_secs(600));
        assert_eq!(
            codec
                .open_flow(&headers(&set_cookie))
                .unwrap()
                .unwrap()
                .return_to,
            state.return_to
        );
    }

    /// Found by proptest: a signed token holding `;` (or any non-cookie character) broke the
    /// cookie, because signed payloads were not encoded.
    #[test]
    fn regression_signed_tokens_with_cookie_delimiters_round_trip() {
        let codec = codec(vec![Key::generate()]);
        for token in [";", "a; b=c", "\"quoted\"", "é"] {
            let set_cookie =
                codec.key_cookie(token, TokenProtection::Signed, Duration::from_secs(60));
            let opened = codec
                .open_key(&headers(&set_cookie), TokenProtection::Signed)
                .unwrap();
            assert_eq!(opened.value, token);
        }
    }

    #[test]
    fn oversized_values_are_ignored() {
        let codec = codec(vec![Key::generate()]);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("modelgates_key={}", "A".repeat(60_000))).unwrap(),
        );
        assert!(codec.open_key(&h, TokenProtection::Encrypted).is_none());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn codec() -> CookieCodec {
        // One fixed key keeps cases reproducible.
        CookieCodec::new(vec![Key::from(&[7u8; 64])], "f".into(), "k".into(), true)
    }

    fn as_request(name: &str, value: &str) -> Option<HeaderMap> {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{name}={value}")).ok()?,
        );
        Some(headers)
    }

    fn value_of(set_cookie: &str) -> String {
        set_cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned()
    }

    /// `value` with byte `index` replaced by `byte` (which differs from the original).
    fn mutate(value: &str, index: usize, byte: u8) -> Option<String> {
        let mut bytes = value.as_bytes().to_vec();
        let index = index % bytes.len();
        if bytes[index] == byte {
            return None;
        }
        bytes[index] = byte;
        String::from_utf8(bytes).ok()
    }

    proptest! {
        #[test]
        fn flow_cookies_round_trip(return_to in any::<String>(), issued_at in any::<u64>(), pkce in any::<bool>()) {
            let codec = codec();
            let flow = FlowState {
                verifier: pkce.then(CodeVerifier::generate),
                method: pkce.then_some(ChallengeMethod::S256),
                return_to,
                issued_at,
            };
            let value = value_of(&codec.flow_cookie(&flow, Duration::from_secs(600)));
            let opened = codec.open_flow(&as_request("f", &value).unwrap()).unwrap().unwrap();
            prop_assert_eq!(opened.verifier, flow.verifier);
            prop_assert_eq!(opened.method, flow.method);
            prop_assert_eq!(opened.return_to, flow.return_to);
            prop_assert_eq!(opened.issued_at, flow.issued_at);
        }

        #[test]
        fn flow_cookies_reject_every_single_byte_change(index in any::<usize>(), byte in any::<u8>()) {
            let codec = codec();
            let flow = FlowState { verifier: Some(CodeVerifier::generate()), method: Some(ChallengeMethod::S256), return_to: "/x".into(), issued_at: 1 };
            let value = value_of(&codec.flow_cookie(&flow, Duration::from_secs(600)));
            let Some(tampered) = mutate(&value, index, byte) else { return Ok(()) };
            let Some(headers) = as_request("f", &tampered) else { return Ok(()) };
            prop_assert!(codec.open_flow(&headers).is_err(), "{tampered}");
        }

        #[test]
        fn key_cookies_round_trip_and_reject_every_single_byte_change(
            token in "[ -~]{1,300}",
            signed in any::<bool>(),
            index in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let codec = codec();
            let protection = if signed { TokenProtection::Signed } else { TokenProtection::Encrypted };
            let value = value_of(&codec.key_cookie(&token, protection, Duration::from_secs(60)));
            let opened = codec.open_key(&as_request("k", &value).unwrap(), protection).unwrap();
            prop_assert_eq!(&opened.value, &token);
            prop_assert!(!opened.needs_reissue);
            let Some(tampered) = mutate(&value, index, byte) else { return Ok(()) };
            let Some(headers) = as_request("k", &tampered) else { return Ok(()) };
            prop_assert!(codec.open_key(&headers, protection).is_none(), "{tampered}");
        }
    }
}
