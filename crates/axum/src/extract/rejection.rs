//! [`ModelGatesKeyRejection`]: why the extractor refused, and what it answers.

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

use super::login_url;
use crate::response::{html_error_page, json_error, prefers_html, see_other};

/// Why [`ModelGatesKey`](crate::ModelGatesKey) could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelGatesKeyRejection {
    /// The request is not signed in. Browsers (navigations and form posts) are sent to
    /// `login`; other clients get a 401.
    #[error("not signed in with ModelGates")]
    #[non_exhaustive]
    SignedOut {
        /// The login URL for a browser, coming back by the module's rules; `None` for other
        /// requests.
        login: Option<String>,
        /// The login route as this request reaches it (nesting prefix included).
        login_path: String,
    },
    /// `ModelGatesAuth` is not in front of this handler: a 500 naming the layer, as a page
    /// when the request prefers HTML (the crate's one negotiation rule), JSON otherwise.
    #[error(
        "ModelGatesKey was extracted but the ModelGatesAuth layer did not see this request: add \
         `.layer(ModelGatesAuth::new(config))` to the router that serves this route"
    )]
    #[non_exhaustive]
    MissingLayer {
        /// The request prefers HTML, so the answer is a page.
        page: bool,
    },
    /// The request carries a key cookie, but the key store failed to answer: the user may
    /// well be signed in, so this is a 503 with `Retry-After` (never "signed out", never a
    /// redirect to sign in), as a page when the request prefers HTML, JSON otherwise.
    #[error(
        "Your session cannot be checked right now: this app's key store is not answering. \
         Please try again in a moment."
    )]
    #[non_exhaustive]
    StoreUnavailable {
        /// The request prefers HTML, so the answer is a page.
        page: bool,
    },
}

impl ModelGatesKeyRejection {
    /// The login URL coming back to `return_to` (a local path; anything else is dropped), for
    /// a page that offers a sign-in link instead of redirecting. `None` when the layer is
    /// missing.
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
        match self {
            Self::SignedOut { login_path, .. } => Some(login_url(login_path, return_to)),
            Self::MissingLayer { .. } | Self::StoreUnavailable { .. } => None,
        }
    }

    /// The rejection for a request the layer did not see, answered as `headers` prefer.
    pub(crate) fn missing_layer(headers: &http::HeaderMap) -> Self {
        Self::MissingLayer {
            page: prefers_html(headers),
        }
    }

    /// The rejection for a request whose key the store failed to load, answered as `headers`
    /// prefer.
    pub(crate) fn store_unavailable(headers: &http::HeaderMap) -> Self {
        Self::StoreUnavailable {
            page: prefers_html(headers),
        }
    }

    /// The status this rejection answers with: 303 to the login route for a browser, 401 for
    /// other signed-out requests, 500 when the layer is missing, 503 when the key store
    /// failed.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignedOut { login: Some(_), .. } => StatusCode::SEE_OTHER,
            Self::SignedOut { login: None, .. } => StatusCode::UNAUTHORIZED,
            Self::MissingLayer { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable machine-readable code, as sent in the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignedOut { .. } => "not_signed_in",
            Self::MissingLayer { .. } => "missing_layer",
            Self::StoreUnavailable { .. } => "store_unavailable",
        }
    }
}

impl IntoResponse for ModelGatesKeyRejection {
    fn into_response(self) -> Response {
        match &self {
            Self::SignedOut {
                login: Some(login), ..
            } => see_other(login),
            Self::SignedOut { login: None, .. } => {
                json_error(self.status(), self.code(), "Sign in with ModelGates first.")
            }
            Self::StoreUnavailable { page } => {
                let mut response = if *page {
                    html_error_page(
                        "Temporarily unavailable",
                        &self.to_string(),
                        &[("Home", "/")],
                    )
                } else {
                    json_error(self.status(), self.code(), &self.to_string())
                };
                *response.status_mut() = self.status();
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(crate::store::STORE_RETRY_AFTER.as_secs()),
                );
                response
            }
            Self::MissingLayer { page } => {
                tracing::error!("{self}");
                let mut response = if *page {
                    html_error_page(
                        "Sign-in is not set up correctly",
                        &self.to_string(),
                        &[("Home", "/")],
                    )
                } else {
                    json_error(self.status(), self.code(), &self.to_string())
                };
                *response.status_mut() = self.status();
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_report_their_status() {
        for rejection in [
            ModelGatesKeyRejection::SignedOut {
                login: Some("/login".into()),
                login_path: "/login".into(),
            },
            ModelGatesKeyRejection::SignedOut {
                login: None,
                login_path: "/login".into(),
            },
            ModelGatesKeyRejection::MissingLayer { page: false },
            ModelGatesKeyRejection::MissingLayer { page: true },
            ModelGatesKeyRejection::StoreUnavailable { page: false },
            ModelGatesKeyRejection::StoreUnavailable { page: true },
        ] {
            assert_eq!(
                rejection.status(),
                rejection.clone().into_response().status()
            );
        }
    }
}
