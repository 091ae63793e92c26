//! example-linked-accounts: a notes app with its own accounts (a username and a password) that
//! links ModelGates to them, so that each user pays for the summaries of their notes with their
//! own credits, in a request and in a background job.
//!
//! The app's login is axum-login 0.18 on tower-sessions 0.14, sessions, users, notes and the
//! ModelGates links all in one SQLite database. ModelGates is not the login here: the layer runs
//! in linked-account mode ([`modelgates_axum::linked`]), told who the app's user is by
//! axum-login's `AuthSession`, so a key belongs to an app user and never to a browser.
//!
//! The contract (what the tests and the deployment docs rely on):
//!
//! * `POST /signup` and `POST /signin` (form `username`, `password`) sign in to the app and
//!   answer `303 See Other` to `/settings`; a taken username is a 409 page, wrong credentials a
//!   401 page. `POST /signout` signs out of the app (the ModelGates link stays with the user).
//! * `GET /settings`: the app user's page: ModelGates connected or not, the key's usage, limit
//!   and what remains, a link to manage the key on ModelGates, a spend limit to choose before
//!   connecting, Disconnect; the user's notes, each with its summary or the error that stopped
//!   it (an out-of-credits 402 is shown there). `GET /` sends a signed-in user there and shows
//!   the sign-up and sign-in forms otherwise.
//! * ModelGates under `/modelgates`: `GET /modelgates/login?limit=` (connect, with an optional
//!   spend limit), `GET /modelgates/callback/…`, `POST /modelgates/disconnect`.
//! * `POST /notes` (form `text`) adds a note. `POST /notes/{id}/summarise` summarises one of the
//!   user's own notes with the user's key: with `Accept: text/event-stream` the summary is
//!   streamed (unnamed events `{"delta": "…"}`, then `done`, see `modelgates_axum::sse`) and
//!   shown, otherwise it is kept with the note and the answer is `303` to `/settings`.
//! * `POST /jobs/summarise` runs the background job once and answers
//!   `{"summarised": n, "failed": [{"user": id, "error": code, "message": …}]}`: every linked
//!   user, 100 at a time, has their new notes summarised with their own key. A key ModelGates
//!   rejects (401) is unlinked; an out-of-credits or spent-limit answer (402) is kept with the
//!   note and shown on the settings page. `main.rs` also runs the job every
//!   `JOB_INTERVAL_SECS`.
//! * Every `POST` is refused (403) when another site makes the browser send it; the session
//!   cookie is `SameSite=Lax`, which the return from ModelGates (a navigation from another
//!   site) needs.
//!
//! Environment ([`settings::Settings`]): `PORT` (3000), `PUBLIC_URL`
//! (`http://localhost:$PORT`), `MODELGATES_BASE_URL` (unset: an emulator is started
//! in-process), `MODELGATES_COOKIE_SECRET` (generated with a warning on a loopback URL),
//! `DATABASE_URL` (`sqlite:linked-accounts.db`, created if missing), `MODELGATES_MODEL`
//! (`openai/gpt-5.2`), `JOB_INTERVAL_SECS` (300; 0 runs the job only when asked), and the
//! layer's other `MODELGATES_*` variables (`ModelGatesConfig::from_env`).

pub mod accounts;
pub mod db;
mod error;
pub mod job;
pub mod notes;
mod page;
pub mod settings;
mod settings_page;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use axum_login::AuthManagerLayerBuilder;
use modelgates_axum::{ModelGatesAuth, ModelGatesConfig};
use modelgates_stores::SqliteStore as KeyStore;
use sqlx::SqlitePool;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore as SessionStore;

pub use error::AppError;
pub use tower_sessions::cookie::SameSite;

/// The app's name, sent to ModelGates as `X-Title` and used as the keys' label.
pub const APP_TITLE: &str = "Notes (ModelGates linked-accounts example)";

/// The model summaries use unless `MODELGATES_MODEL` is set.
pub const DEFAULT_MODEL: &str = "openai/gpt-5.2";

/// How long a session of the app lives without a request.
const SESSION_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Users, notes and sessions.
    pub db: SqlitePool,
    /// The ModelGates layer, for the job's `key_for` and `linked_accounts`.
    pub auth: ModelGatesAuth<KeyStore>,
    /// The model summaries are asked of.
    pub model: String,
}

/// The app: its routes, the ModelGates layer inside axum-login's, the session layer outside
/// both.
#[derive(Clone)]
pub struct App {
    /// The whole app, to serve.
    pub router: Router,
    /// What its handlers share (the job runs on it).
    pub state: AppState,
}

