//! The app server of the measuring programs (`load`, `relay`), run as a child process of the
//! program itself so that its memory is measured alone: example-chat's app behind
//! `ModelGatesAuth`, plus `/whoami`, which answers the SHA-256 fingerprint of the signed-in key.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use sha2::{Digest as _, Sha256};

/// Hex SHA-256 of a key, to compare keys without printing them.
#[must_use]
pub fn fingerprint(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The child: example-chat's app plus `/whoami`, until stdin closes.
///
/// # Panics
///
/// When 127.0.0.1 cannot be bound.
pub async fn serve_until_stdin_closes(base_url: String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ModelGatesConfig::new(&url, CookieSecret::generate()).with_base_url(base_url);
    let whoami = |key: ModelGatesKey| async move { fingerprint(key.api_key().expose_secret()) };
    let app = example_chat::routes()
        .route("/whoami", axum::routing::get(whoami))
        .layer(ModelGatesAuth::new(config))
        .with_state(example_chat::AppState::new(example_chat::DEFAULT_MODEL));
    println!("URL {url}");
    // Stop when the driver closes our stdin (or dies).
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    tokio::select! {
        result = axum::serve(listener, app) => result.unwrap(),
        _ = stdin_closed => {}
    }
}

/// Resident and peak memory of a process, in KiB, from /proc.
#[must_use]
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The app server child process; stops when dropped.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its URL.
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Starts this very program with `--serve <base_url>` and reads the URL it prints.
///
/// # Panics
///
/// When the child cannot start or prints no URL.
#[must_use]
pub fn start_server(base_url: &str) -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve", base_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the app server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("URL ")
        .expect("the server prints its URL")
        .to_owned();
    Server { child, url }
}
