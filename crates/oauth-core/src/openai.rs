//! The OpenAI-compatible API through [`async_openai`] (feature `openai`, on by default).
//!
//! ModelGates serves OpenAI's API under `{base}/api/v1`; Rust apps call such APIs with
//! `async-openai`, so this crate does not grow a client of its own. [`ModelGatesClient::openai`]
//! and [`ModelGatesClient::openai_stream`] return an `async_openai::Client` set up with that
//! base, the user's key, the attribution headers and this client's connection pool: chat,
//! streaming, tools, structured output and embeddings all come from it.
//!
//! ModelGates-only request fields go through async-openai's bring-your-own-types methods
//! (`create_byot`, `create_stream_byot`): turn on async-openai's `byot` feature in your own
//! `Cargo.toml`. It changes the typed `create_stream` too: with it on, a streamed request must
//! set `stream: true` itself, so set it always.
//!
//! The two differ only in their timeouts: `openai()` bounds each call's total time (10 minutes
//! by default), `openai_stream()` bounds the silence between chunks (60 s) and not the total.
//! [`ModelGatesClient::chat_stream`] streams a chat completion as `openai_stream()` does,
//! read by whoever polls it instead of a task of async-openai's (what the SSE relay of
//! `modelgates-axum` uses).
//!
//! Errors are ModelGates' own: a call ModelGates refuses fails with its [`GatewayError`] (status,
//! message, `Retry-After`) inside `OpenAIError::Boxed`, whatever the shape of its error body
//! (its integer `code` is not the string async-openai expects), and a stream that fails
//! midway ends with the gateway's error chunk as `OpenAIError::JSONDeserialize`.
//! [`gateway_error`] finds the [`GatewayError`] in either, and [`request_error`] turns any
//! error into the typed [`RequestError`]: out of credits, key limit reached, rate limited,
//! key rejected. Which failed calls are sent again, and how often, is [`ApiRetries`]'s to say
//! (by default: a 429 asking to wait at most 5 s, and connections that could not be opened,
//! at most twice; never a 5xx, which may have been charged already).
//!
//! ```no_run
//! use modelgates_oauth_core::async_openai::types::chat::{
//!     ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
//! };
//! use modelgates_oauth_core::{ApiKey, ModelGatesClient};
//!
//! # async fn run(key: ApiKey) -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::new()?;
//! let request = CreateChatCompletionRequestArgs::default()
//!     .model("openai/gpt-5.2")
//!     .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
//!     .build()?;
//! let reply = client.openai(&key).chat().create(request).await?;
//! println!("{:?}", reply.choices[0].message.content);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_openai::config::OpenAIConfig;
use async_openai::error::{OpenAIError, StreamError};
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{ChatCompletionResponseStream, CreateChatCompletionRequest};
use bytes::Bytes;
use eventsource_stream::Eventsource as _;
use futures_util::StreamExt as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use zeroize::Zeroizing;

use crate::error::GatewayError;
use crate::rate_limit::RateLimitHeaders;
use crate::retry::ApiRetries;
use crate::{ApiKey, ModelGatesClient, RequestError};

/// The largest error body read from ModelGates.
const MAX_ERROR_BODY: usize = 64 * 1024;

impl ModelGatesClient {
    /// An `async_openai::Client` for calls that answer whole, with `key`.
    #[must_use]
    pub fn openai(&self, key: &ApiKey) -> async_openai::Client<OpenAIConfig> {
        self.openai_over(&self.inner.http_api, key, None)
    }

    /// An `async_openai::Client` for streams (`create_stream`), with `key`: no total
    /// timeout, an idle timeout between chunks.
    #[must_use]
    pub fn openai_stream(&self, key: &ApiKey) -> async_openai::Client<OpenAIConfig> {
        self.openai_over(&self.inner.http_stream, key, None)
    }

    /// [`Self::openai`], and `report` hears the [`RateLimitHeaders`] of every answer
    /// ModelGates sends to its calls that has any (refusals included, before a retry).
    #[must_use]
    pub fn openai_reporting(
        &self,
        key: &ApiKey,
        report: impl Fn(RateLimitHeaders) + Send + Sync + 'static,
    ) -> async_openai::Client<OpenAIConfig> {
        self.openai_observed(key, rate_limits_to(report))
    }

