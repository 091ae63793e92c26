//! Helpers for testing an app's own routes behind the layer (feature `test-util`): serve the
//! app on 127.0.0.1, a client that keeps cookies like a browser, and one call that signs it in
//! against the emulator.
//!
//! ```
//! use axum::{Router, routing::get};
//! use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey, testing};
//! use modelgates_emulator::Emulator;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::start_auto_approve().await?;
//! let app = testing::serve(|public_url| {
//!     let config = ModelGatesConfig::new(public_url, CookieSecret::generate())
//!         .with_base_url(emulator.base_url());
//!     Router::new()
//!         .route("/dashboard", get(|_key: ModelGatesKey| async { "yours" }))
//!         .layer(ModelGatesAuth::new(config))
//! })
//! .await?;
//! let client = testing::client();
//! testing::sign_in(&client, app.url(), &emulator).await?;
//! let page = client.get(format!("{}/dashboard", app.url())).send().await?;
//! assert_eq!(page.text().await?, "yours");
//! # Ok(())
//! # }
//! ```
//!
//! The rules:
//!
//! * [`client`] keeps cookies in a [`BrowserJar`] and does not follow redirects, so each hop
//!   can be checked; [`client_with_jar`] shares or inspects the jar (cookies are kept per host,
//!   not per port, so one jar serves every instance of [`serve_many`] on 127.0.0.1).
//! * The jar treats `SameSite` as Chromium does: on the return from ModelGates to the callback
//!   (a cross-site navigation, even though the emulator shares the app's loopback host in
//!   tests), cookies marked `SameSite=Strict` stay in the jar, so an app whose own session
//!   cookie is `Strict` sees no session on its callback in its tests, as it would in a browser;
//!   a `SameSite=None` cookie without `Secure` is refused, as Chromium refuses it.
//! * [`sign_in`] goes through the login route under `app_url`'s path: `http://127.0.0.1:PORT`
//!   signs in at `/login`, `http://127.0.0.1:PORT/app` (a layer nested under `/app`) at
//!   `/app/login`; [`sign_in_at`] takes any login path. It has the emulator approve the `/auth`
//!   URL as a person pressing Approve would (consent page or not), follows ModelGates' redirect
//!   to the callback, and checks that the app answered it with the 303 of a completed sign-in.
//! * [`serve`] and [`serve_many`] bind 127.0.0.1 on a free port, build the app for its URL (the
//!   layer's public URL), and stop serving when the returned [`TestApp`] is dropped.
//! * `reqwest` is re-exported (with its `json`, `form` and `cookies` features) so tests name
//!   the same version.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cookie::SameSite;
use modelgates_emulator::Emulator;
pub use reqwest;
use reqwest::header::HeaderValue;
use tokio::task::JoinHandle;
use url::Url;

/// A sign-in through the test helper that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the test sign-in failed: {0}")]
pub struct SignInFailed(String);

/// A client that keeps cookies like a browser (a [`BrowserJar`]) and does not follow redirects.
///
/// # Panics
///
/// When the TLS backend cannot start.
#[must_use]
pub fn client() -> reqwest::Client {
    client_with_jar(Arc::new(BrowserJar::default()))
}

