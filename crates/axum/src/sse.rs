//! Relaying a streamed completion to a browser as server-sent events (feature `openai`), as
//! [`ModelGatesKey::stream_chat`](crate::ModelGatesKey::stream_chat) does.
//!
//! ```
//! use axum::{Json, Router, routing::post};
//! use modelgates_axum::ModelGatesKey;
//! use modelgates_axum::ApiError;
//! use modelgates_axum::oauth_core::async_openai::types::chat::{
//!     ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
//! };
//!
//! async fn chat(key: ModelGatesKey) -> Result<impl axum::response::IntoResponse, ApiError> {
//!     let request = CreateChatCompletionRequestArgs::default()
//!         .model("openai/gpt-5.2")
//!         .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
//!         .build()?;
//!     key.stream_chat(request).await // text/event-stream, token by token
//! }
//!
//! let app: Router = Router::new().route("/chat", post(chat));
//! ```
//!
//! The events, in order:
//!
//! * each piece of text as it arrives: an unnamed event whose data is `{"delta": "<text>"}`;
//! * the tool calls the model makes, whole: `event: tool_call` once, before the end, data the
//!   array of calls `[{"index", "id", "type": "function", "function": {"name", "arguments"}}]`.
//!   Models stream a call in pieces (its name first, then its arguments a few characters at a
//!   time, each piece naming only the call's `index`); the relay joins them by index, so the
//!   browser gets arguments it can parse. At most 64 calls and 1 MiB of their text in all: a
//!   reply past either ends with `event: error`, code `upstream_error`;
//! * the end: `event: done`, data `{"finish_reason": "stop" | "length" | "tool_calls" | …,
//!   "usage": {"prompt_tokens", "completion_tokens", "total_tokens"} | null}`;
//! * instead of the end, when the stream fails after it started: `event: error` (and no
//!   `done`), data `{"code", "message"}`: the [`ApiError`] code of the
//!   gateway's error chunk (`insufficient_credits`, `key_limit_reached`,
//!   `refused_by_modelgates`, `rate_limited`, `upstream_unavailable`, or `upstream_error` with
//!   the gateway's own status and message), `idle_timeout` when
//!   ModelGates sent nothing for the stream idle timeout, `upstream_error` when the connection
//!   broke, `server_restarting` when the server ended its streams for a shutdown
//!   ([`OpenStreams::close_all`](crate::extract::OpenStreams::close_all)).
//!
//! A stream ModelGates refuses before its first event is no stream: `stream_chat` returns the
//! [`ApiError`], answered with its status like a plain call.
//!
//! The stream is a `modelgates.stream` span ([`observe`](crate::observe#spans)) until its
//! last event; the time to its first delta is `modelgates_stream_first_token_seconds`, and a
//! failure after the start counts in `modelgates_api_errors_total` by its code.
//!
//! Serve the app with `TCP_NODELAY` on its connections. Each event is a small write, and
//! without it Nagle's algorithm holds an event until the client acknowledges the write before
//! it, which a client's delayed ACK puts off by up to 40 ms on a kept-alive connection (the
//! `relay` program measured +42 ms to the first token). With `axum::serve`:
//!
//! ```no_run
//! use axum::serve::ListenerExt as _;
//!
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let listener = listener.tap_io(|tcp| {
//!     let _ = tcp.set_nodelay(true);
//! });
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! A comment line goes out every 15 s so proxies keep an idle connection open. When the
//! browser goes away, the response is dropped, and with it the upstream stream: the
//! connection to ModelGates is closed and the model stops spending the user's credits.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use modelgates_oauth_core::async_openai::types::chat::{
    ChatCompletionMessageToolCallChunk, ChatCompletionResponseStream, CompletionUsage,
    FinishReason, FunctionCallStream,
};
use serde_json::json;
use tracing::Instrument as _;

use crate::api_error::ApiError;
use crate::observe::Outcome;
use crate::stream_slots::StreamSlot;

/// What the relay has seen so far.
struct Relay {
    upstream: ChatCompletionResponseStream,
    /// The session's place among its open streams, freed with the relay; it also says when
    /// the server asks streams to end.
    slot: StreamSlot,
    idle_timeout: Duration,
    last_chunk: Instant,
    finish_reason: Option<FinishReason>,
    usage: Option<CompletionUsage>,
    /// The tool calls so far, joined by index.
    tool_calls: Vec<ChatCompletionMessageToolCallChunk>,
    /// The upstream stream has ended; what is left to send is the tool calls and the end.
    upstream_done: bool,
    ended: bool,
    timing: Timing,
    /// No delta relayed yet: the next one is the first token.
    awaiting_first: bool,
}

/// The span a stream is relayed in and when its request started, from
/// [`ModelGatesKey::stream_chat`](crate::ModelGatesKey::stream_chat).
pub(crate) struct Timing {
    pub(crate) span: tracing::Span,
    pub(crate) started: Instant,
}

/// The `modelgates.stream` span of a stream for `model`; the rest is recorded as it goes.
pub(crate) fn stream_span(model: &str) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(
        "modelgates.stream",
        "gen_ai.operation.name" = "chat",
        "gen_ai.request.model" = model,
        "gen_ai.response.finish_reasons" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        outcome = Empty,
        "error.type" = Empty,
    )
}

