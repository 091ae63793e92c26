//! The user's money in the open, through the layer against the emulator: out of credits, key
//! limit reached and rate limited named as such for JSON clients and browsers, on plain calls,
//! before a stream starts and midway through one, the user still signed in; the spend limit
//! chosen at `/login` (valid and hostile), shown on the consent page and enforced on the key;
//! a key's expiry capping the session; and a second sign-in ending the first session.

use crate::support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use modelgates_axum::ApiError;
use modelgates_axum::config::SpendLimit;
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use modelgates_axum::store::MemoryStore;
use modelgates_axum::{ModelGatesAuth, ModelGatesKey};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use support::{Browser, Page, config, emulator, http};

fn hello() -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from("hello").into()])
        .build()
        .unwrap()
}

pub(crate) async fn chat(key: ModelGatesKey) -> Result<String, ApiError> {
    let reply = key.openai().chat().create(hello()).await?;
    Ok(reply.choices[0].message.content.clone().unwrap_or_default())
}

pub(crate) async fn stream(key: ModelGatesKey) -> Result<impl IntoResponse, ApiError> {
    key.stream_chat(hello()).await
}

async fn me(key: ModelGatesKey) -> String {
    key.manage_url()
}

fn app(layer: ModelGatesAuth<impl modelgates_axum::store::KeyStore>) -> Router {
    Router::new()
        .route("/chat", post(chat))
        .route("/stream", post(stream))
        .route("/me", get(me))
        .layer(layer)
}

/// The page at `url`, fetched without cookies.
async fn fetch(url: &str) -> String {
    http().get(url).send().await.unwrap().text().await.unwrap()
}

async fn signed_in(emu: &Emulator) -> (Browser, String, String) {
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(emu))));
    browser.sign_in("/login").await;
    let issued = emu.issued_keys().pop().unwrap();
    (browser, issued.key, issued.user_id)
}

pub(crate) async fn post_as(browser: &mut Browser, path: &str, accept: &str) -> Page {
    browser
        .send(
            Request::post(path).header(header::ACCEPT, accept),
            Body::empty(),
        )
        .await
}

/// Each money error, as a JSON client and as a browser sees it; the user stays signed in.
#[tokio::test]
async fn money_errors_are_named_for_scripts_and_browsers_and_keep_the_user_signed_in() {
    let emu = emulator().await;
    let (mut browser, key, user) = signed_in(&emu).await;
    let manage = browser.get("/me").await.body;
    /// Brings the money error about (`true`), or undoes it (`false`).
    type Cause = Box<dyn Fn(&Emulator, &str, &str, bool)>;
    let cases: [(Cause, u16, &str, &str); 3] = [
        (
            Box::new(|emu, _, user, on| emu.set_credits(user, if on { 0.0 } else { 100.0 })),
            402,
            "insufficient_credits",
            "Top up your credits",
        ),
        (
            Box::new(|emu, key, _, on| emu.add_usage(key, if on { 1000.0 } else { -1000.0 })),
            403,
            "key_limit_reached",
            "Raise the key's limit",
        ),
        (
            Box::new(|emu, _, _, on| {
                if on {
                    emu.inject(Endpoint::Chat, Fault::RateLimited(Duration::from_secs(30)));
                } else {
                    emu.clear_faults();
                }
            }),
            429,
            "rate_limited",
            "wait 30 seconds",
        ),
    ];
    for (cause, status, code, advice) in cases {
        cause(&emu, &key, &user, true);
        let script = post_as(&mut browser, "/chat", "application/json").await;
        assert_eq!(script.status.as_u16(), status, "{}", script.body);
        let body: serde_json::Value = serde_json::from_str(&script.body).unwrap();
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["status"], status);

        let page = post_as(&mut browser, "/chat", "text/html").await;
        assert_eq!(page.status.as_u16(), status);
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.body.contains(advice), "{code}: {}", page.body);
        assert!(
            page.body.contains(&manage),
            "a link to manage the key: {}",
            page.body
        );
        assert!(!page.body.contains(&key), "no key in the page");
        if status == 429 {
            assert_eq!(script.headers[header::RETRY_AFTER], "30");
            assert_eq!(page.headers[header::RETRY_AFTER], "30");
        }
        assert!(
            script.set_cookie("modelgates_key").is_none(),
            "still signed in"
        );
        assert_eq!(browser.get("/me").await.status, StatusCode::OK);

        cause(&emu, &key, &user, false);
    }
    assert_eq!(
        post_as(&mut browser, "/chat", "application/json")
            .await
            .status,
        StatusCode::OK
    );
}

