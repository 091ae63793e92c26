//! The layer end to end, with the emulator in-process on 127.0.0.1: the full flow, every
//! rejection path, cookie attributes, hostile input, rotation, stores, and concurrency. Each
//! test runs twice (`each_provider!`): against a provider that refuses a verifier for a code
//! issued without a challenge, and against a lenient one that accepts it.

use crate::support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine as _;
use http::{Request, StatusCode, header};
use modelgates_axum::ApiError;
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use modelgates_axum::store::MemoryStore;
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::{Endpoint, Fault};
use support::{Browser, Provider, code_of, config, http, path_of, read};
use tower::ServiceExt as _;

async fn home(key: Option<ModelGatesKey>) -> String {
    match key {
        Some(key) => format!("signed in as {}", key.user_id().unwrap_or("?")),
        None => "signed out".to_owned(),
    }
}

/// Test-only: tells the test which key the request carried.
async fn which_key(key: ModelGatesKey) -> String {
    key.api_key().expose_secret().to_owned()
}

async fn chat(key: ModelGatesKey) -> Result<String, ApiError> {
    let request = CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
        .build()?;
    let reply = key.openai().chat().create(request).await?;
    Ok(reply.choices[0].message.content.clone().unwrap_or_default())
}

fn routes() -> Router {
    Router::new()
        .route("/", get(home))
        .route("/me", get(which_key))
        .route("/chat", post(chat))
}

fn app(layer: ModelGatesAuth) -> Router {
    routes().layer(layer)
}

