//! Entry points for the fuzz targets in `fuzz/`, compiled only under cargo-fuzz's
//! `--cfg fuzzing`: not part of the public API.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use modelgates_oauth_core::flow::FlowState;
use modelgates_oauth_core::{ChallengeMethod, Pkce};

use crate::cookies::{CookieSpec, KeyCookie, cookie_pairs};
use crate::flow::FlowCookie;
use crate::store::TokenProtection;

fn keys() -> Vec<cookie::Key> {
    vec![cookie::Key::from(&[42u8; 64])]
}

fn flow_cookie() -> FlowCookie {
    FlowCookie::new(
        CookieSpec::host_only("f".into(), false),
        &keys(),
        std::time::Duration::from_secs(60),
    )
}

fn key_cookie() -> KeyCookie {
    KeyCookie::new(CookieSpec::host_only("k".into(), false), keys())
}

fn headers(cookie_header: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_bytes(cookie_header).ok()?);
    Some(headers)
}

/// Opens the flow cookie in a `Cookie` header; whether a flow came out.
#[must_use]
pub fn open_flow_cookie(cookie_header: &[u8]) -> bool {
    headers(cookie_header).is_some_and(|h| {
        // The id a callback's path would carry: the first flow cookie's, after `f.`.
        let id = cookie_pairs(&h)
            .find_map(|(name, _)| name.strip_prefix("f."))
            .unwrap_or_default()
            .to_owned();
        matches!(flow_cookie().open(&h, &id), Ok(Some(_)))
    })
}

/// Opens the key cookie both ways; whether a token came out.
#[must_use]
pub fn open_key_cookie(cookie_header: &[u8]) -> bool {
    headers(cookie_header).is_some_and(|h| {
        let key_cookie = key_cookie();
        key_cookie.open(&h, TokenProtection::Encrypted).is_some()
            || key_cookie.open(&h, TokenProtection::Signed).is_some()
    })
}

/// A valid `Cookie` header holding a flow and both kinds of key cookie, to seed corpora.
#[must_use]
pub fn sample_cookie_header() -> String {
    let flow = FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/chat");
    let max_age = std::time::Duration::from_secs(60);
    [
        flow_cookie().set(&flow),
        key_cookie().set(
            "{\"k\":\"sk\",\"t\":1}",
            TokenProtection::Encrypted,
            max_age,
        ),
    ]
    .iter()
    .map(|c| {
        let text = c.to_str().unwrap_or_default();
        text.split(';').next().unwrap_or_default().to_owned()
    })
    .collect::<Vec<_>>()
    .join("; ")
}

/// The callback's `code` for a query string, or the error's code.
///
/// # Errors
///
/// The [`AuthError::code`](crate::AuthError::code) of the rejection.
pub fn callback_code(query: &str) -> Result<String, &'static str> {
    let uri = format!("/callback?{query}");
    let Ok(request) = http::Request::get(uri).body(()) else {
        return Err("not a URI");
    };
    let (parts, ()) = request.into_parts();
    crate::flow::callback_code(&parts).map_err(|e| e.code())
}

/// The sanitised `return_to`.
#[must_use]
pub fn sanitize_return_to(candidate: &str) -> &str {
    crate::flow::sanitize(Some(candidate), "/")
}
