//! The background job: every linked user, 100 at a time, has their new notes summarised with
//! their own key. `POST /jobs/summarise` runs it once; `main.rs` runs it every
//! `JOB_INTERVAL_SECS`.
//!
//! A user's notes stop at the first failure of this run: a key out of credits or past its limit
//! (402) fails the same way for every note, so the error is kept with the note (the settings
//! page shows it) and the next run tries again. A key ModelGates rejects (401) is unlinked by
//! the layer as the call sees it, on every instance; that user is skipped from then on.

use std::time::Duration;

use axum::Json;
use axum::extract::State;

use crate::{AppError, AppState, notes};

/// Linked users read per page.
const USERS_PER_PAGE: usize = 100;
/// Notes summarised per user and run: the most one run may spend of a user's credits.
const NOTES_PER_USER: u32 = 20;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobReport {
    /// Notes summarised.
    pub summarised: u64,
    /// Users whose notes stopped at an error, with its code.
    pub failed: Vec<Failure>,
}

/// A user whose notes stopped at an error in this run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The app user id.
    pub user: String,
    /// The error's code: `insufficient_credits`, `key_limit_reached`, `key_rejected`, …
    pub error: &'static str,
    /// What the user can do about it.
    pub message: String,
}

/// Runs the job once over every linked user.
///
/// # Errors
///
/// [`AppError::Unavailable`] when the database fails; the notes summarised before it are kept.
pub async fn summarise_new_notes(state: &AppState) -> Result<JobReport, AppError> {
    let mut report = JobReport::default();
    let mut pages = state.auth.linked_accounts(USERS_PER_PAGE);
    while let Some(accounts) = pages
        .next_page()
        .await
        .map_err(AppError::unavailable("reading the ModelGates links"))?
    {
        for account in accounts {
            summarise_for(state, &account, &mut report).await?;
        }
    }
    Ok(report)
}

/// The new notes of one linked user, with their key.
async fn summarise_for(
    state: &AppState,
    account: &str,
    report: &mut JobReport,
) -> Result<(), AppError> {
    let Ok(user_id) = account.parse::<i64>() else {
        tracing::warn!(account, "a link that names no user of this app");
        return Ok(());
    };
    let notes = notes::unsummarised(&state.db, user_id, NOTES_PER_USER).await?;
    if notes.is_empty() {
        return Ok(());
    }
    // Disconnected since the page was read: nothing to spend.
    let Some(key) = state
        .auth
        .key_for(account)
        .await
        .map_err(AppError::unavailable("reading a ModelGates link"))?
    else {
        return Ok(());
    };
    for note in notes {
        let outcome = notes::summary_of(&key, &state.model, &note.text).await;
        notes::record(&state.db, note.id, &outcome).await?;
        match outcome {
            Ok(_) => report.summarised += 1,
            Err(error) => {
                tracing::info!(account, error = error.code(), "a summary failed");
                report.failed.push(Failure {
                    user: account.to_owned(),
                    error: error.code(),
                    message: error.to_string(),
                });
                break;
            }
        }
    }
    Ok(())
}

/// `POST /jobs/summarise`: runs the job once, answering `{"summarised": n, "failed": […]}`.
/// (A deployed app runs it from its scheduler; here anyone may ask, but no other site.)
///
/// # Errors
///
/// 503 with `Retry-After` when the database fails.
pub async fn run_once(State(state): State<AppState>) -> Result<Json<JobReport>, AppError> {
    Ok(Json(summarise_new_notes(&state).await?))
}

/// Runs the job every `interval`, for as long as the process lives.
pub async fn every(state: AppState, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match summarise_new_notes(&state).await {
            Ok(report) => {
                tracing::info!(
                    summarised = report.summarised,
                    failed = report.failed.len(),
                    "the summarising job ran"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "the summarising job stopped; it runs again later");
            }
        }
    }
}
