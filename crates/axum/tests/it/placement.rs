//! The layer wherever an axum user would put it: on the outer router, inside a `nest` (with its
//! routes registered), around a nested router with a prefix, across `Router::merge`, and behind
//! `tower_http::normalize_path`. Each placement signs a user in and out for real against the
//! emulator; the one placement that cannot work says where to put the layer.

use crate::support;

use axum::Router;
use axum::routing::get;
use http::{StatusCode, header};
use modelgates_axum::{ModelGatesAuth, ModelGatesKey};
use support::{Browser, callback_url_param, config, emulator, key_or_signed_out};
use tower::Layer as _;
use tower_http::normalize_path::NormalizePathLayer;

async fn must_sign_in(key: ModelGatesKey) -> &'static str {
    let _ = key;
    "private"
}

fn pages() -> Router {
    Router::new()
        .route("/me", get(key_or_signed_out))
        .route("/private", get(must_sign_in))
}

/// Signs in through `login`, following ModelGates' redirect to the callback URL it was given;
/// returns where the callback sent the browser.
async fn sign_in(
    browser: &mut Browser,
    emu: &modelgates_emulator::Emulator,
    login: &str,
) -> String {
    let login = browser.get(login).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let callback = emu.approve(login.location()).unwrap();
    let landed = browser.visit(&callback).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
    landed.location().to_owned()
}

#[tokio::test]
async fn inside_a_nest_with_its_routes() {
    let emu = emulator().await;
    let auth = ModelGatesAuth::new(config(&emu));
    let app = Router::new().nest("/app", pages().merge(auth.routes()).layer(auth));
    let mut browser = Browser::new(app);

    // Signed out, a page sends the browser to the nested login, coming back to itself.
    let private = browser.get("/app/private").await;
    assert_eq!(private.location(), "/app/login?return_to=%2Fapp%2Fprivate");
    let login = browser.get(private.location()).await;
    let callback_url = callback_url_param(login.location());
    assert!(
        callback_url.starts_with("http://localhost:3000/app/callback/"),
        "the callback carries the nesting prefix: {callback_url}"
    );
    let callback = emu.approve(login.location()).unwrap();
    let landed = browser.visit(&callback).await;
    assert_eq!(landed.location(), "/app/private");
    assert_eq!(browser.get("/app/private").await.body, "private");
    assert_eq!(
        browser.get("/app/me").await.body,
        emu.issued_keys().pop().unwrap().key
    );
    let logout = browser.post("/app/logout").await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/app/me").await.body, "signed out");
}

#[tokio::test]
async fn inside_a_nest_without_its_routes_says_where_to_put_it() {
    let emu = emulator().await;
    let app = Router::new().nest("/app", pages().layer(ModelGatesAuth::new(config(&emu))));
    let mut browser = Browser::new(app);
    let page = browser.get_json("/app/me").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.body.contains("layer_misplaced"), "{}", page.body);
    assert!(page.body.contains(".merge(auth.routes())"), "{}", page.body);
    assert!(page.body.contains("with_path_prefix"), "{}", page.body);
}

