//! `GET /login`: a new flow, sealed in the flow cookie, and the redirect to ModelGates.

use axum_core::body::Body;
use http::Response;
use modelgates_oauth_core::flow::FlowState;
use modelgates_oauth_core::key::SpendLimit;
use modelgates_oauth_core::{KeyRequest, Pkce};

use super::{AuthError, Flow, Step, record_outcome, sanitize};
use crate::linked::binding;
use crate::observe::Outcome;
use crate::response::{see_other, set_cookie};

/// The largest `Set-Cookie` value browsers are sure to keep.
const MAX_SET_COOKIE_LEN: usize = 4096;

pub(super) async fn login(flow: &Flow, step: &Step) -> Response<Body> {
    let (parts, mount) = (&step.parts, step.mount());
    if let Some(host) = flow
        .public_host
        .foreign(parts, step.client.forwarded_host.as_deref())
        .filter(|_| !flow.public_host.was_redirected(parts))
    {
        // The flow cookie would belong to `host`, and the callback comes back to the public
        // URL: start the sign-in there instead.
        tracing::info!(%host, public_origin = %flow.public_origin, "sign-in opened on another host; redirecting to the public URL");
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut response = see_other(&format!("{}{mount}{path_and_query}", flow.public_origin));
        set_cookie(&mut response, flow.public_host.redirected_cookie());
        record_outcome(Outcome::OtherHost, None);
        return response;
    }
    let query = parts.uri.query().unwrap_or("");
    let key = match key_request(flow, query) {
        Ok(key) => key,
        Err(error) => {
            tracing::info!(code = error.code(), "refused a sign-in's spend limit");
            record_outcome(error.outcome(), Some(&error));
            return flow.render(&error, step.wants_page, mount);
        }
    };
    let started_by = match flow.app_user_of(parts) {
        None => None,
        Some(Some(account)) => Some(binding(&account)),
        Some(None) => {
            let error = AuthError::NotSignedInToApp;
            tracing::info!("refused to connect ModelGates: nobody is signed in to the app");
            record_outcome(error.outcome(), Some(&error));
            return flow.render(&error, step.wants_page, mount);
        }
    };
    let requested = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "return_to")
        .map(|(_, v)| v);
    let default_return_to = flow.default_return_to(mount);
    let return_to = sanitize(requested.as_deref(), default_return_to);
    let mut state = FlowState::new(flow.challenge_method.map(Pkce::generate), return_to)
        .with_started_by(started_by);
    let destination = if mount.is_empty() {
        flow.auth_url.for_flow(&state, &key)
    } else {
        let callback = flow.paths.callback_url_for(mount);
        flow.client
            .prepare_auth_url(&callback)
            .for_flow(&state, &key)
    };
    let mut flow_cookie = flow.flow_cookie.set(&state);
    if flow_cookie.len() > MAX_SET_COOKIE_LEN {
        // A browser would drop the cookie and the sign-in would fail at the callback.
        tracing::info!("return_to too long for the flow cookie; using the default");
        default_return_to.clone_into(&mut state.return_to);
        flow_cookie = flow.flow_cookie.set(&state);
    }
    match flow.challenge_method {
        Some(method) => tracing::info!(method = method.as_str(), "sign-in started"),
        None => tracing::info!(method = "none", "sign-in started"),
    }
    record_outcome(Outcome::Started, None);
    let mut response = see_other(&destination);
    // One flow per tab: earlier pending sign-ins keep their cookies, but for the oldest when
    // there are too many.
    for removal in flow
        .flow_cookie
        .make_room(&parts.headers, flow_cookie.len())
    {
        set_cookie(&mut response, removal);
    }
    set_cookie(&mut response, flow_cookie);
    response
}

/// What to ask for the key: the spend limit the user picked with `?limit=` (checked: one value,
/// a plain decimal of credits, at most the maximum; empty is none picked, as a form's empty
/// field sends it), else the configured one, else the maximum; and the label.
fn key_request(flow: &Flow, query: &str) -> Result<KeyRequest, AuthError> {
    let mut picked = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, value)| name == "limit" && !value.is_empty())
        .map(|(_, value)| value);
    let limit = match (picked.next(), picked.next()) {
        (None, _) => Some(flow.key_request.limit.unwrap_or(flow.max_key_limit)),
        (Some(_), Some(_)) => {
            return Err(AuthError::InvalidKeyLimit {
                reason: "give one limit only".to_owned(),
            });
        }
        (Some(text), None) => {
            let limit = SpendLimit::parse(&text).map_err(|error| AuthError::InvalidKeyLimit {
                reason: error.to_string(),
            })?;
            if limit > flow.max_key_limit {
                return Err(AuthError::InvalidKeyLimit {
                    reason: format!("the most you can choose is {} credits", flow.max_key_limit),
                });
            }
            Some(limit)
        }
    };
    Ok(KeyRequest::new(limit, flow.key_request.label.clone()))
}
