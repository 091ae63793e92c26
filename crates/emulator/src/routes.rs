//! The emulator's routes, and the middleware that logs requests and records what a gateway
//! reads from them.

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::state::{AttributionRecord, Shared};
use crate::{api, auth, chat, keys, manage, pages};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/auth", get(auth::authorize))
        .route("/auth/consent", post(auth::decide))
        .route("/api/v1/auth/keys", any(keys::exchange))
        .route("/api/v1/chat/completions", any(chat::completions))
        .route("/api/v1/key", get(api::key_info))
        .route("/api/v1/models", get(api::models))
        .route("/api/v1/models/user", get(api::user_models))
        .route("/keys/{hash}", get(manage::page).post(manage::revoke))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            record_attribution,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(shared)
}

/// Records the attribution headers of every `/api/v1` request, as a gateway would read them.
async fn record_attribution(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.uri().path().starts_with("/api/v1/") {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        shared.record_attribution(AttributionRecord {
            path: request.uri().path().to_owned(),
            referer: header("http-referer"),
            title: header("x-title"),
        });
    }
    next.run(request).await
}

/// Logs method, path and status of each request; never a query string, a body or a header,
/// so no code, verifier or key reaches the log.
async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), "emulator request");
    response
}
