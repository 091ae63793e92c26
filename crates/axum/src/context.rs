//! [`RequestContext`]: what the layer knows of one request, worked out once in its service
//! and handed down to the sign-in routes, the extractor and the response future: where the
//! layer sits (the mount), the URI the browser sent, and the login route as this request
//! reaches it.
//!
//! The rules of the mount: axum's `Router::nest("/app", …)` strips `/app` from the request's
//! path and keeps the whole URI in `OriginalUri`. The layer matches its own routes against
//! the path it sees, and builds every URL it sends out (the login link, `return_to`, the
//! callback URL given to ModelGates) from the original URI, so a layer inside
//! `nest("/app", …)` sends users to `/app/login` and back to `/app/…`. A nested router routes
//! the layer's paths only when they are registered in it:
//! [`ModelGatesAuth::routes`](crate::ModelGatesAuth::routes) does that, and without it a nested
//! layer refuses every request with a message that says so.

use std::sync::Arc;

use axum::extract::OriginalUri;
use http::{Request, Uri};

/// What the layer knows of one request.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    /// The prefix a nesting router stripped before the layer saw the request; empty (and not
    /// allocated) on the outermost router.
    pub(crate) mount: String,
    /// The URI as the browser sent it: the whole one, before any nested router stripped a
    /// prefix.
    pub(crate) original_uri: Uri,
    /// The login route as this request reaches it, mount included.
    pub(crate) login_path: Arc<str>,
}

impl RequestContext {
    /// The context of `request`, for a layer whose login route is `login` (outermost).
    pub(crate) fn of<B>(request: &Request<B>, login: &Arc<str>) -> Self {
        match mount_of(request) {
            None => Self {
                mount: String::new(),
                original_uri: request.uri().clone(),
                login_path: login.clone(),
            },
            Some((mount, original_uri)) => Self {
                login_path: format!("{mount}{login}").into(),
                mount,
                original_uri,
            },
        }
    }

    /// Whether a nesting router stripped a prefix before the layer saw the request.
    pub(crate) fn is_nested(&self) -> bool {
        !self.mount.is_empty()
    }
}

/// The prefix a nesting router stripped from `request` and the whole URI it kept; `None` on the
/// outermost router (or outside axum).
fn mount_of<B>(request: &Request<B>) -> Option<(String, Uri)> {
    let OriginalUri(original) = request.extensions().get::<OriginalUri>()?;
    let (full, seen) = (original.path(), request.uri().path());
    if full == seen {
        return None;
    }
    // The nested router's own root is `/`, reached as `/app` or `/app/`.
    let prefix = full
        .strip_suffix(seen)
        .or_else(|| (seen == "/").then(|| full.trim_end_matches('/')))?;
    (!prefix.is_empty()).then(|| (prefix.to_owned(), original.clone()))
}

/// The root of the router `request` reached: its nesting prefix, or `/`.
pub(crate) fn root_of<B>(request: &Request<B>) -> String {
    mount_of(request).map_or_else(|| "/".to_owned(), |(mount, _)| mount)
}

/// The root of a router nested at `prefix` (empty on the outermost router: `/`).
pub(crate) fn root(prefix: &str) -> &str {
    if prefix.is_empty() { "/" } else { prefix }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(full: &str, seen: &str) -> Option<String> {
        let mut request = Request::get(seen).body(()).unwrap();
        request
            .extensions_mut()
            .insert(OriginalUri(full.parse().unwrap()));
        mount_of(&request).map(|(mount, _)| mount)
    }

    #[test]
    fn prefixes() {
        assert_eq!(nested("/app/me?x=1", "/me?x=1").as_deref(), Some("/app"));
        assert_eq!(nested("/a/b/login", "/login").as_deref(), Some("/a/b"));
        assert_eq!(nested("/app", "/").as_deref(), Some("/app"));
        assert_eq!(nested("/app/", "/").as_deref(), Some("/app"));
        assert_eq!(nested("/me", "/me"), None);
        assert_eq!(
            mount_of(&Request::get("/me").body(()).unwrap()).map(|(mount, _)| mount),
            None
        );
    }
}
