//! The three routes the layer answers itself: `/login`, `/callback`, `/logout`.
//!
//! The rules:
//!
//! * `GET /login[?return_to=/path]`: `return_to` is sanitised (see
//!   [`is_safe_return_to`](crate::return_to::is_safe_return_to)); a fresh flow id, PKCE
//!   verifier and challenge are made; the encrypted flow cookie is set (with the default
//!   `return_to` instead when the requested one would make the cookie larger than 4096 bytes);
//!   the answer is a 303 to ModelGates' `/auth` whose `callback_url` is the callback path
//!   followed by the flow id (`/callback/<flow id>`).
//! * `GET /callback/<flow id>`, checked in this order, each failure a precise 4xx/5xx before
//!   anything reaches ModelGates: the flow cookie is present, authentic and younger than the
//!   flow lifetime; the flow id in the path equals the one in the cookie (compared in constant
//!   time), so a code pushed into someone else's browser (login CSRF, even against a provider
//!   that ignores PKCE) is refused; the flow has not been tried before (single use, per layer
//!   instance); the query is read by [`CallbackParams::parse`] (`error=access_denied` is "you
//!   cancelled"; exactly one well-formed `code`); a key-exchange slot is free (503 with
//!   `Retry-After: 1` otherwise). Then the code is exchanged with the flow's PKCE values, the
//!   app's on-sign-in hook runs (its refusal is a 403 and stores nothing), the key goes to the
//!   store, the key cookie is set, and the answer is a 303 to the flow's `return_to`. The flow cookie is deleted whatever the outcome, and every answer carries
//!   `Referrer-Policy: no-referrer`.
//! * `POST /logout`: refused with 403 when it comes from another site (see
//!   [`same_origin`](crate::same_origin)); otherwise the store forgets the key, the key cookie
//!   is deleted, and the answer is a 303 to the post-logout page.
//! * Any other method on these paths is a 405 naming the right one.
//! * Every answer that sets a cookie is `Cache-Control: private, no-store` with
//!   `Vary: Cookie`.

use axum_core::body::Body;
use http::header::{REFERRER_POLICY, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderValue, Method, Response};
use modelgates_oauth_core::{CallbackParams, Pkce};
use tracing::Instrument as _;

use crate::config::SignIn;
use crate::config::settings::{Route, Settings};
use crate::cookies::{FlowId, FlowState};
use crate::error::AuthError;
use crate::primitives::unix_now;
use crate::response::{no_store, see_other, set_cookie};
use crate::return_to::sanitize;
use crate::same_origin::is_cross_site;
use crate::store::{KeyStore, SessionToken, StoredKey};

/// The largest `Set-Cookie` value browsers are sure to keep.
const MAX_SET_COOKIE_LEN: usize = 4096;

/// Answers a request for one of the layer's routes.
pub(crate) async fn handle<K: KeyStore>(
    route: Route,
    settings: &Settings,
    store: &K,
    parts: Parts,
    mount: &str,
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
        let mut response = render(&error, &parts, settings);
        no_store(&mut response);
        return response;
    }
    if route == Route::Logout && is_cross_site(&parts.headers, &settings.public_origin) {
        tracing::warn!("refused a cross-site logout");
        let mut response = render(&AuthError::CrossSite, &parts, settings);
        no_store(&mut response);
        return response;
    }
    match route {
        Route::Login => {
            login(settings, &parts, mount)
                .instrument(tracing::info_span!("modelgates.login"))
                .await
        }
        Route::Callback => {
            callback(settings, store, &parts)
                .instrument(tracing::info_span!("modelgates.callback"))
                .await
        }
        Route::Logout => {
            logout(settings, store, &parts)
                .instrument(tracing::info_span!("modelgates.logout"))
                .await
        }
    }
}

fn render(error: &AuthError, parts: &Parts, settings: &Settings) -> Response<Body> {
    error.render(
        &parts.headers,
        &settings.login_path,
        settings.config.error_page.as_ref(),
    )
}

async fn login(settings: &Settings, parts: &Parts, mount: &str) -> Response<Body> {
    let query = parts.uri.query().unwrap_or("");
    let requested = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "return_to")
        .map(|(_, v)| v);
    let default_return_to = &settings.config.default_return_to;
    let pkce = settings.config.challenge_method.map(Pkce::generate);
    let id = FlowId::generate();
    let destination = settings.client.authorization_url(
        &settings.callback_url_for(mount, id.as_str()),
        pkce.as_ref().map(Pkce::challenge).as_ref(),
    );
    let mut flow = FlowState {
        id,
        pkce,
        return_to: sanitize(requested.as_deref(), default_return_to).to_owned(),
        issued_at: unix_now(),
    };
    let max_age = settings.config.flow_max_age;
    let mut flow_cookie = settings.codec.flow_cookie(&flow, max_age);
    if flow_cookie.len() > MAX_SET_COOKIE_LEN {
        // A browser would drop the cookie and the sign-in would fail at the callback.
        tracing::info!("return_to too long for the flow cookie; using the default");
        flow.return_to.clone_from(default_return_to);
        flow_cookie = settings.codec.flow_cookie(&flow, max_age);
    }
    tracing::info!(method = ?settings.config.challenge_method, "sign-in started");
    let mut response = see_other(destination.as_str());
    set_cookie(&mut response, flow_cookie);
    response
}

