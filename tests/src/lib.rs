//! Helpers for the workspace-level end-to-end tests: serve example-chat's app, or
//! example-linked-accounts', over real HTTP on 127.0.0.1 against an in-process emulator.

pub mod child;
pub mod proxy;

/// The project's README, compiled and run as doc tests so that what it shows works, with this
/// crate's dependencies (every published crate and the features the snippets name).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
use modelgates_emulator::Emulator;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// example-chat served on 127.0.0.1, with the emulator it talks to. Stops when dropped.
#[derive(Debug)]
pub struct RunningApp {
    /// The app's origin, such as `http://127.0.0.1:41234`; also its public URL.
    pub url: String,
    /// The emulator behind it.
    pub emulator: Emulator,
    task: JoinHandle<()>,
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts example-chat's app on a free port against `emulator`.
///
/// # Panics
///
/// When 127.0.0.1 cannot be bound: the test cannot run at all.
pub async fn start_chat_app(emulator: Emulator) -> RunningApp {
    start_chat_app_with(emulator, |config| config).await
}

/// Starts example-chat's app on a free port against `emulator`, with `tweak` applied to the
/// layer's configuration.
///
/// # Panics
///
/// When 127.0.0.1 cannot be bound or the configuration is invalid.
pub async fn start_chat_app_with(
    emulator: Emulator,
    tweak: impl FnOnce(ModelGatesConfig) -> ModelGatesConfig,
) -> RunningApp {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = tweak(
        ModelGatesConfig::new(&url, CookieSecret::generate()).with_base_url(emulator.base_url()),
    );
    let auth = ModelGatesAuth::new(config);
    let app = example_chat::routes()
        .layer(auth.same_origin())
        .layer(auth)
        .with_state(example_chat::AppState::new(example_chat::DEFAULT_MODEL));
    let task = tokio::spawn(async move {
        axum_serve(listener, app).await;
    });
    RunningApp {
        url,
        emulator,
        task,
    }
}

async fn axum_serve(listener: TcpListener, app: axum::Router) {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("the app stopped: {error}");
    }
}

/// example-linked-accounts served on 127.0.0.1, its SQLite database in a scratch folder, with
/// the emulator it talks to. Stops and removes the database when dropped.
pub struct LinkedApp {
    /// The app's origin, such as `http://127.0.0.1:41234`; also its public URL.
    pub url: String,
    /// The emulator behind it.
    pub emulator: Emulator,
    /// What its handlers share: the database, the layer (`key_for`, `linked_accounts`).
    pub state: example_linked_accounts::AppState,
    task: JoinHandle<()>,
    folder: std::path::PathBuf,
}

impl Drop for LinkedApp {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Starts example-linked-accounts on a free port of 127.0.0.1 against `emulator`, its public
/// URL on `host` (`127.0.0.1`, or `localhost` for a browser to see ModelGates, on 127.0.0.1, as
/// another site), with `tweak` applied to its options.
///
/// # Panics
///
/// When 127.0.0.1 cannot be bound or the app cannot start: the test cannot run at all.
pub async fn start_linked_app(
    emulator: Emulator,
    host: &str,
    tweak: impl FnOnce(example_linked_accounts::Options) -> example_linked_accounts::Options,
) -> LinkedApp {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://{host}:{port}");
    let folder = std::env::temp_dir().join(format!(
        "modelgates-linked-accounts-{}-{port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&folder).expect("a scratch folder");
    let database_url = format!("sqlite:{}", folder.join("app.db").display());
    let options = example_linked_accounts::Options::new(&url, emulator.base_url(), &database_url);
    let app = example_linked_accounts::build(tweak(options))
        .await
        .expect("example-linked-accounts starts");
    let state = app.state.clone();
    let task = tokio::spawn(async move {
        axum_serve(listener, app.router).await;
    });
    LinkedApp {
        url,
        emulator,
        state,
        task,
        folder,
    }
}

/// A client that keeps cookies like a browser and does not follow redirects, so each hop
/// can be checked: `modelgates_axum::testing::client()`.
pub use modelgates_axum::testing::client as browser_like_client;
