//! What the benches share: a runtime, requests, and a sign-in through the layer.

use axum::Router;
use axum::body::Body;
use http::{Request, header};
use modelgates_axum::{CookieSecret, ModelGatesConfig, ModelGatesKey};
use tower::ServiceExt as _;

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) async fn with_key(key: ModelGatesKey) -> &'static str {
    std::hint::black_box(key.api_key());
    "ok"
}

pub(crate) fn config(base_url: &str) -> ModelGatesConfig {
    ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate()).with_base_url(base_url)
}

pub(crate) fn get_request(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri).header(header::ACCEPT, "text/html");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).unwrap()
}

pub(crate) fn cookie_pair(response: &http::Response<Body>, name: &str) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        // A name ending in `.` is a prefix: the flow cookies are `modelgates_flow.<flow id>`.
        .find(|v| {
            v.starts_with(&format!("{name}=")) || (name.ends_with('.') && v.starts_with(name))
        })
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// A complete sign-in through the layer: the key cookie.
pub(crate) async fn sign_in(app: &Router) -> String {
    let (flow, callback) = start_sign_in(app).await;
    let landed = app
        .clone()
        .oneshot(get_request(&callback, Some(&flow)))
        .await
        .unwrap();
    assert_eq!(landed.status(), http::StatusCode::SEE_OTHER);
    cookie_pair(&landed, "modelgates_key")
}

/// `/login` and the emulator's `/auth`: the flow cookie and the callback path to visit.
pub(crate) async fn start_sign_in(app: &Router) -> (String, String) {
    let login = app
        .clone()
        .oneshot(get_request("/login", None))
        .await
        .unwrap();
    let flow = cookie_pair(&login, "modelgates_flow.");
    let auth = login.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let approved = http.get(auth).send().await.unwrap();
    let callback = url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    (
        flow,
        format!("{}?{}", callback.path(), callback.query().unwrap()),
    )
}

/// Allocations of one request (after a warm-up request), on this thread.
pub(crate) fn allocations(
    rt: &tokio::runtime::Runtime,
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
) -> u64 {
    let send = || {
        rt.block_on(app.clone().oneshot(get_request(uri, cookie)))
            .unwrap()
    };
    let _ = send();
    let mut response = None;
    let info = allocation_counter::measure(|| response = Some(send()));
    assert!(response.unwrap().status().is_success() || uri == "/login");
    info.count_total
}
