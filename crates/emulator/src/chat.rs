//! `POST /api/v1/chat/completions`: OpenAI-shaped completions with an issued key.
//!
//! Rules: any method but POST is a 405; the `Authorization: Bearer` key must be one this
//! emulator issued and did not revoke, and the call must pass the rate limit, the owner's
//! credits and the key's limit (401, 429, 402, 403 otherwise, in the gateway's error shape
//! `{"error": {"code": <status>, "message": …}}`; see the `account` rules); the body must hold
//! `model` and a non-empty `messages` (400 otherwise). The answer depends only on the input, so tests can assert it:
//!
//! * with `tools` and a last message from the user, the model calls the first tool with
//!   `{"text": <that message>}` (`finish_reason: "tool_calls"`);
//! * after a `tool` message, it answers `"[model] The tool said: <its content>"`;
//! * otherwise `"[model] You said: <last user message>"`, or the builder's reply function.
//!
//! Every answer follows ModelGates' published schema (OpenRouter's OpenAPI document, the
//! revision the emulator's README names), which the official SDKs validate: completions carry
//! `id`, `object`, `created`, `model`, `system_fingerprint` (`null`),
//! `choices[].message.{role, content, refusal}` (`tool_calls` only when the model calls one),
//! `finish_reason`, `logprobs` and `usage` (tokens, `cost` in credits, `is_byok`). A field
//! the schema has as optional is left out rather than sent as `null`: chunks carry `usage`
//! only in the last one, and no `system_fingerprint`. A stream that fails midway ends with a
//! chunk whose `error` has the integer `code`, the `message` and `metadata.error_type`.
//!
//! `stream: true` answers server-sent events: a keep-alive comment first
//! (`: MODELGATES PROCESSING`, as gateways send while a model thinks), a role chunk, one chunk
//! per word, a last chunk with the finish reason and usage, then `data: [DONE]`. A streamed
//! tool call is split the way OpenAI and the gateways send it: a first delta with the call's
//! `index`, `id`, `type` and function `name` (arguments empty), then the arguments in pieces of
//! [`TOOL_ARGUMENT_PIECE`] characters, each delta naming only the `index`; a client must join
//! them by index. Each completion is charged to its key ([`PRICE_PER_TOKEN`]). A stream the
//! client drops before its end is counted ([`Emulator::streams_cancelled`]).
//!
//! [`PRICE_PER_TOKEN`]: crate::PRICE_PER_TOKEN
//! [`Emulator::streams_cancelled`]: crate::Emulator::streams_cancelled

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::{Endpoint, Outcome, StreamPace};
use crate::refusals::api_error;
use crate::state::Shared;

/// A chat request as the emulator read it: what a custom reply function sees.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[non_exhaustive]
pub struct ChatInput {
    /// The requested model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// Whether server-sent events were asked for.
    #[serde(default)]
    pub stream: bool,
    /// The tools offered to the model, as sent.
    #[serde(default)]
    pub tools: Vec<Value>,
}

/// One message of a [`ChatInput`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct InputMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text: a string as sent, the text parts of a content array joined, or empty.
    #[serde(default, deserialize_with = "text_of")]
    pub content: String,
}

/// OpenAI content is a string, an array of parts, or null.
fn text_of<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = <Option<Value> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(match value {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    })
}

impl ChatInput {
    /// The emulator's default reply: `"[model] You said: <last user message>"`.
    #[must_use]
    pub fn default_reply(&self) -> String {
        format!("[{}] You said: {}", self.model, self.last("user"))
    }

    fn last(&self, role: &str) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == role)
            .map_or("", |m| m.content.as_str())
    }

    /// The tool the model calls, when it calls one: the first tool offered, after a user turn.
    fn tool_to_call(&self) -> Option<&str> {
        let last = self.messages.last()?;
        if last.role != "user" {
            return None;
        }
        self.tools.first()?.pointer("/function/name")?.as_str()
    }
}

/// What the model answers.
enum Answer {
    Text(String),
    ToolCall { name: String, arguments: String },
}

impl Answer {
    fn tokens(&self) -> usize {
        match self {
            Self::Text(text) => text.split_whitespace().count(),
            Self::ToolCall { .. } => 1,
        }
    }

    fn finish_reason(&self) -> &'static str {
        match self {
            Self::Text(_) => "stop",
            Self::ToolCall { .. } => "tool_calls",
        }
    }
}

