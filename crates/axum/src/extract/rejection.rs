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
            Self::MissingLayer { .. } => None,
        }
    }

    /// The rejection for a request the layer did not see, answered as `headers` prefer.
    pub(crate) fn missing_layer(headers: &http::HeaderMap) -> Self {
        Self::MissingLayer {
            page: prefers_html(headers),
        }
    }

    /// The status this rejection answers with: 303 to the login route for a browser, 401 for
    /// other signed-out requests, 500 when the layer is missing.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignedOut { login: Some(_), .. } => StatusCode::SEE_OTHER,
            Self::SignedOut { login: None, .. } => StatusCode::UNAUTHORIZED,
            Self::MissingLayer { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code, as sent in the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignedOut { .. } => "not_signed_in",
            Self::MissingLayer { .. } => "missing_layer",
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
        ] {
            assert_eq!(
                rejection.status(),
                rejection.clone().into_response().status()
            );
        }
    }
}
