//! Linked accounts over real HTTP on 127.0.0.1: an app with its own users (a session cookie of
//! its own, `app_user`) that links ModelGates to them. The next person at the keyboard, the
//! connect route without an app user, the return from ModelGates without the app's session
//! (a `SameSite=Strict` cookie) or with another one, disconnecting, the words of the pages,
//! and a background job that pages through the linked users, spends their keys, reads the
//! typed money errors and unlinks a key ModelGates rejects.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use modelgates_axum::hooks::{SignIn, SignOutReason, SignedOut};
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use modelgates_axum::store::MemoryStore;
use modelgates_axum::testing;
use modelgates_axum::{ApiError, CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// The app's own login: the user named by its `app_user` cookie (a real app signs it; the
/// layer only reads what the app says).
fn app_user(parts: &http::request::Parts) -> Option<String> {
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("app_user="))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// What the app's hooks heard: (app user, ModelGates user) at each sign-in, (reason, app user)
/// at each sign-out.
type Log<T> = Arc<Mutex<Vec<T>>>;

#[derive(Default, Clone)]
struct Heard {
    sign_ins: Log<(Option<String>, Option<String>)>,
    sign_outs: Log<(SignOutReason, Option<String>)>,
}

fn linked_auth(url: &str, emulator: &Emulator, heard: &Heard) -> ModelGatesAuth<MemoryStore> {
    let (sign_ins, sign_outs) = (heard.sign_ins.clone(), heard.sign_outs.clone());
    let config = ModelGatesConfig::new(url, CookieSecret::generate())
        .with_base_url(emulator.base_url())
        .with_linked_accounts(app_user)
        .with_on_sign_in(move |sign_in: SignIn| {
            sign_ins
                .lock()
                .unwrap()
                .push((sign_in.account, sign_in.user_id));
            async { Ok(()) }
        })
        .with_on_sign_out(move |signed_out: SignedOut| {
            sign_outs
                .lock()
                .unwrap()
                .push((signed_out.reason, signed_out.account));
            async {}
        });
    ModelGatesAuth::new(config).with_store(MemoryStore::default())
}

/// The app: `/me` names the connected key's account and key hash, `/chat` spends it.
fn app(auth: &ModelGatesAuth<MemoryStore>) -> Router {
    Router::new()
        .route(
            "/me",
            get(|key: Option<ModelGatesKey>| async move {
                match key {
                    Some(key) => format!("{} {}", key.account().unwrap_or("-"), key.manage_url()),
                    None => "not connected".to_owned(),
                }
            }),
        )
        .route(
            "/chat",
            get(|key: ModelGatesKey| async move {
                let request = CreateChatCompletionRequestArgs::default()
                    .model("openai/gpt-5.2")
                    .messages([ChatCompletionRequestUserMessage::from("hi").into()])
                    .build()?;
                let reply = key.openai().chat().create(request).await?;
                Ok::<_, ApiError>(reply.choices[0].message.content.clone().unwrap_or_default())
            }),
        )
        .layer(auth.clone())
}

struct Setup {
    emulator: Emulator,
    auth: ModelGatesAuth<MemoryStore>,
    heard: Heard,
    app: testing::TestApp,
}

async fn setup() -> Setup {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let heard = Heard::default();
    let made = Arc::new(Mutex::new(None));
    let app = testing::serve(|url| {
        let auth = linked_auth(url, &emulator, &heard);
        *made.lock().unwrap() = Some(auth.clone());
        app(&auth)
    })
    .await
    .unwrap();
    let auth = made.lock().unwrap().take().unwrap();
    Setup {
        emulator,
        auth,
        heard,
        app,
    }
}

/// A browser in which `user` is signed in to the app, its cookie `SameSite` as given.
fn browser_of(
    setup: &Setup,
    user: &str,
    same_site: &str,
) -> (reqwest::Client, Arc<testing::BrowserJar>) {
    let jar = Arc::new(testing::BrowserJar::default());
    sign_in_to_app(&jar, setup, user, same_site);
    (testing::client_with_jar(jar.clone()), jar)
}

fn sign_in_to_app(jar: &testing::BrowserJar, setup: &Setup, user: &str, same_site: &str) {
    jar.add_cookie_str(
        &format!("app_user={user}; Path=/; SameSite={same_site}"),
        &setup.app.url().parse().unwrap(),
    );
}

async fn me(client: &reqwest::Client, setup: &Setup) -> String {
    let url = format!("{}/me", setup.app.url());
    client.get(url).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn the_next_person_at_the_keyboard_never_reaches_the_previous_users_key() {
    let setup = setup().await;
    let (client, jar) = browser_of(&setup, "alice", "Lax");
    assert_eq!(me(&client, &setup).await, "not connected");
    testing::sign_in(&client, setup.app.url(), &setup.emulator)
        .await
        .unwrap();
    let alices = me(&client, &setup).await;
    assert!(alices.starts_with("alice "), "{alices}");
    assert_eq!(
        setup.heard.sign_ins.lock().unwrap()[0].0.as_deref(),
        Some("alice"),
        "the hook knows which app user is linked"
    );
    // No key cookie: the link is the app user's, not the browser's.
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &setup.app.url().parse().unwrap())
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        !cookies.contains("modelgates_key"),
        "linked mode sets no key cookie: {cookies}"
    );

    // Alice signs out of the app; Bob signs in on the same browser.
    sign_in_to_app(&jar, &setup, "bob", "Lax");
    assert_eq!(
        me(&client, &setup).await,
        "not connected",
        "bob is not connected"
    );
    let chat = client
        .get(format!("{}/chat", setup.app.url()))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = chat.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_connected");
    assert_eq!(
        setup.emulator.chat_count(),
        0,
        "no request of bob's reached alice's key"
    );

    // Bob connects his own; Alice's stays hers.
    testing::sign_in(&client, setup.app.url(), &setup.emulator)
        .await
        .unwrap();
    let bobs = me(&client, &setup).await;
    assert!(bobs.starts_with("bob "), "{bobs}");
    let alice_key = setup.auth.key_for("alice").await.unwrap().unwrap();
    let bob_key = setup.auth.key_for("bob").await.unwrap().unwrap();
    assert_ne!(alice_key.api_key(), bob_key.api_key());
    assert_eq!(alices, format!("alice {}", alice_key.manage_url()));
}