pub(crate) async fn completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = complete(&shared, method, &headers, body).await;
    let rate_limits = bearer(&headers).and_then(|key| shared.accounts.rate_limit_headers(key));
    for (name, value) in rate_limits.into_iter().flatten() {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}

async fn complete(
    shared: &Arc<Shared>,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return api_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    shared.record_chat();
    let Some(key) = bearer(headers).filter(|k| shared.accounts.live_key(k).is_some()) else {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    };
    tracing::debug!(key = %mask(key), "chat completion");
    let pace = match shared.faults.apply(Endpoint::Chat).await {
        Outcome::Answer(response) => return response,
        Outcome::Proceed(pace) => pace,
    };
    if let Some(refusal) = shared.accounts.refusal(key) {
        return refusal;
    }
    let input = match serde_json::from_slice::<ChatInput>(&body) {
        Ok(input) if !input.messages.is_empty() => input,
        _ => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "Invalid request body: expected {model, messages: [{role, content}]}",
            );
        }
    };
    if !shared.completion_delay.is_zero() {
        tokio::time::sleep(shared.completion_delay).await;
    }
    let answer = if let Some(name) = input.tool_to_call() {
        Answer::ToolCall {
            name: name.to_owned(),
            arguments: json!({"text": input.last("user")}).to_string(),
        }
    } else if input.messages.last().is_some_and(|m| m.role == "tool") {
        Answer::Text(format!(
            "[{}] The tool said: {}",
            input.model,
            input.last("tool")
        ))
    } else {
        Answer::Text(
            shared
                .reply
                .as_ref()
                .map_or_else(|| input.default_reply(), |f| f(&input)),
        )
    };
    let usage = usage(&input, &answer);
    shared
        .accounts
        .charge(key, usage["cost"].as_f64().unwrap_or(0.0));
    if input.stream {
        stream_answer(shared, &input.model, &answer, &usage, pace)
    } else {
        Json(completion(&input.model, &answer, &usage)).into_response()
    }
}

/// The Bearer key of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn usage(input: &ChatInput, answer: &Answer) -> Value {
    let prompt_tokens: usize = input
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count())
        .sum();
    let completion_tokens = answer.tokens();
    let total_tokens = prompt_tokens + completion_tokens;
    #[allow(clippy::cast_precision_loss)] // token counts are small
    let cost = total_tokens as f64 * crate::PRICE_PER_TOKEN;
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total_tokens,
        "cost": cost,
        "is_byok": false
    })
}

/// The longest piece of a streamed tool call's arguments, in characters.
pub(crate) const TOOL_ARGUMENT_PIECE: usize = 8;

/// The deltas of a streamed tool call: its header (name, empty arguments), then its arguments
/// in pieces, each naming only the call's index.
fn tool_call_deltas(name: &str, arguments: &str) -> Vec<Value> {
    let header = json!({"tool_calls": [{
        "index": 0,
        "id": "call_emulator_0",
        "type": "function",
        "function": {"name": name, "arguments": ""}
    }]});
    let chars: Vec<char> = arguments.chars().collect();
    let pieces = chars.chunks(TOOL_ARGUMENT_PIECE).map(|piece| {
        let piece: String = piece.iter().collect();
        json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    });
    std::iter::once(header).chain(pieces).collect()
}

fn tool_calls(name: &str, arguments: &str) -> Value {
    json!([{
        "index": 0,
        "id": "call_emulator_0",
        "type": "function",
        "function": {"name": name, "arguments": arguments}
    }])
}

fn completion(model: &str, answer: &Answer, usage: &Value) -> Value {
    let message = match answer {
        Answer::Text(text) => {
            json!({"role": "assistant", "content": text, "refusal": null})
        }
        Answer::ToolCall { name, arguments } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": tool_calls(name, arguments)
        }),
    };
    json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": answer.finish_reason(),
            "logprobs": null
        }],
        "usage": usage
    })
}

/// One chunk of a stream. `usage` is left out, not `null`, when there is none: the published
/// schema has it as an object or absent, and strict clients refuse `null`.
fn chunk(model: &str, delta: &Value, finish: Option<&str>, usage: Option<&Value>) -> Bytes {
    let mut event = json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
    });
    if let Some(usage) = usage {
        event["usage"] = usage.clone();
    }
    Bytes::from(format!("data: {event}\n\n"))
}