each_provider!(full_flow_sign_in_chat_logout);
async fn full_flow_sign_in_chat_logout(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    assert_eq!(browser.get("/").await.body, "signed out");

    let login = browser.get("/login?return_to=%2Fme%3Fx%3D1").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.headers[header::CACHE_CONTROL], "private, no-store");
    let auth = url::Url::parse(login.location()).unwrap();
    assert!(
        auth.as_str()
            .starts_with(&format!("{}/auth?", emu.base_url()))
    );
    let query: std::collections::HashMap<_, _> = auth.query_pairs().into_owned().collect();
    let flow_id = query["callback_url"]
        .strip_prefix("http://localhost:3000/callback/")
        .expect("the callback URL carries the flow id");
    assert_eq!(flow_id.len(), 22, "128 random bits, base64url");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert_eq!(
        browser.flow_cookie().unwrap().0,
        format!("modelgates_flow.{flow_id}"),
        "the flow cookie is named by its flow id"
    );

    let approved = http().get(auth.as_str()).send().await.unwrap();
    let callback = url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    let landed = browser.visit(&callback).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
    assert_eq!(landed.location(), "/me?x=1");
    assert_eq!(landed.headers[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(landed.headers[header::REFERRER_POLICY], "no-referrer");
    assert!(browser.flow_cookie().is_none(), "flow cookie cleared");

    let issued = emu.issued_keys().pop().unwrap();
    assert_eq!(
        browser.get("/me").await.body,
        issued.key,
        "the key issued for this code"
    );
    assert_eq!(
        browser.get("/").await.body,
        format!("signed in as {}", issued.user_id)
    );
    let exchange = emu.last_exchange().unwrap().json.unwrap();
    assert_eq!(exchange["code_challenge_method"], "S256");
    assert_eq!(exchange["code_verifier"].as_str().unwrap().len(), 43);

    let reply = browser.post("/chat").await;
    assert_eq!(reply.body, "[openai/gpt-5.2] You said: Hello!");

    let logout = browser.post("/logout").await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(logout.location(), "/");
    assert!(
        logout
            .set_cookie("modelgates_key")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(browser.get("/").await.body, "signed out");
}

each_provider!(plain_and_no_pkce_modes_sign_in);
async fn plain_and_no_pkce_modes_sign_in(provider: Provider) {
    let emu = provider.emulator().await;
    for cfg in [
        config(&emu)
            .with_challenge_method(modelgates_axum::oauth_core::ChallengeMethod::Plain)
            .allow_weak_pkce(),
        config(&emu).without_pkce().allow_weak_pkce(),
    ] {
        let mut browser = Browser::new(app(ModelGatesAuth::new(cfg)));
        let landed = browser.sign_in("/login").await;
        assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
        assert_eq!(
            browser.get("/me").await.body,
            emu.issued_keys().pop().unwrap().key
        );
    }
}

each_provider!(router_with_state_inside_service_builder);
async fn router_with_state_inside_service_builder(provider: Provider) {
    #[derive(Clone)]
    struct AppState {
        greeting: &'static str,
    }
    async fn greet(State(state): State<AppState>, key: ModelGatesKey) -> String {
        format!("{} {}", state.greeting, key.user_id().unwrap_or("?"))
    }
    let emu = provider.emulator().await;
    let app = Router::new()
        .route("/greet", get(greet))
        .layer(tower::ServiceBuilder::new().layer(ModelGatesAuth::new(config(&emu))))
        .with_state(AppState { greeting: "hello" });
    let mut browser = Browser::new(app);
    browser.sign_in("/login").await;
    let user = emu.issued_keys().pop().unwrap().user_id;
    assert_eq!(browser.get("/greet").await.body, format!("hello {user}"));
}

each_provider!(works_around_a_plain_tower_service);
async fn works_around_a_plain_tower_service(provider: Provider) {
    let emu = provider.emulator().await;
    let inner = tower::service_fn(|request: Request<Body>| async move {
        let signed_in = ModelGatesKey::from_extensions(request.extensions())
            .unwrap()
            .is_some();
        Ok::<_, std::convert::Infallible>(http::Response::new(format!("signed in: {signed_in}")))
    });
    let service = tower::ServiceBuilder::new()
        .layer(ModelGatesAuth::new(config(&emu)))
        .service(inner);
    let response = service
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(read(response).await.body, "signed in: false");
    let login = service
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
}

each_provider!(extractor_rejections);
async fn extractor_rejections(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));

    let navigation = browser.get("/me?tab=2").await;
    assert_eq!(navigation.status, StatusCode::SEE_OTHER);
    assert_eq!(navigation.location(), "/login?return_to=%2Fme%3Ftab%3D2");

    let api = browser.get_json("/me").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(body["error"]["code"], "not_signed_in");

    let post = browser.post("/chat").await;
    assert_eq!(
        post.status,
        StatusCode::UNAUTHORIZED,
        "a form POST is not a navigation to redirect"
    );

    // Without the layer: a 500 that names it.
    let mut bare = Browser::new(routes());
    let missing = bare.get("/me").await;
    assert_eq!(missing.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(missing.body.contains("ModelGatesAuth"), "{}", missing.body);
    assert_eq!(
        bare.get("/").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

each_provider!(the_login_redirect_round_trips_to_the_page_asked_for);
async fn the_login_redirect_round_trips_to_the_page_asked_for(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let navigation = browser.get("/me?tab=2").await;
    let landed = browser.sign_in(navigation.location()).await;
    assert_eq!(landed.location(), "/me?tab=2");
}

each_provider!(callback_rejection_paths);
async fn callback_rejection_paths(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));

    // No flow cookie at all.
    let page = browser.get("/callback?code=abc").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body
            .contains("expired or was started in another browser"),
        "{}",
        page.body
    );
    assert_eq!(page.headers[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(
        emu.exchange_count(),
        0,
        "nothing is sent to ModelGates without a flow"
    );

    let cases = [
        ("/callback", "code_missing", StatusCode::BAD_REQUEST),
        (
            "/callback?code=a&code=b",
            "code_duplicated",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/callback?code=a%20b",
            "code_malformed",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/callback?code=%00",
            "code_malformed",
            StatusCode::BAD_REQUEST,
        ),
        ("/callback?code=", "code_malformed", StatusCode::BAD_REQUEST),
        (
            "/callback?error=access_denied",
            "access_denied",
            StatusCode::FORBIDDEN,
        ),
        (
            "/callback?error=%3Cscript%3Ex%3C%2Fscript%3E",
            "authorization_failed",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/callback?code=forged-code",
            "code_rejected",
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, code, status) in cases {
        let flow = path_of(&browser.start_sign_in("/login").await);
        let uri = uri.replacen("/callback", &flow, 1);
        let json = browser.get_json(&uri).await;
        assert_eq!(json.status, status, "{uri}: {}", json.body);
        let body: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(body["error"]["code"], code, "{uri}");
        assert!(
            json.flow_set_cookie().unwrap().contains("Max-Age=0"),
            "cleared on {uri}"
        );
        assert_eq!(browser.get("/").await.body, "signed out");
    }
    let flow = path_of(&browser.start_sign_in("/login").await);
    let long = format!("{flow}?code={}", "a".repeat(2049));
    assert_eq!(
        browser.get_json(&long).await.status,
        StatusCode::BAD_REQUEST
    );

    let flow = path_of(&browser.start_sign_in("/login").await);
    let page = browser
        .get(&format!(
            "{flow}?error=%3Cscript%3Ex%3C%2Fscript%3E%0D%0Aforged"
        ))
        .await;
    assert!(!page.body.contains("<script>"), "escaped: {}", page.body);
    assert!(page.body.contains("&lt;script&gt;"));

    let flow = path_of(&browser.start_sign_in("/login").await);
    let denied = browser.get(&format!("{flow}?error=access_denied")).await;
    assert!(denied.body.contains("You cancelled"), "{}", denied.body);
    assert!(
        denied.body.contains("href=\"/login\""),
        "offers to sign in again"
    );
}

each_provider!(replayed_and_injected_codes_are_rejected);
async fn replayed_and_injected_codes_are_rejected(provider: Provider) {
    let emu = provider.emulator().await;
    let layer = ModelGatesAuth::new(config(&emu));

    // Replay: the victim's callback URL used again after it worked. Its flow is finished, so
    // nothing reaches ModelGates; the browser is signed in, so it is a harmless redirect, and
    // the sign-in the victim started since goes on.
    let mut victim = Browser::new(app(layer.clone()));
    let callback = victim.start_sign_in("/login").await;
    assert_eq!(victim.get(&callback).await.status, StatusCode::SEE_OTHER);
    victim.start_sign_in("/login").await;
    let exchanges = emu.exchange_count();
    let replay = victim.get_json(&callback).await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER, "{}", replay.body);
    assert_eq!(replay.location(), "/");
    assert!(
        replay.flow_set_cookie().is_none(),
        "the pending sign-in is kept"
    );
    assert_eq!(emu.exchange_count(), exchanges);
    // Signed out, the same replay is refused: it belongs to no sign-in this browser started.
    victim.cookies.shift_remove("modelgates_key");
    let replay = victim.get_json(&callback).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("flow_mismatch"), "{}", replay.body);
    assert_eq!(emu.exchange_count(), exchanges);

    // Injection: an attacker's code pushed into a victim's flow fails PKCE.
    let mut attacker = Browser::new(app(layer.clone()));
    let attacker_callback = attacker.start_sign_in("/login").await;
    let mut target = Browser::new(app(layer));
    target.start_sign_in("/login").await;
    let injected = target.get_json(&attacker_callback).await;
    assert_eq!(
        injected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        injected.body
    );
    assert_eq!(target.get("/").await.body, "signed out");
    assert!(
        emu.issued_keys()
            .iter()
            .all(|k| k.code != code_of(&attacker_callback))
    );
}

each_provider!(modelgates_failures_give_502_504_and_leave_the_user_able_to_retry);
async fn modelgates_failures_give_502_504_and_leave_the_user_able_to_retry(provider: Provider) {
    let emu = provider.emulator().await;
    let cfg = config(&emu).with_http_timeout(Duration::from_secs(1));
    let mut browser = Browser::new(app(ModelGatesAuth::new(cfg)));
    let faults = [
        (Fault::Status(500), StatusCode::BAD_GATEWAY),
        (Fault::Status(502), StatusCode::BAD_GATEWAY),
        (Fault::MalformedJson, StatusCode::BAD_GATEWAY),
        (Fault::MissingKey, StatusCode::BAD_GATEWAY),
        (Fault::DropConnection, StatusCode::BAD_GATEWAY),
        (
            Fault::Delay(Duration::from_secs(3)),
            StatusCode::GATEWAY_TIMEOUT,
        ),
    ];
    for (fault, status) in faults {
        let callback = browser.start_sign_in("/login").await;
        emu.inject_once(Endpoint::Keys, fault.clone());
        let page = browser.get(&callback).await;
        assert_eq!(page.status, status, "{fault:?}: {}", page.body);
        assert!(page.body.contains("try again"), "{}", page.body);
        assert_eq!(browser.get("/").await.body, "signed out", "{fault:?}");
    }
    let retry = browser.sign_in("/login").await;
    assert_eq!(retry.status, StatusCode::SEE_OTHER);
    assert!(browser.get("/").await.body.starts_with("signed in"));
}

each_provider!(wrong_methods_get_405);
async fn wrong_methods_get_405(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let post_login = browser.post("/login").await;
    assert_eq!(post_login.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post_login.headers[header::ALLOW], "GET");
    let get_logout = browser.get("/logout").await;
    assert_eq!(get_logout.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_logout.headers[header::ALLOW], "POST");
}

each_provider!(cookie_attributes_for_http_and_https);
async fn cookie_attributes_for_http_and_https(provider: Provider) {
    let emu = provider.emulator().await;
    let mut local = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let login = local.get("/login").await;
    let flow = login.flow_set_cookie().unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(flow.contains(attribute), "{flow}");
    }
    assert!(!flow.contains("Secure"));
    let landed = local.sign_in("/login").await;
    let key = landed.set_cookie("modelgates_key").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(key.contains(attribute), "{key}");
    }

    let https = ModelGatesConfig::new("https://app.example", CookieSecret::generate())
        .with_base_url(emu.base_url());
    let mut secure = Browser::new(app(ModelGatesAuth::new(https)));
    let login = secure.get("/login").await;
    let flow = login
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-modelgates_flow."))
        .expect("__Host- name on https");
    assert!(
        flow.contains("Secure") && flow.contains("Path=/") && !flow.contains("Domain"),
        "{flow}"
    );
    let auth = url::Url::parse(login.location()).unwrap();
    assert!(
        auth.query_pairs()
            .any(|(k, v)| k == "callback_url" && v.starts_with("https://app.example/callback/"))
    );
    let approved = http().get(auth.as_str()).send().await.unwrap();
    let callback = url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    let landed = secure.visit(&callback).await;
    let key = landed.set_cookie("__Host-modelgates_key").unwrap();
    assert!(key.contains("Secure") && key.contains("HttpOnly"), "{key}");
}

