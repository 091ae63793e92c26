//! The three routes the layer answers itself: `/login`, `/callback`, `/logout`.
//!
//! The rules:
//!
//! * `GET /login[?return_to=/path]`: `return_to` is sanitised (see [`is_safe_return_to`]);
//!   a fresh verifier and its challenge are made; the signed flow cookie is set; the answer is
//!   a 303 to ModelGates' `/auth` with `Cache-Control: no-store`.
//! * `GET /callback`: the flow cookie is checked (present, authentic, younger than the flow
//!   lifetime) before anything else, and deleted whatever the outcome. Then `error=` is
//!   honoured (`access_denied` is "you cancelled"); `code` must be present exactly once, at most
//!   2 KB of printable ASCII; the code is exchanged with the flow's verifier; the key goes to the
//!   store and the key cookie is set; the answer is a 303 to the flow's `return_to`. Every
//!   answer carries `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.
//! * `POST /logout`: the store forgets the key, the key cookie is deleted, and the answer is a
//!   303 to the post-logout page. (`SameSite=Lax` keeps other sites from posting it with the
//!   user's cookie.)
//! * Any other method on these paths is a 405 naming the right one.
//!
//! [`is_safe_return_to`]: crate::is_safe_return_to

use axum_core::body::Body;
use http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use modelgates_oauth_core::CodeVerifier;
use tracing::Instrument as _;

use crate::cookies::{FlowState, unix_now};
use crate::error::{AuthError, render};
use crate::layer::Core;
use crate::return_to::sanitize;
use crate::store::{KeyStore, SessionToken, StoredKey};

/// The longest `code` accepted.
pub(crate) const MAX_CODE_LEN: usize = 2048;

/// Which of the layer's own routes a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    Callback,
    Logout,
}

/// A response under construction: status, location, cookies.
struct Reply {
    response: Response<Body>,
}

impl Reply {
    fn see_other(location: &str) -> Self {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(location) = HeaderValue::from_str(location) {
            response.headers_mut().insert(LOCATION, location);
        }
        Self { response }
    }

    fn error(error: &AuthError, parts: &Parts, core: &Core) -> Self {
        Self {
            response: render(
                error,
                &parts.headers,
                &core.login_path,
                core.error_page.as_ref(),
            ),
        }
    }

    fn set_cookie(mut self, cookie: String) -> Self {
        if let Ok(value) = HeaderValue::try_from(cookie) {
            self.response.headers_mut().append(SET_COOKIE, value);
        }
        self
    }

    fn no_store(mut self) -> Self {
        let headers = self.response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self
    }
}

pub(crate) async fn handle<K: KeyStore>(
    route: Route,
    core: &Core,
    store: &K,
    parts: Parts,
) -> Response<Body> {
    let allowed = match route {
        Route::Login | Route::Callback => Method::GET,
        Route::Logout => Method::POST,
    };
    if parts.method != allowed {
        let error = AuthError::MethodNotAllowed {
            method: parts.method.clone(),
            allow: if allowed == Method::GET {
                "GET"
            } else {
                "POST"
            },
        };
        return Reply::error(&error, &parts, core).no_store().response;
    }
    match route {
        Route::Login => {
            login(core, &parts)
                .instrument(tracing::info_span!("modelgates.login"))
                .await
        }
        Route::Callback => {
            callback(core, store, &parts)
                .instrument(tracing::info_span!("modelgates.callback"))
                .await
        }
        Route::Logout => {
            logout(core, store, &parts)
                .instrument(tracing::info_span!("modelgates.logout"))
                .await
        }
    }
}

fn query_params(parts: &Parts) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
}

