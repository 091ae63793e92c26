//! `example-cli-login`: a command-line tool that signs in with ModelGates and spends the key,
//! on a desktop (the loopback flow of RFC 8252, ModelGates' "Localhost Apps") or on a machine
//! with no browser (the headless flow: the person pastes the code ModelGates shows).
//!
//! ```text
//! example-cli-login [--base-url URL] [--key-file PATH] login [--headless | --no-browser | --browser]
//!                                                            [--limit CREDITS] [--label TEXT]
//!                                                            [--port N] [--timeout-secs N]
//! example-cli-login whoami            # the key's label, usage, limit, what remains, manage link
//! example-cli-login chat "Hello"      # streamed to the terminal; Ctrl-C stops the paid stream
//! example-cli-login logout            # forgets the key (revoke it on ModelGates: see whoami)
//! ```
//!
//! `login` opens a browser when this machine can show one and takes the headless flow when it
//! cannot (see `sign_in.rs`): the URL is printed alone on one line of stdout (prompts go to
//! stderr) and the code is read from stdin. The key is kept in the OS keychain when one
//! answers, else in a 0600 file under the config folder (`--key-file` to choose; see
//! `key_store.rs`); it is never printed whole and never passed in argv.
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | setup, network or exchange failure (the message says why) |
//! | 2 | the person pressed Deny on ModelGates |
//! | 3 | no sign-in in time (`--timeout-secs`, 300) |
//! | 4 | not signed in, or ModelGates no longer accepts the key: run `login` |
//! | 5 | out of credits, or the key's spend limit is reached (402) |
//! | 6 | rate limited by ModelGates (429): wait and retry |
//! | 130 | interrupted (Ctrl-C) |

mod commands;
mod key_store;
mod sign_in;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use modelgates_oauth_core::key::SpendLimit;
use modelgates_oauth_core::{KeyRequest, ModelGatesClient, RequestError};

use crate::key_store::KeyStore;
use crate::sign_in::{Choice, Flow};

/// Sign in with ModelGates and spend the key from the terminal.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// ModelGates' origin.
    #[arg(long, global = true, env = "MODELGATES_BASE_URL", default_value = modelgates_oauth_core::client::DEFAULT_BASE_URL)]
    base_url: String,
    /// Keep the key in this file (mode 0600) instead of the OS keychain.
    #[arg(long, global = true, env = "MODELGATES_KEY_FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign in and keep the key.
    Login {
        /// Show the URL and read the code ModelGates shows, for a machine with no browser.
        #[arg(long, conflicts_with = "browser")]
        headless: bool,
        /// Do not open a browser: the headless flow.
        #[arg(long, conflicts_with = "browser")]
        no_browser: bool,
        /// Open a browser and receive the callback even where none seems available.
        #[arg(long)]
        browser: bool,
        /// The key's spend limit, in credits (the person may change it on ModelGates).
        #[arg(long)]
        limit: Option<String>,
        /// The key's label on ModelGates.
        #[arg(long, default_value = "example-cli-login")]
        label: String,
        /// The port of the loopback callback on 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Seconds to wait for the person.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Forget the key kept.
    Logout,
    /// The key's label, usage, limit and what remains, and where to manage it.
    Whoami,
    /// Ask a model; the answer streams to the terminal.
    Chat {
        /// The message.
        message: String,
        /// The model.
        #[arg(long, default_value = "openai/gpt-5.2")]
        model: String,
    },
}

/// Resolves at Ctrl-C (SIGINT). The handler is installed when this is called, not when it is
/// first polled, so a Ctrl-C right after the URL is printed is not missed (nor kills the
/// process before it can close what it opened).
pub(crate) fn interrupted() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut interrupt) = signal(SignalKind::interrupt()) {
            return Box::pin(async move {
                interrupt.recv().await;
            });
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// A failed command: its exit code and what to tell the person.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(crate) fn setup(message: String) -> Self {
        Self { code: 1, message }
    }

    pub(crate) fn denied() -> Self {
        Self {
            code: 2,
            message: "sign-in was denied on ModelGates; nothing was stored".into(),
        }
    }

    pub(crate) fn timed_out(after: Duration) -> Self {
        Self {
            code: 3,
            message: format!(
                "no sign-in within {} seconds; run `login` again",
                after.as_secs()
            ),
        }
    }

    pub(crate) fn not_signed_in() -> Self {
        Self {
            code: 4,
            message: "not signed in: run `example-cli-login login`".into(),
        }
    }

    pub(crate) fn interrupted() -> Self {
        Self {
            code: 130,
            message: "interrupted".into(),
        }
    }

    /// A failed call with the key, by what the person can do about it.
    pub(crate) fn request(error: &RequestError) -> Self {
        let code = match error {
            RequestError::KeyRejected => 4,
            RequestError::InsufficientCredits { .. } | RequestError::KeyLimitReached { .. } => 5,
            RequestError::RateLimited { .. } => 6,
            _ => 1,
        };
        Self {
            code,
            message: error.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(args));
    // Not a plain drop: a read of stdin still blocked (a sign-in that timed out waiting for a
    // paste) would keep the process alive until the person pressed Enter.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let client = ModelGatesClient::builder()
        .base_url(args.base_url.clone())
        .app_title("example-cli-login")
        .build()
        .map_err(|e| Failure::setup(e.to_string()))?;
    let store = KeyStore::choose(args.key_file).map_err(Failure::setup)?;
    match args.command {
        Command::Login {
            headless,
            no_browser,
            browser,
            limit,
            label,
            port,
            timeout_secs,
        } => {
            let limit = limit
                .map(|limit| {
                    SpendLimit::parse(&limit).map_err(|e| Failure::setup(format!("--limit: {e}")))
                })
                .transpose()?;
            let flow = Flow::choose(&Choice {
                headless,
                no_browser,
                browser,
            });
            let key = KeyRequest::new(limit, Some(label));
            let timeout = Duration::from_secs(timeout_secs);
            let issued = sign_in::sign_in(&client, flow, &key, port, timeout).await?;
            store.save(&issued.key).map_err(Failure::setup)?;
            println!(
                "Signed in. Key {} kept in {}",
                issued.key.masked(),
                store.describe()
            );
            Ok(())
        }
        Command::Logout => {
            if store.delete().map_err(Failure::setup)? {
                println!(
                    "Signed out: the key is gone from {}. It stays valid on ModelGates until you \
                     revoke it there.",
                    store.describe()
                );
            } else {
                println!("Not signed in.");
            }
            Ok(())
        }
        Command::Whoami => commands::whoami(&client, &store).await,
        Command::Chat { message, model } => commands::chat(&client, &store, &model, &message).await,
    }
}
