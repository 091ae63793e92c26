//! The user's notes and their summaries: `POST /notes`, `POST /notes/{id}/summarise`, and
//! what the settings page and the job read and write.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use modelgates_axum::extract::ModelGatesKeyRejection;
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use modelgates_axum::{ApiError, ModelGatesKey};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqlitePool};

use crate::accounts::{Session, signed_in};
use crate::{AppError, AppState};

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;
/// The longest summary kept, in characters (a model may say more than asked).
const MAX_SUMMARY_CHARS: usize = 2_000;
/// Most tokens a summary may cost the user.
const MAX_SUMMARY_TOKENS: u32 = 200;

/// A note of the user's, as the settings page shows it.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub(crate) id: i64,
    pub(crate) text: String,
    pub(crate) summary: Option<String>,
    /// The code and message of the error that stopped the last try (`insufficient_credits`, …).
    pub(crate) error: Option<(String, String)>,
}

impl<'r> sqlx::FromRow<'r, SqliteRow> for Note {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
        let code: Option<String> = row.try_get("summary_error")?;
        let message: Option<String> = row.try_get("summary_error_message")?;
        Ok(Self {
            id: row.try_get("id")?,
            text: row.try_get("text")?,
            summary: row.try_get("summary")?,
            error: code.map(|code| (code, message.unwrap_or_default())),
        })
    }
}

/// The columns a [`Note`] is read from.
macro_rules! note_columns {
    () => {
        "id, text, summary, summary_error, summary_error_message"
    };
}
const NOTES_OF_USER: &str = concat!(
    "SELECT ",
    note_columns!(),
    " FROM notes WHERE user_id = ? ORDER BY id DESC"
);
const UNSUMMARISED: &str = concat!(
    "SELECT ",
    note_columns!(),
    " FROM notes WHERE user_id = ? AND summary IS NULL ORDER BY id LIMIT ?"
);
const NOTE_OF_USER: &str = concat!(
    "SELECT ",
    note_columns!(),
    " FROM notes WHERE id = ? AND user_id = ?"
);

/// The user's notes, newest first.
pub(crate) async fn of_user(db: &SqlitePool, user_id: i64) -> Result<Vec<Note>, sqlx::Error> {
    sqlx::query_as(NOTES_OF_USER)
        .bind(user_id)
        .fetch_all(db)
        .await
}

/// Up to `limit` of the user's notes without a summary, oldest first.
pub(crate) async fn unsummarised(
    db: &SqlitePool,
    user_id: i64,
    limit: u32,
) -> Result<Vec<Note>, sqlx::Error> {
    sqlx::query_as(UNSUMMARISED)
        .bind(user_id)
        .bind(limit)
        .fetch_all(db)
        .await
}

async fn note_of(db: &SqlitePool, user_id: i64, id: i64) -> Result<Note, AppError> {
    sqlx::query_as(NOTE_OF_USER)
        .bind(id)
        .bind(user_id)
        .fetch_optional(db)
        .await?
        .ok_or(AppError::NoSuchNote)
}

/// Keeps what a try at summarising note `id` gave: the summary, or the error that stopped it.
pub(crate) async fn record(
    db: &SqlitePool,
    id: i64,
    outcome: &Result<String, ApiError>,
) -> Result<(), sqlx::Error> {
    let (summary, code, message) = match outcome {
        Ok(summary) => (Some(summary.as_str()), None, None),
        Err(error) => (None, Some(error.code()), Some(error.to_string())),
    };
    sqlx::query(
        "UPDATE notes SET summary = ?, summary_error = ?, summary_error_message = ? WHERE id = ?",
    )
    .bind(summary)
    .bind(code)
    .bind(message)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// The request for a summary of `text`.
fn summary_request(model: &str, text: &str) -> Result<CreateChatCompletionRequest, ApiError> {
    Ok(CreateChatCompletionRequestArgs::default()
        .model(model)
        .max_completion_tokens(MAX_SUMMARY_TOKENS)
        .messages([
            ChatCompletionRequestSystemMessage::from("Summarise the user's note in one sentence.")
                .into(),
            ChatCompletionRequestUserMessage::from(text).into(),
        ])
        .build()?)
}

/// A summary of `text`, paid with `key`: a whole answer, for the job and for pages without
/// JavaScript.
pub(crate) async fn summary_of(
    key: &ModelGatesKey,
    model: &str,
    text: &str,
) -> Result<String, ApiError> {
    let reply = key
        .openai()
        .chat()
        .create(summary_request(model, text)?)
        .await?;
    let summary = reply
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .unwrap_or_default();
    Ok(summary.trim().chars().take(MAX_SUMMARY_CHARS).collect())
}

/// The note form.
#[derive(Debug, serde::Deserialize)]
pub struct NoteForm {
    /// The note.
    pub text: String,
}

/// `POST /notes`: adds a note of the signed-in user's.
///
/// # Errors
///
/// 401 signed out of the app, 422 for an empty or too long note, 503 when the database fails.
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<NoteForm>,
) -> Result<Redirect, AppError> {
    let user = signed_in(&session)?;
    let text = form.text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(AppError::Invalid("A note is 1 to 10,000 characters."));
    }
    sqlx::query("INSERT INTO notes (user_id, text) VALUES (?, ?)")
        .bind(user.id)
        .bind(text)
        .execute(&state.db)
        .await?;
    Ok(Redirect::to("/settings"))
}

/// `POST /notes/{id}/summarise`: summarises one of the user's notes with the user's key.
/// With `Accept: text/event-stream` the summary streams to the page (shown, not kept: the job
/// keeps summaries); otherwise it is kept with the note, or the error that stopped it is, and
/// the page is shown again.
///
/// # Errors
///
/// 401 signed out of the app, 404 for a note that is not the user's, the extractor's 401
/// `not_connected` when ModelGates is not connected, the layer's typed errors of the call
/// (402 out of credits, 429, …), 503 when the database fails.
pub async fn summarise(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    headers: HeaderMap,
    key: Result<ModelGatesKey, ModelGatesKeyRejection>,
) -> Result<Response, AppError> {
    let user = signed_in(&session)?;
    let note = note_of(&state.db, user.id, id).await?;
    let key = match key {
        Ok(key) => key,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    if wants_stream(&headers) {
        let request = summary_request(&state.model, &note.text)?;
        return Ok(key.stream_chat(request).await?.into_response());
    }
    let outcome = summary_of(&key, &state.model, &note.text).await;
    record(&state.db, note.id, &outcome).await?;
    outcome?;
    Ok(Redirect::to(&format!("/settings#note-{}", note.id)).into_response())
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/event-stream"))
}
