//! What a handler returns when a call to ModelGates with the user's key fails, and how a
//! revoked key signs the user out.
//!
//! The rules:
//!
//! * [`ApiError`] converts with `?` from async-openai's error (feature `openai`) and from
//!   [`RequestError`], reading ModelGates' own error (see
//!   [`oauth_core::openai`](crate::oauth_core::openai)), and answers
//!   `{"error": {"status", "code", "message"}}`:
//!
//!   | ModelGates | answer | code | what the user can do |
//!   | --- | --- | --- | --- |
//!   | 401 | 401 | `key_rejected` | sign in again (the layer signs the user out) |
//!   | 402 or 403 whose message names the key's limit ("Key limit exceeded") | 403 | `key_limit_reached` | raise the key's limit on ModelGates |
//!   | any other 402 | 402 | `insufficient_credits` | top up credits on ModelGates |
//!   | any other 403 (a guardrail, a moderation flag, a model the key may not use) | 403 | `refused_by_modelgates`, ModelGates' reason (and moderation's `metadata.reasons`) in the text | change the request |
//!   | 429 | 429, with its `Retry-After` | `rate_limited` | wait and try again |
//!   | 503 | 503, with its `Retry-After` | `upstream_unavailable` | wait and try again |
//!   | no answer in time | 504 | `upstream_timeout` | try again |
//!   | anything else | 502 | `upstream_error`, ModelGates' status and message in the text | try again later |
//!   | request refused before sending | 400 | `invalid_request` | (the app's bug) |
//!
//!   No message holds the key. The user stays signed in for every one but 401. A "names the
//!   key's limit" message holds both words `key` and `limit`.
//! * Behind the layer, the response of a handler that called ModelGates with
//!   [`ModelGatesKey::openai`](crate::ModelGatesKey::openai) or
//!   [`ModelGatesKey::openai_stream`](crate::ModelGatesKey::openai_stream) carries the
//!   `X-RateLimit-Limit`, `-Remaining` and `-Reset` of ModelGates' latest answer (as numbers),
//!   unless the handler set any of them itself; errors and successes alike.
//! * A browser (a request preferring `text/html` to `application/json`, by the crate's one
//!   negotiation rule) gets the same status as an HTML page that says what happened and what
//!   to do, with a link to manage the key on ModelGates for the money errors
//!   ([`ModelGatesKey::manage_url`](crate::ModelGatesKey::manage_url)): the layer renders it
//!   on the response's way out, since only it knows who asked.
//! * A 401 answer carries a private marker. On its way out, [`ModelGatesAuth`] sees it, forgets
//!   the key in the store, deletes the key cookie, and sends a browser to sign in again with a
//!   303; other clients get the 401. A user whose key was revoked on ModelGates is thus asked
//!   to sign in again instead of being stuck.
//! * A handler signs the user out itself by returning [`SignOut`](crate::SignOut) with its response
//!   (`(SignOut, Redirect::to("/"))`): the store forgets the session, the cookie is deleted,
//!   and the response is sent as the handler made it.
//!
//! ```
//! use axum::response::{IntoResponse, Response};
//! use modelgates_axum::ModelGatesKey;
//! use modelgates_axum::ApiError;
//!
//! async fn usage(key: ModelGatesKey) -> Response {
//!     match key.key_info().await.map_err(ApiError::from) {
//!         Ok(info) => format!("spent {:.2} credits", info.usage).into_response(),
//!         // Out of credits: say so in the app's own words, and keep the user signed in.
//!         Err(ApiError::InsufficientCredits { .. }) => {
//!             "Your ModelGates credits are used up: top up on ModelGates.".into_response()
//!         }
//!         Err(other) => other.into_response(),
//!     }
//! }
//! ```
//!
//! [`ModelGatesAuth`]: crate::ModelGatesAuth

use std::time::Duration;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use modelgates_oauth_core::RequestError;

use crate::response::Problem;

