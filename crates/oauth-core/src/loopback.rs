//! [`LoopbackReceiver`]: the callback of a command-line tool or desktop app (feature
//! `loopback`), by RFC 8252's loopback flow, which ModelGates calls "Localhost Apps".
//!
//! **Which local callbacks ModelGates accepts:** `http` ones only on `localhost`, `127.0.0.1`
//! or `[::1]`, on any port (every other callback must be `https`). The receiver uses
//! `127.0.0.1`, an IP literal: `localhost` may resolve elsewhere (RFC 8252 §8.3).
//!
//! The rules:
//!
//! * It binds `127.0.0.1` *before* the URL is built: a free port unless one is asked for
//!   ([`LoopbackReceiver::bind`]`(0)`), so the URL always names a port it holds (§7.3).
//! * The callback URL carries a random path segment of 128 bits per sign-in
//!   (`/callback/<id>`): only a `GET` to that exact path (compared in constant time) counts.
//!   Any other request gets a 404 and changes nothing: the wait goes on.
//! * Exactly one callback is accepted: the first ends the wait (once its page is written) and
//!   the listener closes; a second one that raced it gets a 410.
//! * No other local process can end the wait or exhaust the tool: an accept error (such as
//!   "too many open files") is transient and retried after a pause; at most
//!   [`with_max_connections`](LoopbackReceiver::with_max_connections) connections (16) are
//!   open at once, further ones wait in the kernel's backlog; a connection must send its
//!   request headers within [`with_header_timeout`](LoopbackReceiver::with_header_timeout)
//!   (2 s) and is closed after its one answer, 404 or not (no keep-alive).
//! * The wait is bounded: [`with_timeout`](LoopbackReceiver::with_timeout) (5 minutes) ends
//!   it with [`LoopbackError::TimedOut`]. Dropping the [`receive`](LoopbackReceiver::receive)
//!   future (Ctrl-C in a `select!`) ends it cleanly too: the listener closes and every open
//!   connection is dropped.
//! * The person sees a short page: approved (close the tab, the terminal finishes), denied, or
//!   what failed.
//!
//! ```no_run
//! use modelgates_oauth_core::{CallbackParams, ChallengeMethod, ModelGatesClient, Pkce};
//! use modelgates_oauth_core::loopback::LoopbackReceiver;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::builder().build()?;
//! let receiver = LoopbackReceiver::bind(0).await?;
//! let pkce = Pkce::generate(ChallengeMethod::S256);
//! let url = client.authorization_url(receiver.callback_url(), Some(&pkce.challenge()));
//! println!("Open {url}");
//! let callback = tokio::select! {
//!     callback = receiver.receive() => callback?,
//!     _ = tokio::signal::ctrl_c() => return Err("interrupted".into()),
//! };
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use url::Url;

use crate::callback::{CallbackError, CallbackParams};
use crate::random::random_token;

/// How long the person has to approve, unless [`LoopbackReceiver::with_timeout`] says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a connection may take to send its request headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How many connections may be open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// The pause after a failed accept (too many open files, say) before accepting again.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// The longest a connection lives once its headers are in: the answer is one small page.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A one-shot HTTP receiver on `127.0.0.1` for a tool's sign-in callback, by the module's
/// rules.
#[derive(Debug)]
#[must_use = "the receiver waits for the callback only when `receive` is awaited"]
pub struct LoopbackReceiver {
    listener: TcpListener,
    path: String,
    callback_url: Url,
    timeout: Duration,
    header_timeout: Duration,
    max_connections: usize,
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
    /// No callback arrived within the receiver's timeout.
    #[error("no sign-in arrived within {} seconds; start again", .0.as_secs())]
    TimedOut(Duration),
}