#[tokio::test]
async fn connecting_without_an_app_user_is_refused_in_the_modes_words() {
    let setup = setup().await;
    let page = testing::client()
        .get(format!("{}/login", setup.app.url()))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let body = page.text().await.unwrap();
    assert!(body.contains("Sign in to this app first"), "{body}");
    assert!(!body.contains("Sign in with ModelGates"), "{body}");
    let json = testing::client()
        .get(format!("{}/login", setup.app.url()))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = json.json().await.unwrap();
    assert_eq!(json["error"]["code"], "not_signed_in_to_app");
    assert_eq!(setup.emulator.exchange_count(), 0);
}

#[tokio::test]
async fn a_strict_app_session_cookie_is_named_as_the_cause_and_nothing_is_linked() {
    let setup = setup().await;
    let (client, _jar) = browser_of(&setup, "alice", "Strict");
    let error = testing::sign_in(&client, setup.app.url(), &setup.emulator)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("403"), "{error}");
    assert!(
        error.contains("SameSite=Strict"),
        "the page names the cause: {error}"
    );
    assert!(error.contains("SameSite=Lax"), "and the fix: {error}");
    assert!(!error.contains("Sign in with ModelGates"), "{error}");
    assert_eq!(setup.emulator.exchange_count(), 0, "no key was issued");
    assert!(setup.auth.key_for("alice").await.unwrap().is_none());
}

#[tokio::test]
async fn a_return_with_another_app_user_is_refused_before_any_key_is_issued() {
    let setup = setup().await;
    let (client, jar) = browser_of(&setup, "alice", "Lax");
    let callback = testing::start_sign_in(&client, setup.app.url(), &setup.emulator)
        .await
        .unwrap();
    sign_in_to_app(&jar, &setup, "mallory", "Lax");
    let answer = client
        .get(&callback)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "app_user_changed");
    assert_eq!(setup.emulator.exchange_count(), 0);
    for user in ["alice", "mallory"] {
        assert!(setup.auth.key_for(user).await.unwrap().is_none(), "{user}");
    }
}

#[tokio::test]
async fn disconnect_is_one_route_and_one_call() {
    let setup = setup().await;
    let (client, _jar) = browser_of(&setup, "alice", "Lax");
    testing::sign_in(&client, setup.app.url(), &setup.emulator)
        .await
        .unwrap();
    let cross_site = client
        .post(format!("{}/disconnect", setup.app.url()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross_site.status(),
        StatusCode::FORBIDDEN,
        "same-origin only"
    );
    assert!(setup.auth.key_for("alice").await.unwrap().is_some());
    let disconnected = client
        .post(format!("{}/disconnect", setup.app.url()))
        .header("origin", setup.app.url())
        .send()
        .await
        .unwrap();
    assert_eq!(disconnected.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&client, &setup).await, "not connected");
    assert!(setup.auth.key_for("alice").await.unwrap().is_none());
    assert_eq!(
        setup.heard.sign_outs.lock().unwrap().as_slice(),
        [(SignOutReason::Disconnected, Some("alice".to_owned()))]
    );

    testing::sign_in(&client, setup.app.url(), &setup.emulator)
        .await
        .unwrap();
    assert!(
        setup.auth.disconnect("alice").await.unwrap(),
        "was connected"
    );
    assert!(!setup.auth.disconnect("alice").await.unwrap(), "no longer");
    assert_eq!(me(&client, &setup).await, "not connected");
}

