//! A ModelGates sign-in and chat on plain hyper, with `modelgates-oauth-core` alone: no tower
//! layer, no axum. Everything that is not HTTP plumbing comes from oauth-core: the flow state
//! and its sealing ([`FlowState`], [`FlowSealer`]), the check of the callback against it
//! (binding and age; every refusal a 400), the exchange and the kind of each of its failures
//! (which this app answers 400, 504 or 502), the token helper, and the OpenAI-compatible client.
//!
//! Routes: `GET /` (connect, or the chat form), `GET /login`, `GET /callback/<flow id>`,
//! `POST /chat` (form field `message`), `POST /logout`. Sessions live in this process.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cookie::Cookie;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use modelgates_oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use modelgates_oauth_core::exchange::ExchangeFailure;
use modelgates_oauth_core::flow::{FlowSealer, FlowState};
use modelgates_oauth_core::random::random_token;
use modelgates_oauth_core::{ApiKey, CallbackParams, ChallengeMethod, ModelGatesClient, Pkce, Url};

const FLOW_COOKIE: &str = "flow";
const SESSION_COOKIE: &str = "session";
const FLOW_MAX_AGE: Duration = Duration::from_secs(600);

/// The app: its ModelGates client, its sealer, and what it remembers.
pub struct App {
    client: ModelGatesClient,
    sealer: FlowSealer,
    callback: Url,
    secure: bool,
    /// Flow ids whose code was sent for exchange: each flow is single-use.
    spent: Mutex<HashSet<String>>,
    /// Session token → the user's key.
    sessions: Mutex<HashMap<String, ApiKey>>,
}

type Answer = Response<Full<Bytes>>;

