//! [`AuthError`]: every failure a user can hit on the layer's routes, with its status and a
//! page (or JSON) that says what happened and what to do.
//!
//! [`AuthError`]: crate::AuthError
//!
//! Rules: bad or missing callback input is a 400, a cancelled sign-in or a cross-site request a
//! 403, a wrong method a 405, too many sign-ins from one client or in all a 429, a ModelGates
//! failure a 502, a ModelGates timeout a 504, a failing key store (at sign-in or sign-out) or a
//! full set of exchange slots a 503. Every 429 and 503 carries `Retry-After`.
//! Never a 500 for bad input. HTML goes to browsers, JSON
//! (`{"error": {"status", "code", "message"}}`) to clients whose `Accept` asks for JSON and not
//! HTML. Every value that came from the request is HTML-escaped; no message holds a secret.

use std::time::Duration;

use axum_core::body::Body;
use http::{Response, StatusCode};
use modelgates_oauth_core::ExchangeError;
use modelgates_oauth_core::exchange::ExchangeFailure;
use modelgates_oauth_core::flow::{CallbackError, FlowError};

use super::PageLinks;
use crate::hooks::AppFn;
use crate::linked::Mode;
use crate::observe::Outcome;
use crate::response::{Problem, whole_seconds};
use crate::store::StoreError;

/// A replacement for the HTML error page; see
/// [`ModelGatesConfig::with_error_page`](crate::ModelGatesConfig::with_error_page).
// Not an `ErrorPage` of config's: the flow renders it, and config sits above the flow.
pub(crate) type ErrorPage = AppFn<dyn Fn(&AuthError) -> Response<Body> + Send + Sync>;

