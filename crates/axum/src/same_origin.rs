//! [`SameOrigin`]: refuses state-changing requests that another site makes a browser send,
//! such as an auto-submitted form that posts to `/chat` or `/logout`.
//!
//! ```
//! use axum::{Router, routing::post};
//! use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
//!
//! async fn chat() -> &'static str { "ok" }
//!
//! let auth = ModelGatesAuth::new(ModelGatesConfig::new("https://app.example", CookieSecret::generate()));
//! let app: Router = Router::new()
//!     .route("/chat", post(chat))
//!     .layer(auth.same_origin()) // the app's own POST routes
//!     .layer(auth);              // its /logout is guarded already
//! ```
//!
//! The rules, for a request whose method is not `GET`, `HEAD`, `OPTIONS` or `TRACE`:
//!
//! * `Sec-Fetch-Site: same-origin` or `none` (typed by the user) is allowed;
//!   `same-site` (a sibling subdomain) and `cross-site` are refused with 403.
//! * Without `Sec-Fetch-Site` (older browsers), an `Origin` header must be the app's public
//!   origin; `Origin: null` is refused.
//! * A request with neither header is allowed: it does not come from a browser page, and a
//!   browser that could be driven by another site sends at least one of them.
//!
//! The refusal is a 403, JSON or HTML like the layer's other errors (`"code": "cross_site"`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum_core::BoxError;
use axum_core::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use modelgates_oauth_core::origin::{InvalidPublicUrl, parse_public_origin};
use tower_layer::Layer;
use tower_service::Service;

use crate::context::root_of;
use crate::response::{Problem, prefers_html};

/// What the refusal says.
pub(crate) const CROSS_SITE_MESSAGE: &str = "This request came from another site and was refused.";

/// Whether a request was sent by another site, by the module's rules (method aside).
pub(crate) fn is_cross_site(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    headers.get(http::header::ORIGIN).is_some_and(|origin| {
        !origin
            .as_bytes()
            .eq_ignore_ascii_case(public_origin.as_bytes())
    })
}

/// The layer: wraps a service with [`SameOriginService`]. Made by
/// [`ModelGatesAuth::same_origin`](crate::ModelGatesAuth::same_origin) or [`Self::new`].
#[derive(Debug, Clone)]
pub struct SameOrigin {
    origin: Arc<str>,
}

impl SameOrigin {
    /// A guard for an app served at `public_url` (such as `https://app.example`).
    ///
    /// # Errors
    ///
    /// [`InvalidPublicUrl`] by the rules of the layer's public URL.
    pub fn new(public_url: &str) -> Result<Self, InvalidPublicUrl> {
        let url = parse_public_origin(public_url)?;
        Ok(Self::for_origin(url.origin().ascii_serialization().into()))
    }

    pub(crate) fn for_origin(origin: Arc<str>) -> Self {
        Self { origin }
    }
}

impl<S> Layer<S> for SameOrigin {
    type Service = SameOriginService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOriginService {
            inner,
            origin: self.origin.clone(),
        }
    }
}

/// The service [`SameOrigin`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct SameOriginService<S> {
    inner: S,
    origin: Arc<str>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SameOriginService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        if !safe && is_cross_site(request.headers(), &self.origin) {
            tracing::warn!(method = %request.method(), path = request.uri().path(), "refused a cross-site request");
            let home = root_of(&request);
            let refusal = Problem::new(
                StatusCode::FORBIDDEN,
                "cross_site",
                "Request refused",
                CROSS_SITE_MESSAGE,
            )
            .render(prefers_html(request.headers()), &[("Home", &home)]);
            return ResponseFuture {
                kind: Kind::Refused {
                    response: Some(refusal),
                },
            };
        }
        ResponseFuture {
            kind: Kind::Inner {
                future: self.inner.call(request),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SameOriginService`]: the inner service's, or the refusal.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Body>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                Poll::Ready(ready!(future.poll(cx)).map(|r| r.map(Body::new)))
            }
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("a ResponseFuture polled after it completed"))),
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn the_rules() {
        let origin = "https://app.example";
        for allowed in [
            headers(&[]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[("origin", "https://app.example")]),
            headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.example"),
            ]),
        ] {
            assert!(!is_cross_site(&allowed, origin), "{allowed:?}");
        }
        for refused in [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("sec-fetch-site", "same-origin, cross-site")]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "https://chat.app.example")]),
            headers(&[("origin", "http://app.example")]),
            headers(&[("origin", "null")]),
        ] {
            assert!(is_cross_site(&refused, origin), "{refused:?}");
        }
    }
}
