//! The app's own accounts: a username and a password (hashed with Argon2 by `password-auth`),
//! signed in with axum-login, whose `AuthSession` tells the ModelGates layer who the user of a
//! request is ([`app_user_id`]).

use axum::Form;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_login::{AuthSession, AuthUser, AuthnBackend};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqlitePool};

use crate::AppError;

/// The longest username, in characters.
const MAX_USERNAME_CHARS: usize = 64;
/// The shortest password accepted, in characters.
const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in bytes (Argon2 takes any length; a bound keeps the work
/// per request bounded).
const MAX_PASSWORD_BYTES: usize = 1024;

/// A user of the app.
#[derive(Clone)]
pub struct User {
    /// The id the ModelGates link is kept under (as a string).
    pub id: i64,
    /// What the user signs in with.
    pub username: String,
    password_hash: String,
}

impl<'r> sqlx::FromRow<'r, SqliteRow> for User {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
        })
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl AuthUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    /// A new password ends the sessions signed in with the old one.
    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

/// The sign-up and sign-in form.
#[derive(Clone, serde::Deserialize)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password, never logged.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why the backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The password hashing task failed.
    #[error(transparent)]
    Hashing(#[from] tokio::task::JoinError),
}

/// axum-login's backend: users in the `users` table.
#[derive(Debug, Clone)]
pub struct Backend {
    db: SqlitePool,
}

impl Backend {
    /// A backend over the app's database.
    #[must_use]
    pub fn new(db: SqlitePool) -> Self {
        Self { db }
    }
}

/// A hash checked when the username is unknown, so that a wrong username takes as long as a
/// wrong password and the answer's timing does not tell which usernames exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password_auth::generate_hash("not a password of anyone"))
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = BackendError;

    async fn authenticate(&self, credentials: Credentials) -> Result<Option<User>, BackendError> {
        let user: Option<User> =
            sqlx::query_as("SELECT id, username, password_hash FROM users WHERE username = ?")
                .bind(&credentials.username)
                .fetch_optional(&self.db)
                .await?;
        // Argon2 takes tens of milliseconds of CPU: off the async threads.
        tokio::task::spawn_blocking(move || {
            let hash = match &user {
                Some(user) => user.password_hash.as_str(),
                None => decoy_hash(),
            };
            let matches = password_auth::verify_password(&credentials.password, hash).is_ok();
            if matches { user } else { None }
        })
        .await
        .map_err(BackendError::from)
    }

    async fn get_user(&self, id: &i64) -> Result<Option<User>, BackendError> {
        Ok(
            sqlx::query_as("SELECT id, username, password_hash FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.db)
                .await?,
        )
    }
}

/// The request's app session, as axum-login's extractor gives it.
pub type Session = AuthSession<Backend>;

/// The app user of a request, for the ModelGates layer
/// (`ModelGatesConfig::with_linked_accounts`): axum-login's layer, outside it, has put the
/// `AuthSession` in the request's extensions.
pub fn app_user_id(parts: &Parts) -> Option<String> {
    let session = parts.extensions.get::<Session>()?;
    Some(session.user.as_ref()?.id.to_string())
}

/// The signed-in user of `session`, or [`AppError::NotSignedIn`].
pub(crate) fn signed_in(session: &Session) -> Result<&User, AppError> {
    session.user.as_ref().ok_or(AppError::NotSignedIn)
}

/// `GET /`: a signed-in user goes to their settings; anyone else gets the forms.
pub async fn home(session: Session) -> Response {
    match session.user {
        Some(_) => Redirect::to("/settings").into_response(),
        None => crate::page::welcome().into_response(),
    }
}

/// `POST /signup`: creates the account and signs it in.
///
/// # Errors
///
/// 422 for an invalid username or password, 409 for a taken username, 503 when the database
/// fails.
pub async fn sign_up(
    mut session: Session,
    Form(credentials): Form<Credentials>,
) -> Result<Redirect, AppError> {
    let username = credentials.username.trim().to_owned();
    check_username(&username)?;
    check_password(&credentials.password)?;
    let password = credentials.password;
    let password_hash = tokio::task::spawn_blocking(move || password_auth::generate_hash(password))
        .await
        .map_err(AppError::unavailable("hashing the password"))?;
    let created: Result<User, sqlx::Error> = sqlx::query_as(
        "INSERT INTO users (username, password_hash) VALUES (?, ?) \
         RETURNING id, username, password_hash",
    )
    .bind(&username)
    .bind(password_hash)
    .fetch_one(&session.backend.db)
    .await;
    let user = match created {
        Ok(user) => user,
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            return Err(AppError::UsernameTaken(username));
        }
        Err(error) => return Err(error.into()),
    };
    log_in(&mut session, &user).await?;
    tracing::info!(user = user.id, "signed up");
    Ok(Redirect::to("/settings"))
}

/// `POST /signin`: signs in with a username and a password.
///
/// # Errors
///
/// 401 when they match no account, 503 when the database fails.
pub async fn sign_in(
    mut session: Session,
    Form(mut credentials): Form<Credentials>,
) -> Result<Redirect, AppError> {
    credentials.username = credentials.username.trim().to_owned();
    if credentials.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::WrongCredentials);
    }
    let user = session
        .authenticate(credentials)
        .await
        .map_err(AppError::unavailable("checking the password"))?
        .ok_or(AppError::WrongCredentials)?;
    log_in(&mut session, &user).await?;
    Ok(Redirect::to("/settings"))
}

/// `POST /signout`: ends the app session. The user's ModelGates link stays: it is theirs, and
/// it is used again when they sign in (and by the background job meanwhile).
///
/// # Errors
///
/// 503 when the session store fails.
pub async fn sign_out(mut session: Session) -> Result<Redirect, AppError> {
    session
        .logout()
        .await
        .map_err(AppError::unavailable("ending the session"))?;
    Ok(Redirect::to("/"))
}

async fn log_in(session: &mut Session, user: &User) -> Result<(), AppError> {
    // axum-login cycles the session id on login: no session fixation.
    session
        .login(user)
        .await
        .map_err(AppError::unavailable("starting the session"))
}

fn check_username(username: &str) -> Result<(), AppError> {
    let valid = !username.is_empty()
        && username.chars().count() <= MAX_USERNAME_CHARS
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(AppError::Invalid(
            "A username is 1 to 64 letters, digits, dots, dashes or underscores.",
        ))
    }
}

fn check_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        Err(AppError::Invalid(
            "A password is at least 8 characters (and at most 1024 bytes).",
        ))
    } else {
        Ok(())
    }
}

/// The id of the user called `username`, if there is one (for an admin's tools and tests).
///
/// # Errors
///
/// When the database fails.
pub async fn id_of(db: &SqlitePool, username: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE username = ?")
        .bind(username)
        .fetch_optional(db)
        .await
}
