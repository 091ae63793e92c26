//! [`RequestError`]: how a call to ModelGates failed, whichever endpoint it was, and
//! [`GatewayError`]: what ModelGates said when it refused one.
//!
//! The transport's own error type stays private ([`TransportError`] wraps it), so a new major
//! version of the HTTP client is not a breaking change here. No message holds a key or a
//! verifier; ModelGates' own messages are stripped of control characters and cut to 300
//! characters.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

/// A call to ModelGates that did not yield a usable answer. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// 401: the key was revoked or has expired; the user must sign in again.
    #[error("ModelGates rejected the key (401): it was revoked or has expired; sign in again")]
    KeyRejected,
    /// 402: the user's ModelGates account has no credits left. The user can act on it: top up
    /// on ModelGates.
    #[error("the ModelGates account is out of credits ({message}); top up on ModelGates")]
    InsufficientCredits {
        /// ModelGates' message.
        message: String,
    },
    /// 402 or 403 whose message names the key's limit: the key has spent the limit its owner
    /// set. The user can act on it: raise the key's limit on ModelGates (see
    /// `ModelGatesKey::manage_url` in modelgates-axum).
    #[error("the key's spend limit is reached ({message}); raise it on ModelGates")]
    KeyLimitReached {
        /// ModelGates' message.
        message: String,
    },
    /// Any other 403: ModelGates refused this request itself (a guardrail of the account, a
    /// moderation flag on the input, a model the key may not use). Sending it again gets the
    /// same answer; the request must change.
    #[error("ModelGates refused the request ({message}){}", reasons_text(.reasons))]
    Refused {
        /// ModelGates' message.
        message: String,
        /// What moderation flagged (`error.metadata.reasons`), when it said.
        reasons: Vec<String>,
    },
    /// 429: too many calls; `retry_after` is how long ModelGates asked to wait, when it said.
    #[error("ModelGates is rate limiting these calls ({message}); try again {}", wait_text(.retry_after))]
    RateLimited {
        /// ModelGates' `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// ModelGates' message.
        message: String,
    },
    /// 503: ModelGates (or the provider behind it) cannot serve calls for now; `retry_after` is
    /// how long it asked to wait, when it said.
    #[error("ModelGates is unavailable for now ({message}); try again {}", wait_text(.retry_after))]
    Unavailable {
        /// ModelGates' `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// ModelGates' message.
        message: String,
    },
    /// Any other non-success status, with ModelGates' own message.
    #[error("ModelGates answered {status} ({message}); try again later")]
    Status {
        /// The HTTP status.
        status: u16,
        /// ModelGates' `error.message`, or the reason phrase.
        message: String,
    },
    /// No answer within the client's timeout.
    #[error("ModelGates did not answer in time; try again, or raise the client's timeout")]
    Timeout,
    /// The connection failed: refused, reset, or dropped before the answer was complete.
    #[error(
        "the connection to ModelGates failed ({0}); check the base URL and the network, then try again"
    )]
    Transport(#[source] TransportError),
    /// A success status whose body is not the documented answer.
    #[error("ModelGates sent a malformed answer: {0}; try again later")]
    MalformedResponse(String),
}

fn reasons_text(reasons: &[String]) -> String {
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": flagged for {}", reasons.join(", "))
    }
}

fn wait_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("in {} s", wait.as_secs().max(1)),
        None => "in a moment".to_owned(),
    }
}

/// What ModelGates answered when it refused a call: the status, and the message of its error
/// body `{"error": {"code": <status, integer or string>, "message": …, "metadata": …}}`
/// (stripped of control characters, at most 300 characters), moderation's
/// `metadata.reasons`, and its `Retry-After`.
///
/// Calls made through [`ModelGatesClient::openai`](crate::ModelGatesClient::openai) fail with
/// it inside `OpenAIError::Boxed`, and a stream's mid-stream error chunk carries one; see
/// [`openai::gateway_error`](crate::openai::gateway_error). It converts into the typed
/// [`RequestError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ModelGates answered {status}: {message}")]
#[non_exhaustive]
pub struct GatewayError {
    /// The HTTP status (or the error body's `code`, for an error inside a stream).
    pub status: u16,
    /// ModelGates' message, or the status's reason phrase.
    pub message: String,
    /// What moderation flagged (`error.metadata.reasons`: at most 8, each made safe to display
    /// like the message); empty when ModelGates did not say.
    pub reasons: Vec<String>,
    /// How long ModelGates asked to wait before trying again.
    pub retry_after: Option<Duration>,
}

