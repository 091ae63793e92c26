//! [`ModelGatesKeyRejection`]: why the extractor refused, and what it answers.

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

use super::login_url;
use crate::linked::Mode;
use crate::response::{Problem, see_other};

/// What kind of refusal a [`ModelGatesKeyRejection`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The request is not signed in. Browsers (navigations and form posts) are sent to the
    /// login route with a 303; other clients get a 401.
    SignedOut,
    /// `ModelGatesAuth` is not in front of this handler: a 500 naming the layer, since that is
    /// a bug in the app, not in the request.
    MissingLayer,
    /// The request carries a key cookie, but the key store failed to answer: the user may
    /// well be signed in, so this is a 503 with `Retry-After` (never "signed out", never a
    /// redirect to sign in).
    StoreUnavailable,
}

/// Why [`ModelGatesKey`](crate::ModelGatesKey) could not be extracted, and the answer it makes:
/// by [`kind`](Self::kind), a redirect to sign in, a 401, a 500 or a 503, as a page or JSON by
/// the crate's one negotiation rule (decided when the rejection was made, from the request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", message(*kind, *mode))]
pub struct ModelGatesKeyRejection {
    kind: RejectionKind,
    /// Whose words: a sign-in, or a linked account's connection.
    mode: Mode,
    /// Where a browser is sent to sign in, coming back by the extractor's rules.
    login: Option<String>,
    /// The login route as this request reaches it (nesting prefix included).
    login_path: Option<String>,
    /// The request prefers HTML: the answer is a page.
    wants_page: bool,
}

/// The message of each kind.
fn message(kind: RejectionKind, mode: Mode) -> &'static str {
    match kind {
        RejectionKind::SignedOut if mode == Mode::Linked => {
            "ModelGates is not connected to your account"
        }
        RejectionKind::SignedOut => "not signed in with ModelGates",
        RejectionKind::MissingLayer => {
            "ModelGatesKey was extracted but the ModelGatesAuth layer did not see this request: \
             add `.layer(ModelGatesAuth::new(config))` to the router that serves this route"
        }
        RejectionKind::StoreUnavailable => {
            "Your session cannot be checked right now: this app's key store is not answering. \
             Please try again in a moment."
        }
    }
}

impl ModelGatesKeyRejection {
    /// A signed-out request: `login` is where a browser goes (`None` for other clients),
    /// `login_path` the login route as the request reaches it.
    pub(crate) fn signed_out(login: Option<String>, login_path: String, mode: Mode) -> Self {
        Self {
            kind: RejectionKind::SignedOut,
            mode,
            wants_page: login.is_some(),
            login,
            login_path: Some(login_path),
        }
    }

    /// A request the layer did not see, answered as a page when `wants_page`.
    pub(crate) fn missing_layer(wants_page: bool) -> Self {
        Self::without_login(RejectionKind::MissingLayer, wants_page)
    }

    /// A request whose key the store failed to load, answered as a page when `wants_page`.
    pub(crate) fn store_unavailable(wants_page: bool) -> Self {
        Self::without_login(RejectionKind::StoreUnavailable, wants_page)
    }

    fn without_login(kind: RejectionKind, wants_page: bool) -> Self {
        Self {
            kind,
            mode: Mode::Login,
            login: None,
            login_path: None,
            wants_page,
        }
    }

    /// What kind of refusal this is.
    #[must_use]
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The login URL coming back to `return_to` (a local path; anything else is dropped), for
    /// a page that offers a sign-in link instead of redirecting. `None` unless signed out.
    ///
    /// ```
    /// use axum::response::{Html, IntoResponse, Response};
    /// use modelgates_axum::ModelGatesKey;
    /// use modelgates_axum::extract::ModelGatesKeyRejection;
    ///
    /// async fn dashboard(key: Result<ModelGatesKey, ModelGatesKeyRejection>) -> Response {
    ///     match key {
    ///         Ok(_) => Html("<h1>Your dashboard</h1>").into_response(),
    ///         Err(rejection) => match rejection.login_url("/dashboard") {
    ///             Some(login) => Html(format!("<a href=\"{login}\">Sign in</a>")).into_response(),
    ///             None => rejection.into_response(),
    ///         },
    ///     }
    /// }
    /// ```
    #[must_use]
    pub fn login_url(&self, return_to: &str) -> Option<String> {
        let login_path = self.login_path.as_deref()?;
        Some(login_url(login_path, return_to))
    }

    /// The status this rejection answers with: 303 to the login route for a browser, 401 for
    /// other signed-out requests, 500 when the layer is missing, 503 when the key store
    /// failed.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::SignedOut if self.login.is_some() => StatusCode::SEE_OTHER,
            RejectionKind::SignedOut => StatusCode::UNAUTHORIZED,
            RejectionKind::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            RejectionKind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable machine-readable code, as sent in the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self.kind {
            RejectionKind::SignedOut if self.mode == Mode::Linked => "not_connected",
            RejectionKind::SignedOut => "not_signed_in",
            RejectionKind::MissingLayer => "missing_layer",
            RejectionKind::StoreUnavailable => "store_unavailable",
        }
    }

    /// The problem this rejection answers with, when it is not a redirect.
    fn problem(&self) -> Problem {
        let problem = |title, message: &str| {
            Problem::new(self.status(), self.code(), title, message.to_owned())
        };
        match self.kind {
            RejectionKind::SignedOut => problem(
                self.mode.title("Sign in first"),
                &self.mode.words("Sign in with ModelGates first."),
            ),
            RejectionKind::MissingLayer => problem(
                "Sign-in is not set up correctly",
                message(self.kind, self.mode),
            ),
            RejectionKind::StoreUnavailable => {
                problem("Temporarily unavailable", message(self.kind, self.mode))
                    .retry_after(Some(crate::store::STORE_RETRY_AFTER))
            }
        }
    }
}

impl IntoResponse for ModelGatesKeyRejection {
    fn into_response(self) -> Response {
        if let Some(login) = &self.login {
            return see_other(login);
        }
        if self.kind == RejectionKind::MissingLayer {
            tracing::error!("{self}");
        }
        self.problem().render(self.wants_page, &[("Home", "/")])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_report_their_status() {
        for rejection in [
            ModelGatesKeyRejection::signed_out(Some("/login".into()), "/login".into(), Mode::Login),
            ModelGatesKeyRejection::signed_out(None, "/login".into(), Mode::Login),
            ModelGatesKeyRejection::signed_out(None, "/login".into(), Mode::Linked),
            ModelGatesKeyRejection::missing_layer(false),
            ModelGatesKeyRejection::missing_layer(true),
            ModelGatesKeyRejection::store_unavailable(false),
            ModelGatesKeyRejection::store_unavailable(true),
        ] {
            assert_eq!(
                rejection.status(),
                rejection.clone().into_response().status()
            );
        }
    }

    #[test]
    fn a_store_outage_asks_to_retry_and_a_missing_layer_says_which() {
        let response = ModelGatesKeyRejection::store_unavailable(false).into_response();
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
        assert!(
            ModelGatesKeyRejection::missing_layer(false)
                .to_string()
                .contains("ModelGatesAuth")
        );
        assert_eq!(
            ModelGatesKeyRejection::signed_out(None, "/app/login".into(), Mode::Login)
                .login_url("/me"),
            Some("/app/login?return_to=%2Fme".to_owned())
        );
    }
}