each_provider!(key_cookie_holds_no_readable_key);
async fn key_cookie_holds_no_readable_key(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let landed = browser.sign_in("/login").await;
    let issued = emu.issued_keys().pop().unwrap();
    let set_cookie = landed.set_cookie("modelgates_key").unwrap();
    assert!(!set_cookie.contains(&issued.key));
    assert!(!set_cookie.contains(&issued.key["sk-mg-v1-".len()..][..16]));
}

/// `value` with the character at `index` changed to another base64 character.
fn flip(value: &str, index: usize) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Makes the flow cookie `name` the way an attacker holding the secret, or a clock, would.
fn forged_flow(secret: &CookieSecret, name: &str, json: &str) -> String {
    // The encrypted payload is the JSON behind a purpose tag.
    let key = cookie::Key::from(
        &base64::engine::general_purpose::STANDARD
            .decode(secret.to_base64())
            .unwrap()[..64],
    );
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(&key).add(cookie::Cookie::new(
        name.to_owned(),
        format!("flow2.{json}"),
    ));
    jar.get(name).unwrap().value().to_owned()
}

each_provider!(hostile_flow_cookies);
async fn hostile_flow_cookies(provider: Provider) {
    let emu = provider.emulator().await;
    let secret = CookieSecret::generate();
    let cfg = ModelGatesConfig::new("http://localhost:3000", secret.clone())
        .with_base_url(emu.base_url());
    let mut browser = Browser::new(app(ModelGatesAuth::new(cfg)));
    let callback = browser.start_sign_in("/login").await;
    let (flow_name, genuine) = browser.flow_cookie().unwrap();

    let expired = forged_flow(
        &secret,
        &flow_name,
        &format!(
            r#"{{"i":"x","v":"{}","m":"S256","r":"/","t":1000}}"#,
            "a".repeat(43)
        ),
    );
    let key_cookie_value = {
        let mut signed_in = Browser::new(browser.app.clone());
        signed_in.sign_in("/login").await;
        signed_in.cookies["modelgates_key"].clone()
    };
    let exchanges_before = emu.exchange_count();
    let other_secret = forged_flow(
        &CookieSecret::generate(),
        &flow_name,
        r#"{"i":"x","v":null,"m":null,"r":"/","t":1}"#,
    );
    let cases = [
        (format!("{genuine}x"), "flow_invalid"),
        (genuine[..genuine.len() - 3].to_owned(), "flow_invalid"),
        (flip(&genuine, genuine.len() / 2), "flow_invalid"),
        (flip(&genuine, 3), "flow_invalid"),
        (other_secret, "flow_invalid"),
        (expired, "flow_expired"),
        (String::from("garbage"), "flow_invalid"),
        (key_cookie_value, "flow_invalid"),
    ];
    for (value, code) in cases {
        let mut attempt = browser.clone();
        attempt.cookies.insert(flow_name.clone(), value.clone());
        let page = attempt.get_json(&callback).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{value}");
        assert!(page.body.contains(code), "{value}: {}", page.body);
    }
    assert_eq!(
        emu.exchange_count(),
        exchanges_before,
        "no forged flow reached ModelGates"
    );
    assert_eq!(
        browser.get(&callback).await.status,
        StatusCode::SEE_OTHER,
        "the genuine one still works"
    );
}