/// What an [`ApiError::KeyRejected`] puts in its response: ModelGates refused the key, so the
/// layer signs the user out and sends a browser to sign in again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRejectedSignOut;

/// What an [`ApiError`]'s response carries for the layer: the problem it was rendered from
/// (as JSON, since only the layer knows who asked), so that the layer renders the same problem
/// as a page for a browser, with a link to manage the key when the user can act there.
#[derive(Debug, Clone)]
pub(crate) struct ApiProblem {
    pub(crate) problem: Problem,
    pub(crate) links_to_key: bool,
}

/// A failed call to ModelGates with the user's key, as a handler returns it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// ModelGates refused the key (401): it was revoked or has expired.
    #[error(
        "ModelGates no longer accepts this key: it was revoked or has expired. Please sign in again."
    )]
    KeyRejected,
    /// The user's ModelGates account is out of credits (402).
    #[error(
        "Your ModelGates account is out of credits. Top up your credits on ModelGates, then try again."
    )]
    InsufficientCredits {
        /// ModelGates' own message.
        message: String,
    },
    /// The key reached the spend limit the user set (402 or 403 naming it: "Key limit
    /// exceeded").
    #[error(
        "This app's key has reached the spend limit you set on ModelGates. Raise the key's limit on ModelGates, then try again."
    )]
    KeyLimitReached {
        /// ModelGates' own message.
        message: String,
    },
    /// ModelGates refused this request itself (a 403 that is not about the key's limit: a
    /// guardrail of the account, a moderation flag, a model the key may not use). The user
    /// stays signed in; sending the same request again gets the same answer.
    #[error("ModelGates refused this request: {message}{}", reasons_text(.reasons))]
    RefusedByModelGates {
        /// ModelGates' own reason.
        message: String,
        /// What moderation flagged, when ModelGates said.
        reasons: Vec<String>,
    },
    /// ModelGates is rate limiting the user's calls (429).
    #[error("ModelGates is receiving too many requests from you. Please wait {} and try again.", wait_text(.retry_after))]
    RateLimited {
        /// How long ModelGates asked to wait, passed on as `Retry-After`.
        retry_after: Option<Duration>,
        /// ModelGates' own message.
        message: String,
    },
    /// ModelGates is unavailable for now (503).
    #[error("ModelGates is unavailable for now. Please wait {} and try again.", wait_text(.retry_after))]
    Unavailable {
        /// How long ModelGates asked to wait, passed on as `Retry-After`.
        retry_after: Option<Duration>,
        /// ModelGates' own message.
        message: String,
    },
    /// ModelGates did not answer in time.
    #[error("ModelGates took too long to answer. Please try again in a moment.")]
    Timeout,
    /// ModelGates failed or answered something unusable; the text keeps its status and
    /// message when it gave them.
    #[error("ModelGates could not answer: {0}")]
    Upstream(String),
    /// The session already holds as many open streams as it may
    /// ([`ModelGatesConfig::with_max_streams_per_session`](crate::ModelGatesConfig::with_max_streams_per_session)):
    /// nothing was sent (429, `Retry-After: 1`).
    #[error("You already have {max} replies streaming. Wait for one to finish, then try again.")]
    TooManyStreams {
        /// The most streams a session may hold open.
        max: usize,
    },
    /// The server is shutting down and ended its streams
    /// ([`OpenStreams::close_all`](crate::extract::OpenStreams::close_all)): 503 with
    /// `Retry-After: 2`; in a stream already under way, its `error` event.
    #[error(
        "The server is restarting; your reply was cut short. Please send it again in a moment."
    )]
    ServerRestarting,
    /// The request was refused before it was sent (a builder's missing field, say).
    #[error("The request to ModelGates is invalid: {0}")]
    InvalidRequest(String),
}

fn reasons_text(reasons: &[String]) -> String {
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" (flagged for {})", reasons.join(", "))
    }
}

fn wait_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) if wait.as_secs() > 1 => format!("{} seconds", wait.as_secs()),
        Some(_) => "a second".to_owned(),
        None => "a moment".to_owned(),
    }
}

