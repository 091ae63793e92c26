//! The emulator's HTML pages.
//!
//! Every value that came from a request is HTML-escaped before it is placed in a page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

pub(crate) async fn home() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>ModelGates emulator</title></head><body>",
        "<h1>ModelGates emulator</h1>",
        "<p>A local stand-in for ModelGates' OAuth PKCE flow, for development and tests. ",
        "It serves <code>GET /auth</code>, <code>POST /api/v1/auth/keys</code> and ",
        "<code>POST /api/v1/chat/completions</code>. Its keys spend nothing.</p>",
        "</body></html>"
    ))
}

/// A 400 page for a malformed `/auth` request.
pub(crate) fn bad_auth_request(reason: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Bad authorization request</title></head><body>\
         <h1>Bad authorization request</h1><p>{}</p></body></html>",
        text(reason)
    );
    (StatusCode::BAD_REQUEST, Html(page)).into_response()
}

/// The consent page: names the app by its callback origin, shows the key's spend limit (which
/// the person may change) and label, and who approves; Approve and Deny as a form POST.
pub(crate) fn consent(
    origin: &str,
    consent_id: &str,
    ask: &crate::account::KeyAsk,
    person: Option<&str>,
) -> Response {
    let limit = ask.limit.map(|l| l.to_string()).unwrap_or_default();
    let label = ask.label.as_deref().unwrap_or("(none)");
    let who = match person {
        Some(user) => format!(
            "<p>Signed in as <span id=\"person\">{}</span>. \
             <label><input type=\"checkbox\" name=\"person\" value=\"new\" id=\"another-person\"> \
             Approve as another person</label></p>",
            text(user)
        ),
        None => "<p>You will be signed in as a new person.</p>".to_owned(),
    };
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize app – ModelGates emulator</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}</style></head><body>
<h1>Authorize <span id="app-origin">{origin}</span></h1>
<p>This app asks for a ModelGates API key that spends from your account.</p>
<form method="post" action="/auth/consent">
<input type="hidden" name="consent_id" value="{consent_id}">
<p>Key label: <span id="key-label">{label}</span></p>
<p><label>Spend limit (credits, empty for the default):
<input type="number" name="limit" id="limit" min="0.01" step="0.01" value="{limit}"></label></p>
{who}
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>"#,
        origin = text(origin),
        consent_id = attr(consent_id),
        label = text(label),
        limit = attr(&limit),
    );
    (
        [
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            (
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        Html(page),
    )
        .into_response()
}

/// The answer to a headless sign-in's approval: the code, for the person to paste into the
/// tool that asked, in `<code id="code">`.
pub(crate) fn code_page(code: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Your sign-in code – ModelGates emulator</title></head><body>\
         <h1>Approved</h1><p>Paste this code into the tool that asked for it:</p>\
         <p><code id=\"code\">{}</code></p><p>It works once, within a few minutes.</p></body></html>",
        text(code)
    );
    no_store(Html(page))
}

/// The answer to a headless sign-in's denial.
pub(crate) fn denied_page() -> Response {
    no_store(Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Denied – ModelGates emulator</title></head><body>\
         <h1 id=\"denied\">Access denied</h1><p>No key was issued. You can close this tab.</p>\
         </body></html>"
            .to_owned(),
    ))
}

fn no_store(page: Html<String>) -> Response {
    (
        [
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
            ("content-security-policy", "default-src 'none'"),
        ],
        page,
    )
        .into_response()
}
