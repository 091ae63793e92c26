//! The cookie codecs: round trips, attributes, tampering, rotation, oversized values.

use modelgates_oauth_core::flow::{FlowError, FlowState};
use modelgates_oauth_core::{ChallengeMethod, Pkce};

use super::*;
use crate::flow::FlowCookie;
use modelgates_oauth_core::__private::unix_now;

/// The flow cookies' lifetime in these tests.
const FLOW_MAX_AGE: Duration = Duration::from_secs(600);

/// Both cookies, as the layer resolves them.
struct CookieCodec {
    flow: FlowCookie,
    key: KeyCookie,
}

impl CookieCodec {
    fn new(keys: Vec<Key>, flow_name: String, key_name: String, secure: bool) -> Self {
        Self {
            flow: FlowCookie::new(
                CookieSpec::host_only(flow_name, secure),
                &keys,
                FLOW_MAX_AGE,
            ),
            key: KeyCookie::new(CookieSpec::host_only(key_name, secure), keys),
        }
    }

    fn flow_cookie(&self, flow: &FlowState) -> HeaderValue {
        self.flow.set(flow)
    }

    /// The flow of the request's flow cookie, whose name (`<name>.<flow id>`) gives the id the
    /// callback's path would carry.
    fn open_flow(&self, headers: &HeaderMap) -> Result<Option<FlowState>, FlowError> {
        let prefix = format!("{}.", self.flow.spec.name);
        let id = cookie_pairs(headers)
            .find_map(|(name, _)| name.strip_prefix(&prefix))
            .unwrap_or_default()
            .to_owned();
        self.flow.open(headers, &id)
    }

    fn key_cookie(
        &self,
        token: &str,
        protection: TokenProtection,
        max_age: Duration,
    ) -> HeaderValue {
        self.key.set(token, protection, max_age)
    }

    fn open_key(&self, headers: &HeaderMap, protection: TokenProtection) -> Option<Opened<String>> {
        // The token's text, so the tests compare strings.
        self.key.open(headers, protection).map(|opened| Opened {
            value: opened.value.expose_secret().to_owned(),
            needs_reissue: opened.needs_reissue,
        })
    }
}

fn codec(keys: Vec<Key>) -> CookieCodec {
    CookieCodec::new(
        keys,
        "modelgates_flow".into(),
        "modelgates_key".into(),
        false,
    )
}

fn text(set_cookie: HeaderValue) -> String {
    set_cookie.to_str().unwrap().to_owned()
}

/// The name of a `Set-Cookie`.
fn name_of(set_cookie: &str) -> String {
    set_cookie.split_once('=').unwrap().0.to_owned()
}

/// The value of a `Set-Cookie`.
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
    FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/chat?x=1")
}

#[test]
fn flow_cookie_round_trips_and_has_the_attributes() {
    let codec = codec(vec![Key::generate()]);
    let original = flow();
    let set_cookie = text(codec.flow_cookie(&original));
    assert!(set_cookie.contains("HttpOnly"));
    assert!(set_cookie.contains("SameSite=Lax"));
    assert!(set_cookie.contains("Path=/"));
    assert!(set_cookie.contains("Max-Age=600"));
    assert!(!set_cookie.contains("Secure"));
    let opened = codec.open_flow(&headers(&set_cookie)).unwrap().unwrap();
    assert_eq!(opened.pkce, original.pkce);
    assert_eq!(opened.return_to, "/chat?x=1");
}

#[test]
fn every_single_byte_change_is_rejected() {
    let codec = codec(vec![Key::generate()]);
    let set_cookie = text(codec.flow_cookie(&flow()));
    let (name, value) = (name_of(&set_cookie), value_of(&set_cookie));
    for i in 0..value.len() {
        let mut bytes = value.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{name}={tampered}")).unwrap(),
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
        text(before.key_cookie("token", TokenProtection::Encrypted, Duration::from_secs(60)));
    let opened = after
        .open_key(&headers(&set_cookie), TokenProtection::Encrypted)
        .unwrap();
    assert_eq!(opened.value, "token");
    assert!(opened.needs_reissue);
    let fresh =
        text(after.key_cookie("token", TokenProtection::Encrypted, Duration::from_secs(60)));
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
        text(codec.key_cookie("anything", TokenProtection::Signed, Duration::from_secs(60)));
    let value = value_of(&signed_session);
    let flow_name = name_of(&text(codec.flow_cookie(&flow())));
    let mut h = HeaderMap::new();
    h.insert(
        COOKIE,
        HeaderValue::from_str(&format!("{flow_name}={value}")).unwrap(),
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
    let set_cookie = text(codec.flow_cookie(&state));
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
            text(codec.key_cookie(token, TokenProtection::Signed, Duration::from_secs(60)));
        let opened = codec
            .open_key(&headers(&set_cookie), TokenProtection::Signed)
            .unwrap();
        assert_eq!(opened.value, token);
    }
}

#[test]
fn the_flow_cookie_is_encrypted() {
    let codec = codec(vec![Key::generate()]);
    let state = flow();
    let set_cookie = text(codec.flow_cookie(&state));
    let value = value_of(&set_cookie);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    let verifier = state.pkce.as_ref().unwrap().verifier().expose_secret();
    for secret in [
        verifier.as_bytes(),
        state.id.as_str().as_bytes(),
        b"/chat?x=1",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the cookie must not carry its contents readably"
        );
    }
}

