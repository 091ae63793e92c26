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
    /// 403 saying the key's spend limit is reached. The user can act on it: raise the key's
    /// limit on ModelGates (see `ModelGatesKey::manage_url` in modelgates-axum).
    #[error("the key's spend limit is reached ({message}); raise it on ModelGates")]
    KeyLimitReached {
        /// ModelGates' message.
        message: String,
    },
    /// 429: too many calls; `retry_after` is how long ModelGates asked to wait, when it said.
    #[error("ModelGates is rate limiting these calls ({message}); try again {}", wait_text(.retry_after))]
    RateLimited {
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

fn wait_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("in {} s", wait.as_secs().max(1)),
        None => "in a moment".to_owned(),
    }
}

/// What ModelGates answered when it refused a call: the status, and the message of its error
/// body `{"error": {"code": <status, integer or string>, "message": …, "metadata": …}}`
/// (stripped of control characters, at most 300 characters), with its `Retry-After`.
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
    /// How long ModelGates asked to wait before trying again.
    pub retry_after: Option<Duration>,
}

impl GatewayError {
    /// The error of an answer with `status`, `body` and `Retry-After`.
    #[must_use]
    pub(crate) fn from_answer(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        Self {
            status,
            message: error_message(status, body),
            retry_after,
        }
    }

    /// The error of a refusal whose message was read already (`None`: none given).
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn with_message(status: u16, message: Option<&str>) -> Self {
        Self {
            status,
            message: displayable(status, message),
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
        let message = error.get("message").and_then(serde_json::Value::as_str);
        Some(Self::with_message(status, message))
    }

    /// Whether ModelGates said the key's spend limit is reached (a 403 whose message names
    /// the limit).
    fn is_key_limit(&self) -> bool {
        self.status == 403 && self.message.to_ascii_lowercase().contains("limit")
    }
}

impl From<GatewayError> for RequestError {
    fn from(error: GatewayError) -> Self {
        let GatewayError {
            status,
            message,
            retry_after,
        } = error.clone();
        match status {
            401 => Self::KeyRejected,
            402 => Self::InsufficientCredits { message },
            403 if error.is_key_limit() => Self::KeyLimitReached { message },
            429 => Self::RateLimited {
                retry_after,
                message,
            },
            _ => Self::Status { status, message },
        }
    }
}

/// ModelGates' error message from `{"error": {"message": "..."}}`, made safe to display.
pub(crate) fn error_message(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        message: Option<String>,
    }
    let message = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error.message);
    displayable(status, message.as_deref())
}

/// ModelGates' message made safe to display, or the status's reason phrase without one.
fn displayable(status: u16, message: Option<&str>) -> String {
    match message.filter(|m| !m.trim().is_empty()) {
        Some(message) => sanitize(message),
        None => StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("no reason given")
            .to_owned(),
    }
}

fn sanitize(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    let cleaned: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS + 1)
        .collect();
    if cleaned.chars().count() > MAX_CHARS {
        let mut cut: String = cleaned.chars().take(MAX_CHARS).collect();
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
