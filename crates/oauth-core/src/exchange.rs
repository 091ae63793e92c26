//! Step 2 of the flow: exchange the `code` from the callback for a user-controlled key.
//!
//! `POST {base}/api/v1/auth/keys` with JSON `{code, code_verifier, code_challenge_method}`;
//! verifier and method are left out when no challenge was used. The answer
//! `{"key": "...", "user_id": "..." | null}` becomes an [`IssuedKey`]; an `expires_at` (RFC 3339
//! or seconds since the Unix epoch), when ModelGates sends one, says when the key stops working.
//!
//! How answers map to [`ExchangeError`]:
//!
//! | answer | error |
//! | --- | --- |
//! | 400 whose message names `code_challenge_method` | [`ExchangeError::InvalidChallengeMethod`] |
//! | 403, or a 400 whose message names the code | [`ExchangeError::CodeRejected`] (expired and reused codes land here) |
//! | 405 | [`ExchangeError::MethodNotAllowed`] |
//! | any other non-2xx | [`RequestError::Status`], with ModelGates' own `error.message` |
//! | 2xx that is not JSON, whose `key` is missing or not a key's text (16 to 512 characters of `A-Z a-z 0-9 - . _ ~ + / =`, the characters a bearer token may hold), or whose `user_id` is over 256 characters or holds a control character | [`RequestError::MalformedResponse`] |
//! | no answer in time | [`RequestError::Timeout`] |
//! | connection refused, reset or dropped mid-answer | [`RequestError::Transport`] |
//!
//! The last four arrive as [`ExchangeError::Request`].
//!
//! Neither the verifier nor the key appears in any error.

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::RequestError;
use crate::error::error_message;
use crate::{ApiKey, ChallengeMethod, ModelGatesClient, Pkce};

/// The largest exchange answer read; a key answer is well under 1 KiB.
const MAX_EXCHANGE_BODY: usize = 64 * 1024;

/// What a successful exchange yields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedKey {
    /// The user-controlled API key.
    pub key: ApiKey,
    /// ModelGates' id of the user, when it sends one.
    pub user_id: Option<String>,
    /// When the key stops working, in seconds since the Unix epoch, when ModelGates says.
    pub expires_at: Option<u64>,
}

#[derive(Serialize)]
struct ExchangeBody<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_verifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_challenge_method: Option<ChallengeMethod>,
}

#[derive(Deserialize)]
struct ExchangeAnswer {
    key: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    expires_at: Option<serde_json::Value>,
}

/// A time as ModelGates may write it: RFC 3339 text or seconds since the Unix epoch.
pub(crate) fn unix_seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(seconds) => seconds.as_u64(),
        serde_json::Value::String(text) => {
            let time =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .ok()?;
            u64::try_from(time.unix_timestamp()).ok()
        }
        _ => None,
    }
}

impl ModelGatesClient {
    /// Exchanges an authorization code for the user's key.
    ///
    /// `pkce` holds the verifier and method of the challenge sent in the `/auth` URL; `None`
    /// when no challenge was sent.
    ///
    /// # Errors
    ///
    /// See the module documentation for how each answer maps to an [`ExchangeError`].
    ///
    /// ```no_run
    /// # async fn run(code: &str, pkce: modelgates_oauth_core::Pkce) {
    /// use modelgates_oauth_core::{ExchangeError, ModelGatesClient};
    ///
    /// let client = ModelGatesClient::new().unwrap();
    /// match client.exchange_code(code, Some(&pkce)).await {
    ///     Ok(issued) => println!("signed in, key {}", issued.key.masked()),
    ///     Err(ExchangeError::CodeRejected { .. }) => println!("code expired or reused: sign in again"),
    ///     Err(other) => println!("{other}"),
    /// }
    /// # }
    /// ```
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce: Option<&Pkce>,
    ) -> Result<IssuedKey, ExchangeError> {
        let body = ExchangeBody {
            code,
            code_verifier: pkce.map(|pkce| pkce.verifier().expose_secret()),
            code_challenge_method: pkce.map(Pkce::method),
        };
        let answer = self
            .post_json(&self.inner.keys_url, &body, MAX_EXCHANGE_BODY)
            .await?;
        tracing::debug!(
            status = answer.status.as_u16(),
            "ModelGates answered the key exchange"
        );
        if !answer.status.is_success() {
            return Err(classify_failure(answer.status, &answer.body));
        }
        let malformed = |what: &str| RequestError::MalformedResponse(what.to_owned()).into();
        let parsed: ExchangeAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| malformed("the answer is not the documented JSON object"))?;
        let key = match parsed.key {
            Some(key) if is_key_text(&key) => key,
            Some(key) if !key.is_empty() => {
                return Err(malformed("the answer's key is not a key's text"));
            }
            _ => return Err(malformed("the answer holds no key")),
        };
        if parsed.user_id.as_deref().is_some_and(|id| !is_user_id(id)) {
            return Err(malformed("the answer's user_id is not an id"));
        }
        Ok(IssuedKey {
            key: ApiKey::new(key),
            user_id: parsed.user_id,
            expires_at: parsed.expires_at.as_ref().and_then(unix_seconds),
        })
    }
}

