//! `GET /login`: a new flow, sealed in the flow cookie, and the redirect to ModelGates.

use axum_core::body::Body;
use http::Response;
use http::request::Parts;
use modelgates_oauth_core::{FlowState, Pkce};

use super::{Flow, sanitize};
use crate::response::{see_other, set_cookie};

/// The largest `Set-Cookie` value browsers are sure to keep.
const MAX_SET_COOKIE_LEN: usize = 4096;

pub(super) async fn login(flow: &Flow, parts: &Parts, mount: &str) -> Response<Body> {
    let query = parts.uri.query().unwrap_or("");
    let requested = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "return_to")
        .map(|(_, v)| v);
    let return_to = sanitize(requested.as_deref(), &flow.default_return_to);
    let mut state = FlowState::new(flow.challenge_method.map(Pkce::generate), return_to);
    let callback_url = state.callback_url(&flow.paths.callback_url_for(mount));
    let destination = flow.client.authorization_url(
        &callback_url,
        state.pkce.as_ref().map(Pkce::challenge).as_ref(),
    );
    let mut flow_cookie = flow.flow_cookie.set(&state, flow.flow_max_age);
    if flow_cookie.len() > MAX_SET_COOKIE_LEN {
        // A browser would drop the cookie and the sign-in would fail at the callback.
        tracing::info!("return_to too long for the flow cookie; using the default");
        state.return_to.clone_from(&flow.default_return_to);
        flow_cookie = flow.flow_cookie.set(&state, flow.flow_max_age);
    }
    match flow.challenge_method {
        Some(method) => tracing::info!(method = method.as_str(), "sign-in started"),
        None => tracing::info!(method = "none", "sign-in started"),
    }
    let mut response = see_other(destination.as_str());
    set_cookie(&mut response, flow_cookie);
    response
}