impl LoopbackReceiver {
    /// Listens on `127.0.0.1:port` (`0`: any free port, the right choice unless ModelGates
    /// was told of a fixed one) with a fresh random callback path.
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
            timeout: DEFAULT_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        })
    }

    /// How long [`receive`](Self::receive) waits for the callback ([`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a connection may take to send its request headers
    /// ([`DEFAULT_HEADER_TIMEOUT`]); a browser sends them at once.
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How many connections may be open at once ([`DEFAULT_MAX_CONNECTIONS`], at least 1).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
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

    /// Waits for the callback and answers the browser; what the callback carried. The
    /// listener closes when this returns or is dropped.
    ///
    /// # Errors
    ///
    /// [`LoopbackError::Callback`] when the callback's query is not one ModelGates sends (no
    /// code, two codes, a malformed one); [`LoopbackError::TimedOut`] when none arrived in
    /// time.
    pub async fn receive(self) -> Result<CallbackParams, LoopbackError> {
        let (sender, mut outcomes) = mpsc::channel::<Outcome>(1);
        let callback = Arc::new(Callback {
            path: self.path,
            claimed: AtomicBool::new(false),
            sender,
        });
        let permits = Arc::new(Semaphore::new(self.max_connections));
        // Dropped with this future: every connection still open ends with it.
        let mut connections = JoinSet::new();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(outcome) = outcomes.recv() => return Ok(outcome?),
                () = &mut deadline => return Err(LoopbackError::TimedOut(self.timeout)),
                (stream, permit) = next_connection(&self.listener, &permits) => {
                    let serve = serve(stream, callback.clone(), self.header_timeout);
                    connections.spawn(async move {
                        serve.await;
                        drop(permit);
                    });
                }
                Some(_) = connections.join_next() => {}
            }
        }
    }
}

/// The next connection, once fewer than the maximum are open; accept errors are retried.
async fn next_connection(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (TcpStream, OwnedSemaphorePermit) {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (stream, permit),
            Err(error) => {
                // Too many open files, a connection reset before it was accepted: none of
                // it ends the wait.
                tracing::debug!(%error, "accepting a loopback connection failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// The sign-in's callback: its path, whether a request to it came, and where its outcome
/// goes.
struct Callback {
    path: String,
    claimed: AtomicBool,
    sender: mpsc::Sender<Outcome>,
}

/// Serves one connection: one request, one answer, closed. A callback's outcome is reported
/// once its page is written, so that the tool may exit right after.
async fn serve(stream: TcpStream, callback: Arc<Callback>, header_timeout: Duration) {
    let reported: Arc<Mutex<Option<Outcome>>> = Arc::default();
    let slot = reported.clone();
    let callback_for_service = callback.clone();
    let service = hyper::service::service_fn(move |request| {
        let (page, outcome) = answer(&request, &callback_for_service);
        if let Some(outcome) = outcome {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
        }
        async move { Ok::<_, Infallible>(page) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(header_timeout + ANSWER_TIMEOUT, connection).await {
        Ok(Err(error)) => tracing::debug!(%error, "a loopback connection failed"),
        Err(_) => tracing::debug!("a loopback connection took too long; closed"),
        Ok(Ok(())) => {}
    }
    let outcome = reported
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(outcome) = outcome {
        let _ = callback.sender.try_send(outcome);
    }
}

/// The answer to one request, and the outcome when it is the sign-in's one callback.
fn answer(
    request: &Request<Incoming>,
    callback: &Callback,
) -> (Response<Full<Bytes>>, Option<Outcome>) {
    let ours: bool = request
        .uri()
        .path()
        .as_bytes()
        .ct_eq(callback.path.as_bytes())
        .into();
    if !ours || request.method() != hyper::Method::GET {
        let page = page(
            StatusCode::NOT_FOUND,
            "This is not the sign-in this tool started.",
        );
        return (page, None);
    }
    if callback.claimed.swap(true, Ordering::SeqCst) {
        let page = page(
            StatusCode::GONE,
            "This sign-in is already complete. You can close this tab.",
        );
        return (page, None);
    }
    let outcome = CallbackParams::parse(request.uri().query().unwrap_or(""));
    let text = match &outcome {
        Ok(CallbackParams::Code(_)) => {
            "Approved. You can close this tab: the terminal finishes signing in.".to_owned()
        }
        Ok(CallbackParams::AccessDenied) => {
            "Sign-in cancelled: access was denied on ModelGates, and nothing was stored. You can \
             close this tab."
                .to_owned()
        }
        Ok(CallbackParams::Failed { error }) => format!(
            "Sign-in failed: ModelGates reported \u{201c}{error}\u{201d}. You can close this tab \
             and try again from the terminal."
        ),
        Err(error) => {
            format!(
                "Sign-in failed: {error}. You can close this tab and try again from the terminal."
            )
        }
    };
    (page(StatusCode::OK, &text), Some(outcome))
}

fn page(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>ModelGates sign-in</title><p id=\"result\">{}</p>",
        html_escape::encode_text(text)
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