/// Why a sign-in route failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// `/callback` arrived without the flow cookie: the sign-in expired, was finished already,
    /// or was started in another browser.
    #[error("This sign-in has expired or was started in another browser. Please sign in again.")]
    FlowMissing,
    /// `/callback` arrived without the flow cookie on a host that is not the public URL's: the
    /// browser opened the app on another address (`127.0.0.1` for `localhost`, say), so its
    /// flow cookie belongs to that host. Same code as [`Self::FlowMissing`].
    #[error(
        "This sign-in came back to {host}, but this app's address is {public_origin}, so the \
         browser did not send the sign-in's cookie. Open the app at {public_origin} and sign in \
         again."
    )]
    FlowMissingOnOtherHost {
        /// The host the callback arrived on.
        host: String,
        /// The app's public origin.
        public_origin: String,
    },
    /// The flow cookie failed its signature check.
    #[error("{}", FlowError::Invalid)]
    FlowInvalid,
    /// The flow cookie is older than the flow lifetime.
    #[error("{}", FlowError::Expired)]
    FlowExpired,
    /// The callback URL's flow id is missing or is not the one in this browser's flow cookie:
    /// the response was meant for another browser's sign-in (or was pushed into this one).
    #[error("{}", FlowError::Mismatch)]
    FlowMismatch,
    /// `/login?limit=` is not a spend limit the app accepts; nothing was sent to ModelGates.
    #[error("The spend limit you chose cannot be used: {reason}. Please choose another.")]
    InvalidKeyLimit {
        /// What is wrong with it.
        reason: String,
    },
    /// A callback was already tried with this flow: each sign-in is single-use.
    #[error("This sign-in was already used. Please sign in again.")]
    FlowUsed,
    /// Every key-exchange slot is taken; the answer carries `Retry-After: 1`.
    #[error("Too many sign-ins are in progress right now. Please try again in a moment.")]
    Busy,
    /// This process's record of spent flows is full of unexpired flows (see
    /// [`ModelGatesConfig::with_max_spent_flows`](crate::ModelGatesConfig::with_max_spent_flows)):
    /// refused rather than risk a replay. Same code as [`Self::Busy`]; `Retry-After` says when
    /// the oldest expires.
    #[error("Too many sign-ins are in progress right now. Please try again in a moment.")]
    SpentFlowsFull {
        /// When the oldest spent flow expires.
        retry_after: Duration,
    },
    /// The rate bound on key exchanges was reached (see
    /// [`ExchangeLimits`](crate::config::ExchangeLimits)); nothing was sent to ModelGates and
    /// the flow is not spent: the same callback can be retried after `retry_after`.
    #[error("Too many sign-ins from here right now. Please try again in {} seconds.", whole_seconds(*retry_after))]
    TooManySignIns {
        /// When a permit is free again.
        retry_after: Duration,
    },
    /// The layer is inside a router nested under `prefix` whose paths do not reach it.
    #[error(
        "ModelGatesAuth is inside a router nested at `{prefix}`, where its login, callback and \
         logout paths cannot reach it: add `.merge(auth.routes())` to the nested router before \
         `.layer(auth)`, or put the layer on the outer router with `.with_path_prefix(\"{prefix}\")`"
    )]
    Misplaced {
        /// The prefix the nesting router strips.
        prefix: String,
    },
    /// The app's on-sign-in hook returned a value that cannot be kept with the session (not
    /// JSON, or larger than [`MAX_APP_DATA_LEN`](crate::hooks::MAX_APP_DATA_LEN)): a bug in
    /// the app, logged with the details.
    #[error("Your sign-in could not be completed because of an error in this app.")]
    AppDataRejected {
        /// What is wrong with the value, for the app's developer (logged, not shown).
        reason: String,
    },
    /// The app's on-sign-in hook refused the sign-in; its message is shown.
    #[error("Your sign-in could not be completed: {0}")]
    SignInRejected(#[source] super::SignInRejected),
    /// A state-changing request came from another site.
    #[error("{}", crate::same_origin::CROSS_SITE_MESSAGE)]
    CrossSite,
    /// `/callback` has no `code` parameter.
    #[error("The sign-in response has no code. Please sign in again.")]
    CodeMissing,
    /// `/callback` has more than one `code` parameter.
    #[error("The sign-in response has more than one code. Please sign in again.")]
    CodeDuplicated,
    /// The `code` is longer than 2 KB or holds characters other than printable ASCII.
    #[error("The sign-in response has a malformed code. Please sign in again.")]
    CodeMalformed,
    /// The user pressed Deny on ModelGates' consent page.
    #[error("You cancelled the sign-in with ModelGates. You can sign in again whenever you like.")]
    AccessDenied,
    /// ModelGates reported another authorization error.
    #[error("ModelGates reported an error during sign-in ({error}). Please sign in again.")]
    AuthorizationFailed {
        /// The `error` parameter as received (shown escaped).
        error: String,
    },
    /// ModelGates refused the code: expired, already used, or not issued for this browser's
    /// verifier.
    #[error(
        "ModelGates did not accept this sign-in (the code expired or was already used). Please sign in again."
    )]
    CodeRejected(#[source] ExchangeError),
    /// ModelGates failed or answered something unusable.
    #[error("ModelGates is not answering properly right now. Please try again in a moment.")]
    Upstream(#[source] ExchangeError),
    /// ModelGates did not answer in time.
    #[error("ModelGates took too long to answer. Please try again in a moment.")]
    UpstreamTimeout(#[source] ExchangeError),
    /// The key store failed (before the code was sent: it was not; after: see the log). The
    /// answer carries `Retry-After`.
    #[error("Your sign-in could not be saved right now. Please try again in a moment.")]
    Store(#[source] StoreError),
    /// `POST /logout`: the key store could not forget the session, so a copy of the cookie
    /// would keep working. Nothing changed: the user is still signed in and the answer
    /// (503, `Retry-After`) asks them to try again.
    #[error(
        "You are not signed out yet: this app could not end your session right now. Please try \
         again in a moment."
    )]
    SignOutFailed(#[source] StoreError),
    /// Linked accounts: the connect or disconnect route was asked by a request with no app
    /// user (nobody is signed in to the app).
    #[error("Sign in to this app first, then connect ModelGates to your account.")]
    NotSignedInToApp,
    /// Linked accounts: the callback came back without the app user who started the
    /// connection. In a browser this is nearly always the app's session cookie set with
    /// `SameSite=Strict`, which is not sent on the navigation back from ModelGates.
    #[error(
        "ModelGates sent you back, but this app no longer knew who you were, so nothing was \
         connected. Its session cookie is most likely set with SameSite=Strict, which a browser \
         does not send when ModelGates sends it back: the app's developer should set it to \
         SameSite=Lax. Sign in to this app again, then connect ModelGates."
    )]
    AppSessionMissing,
    /// Linked accounts: the callback came back with another app user than the one who
    /// started the connection (someone else signed in to the app meanwhile).
    #[error(
        "This connection to ModelGates was started by another user of this app than the one \
         signed in now, so nothing was connected. Connect ModelGates again."
    )]
    AppUserChanged,
    /// The route exists but not for this method.
    #[error("This address does not accept {method} requests; use {allow}.")]
    MethodNotAllowed {
        /// The method used.
        method: http::Method,
        /// The method to use.
        allow: &'static str,
    },
}

