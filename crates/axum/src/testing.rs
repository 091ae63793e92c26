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
//! * [`client`] keeps cookies (reqwest's cookie jar) and does not follow redirects, so each
//!   hop can be checked; [`client_with_jar`] shares or inspects the jar (cookies are kept per
//!   host, not per port, so one jar serves every instance of [`serve_many`] on 127.0.0.1).
//! * [`sign_in`] goes through the login route under `app_url`'s path: `http://127.0.0.1:PORT`
//!   signs in at `/login`, `http://127.0.0.1:PORT/app` (a layer nested under `/app`) at
//!   `/app/login`; [`sign_in_at`] takes any login path. It has the emulator approve the `/auth`
//!   URL as a person pressing Approve would (consent page or not), follows ModelGates' redirect
//!   to the callback, and checks that the app answered it with the 303 of a completed sign-in.
//! * [`serve`] and [`serve_many`] bind 127.0.0.1 on a free port, build the app for its URL (the
//!   layer's public URL), and stop serving when the returned [`TestApp`] is dropped.
//! * `reqwest` is re-exported (with its `json`, `form` and `cookies` features) so tests name
//!   the same version.

use std::sync::Arc;
use std::time::Duration;

use modelgates_emulator::Emulator;
pub use reqwest;
use reqwest::cookie::Jar;
use tokio::task::JoinHandle;

/// A sign-in through the test helper that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the test sign-in failed: {0}")]
pub struct SignInFailed(String);

/// A client that keeps cookies like a browser and does not follow redirects.
///
/// # Panics
///
/// When the TLS backend cannot start.
#[must_use]
pub fn client() -> reqwest::Client {
    client_with_jar(Arc::new(Jar::default()))
}

/// [`client`] keeping its cookies in `jar`: read the cookies a response set, or give a second
/// client (or the same one, on another instance) the same session.
///
/// ```
/// use std::sync::Arc;
/// use modelgates_axum::testing::{self, reqwest::cookie::{CookieStore as _, Jar}};
///
/// let jar = Arc::new(Jar::default());
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
pub fn client_with_jar(jar: Arc<Jar>) -> reqwest::Client {
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