impl App {
    /// An app served at `public_url` (checked by oauth-core's rules), talking to the
    /// ModelGates at `base_url`, sealing flows with `secret` (at least 32 random bytes).
    ///
    /// # Errors
    ///
    /// A message saying which of the three is unusable.
    pub fn new(public_url: &str, base_url: &str, secret: &[u8]) -> Result<Arc<Self>, String> {
        let public = modelgates_oauth_core::origin::parse_public_origin(public_url)
            .map_err(|e| e.to_string())?;
        let client = ModelGatesClient::builder()
            .base_url(base_url)
            .app_url(public_url)
            .app_title("hyper-only example")
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            client,
            sealer: FlowSealer::derive(secret).map_err(|e| e.to_string())?,
            callback: public.join("/callback").map_err(|e| e.to_string())?,
            secure: public.scheme() == "https",
            spent: Mutex::default(),
            sessions: Mutex::default(),
        }))
    }

    /// Answers one request.
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        let key = self.session_key(&parts.headers);
        match (&parts.method, path) {
            (&Method::GET, "/") => page(key.is_some(), None),
            (&Method::GET, "/login") => self.login(),
            (&Method::GET, _) if path.starts_with("/callback/") => {
                let flow_id = &path["/callback/".len()..];
                self.callback(&parts.headers, flow_id, parts.uri.query().unwrap_or(""))
                    .await
            }
            (&Method::POST, "/chat") => match key {
                Some(key) => self.chat(&key, body).await,
                None => redirect("/login", None),
            },
            (&Method::POST, "/logout") => {
                if let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) {
                    self.sessions.lock().unwrap().remove(&token);
                }
                redirect(
                    "/",
                    Some(self.cookie(SESSION_COOKIE, String::new(), Duration::ZERO)),
                )
            }
            _ => text(StatusCode::NOT_FOUND, "Not found."),
        }
    }

    /// `GET /login`: a new flow sealed in a cookie, and the redirect to ModelGates.
    fn login(&self) -> Answer {
        let flow = FlowState::new(Some(Pkce::generate(ChallengeMethod::S256)), "/");
        let challenge = flow.pkce.as_ref().map(Pkce::challenge);
        let auth = self
            .client
            .authorization_url(&flow.callback_url(&self.callback), challenge.as_ref());
        let sealed = self.sealer.seal(&flow, FLOW_COOKIE.as_bytes());
        redirect(
            auth.as_str(),
            Some(self.cookie(FLOW_COOKIE, sealed, FLOW_MAX_AGE)),
        )
    }

    /// `GET /callback/<flow id>`: checked against the flow, then the code exchanged. The
    /// flow cookie is cleared whatever the outcome.
    async fn callback(&self, headers: &HeaderMap, flow_id: &str, query: &str) -> Answer {
        let mut answer = self.sign_in(headers, flow_id, query).await;
        let clear_flow = self.cookie(FLOW_COOKIE, String::new(), Duration::ZERO);
        let clear_flow = HeaderValue::try_from(clear_flow).expect("a valid cookie");
        answer.headers_mut().append(header::SET_COOKIE, clear_flow);
        answer
    }

    async fn sign_in(&self, headers: &HeaderMap, flow_id: &str, query: &str) -> Answer {
        let Some(sealed) = cookie_value(headers, FLOW_COOKIE) else {
            return text(
                StatusCode::BAD_REQUEST,
                "This sign-in expired; sign in again.",
            );
        };
        let flow = match self.sealer.open(&sealed, FLOW_COOKIE.as_bytes()) {
            Ok(flow) => flow,
            Err(error) => return text(StatusCode::BAD_REQUEST, &error.to_string()),
        };
        if let Err(error) = flow.check(Some(flow_id), FLOW_MAX_AGE) {
            return text(StatusCode::BAD_REQUEST, &error.to_string());
        }
        if !self
            .spent
            .lock()
            .unwrap()
            .insert(flow.id.as_str().to_owned())
        {
            return text(StatusCode::BAD_REQUEST, "This sign-in was already used.");
        }
        let Ok(CallbackParams::Code(code)) = CallbackParams::parse(query) else {
            return text(
                StatusCode::BAD_REQUEST,
                "No sign-in code: cancelled or malformed.",
            );
        };
        match self.client.exchange_code(&code, flow.pkce.as_ref()).await {
            Ok(issued) => {
                let token = random_token::<32>();
                self.sessions
                    .lock()
                    .unwrap()
                    .insert(token.clone(), issued.key);
                let session = self.cookie(SESSION_COOKIE, token, Duration::from_secs(30 * 86_400));
                redirect(&flow.return_to, Some(session))
            }
            Err(error) => text(exchange_status(error.kind()), &error.to_string()),
        }
    }

    /// `POST /chat`: the message sent to a model with the user's own key.
    async fn chat(&self, key: &ApiKey, body: Incoming) -> Answer {
        let Ok(form) = Limited::new(body, 16 * 1024).collect().await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "That message is too long.");
        };
        let form = form.to_bytes();
        let message = form_urlencoded::parse(&form)
            .find(|(name, _)| name == "message")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let request = CreateChatCompletionRequestArgs::default()
            .model("openai/gpt-5.2")
            .messages([ChatCompletionRequestUserMessage::from(message).into()])
            .build()
            .expect("model and messages are set");
        match self.client.openai(key).chat().create(request).await {
            Ok(reply) => {
                let answer = reply
                    .choices
                    .first()
                    .and_then(|c| c.message.content.clone());
                page(true, Some(&answer.unwrap_or_default()))
            }
            Err(error) => text(
                StatusCode::BAD_GATEWAY,
                &format!("The model could not answer: {error}"),
            ),
        }
    }

    fn session_key(&self, headers: &HeaderMap) -> Option<ApiKey> {
        let token = cookie_value(headers, SESSION_COOKIE)?;
        self.sessions.lock().unwrap().get(&token).cloned()
    }

    /// A `Set-Cookie` for one of our cookies: HttpOnly, SameSite=Lax (the callback is a
    /// cross-site top-level navigation), Secure on https.
    fn cookie(&self, name: &'static str, value: String, max_age: Duration) -> String {
        let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        Cookie::build((name, value))
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(self.secure)
            .path("/")
            .max_age(cookie::time::Duration::seconds(seconds))
            .build()
            .to_string()
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// This app's answer to a failed exchange: a refused code is the callback's fault (sign in
/// again), a timeout is ModelGates' silence, anything else ModelGates got wrong.
fn exchange_status(failure: ExchangeFailure) -> StatusCode {
    match failure {
        ExchangeFailure::InvalidCode => StatusCode::BAD_REQUEST,
        ExchangeFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

fn redirect(location: &str, set_cookie: Option<String>) -> Answer {
    let mut answer = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location);
    if let Some(cookie) = set_cookie {
        answer = answer.header(header::SET_COOKIE, cookie);
    }
    answer.body(Full::default()).expect("a valid redirect")
}

fn text(status: StatusCode, message: &str) -> Answer {
    html(
        status,
        format!(
            "<p>{}</p><p><a href=\"/\">Home</a></p>",
            html_escape::encode_text(message)
        ),
    )
}

fn page(signed_in: bool, reply: Option<&str>) -> Answer {
    let body = if signed_in {
        let reply = reply.map(|r| format!("<p id=\"reply\">{}</p>", html_escape::encode_text(r)));
        format!(
            "{}<form method=\"post\" action=\"/chat\"><input name=\"message\"><button>Send</button></form>\
             <form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
            reply.unwrap_or_default()
        )
    } else {
        "<p>Signed out. <a href=\"/login\">Connect ModelGates</a></p>".to_owned()
    };
    html(StatusCode::OK, body)
}

fn html(status: StatusCode, body: String) -> Answer {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Small writes go out at once (no Nagle wait for the ACK of the one before).
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(app.handle(request).await) }
        });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}
