//! [`ApiRetries`]: which failed calls made through the OpenAI-compatible API are sent again.
//!
//! The rules, for calls made with [`ModelGatesClient::openai`] and
//! [`ModelGatesClient::openai_stream`] (the key exchange and ModelGates' own endpoints are
//! never retried):
//!
//! * A **429** is retried when ModelGates' `Retry-After` (or, without one, the backoff of
//!   0.25 s, 0.5 s, 1 s, … up to 2 s) is at most [`ApiRetries::with_max_retry_after`]
//!   (default 5 s); a longer wait is returned to the app at once as a rate-limit error, so a
//!   user is told to wait instead of a request hanging in silence.
//! * A connection that could not be opened is retried after the backoff: nothing was sent.
//! * A **5xx** is retried only with [`ApiRetries::with_server_errors`]: ModelGates may have
//!   run, and charged, the call before failing, so sending it again may charge the user twice.
//! * Anything else (401, 402, 403, other 4xx, a timeout, a connection broken mid-answer) is
//!   never retried.
//! * At most [`ApiRetries::with_max_retries`] retries (default 2), so a call is sent at most
//!   three times.
//!
//! [`ModelGatesClient::openai`]: crate::ModelGatesClient::openai
//! [`ModelGatesClient::openai_stream`]: crate::ModelGatesClient::openai_stream

use std::time::Duration;

use crate::error::GatewayError;

/// Which failed API calls are sent again, by the module's rules. Set with
/// [`ModelGatesClientBuilder::api_retries`](crate::ModelGatesClientBuilder::api_retries).
///
/// ```
/// use std::time::Duration;
/// use modelgates_oauth_core::ModelGatesClient;
/// use modelgates_oauth_core::api::ApiRetries;
///
/// let client = ModelGatesClient::builder()
///     .api_retries(ApiRetries::default().with_max_retry_after(Duration::from_secs(2)))
///     .build()
///     .unwrap();
/// # let _ = client;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRetries {
    max_retries: u32,
    max_retry_after: Duration,
    server_errors: bool,
}

impl Default for ApiRetries {
    fn default() -> Self {
        Self {
            max_retries: 2,
            max_retry_after: Duration::from_secs(5),
            server_errors: false,
        }
    }
}

impl ApiRetries {
    /// No retries at all: every failure reaches the app as it happened.
    #[must_use]
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// At most `retries` retries of one call (default 2).
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest wait before a retry (default 5 s): a 429 asking for longer is returned at
    /// once.
    #[must_use]
    pub fn with_max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// Whether a 5xx is retried (default no: the call may have been charged already).
    #[must_use]
    pub fn with_server_errors(mut self, retry: bool) -> Self {
        self.server_errors = retry;
        self
    }

    /// The most retries of one call.
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// How long to wait before retry number `retried + 1` after `error`; `None`: do not.
    #[must_use]
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn wait_after(&self, error: &GatewayError, retried: u32) -> Option<Duration> {
        let retryable = error.status == 429 || (self.server_errors && error.status >= 500);
        if !retryable || retried >= self.max_retries {
            return None;
        }
        let wait = error.retry_after.unwrap_or_else(|| backoff(retried));
        (wait <= self.max_retry_after).then_some(wait)
    }

    /// How long to wait before retrying a connection that could not be opened; `None`: do
    /// not.
    #[must_use]
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) fn wait_after_connect_error(&self, retried: u32) -> Option<Duration> {
        (retried < self.max_retries).then(|| backoff(retried))
    }
}

/// 0.25 s, 0.5 s, 1 s, then 2 s.
#[cfg_attr(not(feature = "openai"), allow(dead_code))]
fn backoff(retried: u32) -> Duration {
    Duration::from_millis(250)
        .saturating_mul(2_u32.saturating_pow(retried))
        .min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, retry_after: Option<u64>) -> GatewayError {
        GatewayError {
            status,
            message: "m".into(),
            reasons: Vec::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_rules() {
        let retries = ApiRetries::default();
        assert_eq!(
            retries.wait_after(&error(429, Some(3)), 0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retries.wait_after(&error(429, Some(30)), 0),
            None,
            "too long"
        );
        assert_eq!(
            retries.wait_after(&error(429, None), 1),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retries.wait_after(&error(429, Some(1)), 2), None, "spent");
        for status in [401, 402, 403, 400, 500, 503] {
            assert_eq!(
                retries.wait_after(&error(status, Some(1)), 0),
                None,
                "{status}"
            );
        }
        let servers = retries.with_server_errors(true);
        assert_eq!(
            servers.wait_after(&error(503, Some(1)), 0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(ApiRetries::none().wait_after(&error(429, Some(1)), 0), None);
        assert_eq!(ApiRetries::none().wait_after_connect_error(0), None);
        assert_eq!(
            retries.wait_after_connect_error(0),
            Some(Duration::from_millis(250))
        );
    }
}
