//! What a handler returns when a call to ModelGates with the user's key fails, and how a
//! revoked key signs the user out.
//!
//! The rules:
//!
//! * [`ApiError`] converts from async-openai's error (feature `openai`) and from
//!   [`RequestError`] with `?`, and answers JSON `{"error": {"status", "code", "message"}}`:
//!   401 `key_rejected` when ModelGates refused the key, 504 `upstream_timeout`, 502
//!   `upstream_error` for anything else ModelGates got wrong, 400 `invalid_request` for a
//!   request async-openai refused to send. No message holds the key.
//! * A 401 answer carries the [`SignOut`] marker. On its way out, [`ModelGatesAuth`] sees the
//!   marker, forgets the key in the store, deletes the key cookie, and sends a browser
//!   (`Accept: text/html`) to sign in again with a 303; other clients get the 401. A user whose
//!   key was revoked on ModelGates is thus asked to sign in again instead of being stuck.
//! * Any response may carry [`SignOut`] to the same effect, for apps with errors of their own.
//!
//! [`ModelGatesAuth`]: crate::ModelGatesAuth

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use modelgates_oauth_core::RequestError;

use crate::response::json_error;

/// Put in a response's extensions to have [`ModelGatesAuth`](crate::ModelGatesAuth) sign the
/// user out on its way out.
///
/// ```
/// use axum_core::response::{IntoResponse, Response};
/// use modelgates_axum::api::SignOut;
///
/// fn account_closed() -> Response {
///     let mut response = "Your account was closed.".into_response();
///     response.extensions_mut().insert(SignOut);
///     response
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOut;

/// A failed call to ModelGates with the user's key, as a handler returns it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// ModelGates refused the key (401): it was revoked or has expired.
    #[error(
        "ModelGates no longer accepts this key: it was revoked or has expired. Please sign in again."
    )]
    KeyRejected,
    /// ModelGates did not answer in time.
    #[error("ModelGates took too long to answer. Please try again in a moment.")]
    Timeout,
    /// ModelGates failed or answered something unusable.
    #[error("ModelGates could not answer: {0}")]
    Upstream(String),
    /// The request was refused before it was sent (a builder's missing field, say).
    #[error("The request to ModelGates is invalid: {0}")]
    InvalidRequest(String),
}

impl ApiError {
    /// The status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::KeyRejected => StatusCode::UNAUTHORIZED,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable machine-readable code, as sent in the JSON body.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyRejected => "key_rejected",
            Self::Timeout => "upstream_timeout",
            Self::Upstream(_) => "upstream_error",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::KeyRejected => Self::KeyRejected,
            RequestError::Timeout => Self::Timeout,
            other => Self::Upstream(other.to_string()),
        }
    }
}

#[cfg(feature = "openai")]
impl From<modelgates_oauth_core::async_openai::error::OpenAIError> for ApiError {
    fn from(error: modelgates_oauth_core::async_openai::error::OpenAIError) -> Self {
        use modelgates_oauth_core::async_openai::error::OpenAIError;
        use modelgates_oauth_core::openai::{is_key_rejected, is_timeout};
        if is_key_rejected(&error) {
            return Self::KeyRejected;
        }
        if is_timeout(&error) {
            return Self::Timeout;
        }
        match error {
            OpenAIError::InvalidArgument(message) => Self::InvalidRequest(message),
            other => Self::from_openai_ref(&other),
        }
    }
}

#[cfg(feature = "openai")]
impl ApiError {
    /// A readable message for an error inside a stream, holding no secret.
    pub(crate) fn from_stream_error(
        error: &modelgates_oauth_core::async_openai::error::OpenAIError,
    ) -> String {
        Self::from_openai_ref(error).to_string()
    }

    fn from_openai_ref(error: &modelgates_oauth_core::async_openai::error::OpenAIError) -> Self {
        use modelgates_oauth_core::async_openai::error::OpenAIError;
        match error {
            OpenAIError::StreamError(_) | OpenAIError::Reqwest(_) => {
                Self::Upstream("the connection to ModelGates broke".to_owned())
            }
            OpenAIError::JSONDeserialize(..) => {
                Self::Upstream("ModelGates sent a chunk that could not be read".to_owned())
            }
            OpenAIError::ApiError(response) => Self::Upstream(format!(
                "{} {}",
                response.status_code.as_u16(),
                response
                    .api_error
                    .message
                    .chars()
                    .take(300)
                    .collect::<String>()
            )),
            other => Self::Upstream(other.to_string().chars().take(300).collect()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_error(self.status(), self.code(), &self.to_string());
        if let Self::KeyRejected = self {
            response.extensions_mut().insert(SignOut);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_key_asks_the_layer_to_sign_out() {
        let response = ApiError::from(RequestError::KeyRejected).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.extensions().get::<SignOut>().is_some());
        let response = ApiError::from(RequestError::Timeout).into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(response.extensions().get::<SignOut>().is_none());
    }
}