impl ApiError {
    /// The status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::KeyRejected => StatusCode::UNAUTHORIZED,
            Self::InsufficientCredits { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::KeyLimitReached { .. } | Self::RefusedByModelGates { .. } => {
                StatusCode::FORBIDDEN
            }
            Self::RateLimited { .. } | Self::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::ServerRestarting | Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable machine-readable code, as sent in the JSON body and in a stream's `error`
    /// event.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyRejected => "key_rejected",
            Self::InsufficientCredits { .. } => "insufficient_credits",
            Self::KeyLimitReached { .. } => "key_limit_reached",
            Self::RefusedByModelGates { .. } => "refused_by_modelgates",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "upstream_unavailable",
            Self::TooManyStreams { .. } => "too_many_streams",
            Self::ServerRestarting => "server_restarting",
            Self::Timeout => "upstream_timeout",
            Self::Upstream(_) => "upstream_error",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }

    /// Whether the user can act on this error on ModelGates (top up, raise the limit), so a
    /// page for it links to the key's page there.
    fn is_about_money(&self) -> bool {
        matches!(
            self,
            Self::InsufficientCredits { .. }
                | Self::KeyLimitReached { .. }
                | Self::RateLimited { .. }
        )
    }

    fn title(&self) -> &'static str {
        match self {
            Self::InsufficientCredits { .. } => "Out of credits",
            Self::KeyLimitReached { .. } => "Spend limit reached",
            Self::RateLimited { .. } => "Too many requests",
            Self::RefusedByModelGates { .. } => "Refused by ModelGates",
            Self::Unavailable { .. } => "ModelGates is unavailable",
            Self::TooManyStreams { .. } => "Too many replies at once",
            Self::ServerRestarting => "Restarting",
            Self::KeyRejected => "Signed out",
            Self::Timeout => "ModelGates took too long",
            Self::Upstream(_) => "ModelGates could not answer",
            Self::InvalidRequest(_) => "Request refused",
        }
    }
}

impl From<RequestError> for ApiError {
    /// The error for a failed call, counted in `modelgates_api_errors_total`
    /// ([`observe`](crate::observe)).
    fn from(error: RequestError) -> Self {
        Self::from_request(error).counted()
    }
}

impl ApiError {
    /// Counts this error in `modelgates_api_errors_total`, by code.
    pub(crate) fn counted(self) -> Self {
        crate::observe::api_error(self.code());
        self
    }

    /// The error for a failed call, by oauth-core's reading of ModelGates' answer; not counted.
    fn from_request(error: RequestError) -> Self {
        match error {
            RequestError::KeyRejected => Self::KeyRejected,
            RequestError::InsufficientCredits { message } => Self::InsufficientCredits { message },
            RequestError::KeyLimitReached { message } => Self::KeyLimitReached { message },
            RequestError::Refused { message, reasons } => {
                Self::RefusedByModelGates { message, reasons }
            }
            RequestError::RateLimited {
                retry_after,
                message,
            } => Self::RateLimited {
                retry_after,
                message,
            },
            RequestError::Unavailable {
                retry_after,
                message,
            } => Self::Unavailable {
                retry_after,
                message,
            },
            RequestError::Timeout => Self::Timeout,
            RequestError::Status { status, message } => {
                Self::Upstream(format!("ModelGates answered {status}: {message}"))
            }
            other => Self::Upstream(other.to_string()),
        }
    }
}

#[cfg(feature = "openai")]
impl From<modelgates_oauth_core::async_openai::error::OpenAIError> for ApiError {
    /// The error for a failed call through async-openai, counted in
    /// `modelgates_api_errors_total` ([`observe`](crate::observe)).
    fn from(error: modelgates_oauth_core::async_openai::error::OpenAIError) -> Self {
        Self::from_openai_ref(&error).counted()
    }
}

