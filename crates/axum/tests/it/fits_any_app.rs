//! What a new user building a real app met, over real HTTP on 127.0.0.1: the app opened on
//! another host than its public URL, the layer nested under `/app`, app-initiated sign-outs
//! and the on-sign-out hook, the session handle, the on-sign-in hook linking accounts, and the
//! `testing` helpers on nested apps and two instances.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use modelgates_axum::hooks::{SignIn, SignInRejected, SignOutReason, SignedOut};
use modelgates_axum::store::{KeyStore, MemoryStore};
use modelgates_axum::testing::{self, TestApp};
use modelgates_axum::{ApiError, SignOut};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::Emulator;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE};
use serde::{Deserialize, Serialize};

use crate::support;
use support::Logs;

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

fn config(public_url: &str, emulator: &Emulator) -> ModelGatesConfig {
    ModelGatesConfig::new(public_url, CookieSecret::generate()).with_base_url(emulator.base_url())
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

async fn page(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap()
}

/// The body of `GET url`.
async fn text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// `POST url` from a page of the app at `origin` (as a browser sends it), `Accept` as given.
async fn post_from(
    client: &reqwest::Client,
    origin: &str,
    url: &str,
    accept: &str,
) -> reqwest::Response {
    client
        .post(url)
        .header("origin", origin)
        .header(ACCEPT, accept)
        .send()
        .await
        .unwrap()
}

/// `callback` (where ModelGates sent the browser back) on the app at `base`.
fn on(base: &str, callback: &url::Url) -> String {
    format!(
        "{base}{}?{}",
        callback.path(),
        callback.query().unwrap_or_default()
    )
}

/// The `href`s of a built-in page's links.
fn links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .collect()
}

// --- 2. Another host than the public URL ---------------------------------------------------

/// The app listens on 127.0.0.1:PORT; its public URL is http://localhost:PORT.
async fn on_localhost(emulator: &Emulator) -> (TestApp, String) {
    let app = testing::serve(|url| {
        let public = url.replace("127.0.0.1", "localhost");
        Router::new()
            .route("/", get(|| async { "home" }))
            .layer(ModelGatesAuth::new(config(&public, emulator)))
    })
    .await
    .unwrap();
    let public = app.url().replace("127.0.0.1", "localhost");
    (app, public)
}

#[tokio::test]
async fn login_on_another_host_goes_to_the_public_url_with_the_same_query() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (app, public) = on_localhost(&emulator).await;
    let client = testing::client();
    let login = page(
        &client,
        &format!("{}/login?return_to=%2Fchat&limit=5", app.url()),
    )
    .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&login),
        format!("{public}/login?return_to=%2Fchat&limit=5")
    );
    assert!(
        login.headers().get_all(SET_COOKIE).iter().all(|c| !c
            .to_str()
            .unwrap()
            .starts_with("__Host-modelgates_flow")
            && !c.to_str().unwrap().starts_with("modelgates_flow")),
        "no flow is started on the wrong host"
    );
    // A proxy that rewrites Host would bring the browser back here: the second time, the
    // sign-in starts instead of looping.
    let again = page(&client, &format!("{}/login", app.url())).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&again).starts_with(&format!("{}/auth?", emulator.base_url())),
        "{}",
        location(&again)
    );
}

#[tokio::test]
async fn a_callback_on_another_host_says_which_host_to_use() {
    let logs = Logs::capture();
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (app, public) = on_localhost(&emulator).await;
    // Signed in at the public URL's host... (reqwest keeps cookies per host, as browsers do)
    let client = testing::client();
    let start = client.get(format!("{public}/login")).send().await.unwrap();
    let callback = emulator.approve(&location(&start)).unwrap();
    // ...but the callback lands on 127.0.0.1, where the flow cookie was never set.
    let landed = page(&client, &on(app.url(), &callback)).await;
    assert_eq!(landed.status(), StatusCode::BAD_REQUEST);
    let body = landed.text().await.unwrap();
    let host = app.url().trim_start_matches("http://");
    assert!(
        body.contains(&format!("came back to {host}")) && body.contains(&public),
        "{body}"
    );
    let logged = logs.text();
    assert!(
        logged.contains("came to another host than the public URL")
            && logged.contains(&format!("host={host}")),
        "{logged}"
    );
}

