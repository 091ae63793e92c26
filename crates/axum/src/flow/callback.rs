//! `GET /callback/<flow id>`: the callback checked against its flow, the key exchange, the
//! app's hook, and the key kept.

use std::time::{Duration, Instant};

use axum_core::body::Body;
use http::header::REFERRER_POLICY;
use http::request::Parts;
use http::{HeaderValue, Response};
use modelgates_oauth_core::flow::FlowState;
use modelgates_oauth_core::{CallbackParams, IssuedKey, Pkce};
use tracing::Instrument as _;

use super::state::LocalSpend;
use super::{AuthError, Flow, HookFailure, SignIn, Step, record_outcome, sanitize};
use crate::forwarded::Client;
use crate::limits::NotYet;
use crate::linked::binding;
use crate::observe::{self, Outcome, user_hash};
use crate::response::{no_store, see_other, set_cookie};
use crate::store::{FlowSpend, KeyStore, SessionToken, StoredKey};

pub(super) async fn callback<K: KeyStore>(flow: &Flow, store: &K, step: Step) -> Response<Body> {
    let Step {
        parts,
        context,
        wants_page,
        client,
    } = step;
    let id = flow
        .paths
        .flow_id_in(parts.uri.path())
        .unwrap_or_default()
        .to_owned();
    let mut response = match complete_sign_in(flow, store, parts, &client, &id, &context.mount)
        .await
    {
        Ok(Completed::SignedIn(signed_in)) => {
            tracing::info!("sign-in completed");
            record_outcome(Outcome::Success, None);
            observe::sign_in(Outcome::Success);
            let mut response = see_other(&signed_in.return_to);
            if let Some(key_cookie) = signed_in.key_cookie {
                set_cookie(&mut response, key_cookie);
            }
            for removal in signed_in.ended_flows {
                set_cookie(&mut response, removal);
            }
            response
        }
        Ok(Completed::AlreadySignedIn) => {
            tracing::info!("a callback for a sign-in another one already ended; sent on");
            record_outcome(Outcome::AlreadySignedIn, None);
            see_other(flow.default_return_to(&context.mount))
        }
        Err(error) => {
            tracing::warn!(code = error.code(), status = error.status().as_u16(), %error, "sign-in failed");
            record_outcome(error.outcome(), Some(&error));
            observe::sign_in(error.outcome());
            let mut response = flow.render(&error, wants_page, &context.mount);
            // A callback refused for a moment (busy, rate bound, store down) keeps its flow
            // cookie, so the same callback can be retried; any other ends its flow (only its
            // own: another tab's sign-in goes on).
            if error.retry_after().is_none() {
                if let Some(removal) = flow.flow_cookie.clear(&id) {
                    set_cookie(&mut response, removal);
                }
            }
            response
        }
    };
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    no_store(&mut response);
    response
}

/// How a callback that was no error ended.
enum Completed {
    /// Signed in: where to go, and the key cookie to set.
    SignedIn(SignedIn),
    /// The browser is signed in already and the callback's flow is gone: another of its tabs
    /// completed a sign-in (which ends the others), or this callback was loaded again.
    AlreadySignedIn,
}

/// A completed sign-in: where to go, the key cookie to set (none for a linked account), and
/// the deletions of the browser's flow cookies (this sign-in's and every other pending one's).
struct SignedIn {
    return_to: String,
    key_cookie: Option<HeaderValue>,
    ended_flows: Vec<HeaderValue>,
}

/// The flow of the callback for flow `id`, or why there is none. Without its cookie: a
/// signed-in browser has completed this sign-in or another already (`Ok(None)`); a browser with
/// other pending sign-ins sent this callback to the wrong one; otherwise the cookie is missing
/// (on another host than the public URL's, said so).
fn flow_of<K: KeyStore>(
    flow: &Flow,
    parts: &Parts,
    client: &Client,
    id: &str,
) -> Result<Option<FlowState>, AuthError> {
    if let Some(state) = flow.flow_cookie.open(&parts.headers, id)? {
        return Ok(Some(state));
    }
    if flow
        .key_cookie
        .open(&parts.headers, K::TOKEN_PROTECTION)
        .is_some()
    {
        return Ok(None);
    }
    if flow.flow_cookie.any_pending(&parts.headers) {
        return Err(AuthError::FlowMismatch);
    }
    Err(
        match flow
            .public_host
            .foreign(parts, client.forwarded_host.as_deref())
        {
            Some(host) => {
                tracing::warn!(%host, public_origin = %flow.public_origin, "a callback without its flow cookie came to another host than the public URL's");
                AuthError::FlowMissingOnOtherHost {
                    host,
                    public_origin: flow.public_origin.to_string(),
                }
            }
            None => AuthError::FlowMissing,
        },
    )
}

