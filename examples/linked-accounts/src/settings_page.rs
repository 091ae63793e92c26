//! `GET /settings`: the app user's ModelGates connection and notes.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use modelgates_axum::oauth_core::RequestError;
use modelgates_axum::oauth_core::api::KeyInfo;
use modelgates_axum::{ApiError, ModelGatesKey};

use crate::accounts::Session;
use crate::{AppError, AppState, notes, page};

/// What the settings page says of ModelGates.
pub(crate) enum Connection {
    /// No key linked to this user; `notice` says why when it was just lost.
    NotConnected { notice: Option<&'static str> },
    /// A key is linked.
    Connected {
        manage_url: String,
        /// Its usage and limit, or why ModelGates could not say.
        usage: Result<Box<KeyInfo>, String>,
    },
}

/// `GET /settings`: signed out of the app, to `/`; signed in, the page.
///
/// # Errors
///
/// 503 when the database fails (the extractor answers 503 itself when the key store does).
pub(crate) async fn settings(
    State(state): State<AppState>,
    session: Session,
    key: Option<ModelGatesKey>,
) -> Result<Response, AppError> {
    let Some(user) = session.user.as_ref() else {
        return Ok(Redirect::to("/").into_response());
    };
    let connection = match key {
        None => Connection::NotConnected { notice: None },
        Some(key) => connection(&key).await,
    };
    let notes = notes::of_user(&state.db, user.id).await?;
    Ok(page::settings(&user.username, &connection, &notes).into_response())
}

async fn connection(key: &ModelGatesKey) -> Connection {
    match key.key_info().await {
        Ok(info) => Connection::Connected {
            manage_url: key.manage_url(),
            usage: Ok(Box::new(info)),
        },
        // The layer has unlinked it already (on every instance): say so once, here.
        Err(RequestError::KeyRejected) => Connection::NotConnected {
            notice: Some(
                "ModelGates no longer accepts the key this app had (it was revoked or has \
                 expired), so it was disconnected. Connect again to go on.",
            ),
        },
        Err(error) => Connection::Connected {
            manage_url: key.manage_url(),
            usage: Err(ApiError::from(error).to_string()),
        },
    }
}