#[cfg(feature = "openai")]
impl ApiError {
    /// The error for an async-openai failure, read by oauth-core's rules; holds no secret; not
    /// counted.
    pub(crate) fn from_openai_ref(
        error: &modelgates_oauth_core::async_openai::error::OpenAIError,
    ) -> Self {
        use modelgates_oauth_core::async_openai::error::OpenAIError;
        if let OpenAIError::InvalidArgument(message) = error {
            return Self::InvalidRequest(message.clone());
        }
        match modelgates_oauth_core::openai::request_error(error) {
            Some(RequestError::Transport(_)) => {
                Self::Upstream("the connection to ModelGates broke".to_owned())
            }
            Some(typed) => Self::from_request(typed),
            None => Self::Upstream(error.to_string().chars().take(300).collect()),
        }
    }
}

impl ApiError {
    /// How long the client should wait before trying again, sent as `Retry-After`:
    /// ModelGates' own for a rate limit or an outage, a second for a full stream slot, two
    /// while the server restarts. For a handler that answers a browser with a page of its own.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            Self::TooManyStreams { .. } => Some(Duration::from_secs(1)),
            Self::ServerRestarting => Some(Duration::from_secs(2)),
            _ => None,
        }
    }

    /// This error as the one problem value every answer of the crate is rendered from.
    pub(crate) fn problem(&self) -> Problem {
        Problem::new(self.status(), self.code(), self.title(), self.to_string())
            .retry_after(self.retry_after())
    }
}

impl IntoResponse for ApiError {
    /// JSON: the error cannot know who asked. Behind [`ModelGatesAuth`](crate::ModelGatesAuth),
    /// which does, a browser gets the same problem as a page instead (the crate's one
    /// negotiation rule), rendered by the same function.
    fn into_response(self) -> Response {
        let problem = self.problem();
        let mut response = problem.render(false, &[]);
        if let Self::KeyRejected = self {
            response.extensions_mut().insert(KeyRejectedSignOut);
        }
        response.extensions_mut().insert(ApiProblem {
            problem,
            links_to_key: self.is_about_money(),
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::RETRY_AFTER;

    #[test]
    fn a_rejected_key_asks_the_layer_to_sign_out() {
        let response = ApiError::from(RequestError::KeyRejected).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.extensions().get::<KeyRejectedSignOut>().is_some());
        let response = ApiError::from(RequestError::Timeout).into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(response.extensions().get::<KeyRejectedSignOut>().is_none());
    }

    #[test]
    fn money_errors_are_named_and_keep_the_user_signed_in() {
        for (error, status, code) in [
            (
                RequestError::InsufficientCredits {
                    message: "m".into(),
                },
                402,
                "insufficient_credits",
            ),
            (
                RequestError::KeyLimitReached {
                    message: "m".into(),
                },
                403,
                "key_limit_reached",
            ),
            (
                RequestError::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                    message: "m".into(),
                },
                429,
                "rate_limited",
            ),
        ] {
            let error = ApiError::from(error);
            assert_eq!((error.status().as_u16(), error.code()), (status, code));
            let response = error.into_response();
            assert!(response.extensions().get::<KeyRejectedSignOut>().is_none());
            let page = response.extensions().get::<ApiProblem>().unwrap();
            assert!(page.links_to_key, "{code}: the user acts on the key's page");
        }
        for error in [ApiError::Timeout, ApiError::Upstream("down".into())] {
            let response = error.into_response();
            let page = response.extensions().get::<ApiProblem>().unwrap();
            assert!(!page.links_to_key);
        }
        let limited = ApiError::from(RequestError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "m".into(),
        });
        assert!(limited.to_string().contains("wait 7 seconds"));
        assert_eq!(limited.into_response().headers()[RETRY_AFTER], "7");
        let other = ApiError::from(RequestError::Status {
            status: 400,
            message: "No such model".into(),
        });
        assert_eq!(other.code(), "upstream_error");
        assert!(other.to_string().contains("400: No such model"));
    }
}
