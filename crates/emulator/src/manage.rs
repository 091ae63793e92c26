//! `/keys/<hex SHA-256 of a key>`: the key's page, where its owner sees its label, limit and
//! usage (`GET`) and revokes it (`POST`), as on ModelGates. Apps link here with the key's hash
//! so that the key itself never appears in a URL.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use html_escape::encode_text as text;

use crate::account::KeyRecord;
use crate::state::Shared;

pub(crate) async fn page(State(shared): State<Arc<Shared>>, Path(hash): Path<String>) -> Response {
    match shared.accounts.key_by_hash(&hash) {
        Some((_, record)) => Html(render(&hash, &record)).into_response(),
        None => not_found(),
    }
}

pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> Response {
    match shared.accounts.key_by_hash(&hash) {
        Some((key, _)) => {
            shared.accounts.revoke(&key);
            let record = shared.accounts.key(&key).expect("the key was just found");
            Html(render(&hash, &record)).into_response()
        }
        None => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html("<h1>No such key</h1>")).into_response()
}

fn render(hash: &str, record: &KeyRecord) -> String {
    let limit = record
        .limit
        .map_or_else(|| "none".to_owned(), |limit| format!("{limit:.2} credits"));
    let state = if record.revoked {
        "<p id=\"state\">This key is revoked.</p>".to_owned()
    } else {
        format!(
            "<form method=\"post\" action=\"/keys/{}\"><button id=\"revoke\">Revoke this key</button></form>",
            text(hash)
        )
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Your key – ModelGates emulator</title></head><body>\
         <h1 id=\"label\">{label}</h1><p>Owner: {owner}</p>\
         <p>Limit: <span id=\"limit\">{limit}</span>; spent: <span id=\"usage\">{usage:.6}</span> credits</p>\
         {state}</body></html>",
        label = text(&record.label),
        owner = text(&record.user_id),
        usage = record.usage,
    )
}