impl From<FlowError> for AuthError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Expired => Self::FlowExpired,
            FlowError::Mismatch => Self::FlowMismatch,
            _ => Self::FlowInvalid,
        }
    }
}

impl AuthError {
    /// The HTTP status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::FlowMissing
            | Self::FlowMissingOnOtherHost { .. }
            | Self::FlowInvalid
            | Self::FlowExpired
            | Self::FlowMismatch
            | Self::FlowUsed
            | Self::CodeMissing
            | Self::CodeDuplicated
            | Self::CodeMalformed
            | Self::InvalidKeyLimit { .. }
            | Self::AuthorizationFailed { .. }
            | Self::CodeRejected(_) => StatusCode::BAD_REQUEST,
            Self::AccessDenied
            | Self::CrossSite
            | Self::SignInRejected(_)
            | Self::NotSignedInToApp
            | Self::AppSessionMissing
            | Self::AppUserChanged => StatusCode::FORBIDDEN,
            Self::Busy | Self::SpentFlowsFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManySignIns { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Store(_) | Self::SignOutFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Misplaced { .. } | Self::AppDataRejected { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A stable machine-readable code, as sent in JSON errors.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::FlowMissing | Self::FlowMissingOnOtherHost { .. } => "flow_missing",
            Self::AppDataRejected { .. } => "app_data_rejected",
            Self::FlowInvalid => "flow_invalid",
            Self::FlowExpired => "flow_expired",
            Self::FlowMismatch => "flow_mismatch",
            Self::FlowUsed => "flow_used",
            Self::Busy | Self::SpentFlowsFull { .. } => "busy",
            Self::TooManySignIns { .. } => "too_many_sign_ins",
            Self::SignOutFailed(_) => "sign_out_failed",
            Self::CrossSite => "cross_site",
            Self::SignInRejected(_) => "sign_in_rejected",
            Self::Misplaced { .. } => "layer_misplaced",
            Self::CodeMissing => "code_missing",
            Self::CodeDuplicated => "code_duplicated",
            Self::CodeMalformed => "code_malformed",
            Self::InvalidKeyLimit { .. } => "invalid_limit",
            Self::AccessDenied => "access_denied",
            Self::AuthorizationFailed { .. } => "authorization_failed",
            Self::CodeRejected(_) => "code_rejected",
            Self::Upstream(_) => "upstream_error",
            Self::UpstreamTimeout(_) => "upstream_timeout",
            Self::Store(_) => "store_unavailable",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::NotSignedInToApp => "not_signed_in_to_app",
            Self::AppSessionMissing => "app_session_missing",
            Self::AppUserChanged => "app_user_changed",
        }
    }

