//! The HTML of example-chat: one page, progressively enhanced. Without JavaScript every form
//! posts and the server answers a whole page; with it, `POST /chat` is sent with
//! `Accept: text/event-stream` and the reply is written into the page as it streams.
//!
//! The conversation lives in the page, not on the server: a hidden `history` field holds the
//! earlier turns as JSON and goes back with every message. Every value shown is HTML-escaped.

use axum::response::Html;
use html_escape::{encode_double_quoted_attribute, encode_text};
use modelgates_axum::ModelGatesKey;
use modelgates_axum::config::SpendLimit;
use modelgates_axum::oauth_core::api::{KeyInfo, ModelInfo};

use crate::Turn;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2.5rem auto;padding:0 1rem;color:#1d1d1f}\
button,select{font-size:1rem;padding:.4rem .9rem}button{cursor:pointer}\
textarea{width:100%;font:inherit;padding:.5rem;box-sizing:border-box}\
.reply{background:#f3f4f6;border-radius:.5rem;padding:.75rem 1rem;white-space:pre-wrap;margin:.5rem 0 1rem}\
.reply.error{background:#fef2f2;color:#991b1b}\
.you{border-left:3px solid #6366f1;padding-left:.75rem;white-space:pre-wrap}\
header{display:flex;justify-content:space-between;align-items:center}small{color:#6b7280}\
.row{display:flex;gap:.75rem;align-items:center}";

/// The page around `body`.
pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        title = encode_text(title)
    ))
}

/// The signed-out home page: connect, choosing a spend limit for the key (`default_limit`
/// filled in; empty leaves it to ModelGates).
pub(crate) fn connect(default_limit: Option<SpendLimit>) -> Html<String> {
    let limit = default_limit
        .map(|limit| limit.to_string())
        .unwrap_or_default();
    page(
        "ModelGates chat",
        &format!(
            "<h1>ModelGates chat</h1>\
             <p>Chat with a model, paid from your own ModelGates account. Connecting gives this \
             app a key you control and can revoke at any time.</p>\
             <form method=\"get\" action=\"/login\">\
             <p><label for=\"limit\">Spend limit for this app's key (credits, optional)</label> \
             <input type=\"number\" id=\"limit\" name=\"limit\" min=\"0.01\" step=\"0.01\" value=\"{limit}\"></p>\
             <button type=\"submit\" id=\"connect\">Connect ModelGates</button></form>",
            limit = encode_double_quoted_attribute(&limit),
        ),
    )
}

/// What the chat page shows besides the conversation.
pub(crate) struct ChatPage<'a> {
    pub(crate) key: &'a ModelGatesKey,
    pub(crate) usage: Option<&'a KeyInfo>,
    pub(crate) models: &'a [ModelInfo],
    pub(crate) model: &'a str,
    pub(crate) history: &'a [Turn],
    /// A problem to show above the form.
    pub(crate) alert: Option<&'a str>,
}

impl ChatPage<'_> {
    pub(crate) fn render(&self) -> Html<String> {
        let body = format!(
            "{header}<main id=\"conversation\" aria-live=\"polite\">{turns}</main>{alert}{form}{SCRIPT}",
            header = self.header(),
            turns = conversation(self.history),
            alert = self.alert.map_or_else(String::new, |alert| format!(
                "<p role=\"alert\" id=\"alert\">{}</p>",
                encode_text(alert)
            )),
            form = self.form(),
        );
        page("ModelGates chat", &body)
    }

    fn header(&self) -> String {
        let usage = usage_line(self.usage);
        format!(
            "<header><h1>ModelGates chat</h1><form method=\"post\" action=\"/logout\">\
             <button type=\"submit\" id=\"logout\">Log out</button></form></header>\
             <p><small>Connected with key <code id=\"key\">{key}</code>, \
             <span id=\"usage\">{usage}</span> · \
             <a id=\"manage\" href=\"{manage}\">Manage this key on ModelGates</a></small></p>",
            key = encode_text(&self.key.api_key().masked()),
            usage = encode_text(&usage),
            manage = encode_double_quoted_attribute(&self.key.manage_url()),
        )
    }

    fn form(&self) -> String {
        let options: String = self
            .models
            .iter()
            .map(|model| {
                format!(
                    "<option value=\"{id}\"{selected}>{name}</option>",
                    id = encode_double_quoted_attribute(&model.id),
                    selected = if model.id == self.model {
                        " selected"
                    } else {
                        ""
                    },
                    name = encode_text(if model.name.is_empty() {
                        &model.id
                    } else {
                        &model.name
                    }),
                )
            })
            .collect();
        let history = serde_json::to_string(self.history).unwrap_or_else(|_| "[]".into());
        format!(
            "<form method=\"post\" action=\"/chat\" id=\"chat-form\">\
             <input type=\"hidden\" name=\"history\" id=\"history\" value=\"{history}\">\
             <p><label for=\"message\">Message</label></p>\
             <textarea id=\"message\" name=\"message\" rows=\"3\" required maxlength=\"4000\"></textarea>\
             <p class=\"row\"><button type=\"submit\" id=\"send\">Send</button>\
             <label for=\"model\">Model</label><select id=\"model\" name=\"model\">{options}</select></p></form>",
            history = encode_double_quoted_attribute(&history),
        )
    }
}

