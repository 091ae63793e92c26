//! Each attack of the security review, reproduced against the layer with the emulator on
//! 127.0.0.1, and refused. Each runs twice (`each_provider!`): against a provider that refuses a
//! verifier for a code issued without a challenge, and against a lenient one that accepts it,
//! to prove the layer defends itself.

use crate::support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{HeaderValue, Request, StatusCode, header};
use modelgates_axum::oauth_core::{ChallengeMethod, ModelGatesClient, Pkce};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use support::{Browser, Provider, code_of, config, key_or_signed_out, path_of, read};
use tower::ServiceExt as _;

async fn post_chat(key: ModelGatesKey) -> &'static str {
    let _ = key;
    "posted"
}

async fn cacheable() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        "the same for everyone",
    )
}

fn app(layer: ModelGatesAuth) -> Router {
    Router::new()
        .route("/me", get(key_or_signed_out))
        .route("/chat", post(post_chat))
        .route("/public", get(cacheable))
        .layer(layer.same_origin())
        .layer(layer)
}

/// The `/auth` URL an attacker opens for the app's callback, with no challenge.
fn challenge_less_auth_url(emu: &Emulator) -> String {
    let callback: String =
        form_urlencoded::byte_serialize(b"http://localhost:3000/callback").collect();
    format!("{}/auth?callback_url={callback}", emu.base_url())
}

each_provider!(login_csrf_by_pkce_downgrade_is_refused);
/// Login CSRF by PKCE downgrade: the attacker approves a challenge-less `/auth` as
/// themselves, drives the victim's browser through the app's `/login` (a fresh flow cookie of
/// its own) and then to the callback with the attacker's code. Without the per-flow binding a
/// lenient provider hands the victim the attacker's key; with `none` any provider does.
async fn login_csrf_by_pkce_downgrade_is_refused(provider: Provider) {
    let emu = provider.emulator().await;
    for cfg in [config(&emu), config(&emu).without_pkce().allow_weak_pkce()] {
        let mut victim = Browser::new(app(ModelGatesAuth::new(cfg)));
        let attacker = emu.approve(&challenge_less_auth_url(&emu)).unwrap();
        let query = attacker.query().unwrap();
        for pushed in [
            format!("/callback?{query}"),
            format!("/callback/{}?{query}", "A".repeat(22)),
            format!("/callback/?{query}"),
        ] {
            victim.get("/login").await;
            let exchanges = emu.exchange_count();
            let page = victim.get_json(&pushed).await;
            assert_eq!(
                page.status,
                StatusCode::BAD_REQUEST,
                "{pushed}: {}",
                page.body
            );
            assert!(page.body.contains("flow_mismatch"), "{}", page.body);
            assert_eq!(
                emu.exchange_count(),
                exchanges,
                "nothing reached ModelGates"
            );
            assert_eq!(victim.get("/me").await.body, "signed out");
        }
    }
    if provider == Provider::Lenient {
        // The attack is real here: the exchange the layer refused would have succeeded.
        let code = code_of(&format!(
            "/callback?{}",
            emu.approve(&challenge_less_auth_url(&emu))
                .unwrap()
                .query()
                .unwrap()
        ));
        let client = ModelGatesClient::builder()
            .base_url(emu.base_url())
            .build()
            .unwrap();
        let victims_pkce = Pkce::generate(ChallengeMethod::S256);
        assert!(
            client
                .exchange_code(&code, Some(&victims_pkce))
                .await
                .is_ok()
        );
    }
}

each_provider!(a_flow_is_tried_once);
/// A flow cookie recorded by a proxy (or replayed by a script) cannot start a second exchange,
/// so it cannot be used to try codes one after another.
async fn a_flow_is_tried_once(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let genuine = browser.start_sign_in("/login").await;
    let (flow_name, recorded) = browser.flow_cookie().unwrap();
    let flow = path_of(&genuine);
    let exchanges = emu.exchange_count();

    let first = browser.get_json(&format!("{flow}?code=guess-0")).await;
    assert!(first.body.contains("code_rejected"), "{}", first.body);
    for attempt in 1..20 {
        browser.cookies.insert(flow_name.clone(), recorded.clone());
        let again = browser
            .get_json(&format!("{flow}?code=guess-{attempt}"))
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert!(again.body.contains("flow_used"), "{}", again.body);
    }
    browser.cookies.insert(flow_name.clone(), recorded.clone());
    let late = browser.get_json(&genuine).await;
    assert!(
        late.body.contains("flow_used"),
        "even the genuine code: {}",
        late.body
    );
    assert_eq!(emu.exchange_count(), exchanges + 1, "one exchange per flow");
}

