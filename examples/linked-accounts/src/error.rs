//! [`AppError`]: what a handler of the app answers when it cannot do what was asked.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelgates_axum::ApiError;

/// Seconds a client is asked to wait when the database is unavailable.
const RETRY_AFTER_SECS: &str = "5";

/// A failed request of the app, answered as a page that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request needs a signed-in app user and has none (401).
    #[error("Sign in to the app first.")]
    NotSignedIn,
    /// The username or the password is wrong (401); which one is not said.
    #[error("That username and password do not match an account.")]
    WrongCredentials,
    /// The username is taken (409).
    #[error("The username `{0}` is taken; choose another.")]
    UsernameTaken(String),
    /// A form field is invalid (422); the text says which and why.
    #[error("{0}")]
    Invalid(&'static str),
    /// No such note of this user (404): another user's note is not found either.
    #[error("There is no such note.")]
    NoSuchNote,
    /// The database (users, notes, sessions or links) failed to answer (503, `Retry-After`).
    #[error("The app's database is unavailable for now ({what}); try again in a moment.")]
    Unavailable {
        /// What the app was doing.
        what: &'static str,
        /// Why, for the logs only.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A call to ModelGates with the user's key failed: the layer's typed error (402 out of
    /// credits, 429, …), rendered by the layer as a page or JSON.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl AppError {
    /// [`AppError::Unavailable`] while doing `what`, for `map_err`.
    pub(crate) fn unavailable<E: std::error::Error + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| Self::Unavailable {
            what,
            source: Box::new(source),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotSignedIn | Self::WrongCredentials => StatusCode::UNAUTHORIZED,
            Self::UsernameTaken(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NoSuchNote => StatusCode::NOT_FOUND,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Api(error) => error.status(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::unavailable("reading or writing notes")(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Api(error) = self {
            return error.into_response();
        }
        let status = self.status();
        if let Self::Unavailable { what, source } = &self {
            tracing::warn!(what, error = %source, "the database failed");
        }
        let page = crate::page::message(status, &self.to_string());
        let mut response = (status, page).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.parse().unwrap());
        }
        response
    }
}
