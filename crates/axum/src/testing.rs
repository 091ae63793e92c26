//! Helpers for testing an app's own routes behind the layer (feature `test-util`): a client
//! that keeps cookies like a browser, and one call that signs it in against the emulator.
//!
//! ```no_run
//! use modelgates_axum::testing;
//! use modelgates_emulator::Emulator;
//!
//! # async fn run(app_url: &str, emulator: &Emulator) -> Result<(), Box<dyn std::error::Error>> {
//! // The app runs on `app_url` (say `axum::serve` on 127.0.0.1:0) with `emulator` as its
//! // ModelGates base URL.
//! let client = testing::client();
//! testing::sign_in(&client, app_url, emulator).await?;
//! let page = client.get(format!("{app_url}/dashboard")).send().await?;
//! assert_eq!(page.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! The rules: the client keeps cookies (reqwest's cookie jar) and does not follow redirects,
//! so each hop can be checked; `sign_in` goes through `/login` (or the path given to
//! [`sign_in_at`]), has the emulator approve the `/auth` URL as a person pressing Approve
//! would (consent page or not), follows ModelGates' redirect to the callback, and checks that
//! the app answered it with the 303 of a completed sign-in.

use std::time::Duration;

use modelgates_emulator::Emulator;

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
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Signs `client` in to the app at `app_url` (its origin, such as `http://127.0.0.1:41234`)
/// through its `/login` route.
///
/// # Errors
///
/// [`SignInFailed`], saying which hop went wrong.
pub async fn sign_in(
    client: &reqwest::Client,
    app_url: &str,
    emulator: &Emulator,
) -> Result<(), SignInFailed> {
    sign_in_at(client, app_url, "/login", emulator).await
}

/// [`sign_in`] through the login route at `login_path` (such as `/auth/login`).
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
    let failed = |hop: &str, detail: String| SignInFailed(format!("{hop}: {detail}"));
    let app_url = app_url.trim_end_matches('/');
    let login = client
        .get(format!("{app_url}{login_path}"))
        .send()
        .await
        .map_err(|e| failed("GET the login route", e.to_string()))?;
    let auth_url = location(&login).ok_or_else(|| {
        failed(
            "the login route",
            format!("answered {} without a redirect", login.status()),
        )
    })?;
    let callback = emulator
        .approve(&auth_url)
        .map_err(|e| failed("approving on the emulator", e.to_string()))?;
    let callback = format!(
        "{app_url}{}?{}",
        callback.path(),
        callback.query().unwrap_or_default()
    );
    let landed = client
        .get(&callback)
        .send()
        .await
        .map_err(|e| failed("GET the callback", e.to_string()))?;
    if landed.status() != reqwest::StatusCode::SEE_OTHER {
        let status = landed.status();
        let body = landed.text().await.unwrap_or_default();
        return Err(failed("the callback", format!("answered {status}: {body}")));
    }
    Ok(())
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()
        .map(str::to_owned)
}