each_provider!(concurrent_exchanges_are_bounded);
/// Exchanges in flight are bounded: beyond the bound a callback is a 503 with Retry-After,
/// and nothing more is sent to ModelGates.
async fn concurrent_exchanges_are_bounded(provider: Provider) {
    let emu = provider.emulator().await;
    let layer = ModelGatesAuth::new(config(&emu).with_max_concurrent_exchanges(1));
    let mut slow = Browser::new(app(layer.clone()));
    let mut other = Browser::new(app(layer));
    let slow_callback = slow.start_sign_in("/login").await;
    let other_callback = other.start_sign_in("/login").await;
    emu.inject_once(Endpoint::Keys, Fault::Delay(Duration::from_secs(1)));
    let before = emu.exchange_count();
    let pending = tokio::spawn(async move { slow.get(&slow_callback).await });
    for _ in 0..1000 {
        if emu.exchange_count() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        emu.exchange_count(),
        before + 1,
        "the slow exchange is in flight"
    );

    let busy = other.get_json(&other_callback).await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        busy.body
    );
    assert_eq!(busy.headers[header::RETRY_AFTER], "1");
    assert!(busy.body.contains("\"busy\""), "{}", busy.body);
    assert_eq!(
        emu.exchange_count(),
        before + 1,
        "nothing more reached ModelGates"
    );

    assert_eq!(pending.await.unwrap().status, StatusCode::SEE_OTHER);
    let retry = other.sign_in("/login").await;
    assert_eq!(
        retry.status,
        StatusCode::SEE_OTHER,
        "the slot is free again"
    );
}

each_provider!(cookies_on_cacheable_responses_make_them_private);
/// A cookie the layer adds to an inner, cacheable response (a cleared or re-issued key cookie)
/// makes it private and uncacheable, so a CDN never hands one user's cookie to another.
async fn cookies_on_cacheable_responses_make_them_private(provider: Provider) {
    let emu = provider.emulator().await;
    let old = CookieSecret::generate();
    let before =
        ModelGatesConfig::new("http://localhost:3000", old.clone()).with_base_url(emu.base_url());
    let mut browser = Browser::new(app(ModelGatesAuth::new(before)));
    browser.sign_in("/login").await;
    let untouched = browser.get("/public").await;
    assert_eq!(
        untouched.headers[header::CACHE_CONTROL],
        "public, max-age=3600"
    );
    assert!(untouched.headers.get(header::VARY).is_none());

    let rotated = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
        .with_previous_secrets([old])
        .with_base_url(emu.base_url());
    browser.app = app(ModelGatesAuth::new(rotated));
    let reissued = browser.get("/public").await;
    assert!(reissued.set_cookie("modelgates_key").is_some(), "re-issued");

    browser
        .cookies
        .insert("modelgates_key".into(), "tampered".into());
    let cleared = browser.get("/public").await;
    assert!(
        cleared
            .set_cookie("modelgates_key")
            .unwrap()
            .contains("Max-Age=0"),
        "cleared"
    );
    for page in [reissued, cleared] {
        assert_eq!(page.headers[header::CACHE_CONTROL], "private, no-store");
        assert_eq!(page.headers[header::VARY], "Cookie");
        assert_eq!(page.body, "the same for everyone");
    }
}

