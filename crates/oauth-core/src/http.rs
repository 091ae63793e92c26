//! The one place that sends a request to ModelGates and reads its answer, shared by the key
//! exchange and ModelGates' own endpoints.
//!
//! Rules: bodies are read up to a size limit (a broken or hostile upstream cannot make us
//! buffer without bound); a refusal becomes a [`GatewayError`], whose message rules are its
//! own. Each request is a `modelgates.http` client span with OpenTelemetry's HTTP client
//! fields (`http.request.method`, `server.address`, `server.port`, `url.path`,
//! `http.response.status_code`, `error.type`): never the query, a header, or a body.

use bytes::Bytes;
use reqwest::StatusCode;
use serde::Serialize;
use tracing::Instrument as _;

use crate::ModelGatesClient;
#[cfg(test)]
use crate::error::error_message;
use crate::error::{GatewayError, RequestError, TransportError};

/// A complete answer: status, body, and `Retry-After` when given in seconds.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    pub(crate) retry_after: Option<std::time::Duration>,
}

impl ModelGatesClient {
    /// Posts JSON with the short sign-in client (the key exchange).
    pub(crate) async fn post_json(
        &self,
        url: &url::Url,
        body: &impl Serialize,
        limit: usize,
    ) -> Result<Answer, RequestError> {
        let request = self.inner.http_auth.post(url.clone()).json(body);
        read(request, limit)
            .instrument(client_span("POST", url))
            .await
    }

    /// Gets with the API client, authorised by `bearer`.
    pub(crate) async fn get(
        &self,
        url: &url::Url,
        bearer: Option<&str>,
        limit: usize,
    ) -> Result<Answer, RequestError> {
        let mut request = self.inner.http_api.get(url.clone());
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read(request, limit)
            .instrument(client_span("GET", url))
            .await
    }
}

/// The client span of one request to `url`.
fn client_span(method: &'static str, url: &url::Url) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(
        "modelgates.http",
        "otel.kind" = "client",
        "otel.name" = method,
        "http.request.method" = method,
        "server.address" = url.host_str(),
        "server.port" = url.port_or_known_default(),
        "url.path" = url.path(),
        "http.response.status_code" = Empty,
        "error.type" = Empty,
    )
}

/// Sends a request and reads the whole answer, at most `limit` bytes of it.
async fn read(request: reqwest::RequestBuilder, limit: usize) -> Result<Answer, RequestError> {
    let read = read_unrecorded(request, limit).await;
    let span = tracing::Span::current();
    match &read {
        Ok(answer) => {
            span.record("http.response.status_code", answer.status.as_u16());
            if answer.status.is_client_error() || answer.status.is_server_error() {
                span.record("error.type", answer.status.as_str());
            }
        }
        Err(error) => {
            span.record("error.type", error_type(error));
        }
    }
    read
}

/// The `error.type` of a request that got no complete answer.
fn error_type(error: &RequestError) -> &'static str {
    match error {
        RequestError::Timeout => "timeout",
        RequestError::MalformedResponse(_) => "malformed_response",
        _ => "transport",
    }
}

async fn read_unrecorded(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<Answer, RequestError> {
    let mut response = request.send().await.map_err(from_reqwest)?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(from_reqwest)? {
        if body.len() + chunk.len() > limit {
            return Err(RequestError::MalformedResponse(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        body: Bytes::from(body),
        retry_after,
    })
}

/// `Retry-After` in seconds (the form ModelGates sends); a date is not read.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(std::time::Duration::from_secs)
}

fn from_reqwest(error: reqwest::Error) -> RequestError {
    if error.is_timeout() {
        RequestError::Timeout
    } else {
        // The URL is ours and holds no secret, but strip it so messages stay short.
        RequestError::Transport(TransportError::new(error.without_url()))
    }
}

/// The error for a non-success answer of an endpoint used with a key.
pub(crate) fn status_error(answer: &Answer) -> RequestError {
    GatewayError::from_answer(answer.status.as_u16(), &answer.body, answer.retry_after).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modelgates_error_shape() {
        let body = br#"{"error":{"code":403,"message":"Invalid code or code_verifier"}}"#;
        assert_eq!(error_message(403, body), "Invalid code or code_verifier");
    }

    #[test]
    fn falls_back_to_the_reason_phrase() {
        assert_eq!(error_message(502, b"<html>"), "Bad Gateway");
        assert_eq!(
            error_message(502, br#"{"error":{"message":" "}}"#),
            "Bad Gateway"
        );
    }

    #[test]
    fn strips_control_characters_and_bounds_length() {
        let long = format!(r#"{{"error":{{"message":"a\r\nb{}"}}}}"#, "x".repeat(1000));
        let message = error_message(400, long.as_bytes());
        assert!(message.starts_with("a  b"));
        assert_eq!(message.chars().count(), 301);
    }
}