    /// The `outcome` this error is counted and traced under (the fixed set of
    /// [`observe`](crate::observe)).
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::FlowMissing | Self::FlowMissingOnOtherHost { .. } => Outcome::FlowMissing,
            Self::FlowInvalid => Outcome::FlowInvalid,
            Self::FlowExpired => Outcome::FlowExpired,
            Self::FlowMismatch => Outcome::FlowMismatch,
            Self::FlowUsed => Outcome::FlowUsed,
            Self::Busy | Self::SpentFlowsFull { .. } => Outcome::Busy,
            Self::TooManySignIns { .. } => Outcome::RateLimited,
            Self::SignOutFailed(_) => Outcome::SignOutFailed,
            Self::CrossSite => Outcome::CrossSite,
            Self::SignInRejected(_) => Outcome::HookRefused,
            Self::AppDataRejected { .. } => Outcome::HookFailed,
            Self::Misplaced { .. } => Outcome::LayerMisplaced,
            Self::CodeMissing => Outcome::CodeMissing,
            Self::CodeDuplicated | Self::CodeMalformed => Outcome::CodeMalformed,
            Self::InvalidKeyLimit { .. } => Outcome::InvalidLimit,
            Self::AccessDenied => Outcome::Denied,
            Self::AuthorizationFailed { .. } => Outcome::AuthorizationFailed,
            Self::CodeRejected(_) => Outcome::CodeRejected,
            Self::Upstream(_) => Outcome::UpstreamError,
            Self::UpstreamTimeout(_) => Outcome::Timeout,
            Self::Store(_) => Outcome::StoreUnavailable,
            Self::MethodNotAllowed { .. } => Outcome::MethodNotAllowed,
            Self::NotSignedInToApp | Self::AppSessionMissing => Outcome::NoAppUser,
            Self::AppUserChanged => Outcome::AppUserChanged,
        }
    }

    /// How long the client should wait before trying again, for the errors that pass: the
    /// `Retry-After` the answer carries, in whole seconds (at least one).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Busy => Some(Duration::from_secs(1)),
            Self::Store(_) | Self::SignOutFailed(_) => Some(crate::store::STORE_RETRY_AFTER),
            Self::SpentFlowsFull { retry_after } | Self::TooManySignIns { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// Whether offering "sign in again" makes sense after this error.
    fn offers_retry(&self) -> bool {
        !matches!(
            self,
            Self::MethodNotAllowed { .. }
                | Self::CrossSite
                | Self::Misplaced { .. }
                | Self::SignOutFailed(_)
                | Self::NotSignedInToApp
        )
    }

    /// The error for a failed key exchange, by its kind: a refused code is the callback's
    /// fault (400), a timeout is 504, anything else ModelGates got wrong 502.
    pub(crate) fn from_exchange(error: ExchangeError) -> Self {
        match error.kind() {
            ExchangeFailure::InvalidCode => Self::CodeRejected(error),
            ExchangeFailure::Timeout => Self::UpstreamTimeout(error),
            _ => Self::Upstream(error),
        }
    }

    pub(crate) fn from_callback(error: CallbackError) -> Self {
        match error {
            CallbackError::CodeDuplicated => Self::CodeDuplicated,
            CallbackError::CodeMalformed => Self::CodeMalformed,
            _ => Self::CodeMissing,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::AccessDenied => "Sign-in cancelled",
            Self::Upstream(_)
            | Self::UpstreamTimeout(_)
            | Self::Store(_)
            | Self::Busy
            | Self::SpentFlowsFull { .. }
            | Self::TooManySignIns { .. } => "Sign-in unavailable",
            Self::SignOutFailed(_) => "Sign-out unavailable",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::CrossSite => "Request refused",
            Self::Misplaced { .. } => "Sign-in is not set up correctly",
            _ => "Sign-in failed",
        }
    }

    /// This error as the one problem value every answer of the crate is rendered from, in
    /// the words of `mode`.
    pub(crate) fn problem(&self, mode: Mode) -> Problem {
        let mut problem = Problem::new(
            self.status(),
            self.code(),
            mode.title(self.title()),
            mode.words(&self.to_string()),
        )
        .retry_after(self.retry_after());
        if let Self::MethodNotAllowed { allow, .. } = self {
            problem.allow = Some(allow);
        }
        problem
    }

    /// The response for this error: a page when `page` (the client prefers HTML, by the
    /// crate's one negotiation rule, asked once per request), JSON otherwise; the app's page
    /// when it set one.
    pub(crate) fn render(
        &self,
        page: bool,
        links: &PageLinks,
        custom: Option<&ErrorPage>,
    ) -> Response<Body> {
        let problem = self.problem(links.mode);
        match custom {
            Some(custom) if page => problem.with_headers(custom(self)),
            _ => {
                let mut shown = vec![("Home", links.home.as_str())];
                if self.offers_retry() {
                    shown.insert(0, (links.mode.start_label(), links.login.as_str()));
                }
                problem.render(page, &shown)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{ACCEPT, CONTENT_TYPE};
    use http::{HeaderMap, HeaderValue};
    use modelgates_oauth_core::RequestError;

    #[test]
    fn statuses_follow_the_rules() {
        assert_eq!(AuthError::FlowMissing.status(), StatusCode::BAD_REQUEST);
        assert_eq!(AuthError::AccessDenied.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            AuthError::from_exchange(RequestError::Timeout.into()).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            AuthError::from_exchange(RequestError::MalformedResponse("x".into()).into()).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            AuthError::from_exchange(ExchangeError::CodeRejected {
                status: 403,
                message: "m".into()
            })
            .status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn echoed_values_are_escaped() {
        let error = AuthError::AuthorizationFailed {
            error: "<script>alert(1)</script>".into(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/html"));
        let response = error.render(crate::response::prefers_html(&headers), &links(), None);
        let body = futures_body(response);
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("&lt;script&gt;"));
    }

    #[test]
    fn json_for_json_clients() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let response =
            AuthError::CodeMissing.render(crate::response::prefers_html(&headers), &links(), None);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_str(&futures_body(response)).unwrap();
        assert_eq!(body["error"]["code"], "code_missing");
        assert_eq!(body["error"]["status"], 400);
    }

    /// Linked mode speaks of connecting ModelGates on every page the layer renders, never of
    /// signing in with it (signing in to the app itself is the app's words).
    #[test]
    fn linked_mode_pages_speak_of_connecting() {
        let store = || StoreError::new("down");
        let errors = [
            AuthError::FlowMissing,
            AuthError::FlowMissingOnOtherHost {
                host: "a".into(),
                public_origin: "b".into(),
            },
            AuthError::FlowInvalid,
            AuthError::FlowExpired,
            AuthError::FlowMismatch,
            AuthError::InvalidKeyLimit { reason: "r".into() },
            AuthError::FlowUsed,
            AuthError::Busy,
            AuthError::SpentFlowsFull {
                retry_after: Duration::from_secs(1),
            },
            AuthError::TooManySignIns {
                retry_after: Duration::from_secs(1),
            },
            AuthError::AppDataRejected { reason: "r".into() },
            AuthError::CrossSite,
            AuthError::CodeMissing,
            AuthError::CodeDuplicated,
            AuthError::CodeMalformed,
            AuthError::AccessDenied,
            AuthError::AuthorizationFailed { error: "e".into() },
            AuthError::CodeRejected(ExchangeError::CodeRejected {
                status: 403,
                message: "m".into(),
            }),
            AuthError::Upstream(RequestError::Timeout.into()),
            AuthError::UpstreamTimeout(RequestError::Timeout.into()),
            AuthError::Store(store()),
            AuthError::SignOutFailed(store()),
            AuthError::NotSignedInToApp,
            AuthError::AppSessionMissing,
            AuthError::AppUserChanged,
        ];
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/html"));
        let mut linked = links();
        linked.mode = Mode::Linked;
        for error in errors {
            let page = futures_body(error.render(true, &linked, None)).to_lowercase();
            let page = page.replace("sign in to this app", "");
            for login_words in ["sign in", "sign-in", "signed out", "sign out", "sign-out"] {
                assert!(
                    !page.contains(login_words),
                    "{}: {login_words:?} in {page}",
                    error.code()
                );
            }
            if error.offers_retry() {
                assert!(
                    page.contains(">connect modelgates</a>"),
                    "{}: {page}",
                    error.code()
                );
            }
        }
    }

    fn links() -> PageLinks {
        PageLinks {
            login: "/login".into(),
            home: "/".into(),
            mode: Mode::Login,
        }
    }

    fn futures_body(response: Response<Body>) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(http_body_util::BodyExt::collect(response.into_body()))
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
