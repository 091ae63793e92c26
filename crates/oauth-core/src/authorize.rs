//! Step 1 of the flow: the `/auth` URL the user's browser is sent to.
//!
//! The URL is the base URL + `/auth` with `callback_url` and, when PKCE is used,
//! `code_challenge` and `code_challenge_method`, each encoded as
//! `application/x-www-form-urlencoded` so that a callback URL carrying its own `?query` or
//! `#fragment` arrives intact. Three modes exist, as ModelGates documents them:
//!
//! | mode | parameters | strength |
//! | --- | --- | --- |
//! | S256 (default) | `code_challenge=BASE64URL(SHA256(verifier))&code_challenge_method=S256` | recommended |
//! | plain | `code_challenge=<verifier>&code_challenge_method=plain` | weaker: the URL reveals the verifier |
//! | none | neither | weakest: an intercepted code alone is enough to get a key |

use std::fmt::Write as _;

use url::Url;
use url::form_urlencoded::byte_serialize;

use crate::flow::FlowState;
use crate::pkce::{CodeChallenge, Pkce};
use crate::{KeyRequest, ModelGatesClient};

impl ModelGatesClient {
    /// The URL to send the user's browser to.
    ///
    /// Pass `None` as `challenge` only for the documented "no challenge" mode.
    ///
    /// ```
    /// use modelgates_oauth_core::{ChallengeMethod, ModelGatesClient};
    /// use modelgates_oauth_core::pkce::CodeVerifier;
    /// use modelgates_oauth_core::Url;
    ///
    /// let client = ModelGatesClient::new().unwrap();
    /// let verifier = CodeVerifier::generate();
    /// let challenge = verifier.challenge(ChallengeMethod::S256);
    /// let callback = Url::parse("https://app.example/callback?from=nav#top").unwrap();
    /// let url = client.authorization_url(&callback, Some(&challenge));
    /// assert!(url.as_str().starts_with(
    ///     "https://modelgates.ai/auth?callback_url=https%3A%2F%2Fapp.example%2Fcallback%3Ffrom%3Dnav%23top&code_challenge="
    /// ));
    /// assert!(url.as_str().ends_with("&code_challenge_method=S256"));
    /// ```
    #[must_use]
    pub fn authorization_url(&self, callback_url: &Url, challenge: Option<&CodeChallenge>) -> Url {
        self.authorization_url_for_key(callback_url, challenge, &KeyRequest::default())
    }

    /// [`Self::authorization_url`], also asking for a key with `key`'s spend limit (`limit`)
    /// and label (`key_label`), which ModelGates shows the user to approve.
    ///
    /// ```
    /// use modelgates_oauth_core::{KeyRequest, ModelGatesClient, Url};
    /// use modelgates_oauth_core::key::SpendLimit;
    ///
    /// let client = ModelGatesClient::new().unwrap();
    /// let callback = Url::parse("https://app.example/callback").unwrap();
    /// let key = KeyRequest::new(Some(SpendLimit::parse("12.50").unwrap()), Some("My app".into()));
    /// let url = client.authorization_url_for_key(&callback, None, &key);
    /// assert!(url.as_str().ends_with("&limit=12.5&key_label=My+app"));
    /// ```
    #[must_use]
    pub fn authorization_url_for_key(
        &self,
        callback_url: &Url,
        challenge: Option<&CodeChallenge>,
        key: &KeyRequest,
    ) -> Url {
        self.auth_url(Some(callback_url), challenge, key)
    }

