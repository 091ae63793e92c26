//! [`LoopbackReceiver`]: the callback of a command-line tool or desktop app (feature
//! `loopback`), by RFC 8252's loopback flow, which ModelGates calls "Localhost Apps".
//!
//! The rules: it listens on `127.0.0.1` (an IP literal: `localhost` may resolve elsewhere,
//! RFC 8252 §7.3), on the port asked for or any free one. The callback URL carries a random
//! path segment of 128 bits (`/callback/<id>`), so a local page or program that guesses the
//! port can neither cancel the sign-in nor push its own code into it: only a `GET` to that
//! exact path (compared in constant time) ends the wait; anything else gets a 404 and changes
//! nothing. The person sees a short page saying what happened and to return to the terminal.
//! The receiver answers one callback; bound the wait with a timeout of your own.
//!
//! ```no_run
//! use std::time::Duration;
//! use modelgates_oauth_core::{CallbackParams, ChallengeMethod, ModelGatesClient, Pkce};
//! use modelgates_oauth_core::loopback::LoopbackReceiver;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::builder().build()?;
//! let receiver = LoopbackReceiver::bind(0).await?;
//! let pkce = Pkce::generate(ChallengeMethod::S256);
//! let url = client.authorization_url(receiver.callback_url(), Some(&pkce.challenge()));
//! println!("Open {url}");
//! let callback = tokio::time::timeout(Duration::from_secs(300), receiver.receive()).await??;
//! let CallbackParams::Code(code) = callback else {
//!     return Err("the sign-in was cancelled".into());
//! };
//! let issued = client.exchange_code(&code, Some(&pkce)).await?;
//! println!("signed in with {}", issued.key.masked());
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::Url;

use crate::callback::{CallbackError, CallbackParams};
use crate::random::random_token;

/// A one-shot HTTP receiver on `127.0.0.1` for a tool's sign-in callback, by the module's
/// rules.
#[derive(Debug)]
#[must_use = "the receiver waits for the callback only when `receive` is awaited"]
pub struct LoopbackReceiver {
    listener: TcpListener,
    path: String,
    callback_url: Url,
}

/// The outcome of the one callback that counts.
type Outcome = Result<CallbackParams, CallbackError>;

/// Why [`LoopbackReceiver::receive`] ended without a callback ModelGates sends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// The callback's query is not one ModelGates sends.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// Accepting connections failed.
    #[error("the sign-in callback could not be received: {0}")]
    Accept(#[source] std::io::Error),
}

impl LoopbackReceiver {
    /// Listens on `127.0.0.1:port` (`0`: any free port) with a fresh random callback path.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound (taken, or not allowed).
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let port = listener.local_addr()?.port();
        let path = format!("/callback/{}", random_token::<16>());
        let callback_url =
            Url::parse(&format!("http://127.0.0.1:{port}{path}")).map_err(std::io::Error::other)?;
        Ok(Self {
            listener,
            path,
            callback_url,
        })
    }

    /// The callback URL to give [`ModelGatesClient::authorization_url`](crate::ModelGatesClient::authorization_url):
    /// `http://127.0.0.1:<port>/callback/<random id>`.
    #[must_use]
    pub fn callback_url(&self) -> &Url {
        &self.callback_url
    }

    /// The port listened on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.callback_url.port().unwrap_or_default()
    }

    /// Waits for the callback and answers the browser; what the callback carried.
    ///
    /// # Errors
    ///
    /// [`LoopbackError::Callback`] when the callback's query is not one ModelGates sends (no
    /// code, two codes, a malformed one); [`LoopbackError::Accept`] when accepting connections
    /// failed.
    pub async fn receive(self) -> Result<CallbackParams, LoopbackError> {
        let (sender, mut outcomes) = mpsc::channel::<Outcome>(1);
        let path: Arc<str> = self.path.into();
        loop {
            tokio::select! {
                Some(outcome) = outcomes.recv() => return Ok(outcome?),
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted.map_err(LoopbackError::Accept)?;
                    let (sender, path) = (sender.clone(), path.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let answer = answer(&request, &path, &sender);
                            async move { Ok::<_, Infallible>(answer) }
                        });
                        let connection = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "a loopback connection failed");
                        }
                    });
                }
            }
        }
    }
}

/// The answer to one request: the page for the callback (whose outcome goes to `sender`, the
/// first one only), 404 for anything else.
fn answer(
    request: &Request<Incoming>,
    path: &str,
    sender: &mpsc::Sender<Outcome>,
) -> Response<Full<Bytes>> {
    let ours: bool = request
        .uri()
        .path()
        .as_bytes()
        .ct_eq(path.as_bytes())
        .into();
    if !ours || request.method() != hyper::Method::GET {
        return page(
            StatusCode::NOT_FOUND,
            "This is not the sign-in this tool started.",
        );
    }
    let outcome = CallbackParams::parse(request.uri().query().unwrap_or(""));
    let text = match &outcome {
        Ok(CallbackParams::Code(_)) => {
            "Signed in. You can close this tab and return to the terminal."
        }
        Ok(CallbackParams::AccessDenied) => "Sign-in cancelled. You can close this tab.",
        _ => "Sign-in failed. See the terminal.",
    };
    // Only the first callback counts; later ones find the channel full.
    let _ = sender.try_send(outcome);
    page(StatusCode::OK, text)
}

fn page(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>ModelGates sign-in</title><p>{text}</p>"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}