async fn login(core: &Core, parts: &Parts) -> Response<Body> {
    let requested = query_params(parts)
        .find(|(name, _)| name == "return_to")
        .map(|(_, v)| v);
    let return_to = sanitize(requested.as_deref(), &core.default_return_to).to_owned();
    let verifier = core.challenge_method.map(|_| CodeVerifier::generate());
    let challenge = verifier
        .as_ref()
        .zip(core.challenge_method)
        .map(|(v, m)| v.challenge(m));
    let destination = core
        .client
        .authorization_url(&core.callback_url, challenge.as_ref());
    let flow = FlowState {
        verifier,
        method: core.challenge_method,
        return_to,
        issued_at: unix_now(),
    };
    tracing::info!(method = ?core.challenge_method, "sign-in started");
    Reply::see_other(destination.as_str())
        .set_cookie(core.codec.flow_cookie(&flow, core.flow_max_age))
        .no_store()
        .response
}

async fn callback<K: KeyStore>(core: &Core, store: &K, parts: &Parts) -> Response<Body> {
    let reply = match complete_sign_in(core, store, parts).await {
        Ok((location, key_cookie)) => {
            tracing::info!("sign-in completed");
            Reply::see_other(&location).set_cookie(key_cookie)
        }
        Err(error) => {
            tracing::warn!(code = error.code(), status = error.status().as_u16(), %error, "sign-in failed");
            Reply::error(&error, parts, core)
        }
    };
    let mut response = reply
        .set_cookie(core.codec.clear_flow())
        .no_store()
        .response;
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The callback's work; on success, where to go and the key cookie to set.
async fn complete_sign_in<K: KeyStore>(
    core: &Core,
    store: &K,
    parts: &Parts,
) -> Result<(String, String), AuthError> {
    let flow = core
        .codec
        .open_flow(&parts.headers)
        .map_err(|()| AuthError::FlowInvalid)?
        .ok_or(AuthError::FlowMissing)?;
    if flow.is_expired(core.flow_max_age, unix_now()) {
        return Err(AuthError::FlowExpired);
    }
    let code = callback_code(parts)?;
    let issued = core
        .client
        .exchange_code(&code, flow.verifier.as_ref().zip(flow.method))
        .await
        .map_err(AuthError::from_exchange)?;
    tracing::info!(user_id = issued.user_id.as_deref(), "key issued");
    let token: SessionToken = store
        .save(StoredKey::new(issued.key, issued.user_id))
        .await
        .map_err(AuthError::Store)?;
    let key_cookie =
        core.codec
            .key_cookie(token.expose_secret(), K::TOKEN_PROTECTION, core.key_max_age);
    // The flow cookie is authentic, but sanitise again: the rule may have tightened since.
    let location = sanitize(Some(&flow.return_to), &core.default_return_to).to_owned();
    Ok((location, key_cookie))
}

/// The one `code` of the callback's query, or why there is none.
pub(crate) fn callback_code(parts: &Parts) -> Result<String, AuthError> {
    let mut code = None;
    for (name, value) in query_params(parts) {
        match &*name {
            "error" if value == "access_denied" => return Err(AuthError::AccessDenied),
            "error" => {
                return Err(AuthError::AuthorizationFailed {
                    error: value.chars().take(100).collect(),
                });
            }
            "code" if code.is_some() => return Err(AuthError::CodeDuplicated),
            "code" => code = Some(value),
            _ => {}
        }
    }
    let code = code.ok_or(AuthError::CodeMissing)?;
    if code.is_empty() || code.len() > MAX_CODE_LEN || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::CodeMalformed);
    }
    Ok(code.into_owned())
}

async fn logout<K: KeyStore>(core: &Core, store: &K, parts: &Parts) -> Response<Body> {
    if let Some(opened) = core.codec.open_key(&parts.headers, K::TOKEN_PROTECTION) {
        let token = SessionToken::new(opened.value);
        if let Err(error) = store.remove(&token).await {
            tracing::warn!(%error, "the key store failed to forget a key at logout");
        }
    }
    tracing::info!("signed out");
    Reply::see_other(&core.post_logout_redirect)
        .set_cookie(core.codec.clear_key())
        .no_store()
        .response
}