/// The registered routes alone, without the layer in front, say so.
#[tokio::test]
async fn its_routes_without_the_layer_say_so() {
    let emu = emulator().await;
    let auth = ModelGatesAuth::new(config(&emu));
    let mut browser = Browser::new(pages().merge(auth.routes()));
    let json = browser.get_json("/login").await;
    assert_eq!(json.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(json.body.contains("missing_layer"), "{}", json.body);
    assert!(json.body.contains(".layer(auth)"), "{}", json.body);
    let page = browser.get("/login").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        page.body
            .contains("<h1>Sign-in is not set up correctly</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(".layer(auth)"), "{}", page.body);
}

#[tokio::test]
async fn on_the_outer_router_with_a_prefix() {
    let emu = emulator().await;
    let auth = ModelGatesAuth::new(config(&emu).with_path_prefix("/app"));
    let app = Router::new().nest("/app", pages()).layer(auth);
    let mut browser = Browser::new(app);
    let private = browser.get("/app/private").await;
    assert_eq!(private.location(), "/app/login?return_to=%2Fapp%2Fprivate");
    assert_eq!(
        sign_in(&mut browser, &emu, private.location()).await,
        "/app/private"
    );
    assert_eq!(browser.get("/app/private").await.body, "private");
}

#[tokio::test]
async fn across_router_merge() {
    let emu = emulator().await;
    let auth = ModelGatesAuth::new(config(&emu));
    let other = Router::new().route("/other", get(|| async { "other" }));
    for app in [
        // The layer on the merged whole.
        other.clone().merge(pages()).layer(auth.clone()),
        // The layer on one part, merged into the rest.
        other
            .clone()
            .merge(pages().merge(auth.routes()).layer(auth.clone())),
    ] {
        let mut browser = Browser::new(app);
        assert_eq!(
            sign_in(&mut browser, &emu, "/login?return_to=%2Fme").await,
            "/me"
        );
        assert_ne!(browser.get("/me").await.body, "signed out");
        assert_eq!(browser.get("/other").await.body, "other");
    }
}

#[tokio::test]
async fn behind_normalize_path() {
    let emu = emulator().await;
    let inner = pages().layer(ModelGatesAuth::new(config(&emu)));
    let normalized = NormalizePathLayer::trim_trailing_slash().layer(inner);
    let mut browser = Browser::new(Router::new().fallback_service(normalized));
    assert_eq!(
        sign_in(&mut browser, &emu, "/login/?return_to=%2Fme").await,
        "/me"
    );
    assert_ne!(browser.get("/me/").await.body, "signed out");
    let logout = browser
        .send(http::Request::post("/logout/"), axum::body::Body::empty())
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert!(logout.headers.get_all(header::SET_COOKIE).iter().count() >= 1);
}

/// A plain tower service reads the key with `from_extensions` where it is called, not only in
/// its future; a signed-out request reaches it with no extension at all (the layer's presence
/// is a task-local scope, so a signed-out request allocates nothing for it).
#[tokio::test]
async fn a_tower_service_reads_the_key_where_it_is_called() {
    let emu = emulator().await;
    let service = tower::service_fn(|request: http::Request<axum::body::Body>| {
        // In `call`, before any future exists.
        let key = ModelGatesKey::from_extensions(request.extensions());
        let extensions = request.extensions().len();
        async move {
            let body = match key {
                Ok(Some(key)) => format!("key {}", key.api_key().expose_secret()),
                Ok(None) => format!("signed out, {extensions} extensions"),
                Err(rejection) => format!("{:?}, {extensions} extensions", rejection.kind()),
            };
            Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(body))
        }
    });
    let auth = ModelGatesAuth::new(config(&emu));
    let app = Router::new().route_service("/bare", service).merge(
        Router::new()
            .route_service("/tower", service)
            .merge(auth.routes())
            .layer(auth),
    );
    let mut browser = Browser::new(app);
    // The same extensions as without the layer (axum's own): the layer added none.
    assert_eq!(
        browser.get("/bare").await.body,
        "MissingLayer, 2 extensions"
    );
    assert_eq!(browser.get("/tower").await.body, "signed out, 2 extensions");
    browser.sign_in("/login").await;
    let issued = emu.issued_keys().pop().unwrap().key;
    assert_eq!(browser.get("/tower").await.body, format!("key {issued}"));
}

/// The rule the task-local scope brings: an extractor that runs on another task than the
/// layer's (a middleware between the two that spawns the rest of the request) no longer sees
/// the layer for a signed-out request, and says "missing layer"; a signed-in request carries
/// its key in its extensions and is served as usual.
#[tokio::test]
async fn an_extractor_on_a_spawned_task_sees_signed_in_requests_only() {
    async fn spawn_the_rest(
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        tokio::spawn(next.run(request)).await.unwrap()
    }
    let emu = emulator().await;
    let app = pages()
        .layer(axum::middleware::from_fn(spawn_the_rest))
        .layer(ModelGatesAuth::new(config(&emu)));
    let mut browser = Browser::new(app);
    let private = browser.get_json("/private").await;
    assert_eq!(private.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(private.body.contains("missing_layer"), "{}", private.body);
    browser.sign_in("/login").await;
    assert_eq!(browser.get("/private").await.body, "private");
}

/// Two layers, one inside the other (different cookies): a request the inner one sees signed
/// out is signed out to handlers behind it, whatever the outer one said.
#[tokio::test]
async fn the_innermost_layer_speaks_for_its_handlers() {
    let emu = emulator().await;
    let outer = ModelGatesAuth::new(config(&emu));
    let inner = ModelGatesAuth::new(
        config(&emu)
            .with_path_prefix("/inner")
            .with_cookie_names("inner_flow", "inner_key"),
    );
    let app = Router::new()
        .nest("/inner", pages())
        .layer(inner)
        .route("/me", get(key_or_signed_out))
        .layer(outer);
    let mut browser = Browser::new(app);
    browser.sign_in("/login").await;
    assert_ne!(browser.get("/me").await.body, "signed out");
    assert_eq!(browser.get("/inner/me").await.body, "signed out");
    let private = browser.get("/inner/private").await;
    assert_eq!(
        private.location(),
        "/inner/login?return_to=%2Finner%2Fprivate"
    );
}
