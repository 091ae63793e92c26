//! `login`: the loopback flow when this machine can show a browser, the headless flow when it
//! cannot.
//!
//! The choice: `--headless` or `--no-browser` take the headless flow; `--browser` the loopback
//! flow; otherwise the loopback flow, unless there is no display to open a browser on: an SSH
//! session without a forwarded display (`SSH_CONNECTION` or `SSH_TTY` set, no `DISPLAY` or
//! `WAYLAND_DISPLAY`), or a Linux or BSD machine with neither variable (a container, a
//! console).

use std::time::Duration;

use modelgates_oauth_core::headless::HeadlessError;
use modelgates_oauth_core::loopback::{LoopbackError, LoopbackReceiver};
use modelgates_oauth_core::{
    CallbackParams, ChallengeMethod, ExchangeError, IssuedKey, KeyRequest, ModelGatesClient, Pkce,
};

use crate::Failure;

/// How many pastes a headless sign-in takes before it gives up.
const PASTE_TRIES: usize = 3;

/// How to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Open a browser; receive the callback on 127.0.0.1.
    Loopback,
    /// Show the URL; read the code the person pastes.
    Headless,
}

/// What `login` was told.
pub(crate) struct Choice {
    pub(crate) headless: bool,
    pub(crate) no_browser: bool,
    pub(crate) browser: bool,
}

impl Flow {
    /// The flow for `choice` on this machine (see the module documentation).
    pub(crate) fn choose(choice: &Choice) -> Self {
        if choice.headless || choice.no_browser {
            Self::Headless
        } else if choice.browser || can_show_a_browser() {
            Self::Loopback
        } else {
            Self::Headless
        }
    }
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

fn can_show_a_browser() -> bool {
    let display = set("DISPLAY") || set("WAYLAND_DISPLAY");
    let ssh = set("SSH_CONNECTION") || set("SSH_TTY");
    if ssh {
        return display;
    }
    // macOS and Windows always have a desktop; elsewhere a browser needs a display server.
    cfg!(any(target_os = "macos", target_os = "windows")) || display
}

/// Signs in by `flow`, waiting at most `timeout` for the person.
pub(crate) async fn sign_in(
    client: &ModelGatesClient,
    flow: Flow,
    key: &KeyRequest,
    port: u16,
    timeout: Duration,
) -> Result<IssuedKey, Failure> {
    match flow {
        Flow::Loopback => loopback(client, key, port, timeout).await,
        Flow::Headless => headless(client, key, timeout).await,
    }
}

async fn loopback(
    client: &ModelGatesClient,
    key: &KeyRequest,
    port: u16,
    timeout: Duration,
) -> Result<IssuedKey, Failure> {
    // Bound before the URL is built, so the URL names a port this process holds.
    let receiver = LoopbackReceiver::bind(port)
        .await
        .map_err(|e| {
            Failure::setup(format!(
                "cannot listen on 127.0.0.1:{port}: {e}; try --port 0"
            ))
        })?
        .with_timeout(timeout);
    let mut interrupted = crate::interrupted();
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let url =
        client.authorization_url_for_key(receiver.callback_url(), Some(&pkce.challenge()), key);
    eprintln!("Opening your browser to sign in with ModelGates. If it does not open, visit:");
    println!("{url}");
    if webbrowser::open(url.as_str()).is_err() {
        eprintln!(
            "(No browser could be opened: open the URL above yourself, or run `login --headless`.)"
        );
    }
    let callback = tokio::select! {
        callback = receiver.receive() => callback,
        () = &mut interrupted => return Err(Failure::interrupted()),
    };
    let code = match callback {
        Ok(CallbackParams::Code(code)) => code,
        Ok(CallbackParams::AccessDenied) => return Err(Failure::denied()),
        Ok(CallbackParams::Failed { error }) => {
            return Err(Failure::setup(format!(
                "ModelGates reported `{}`; nothing was stored",
                error.escape_debug()
            )));
        }
        Ok(_) => return Err(Failure::setup("the callback carried nothing usable".into())),
        Err(LoopbackError::TimedOut(after)) => return Err(Failure::timed_out(after)),
        Err(error) => return Err(Failure::setup(error.to_string())),
    };
    client
        .exchange_code(&code, Some(&pkce))
        .await
        .map_err(exchange_failure)
}

async fn headless(
    client: &ModelGatesClient,
    key: &KeyRequest,
    timeout: Duration,
) -> Result<IssuedKey, Failure> {
    let mut interrupted = crate::interrupted();
    let sign_in = client.headless_sign_in(key);
    eprintln!("Open this URL on any device, approve, then paste the code ModelGates shows:");
    println!("{}", sign_in.url());
    let deadline = tokio::time::Instant::now() + timeout;
    for _ in 0..PASTE_TRIES {
        eprint!("Code: ");
        let pasted = tokio::select! {
            line = read_line() => line?,
            () = tokio::time::sleep_until(deadline) => return Err(Failure::timed_out(timeout)),
            () = &mut interrupted => return Err(Failure::interrupted()),
        };
        let Some(pasted) = pasted else {
            return Err(Failure::setup("no code was pasted (end of input)".into()));
        };
        match sign_in.exchange(client, &pasted).await {
            Ok(issued) => return Ok(issued),
            // Not a code: nothing was sent; ask again.
            Err(HeadlessError::Code(error)) => {
                eprintln!("{error}");
            }
            Err(HeadlessError::Exchange(error)) => return Err(exchange_failure(error)),
            Err(error) => return Err(Failure::setup(error.to_string())),
        }
    }
    Err(Failure::setup(format!(
        "no code after {PASTE_TRIES} tries; run `login --headless` again"
    )))
}

/// A line of stdin, read off the async threads; `None` at the end of input.
async fn read_line() -> Result<Option<String>, Failure> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line)),
            Err(e) => Err(Failure::setup(format!("cannot read the code: {e}"))),
        }
    })
    .await
    .map_err(|e| Failure::setup(e.to_string()))?
}

fn exchange_failure(error: ExchangeError) -> Failure {
    if error.is_code_rejected() {
        Failure::setup(
            "ModelGates refused the code: it is wrong, expired or already used; run `login` again"
                .into(),
        )
    } else {
        Failure::setup(error.to_string())
    }
}
