//! The handlers: the home page, the chat and the key's usage line. Each takes the signed-in
//! user's key with the `ModelGatesKey` extractor; signed out, the extractor answers for them
//! (a browser is sent to sign in, a script gets a 401), so no handler builds that answer.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use modelgates_axum::ApiError;
use modelgates_axum::ModelGatesKey;
use modelgates_axum::oauth_core::RequestError;
use modelgates_axum::oauth_core::api::{KeyInfo, ModelInfo};
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};

use crate::{AppState, MAX_MESSAGE_CHARS, page};

/// One turn of the conversation, as the page keeps it in its `history` field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
}

/// The most turns a conversation sent back by the page may hold.
pub const MAX_TURNS: usize = 50;
/// The most bytes the `history` field may hold.
pub const MAX_HISTORY_BYTES: usize = 100_000;

/// The models to offer: ModelGates' list, fetched once; the configured model alone while the
/// list cannot be had.
async fn models(state: &AppState, key: &ModelGatesKey) -> Vec<ModelInfo> {
    if let Some(models) = state.models.get() {
        return models.clone();
    }
    match key.models().await {
        Ok(models) if !models.is_empty() => {
            state.models.get_or_init(|| async { models }).await.clone()
        }
        Ok(_) => vec![fallback_model(&state.model)],
        Err(error) => {
            tracing::warn!(%error, "the models list is unavailable");
            vec![fallback_model(&state.model)]
        }
    }
}

fn fallback_model(id: &str) -> ModelInfo {
    serde_json::from_value(serde_json::json!({ "id": id, "name": id })).expect("a model object")
}

/// `GET /`: the connect page signed out, the chat signed in.
pub async fn home(
    State(state): State<AppState>,
    key: Option<ModelGatesKey>,
) -> Result<Response, ApiError> {
    let Some(key) = key else {
        return Ok(page::connect(state.key_limit).into_response());
    };
    Ok(render(&state, &key, &state.model, &[], None)
        .await?
        .into_response())
}

/// `GET /usage`: the key's usage line, for the page to refresh after a streamed reply. Plain
/// text holding the gateway's numbers, so never sniffed as anything else.
pub async fn usage(key: ModelGatesKey) -> Result<Response, ApiError> {
    let line = page::usage_line(key_info(&key).await?.as_ref());
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        line,
    )
        .into_response())
}

/// The key's limit and usage; `None` when ModelGates cannot say. A revoked key is an
/// [`ApiError::KeyRejected`], which signs the user out on its way through the layer.
async fn key_info(key: &ModelGatesKey) -> Result<Option<KeyInfo>, ApiError> {
    match key.key_info().await {
        Ok(info) => Ok(Some(info)),
        Err(RequestError::KeyRejected) => Err(ApiError::KeyRejected),
        Err(error) => {
            tracing::warn!(%error, "the key's usage is unavailable");
            Ok(None)
        }
    }
}

/// The chat form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct ChatForm {
    message: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    history: Option<String>,
}

impl ChatForm {
    /// The earlier turns, checked: at most [`MAX_TURNS`] of `user` and `assistant`.
    fn history(&self) -> Result<Vec<Turn>, &'static str> {
        let Some(raw) = self.history.as_deref().filter(|h| !h.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        if raw.len() > MAX_HISTORY_BYTES {
            return Err("The conversation is too long; reload the page to start a new one.");
        }
        let turns: Vec<Turn> = serde_json::from_str(raw)
            .map_err(|_| "The conversation could not be read; reload the page.")?;
        let valid = turns.len() <= MAX_TURNS
            && turns
                .iter()
                .all(|t| t.role == "user" || t.role == "assistant");
        if valid {
            Ok(turns)
        } else {
            Err("The conversation could not be read; reload the page.")
        }
    }

    /// The model asked for, if it looks like a model id; the default otherwise.
    fn model<'a>(&'a self, default: &'a str) -> &'a str {
        self.model
            .as_deref()
            .filter(|m| {
                !m.is_empty()
                    && m.len() <= 100
                    && m.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/._:-".contains(&b))
            })
            .unwrap_or(default)
    }
}