#[tokio::test]
async fn a_background_job_pages_through_linked_users_spends_their_keys_and_unlinks_a_rejected_one()
{
    let setup = setup().await;
    let users = ["ada", "bea", "cy", "dee", "eve"];
    for user in users {
        let (client, _jar) = browser_of(&setup, user, "Lax");
        testing::sign_in(&client, setup.app.url(), &setup.emulator)
            .await
            .unwrap();
    }
    let job = |auth: ModelGatesAuth<MemoryStore>| async move {
        let mut seen = Vec::new();
        let mut pages = auth.linked_accounts(2);
        while let Some(page) = pages.next_page().await.unwrap() {
            assert!(page.len() <= 2, "pages of the size asked");
            for account in page {
                let key = auth.key_for(&account).await.unwrap().unwrap();
                let request = CreateChatCompletionRequestArgs::default()
                    .model("openai/gpt-5.2")
                    .messages([ChatCompletionRequestUserMessage::from("summarise").into()])
                    .build()
                    .unwrap();
                let outcome = key
                    .openai()
                    .chat()
                    .create(request)
                    .await
                    .map_err(ApiError::from);
                seen.push((account, outcome.map(|_| ()).map_err(|error| error.code())));
            }
        }
        seen
    };
    let first = job(setup.auth.clone()).await;
    assert_eq!(
        first,
        users.map(|user| (user.to_owned(), Ok(()))),
        "every linked user, in order, each spending their own key"
    );

    // Bea revokes the key on ModelGates; Cy is out of credits.
    let bea = setup.auth.key_for("bea").await.unwrap().unwrap();
    setup.emulator.revoke_key(bea.api_key().expose_secret());
    let cy = setup.auth.key_for("cy").await.unwrap().unwrap();
    let cy_user = cy.user_id().unwrap().to_owned();
    setup.emulator.set_credits(&cy_user, 0.0);
    let second = job(setup.auth.clone()).await;
    assert_eq!(second[1], ("bea".to_owned(), Err("key_rejected")));
    assert_eq!(
        second[2],
        ("cy".to_owned(), Err("insufficient_credits")),
        "the money error is named"
    );
    // The rejected key is unlinked (in the background: poll, bounded).
    for _ in 0..200 {
        if setup.auth.key_for("bea").await.unwrap().is_none() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        setup.auth.key_for("bea").await.unwrap().is_none(),
        "a 401 unlinks"
    );
    assert!(
        setup
            .heard
            .sign_outs
            .lock()
            .unwrap()
            .contains(&(SignOutReason::KeyRejected, Some("bea".to_owned()))),
        "the on-sign-out hook hears it"
    );
    assert!(
        setup.auth.key_for("cy").await.unwrap().is_some(),
        "out of credits is not unlinked"
    );
    let mut listed = Vec::new();
    let mut pages = setup.auth.linked_accounts(10);
    while let Some(page) = pages.next_page().await.unwrap() {
        listed.extend(page);
    }
    assert_eq!(listed, ["ada", "cy", "dee", "eve"]);

    // key_info outside a request, with its typed errors.
    let ada = setup.auth.key_for("ada").await.unwrap().unwrap();
    assert!(ada.key_info().await.unwrap().usage >= 0.0);
    setup.emulator.inject_once(
        Endpoint::KeyInfo,
        Fault::RateLimited(std::time::Duration::from_secs(30)),
    );
    let limited = ada.key_info().await.unwrap_err();
    assert_eq!(ApiError::from(limited).code(), "rate_limited");
    assert!(ada.manage_url().contains("/keys/"));
}

#[tokio::test]
#[should_panic(expected = "server-side store")]
async fn linked_accounts_need_a_server_side_store() {
    let config = ModelGatesConfig::new("http://127.0.0.1:3000", CookieSecret::generate())
        .with_linked_accounts(app_user);
    let _ = Router::<()>::new().layer(ModelGatesAuth::new(config));
}