// --- 4. Nested under /app -------------------------------------------------------------------

/// The auth part under `/app` with `auth.nest`; `/` is the app's public page.
fn nested_app(
    public_url: &str,
    emulator: &Emulator,
    tweak: impl FnOnce(ModelGatesConfig) -> ModelGatesConfig,
) -> (Router, ModelGatesAuth) {
    let auth = ModelGatesAuth::new(tweak(config(public_url, emulator)));
    let inner = Router::new()
        .route("/", get(|_key: ModelGatesKey| async { "signed in" }))
        .route("/me", get(|_key: ModelGatesKey| async { "me" }));
    let app = Router::new()
        .route("/", get(|| async { "public home" }))
        .merge(auth.nest("/app", inner));
    (app, auth)
}

async fn serve_nested(
    emulator: &Emulator,
    tweak: impl FnOnce(ModelGatesConfig) -> ModelGatesConfig,
) -> (TestApp, ModelGatesAuth) {
    let mut auth = None;
    let app = testing::serve(|url| {
        let (app, layer) = nested_app(url, emulator, tweak);
        auth = Some(layer);
        app
    })
    .await
    .unwrap();
    (app, auth.unwrap())
}

#[tokio::test]
async fn nested_error_pages_link_inside_the_nest() {
    let emulator = Emulator::builder().start().await.unwrap();
    let (app, _) = serve_nested(&emulator, |config| {
        config.with_on_sign_in(|_: SignIn| async { Err::<(), _>(SignInRejected::new("No.")) })
    })
    .await;
    let url = app.url();
    let nested_links = vec!["/app/login".to_owned(), "/app".to_owned()];

    // Deny (403).
    let client = testing::client();
    let start = page(&client, &format!("{url}/app/login")).await;
    let denied = emulator.deny(&location(&start)).unwrap();
    let denied = page(&client, &on(url, &denied)).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(links(&denied.text().await.unwrap()), nested_links, "deny");

    // The hook's refusal (403).
    let start = page(&client, &format!("{url}/app/login")).await;
    let approved = emulator.approve(&location(&start)).unwrap();
    let refused = page(&client, &on(url, &approved)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        links(&refused.text().await.unwrap()),
        nested_links,
        "hook refusal"
    );

    // No flow cookie (400).
    let stranger = testing::client();
    let missing = page(&stranger, &format!("{url}/app/callback/abc?code=x")).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        links(&missing.text().await.unwrap()),
        nested_links,
        "flow missing"
    );
}

#[tokio::test]
async fn nested_defaults_and_login_url_carry_the_prefix() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (app, auth) = serve_nested(&emulator, |config| config).await;
    let url = app.url();
    assert_eq!(
        auth.login_url("/app/me"),
        "/app/login?return_to=%2Fapp%2Fme"
    );

    // Signed out, a page sends the browser to the nested login, coming back.
    let client = testing::client();
    let me = page(&client, &format!("{url}/app/me")).await;
    assert_eq!(location(&me), "/app/login?return_to=%2Fapp%2Fme");

    // A sign-in without return_to lands on the nest's root; logout goes there too.
    let start = page(&client, &format!("{url}/app/login")).await;
    let callback = emulator.approve(&location(&start)).unwrap();
    let landed = page(&client, &on(url, &callback)).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&landed), "/app");
    assert_eq!(
        page(&client, &format!("{url}/app"))
            .await
            .text()
            .await
            .unwrap(),
        "signed in"
    );
    let logout = post_from(&client, url, &format!("{url}/app/logout"), "*/*").await;
    assert_eq!(location(&logout), "/app");
}

#[tokio::test]
async fn nested_by_hand_with_routes_learns_the_prefix_from_requests() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = testing::serve(|url| {
        let auth = ModelGatesAuth::new(config(url, &emulator));
        Router::new().nest(
            "/app",
            Router::new()
                .route("/", get(|_key: ModelGatesKey| async { "signed in" }))
                .merge(auth.routes())
                .layer(auth),
        )
    })
    .await
    .unwrap();
    let client = testing::client();
    let start = page(&client, &format!("{}/app/login", app.url())).await;
    let callback = emulator.approve(&location(&start)).unwrap();
    assert!(callback.path().starts_with("/app/callback/"), "{callback}");
    let landed = page(&client, &on(app.url(), &callback)).await;
    assert_eq!(location(&landed), "/app");
}

