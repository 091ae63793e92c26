//! The app's HTML: the welcome page, the settings page and message pages. Every value shown is
//! HTML-escaped. Without JavaScript every form posts and a whole page answers; with it, a
//! note's Summarise button streams the summary into the page.

use axum::http::StatusCode;
use axum::response::Html;
use html_escape::{encode_double_quoted_attribute as attribute, encode_text as text};
use modelgates_axum::oauth_core::api::KeyInfo;

use crate::notes::{MAX_NOTE_CHARS, Note};
use crate::settings_page::Connection;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2.5rem auto;padding:0 1rem;color:#1d1d1f}\
button,input,textarea{font:inherit}button{cursor:pointer;padding:.35rem .8rem}\
textarea{width:100%;box-sizing:border-box;padding:.5rem}\
section{border:1px solid #e5e7eb;border-radius:.5rem;padding:0 1rem 1rem;margin:1.25rem 0}\
.error{color:#991b1b}.summary{background:#f3f4f6;border-radius:.4rem;padding:.5rem .75rem;white-space:pre-wrap}\
.summary:empty{display:none}li{margin:.75rem 0}small{color:#6b7280}\
header{display:flex;justify-content:space-between;align-items:center}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        title = text(title)
    ))
}

/// A page that says `message` (an error of the app), with a way back.
pub(crate) fn message(status: StatusCode, message: &str) -> Html<String> {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        title,
        &format!(
            "<h1>{title}</h1><p id=\"message\">{message}</p><p><a href=\"/\">Back to the app</a></p>",
            title = text(title),
            message = text(message),
        ),
    )
}

/// `GET /` signed out: sign up or sign in.
pub(crate) fn welcome() -> Html<String> {
    let form = |action: &str, id: &str, label: &str, autocomplete: &str| {
        format!(
            "<form method=\"post\" action=\"/{action}\"><h2>{label}</h2>\
             <p><label>Username <input name=\"username\" id=\"{id}-username\" required \
             maxlength=\"64\" autocomplete=\"username\"></label></p>\
             <p><label>Password <input type=\"password\" name=\"password\" id=\"{id}-password\" \
             required minlength=\"8\" autocomplete=\"{autocomplete}\"></label></p>\
             <button type=\"submit\" id=\"{id}\">{label}</button></form>"
        )
    };
    page(
        "Notes",
        &format!(
            "<h1>Notes</h1><p>Notes with summaries paid from your own ModelGates account, which \
             you connect once signed in.</p><section>{}</section><section>{}</section>",
            form("signup", "signup", "Create an account", "new-password"),
            form("signin", "signin", "Sign in", "current-password"),
        ),
    )
}

/// `GET /settings`: who is signed in, the ModelGates connection, the notes.
pub(crate) fn settings(username: &str, connection: &Connection, notes: &[Note]) -> Html<String> {
    page(
        "Settings · Notes",
        &format!(
            "<header><h1>Notes</h1><form method=\"post\" action=\"/signout\">\
             <small id=\"username\">{username}</small> \
             <button type=\"submit\" id=\"signout\">Sign out</button></form></header>\
             <section id=\"modelgates\"><h2>ModelGates</h2>{connection}</section>\
             <section><h2>Your notes</h2>\
             <form method=\"post\" action=\"/notes\"><textarea name=\"text\" id=\"note-text\" \
             rows=\"3\" required maxlength=\"{MAX_NOTE_CHARS}\"></textarea>\
             <p><button type=\"submit\" id=\"add-note\">Add note</button></p></form>\
             <ul id=\"notes\">{notes}</ul></section>{SCRIPT}",
            username = text(username),
            connection = connection_html(connection),
            notes = notes.iter().map(note_html).collect::<String>(),
        ),
    )
}