    /// [`Self::openai_stream`], and `report` hears the [`RateLimitHeaders`] of every answer
    /// that has any, as with [`Self::openai_reporting`].
    #[must_use]
    pub fn openai_stream_reporting(
        &self,
        key: &ApiKey,
        report: impl Fn(RateLimitHeaders) + Send + Sync + 'static,
    ) -> async_openai::Client<OpenAIConfig> {
        self.openai_stream_observed(key, rate_limits_to(report))
    }

    /// [`Self::openai`], and `observe` hears every answer ModelGates sends to its calls
    /// (refusals included, each try of a retried call): its status and rate-limit headers,
    /// so that the owner of the key can act on a 401 whoever made the call.
    #[must_use]
    pub fn openai_observed(
        &self,
        key: &ApiKey,
        observe: impl Fn(&Answered) + Send + Sync + 'static,
    ) -> async_openai::Client<OpenAIConfig> {
        self.openai_over(&self.inner.http_api, key, Some(Arc::new(observe)))
    }

    /// [`Self::openai_stream`], and `observe` hears every answer, as with
    /// [`Self::openai_observed`].
    #[must_use]
    pub fn openai_stream_observed(
        &self,
        key: &ApiKey,
        observe: impl Fn(&Answered) + Send + Sync + 'static,
    ) -> async_openai::Client<OpenAIConfig> {
        self.openai_over(&self.inner.http_stream, key, Some(Arc::new(observe)))
    }

    /// Starts a streamed chat completion with `key`: the stream
    /// `self.openai_stream(key).chat().create_stream(request)` returns, read where it is polled.
    ///
    /// async-openai reads each stream in a task of its own and hands every chunk over an
    /// unbounded channel: a task and the channel's blocks per open stream (6 KiB, measured
    /// with the `relay` program), and chunks piling up in memory when the reader is slower
    /// than the model. This stream reads the response body itself, so it costs neither, and
    /// a slow reader slows the connection to ModelGates instead.
    ///
    /// Everything else is the same: the request (`POST {base}/chat/completions` with
    /// `stream: true`, the key, the attribution headers, the idle timeout), the transport (a
    /// refusal read into [`GatewayError`], retried by the [`ApiRetries`] rules), and the
    /// items: `[DONE]` ends the stream, a `keepalive` event is skipped, an event that is not a
    /// completion chunk (ModelGates' error chunk) is `OpenAIError::JSONDeserialize`, a broken
    /// or silent connection is `OpenAIError::StreamError` and ends the stream. Dropping the
    /// stream closes its connection.
    ///
    /// # Errors
    ///
    /// As `create_stream`: `InvalidArgument` for a request with `stream: false`, a refusal
    /// ([`gateway_error`] finds it), or the connection's error.
    pub async fn chat_stream(
        &self,
        key: &ApiKey,
        request: CreateChatCompletionRequest,
    ) -> Result<ChatCompletionResponseStream, OpenAIError> {
        self.chat_stream_over(key, request, None).await
    }

    /// [`Self::chat_stream`], and `observe` hears every answer, as with
    /// [`Self::openai_observed`].
    ///
    /// # Errors
    ///
    /// As [`Self::chat_stream`].
    pub async fn chat_stream_observed(
        &self,
        key: &ApiKey,
        request: CreateChatCompletionRequest,
        observe: impl Fn(&Answered) + Send + Sync + 'static,
    ) -> Result<ChatCompletionResponseStream, OpenAIError> {
        self.chat_stream_over(key, request, Some(Arc::new(observe)))
            .await
    }