/// The layer's configuration: the `MODELGATES_*` variables, the linked-account mode over
/// axum-login's user, and ModelGates' routes under `/modelgates`.
///
/// # Errors
///
/// A [`modelgates_axum::config::ConfigError`] naming the variable to fix.
pub fn config(
    public_url: &str,
    base_url: &str,
) -> Result<ModelGatesConfig, modelgates_axum::config::ConfigError> {
    let config = ModelGatesConfig::from_lookup(|name| match name {
        "MODELGATES_PUBLIC_URL" => Some(public_url.to_owned()),
        "MODELGATES_BASE_URL" => Some(base_url.to_owned()),
        "MODELGATES_APP_TITLE" => Some(settings::var(name).unwrap_or_else(|| APP_TITLE.to_owned())),
        // A link lives as long as a key's session would: a year here, not the 30 days of a
        // sign-in cookie, so that a user connects once.
        "MODELGATES_KEY_MAX_AGE_SECS" => {
            Some(settings::var(name).unwrap_or_else(|| (365 * 24 * 3600).to_string()))
        }
        other => settings::var(other),
    })?;
    Ok(config
        .with_linked_accounts(accounts::app_user_id)
        // GET /modelgates/login, /modelgates/callback/…, POST /modelgates/disconnect
        .with_path_prefix("/modelgates")
        .with_default_return_to("/settings"))
}

/// Where and how the app runs: what [`build`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    public_url: String,
    base_url: String,
    database_url: String,
    model: String,
    session_same_site: SameSite,
}

impl Options {
    /// The app served at `public_url`, against ModelGates at `base_url`, its data in the SQLite
    /// database at `database_url` (created if missing); summaries by [`DEFAULT_MODEL`].
    #[must_use]
    pub fn new(public_url: &str, base_url: &str, database_url: &str) -> Self {
        Self {
            public_url: public_url.to_owned(),
            base_url: base_url.to_owned(),
            database_url: database_url.to_owned(),
            model: DEFAULT_MODEL.to_owned(),
            session_same_site: SameSite::Lax,
        }
    }

    /// Summaries by `model`.
    #[must_use]
    pub fn with_model(mut self, model: &str) -> Self {
        self.model = model.to_owned();
        self
    }

    /// The `SameSite` of the app's session cookie: `Lax`, the default, is what linking needs.
    /// `Strict` (tower-sessions' own default) shows the failure the layer catches: the return
    /// from ModelGates carries no app session, and the callback answers 403
    /// `app_session_missing` naming the cause.
    #[must_use]
    pub fn with_session_same_site(mut self, same_site: SameSite) -> Self {
        self.session_same_site = same_site;
        self
    }
}

/// Opens the database, creates what is missing in it, and builds the app.
///
/// # Errors
///
/// When the configuration is invalid or the database cannot be opened or migrated.
pub async fn build(options: Options) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
    let Options {
        public_url,
        base_url,
        database_url,
        model,
        session_same_site,
    } = options;
    let (public_url, base_url, database_url) = (&public_url, &base_url, &database_url);
    let config = config(public_url, base_url)?;
    let db = db::connect(database_url).await?;
    let keys = KeyStore::new(db.clone(), (&config).into());
    keys.migrate().await?;
    let sessions = SessionStore::new(db.clone());
    sessions.migrate().await?;
    let auth = ModelGatesAuth::try_new(config)?.with_store(keys);
    let state = AppState {
        db: db.clone(),
        auth: auth.clone(),
        model,
    };
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name("notes_session")
        // Lax, not tower-sessions' default Strict: the return from ModelGates is a navigation
        // from another site, on which a browser sends no Strict cookie, so the callback would
        // find nobody signed in (the layer refuses it with 403 `app_session_missing`).
        .with_same_site(session_same_site)
        .with_secure(public_url.starts_with("https://"))
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(SESSION_IDLE.as_secs() as i64),
        ));
    let login = AuthManagerLayerBuilder::new(accounts::Backend::new(db), session_layer).build();
    let router = Router::new()
        .route("/", get(accounts::home))
        .route("/signup", post(accounts::sign_up))
        .route("/signin", post(accounts::sign_in))
        .route("/signout", post(accounts::sign_out))
        .route("/settings", get(settings_page::settings))
        .route("/notes", post(notes::add))
        .route("/notes/{id}/summarise", post(notes::summarise))
        .route("/jobs/summarise", post(job::run_once))
        // No other site can make a browser post here (the layer guards its own disconnect).
        .layer(auth.same_origin())
        // Inside axum-login's layer, so that it finds the app's user in each request.
        .layer(auth)
        .layer(login)
        .with_state(state.clone());
    Ok(App { router, state })
}