fn connection_html(connection: &Connection) -> String {
    match connection {
        Connection::NotConnected { notice } => format!(
            "{notice}<p id=\"status\">Not connected.</p>\
             <p>Connect your ModelGates account to have your notes summarised, paid from your own \
             credits. You can limit what this app may spend, and disconnect at any time.</p>\
             <form method=\"get\" action=\"/modelgates/login\">\
             <p><label for=\"limit\">Spend limit for this app (credits, optional)</label> \
             <input type=\"number\" id=\"limit\" name=\"limit\" min=\"0.01\" step=\"0.01\"></p>\
             <button type=\"submit\" id=\"connect\">Connect ModelGates</button></form>",
            notice = notice
                .map(|n| format!("<p class=\"error\" id=\"notice\">{}</p>", text(n)))
                .unwrap_or_default(),
        ),
        Connection::Connected { manage_url, usage } => format!(
            "<p id=\"status\">Connected.</p>{usage}\
             <p><a id=\"manage\" href=\"{manage}\">Manage this app's key on ModelGates</a> \
             (its limit, its usage, or revoke it).</p>\
             <form method=\"post\" action=\"/modelgates/disconnect\">\
             <button type=\"submit\" id=\"disconnect\">Disconnect</button></form>",
            usage = usage_html(usage),
            manage = attribute(manage_url),
        ),
    }
}

fn usage_html(usage: &Result<Box<KeyInfo>, String>) -> String {
    let info = match usage {
        Ok(info) => info,
        Err(problem) => {
            return format!(
                "<p class=\"error\" id=\"usage\">Usage unavailable: {}</p>",
                text(problem)
            );
        }
    };
    let credits = |amount: f64| format!("{amount:.2}");
    let line = match (info.limit, info.limit_remaining) {
        (Some(limit), Some(remaining)) => format!(
            "Spent {} of a {} credit limit; {} remaining.",
            credits(info.usage),
            credits(limit),
            credits(remaining)
        ),
        (Some(limit), None) => format!(
            "Spent {} of a {} credit limit.",
            credits(info.usage),
            credits(limit)
        ),
        (None, _) => format!("Spent {} credits; no limit.", credits(info.usage)),
    };
    let spent = info
        .limit_remaining
        .is_some_and(|remaining| remaining <= 0.0);
    let warning = if spent {
        "<p class=\"error\" id=\"limit-spent\">This app has spent the limit you set: raise it on \
         ModelGates to go on.</p>"
    } else {
        ""
    };
    format!(
        "<p id=\"usage\">{}</p><p><small>Key: {}</small></p>{warning}",
        text(&line),
        text(&info.label)
    )
}

fn note_html(note: &Note) -> String {
    let error = note
        .error
        .as_ref()
        .filter(|_| note.summary.is_none())
        .map(|(code, message)| {
            format!(
                "<p class=\"error\" id=\"summary-error-{id}\" data-code=\"{code}\">Not summarised: {message}</p>",
                id = note.id,
                code = attribute(code),
                message = text(message),
            )
        })
        .unwrap_or_default();
    format!(
        "<li id=\"note-{id}\"><div class=\"text\">{note_text}</div>\
         <p class=\"summary\" id=\"summary-{id}\">{summary}</p>{error}\
         <form method=\"post\" action=\"/notes/{id}/summarise\" class=\"summarise\" data-note=\"{id}\">\
         <button type=\"submit\" id=\"summarise-{id}\">Summarise</button></form></li>",
        id = note.id,
        note_text = text(&note.text),
        summary = text(note.summary.as_deref().unwrap_or_default()),
    )
}

/// Streams a note's summary into the page: `POST` with `Accept: text/event-stream`, unnamed
/// events `{"delta": "…"}`, then `done`, or `error` (see `modelgates_axum::sse`).
const SCRIPT: &str = r#"<script>
(() => {
  for (const form of document.querySelectorAll('form.summarise')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const id = form.dataset.note;
      const summary = document.getElementById('summary-' + id);
      const button = form.querySelector('button');
      const old = document.getElementById('summary-error-' + id);
      if (old) old.remove();
      summary.classList.remove('error');
      summary.textContent = '';
      button.disabled = true;
      let text = '';
      try {
        const response = await fetch(form.action, {
          method: 'POST',
          headers: {'Accept': 'text/event-stream'},
        });
        if (!response.ok) {
          const body = await response.json().catch(() => null);
          throw new Error(body && body.error ? body.error.message : response.statusText);
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = '', payload = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) payload += line.slice(5).trim();
            }
            if (!payload) continue;
            const body = JSON.parse(payload);
            if (name === '') {
              text += body.delta;
              summary.textContent = text;
            } else if (name === 'error') {
              throw new Error(body.message);
            }
          }
        }
      } catch (error) {
        summary.classList.add('error');
        summary.id = 'summary-' + id;
        summary.textContent = text + (text ? '\n' : '') + 'Not summarised: ' + error.message;
      } finally {
        button.disabled = false;
      }
    });
  }
})();
</script>"#;