/// [`client`] keeping its cookies in `jar`: read the cookies a response set, or give a second
/// client (or the same one, on another instance) the same session. Any reqwest cookie store
/// works (reqwest's own `Jar` knows nothing of `SameSite`).
///
/// ```
/// use std::sync::Arc;
/// use modelgates_axum::testing::{self, BrowserJar, reqwest::cookie::CookieStore as _};
///
/// let jar = Arc::new(BrowserJar::default());
/// let client = testing::client_with_jar(jar.clone());
/// let url = "http://127.0.0.1:3000".parse().unwrap();
/// assert!(jar.cookies(&url).is_none(), "no cookie before any request");
/// # drop(client);
/// ```
///
/// # Panics
///
/// When the TLS backend cannot start.
#[must_use]
pub fn client_with_jar(jar: Arc<impl reqwest::cookie::CookieStore + 'static>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Signs `client` in to the app at `app_url` through the login route under its path:
/// `http://127.0.0.1:41234` signs in at `/login`, `http://127.0.0.1:41234/app` (the layer
/// nested under `/app`) at `/app/login`.
///
/// # Errors
///
/// [`SignInFailed`], saying which hop went wrong (a login route that is not there says how
/// to point at a nested one).
pub async fn sign_in(
    client: &reqwest::Client,
    app_url: &str,
    emulator: &Emulator,
) -> Result<(), SignInFailed> {
    let (origin, prefix) = split_app_url(app_url)?;
    sign_in_at(client, &origin, &format!("{prefix}/login"), emulator).await
}

/// `app_url` as its origin and the path the layer's routes live under (no trailing `/`).
fn split_app_url(app_url: &str) -> Result<(String, String), SignInFailed> {
    let url = url::Url::parse(app_url)
        .ok()
        .filter(|url| url.has_host())
        .ok_or_else(|| {
            SignInFailed(format!(
                "{app_url:?} is not an URL such as http://127.0.0.1:3000"
            ))
        })?;
    let prefix = url.path().trim_end_matches('/').to_owned();
    Ok((url.origin().ascii_serialization(), prefix))
}

/// The first half of [`sign_in`]: the login route, and the user's approval on the emulator;
/// returns the callback URL ModelGates sent the browser to, not yet visited, for tests of the
/// callback itself (a replay, an outage, a flood). `client` holds the flow cookie.
///
/// # Errors
///
/// [`SignInFailed`], saying which hop went wrong.
pub async fn start_sign_in(
    client: &reqwest::Client,
    app_url: &str,
    emulator: &Emulator,
) -> Result<String, SignInFailed> {
    let (origin, prefix) = split_app_url(app_url)?;
    approved_callback(client, &origin, &format!("{prefix}/login"), emulator).await
}

/// [`sign_in`] through the login route at `login_path` (such as `/auth/login`) of the app
/// whose origin is `app_url` (such as `http://127.0.0.1:41234`).
///
/// # Errors
///
/// [`SignInFailed`], saying which hop went wrong.
pub async fn sign_in_at(
    client: &reqwest::Client,
    app_url: &str,
    login_path: &str,
    emulator: &Emulator,
) -> Result<(), SignInFailed> {
    let callback = approved_callback(client, app_url, login_path, emulator).await?;
    // ModelGates sends the browser back: a navigation from another site.
    navigating_cross_site(&callback);
    let landed = client
        .get(&callback)
        .send()
        .await
        .map_err(|e| SignInFailed(format!("GET the callback: {e}")))?;
    if landed.status() != reqwest::StatusCode::SEE_OTHER {
        let status = landed.status();
        let body = landed.text().await.unwrap_or_default();
        return Err(SignInFailed(format!(
            "the callback: answered {status}: {body}"
        )));
    }
    Ok(())
}

/// The login route at `login_path`, then the emulator's approval: the callback URL.
async fn approved_callback(
    client: &reqwest::Client,
    app_url: &str,
    login_path: &str,
    emulator: &Emulator,
) -> Result<String, SignInFailed> {
    let failed = |hop: &str, detail: String| SignInFailed(format!("{hop}: {detail}"));
    let app_url = app_url.trim_end_matches('/');
    let login_url = format!("{app_url}{login_path}");
    let login = client
        .get(&login_url)
        .send()
        .await
        .map_err(|e| failed("GET the login route", e.to_string()))?;
    let auth_url = location(&login).ok_or_else(|| {
        let hint = if login.status() == reqwest::StatusCode::NOT_FOUND {
            format!(
                "; no login route at {login_url}: for a layer nested under a prefix, pass the \
                 app's URL with it (`{app_url}/app`), or the login path to `sign_in_at`"
            )
        } else {
            String::new()
        };
        failed(
            "the login route",
            format!("answered {} without a redirect{hint}", login.status()),
        )
    })?;
    let callback = emulator
        .approve(&auth_url)
        .map_err(|e| failed("approving on the emulator", e.to_string()))?;
    Ok(format!(
        "{app_url}{}?{}",
        callback.path(),
        callback.query().unwrap_or_default()
    ))
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// A cookie jar that sends cookies as Chromium does for `SameSite`, for [`client`].
///
/// The rules: cookies are kept by `cookie_store` (domain, path, expiry, `Secure`, as reqwest's
/// own jar keeps them); a cookie without `SameSite` is `Lax`, as Chromium treats it; a
/// `SameSite=None` cookie without `Secure` is refused; and on a cross-site navigation (the
/// return from ModelGates to the app's callback, which [`sign_in`] and [`sign_in_at`] make,
/// or one a test announces with [`navigating_cross_site`]) `Strict` cookies are not sent,
/// while `Lax` and `None` ones are (a top-level `GET`).
#[derive(Default)]
pub struct BrowserJar {
    store: Mutex<cookie_store::CookieStore>,
}

impl std::fmt::Debug for BrowserJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cookie values are sessions: only their count.
        let count = self.lock().iter_unexpired().count();
        f.debug_struct("BrowserJar")
            .field("cookies", &count)
            .finish()
    }
}