    async fn chat_stream_over(
        &self,
        key: &ApiKey,
        mut request: CreateChatCompletionRequest,
        report: Option<Report>,
    ) -> Result<ChatCompletionResponseStream, OpenAIError> {
        if request.stream == Some(false) {
            return Err(OpenAIError::InvalidArgument(
                "When stream is false, use Chat::create".into(),
            ));
        }
        request.stream = Some(true);
        let body = Bytes::from(serde_json::to_vec(&request).map_err(|error| {
            OpenAIError::InvalidArgument(format!("failed to serialize request: {error}"))
        })?);
        let bearer = Zeroizing::new(format!("Bearer {}", key.expose_secret()));
        let mut authorization = HeaderValue::from_str(&bearer).map_err(|_| {
            OpenAIError::InvalidArgument("the key is not a valid header value".into())
        })?;
        authorization.set_sensitive(true);
        let http = self.inner.http_stream.clone();
        let url = format!("{}/chat/completions", self.inner.api_base);
        let requests = {
            let http = http.clone();
            HttpRequestFactory::new(move || {
                let built = http
                    .post(&url)
                    .header(AUTHORIZATION, authorization.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .build();
                async move { built.map_err(OpenAIError::Reqwest) }
            })
        };
        let transport = Transport {
            http,
            retries: self.inner.api_retries,
            report,
        };
        let response = send(transport, requests).await?;
        Ok(completion_chunks(response))
    }

    fn openai_over(
        &self,
        http: &reqwest::Client,
        key: &ApiKey,
        report: Option<Report>,
    ) -> async_openai::Client<OpenAIConfig> {
        let transport = Transport {
            http: http.clone(),
            retries: self.inner.api_retries,
            report,
        };
        async_openai::Client::build(http.clone(), self.openai_config(key))
            .with_http_service(transport)
    }

    fn openai_config(&self, key: &ApiKey) -> OpenAIConfig {
        // Explicit empty organisation and project: the defaults read OPENAI_* variables,
        // which must not leak into calls to ModelGates.
        OpenAIConfig::new()
            .with_api_base(&self.inner.api_base)
            .with_api_key(key.expose_secret())
            .with_org_id("")
            .with_project_id("")
    }
}

/// What the observer of an OpenAI-compatible client hears of each answer ModelGates sends
/// (see [`ModelGatesClient::openai_observed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answered {
    /// The HTTP status: 401 when ModelGates no longer accepts the key.
    pub status: u16,
    /// The answer's `X-RateLimit-*` headers, when it has any.
    pub rate_limits: Option<RateLimitHeaders>,
}

/// An observer that passes on the rate-limit headers of the answers that have any.
fn rate_limits_to(
    report: impl Fn(RateLimitHeaders) + Send + Sync + 'static,
) -> impl Fn(&Answered) + Send + Sync + 'static {
    move |answered| {
        if let Some(headers) = answered.rate_limits {
            report(headers);
        }
    }
}

/// Who hears each answer.
type Report = Arc<dyn Fn(&Answered) + Send + Sync>;

/// The transport of the OpenAI-compatible calls: sends each request, reports its rate-limit
/// headers, reads a refusal into a [`GatewayError`], and retries by the [`ApiRetries`] rules.
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
    retries: ApiRetries,
    report: Option<Report>,
}

type Sending = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

impl tower_service::Service<HttpRequestFactory> for Transport {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Sending;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        Box::pin(send(self.clone(), request))
    }
}

async fn send(
    transport: Transport,
    request: HttpRequestFactory,
) -> Result<reqwest::Response, OpenAIError> {
    let Transport {
        http,
        retries,
        report,
    } = transport;
    let mut retried = 0;
    loop {
        let sent = http.execute(request.build().await?).await;
        if let (Some(report), Ok(response)) = (&report, &sent) {
            report(&Answered {
                status: response.status().as_u16(),
                rate_limits: RateLimitHeaders::read(response.headers()),
            });
        }
        let wait = match sent {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => {
                let error = refusal(response).await?;
                let Some(wait) = retries.wait_after(&error, retried) else {
                    return Err(OpenAIError::Boxed(Box::new(error)));
                };
                tracing::debug!(status = error.status, ?wait, "retrying a refused call");
                wait
            }
            Err(error) if error.is_connect() => match retries.wait_after_connect_error(retried) {
                Some(wait) => wait,
                None => return Err(OpenAIError::Reqwest(error)),
            },
            Err(error) => return Err(OpenAIError::Reqwest(error)),
        };
        tokio::time::sleep(wait).await;
        retried += 1;
    }
}