// --- 5 and 6. Sign-outs the app asks for, the hook, the session handle ---------------------

/// Each sign-out the hook heard: why, and whose.
type HeardSignOut = (SignOutReason, Option<String>);

#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<HeardSignOut>>>);

impl Heard {
    fn reasons(&self) -> Vec<SignOutReason> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(reason, _)| *reason)
            .collect()
    }
}

/// `/bye` signs out with the app's own redirect; `/everywhere-else` revokes the user's other
/// sessions; `/chat` calls ModelGates with the key; `/me` answers the user id.
fn sign_out_app(url: &str, emulator: &Emulator, store: MemoryStore, heard: &Heard) -> Router {
    let heard = heard.clone();
    let config = config(url, emulator).with_on_sign_out(move |signed_out: SignedOut| {
        let heard = heard.clone();
        async move {
            heard
                .0
                .lock()
                .unwrap()
                .push((signed_out.reason, signed_out.user_id));
        }
    });
    let auth = ModelGatesAuth::new(config).with_store(store);
    Router::new()
        .route(
            "/me",
            get(|key: ModelGatesKey| async move { key.user_id().unwrap_or_default().to_owned() }),
        )
        .route(
            "/bye",
            post(|_key: ModelGatesKey| async { (SignOut, Redirect::to("/goodbye")) }),
        )
        .route(
            "/everywhere-else",
            post(|key: ModelGatesKey| async move {
                match key.session().revoke_others().await {
                    Ok(count) => count.to_string().into_response(),
                    Err(error) => error.to_string().into_response(),
                }
            }),
        )
        .route(
            "/chat",
            post(|key: ModelGatesKey| async move {
                key.models_for_user()
                    .await
                    .map(|_| "ok")
                    .map_err(ApiError::from)
            }),
        )
        .layer(auth)
}

/// [`sign_out_app`] served on a memory store, with what its hook hears.
async fn sign_out_scene() -> (Emulator, MemoryStore, Heard, TestApp) {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (store, heard) = (MemoryStore::default(), Heard::default());
    let app = testing::serve(|url| sign_out_app(url, &emulator, store.clone(), &heard))
        .await
        .unwrap();
    (emulator, store, heard, app)
}

#[tokio::test]
async fn an_app_sign_out_keeps_its_redirect_logs_truthfully_and_is_heard() {
    let logs = Logs::capture();
    let (emulator, store, heard, app) = sign_out_scene().await;
    let url = app.url();
    let client = testing::client();
    testing::sign_in(&client, url, &emulator).await.unwrap();
    let user = text(&client, &format!("{url}/me")).await;
    let bye = post_from(&client, url, &format!("{url}/bye"), BROWSER).await;
    assert_eq!(bye.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&bye), "/goodbye", "the handler's own redirect");
    assert!(
        bye.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().contains("Max-Age=0")),
        "the key cookie is deleted"
    );
    assert_eq!(store.len(), 0, "the store forgot the session");
    assert_eq!(
        heard.0.lock().unwrap().clone(),
        [(SignOutReason::App, Some(user))]
    );
    let logged = logs.text();
    assert!(logged.contains("the app signed the user out"), "{logged}");
    assert!(!logged.contains("rejected the key"), "{logged}");
}

#[tokio::test]
async fn the_hook_hears_logout_and_a_rejected_key() {
    let (emulator, _, heard, app) = sign_out_scene().await;
    let url = app.url();

    let client = testing::client();
    testing::sign_in(&client, url, &emulator).await.unwrap();
    let logout = post_from(&client, url, &format!("{url}/logout"), "*/*").await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);

    let client = testing::client();
    testing::sign_in(&client, url, &emulator).await.unwrap();
    for issued in emulator.issued_keys() {
        emulator.revoke_key(&issued.key);
    }
    let chat = post_from(&client, url, &format!("{url}/chat"), "*/*").await;
    assert_eq!(chat.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        heard.reasons(),
        [SignOutReason::Logout, SignOutReason::KeyRejected]
    );
    assert!(
        heard
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|(_, user)| user.is_some())
    );
}