    /// The `/auth` URLs of sign-ins whose callback is `callback` followed by their flow id
    /// ([`FlowState::callback_url`]), prepared once: the callback's part of the query is
    /// encoded here, so that each sign-in's URL ([`PreparedAuthUrl::for_flow`]) only appends
    /// its flow id, challenge and limit. For a server that starts many sign-ins.
    ///
    /// ```
    /// use modelgates_oauth_core::flow::FlowState;
    /// use modelgates_oauth_core::{ChallengeMethod, KeyRequest, ModelGatesClient, Pkce, Url};
    ///
    /// let client = ModelGatesClient::new().unwrap();
    /// let callback = Url::parse("https://app.example/callback").unwrap();
    /// let prepared = client.prepare_auth_url(&callback);
    /// let flow = FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/");
    /// let challenge = flow.pkce.as_ref().map(Pkce::challenge);
    /// let key = KeyRequest::default();
    /// assert_eq!(
    ///     prepared.for_flow(&flow, &key),
    ///     client
    ///         .authorization_url_for_key(&flow.callback_url(&callback), challenge.as_ref(), &key)
    ///         .as_str()
    /// );
    /// ```
    #[must_use]
    pub fn prepare_auth_url(&self, callback: &Url) -> PreparedAuthUrl {
        // The callback followed by an empty segment: the flow id goes at its end.
        let mut before_id = callback.clone();
        if let Ok(mut segments) = before_id.path_segments_mut() {
            segments.pop_if_empty().push("");
        }
        // Form encoding is byte by byte, so the encoded callback of a flow is this prefix
        // followed by its encoded id, as long as nothing (a query, a fragment) follows the
        // path.
        let prefix = (callback.query().is_none() && callback.fragment().is_none()).then(|| {
            self.auth_url(Some(&before_id), None, &KeyRequest::default())
                .into()
        });
        PreparedAuthUrl {
            prefix,
            client: self.clone(),
            callback: callback.clone(),
        }
    }

    /// The `/auth` URL; without `callback_url`, a headless sign-in's.
    pub(crate) fn auth_url(
        &self,
        callback_url: Option<&Url>,
        challenge: Option<&CodeChallenge>,
        key: &KeyRequest,
    ) -> Url {
        let mut url = self.inner.auth_url.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(callback_url) = callback_url {
                query.append_pair("callback_url", callback_url.as_str());
            }
            if let Some(challenge) = challenge {
                query.append_pair("code_challenge", challenge.as_str());
                query.append_pair("code_challenge_method", challenge.method().as_str());
            }
            if let Some(limit) = key.limit {
                query.append_pair("limit", &limit.to_string());
            }
            if let Some(label) = &key.label {
                query.append_pair("key_label", label);
            }
        }
        url
    }
}

/// The `/auth` URLs of one callback's sign-ins, from
/// [`ModelGatesClient::prepare_auth_url`].
#[derive(Debug, Clone)]
pub struct PreparedAuthUrl {
    /// `…/auth?callback_url=<the callback and a slash, encoded>`: what each URL starts with;
    /// `None` for a callback with a query or a fragment, whose URLs are built in full.
    prefix: Option<String>,
    client: ModelGatesClient,
    callback: Url,
}

impl PreparedAuthUrl {
    /// The `/auth` URL of `flow` asking for `key`: the same, byte for byte, as
    /// [`ModelGatesClient::authorization_url_for_key`] given [`FlowState::callback_url`] and
    /// the flow's challenge.
    #[must_use]
    pub fn for_flow(&self, flow: &FlowState, key: &KeyRequest) -> String {
        let challenge = flow.pkce.as_ref().map(Pkce::challenge);
        let Some(prefix) = &self.prefix else {
            let callback = flow.callback_url(&self.callback);
            return self
                .client
                .authorization_url_for_key(&callback, challenge.as_ref(), key)
                .into();
        };
        let mut url = String::with_capacity(prefix.len() + 160);
        url.push_str(prefix);
        push_encoded(&mut url, flow.id.as_str());
        if let Some(challenge) = &challenge {
            url.push_str("&code_challenge=");
            push_encoded(&mut url, challenge.as_str());
            url.push_str("&code_challenge_method=");
            url.push_str(challenge.method().as_str());
        }
        if let Some(limit) = key.limit {
            // Digits and a dot: nothing to encode.
            let _ = write!(url, "&limit={limit}");
        }
        if let Some(label) = &key.label {
            url.push_str("&key_label=");
            url.extend(byte_serialize(label.as_bytes()));
        }
        url
    }
}

/// The bytes form encoding keeps as they are (`*-._`, digits, letters), as a table.
const KEPT: [bool; 256] = {
    let mut kept = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        kept[byte] = matches!(
            byte as u8,
            b'*' | b'-' | b'.' | b'_' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z'
        );
        byte += 1;
    }
    kept
};

