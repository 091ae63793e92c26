//! What real apps need besides the layer itself: the on-sign-in hook, login links, and the key
//! cookie's SameSite and Domain.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use modelgates_axum::config::SameSite;
use modelgates_axum::hooks::{SignIn, SignInRejected};
use modelgates_axum::store::MemoryStore;
use modelgates_axum::{ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use support::{Browser, config, emulator};

async fn me(key: Option<ModelGatesKey>) -> String {
    key.map_or_else(|| "signed out".to_owned(), |k| format!("{:?}", k.user_id()))
}

fn app(layer: ModelGatesAuth<MemoryStore>) -> Router {
    Router::new().route("/me", get(me)).layer(layer)
}

/// What the hook saw of one sign-in: the user id and the key.
type SeenSignIn = (Option<String>, String);

#[tokio::test]
async fn the_on_sign_in_hook_sees_each_sign_in_and_can_refuse_it() {
    let emu = emulator().await;
    let seen: Arc<Mutex<Vec<SeenSignIn>>> = Arc::default();
    let record = seen.clone();
    let cfg = config(&emu).with_on_sign_in(move |sign_in: SignIn| {
        let record = record.clone();
        async move {
            let key = sign_in.key.expose_secret().to_owned();
            let refused = record.lock().unwrap().len() == 1;
            record.lock().unwrap().push((sign_in.user_id, key));
            if refused {
                Err(SignInRejected::new("New accounts are closed this week."))
            } else {
                Ok(())
            }
        }
    });
    let store = MemoryStore::default();
    let mut browser = Browser::new(app(ModelGatesAuth::new(cfg).with_store(store.clone())));

    let landed = browser.sign_in("/login").await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER);
    let issued = emu.issued_keys().pop().unwrap();
    assert_eq!(
        seen.lock().unwrap()[0],
        (Some(issued.user_id.clone()), issued.key.clone()),
        "the hook gets the user id and the key"
    );
    assert_eq!(store.len(), 1);

    let mut other = Browser::new(browser.app.clone());
    let refused = other.sign_in("/login").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("New accounts are closed this week."),
        "{}",
        refused.body
    );
    assert!(
        refused.set_cookie("modelgates_key").is_none(),
        "no key cookie"
    );
    assert_eq!(store.len(), 1, "nothing stored");
    assert_eq!(other.get("/me").await.body, "signed out");
}

/// The hook knows what was issued: the key's expiry, and, asked of ModelGates, its label and
/// its spend limit as the person left it on the consent page.
#[tokio::test]
async fn the_on_sign_in_hook_knows_what_was_issued() {
    let emu = modelgates_emulator::Emulator::builder()
        .auto_approve(true)
        .key_lifetime(std::time::Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    type Seen = (
        Option<u64>,
        Option<modelgates_axum::oauth_core::api::KeyInfo>,
    );
    let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
    let record = seen.clone();
    let cfg = config(&emu)
        .with_key_label("Notes app")
        .with_on_sign_in(move |sign_in: SignIn| {
            let record = record.clone();
            async move {
                let info = sign_in.key_info().await.ok();
                *record.lock().unwrap() = Some((sign_in.expires_at, info));
                Ok(())
            }
        });
    let mut browser = Browser::new(app(
        ModelGatesAuth::new(cfg).with_store(MemoryStore::default())
    ));
    let landed = browser.sign_in("/login?limit=3").await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER);
    let (expires_at, info) = seen.lock().unwrap().take().expect("the hook ran");
    let issued = emu.issued_keys().pop().unwrap();
    assert_eq!(expires_at, emu.key(&issued.key).unwrap().expires_at);
    assert!(expires_at.is_some());
    let info = info.expect("ModelGates answered the key's info");
    assert_eq!(info.label, "Notes app");
    assert_eq!(info.limit, Some(3.0));
}

#[tokio::test]
async fn login_links_come_from_the_layer() {
    let emu = emulator().await;
    let auth = ModelGatesAuth::new(config(&emu).with_path_prefix("/auth"));
    assert_eq!(
        auth.login_url("/me?tab=2"),
        "/auth/login?return_to=%2Fme%3Ftab%3D2"
    );
    let mut browser = Browser::new(Router::new().route("/me", get(me)).layer(auth.clone()));
    let landed = browser.sign_in(&auth.login_url("/me")).await;
    assert_eq!(landed.location(), "/me");
}

#[tokio::test]
async fn the_key_cookie_can_be_strict_and_shared_across_subdomains() {
    let emu = emulator().await;
    let strict = config(&emu).with_key_cookie_same_site(SameSite::Strict);
    let mut browser = Browser::new(app(
        ModelGatesAuth::new(strict).with_store(MemoryStore::default())
    ));
    let landed = browser.sign_in("/login").await;
    let key_cookie = landed.set_cookie("modelgates_key").unwrap();
    assert!(key_cookie.contains("SameSite=Strict"), "{key_cookie}");
    let flow_cleared = landed.flow_set_cookie().unwrap();
    assert!(
        flow_cleared.contains("SameSite=Lax"),
        "the flow cookie stays Lax: {flow_cleared}"
    );

    let shared = ModelGatesConfig::new(
        "https://chat.example.com",
        modelgates_axum::CookieSecret::generate(),
    )
    .with_base_url(emu.base_url())
    .with_cookie_domain("example.com");
    let mut browser = Browser::new(app(
        ModelGatesAuth::new(shared).with_store(MemoryStore::default())
    ));
    let landed = browser.sign_in("/login").await;
    let key_cookie = landed.set_cookie("__Secure-modelgates_key").unwrap();
    assert!(
        key_cookie.contains("Domain=example.com") && key_cookie.contains("Secure"),
        "{key_cookie}"
    );
    let logout = browser.post("/logout").await;
    let removal = logout.set_cookie("__Secure-modelgates_key").unwrap();
    assert!(
        removal.contains("Domain=example.com") && removal.contains("Max-Age=0"),
        "a removal names the same Domain, or the browser keeps the cookie: {removal}"
    );
}