/// What the key has spent and what remains of its limit, for people; when the limit resets
/// and when the key expires, when ModelGates says.
pub(crate) fn usage_line(usage: Option<&KeyInfo>) -> String {
    let Some(info) = usage else {
        return "usage unavailable".to_owned();
    };
    let mut line = match (info.limit, info.limit_remaining) {
        (Some(limit), Some(left)) => {
            format!(
                "spent {:.6} of {limit:.2} credits, {left:.2} left",
                info.usage
            )
        }
        (Some(limit), None) => format!("spent {:.6} of {limit:.2} credits", info.usage),
        (None, _) => format!("spent {:.6} credits, no limit", info.usage),
    };
    if let Some(reset) = &info.limit_reset {
        line.push_str(&format!(" (the limit resets {reset})"));
    }
    if let Some(expires) = &info.expires_at {
        line.push_str(&format!("; the key expires {expires}"));
    }
    line
}

/// The turns so far; the last reply has the id `reply`.
fn conversation(history: &[Turn]) -> String {
    let last_reply = history.iter().rposition(|turn| turn.role == "assistant");
    history
        .iter()
        .enumerate()
        .map(|(index, turn)| {
            let text = encode_text(&turn.content);
            if turn.role == "assistant" {
                let id = if Some(index) == last_reply {
                    " id=\"reply\""
                } else {
                    ""
                };
                format!("<div class=\"reply\"{id}>{text}</div>")
            } else {
                format!("<p class=\"you\">{text}</p>")
            }
        })
        .collect()
}

/// Streams replies into the page: the form is posted with `Accept: text/event-stream`, each
/// `{"delta"}` event is appended to the reply, `done` records the turn in `history`.
const SCRIPT: &str = r#"<script>
(() => {
  const form = document.getElementById('chat-form');
  const log = document.getElementById('conversation');
  const send = document.getElementById('send');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const message = String(data.get('message') || '').trim();
    if (!message) return;
    const you = document.createElement('p');
    you.className = 'you';
    you.textContent = message;
    const previous = document.getElementById('reply');
    if (previous) previous.removeAttribute('id');
    const reply = document.createElement('div');
    reply.className = 'reply';
    reply.id = 'reply';
    log.append(you, reply);
    form.message.value = '';
    send.disabled = true;
    let text = '';
    try {
      const response = await fetch('/chat', {
        method: 'POST',
        headers: {'Accept': 'text/event-stream'},
        body: new URLSearchParams(data),
      });
      if (response.status === 401) { location.href = '/login'; return; }
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
            reply.textContent = text;
          } else if (name === 'done') {
            const history = JSON.parse(form.history.value || '[]');
            history.push({role: 'user', content: message}, {role: 'assistant', content: text});
            form.history.value = JSON.stringify(history);
            fetch('/usage').then((r) => r.ok ? r.text() : null).then((line) => {
              if (line) document.getElementById('usage').textContent = line;
            }).catch(() => {});
          } else if (name === 'error') {
            throw new Error(body.message);
          }
        }
      }
    } catch (error) {
      reply.classList.add('error');
      reply.textContent = text + (text ? '\n' : '') + 'The model could not answer: ' + error.message;
    } finally {
      send.disabled = false;
      form.message.focus();
    }
  });
})();
</script>"#;
