//! Where the layer sits: the path prefix a nesting router stripped before the layer saw the
//! request.
//!
//! The rules: axum's `Router::nest("/app", …)` strips `/app` from the request's path and keeps
//! the whole URI in `OriginalUri`. The layer matches its own routes against the path it sees,
//! and builds every URL it sends out (the login link, `return_to`, the callback URL given to
//! ModelGates) from the original URI, so a layer inside `nest("/app", …)` sends users to
//! `/app/login` and back to `/app/…`. A nested router routes the layer's paths only when they
//! are registered in it: [`ModelGatesAuth::routes`](crate::ModelGatesAuth::routes) does that,
//! and without it a nested layer refuses every request with a message that says so.

use axum::extract::OriginalUri;
use http::{Request, Uri};

/// A layer inside a nested router: the prefix it sits under and the request's whole URI.
#[derive(Debug)]
pub(crate) struct Mount {
    pub(crate) prefix: String,
    pub(crate) original: Uri,
}

impl Mount {
    /// The mount of `request`, or `None` on the outermost router (or outside axum).
    pub(crate) fn of<B>(request: &Request<B>) -> Option<Self> {
        let OriginalUri(original) = request.extensions().get::<OriginalUri>()?;
        let (full, seen) = (original.path(), request.uri().path());
        if full == seen {
            return None;
        }
        // The nested router's own root is `/`, reached as `/app` or `/app/`.
        let prefix = full
            .strip_suffix(seen)
            .or_else(|| (seen == "/").then(|| full.trim_end_matches('/')))?;
        (!prefix.is_empty()).then(|| Self {
            prefix: prefix.to_owned(),
            original: original.clone(),
        })
    }

    /// The root of the router `request` reached: its nesting prefix, or `/`.
    pub(crate) fn root_of<B>(request: &Request<B>) -> String {
        root(
            &Self::of(request)
                .map(|mount| mount.prefix)
                .unwrap_or_default(),
        )
        .to_owned()
    }
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
        Mount::of(&request).map(|m| m.prefix)
    }

    #[test]
    fn prefixes() {
        assert_eq!(nested("/app/me?x=1", "/me?x=1").as_deref(), Some("/app"));
        assert_eq!(nested("/a/b/login", "/login").as_deref(), Some("/a/b"));
        assert_eq!(nested("/app", "/").as_deref(), Some("/app"));
        assert_eq!(nested("/app/", "/").as_deref(), Some("/app"));
        assert_eq!(nested("/me", "/me"), None);
        assert_eq!(
            Mount::of(&Request::get("/me").body(()).unwrap()).map(|m| m.prefix),
            None
        );
    }
}