#[test]
fn a_foreign_non_ascii_cookie_does_not_hide_ours() {
    let codec = codec(vec![Key::generate()]);
    let set_cookie =
        text(codec.key_cookie("token", TokenProtection::Encrypted, Duration::from_secs(60)));
    let pair = set_cookie.split(';').next().unwrap();
    let mut h = HeaderMap::new();
    let header = [
        b"tracker=caf\xc3\xa9; ".as_slice(),
        pair.as_bytes(),
        b"; other=\xff",
    ]
    .concat();
    h.insert(COOKIE, HeaderValue::from_bytes(&header).unwrap());
    assert_eq!(
        codec
            .open_key(&h, TokenProtection::Encrypted)
            .unwrap()
            .value,
        "token"
    );
}

#[test]
fn at_most_a_few_cookies_of_one_name_are_tried() {
    let codec = codec(vec![Key::generate(), Key::generate()]);
    let header = vec!["modelgates_key=AAAA"; 10_000].join("; ");
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_str(&header).unwrap());
    let tries = std::cell::Cell::new(0);
    let opened = codec
        .key
        .open_with(h.get_all(http::header::COOKIE), |_, _| {
            tries.set(tries.get() + 1);
            None
        });
    assert_eq!(opened.unwrap_err(), Unopened::Refused);
    assert_eq!(
        tries.get(),
        MAX_CANDIDATES * 2,
        "3 candidates, each with both keys"
    );
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

/// Key cookies are opened in place with the ciphers expanded at startup: they must open
/// exactly what the `cookie` crate's private jar seals, under that name only, and refuse
/// short or malformed values without panicking.
#[test]
fn key_cookies_open_what_the_private_jar_seals_and_nothing_else() {
    let key = Key::generate();
    let codec = codec(vec![key.clone()]);
    let mut jar = CookieJar::new();
    jar.private_mut(&key)
        .add(Cookie::new("modelgates_key", "the token ✓"));
    let sealed = jar.get("modelgates_key").unwrap().value().to_owned();
    let opened = codec
        .open_key(
            &headers(&format!("modelgates_key={sealed}")),
            TokenProtection::Encrypted,
        )
        .unwrap();
    assert_eq!(opened.value, "the token ✓");
    assert!(!opened.needs_reissue);

    let mut other = CookieJar::new();
    other
        .private_mut(&key)
        .add(Cookie::new("another_name", "the token"));
    let moved = other.get("another_name").unwrap().value().to_owned();
    let short = STANDARD.encode([0u8; NONCE_LEN + TAG_LEN - 1]);
    let empty_message = STANDARD.encode([0u8; NONCE_LEN + TAG_LEN]);
    for value in [
        moved.as_str(),
        &short,
        &empty_message,
        "",
        "not base64!",
        "====",
    ] {
        let header = headers(&format!("modelgates_key={value}"));
        assert!(
            codec
                .open_key(&header, TokenProtection::Encrypted)
                .is_none(),
            "{value:?} must not open"
        );
    }
}

/// Signed key cookies are verified with a MAC keyed at startup: they must open exactly what
/// the `cookie` crate's signed jar signs (with our purpose tag), and refuse anything else
/// without panicking, a multi-byte character at the digest's end included.
#[test]
fn signed_key_cookies_open_what_the_signed_jar_signs_and_nothing_else() {
    let key = Key::generate();
    let codec = codec(vec![key.clone()]);
    let sign = |value: &str| {
        let mut jar = CookieJar::new();
        jar.signed_mut(&key)
            .add(Cookie::new("modelgates_key", value.to_owned()));
        jar.get("modelgates_key").unwrap().value().to_owned()
    };
    let token = URL_SAFE_NO_PAD.encode("opaque id");
    let signed = sign(&format!("{SESSION_PURPOSE}{token}"));
    let opened = codec
        .open_key(
            &headers(&format!("modelgates_key={signed}")),
            TokenProtection::Signed,
        )
        .unwrap();
    assert_eq!(opened.value, "opaque id");

    let without_purpose = sign(&token);
    let mut flipped = signed.clone().into_bytes();
    flipped[3] ^= 1;
    let flipped = String::from_utf8(flipped).unwrap();
    let multibyte = format!("{}é{}", &signed[..43], &signed[44..]);
    for value in [
        without_purpose.as_str(),
        &flipped,
        &signed[..43],
        &multibyte,
        "",
    ] {
        let header = headers(&format!("modelgates_key={value}"));
        assert!(
            codec.open_key(&header, TokenProtection::Signed).is_none(),
            "{value:?} must not open"
        );
    }
}