#[tokio::test]
async fn a_handler_signs_the_user_out_everywhere_else() {
    let (emulator, _, _, app) = sign_out_scene().await;
    let url = app.url();
    // The same person on three devices.
    let devices = [testing::client(), testing::client(), testing::client()];
    testing::sign_in(&devices[0], url, &emulator).await.unwrap();
    let user = text(&devices[0], &format!("{url}/me")).await;
    for device in &devices[1..] {
        let start = device.get(format!("{url}/login")).send().await.unwrap();
        let callback = emulator.approve_as(&location(&start), &user).unwrap();
        let landed = device.get(on(url, &callback)).send().await.unwrap();
        assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    }
    let revoked = post_from(&devices[0], url, &format!("{url}/everywhere-else"), "*/*").await;
    assert_eq!(revoked.text().await.unwrap(), "2");
    let status = |device: &reqwest::Client| {
        let request = device.get(format!("{url}/me"));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status(&devices[0]).await,
        StatusCode::OK,
        "this device stays"
    );
    assert_eq!(status(&devices[1]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&devices[2]).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_the_cookie_store_signing_out_elsewhere_says_it_is_not_supported() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = testing::serve(|url| {
        Router::new()
            .route(
                "/everywhere-else",
                post(|key: ModelGatesKey| async move {
                    let error = key.session().revoke_others().await.unwrap_err();
                    format!("{} {error}", error.is_unsupported())
                }),
            )
            .layer(ModelGatesAuth::new(config(url, &emulator)))
    })
    .await
    .unwrap();
    let client = testing::client();
    testing::sign_in(&client, app.url(), &emulator)
        .await
        .unwrap();
    let answer = post_from(
        &client,
        app.url(),
        &format!("{}/everywhere-else", app.url()),
        "*/*",
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(answer.starts_with("true "), "{answer}");
    assert!(answer.contains("server-side store"), "{answer}");
}

// --- 7. The on-sign-in hook links accounts ---------------------------------------------------

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Account {
    id: u64,
    linked_from: String,
}

/// The hook reads the app's own session cookie from the callback request and keeps the
/// account it links to; `/account` reads it back without any lookup.
fn linking_app<K: KeyStore>(url: &str, emulator: &Emulator, store: K) -> Router {
    let config = config(url, emulator).with_on_sign_in(|sign_in: SignIn| async move {
        let app_session = sign_in
            .request
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix("app_session="))
            .map(str::to_owned)
            .ok_or_else(|| SignInRejected::new("Sign in to the app first."))?;
        Ok(Account {
            id: 7,
            linked_from: app_session,
        })
    });
    Router::new()
        .route(
            "/account",
            get(|key: ModelGatesKey| async move {
                let account: Account = key.app_data().unwrap().unwrap();
                format!("{} {}", account.id, account.linked_from)
            }),
        )
        .layer(ModelGatesAuth::new(config).with_store(store))
}

async fn linked_account_through<K: KeyStore>(make_store: impl Fn() -> K) {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = testing::serve(|url| linking_app(url, &emulator, make_store()))
        .await
        .unwrap();
    let jar = Arc::new(testing::BrowserJar::default());
    jar.add_cookie_str("app_session=s-123; Path=/", &app.url().parse().unwrap());
    let client = testing::client_with_jar(jar);
    testing::sign_in(&client, app.url(), &emulator)
        .await
        .unwrap();
    let account = text(&client, &format!("{}/account", app.url())).await;
    assert_eq!(account, "7 s-123");
}

#[tokio::test]
async fn the_sign_in_hook_links_the_app_session_and_keeps_data_in_the_cookie_store() {
    linked_account_through(|| modelgates_axum::store::CookieStore).await;
}

#[tokio::test]
async fn the_sign_in_hook_keeps_data_in_the_memory_store() {
    let store = MemoryStore::default();
    linked_account_through(|| store.clone()).await;
}

/// The return from ModelGates is a cross-site navigation: an app session cookie marked
/// `SameSite=Strict` is not sent with it, so the hook finds no session and the sign-in fails in
/// the test exactly as it would in Chromium; `Lax` is sent.
#[tokio::test]
async fn a_strict_app_session_cookie_does_not_come_back_from_modelgates() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = testing::serve(|url| linking_app(url, &emulator, MemoryStore::default()))
        .await
        .unwrap();
    let app_url = app.url().parse().unwrap();
    for (same_site, signs_in) in [("Strict", false), ("Lax", true)] {
        let jar = Arc::new(testing::BrowserJar::default());
        jar.add_cookie_str(
            &format!("app_session=s-123; Path=/; SameSite={same_site}"),
            &app_url,
        );
        let client = testing::client_with_jar(jar);
        let signed_in = testing::sign_in(&client, app.url(), &emulator).await;
        match signed_in {
            Ok(()) => assert!(signs_in, "a {same_site} cookie came back from ModelGates"),
            Err(error) => {
                assert!(!signs_in, "{same_site}: {error}");
                assert!(
                    error.to_string().contains("Sign in to the app first."),
                    "{error}"
                );
            }
        }
        // Connected only when the app's session came back with the callback.
        let me = client
            .get(format!("{}/account", app.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status() == StatusCode::OK, signs_in, "{same_site}");
    }
}

#[tokio::test]
async fn a_sign_in_without_the_app_session_is_refused_by_the_hook() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = testing::serve(|url| linking_app(url, &emulator, MemoryStore::default()))
        .await
        .unwrap();
    let error = testing::sign_in(&testing::client(), app.url(), &emulator)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Sign in to the app first."),
        "{error}"
    );
}