/// The callback's work.
async fn complete_sign_in<K: KeyStore>(
    flow: &Flow,
    store: &K,
    parts: Parts,
    client: &Client,
    id: &str,
    mount: &str,
) -> Result<Completed, AuthError> {
    let Some(state) = flow_of::<K>(flow, &parts, client, id)? else {
        return Ok(Completed::AlreadySignedIn);
    };
    state.check(Some(id).filter(|id| !id.is_empty()), flow.flow_max_age)?;
    let account = linked_account(flow, &parts, &state)?;
    let bound_key = flow.client_key.of(&parts, client);
    let bound_key = bound_key.as_deref();
    let code = callback_code(&parts).inspect_err(|error| {
        if error.outcome() == Outcome::CodeMalformed {
            flow.exchange_gate.failed(bound_key);
        }
    })?;
    // Everything that may refuse without sending the code comes before the flow is spent, so
    // that a refused callback can be retried as it is.
    flow.exchange_gate
        .admit(bound_key)
        .map_err(|NotYet(retry_after)| AuthError::TooManySignIns { retry_after })?;
    let _slot = flow
        .exchange_slots
        .try_acquire()
        .map_err(|_| AuthError::Busy)?;
    spend(flow, store, state.id.as_str()).await?;
    let issued = exchange(flow, &code, state.pkce.as_ref())
        .await
        .inspect_err(|error| {
            if error.outcome() == Outcome::CodeRejected {
                // Only a code ModelGates refused counts against the bounds: abuse, not people.
                flow.exchange_gate.failed(bound_key);
            }
        })?;
    tracing::info!(
        user_hash = issued.user_id.as_deref().map(user_hash),
        "key issued"
    );
    // Read now, since the hook takes the request: the session this browser held before, and
    // its flow cookies, which a completed sign-in ends.
    let ended_flows = flow.flow_cookie.clear_all(&parts.headers);
    let previous = flow
        .key_cookie
        .open(&parts.headers, K::TOKEN_PROTECTION)
        .map(|opened| opened.value);
    let mut app_data = None;
    if let Some(hook) = &flow.on_sign_in {
        let outcome = hook(SignIn {
            user_id: issued.user_id.clone(),
            key: issued.key.clone(),
            expires_at: issued.expires_at,
            request: parts,
            account: account.clone(),
            client: flow.client.clone(),
        })
        .await;
        app_data = outcome.map_err(|failure| match failure {
            HookFailure::AppData(reason) => {
                tracing::error!(%reason, "the on-sign-in hook's value cannot be kept");
                AuthError::AppDataRejected { reason }
            }
            HookFailure::Rejected(rejected) => {
                tracing::info!(%rejected, "the app refused the sign-in");
                AuthError::SignInRejected(rejected)
            }
        })?;
    }
    let stored = StoredKey::new(issued.key, issued.user_id)
        .with_expires_at(issued.expires_at)
        .with_app_data(app_data);
    let key_cookie = match &account {
        Some(account) => {
            // A link, under the app's user: no cookie; the store replaces the key linked before.
            keep(&stored, || store.save_link(account, stored.clone())).await?;
            tracing::info!("ModelGates connected to the app user");
            None
        }
        None => {
            let lives = Duration::from_secs(stored.remaining(flow.key_max_age, stored.issued_at));
            let token = keep(&stored, || store.save(stored.clone())).await?;
            if let Some(previous) = previous {
                end_previous_session(store, &previous).await;
            }
            Some(
                flow.key_cookie
                    .set(token.expose_secret(), K::TOKEN_PROTECTION, lives),
            )
        }
    };
    // The flow cookie is authentic, but sanitise again: the rule may have tightened since.
    let return_to = sanitize(Some(&state.return_to), flow.default_return_to(mount)).to_owned();
    Ok(Completed::SignedIn(SignedIn {
        return_to,
        key_cookie,
        ended_flows,
    }))
}