mod properties {
    use super::*;
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
            let mut flow = FlowState::new(pkce.then(|| Pkce::generate(ChallengeMethod::S256)), return_to);
            flow.issued_at = issued_at;
            let set_cookie = text(codec.flow_cookie(&flow));
            let request = as_request(&name_of(&set_cookie), &value_of(&set_cookie)).unwrap();
            let opened = codec.open_flow(&request).unwrap().unwrap();
            prop_assert_eq!(opened.pkce, flow.pkce);
            prop_assert_eq!(opened.id, flow.id);
            prop_assert_eq!(opened.return_to, flow.return_to);
            prop_assert_eq!(opened.issued_at, flow.issued_at);
        }

        #[test]
        fn flow_cookies_reject_every_single_byte_change(index in any::<usize>(), byte in any::<u8>()) {
            let codec = codec();
            let mut flow = FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/x");
            flow.issued_at = 1;
            let set_cookie = text(codec.flow_cookie(&flow));
            let Some(tampered) = mutate(&value_of(&set_cookie), index, byte) else { return Ok(()) };
            let Some(headers) = as_request(&name_of(&set_cookie), &tampered) else { return Ok(()) };
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
            let value = value_of(&text(codec.key_cookie(&token, protection, Duration::from_secs(60))));
            let opened = codec.open_key(&as_request("k", &value).unwrap(), protection).unwrap();
            prop_assert_eq!(&opened.value, &token);
            prop_assert!(!opened.needs_reissue);
            let Some(tampered) = mutate(&value, index, byte) else { return Ok(()) };
            let Some(headers) = as_request("k", &tampered) else { return Ok(()) };
            prop_assert!(codec.open_key(&headers, protection).is_none(), "{tampered}");
        }

        /// The key cookie's SIMD base64 accepts exactly what the `base64` crate's engines
        /// accept, and decodes it to the same bytes: on encodings of any bytes (on the stack
        /// and on the heap), with one byte changed (non-canonical trailing bits, misplaced
        /// padding, the other alphabet's characters), and on made-up text.
        #[test]
        fn simd_base64_agrees_with_the_base64_crate(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            index in any::<usize>(),
            byte in proptest::sample::select(b"AB+/-_= \n\x80".to_vec()),
            made_up in "[A-Za-z0-9+/=_ -]{0,12}",
        ) {
            use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
            for (simd, engine) in [
                (&base64_simd::STANDARD, &STANDARD),
                (&base64_simd::URL_SAFE_NO_PAD, &URL_SAFE_NO_PAD),
            ] {
                let encoded = engine.encode(&data).into_bytes();
                let mut inputs = vec![encoded.clone(), made_up.clone().into_bytes()];
                if !encoded.is_empty() {
                    for at in [index % encoded.len(), encoded.len() - 1] {
                        let mut changed = encoded.clone();
                        changed[at] = byte;
                        inputs.push(changed);
                    }
                }
                for input in inputs {
                    let ours = with_decoded(simd, &input, |bytes| Some(bytes.to_vec()));
                    let theirs = engine.decode(&input).ok();
                    prop_assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(&input));
                }
            }
        }
    }
}

/// Short values are decoded on the stack, long ones (a session with the app's data, up to the
/// browser's cookie size) on the heap: both open, in both protections, at every length around
/// the boundary.
#[test]
fn short_and_long_tokens_open_alike() {
    let codec = codec(vec![Key::generate()]);
    for length in [1, 200, 250, 270, 280, 290, 300, 400, 1_500, 2_900] {
        let token = "t".repeat(length);
        for protection in [TokenProtection::Encrypted, TokenProtection::Signed] {
            let set_cookie = text(codec.key_cookie(&token, protection, Duration::from_secs(60)));
            let opened = codec
                .open_key(&headers(&set_cookie), protection)
                .unwrap_or_else(|| panic!("{length} {protection:?}"));
            assert_eq!(opened.value, token, "{length} {protection:?}");
        }
    }
}

#[test]
fn an_absent_key_cookie_is_told_from_a_refused_one() {
    let codec = codec(vec![Key::generate()]);
    let read = |header: &[u8]| {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_bytes(header).unwrap());
        codec
            .key
            .read(&h, TokenProtection::Encrypted)
            .map(|opened| opened.value.expose_secret().to_owned())
    };
    assert_eq!(read(b"other=1; theme=dark"), Err(Unopened::Absent));
    // A name that only starts like ours, and another cookie's non-UTF-8 value.
    assert_eq!(
        read(b"modelgates_keyx=1; a=\xff\xfe"),
        Err(Unopened::Absent)
    );
    assert_eq!(read(b"modelgates_key=AAAA"), Err(Unopened::Refused));
    // Not base64, however it is spelt: refused, so the response deletes it.
    assert_eq!(read(b"modelgates_key=\xff"), Err(Unopened::Refused));
    let sealed = codec
        .key
        .set("token", TokenProtection::Encrypted, Duration::from_secs(60));
    let pair = sealed
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        read(format!("a=é; {pair}").as_bytes()),
        Ok("token".to_owned())
    );
}