#[tokio::test]
async fn app_data_too_large_ends_the_sign_in_with_a_clear_500() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let store = MemoryStore::default();
    let app = testing::serve(|url| {
        let config =
            config(url, &emulator).with_on_sign_in(|_: SignIn| async { Ok("x".repeat(2000)) });
        Router::new().layer(ModelGatesAuth::new(config).with_store(store.clone()))
    })
    .await
    .unwrap();
    let error = testing::sign_in(&testing::client(), app.url(), &emulator)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("500"), "{error}");
    assert!(error.contains("app_data_rejected"), "{error}");
    assert_eq!(store.len(), 0, "nothing kept");
}

// --- 8. The testing helpers --------------------------------------------------------------------

#[tokio::test]
async fn sign_in_helper_works_on_a_nested_app_and_hints_when_pointed_at_the_root() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (app, _) = serve_nested(&emulator, |config| config).await;
    let error = testing::sign_in(&testing::client(), app.url(), &emulator)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("404"), "{error}");
    assert!(error.contains(&format!("{}/app", app.url())), "{error}");
    let client = testing::client();
    testing::sign_in(&client, &format!("{}/app", app.url()), &emulator)
        .await
        .unwrap();
    let me = client
        .get(format!("{}/app/me", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(me.text().await.unwrap(), "me");
}

#[tokio::test]
async fn two_instances_share_a_store_and_one_jar() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let store = MemoryStore::default();
    let secret = CookieSecret::generate();
    let [a, b] = testing::serve_many(|url| {
        let config = ModelGatesConfig::new(url, secret.clone()).with_base_url(emulator.base_url());
        Router::new()
                .route(
                    "/me",
                    get(|key: ModelGatesKey| async move {
                        key.user_id().unwrap_or_default().to_owned()
                    }),
                )
                .layer(ModelGatesAuth::new(config).with_store(store.clone()))
    })
    .await
    .unwrap();
    let jar = Arc::new(testing::BrowserJar::default());
    let client = testing::client_with_jar(jar.clone());
    testing::sign_in(&client, a.url(), &emulator).await.unwrap();
    let on_a = text(&client, &format!("{}/me", a.url())).await;
    // A second client with the same jar, on the other instance.
    let other = testing::client_with_jar(jar);
    let on_b = other.get(format!("{}/me", b.url())).send().await.unwrap();
    assert_eq!(on_b.status(), StatusCode::OK);
    assert_eq!(on_b.text().await.unwrap(), on_a);
}

/// The README's streaming example posts a form: the re-exported reqwest has `form` and `json`.
#[tokio::test]
async fn the_reexported_client_posts_forms_and_reads_json() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = testing::serve(|url| {
        Router::new()
                .route(
                    "/echo",
                    post(
                        |axum::Form(form): axum::Form<
                            std::collections::HashMap<String, String>,
                        >| async move { axum::Json(form) },
                    ),
                )
                .layer(ModelGatesAuth::new(config(url, &emulator)))
    })
    .await
    .unwrap();
    let echoed: std::collections::HashMap<String, String> = testing::client()
        .post(format!("{}/echo", app.url()))
        .form(&[("message", "hello")])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["message"], "hello");
}
