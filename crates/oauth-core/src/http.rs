//! The one place that sends a request to ModelGates and reads its answer, shared by the key
//! exchange and ModelGates' own endpoints.
//!
//! Rules: bodies are read up to a size limit (a broken or hostile upstream cannot make us
//! buffer without bound); ModelGates' own `error.message` is kept, stripped of control
//! characters and cut to 300 characters, because it is shown to people.

use bytes::Bytes;
use reqwest::StatusCode;
use serde::Serialize;

use crate::ModelGatesClient;
use crate::error::{RequestError, TransportError};

/// A complete answer: status and body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl ModelGatesClient {
    /// Posts JSON with the short sign-in client (the key exchange).
    pub(crate) async fn post_json(
        &self,
        url: &url::Url,
        body: &impl Serialize,
        limit: usize,
    ) -> Result<Answer, RequestError> {
        read(self.inner.http_auth.post(url.clone()).json(body), limit).await
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
        read(request, limit).await
    }
}

/// Sends a request and reads the whole answer, at most `limit` bytes of it.
async fn read(request: reqwest::RequestBuilder, limit: usize) -> Result<Answer, RequestError> {
    let mut response = request.send().await.map_err(from_reqwest)?;
    let status = response.status();
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
    })
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
    if answer.status == StatusCode::UNAUTHORIZED {
        return RequestError::KeyRejected;
    }
    RequestError::Status {
        status: answer.status.as_u16(),
        message: error_message(answer.status, &answer.body),
    }
}

/// ModelGates' error message from `{"error": {"message": "..."}}`, made safe to display.
pub(crate) fn error_message(status: StatusCode, body: &[u8]) -> String {
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
        .and_then(|e| e.error.message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_owned()
        });
    sanitize(&message)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modelgates_error_shape() {
        let body = br#"{"error":{"code":403,"message":"Invalid code or code_verifier"}}"#;
        assert_eq!(
            error_message(StatusCode::FORBIDDEN, body),
            "Invalid code or code_verifier"
        );
    }

    #[test]
    fn falls_back_to_the_reason_phrase() {
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"<html>"),
            "Bad Gateway"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, br#"{"error":{"message":" "}}"#),
            "Bad Gateway"
        );
    }

    #[test]
    fn strips_control_characters_and_bounds_length() {
        let long = format!(r#"{{"error":{{"message":"a\r\nb{}"}}}}"#, "x".repeat(1000));
        let message = error_message(StatusCode::BAD_REQUEST, long.as_bytes());
        assert!(message.starts_with("a  b"));
        assert_eq!(message.chars().count(), 301);
    }
}
