//! Fault injection: make an endpoint fail the way a real service sometimes does.
//!
//! A fault is checked when a request arrives, before the endpoint does anything else, so a
//! faulted key exchange does not consume its code (except [`Fault::Delay`], which waits and
//! then behaves normally).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::refusals::api_error;

/// The endpoints faults can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /auth` (and the consent form behind it).
    Auth,
    /// `POST /api/v1/auth/keys`.
    Keys,
    /// `POST /api/v1/chat/completions`.
    Chat,
    /// `GET /api/v1/key`.
    KeyInfo,
    /// `GET /api/v1/models`.
    Models,
}

/// A way for an endpoint to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer this status with the documented error body.
    Status(u16),
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Answer 200 with well-formed JSON lacking the expected field (`key` for the exchange,
    /// `choices` for chat).
    MissingKey,
    /// Wait this long, then behave normally: longer than a client's timeout, it is a timeout.
    Delay(Duration),
    /// Start a 200 answer, then drop the connection in the middle of the body.
    DropConnection,
    /// A streamed completion waits this long before each chunk (other answers are unchanged).
    SlowStream(Duration),
    /// A streamed completion sends its first text chunk, then nothing more, keeping the
    /// connection open until the client gives up.
    StallStream,
    /// 402 `Insufficient credits`, as for a person without credits.
    InsufficientCredits,
    /// 403 `Key limit exceeded`, as a gateway that answers a spent key limit with 403 does.
    KeyLimitExceeded,
    /// 402 naming the key's limit, as OpenRouter (and the emulator's own rules) answer a key
    /// past its spend limit.
    KeyLimitSpent,
    /// 403 from a guardrail of the account: a refusal that is not about money.
    GuardrailBlocked,
    /// 403 from moderation, with these reasons in `error.metadata.reasons`.
    ModerationFlagged(Vec<String>),
    /// 429 `Rate limit exceeded` with `Retry-After` of this long (whole seconds).
    RateLimited(Duration),
    /// 503 `Service unavailable` with `Retry-After` of this long (whole seconds), as when the
    /// gateway or the provider behind it is down for a while.
    Unavailable(Duration),
    /// A streamed completion sends its first text chunk, then the gateway's error chunk (an
    /// `error` object with this `code` and `finish_reason: "error"`), then `[DONE]`, as a
    /// gateway does when a call fails midway. Other answers are unchanged.
    StreamFailsMidway(u16),
    /// A streamed completion sends its first text chunk, then moderation's error chunk (code
    /// 403, `metadata.reasons` `["harassment"]`), then `[DONE]`.
    StreamFlaggedMidway,
}

/// What the endpoint does after consulting the faults.
pub(crate) enum Outcome {
    /// Answer this instead of doing the work.
    Answer(Response),
    /// Do the work (after any injected delay has passed), at this stream pace.
    Proceed(StreamPace),
}

/// How a streamed completion is paced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum StreamPace {
    /// As fast as possible.
    #[default]
    Normal,
    /// This long before each chunk.
    Slow(Duration),
    /// The first text chunk, then silence.
    Stall,
    /// The first text chunk, then the gateway's error chunk with this code.
    FailMidway(u16),
    /// The first text chunk, then moderation's error chunk.
    FlaggedMidway,
}

/// What an endpoint is told to do.
enum Plan {
    /// This fault on every request.
    Always(Fault),
    /// These faults on the next requests, one each, in turn; then normal again.
    InTurn(VecDeque<Fault>),
}

#[derive(Default)]
pub(crate) struct Faults {
    plans: Mutex<HashMap<Endpoint, Plan>>,
}

impl Faults {
    pub(crate) fn always(&self, endpoint: Endpoint, fault: Fault) {
        self.lock().insert(endpoint, Plan::Always(fault));
    }

    pub(crate) fn in_turn(&self, endpoint: Endpoint, faults: VecDeque<Fault>) {
        let mut plans = self.lock();
        if faults.is_empty() {
            plans.remove(&endpoint);
        } else {
            plans.insert(endpoint, Plan::InTurn(faults));
        }
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Endpoint, Plan>> {
        self.plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut plans = self.lock();
        match plans.get_mut(&endpoint)? {
            Plan::Always(fault) => Some(fault.clone()),
            Plan::InTurn(faults) => {
                let fault = faults.pop_front();
                if faults.is_empty() {
                    plans.remove(&endpoint);
                }
                fault
            }
        }
    }

    /// Applies the fault planned for `endpoint`, if any.
    pub(crate) async fn apply(&self, endpoint: Endpoint) -> Outcome {
        let Some(fault) = self.take(endpoint) else {
            return Outcome::Proceed(StreamPace::Normal);
        };
        tracing::info!(?endpoint, ?fault, "injecting fault");
        match fault {
            Fault::Delay(delay) => {
                tokio::time::sleep(delay).await;
                Outcome::Proceed(StreamPace::Normal)
            }
            Fault::SlowStream(pause) => Outcome::Proceed(StreamPace::Slow(pause)),
            Fault::StallStream => Outcome::Proceed(StreamPace::Stall),
            Fault::StreamFailsMidway(code) => Outcome::Proceed(StreamPace::FailMidway(code)),
            Fault::StreamFlaggedMidway => Outcome::Proceed(StreamPace::FlaggedMidway),
            Fault::InsufficientCredits => Outcome::Answer(crate::refusals::insufficient_credits()),
            Fault::KeyLimitExceeded => Outcome::Answer(crate::refusals::key_limit_exceeded()),
            Fault::KeyLimitSpent => Outcome::Answer(crate::refusals::key_limit_spent()),
            Fault::GuardrailBlocked => Outcome::Answer(crate::refusals::guardrail_blocked()),
            Fault::ModerationFlagged(reasons) => {
                Outcome::Answer(crate::refusals::moderation_flagged(&reasons))
            }
            Fault::RateLimited(wait) => Outcome::Answer(crate::refusals::rate_limited(wait)),
            Fault::Unavailable(wait) => Outcome::Answer(crate::refusals::unavailable(wait)),
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = status.canonical_reason().unwrap_or("Injected failure");
                Outcome::Answer(api_error(status, message))
            }
            Fault::MalformedJson => Outcome::Answer(
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"key\": \"sk-mg-v1-trunc",
                )
                    .into_response(),
            ),
            Fault::MissingKey => {
                let body = match endpoint {
                    Endpoint::Chat => {
                        serde_json::json!({"id": "chatcmpl-fault", "object": "chat.completion"})
                    }
                    _ => serde_json::json!({"user_id": "user_fault"}),
                };
                Outcome::Answer(axum::Json(body).into_response())
            }
            Fault::DropConnection => Outcome::Answer(dropped_mid_body()),
        }
    }
}

/// A 200 whose body stream fails after its first bytes: the server aborts the connection.
fn dropped_mid_body() -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"key\": \"sk-mg-v1-")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection drop",
        )),
    ];
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("a static response builds")
}