each_provider!(cross_site_posts_are_refused);
/// Another site, or a sibling subdomain, cannot make a signed-in browser post to the layer's
/// logout or to the app's routes behind the guard; same-origin and non-browser posts work.
async fn cross_site_posts_are_refused(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    browser.sign_in("/login").await;
    let key = browser.get("/me").await.body;
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "http://chat.localhost:3000"),
        ("origin", "null"),
    ] {
        for path in ["/logout", "/chat"] {
            let refused = browser
                .send(
                    Request::post(path)
                        .header(name, value)
                        .header(header::ACCEPT, "application/json"),
                    Body::empty(),
                )
                .await;
            assert_eq!(
                refused.status,
                StatusCode::FORBIDDEN,
                "{path} {name}: {value}"
            );
            assert!(refused.body.contains("cross_site"), "{}", refused.body);
            assert!(refused.set_cookie("modelgates_key").is_none());
        }
        assert_eq!(browser.get("/me").await.body, key, "still signed in");
    }
    let cross_site_get = browser
        .send(
            Request::get("/me").header("sec-fetch-site", "cross-site"),
            Body::empty(),
        )
        .await;
    assert_eq!(cross_site_get.body, key, "safe methods are not guarded");
    for request in [
        Request::post("/chat").header("sec-fetch-site", "same-origin"),
        Request::post("/chat").header("origin", "http://localhost:3000"),
        Request::post("/chat"),
    ] {
        assert_eq!(browser.send(request, Body::empty()).await.body, "posted");
    }
    let logout = browser
        .send(
            Request::post("/logout").header("sec-fetch-site", "same-origin"),
            Body::empty(),
        )
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/me").await.body, "signed out");
}

each_provider!(a_foreign_non_ascii_cookie_does_not_sign_users_out);
/// A cookie set by a sibling subdomain with a non-ASCII byte (`tracker=café`) must not hide
/// ours: users stay signed in and callbacks still work.
async fn a_foreign_non_ascii_cookie_does_not_sign_users_out(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let with_tracker = |browser: &Browser, uri: &str| {
        let header = [
            b"tracker=caf\xc3\xa9; ".as_slice(),
            browser.cookie_header().as_bytes(),
        ]
        .concat();
        Request::get(uri)
            .header(header::COOKIE, HeaderValue::from_bytes(&header).unwrap())
            .body(Body::empty())
            .unwrap()
    };
    let callback = browser.start_sign_in("/login").await;
    let landed = read(
        browser
            .app
            .clone()
            .oneshot(with_tracker(&browser, &callback))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
    let key_cookie = cookie::Cookie::parse(landed.set_cookie("modelgates_key").unwrap()).unwrap();
    browser
        .cookies
        .insert("modelgates_key".into(), key_cookie.value().to_owned());
    let me = read(
        browser
            .app
            .clone()
            .oneshot(with_tracker(&browser, "/me"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me.body, emu.issued_keys().pop().unwrap().key);
}

each_provider!(provider_error_text_is_filtered_and_escaped);
/// The provider's `error=` value cannot forge log lines or inject markup: only RFC 6749's
/// characters are kept, and the page escapes them.
async fn provider_error_text_is_filtered_and_escaped(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let flow = path_of(&browser.start_sign_in("/login").await);
    let page = browser
        .get(&format!(
            "{flow}?error=bad%0D%0A2026-11-27%20INFO%20forged%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(!page.body.contains('\r') && !page.body.contains("bad\n"));
    assert!(
        page.body
            .contains("bad2026-11-27 INFO forged&lt;script&gt;"),
        "{}",
        page.body
    );
}

each_provider!(a_return_to_too_large_for_the_cookie_falls_back_to_the_default);
/// A `return_to` that would make the flow cookie larger than a browser keeps (4096 bytes)
/// falls back to the default page instead of breaking the sign-in.
async fn a_return_to_too_large_for_the_cookie_falls_back_to_the_default(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    // Each `"` takes two bytes in the cookie's JSON; 2000 of them fit the return_to rules.
    let quotes = "%22".repeat(2000);
    let login = browser.get(&format!("/login?return_to=/{quotes}")).await;
    let flow_cookie = login.flow_set_cookie().unwrap();
    assert!(flow_cookie.len() <= 4096, "{} bytes", flow_cookie.len());
    let auth = login.location().to_owned();
    let callback = emu.approve(&auth).unwrap();
    let landed = browser.visit(&callback).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
    assert_eq!(landed.location(), "/");
}

each_provider!(dot_segment_return_to_values_are_refused);
/// Hostile `return_to` values that only stay on the site by luck of a browser's path
/// handling are refused outright.
async fn dot_segment_return_to_values_are_refused(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    for hostile in [
        "/.//evil.example",
        "/%2e%2e//evil.example",
        "/a/..//evil.example",
        "/%2E/%2Fevil.example",
        "/a%5Cevil.example",
        "/caf%C3%A9",
    ] {
        let encoded: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
        let landed = browser
            .sign_in(&format!("/login?return_to={encoded}"))
            .await;
        assert_eq!(landed.location(), "/", "{hostile}");
    }
}