async fn callback<K: KeyStore>(settings: &Settings, store: &K, parts: &Parts) -> Response<Body> {
    let mut response = match complete_sign_in(settings, store, parts).await {
        Ok(signed_in) => {
            tracing::info!("sign-in completed");
            let mut response = see_other(&signed_in.return_to);
            set_cookie(&mut response, signed_in.key_cookie);
            response
        }
        Err(error) => {
            tracing::warn!(code = error.code(), status = error.status().as_u16(), %error, "sign-in failed");
            let mut response = render(&error, parts, settings);
            if let AuthError::Busy = error {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    };
    set_cookie(&mut response, settings.codec.clear_flow());
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// A completed sign-in: where to go, and the key cookie to set.
struct SignedIn {
    return_to: String,
    key_cookie: HeaderValue,
}

/// The callback's work.
async fn complete_sign_in<K: KeyStore>(
    settings: &Settings,
    store: &K,
    parts: &Parts,
) -> Result<SignedIn, AuthError> {
    let flow = settings
        .codec
        .open_flow(&parts.headers)
        .map_err(|()| AuthError::FlowInvalid)?
        .ok_or(AuthError::FlowMissing)?;
    if flow.is_expired(settings.config.flow_max_age, unix_now()) {
        return Err(AuthError::FlowExpired);
    }
    let presented = settings.flow_id_in(parts.uri.path());
    if !presented.is_some_and(|id| flow.id.matches(id)) {
        return Err(AuthError::FlowMismatch);
    }
    let first_try = settings
        .spent_flows
        .entry(flow.id.as_str().to_owned())
        .or_insert(())
        .is_fresh();
    if !first_try {
        return Err(AuthError::FlowUsed);
    }
    let code = callback_code(parts)?;
    let _slot = settings
        .exchange_slots
        .try_acquire()
        .map_err(|_| AuthError::Busy)?;
    let issued = settings
        .client
        .exchange_code(&code, flow.pkce.as_ref())
        .await
        .map_err(AuthError::from_exchange)?;
    tracing::info!(user_id = issued.user_id.as_deref(), "key issued");
    if let Some(hook) = &settings.config.on_sign_in {
        hook(SignIn {
            user_id: issued.user_id.clone(),
            key: issued.key.clone(),
        })
        .await
        .map_err(|rejected| {
            tracing::info!(%rejected, "the app refused the sign-in");
            AuthError::SignInRejected(rejected)
        })?;
    }
    let token: SessionToken = store
        .save(StoredKey::new(issued.key, issued.user_id))
        .await
        .map_err(AuthError::Store)?;
    let key_cookie = settings.codec.key_cookie(
        token.expose_secret(),
        K::TOKEN_PROTECTION,
        settings.config.key_max_age,
    );
    // The flow cookie is authentic, but sanitise again: the rule may have tightened since.
    let return_to = sanitize(Some(&flow.return_to), &settings.config.default_return_to).to_owned();
    Ok(SignedIn {
        return_to,
        key_cookie,
    })
}

/// The one `code` of the callback's query, or why there is none.
pub(crate) fn callback_code(parts: &Parts) -> Result<String, AuthError> {
    match CallbackParams::parse(parts.uri.query().unwrap_or("")) {
        Ok(CallbackParams::Code(code)) => Ok(code),
        Ok(CallbackParams::AccessDenied) => Err(AuthError::AccessDenied),
        Ok(CallbackParams::Failed { error }) => Err(AuthError::AuthorizationFailed { error }),
        Ok(_) => Err(AuthError::CodeMissing),
        Err(error) => Err(AuthError::from_callback(error)),
    }
}

async fn logout<K: KeyStore>(settings: &Settings, store: &K, parts: &Parts) -> Response<Body> {
    if let Some(opened) = settings.codec.open_key(&parts.headers, K::TOKEN_PROTECTION) {
        let token = SessionToken::new(opened.value);
        if let Err(error) = store.remove(&token).await {
            tracing::warn!(%error, "the key store failed to forget a key at logout");
        }
    }
    tracing::info!("signed out");
    let mut response = see_other(&settings.config.post_logout_redirect);
    set_cookie(&mut response, settings.codec.clear_key());
    response
}