impl BrowserJar {
    /// Adds a cookie as if `url` had answered with `Set-Cookie: cookie` (the app's own session,
    /// say), by the same rules.
    ///
    /// ```
    /// use modelgates_axum::testing::{BrowserJar, reqwest::cookie::CookieStore as _};
    ///
    /// let jar = BrowserJar::default();
    /// let url = "http://127.0.0.1:3000/".parse().unwrap();
    /// jar.add_cookie_str("app_session=s-1; Path=/; SameSite=Strict", &url);
    /// jar.add_cookie_str("tracker=t; SameSite=None", &url); // refused: `None` needs `Secure`
    /// assert_eq!(jar.cookies(&url).unwrap(), "app_session=s-1");
    /// ```
    pub fn add_cookie_str(&self, cookie: &str, url: &Url) {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            reqwest::cookie::CookieStore::set_cookies(self, &mut std::iter::once(&value), url);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, cookie_store::CookieStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// URLs whose next request is a cross-site navigation: announced by [`navigating_cross_site`],
/// taken by the first jar asked for cookies for one. A callback URL holds a one-time code, so
/// no two tests announce the same URL.
static CROSS_SITE_NAVIGATIONS: Mutex<Vec<Url>> = Mutex::new(Vec::new());

/// Announces that the next request to `url` is a navigation from another site (a link or a
/// redirect from another site to this page): a [`BrowserJar`] sends no `SameSite=Strict`
/// cookie with it. [`sign_in`] announces the return from ModelGates this way; a test that
/// follows ModelGates' redirect itself (after [`start_sign_in`]) announces it before.
pub fn navigating_cross_site(url: &str) {
    // A URL that does not parse is never requested either: nothing to announce.
    if let Ok(url) = Url::parse(url) {
        CROSS_SITE_NAVIGATIONS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(url);
    }
}

/// Whether the request to `url` is an announced cross-site navigation (the announcement is
/// used up).
fn is_cross_site_navigation(url: &Url) -> bool {
    let mut announced = CROSS_SITE_NAVIGATIONS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let position = announced.iter().position(|announced| announced == url);
    position.map(|index| announced.swap_remove(index)).is_some()
}

/// The `SameSite` a browser gives a cookie: `Lax` when it names none.
fn same_site_of(cookie: &cookie::Cookie<'_>) -> SameSite {
    cookie.same_site().unwrap_or(SameSite::Lax)
}

impl reqwest::cookie::CookieStore for BrowserJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let accepted = cookie_headers
            .filter_map(|value| value.to_str().ok())
            .filter_map(|text| cookie::Cookie::parse(text.to_owned()).ok())
            // Chromium refuses `SameSite=None` without `Secure`.
            .filter(|cookie| {
                same_site_of(cookie) != SameSite::None || cookie.secure() == Some(true)
            });
        self.lock().store_response_cookies(accepted, url);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let cross_site = is_cross_site_navigation(url);
        let store = self.lock();
        let pairs: Vec<String> = store
            .matches(url)
            .into_iter()
            .filter(|cookie| !cross_site || same_site_of(cookie) != SameSite::Strict)
            .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }
}