/// The app user a linked account's callback connects: the one who started the flow, who must
/// still be the request's. `None` in login mode.
fn linked_account(
    flow: &Flow,
    parts: &Parts,
    state: &FlowState,
) -> Result<Option<String>, AuthError> {
    let Some(current) = flow.app_user_of(parts) else {
        return Ok(None);
    };
    let started_by = state.started_by.as_deref();
    match current {
        Some(account)
            if started_by.is_some_and(|bound| {
                subtle::ConstantTimeEq::ct_eq(bound.as_bytes(), binding(&account).as_bytes()).into()
            }) =>
        {
            Ok(Some(account))
        }
        Some(_) => {
            tracing::warn!(
                "a ModelGates connection came back with another app user than the one who started it"
            );
            Err(AuthError::AppUserChanged)
        }
        None if started_by.is_some() => {
            tracing::error!(
                "a ModelGates connection came back without the app user who started it: the \
                 app's session cookie is most likely SameSite=Strict, which browsers do not send \
                 on the navigation back from ModelGates; make it SameSite=Lax"
            );
            Err(AuthError::AppSessionMissing)
        }
        None => Err(AuthError::NotSignedInToApp),
    }
}

/// Exchanges the code for the key, in the `modelgates.exchange` span, timed.
async fn exchange(flow: &Flow, code: &str, pkce: Option<&Pkce>) -> Result<IssuedKey, AuthError> {
    let span = tracing::info_span!(
        "modelgates.exchange",
        "server.address" = flow.client.base_url().host_str(),
        outcome = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    let started = Instant::now();
    let exchanged = flow
        .client
        .exchange_code(code, pkce)
        .instrument(span.clone())
        .await
        .map_err(AuthError::from_exchange);
    let outcome = match &exchanged {
        Ok(_) => Outcome::Success,
        Err(error) => {
            span.record("error.type", error.code());
            error.outcome()
        }
    };
    span.record("outcome", outcome.as_str());
    observe::key_exchange(outcome, started.elapsed());
    exchanged
}

/// Records the flow as spent, in the store when it keeps spent flows (so that no instance
/// sharing it accepts the flow again), else in this process. The store's write is also the
/// proof, before a key is issued, that the store is up.
async fn spend<K: KeyStore>(flow: &Flow, store: &K, id: &str) -> Result<(), AuthError> {
    let spent = store
        .spend_flow(id, flow.spent.lives())
        .await
        .map_err(|error| {
            tracing::warn!(%error, "the key store cannot record the sign-in; nothing was sent to ModelGates");
            AuthError::Store(error)
        })?;
    let local = match spent {
        FlowSpend::First => return Ok(()),
        FlowSpend::Replayed => return Err(AuthError::FlowUsed),
        _ => flow.spent.spend(id),
    };
    match local {
        LocalSpend::First => Ok(()),
        LocalSpend::Replayed => Err(AuthError::FlowUsed),
        LocalSpend::Full { retry_after } => {
            tracing::error!(
                ?retry_after,
                "the record of spent sign-in flows is full; refusing callbacks until the oldest expires"
            );
            Err(AuthError::SpentFlowsFull { retry_after })
        }
    }
}

/// The waits between attempts to keep a key ModelGates has issued: the key exists now, so a
/// store that fails for a moment is worth a few tries (1.3 s in all) before giving up.
const SAVE_RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(900),
];

/// Keeps `stored` with `attempt` (a save, or a link's), retrying a failing store briefly.
async fn keep<T, F, Fut>(stored: &StoredKey, mut attempt: F) -> Result<T, AuthError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::store::StoreError>>,
{
    let mut waits = SAVE_RETRIES.iter();
    loop {
        match attempt().await {
            Ok(kept) => return Ok(kept),
            Err(error) => match waits.next() {
                Some(wait) => {
                    tracing::warn!(%error, "the key store failed to keep an issued key; retrying");
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    tracing::error!(
                        %error,
                        user_hash = stored.user_id.as_deref().map(user_hash),
                        "ModelGates issued a key that the key store could not keep; the user \
                         can delete it on ModelGates and sign in again"
                    );
                    return Err(AuthError::Store(error));
                }
            },
        }
    }
}

/// Ends the session this browser held before signing in again, so a copy of its cookie stops
/// working (server-side stores forget it and announce it; the cookie store has nothing to
/// forget: its key lives in the cookie, which the new one replaces).
async fn end_previous_session<K: KeyStore>(store: &K, token: &SessionToken) {
    match store.remove(token).await {
        Ok(()) => tracing::info!("ended the session this browser held before signing in again"),
        Err(error) => {
            tracing::warn!(%error, "the key store failed to forget the session signed in again over");
        }
    }
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