/// The chunks of a streamed answer, after the keep-alive and before `[DONE]`.
fn chunks(model: &str, answer: &Answer, usage: &Value) -> Vec<Bytes> {
    let mut chunks = vec![chunk(model, &json!({"role": "assistant"}), None, None)];
    match answer {
        Answer::Text(text) => chunks.extend(
            text.split_inclusive(' ')
                .map(|piece| chunk(model, &json!({"content": piece}), None, None)),
        ),
        Answer::ToolCall { name, arguments } => chunks.extend(
            tool_call_deltas(name, arguments)
                .iter()
                .map(|delta| chunk(model, delta, None, None)),
        ),
    }
    chunks.push(chunk(
        model,
        &json!({}),
        Some(answer.finish_reason()),
        Some(usage),
    ));
    chunks
}

/// The chunk a gateway sends when a streamed call fails midway: its error (with the
/// published schema's `metadata.error_type`), and `finish_reason: "error"`.
fn error_chunk(code: u16) -> Bytes {
    let (message, error_type) = match code {
        402 => (
            "Insufficient credits. Add more credits to your ModelGates account to continue.",
            "payment_required",
        ),
        403 => ("Key limit exceeded", "permission_denied"),
        429 => ("Rate limit exceeded", "rate_limit_exceeded"),
        _ => (
            "The provider failed while answering",
            "provider_unavailable",
        ),
    };
    failing_chunk(&json!({
        "code": code,
        "message": message,
        "metadata": {"error_type": error_type}
    }))
}

/// Moderation's mid-stream refusal: code 403 with what it flagged.
fn flagged_chunk() -> Bytes {
    failing_chunk(&json!({
        "code": 403,
        "message": "The output was flagged by moderation.",
        "metadata": {
            "error_type": "content_policy_violation",
            "reasons": ["harassment"],
            "provider_name": "emulator"
        }
    }))
}

/// The chunk that ends a stream with `error` and `finish_reason: "error"`.
fn failing_chunk(error: &Value) -> Bytes {
    let event = json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "emulator",
        "error": error,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    });
    Bytes::from(format!("data: {event}\n\n"))
}

/// Counts the stream as cancelled if it is dropped before its last chunk was sent.
struct CancelWatch {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.record_stream_cancelled();
        }
    }
}

fn stream_answer(
    shared: &Arc<Shared>,
    model: &str,
    answer: &Answer,
    usage: &Value,
    pace: StreamPace,
) -> Response {
    let chunks = chunks(model, answer, usage);
    let watch = CancelWatch {
        shared: shared.clone(),
        finished: false,
    };
    let body = futures_util::stream::unfold(
        (chunks.into_iter().enumerate(), watch, false),
        move |(mut chunks, mut watch, done)| async move {
            if done {
                return None;
            }
            let Some((index, chunk)) = chunks.next() else {
                watch.finished = true;
                let end = Bytes::from_static(b"data: [DONE]\n\n");
                return Some((Ok::<_, Infallible>(end), (chunks, watch, true)));
            };
            match pace {
                StreamPace::Normal => {}
                StreamPace::Slow(pause) => tokio::time::sleep(pause).await,
                // The role chunk and the first text chunk go out; then nothing, ever.
                StreamPace::Stall if index >= 2 => {
                    std::future::pending::<()>().await;
                }
                StreamPace::Stall => {}
                // The role chunk and the first text chunk go out; then the error, then the end.
                StreamPace::FailMidway(_) | StreamPace::FlaggedMidway if index >= 2 => {
                    watch.finished = true;
                    let failed = match pace {
                        StreamPace::FailMidway(code) => error_chunk(code),
                        _ => flagged_chunk(),
                    };
                    return Some((
                        Ok(failed),
                        (Vec::new().into_iter().enumerate(), watch, false),
                    ));
                }
                StreamPace::FailMidway(_) | StreamPace::FlaggedMidway => {}
            }
            Some((Ok(chunk), (chunks, watch, false)))
        },
    );
    let keep_alive = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b": MODELGATES PROCESSING\n\n"))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(futures_util::StreamExt::chain(keep_alive, body)),
    )
        .into_response()
}

/// The first 12 characters of a key, for logs.
pub(crate) fn mask(key: &str) -> String {
    format!("{}…", key.chars().take(12).collect::<String>())
}
