//! [`RequestError`]: how a call to ModelGates failed, whichever endpoint it was.
//!
//! The transport's own error type stays private ([`TransportError`] wraps it), so a new major
//! version of the HTTP client is not a breaking change here. No message holds a key or a
//! verifier; ModelGates' own messages are stripped of control characters and cut to 300
//! characters.

use std::fmt;

/// A call to ModelGates that did not yield a usable answer. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// 401: the key was revoked or has expired; the user must sign in again.
    #[error("ModelGates rejected the key (401): it was revoked or has expired; sign in again")]
    KeyRejected,
    /// Any other non-success status, such as 402 for an account out of credit.
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