/// The completion chunks of a streamed answer, read as async-openai's stream reads them
/// (see [`ModelGatesClient::chat_stream`]); nothing follows a broken connection.
fn completion_chunks(response: reqwest::Response) -> ChatCompletionResponseStream {
    let events = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other))
        .eventsource();
    Box::pin(futures_util::stream::unfold(
        Some(Box::pin(events)),
        |events| async move {
            let mut events = events?;
            loop {
                match events.next().await? {
                    Err(error) => {
                        let error = StreamError::EventStream(error.to_string());
                        return Some((Err(OpenAIError::StreamError(Box::new(error))), None));
                    }
                    Ok(event) if event.data == "[DONE]" => return None,
                    Ok(event) if event.event == "keepalive" => {}
                    Ok(event) => {
                        let chunk = serde_json::from_str(&event.data)
                            .map_err(|error| OpenAIError::JSONDeserialize(error, event.data));
                        return Some((chunk, Some(events)));
                    }
                }
            }
        },
    ))
}

/// A non-success answer read into ModelGates' error, at most [`MAX_ERROR_BODY`] of its body.
async fn refusal(mut response: reqwest::Response) -> Result<GatewayError, OpenAIError> {
    let status = response.status().as_u16();
    let retry_after = crate::http::retry_after(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(OpenAIError::Reqwest)? {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room < chunk.len() {
            break;
        }
    }
    Ok(GatewayError::from_answer(status, &body, retry_after))
}

/// The [`GatewayError`] in `error`: a call ModelGates refused (its status, message and
/// `Retry-After`), or the error chunk that ended a stream (its `code` as the status); `None`
/// for any other failure.
#[must_use]
pub fn gateway_error(error: &OpenAIError) -> Option<GatewayError> {
    match error {
        OpenAIError::Boxed(boxed) => boxed.downcast_ref::<GatewayError>().cloned(),
        // A refusal in OpenAI's own shape (async-openai read it), from a proxy in between.
        OpenAIError::ApiError(response) => Some(GatewayError::with_message(
            response.status_code.as_u16(),
            Some(&response.api_error.message),
        )),
        // A stream's error chunk (`finish_reason: "error"` is no finish reason async-openai
        // knows), or an error body async-openai could not read.
        OpenAIError::JSONDeserialize(_, body) => GatewayError::from_body(body.as_bytes()),
        _ => None,
    }
}

/// `error` as a [`RequestError`]: ModelGates' refusal typed (out of credits, key limit
/// reached, rate limited, key rejected, another status), a timeout, or a broken connection;
/// `None` for a request async-openai refused to send (`InvalidArgument`) and file errors.
#[must_use]
pub fn request_error(error: &OpenAIError) -> Option<RequestError> {
    if let Some(gateway) = gateway_error(error) {
        return Some(gateway.into());
    }
    if is_timeout(error) {
        return Some(RequestError::Timeout);
    }
    match error {
        OpenAIError::Reqwest(_) | OpenAIError::StreamError(_) | OpenAIError::Boxed(_) => {
            Some(RequestError::Transport(crate::error::TransportError::new(
                std::io::Error::other(format!("{error}").chars().take(300).collect::<String>()),
            )))
        }
        OpenAIError::JSONDeserialize(..) => Some(RequestError::MalformedResponse(
            "ModelGates sent an answer that could not be read".to_owned(),
        )),
        _ => None,
    }
}

/// Whether `error` means ModelGates refused the key (401): it was revoked or has expired, and
/// the user must sign in again.
#[must_use]
pub fn is_key_rejected(error: &OpenAIError) -> bool {
    gateway_error(error).is_some_and(|gateway| gateway.status == 401)
}

/// Whether `error` is the total timeout of a call made through [`ModelGatesClient::openai`].
///
/// A stream's idle timeout cannot be told this way: async-openai reports every failure of a
/// stream's connection as text (`StreamError`). `modelgates-axum`'s SSE relay names it by when
/// it comes.
#[must_use]
pub fn is_timeout(error: &OpenAIError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = error.source();
    }
    false
}