/// An app served on 127.0.0.1 by [`serve`] or [`serve_many`]; it stops when dropped.
#[derive(Debug)]
#[must_use = "the app stops serving when this is dropped"]
pub struct TestApp {
    url: String,
    task: JoinHandle<()>,
}

impl TestApp {
    /// The app's origin, such as `http://127.0.0.1:41234`: the public URL it was built for.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the router `make_app` builds for its public URL (`http://127.0.0.1:PORT`, a free
/// port) until the returned [`TestApp`] is dropped.
///
/// # Errors
///
/// When 127.0.0.1 cannot be bound.
pub async fn serve(make_app: impl FnOnce(&str) -> axum::Router) -> std::io::Result<TestApp> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = make_app(&url);
    let task = tokio::spawn(async move {
        // With each connection's address, as a deployed app is served, so that the sign-in
        // bounds tell clients apart.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the test app stopped serving");
        }
    });
    Ok(TestApp { url, task })
}

/// `instances` copies of an app, each on its own port, as several instances of one app behind
/// a load balancer: build each with the same store (a `CachingStore` of PostgreSQL, say) and
/// one client's cookies work on all of them. A sign-in completes on the instance it started
/// on (each has its own public URL here).
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use modelgates_axum::store::MemoryStore;
/// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey, testing};
/// use modelgates_emulator::Emulator;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emulator = Emulator::start_auto_approve().await?;
/// let store = MemoryStore::new(Duration::from_secs(3600)); // a database store in a real app
/// let secret = CookieSecret::generate(); // shared, as the instances of one app share it
/// let [a, b] = testing::serve_many(|public_url| {
///     let config = ModelGatesConfig::new(public_url, secret.clone())
///         .with_base_url(emulator.base_url());
///     Router::new()
///         .route("/me", get(|key: ModelGatesKey| async move { key.user_id().unwrap_or_default().to_owned() }))
///         .layer(ModelGatesAuth::new(config).with_store(store.clone()))
/// })
/// .await?;
/// let client = testing::client();
/// testing::sign_in(&client, a.url(), &emulator).await?;
/// let on_b = client.get(format!("{}/me", b.url())).send().await?;
/// assert_eq!(on_b.status(), 200, "the session made on A works on B");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// When 127.0.0.1 cannot be bound.
pub async fn serve_many<const N: usize>(
    mut make_app: impl FnMut(&str) -> axum::Router,
) -> std::io::Result<[TestApp; N]> {
    let mut apps = Vec::with_capacity(N);
    for _ in 0..N {
        apps.push(serve(&mut make_app).await?);
    }
    Ok(apps
        .try_into()
        .unwrap_or_else(|_| unreachable!("exactly N apps were started")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_url_names_the_origin_and_the_mount_path() {
        for (url, origin, prefix) in [
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000", ""),
            ("http://127.0.0.1:3000/", "http://127.0.0.1:3000", ""),
            (
                "http://127.0.0.1:3000/app/",
                "http://127.0.0.1:3000",
                "/app",
            ),
        ] {
            let split = split_app_url(url).unwrap();
            assert_eq!(
                (split.0.as_str(), split.1.as_str()),
                (origin, prefix),
                "{url}"
            );
        }
        assert!(split_app_url("127.0.0.1:3000").is_err());
    }
}