/// The request for ModelGates: the earlier turns, then the new message.
fn completion_request(
    model: &str,
    history: &[Turn],
    message: &str,
) -> Result<CreateChatCompletionRequest, ApiError> {
    let mut messages: Vec<ChatCompletionRequestMessage> = Vec::with_capacity(history.len() + 1);
    for turn in history {
        messages.push(if turn.role == "assistant" {
            ChatCompletionRequestAssistantMessageArgs::default()
                .content(turn.content.as_str())
                .build()?
                .into()
        } else {
            ChatCompletionRequestUserMessage::from(turn.content.as_str()).into()
        });
    }
    messages.push(ChatCompletionRequestUserMessage::from(message).into());
    Ok(CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages(messages)
        .build()?)
}

/// `POST /chat`: the model's reply, paid with the user's key: streamed as server-sent events
/// (`Accept: text/event-stream`, see `modelgates_axum::sse`), or the whole page again.
pub async fn chat(
    State(state): State<AppState>,
    key: ModelGatesKey,
    headers: HeaderMap,
    Form(form): Form<ChatForm>,
) -> Result<Response, ApiError> {
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let message = form.message.trim();
    let model = form.model(&state.model).to_owned();
    let history = form.history();
    let problem = match &history {
        Err(problem) => Some(*problem),
        Ok(_) if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS => {
            Some("Please write a message of 1 to 4000 characters.")
        }
        Ok(_) => None,
    };
    let mut history = history.unwrap_or_default();
    // A browser posting the form gets the chat page again, with the error in it; a script
    // (or a stream) gets the `ApiError` as JSON, with its `Retry-After`.
    let wants_page = !streaming && modelgates_axum::prefers_html(&headers);
    if let Some(problem) = problem {
        let error = ApiError::InvalidRequest(problem.to_owned());
        if !wants_page {
            return Err(error);
        }
        return page_with_error(&state, &key, &model, &history, &error, problem).await;
    }
    let request = completion_request(&model, &history, message)?;
    if streaming {
        return Ok(key.stream_chat(request).await?.into_response());
    }
    history.push(Turn {
        role: "user".into(),
        content: message.to_owned(),
    });
    match key.openai().chat().create(request).await {
        Ok(reply) => {
            let text = reply
                .choices
                .first()
                .and_then(|c| c.message.content.clone())
                .unwrap_or_else(|| "(the model sent no text)".to_owned());
            history.push(Turn {
                role: "assistant".into(),
                content: text,
            });
            Ok(render(&state, &key, &model, &history, None)
                .await
                .into_response())
        }
        Err(error) => {
            let error = ApiError::from(error);
            tracing::warn!(%error, "chat call failed");
            // A revoked key signs the user out on its way through the layer, page or not.
            if !wants_page || matches!(error, ApiError::KeyRejected) {
                return Err(error);
            }
            let alert = format!("The model could not answer: {error}");
            page_with_error(&state, &key, &model, &history, &error, &alert).await
        }
    }
}

/// The chat page again with `alert` shown, answered with `error`'s status and `Retry-After`.
async fn page_with_error(
    state: &AppState,
    key: &ModelGatesKey,
    model: &str,
    history: &[Turn],
    error: &ApiError,
    alert: &str,
) -> Result<Response, ApiError> {
    let page = render(state, key, model, history, Some(alert)).await?;
    let mut response = (error.status(), page).into_response();
    if let Some(wait) = error.retry_after() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.max(1).into());
    }
    Ok(response)
}

/// The chat page with the key's usage and the models list.
async fn render(
    state: &AppState,
    key: &ModelGatesKey,
    model: &str,
    history: &[Turn],
    alert: Option<&str>,
) -> Result<Html<String>, ApiError> {
    let (usage, models) = tokio::join!(key_info(key), models(state, key));
    Ok(page::ChatPage {
        key,
        usage: usage?.as_ref(),
        models: &models,
        model,
        history,
        alert,
    }
    .render())
}