/// Whether `key` can be a key: 16 to 512 characters a bearer token may hold (RFC 6750's
/// `b64token`). Anything else (markup, spaces, a megabyte) is a gateway's fault or a hostile
/// one, and would go into headers, pages and stores.
fn is_key_text(key: &str) -> bool {
    (16..=512).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

/// Whether `id` can be a user id: at most 256 characters, none of them a control character.
fn is_user_id(id: &str) -> bool {
    id.chars().count() <= 256 && !id.chars().any(char::is_control)
}

fn classify_failure(status: StatusCode, body: &[u8]) -> ExchangeError {
    let message = error_message(status.as_u16(), body);
    let lower = message.to_ascii_lowercase();
    match status {
        StatusCode::BAD_REQUEST if lower.contains("code_challenge_method") => {
            ExchangeError::InvalidChallengeMethod { message }
        }
        StatusCode::BAD_REQUEST if lower.contains("code") => ExchangeError::CodeRejected {
            status: status.as_u16(),
            message,
        },
        StatusCode::FORBIDDEN => ExchangeError::CodeRejected {
            status: status.as_u16(),
            message,
        },
        StatusCode::METHOD_NOT_ALLOWED => ExchangeError::MethodNotAllowed,
        _ => RequestError::Status {
            status: status.as_u16(),
            message,
        }
        .into(),
    }
}

/// Why a key exchange failed. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// 400 `Invalid code_challenge_method`.
    #[error(
        "ModelGates refused the code_challenge_method ({message}): use the same method in the \
         key exchange as in the /auth URL"
    )]
    InvalidChallengeMethod {
        /// ModelGates' message.
        message: String,
    },
    /// 403 `Invalid code or code_verifier`, or a 400 naming the code: unknown, expired, reused,
    /// or redeemed with the wrong verifier.
    #[error(
        "ModelGates rejected the code or code_verifier ({status}: {message}): codes are \
         single-use and expire after about 10 minutes; send the user through sign-in again"
    )]
    CodeRejected {
        /// 403, or 400.
        status: u16,
        /// ModelGates' message.
        message: String,
    },
    /// 405 `Method Not Allowed`.
    #[error(
        "ModelGates answered 405 Method Not Allowed: the exchange must be a POST over HTTPS; \
         check that the base URL is not redirected or proxied into a GET"
    )]
    MethodNotAllowed,
    /// Any other failure: another status, a timeout, a broken connection, a malformed answer.
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl ExchangeError {
    /// Whether the code itself was refused, so the user must start sign-in again.
    #[must_use]
    pub fn is_code_rejected(&self) -> bool {
        matches!(self, Self::CodeRejected { .. })
    }

    /// What kind of failure this is, for an adapter to choose its answer (a status, a page,
    /// an exit code): the crate says what happened, not how to answer it.
    #[must_use]
    pub fn kind(&self) -> ExchangeFailure {
        match self {
            Self::CodeRejected { .. } => ExchangeFailure::InvalidCode,
            Self::InvalidChallengeMethod { .. } => ExchangeFailure::ChallengeMethodRefused,
            Self::MethodNotAllowed => ExchangeFailure::GatewayMisrouted,
            Self::Request(RequestError::Timeout) => ExchangeFailure::Timeout,
            Self::Request(_) => ExchangeFailure::GatewayDown,
        }
    }

    /// A stable machine-readable code for the failure, as the adapters of this workspace
    /// report it: `code_rejected` ([`ExchangeFailure::InvalidCode`]), `upstream_timeout`
    /// ([`ExchangeFailure::Timeout`]) or `upstream_error` (anything ModelGates got wrong).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self.kind() {
            ExchangeFailure::InvalidCode => "code_rejected",
            ExchangeFailure::Timeout => "upstream_timeout",
            _ => "upstream_error",
        }
    }
}

/// The kind of a failed key exchange ([`ExchangeError::kind`]): what happened, so that each
/// adapter chooses its own answer. The axum layer answers 400 for
/// [`InvalidCode`](Self::InvalidCode) (the callback request is no good: sign in again), 504
/// for [`Timeout`](Self::Timeout) and 502 for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExchangeFailure {
    /// ModelGates refused the code or the verifier: unknown, expired, reused, or redeemed with
    /// another verifier. The user must start the sign-in again.
    InvalidCode,
    /// ModelGates refused the challenge method: the app's exchange and its `/auth` URL
    /// disagree.
    ChallengeMethodRefused,
    /// ModelGates answered 405: the exchange did not reach it as a `POST` (a redirect or a
    /// proxy in between).
    GatewayMisrouted,
    /// ModelGates did not answer within the exchange timeout.
    Timeout,
    /// ModelGates could not be reached, failed, or answered what the protocol does not allow.
    GatewayDown,
}