each_provider!(hostile_key_cookies_sign_out_and_are_cleared);
async fn hostile_key_cookies_sign_out_and_are_cleared(provider: Provider) {
    let emu = provider.emulator().await;
    let layer = ModelGatesAuth::new(config(&emu));
    let mut browser = Browser::new(app(layer.clone()));
    browser.sign_in("/login").await;
    let genuine = browser.cookies["modelgates_key"].clone();
    let flow_value = {
        let mut b = Browser::new(app(layer));
        b.get("/login").await;
        b.flow_cookie().unwrap().1
    };
    let other_app = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let mut foreign = other_app.clone();
    foreign.sign_in("/login").await;
    let cases = [
        format!("{genuine}A"),
        genuine[..genuine.len() / 2].to_owned(),
        flip(&genuine, 10),
        flip(&genuine, genuine.len() - 5),
        flow_value,
        foreign.cookies["modelgates_key"].clone(),
        "sk-mg-v1-plaintext".to_owned(),
    ];
    for value in cases {
        let mut attempt = browser.clone();
        attempt
            .cookies
            .insert("modelgates_key".into(), value.clone());
        let page = attempt.get("/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body, "signed out", "{value}");
        assert!(
            page.set_cookie("modelgates_key")
                .unwrap()
                .contains("Max-Age=0")
        );
    }
    assert!(browser.get("/").await.body.starts_with("signed in"));
}

/// Makes a cookie-store key cookie with a chosen issue time, as the layer would have.
fn key_cookie_issued_at(secret: &CookieSecret, key: &str, issued_at: u64) -> String {
    let key_material = base64::engine::general_purpose::STANDARD
        .decode(secret.to_base64())
        .unwrap();
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(&cookie::Key::from(&key_material[..64]))
        .add(cookie::Cookie::new(
            "modelgates_key",
            format!(r#"{{"k":"{key}","t":{issued_at}}}"#),
        ));
    jar.get("modelgates_key").unwrap().value().to_owned()
}

each_provider!(expired_key_cookies_are_refused);
async fn expired_key_cookies_are_refused(provider: Provider) {
    let emu = provider.emulator().await;
    let secret = CookieSecret::generate();
    let cfg = ModelGatesConfig::new("http://localhost:3000", secret.clone())
        .with_base_url(emu.base_url())
        .with_key_max_age(Duration::from_secs(3600));
    let mut browser = Browser::new(app(ModelGatesAuth::new(cfg)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    browser.cookies.insert(
        "modelgates_key".into(),
        key_cookie_issued_at(&secret, "sk-fresh", now - 60),
    );
    assert_eq!(browser.get("/me").await.body, "sk-fresh");

    browser.cookies.insert(
        "modelgates_key".into(),
        key_cookie_issued_at(&secret, "sk-old", now - 3601),
    );
    let page = browser.get("/").await;
    assert_eq!(page.body, "signed out");
    assert!(
        page.set_cookie("modelgates_key")
            .unwrap()
            .contains("Max-Age=0")
    );
}

each_provider!(return_to_payloads_never_leave_the_site);
async fn return_to_payloads_never_leave_the_site(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let payloads = [
        "//evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: pwned=1",
        "\\\\evil.example",
        "http:evil.example",
    ];
    for payload in payloads {
        let encoded: String = url::form_urlencoded::byte_serialize(payload.as_bytes()).collect();
        let landed = browser
            .sign_in(&format!("/login?return_to={encoded}"))
            .await;
        assert_eq!(landed.location(), "/", "{payload:?}");
        assert!(landed.headers.get("pwned").is_none());
    }
}

each_provider!(host_and_forwarded_headers_do_not_change_the_callback);
async fn host_and_forwarded_headers_do_not_change_the_callback(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let hostile = || {
        Request::get("/login?return_to=%2Fa")
            .header(header::HOST, "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "host=evil.example;proto=https")
    };
    // A foreign host is sent to the public URL (never to the host it named), once.
    let first = browser.send(hostile(), Body::empty()).await;
    assert_eq!(
        first.location(),
        "http://localhost:3000/login?return_to=%2Fa"
    );
    let login = browser.send(hostile(), Body::empty()).await;
    let callback = support::callback_url_param(login.location());
    assert!(
        callback.starts_with("http://localhost:3000/callback/"),
        "{callback}"
    );
}

each_provider!(a_60_kb_cookie_header_is_handled);
async fn a_60_kb_cookie_header_is_handled(provider: Provider) {
    let emu = provider.emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    browser.cookies.insert("junk".into(), "x".repeat(30_000));
    browser
        .cookies
        .insert("modelgates_key".into(), "A".repeat(30_000));
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, "signed out");
    let id = "A".repeat(22);
    browser
        .cookies
        .insert(format!("modelgates_flow.{id}"), "B".repeat(30_000));
    let callback = browser.get_json(&format!("/callback/{id}?code=x")).await;
    assert_eq!(callback.status, StatusCode::BAD_REQUEST);
    assert!(callback.body.contains("flow_invalid"));
}

each_provider!(rotation_accepts_old_cookies_and_reissues_them);
async fn rotation_accepts_old_cookies_and_reissues_them(provider: Provider) {
    let emu = provider.emulator().await;
    let (old, new) = (CookieSecret::generate(), CookieSecret::generate());
    let before =
        ModelGatesConfig::new("http://localhost:3000", old.clone()).with_base_url(emu.base_url());
    let mut browser = Browser::new(app(ModelGatesAuth::new(before)));
    browser.sign_in("/login").await;
    let old_cookie = browser.cookies["modelgates_key"].clone();

    let rotated = ModelGatesConfig::new("http://localhost:3000", new.clone())
        .with_previous_secrets([old])
        .with_base_url(emu.base_url());
    browser.app = app(ModelGatesAuth::new(rotated));
    let page = browser.get("/").await;
    assert!(page.body.starts_with("signed in"), "{}", page.body);
    let reissued = page
        .set_cookie("modelgates_key")
        .expect("re-issued under the new secret");
    assert!(!reissued.contains("Max-Age=0"));
    assert_ne!(browser.cookies["modelgates_key"], old_cookie);
    // A fresh cookie is not re-issued again.
    assert!(
        browser
            .get("/")
            .await
            .set_cookie("modelgates_key")
            .is_none()
    );

    // Once the old secret is dropped, only the re-issued cookie works.
    let only_new =
        ModelGatesConfig::new("http://localhost:3000", new).with_base_url(emu.base_url());
    browser.app = app(ModelGatesAuth::new(only_new));
    assert!(browser.get("/").await.body.starts_with("signed in"));
    let mut stale = browser.clone();
    stale.cookies.insert("modelgates_key".into(), old_cookie);
    assert_eq!(stale.get("/").await.body, "signed out");
}

each_provider!(instances_sharing_a_secret_share_sign_ins);
async fn instances_sharing_a_secret_share_sign_ins(provider: Provider) {
    let emu = provider.emulator().await;
    let secret = CookieSecret::generate();
    let instance = || {
        app(ModelGatesAuth::new(
            ModelGatesConfig::new("http://localhost:3000", secret.clone())
                .with_base_url(emu.base_url()),
        ))
    };
    let mut browser = Browser::new(instance());
    let callback = browser.start_sign_in("/login").await;
    // The callback lands on another instance behind the load balancer.
    browser.app = instance();
    assert_eq!(browser.get(&callback).await.status, StatusCode::SEE_OTHER);
    browser.app = instance();
    assert_eq!(
        browser.get("/me").await.body,
        emu.issued_keys().pop().unwrap().key
    );
}

each_provider!(memory_store_keeps_keys_server_side_and_logout_revokes);
async fn memory_store_keeps_keys_server_side_and_logout_revokes(provider: Provider) {
    let emu = provider.emulator().await;
    let store = MemoryStore::default();
    let layer = ModelGatesAuth::new(config(&emu)).with_store(store.clone());
    let app = routes().layer(layer);
    let mut browser = Browser::new(app);
    browser.sign_in("/login").await;
    assert_eq!(store.len(), 1);
    let issued = emu.issued_keys().pop().unwrap();
    let session_cookie = browser.cookies["modelgates_key"].clone();
    assert!(!session_cookie.contains(&issued.key));
    assert_eq!(browser.get("/me").await.body, issued.key);

    // A copy of the cookie taken before logout is dead after it.
    let mut thief = browser.clone();
    browser.post("/logout").await;
    assert!(store.is_empty());
    assert_eq!(thief.get("/").await.body, "signed out");
}

each_provider!(paths_under_a_prefix);
async fn paths_under_a_prefix(provider: Provider) {
    let emu = provider.emulator().await;
    let layer = ModelGatesAuth::new(
        config(&emu)
            .with_path_prefix("/auth")
            .with_default_return_to("/me"),
    );
    assert_eq!(
        layer.callback_url().as_str(),
        "http://localhost:3000/auth/callback"
    );
    let mut browser = Browser::new(app(layer));
    assert_eq!(
        browser.get("/me").await.location(),
        "/auth/login?return_to=%2Fme"
    );
    let landed = browser.sign_in("/auth/login").await;
    assert_eq!(landed.location(), "/me");
    assert_eq!(
        browser.post("/auth/logout").await.status,
        StatusCode::SEE_OTHER
    );
    // The default paths are now the app's own.
    assert_eq!(browser.get("/login").await.status, StatusCode::NOT_FOUND);
}

each_provider!(custom_error_page);
async fn custom_error_page(provider: Provider) {
    let emu = provider.emulator().await;
    let cfg = config(&emu).with_error_page(|error| {
        http::Response::new(Body::from(format!("custom: {}", error.code())))
    });
    let mut browser = Browser::new(app(ModelGatesAuth::new(cfg)));
    let page = browser.get("/callback?code=x").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.body, "custom: flow_missing");
    assert_eq!(page.headers[header::CACHE_CONTROL], "private, no-store");
}

each_provider!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    two_hundred_concurrent_sign_ins_each_get_their_own_key
);
async fn two_hundred_concurrent_sign_ins_each_get_their_own_key(provider: Provider) {
    let emu = provider.emulator().await;
    // Concurrency, not the rate bound (tested in floods.rs), is what this test is about.
    let limits = modelgates_axum::config::ExchangeLimits::unlimited();
    let app = app(ModelGatesAuth::new(
        config(&emu).with_exchange_limits(limits),
    ));
    let users = (0..200).map(|_| {
        let mut browser = Browser::new(app.clone());
        tokio::spawn(async move {
            let callback = browser.start_sign_in("/login").await;
            let landed = browser.get(&callback).await;
            assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
            let key = browser.get("/me").await.body;
            (code_of(&callback), key)
        })
    });
    let results: Vec<(String, String)> = futures_util::future::try_join_all(users).await.unwrap();
    let issued: std::collections::HashMap<String, String> = emu
        .issued_keys()
        .into_iter()
        .map(|record| (record.code, record.key))
        .collect();
    assert_eq!(issued.len(), 200);
    for (code, key) in &results {
        assert_eq!(
            &issued[code], key,
            "each user holds the key issued for their own code"
        );
    }
    let distinct: std::collections::HashSet<_> = results.iter().map(|(_, key)| key).collect();
    assert_eq!(distinct.len(), 200);
}