impl Drop for Relay {
    fn drop(&mut self) {
        if !self.ended {
            // The browser went away: the response, and with it the upstream stream, dropped.
            self.timing
                .span
                .record("outcome", Outcome::ClientGone.as_str());
        }
    }
}

impl Relay {
    /// The next event to send, or `None` once the end (or an error) was sent.
    async fn next_event(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            let item = if self.upstream_done {
                None
            } else {
                tokio::select! {
                    item = self.upstream.next() => item,
                    () = self.slot.closed() => {
                        let restarting = ApiError::ServerRestarting.counted();
                        return Some(self.failed(restarting.code(), &restarting.to_string()));
                    }
                }
            };
            let Some(item) = item else {
                self.upstream_done = true;
                if !self.tool_calls.is_empty() {
                    let calls = std::mem::take(&mut self.tool_calls);
                    return Some(data(Event::default().event("tool_call"), &json!(calls)));
                }
                return Some(self.done());
            };
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(error) => return Some(self.error(&error)),
            };
            self.last_chunk = Instant::now();
            self.usage = chunk.usage.or(self.usage.take());
            let Some(choice) = chunk.choices.into_iter().next() else {
                continue;
            };
            self.finish_reason = choice.finish_reason.or(self.finish_reason);
            for piece in choice.delta.tool_calls.into_iter().flatten() {
                if let Err(too_large) = join_tool_call(&mut self.tool_calls, piece) {
                    let error = ApiError::Upstream(too_large.to_owned()).counted();
                    tracing::warn!(
                        reason = too_large,
                        "a relayed stream's tool calls were refused"
                    );
                    return Some(self.failed(error.code(), &error.to_string()));
                }
            }
            match choice.delta.content {
                Some(text) if !text.is_empty() => {
                    if std::mem::take(&mut self.awaiting_first) {
                        crate::observe::first_token(self.timing.started.elapsed());
                    }
                    return Some(data(Event::default(), &json!({ "delta": text })));
                }
                _ => {}
            }
        }
    }

    /// The `done` event, the end of the stream.
    fn done(&mut self) -> Event {
        self.ended = true;
        let finish = self
            .finish_reason
            .map(|reason| serde_json::to_value(reason).unwrap_or(serde_json::Value::Null));
        let span = &self.timing.span;
        span.record("outcome", Outcome::Completed.as_str());
        if let Some(serde_json::Value::String(reason)) = &finish {
            span.record("gen_ai.response.finish_reasons", reason.as_str());
        }
        if let Some(usage) = &self.usage {
            span.record("gen_ai.usage.input_tokens", usage.prompt_tokens);
            span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
        }
        data(
            Event::default().event("done"),
            &json!({ "finish_reason": finish, "usage": self.usage }),
        )
    }

    /// The `error` event that ends a failed stream, its `code` recorded on the span (the
    /// callers count it).
    fn failed(&mut self, code: &'static str, message: &str) -> Event {
        self.ended = true;
        self.timing.span.record("outcome", Outcome::Failed.as_str());
        self.timing.span.record("error.type", code);
        data(
            Event::default().event("error"),
            &json!({ "code": code, "message": message }),
        )
    }

    fn error(&mut self, error: &modelgates_oauth_core::async_openai::error::OpenAIError) -> Event {
        // async-openai reports a stream's transport failures as text; silence as long as the
        // idle timeout before the failure is what the idle timeout looks like.
        // The gateway's own error chunk names the cause, whatever the timing.
        let said = modelgates_oauth_core::openai::gateway_error(error).is_some();
        let idle = !said && self.last_chunk.elapsed() >= self.idle_timeout;
        let (code, message) = if idle {
            (
                "idle_timeout",
                format!(
                    "ModelGates sent nothing for {} s; the answer is incomplete.",
                    self.idle_timeout.as_secs_f32()
                ),
            )
        } else {
            let error = ApiError::from_openai_ref(error);
            (error.code(), error.to_string())
        };
        tracing::warn!(code, "a relayed stream failed");
        crate::observe::api_error(code);
        self.failed(code, &message)
    }
}