/// `value`, form-encoded, onto `url`. A flow id and a challenge are base64url, which form
/// encoding keeps as it is: checked with a table first (random text makes the encoder's
/// branches mispredict about every other byte), then copied whole.
fn push_encoded(url: &mut String, value: &str) {
    if value.bytes().all(|byte| KEPT[usize::from(byte)]) {
        url.push_str(value);
    } else {
        url.extend(byte_serialize(value.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChallengeMethod;
    use crate::pkce::CodeVerifier;

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn all_three_modes() {
        let client = ModelGatesClient::builder()
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let callback = Url::parse("http://localhost:3000/callback").unwrap();
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();

        let s256 =
            client.authorization_url(&callback, Some(&verifier.challenge(ChallengeMethod::S256)));
        assert_eq!(s256.path(), "/auth");
        assert_eq!(
            query(&s256),
            [
                (
                    "callback_url".into(),
                    "http://localhost:3000/callback".into()
                ),
                (
                    "code_challenge".into(),
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()
                ),
                ("code_challenge_method".into(), "S256".into()),
            ]
        );

        let plain =
            client.authorization_url(&callback, Some(&verifier.challenge(ChallengeMethod::Plain)));
        assert_eq!(query(&plain)[1].1, verifier.expose_secret());
        assert_eq!(query(&plain)[2].1, "plain");

        let none = client.authorization_url(&callback, None);
        assert_eq!(
            query(&none),
            [(
                "callback_url".into(),
                "http://localhost:3000/callback".into()
            )]
        );
    }

    #[test]
    fn callback_query_and_fragment_survive_encoding() {
        let client = ModelGatesClient::new().unwrap();
        let callback = Url::parse("https://app.example/cb?a=1&b=x%20y#frag").unwrap();
        let url = client.authorization_url(&callback, None);
        assert_eq!(
            url.fragment(),
            None,
            "the callback's fragment must not become ours"
        );
        assert_eq!(query(&url)[0].1, "https://app.example/cb?a=1&b=x%20y#frag");
        assert_eq!(
            query(&url).len(),
            1,
            "the callback's & must not split our query"
        );
    }

    proptest::proptest! {
        /// A prepared URL is the full construction's, byte for byte, for any label, limit,
        /// challenge mode and callback (with a query or a fragment too).
        #[test]
        fn a_prepared_url_is_the_full_one(
            label in proptest::option::of(".{0,40}"),
            cents in proptest::option::of(1u64..100_000),
            method in proptest::option::of(proptest::bool::ANY),
            callback in proptest::sample::select(vec![
                "http://localhost:3000/callback",
                "https://app.example/auth/callback/",
                "https://app.example/x%20y/callback",
                "https://app.example/callback?from=nav",
                "https://app.example/callback#top",
                "http://[::1]:8080/",
            ]),
        ) {
            // One client for every case: building one loads the system's certificates.
            static CLIENT: std::sync::LazyLock<ModelGatesClient> = std::sync::LazyLock::new(|| {
                ModelGatesClient::builder()
                    .base_url("http://127.0.0.1:9")
                    .build()
                    .unwrap()
            });
            let client = &*CLIENT;
            let callback = Url::parse(callback).unwrap();
            let pkce = method.map(|s256| {
                Pkce::generate(if s256 { ChallengeMethod::S256 } else { ChallengeMethod::Plain })
            });
            let flow = FlowState::new(pkce, "/");
            let limit = cents.map(|cents| crate::key::SpendLimit::parse(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap());
            let key = KeyRequest::new(limit, label);
            let full = client.authorization_url_for_key(
                &flow.callback_url(&callback),
                flow.pkce.as_ref().map(Pkce::challenge).as_ref(),
                &key,
            );
            proptest::prop_assert_eq!(client.prepare_auth_url(&callback).for_flow(&flow, &key), full.as_str());
        }
    }

    #[test]
    fn the_kept_table_is_form_encodings() {
        for byte in 0..=255u8 {
            let alone = [byte];
            let kept = byte_serialize(&alone).collect::<String>().as_bytes() == alone;
            assert_eq!(KEPT[usize::from(byte)], kept, "byte {byte:#04x}");
        }
    }
}