impl GatewayError {
    /// The error of an answer with `status`, `body` and `Retry-After`.
    #[must_use]
    pub(crate) fn from_answer(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let detail = ErrorDetail::read(body);
        Self {
            status,
            message: displayable(status, detail.message.as_deref()),
            reasons: detail.reasons(),
            retry_after,
        }
    }

    /// The error of a refusal whose message was read already (`None`: none given).
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn with_message(status: u16, message: Option<&str>) -> Self {
        Self {
            status,
            message: displayable(status, message),
            reasons: Vec::new(),
            retry_after: None,
        }
    }

    /// The error inside a body that carries one (`{"error": {"code", "message"}}`, such as a
    /// stream's error chunk), its status taken from `code`; `None` when there is none.
    #[must_use]
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn from_body(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let error = value.get("error")?;
        let status = match error.get("code")? {
            serde_json::Value::Number(code) => u16::try_from(code.as_u64()?).ok()?,
            serde_json::Value::String(code) => code.parse().ok()?,
            _ => return None,
        };
        let detail: ErrorDetail = serde_json::from_value(error.clone()).unwrap_or_default();
        let mut gateway = Self::with_message(status, detail.message.as_deref());
        gateway.reasons = detail.reasons();
        Some(gateway)
    }

    /// Whether ModelGates' message names the key's limit ("Key limit exceeded", "this key's
    /// spend limit is reached"): both words, in any case.
    fn names_key_limit(&self) -> bool {
        let message = self.message.to_ascii_lowercase();
        message.contains("key") && message.contains("limit")
    }
}

impl From<GatewayError> for RequestError {
    fn from(error: GatewayError) -> Self {
        let names_key_limit = error.names_key_limit();
        let GatewayError {
            status,
            message,
            reasons,
            retry_after,
        } = error;
        match status {
            401 => Self::KeyRejected,
            402 | 403 if names_key_limit => Self::KeyLimitReached { message },
            402 => Self::InsufficientCredits { message },
            403 => Self::Refused { message, reasons },
            429 => Self::RateLimited {
                retry_after,
                message,
            },
            503 => Self::Unavailable {
                retry_after,
                message,
            },
            _ => Self::Status { status, message },
        }
    }
}

/// The parts of ModelGates' error object this crate reads; whatever else it holds is ignored.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    metadata: Option<ErrorMetadata>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ErrorMetadata {
    #[serde(default)]
    reasons: Vec<serde_json::Value>,
}

impl ErrorDetail {
    /// The error object of `{"error": {...}}`; empty when the body is not one.
    fn read(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: ErrorDetail,
        }
        serde_json::from_slice::<Envelope>(body)
            .map(|envelope| envelope.error)
            .unwrap_or_default()
    }

    /// Moderation's reasons, made safe to display: the strings among the first few.
    fn reasons(&self) -> Vec<String> {
        const MAX_REASONS: usize = 8;
        const MAX_REASON_CHARS: usize = 100;
        self.metadata
            .iter()
            .flat_map(|metadata| &metadata.reasons)
            .filter_map(serde_json::Value::as_str)
            .filter(|reason| !reason.trim().is_empty())
            .take(MAX_REASONS)
            .map(|reason| sanitize(reason, MAX_REASON_CHARS))
            .collect()
    }
}

/// ModelGates' error message from `{"error": {"message": "..."}}`, made safe to display.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    displayable(status, ErrorDetail::read(body).message.as_deref())
}

/// ModelGates' message made safe to display, or the status's reason phrase without one.
fn displayable(status: u16, message: Option<&str>) -> String {
    match message.filter(|m| !m.trim().is_empty()) {
        Some(message) => sanitize(message, MAX_MESSAGE_CHARS),
        None => StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("no reason given")
            .to_owned(),
    }
}

/// The most characters of ModelGates' message kept.
const MAX_MESSAGE_CHARS: usize = 300;

/// `text` without control characters, cut to `max_chars` (with an ellipsis).
fn sanitize(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars + 1)
        .collect();
    if cleaned.chars().count() > max_chars {
        let mut cut: String = cleaned.chars().take(max_chars).collect();
        cut.push('…');
        cut
    } else {
        cleaned
    }
}

/// The connection-level cause of [`RequestError::Transport`], as an opaque error.
pub struct TransportError(Box<dyn std::error::Error + Send + Sync>);

impl TransportError {
    pub(crate) fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