/// The most tool calls one streamed reply may make.
const MAX_TOOL_CALLS: usize = 64;
/// The most bytes of arguments the tool calls of one streamed reply may hold in all.
const MAX_TOOL_CALL_BYTES: usize = 1 << 20;

/// Adds a streamed piece of a tool call to the call with its index: the first piece brings the
/// id, type and name; the arguments arrive in pieces to concatenate. A gateway that sends more
/// than [`MAX_TOOL_CALLS`] calls or [`MAX_TOOL_CALL_BYTES`] of text is refused (so the search
/// by index stays short and memory bounded).
fn join_tool_call(
    calls: &mut Vec<ChatCompletionMessageToolCallChunk>,
    piece: ChatCompletionMessageToolCallChunk,
) -> Result<(), &'static str> {
    let held: usize = calls.iter().map(tool_call_bytes).sum();
    if held + tool_call_bytes(&piece) > MAX_TOOL_CALL_BYTES {
        return Err("the model's tool calls are larger than 1 MiB");
    }
    let Some(call) = calls.iter_mut().find(|call| call.index == piece.index) else {
        if calls.len() == MAX_TOOL_CALLS {
            return Err("the model made more than 64 tool calls in one reply");
        }
        calls.push(piece);
        return Ok(());
    };
    call.id = call.id.take().or(piece.id);
    call.r#type = call.r#type.take().or(piece.r#type);
    let Some(more) = piece.function else {
        return Ok(());
    };
    let function = call.function.get_or_insert(FunctionCallStream {
        name: None,
        arguments: None,
    });
    function.name = function.name.take().or(more.name);
    if let Some(arguments) = more.arguments {
        function
            .arguments
            .get_or_insert_with(String::new)
            .push_str(&arguments);
    }
    Ok(())
}

/// The text a piece of a tool call holds: its id, name and arguments.
fn tool_call_bytes(call: &ChatCompletionMessageToolCallChunk) -> usize {
    let function = call.function.as_ref();
    [
        call.id.as_deref(),
        function.and_then(|f| f.name.as_deref()),
        function.and_then(|f| f.arguments.as_deref()),
    ]
    .into_iter()
    .flatten()
    .map(str::len)
    .sum()
}

fn data(event: Event, value: &serde_json::Value) -> Event {
    event.data(value.to_string())
}

/// Relays `upstream` as server-sent events by the module's rules. `idle_timeout` is the
/// stream idle timeout the client was built with, to name an idle timeout as such.
pub(crate) fn relay(
    upstream: ChatCompletionResponseStream,
    idle_timeout: Duration,
    slot: StreamSlot,
    timing: Timing,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send> {
    let relay = Relay {
        upstream,
        slot,
        idle_timeout,
        last_chunk: Instant::now(),
        finish_reason: None,
        usage: None,
        tool_calls: Vec::new(),
        upstream_done: false,
        ended: false,
        timing,
        awaiting_first: true,
    };
    let events = futures_util::stream::unfold(relay, |mut relay| async move {
        let span = relay.timing.span.clone();
        let event = relay.next_event().instrument(span).await?;
        Some((Ok(event), relay))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(index: u32, arguments: &str) -> ChatCompletionMessageToolCallChunk {
        ChatCompletionMessageToolCallChunk {
            index,
            id: None,
            r#type: None,
            function: Some(FunctionCallStream {
                name: None,
                arguments: Some(arguments.to_owned()),
            }),
        }
    }

    #[test]
    fn a_hostile_gateways_tool_calls_are_bounded_in_number_and_size() {
        let mut calls = Vec::new();
        for index in 0..64 {
            join_tool_call(&mut calls, piece(index, "{}")).unwrap();
        }
        assert!(join_tool_call(&mut calls, piece(64, "{}")).is_err());
        join_tool_call(&mut calls, piece(3, "more")).unwrap();
        assert_eq!(calls.len(), 64, "pieces of a known call still join");

        let mut calls = Vec::new();
        let chunk = "a".repeat(64 * 1024);
        for _ in 0..15 {
            join_tool_call(&mut calls, piece(0, &chunk)).unwrap();
        }
        assert!(join_tool_call(&mut calls, piece(0, &chunk)).is_ok());
        assert!(
            join_tool_call(&mut calls, piece(0, "b")).is_err(),
            "1 MiB of arguments in all"
        );
    }
}