/// A stream refused before its first event answers like a plain call; one that fails midway
/// ends with `event: error` naming the cause, and no `done`.
#[tokio::test]
async fn money_errors_in_streams() {
    let emu = emulator().await;
    let (mut browser, _, user) = signed_in(&emu).await;
    emu.set_credits(&user, 0.0);
    let refused = post_as(&mut browser, "/stream", "text/event-stream").await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    assert!(
        refused.body.contains("insufficient_credits"),
        "{}",
        refused.body
    );

    emu.set_credits(&user, 100.0);
    emu.inject_once(Endpoint::Chat, Fault::StreamFailsMidway(403));
    let failed = post_as(&mut browser, "/stream", "text/event-stream").await;
    assert_eq!(failed.status, StatusCode::OK);
    assert!(failed.body.contains("\"delta\""), "{}", failed.body);
    assert!(failed.body.contains("event: error"), "{}", failed.body);
    assert!(failed.body.contains("key_limit_reached"), "{}", failed.body);
    assert!(!failed.body.contains("event: done"), "{}", failed.body);
    assert_eq!(
        browser.get("/me").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

/// `GET /login?limit=…`: a valid limit goes to `/auth` with the label; anything else is a
/// precise 400 and nothing reaches ModelGates.
#[tokio::test]
async fn the_spend_limit_chosen_at_login() {
    let emu = emulator().await;
    let layer = ModelGatesAuth::new(
        config(&emu)
            .with_app_title("Chat app")
            .with_key_limit(SpendLimit::parse("3").unwrap())
            .with_max_key_limit(SpendLimit::parse("50").unwrap()),
    );
    let mut browser = Browser::new(app(layer));
    let login = browser.get("/login?limit=12.50").await;
    let auth = url::Url::parse(login.location()).unwrap();
    let param = |name: &str| {
        auth.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("limit").as_deref(), Some("12.5"));
    assert_eq!(param("key_label").as_deref(), Some("Chat app"));
    let default = browser.get("/login").await;
    assert!(default.location().contains("limit=3&key_label=Chat+app"));

    for hostile in [
        "limit=0",
        "limit=-5",
        "limit=NaN",
        "limit=1e3",
        "limit=5.001",
        "limit=51",
        "limit=99999999999999999999",
        "limit=5%20credits",
        "limit=%3Cscript%3E",
        "limit=5&limit=6",
    ] {
        let page = browser.get(&format!("/login?{hostile}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{hostile}");
        assert!(
            page.body.contains("spend limit"),
            "{hostile}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>"), "{hostile}");
        assert!(page.flow_set_cookie().is_none(), "no flow started");
        let json = browser.get_json(&format!("/login?{hostile}")).await;
        let body: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_limit", "{hostile}");
    }
    assert_eq!(emu.issued_codes().len(), 0);
}

/// The limit is shown on the consent page, and the key ModelGates issues carries it.
#[tokio::test]
async fn the_chosen_limit_is_on_the_consent_page_and_the_key() {
    let consenting = Emulator::builder().start().await.unwrap();
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&consenting))));
    let login = browser.get("/login?limit=7.25").await;
    let page = fetch(login.location()).await;
    assert!(
        page.contains(r#"id="limit" min="0.01" step="0.01" value="7.25""#),
        "{page}"
    );

    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    browser.sign_in("/login?limit=7.25").await;
    let key = emu.issued_keys().pop().unwrap().key;
    assert_eq!(emu.key(&key).unwrap().limit, Some(7.25));
    let info_limit = browser.get("/me").await;
    assert_eq!(info_limit.status, StatusCode::OK);
}

/// A key that expires sooner than the key cookie would live makes the cookie expire with it.
#[tokio::test]
async fn a_keys_expiry_caps_the_session() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .key_lifetime(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let callback = browser.sign_in("/login").await;
    let cookie = callback.set_cookie("modelgates_key").unwrap();
    let max_age: u64 = cookie
        .split(';')
        .find_map(|attribute| attribute.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((100..=120).contains(&max_age), "{cookie}");
}

/// Signing in again in a browser that holds a session ends that session: a copy of the first
/// session's cookie no longer works.
#[tokio::test]
async fn signing_in_again_ends_the_previous_session() {
    let emu = emulator().await;
    let layer = ModelGatesAuth::new(config(&emu)).with_store(MemoryStore::default());
    let mut browser = Browser::new(app(layer));
    browser.sign_in("/login").await;
    let mut copy = browser.clone();
    assert_eq!(copy.get("/me").await.status, StatusCode::OK);
    browser.sign_in("/login").await;
    assert_eq!(browser.get("/me").await.status, StatusCode::OK);
    let stale = copy.get_json("/me").await;
    assert_eq!(
        stale.status,
        StatusCode::UNAUTHORIZED,
        "the first session ended"
    );
}

/// The manage link names the key by its SHA-256 on ModelGates, whose page shows it.
#[tokio::test]
async fn the_manage_url_leads_to_the_keys_page() {
    let emu = emulator().await;
    let (mut browser, key, _) = signed_in(&emu).await;
    let manage = browser.get("/me").await.body;
    assert!(
        manage.starts_with(&format!("{}/keys/", emu.base_url())),
        "{manage}"
    );
    assert!(!manage.contains(&key));
    let page = fetch(&manage).await;
    assert!(page.contains("Revoke this key"), "{page}");
}
