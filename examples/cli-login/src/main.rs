//! `example-cli-login`: sign a command-line tool in with ModelGates through the loopback flow
//! of RFC 8252 (ModelGates' "Localhost Apps").
//!
//! It listens on `127.0.0.1` (port 3000 by default, `--port 0` for any free one), prints the
//! `/auth` URL and opens it in the browser, receives the callback, exchanges the code with
//! PKCE S256, and stores the key in a file created with mode 0600, printing only a masked form.
//!
//! The callback is received by oauth-core's `LoopbackReceiver` (feature `loopback`): its URL
//! carries a random per-run segment (`/callback/<flow id>`), and only a request to that exact
//! path ends the wait, so another local page or program that guesses the port can neither
//! cancel the sign-in nor push its own code into it; other requests get a 404.
//! Denial or timeout end it with a clear message and a non-zero exit:
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | signed in, key stored |
//! | 1 | setup or exchange failed (message says why) |
//! | 2 | the user pressed Deny |
//! | 3 | no callback arrived in time |

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use modelgates_oauth_core::loopback::LoopbackReceiver;
use modelgates_oauth_core::{CallbackParams, ChallengeMethod, ModelGatesClient, Pkce};

/// Sign in with ModelGates and store the key for this tool.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port to receive the callback on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Where to store the key (created with mode 0600).
    #[arg(long, env = "MODELGATES_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// ModelGates' origin.
    #[arg(long, env = "MODELGATES_BASE_URL", default_value = modelgates_oauth_core::client::DEFAULT_BASE_URL)]
    base_url: String,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print the URL only; do not open a browser.
    #[arg(long)]
    no_browser: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run(args: Args) -> Result<(), (u8, String)> {
    let fail = |message: String| (1, message);
    let client = ModelGatesClient::builder()
        .base_url(args.base_url.clone())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let key_file = match args.key_file {
        Some(path) => path,
        None => default_key_file().ok_or_else(|| fail("no home folder: pass --key-file".into()))?,
    };
    let receiver = LoopbackReceiver::bind(args.port).await.map_err(|e| {
        fail(format!(
            "cannot listen on 127.0.0.1:{}: {e}; try --port 0",
            args.port
        ))
    })?;
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let auth_url = client.authorization_url(receiver.callback_url(), Some(&pkce.challenge()));

    println!("Sign in with ModelGates by opening this URL:\n{auth_url}");
    if !args.no_browser && webbrowser::open(auth_url.as_str()).is_err() {
        println!("(Could not open a browser; open the URL above yourself.)");
    }

    let outcome =
        tokio::time::timeout(Duration::from_secs(args.timeout_secs), receiver.receive()).await;
    let code = match outcome {
        Err(_) => {
            return Err((
                3,
                format!(
                    "no sign-in within {} seconds; run the command again",
                    args.timeout_secs
                ),
            ));
        }
        Ok(Ok(CallbackParams::Code(code))) => code,
        Ok(Ok(CallbackParams::AccessDenied)) => {
            return Err((
                2,
                "sign-in was denied on ModelGates; nothing was stored".into(),
            ));
        }
        Ok(Ok(CallbackParams::Failed { error })) => {
            return Err(fail(format!(
                "ModelGates reported `{}`",
                error.escape_debug()
            )));
        }
        Ok(Ok(_)) => return Err(fail("the callback carried nothing usable".into())),
        Ok(Err(error)) => return Err(fail(error.to_string())),
    };
    let issued = client
        .exchange_code(&code, Some(&pkce))
        .await
        .map_err(|e| fail(e.to_string()))?;
    write_private(&key_file, issued.key.expose_secret())
        .map_err(|e| fail(format!("cannot write {}: {e}", key_file.display())))?;
    println!(
        "Signed in. Key {} stored in {}",
        issued.key.masked(),
        key_file.display()
    );
    Ok(())
}

fn default_key_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("modelgates").join("key"))
}

/// Writes `secret` to `path`, readable by its owner only, replacing any older file.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` applies only to new files: tighten an existing one too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
