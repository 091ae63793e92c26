//! A scripted browser for the layer's tests: it keeps cookies like a browser, calls the app
//! in-process through `tower::ServiceExt::oneshot`, and follows the hop to the emulator over
//! real HTTP on 127.0.0.1.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use indexmap::IndexMap;
use modelgates_axum::{CookieSecret, ModelGatesConfig};
use modelgates_emulator::Emulator;
use tower::ServiceExt as _;

/// The answer of one request, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .expect("a Location header")
            .to_str()
            .unwrap()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The first `Set-Cookie` of a flow cookie (`modelgates_flow.<flow id>`), setting or
    /// deleting it.
    pub fn flow_set_cookie(&self) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(FLOW_COOKIE_PREFIX))
    }
}

/// What the default flow cookies' names start with: one per pending sign-in, named by its id.
pub const FLOW_COOKIE_PREFIX: &str = "modelgates_flow.";

pub async fn read(response: Response<Body>) -> Page {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Page {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A client that does not follow redirects.
pub fn http() -> reqwest::Client {
    // Per thread, so that no pooled connection outlives the test runtime that opened it
    // (a later test's server may reuse the port); building one per request is slow.
    thread_local! {
        static CLIENT: reqwest::Client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
    }
    CLIENT.with(Clone::clone)
}

/// The provider a suite runs against: one that refuses a verifier for a code issued without
/// a challenge, as RFC 9700 §2.1.1 asks, or a lenient one that accepts it. The layer must
/// defend itself either way, so the flow and attack suites run against both
/// ([`each_provider!`](crate::each_provider)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Strict,
    Lenient,
}

impl Provider {
    /// An auto-approving emulator on 127.0.0.1 that behaves as this provider.
    pub async fn emulator(self) -> Emulator {
        Emulator::builder()
            .auto_approve(true)
            .lenient_pkce(self == Self::Lenient)
            .start()
            .await
            .unwrap()
    }
}

/// Runs `async fn $name(provider: Provider)` as two tests, `$name::strict` and
/// `$name::lenient`, each against its provider. A Tokio test attribute may be given first.
#[macro_export]
macro_rules! each_provider {
    ($name:ident) => {
        $crate::each_provider!(
            #[tokio::test]
            $name
        );
    };
    (#[$test:meta] $name:ident) => {
        mod $name {
            #[$test]
            async fn strict() {
                super::$name($crate::support::Provider::Strict).await;
            }

            #[$test]
            async fn lenient() {
                super::$name($crate::support::Provider::Lenient).await;
            }
        }
    };
}

/// An auto-approving emulator on 127.0.0.1 that refuses weak PKCE, as ModelGates should.
pub async fn emulator() -> Emulator {
    Provider::Strict.emulator().await
}

pub fn config(emu: &Emulator) -> ModelGatesConfig {
    ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
        .with_base_url(emu.base_url())
}

/// A browser: a cookie jar in front of an app.
#[derive(Clone)]
pub struct Browser {
    pub app: Router,
    /// Name → value, oldest first: a browser sends its cookies in the order they were created
    /// (RFC 6265 §5.4), and a replaced cookie keeps its place.
    pub cookies: IndexMap<String, String>,
}

impl Browser {
    pub fn new(app: Router) -> Self {
        Self {
            app,
            cookies: IndexMap::new(),
        }
    }

    /// The browser's flow cookie, name and value, when it holds one (the first, by name).
    pub fn flow_cookie(&self) -> Option<(String, String)> {
        self.cookies
            .iter()
            .find(|(name, _)| name.starts_with(FLOW_COOKIE_PREFIX))
            .map(|(name, value)| (name.clone(), value.clone()))
    }

    /// How many flow cookies the browser holds.
    pub fn flow_cookies(&self) -> usize {
        self.cookies
            .keys()
            .filter(|name| name.starts_with(FLOW_COOKIE_PREFIX))
            .count()
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends a request with the jar's cookies and stores the answer's cookies.
    pub async fn send(&mut self, request: http::request::Builder, body: Body) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header(header::COOKIE, self.cookie_header());
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let page = read(response).await;
        for set_cookie in page.set_cookies() {
            let cookie = cookie::Cookie::parse(set_cookie).unwrap();
            if cookie.max_age() == Some(cookie::time::Duration::ZERO) {
                self.cookies.shift_remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
        page
    }

    pub async fn get(&mut self, uri: &str) -> Page {
        self.send(
            Request::get(uri).header(header::ACCEPT, "text/html"),
            Body::empty(),
        )
        .await
    }

    pub async fn get_json(&mut self, uri: &str) -> Page {
        self.send(
            Request::get(uri).header(header::ACCEPT, "application/json"),
            Body::empty(),
        )
        .await
    }

    pub async fn post(&mut self, uri: &str) -> Page {
        self.send(Request::post(uri), Body::empty()).await
    }

    /// Follows ModelGates' redirect to the app: GETs `callback`'s path and query.
    pub async fn visit(&mut self, callback: &url::Url) -> Page {
        let target = match callback.query() {
            Some(query) => format!("{}?{query}", callback.path()),
            None => callback.path().to_owned(),
        };
        self.get(&target).await
    }

    /// `/login` then ModelGates' `/auth` (auto-approve): the callback path and query to visit.
    pub async fn start_sign_in(&mut self, login: &str) -> String {
        let login = self.get(login).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
        let auth = http().get(login.location()).send().await.unwrap();
        assert_eq!(auth.status(), 302, "the emulator approves at once");
        let callback = url::Url::parse(auth.headers()["location"].to_str().unwrap()).unwrap();
        format!("{}?{}", callback.path(), callback.query().unwrap_or(""))
    }

    /// The whole sign-in; returns the callback's answer.
    pub async fn sign_in(&mut self, login: &str) -> Page {
        let callback = self.start_sign_in(login).await;
        self.get(&callback).await
    }
}

/// The `callback_url` a `/login` redirect sends to ModelGates.
pub fn callback_url_param(auth_location: &str) -> String {
    url::Url::parse(auth_location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "callback_url")
        .expect("a callback_url parameter")
        .1
        .into_owned()
}

/// A handler answering the signed-in key, or "signed out".
pub async fn key_or_signed_out(key: Option<modelgates_axum::ModelGatesKey>) -> String {
    key.map_or_else(
        || "signed out".to_owned(),
        |k| k.api_key().expose_secret().to_owned(),
    )
}

/// The path of a callback (`/callback/<flow id>`), without its query.
pub fn path_of(callback: &str) -> String {
    callback.split('?').next().unwrap().to_owned()
}

pub fn code_of(callback: &str) -> String {
    let url = url::Url::parse(&format!("http://x{callback}")).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// The URL of a database server `.ci/run` started, from `var`. Without it the test says
/// loudly that it was skipped; under `CI=true` it fails.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set: .ci/run starts the server and sets it"
            );
            eprintln!(
                "\n!!!!!!!! SKIPPED: {var} is not set, so this store test did not run !!!!!!!!\n"
            );
            None
        }
    }
}

/// Captures this thread's log lines (a current-thread test runtime runs the served app here).
pub struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    pub fn capture() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
