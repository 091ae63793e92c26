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

use url::Url;

use crate::pkce::CodeChallenge;
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

    /// The `/auth` URL; without `callback_url`, a headless sign-in's.
    pub(crate) fn auth_url(
        &self,
        callback_url: Option<&Url>,
        challenge: Option<&CodeChallenge>,
        key: &KeyRequest,
    ) -> Url {
        // The query is built in a buffer sized once (the URL's own string would grow, and be
        // copied, pair by pair), then set as a whole.
        let mut query = url::form_urlencoded::Serializer::new(String::with_capacity(512));
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
        let mut url = self.inner.auth_url.clone();
        url.set_query(Some(&query.finish()));
        url
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
}
