//! [`ResponseFuture`]: the response future of
//! [`ModelGatesAuthService`](crate::layer::ModelGatesAuthService).
//!
//! Four shapes, so the common cases cost nothing: a signed-out request (no key cookie) polls
//! the inner service's own future, unboxed, in the scope that tells the extractor which layer
//! saw it; a signed-in request whose key the
//! store gave at once (the cookie store, the memory store, a cache hit) polls it too, and
//! adds the cookie to set or, if the response asks, signs the user out; a request answered at
//! once (a refused cross-site post) holds its response; a request the layer must do async
//! work for (the sign-in routes, a key to load from a database) polls one boxed future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum_core::BoxError;
use axum_core::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response};

use super::signed_in::{SignOutAsked, SignOutPlan};
use crate::api_error::{ApiProblem, KeyRejectedSignOut};
use crate::context::SignedOutScope;
use crate::extract::SignOut;
use crate::response::set_cookie;

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`ModelGatesAuthService`](crate::layer::ModelGatesAuthService).
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        SignedOut { #[pin] future: SignedOutScope<F> },
        Inner { #[pin] future: F },
        SignedIn {
            #[pin] future: F,
            way_out: WayOut,
        },
        SigningOut { future: Pin<Box<dyn Future<Output = Response<Body>> + Send>> },
        Ready { response: Option<Box<Response<Body>>> },
        Boxed { future: BoxedResponse<E> },
    }
}

impl<F, E> ResponseFuture<F, E> {
    /// The inner service's future for a signed-out request, polled in its layer's scope.
    pub(crate) fn signed_out(future: SignedOutScope<F>) -> Self {
        Self {
            kind: Kind::SignedOut { future },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    /// The inner service's future for a signed-in request, and what its response gets on the
    /// way out.
    pub(crate) fn signed_in(future: F, way_out: WayOut) -> Self {
        Self {
            kind: Kind::SignedIn { future, way_out },
        }
    }

    pub(crate) fn ready(response: Response<Body>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(Box::new(response)),
            },
        }
    }

    pub(crate) fn boxed(
        future: impl Future<Output = Result<Response<Body>, E>> + Send + 'static,
    ) -> Self {
        Self {
            kind: Kind::Boxed {
                future: Box::pin(future),
            },
        }
    }
}

impl<F, E, B> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            let response = match kind.as_mut().project() {
                KindProj::SignedOut { future } => {
                    return Poll::Ready(ready!(future.poll(cx)).map(|r| r.map(Body::new)));
                }
                KindProj::Inner { future } => {
                    return Poll::Ready(ready!(future.poll(cx)).map(|r| r.map(Body::new)));
                }
                KindProj::Ready { response } => {
                    return Poll::Ready(Ok(*response
                        .take()
                        .expect("a ResponseFuture polled after it completed")));
                }
                KindProj::Boxed { future } => return future.as_mut().poll(cx),
                KindProj::SigningOut { future } => return future.as_mut().poll(cx).map(Ok),
                KindProj::SignedIn { future, way_out } => {
                    let WayOut {
                        set_cookie: cookie,
                        sign_out,
                    } = way_out;
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(plan) = sign_out {
                        plan.key.pass_on_rate_limits(response.headers_mut());
                    }
                    let asked = sign_out_asked(response.extensions());
                    match sign_out.take_if(|_| asked.is_some()).zip(asked) {
                        // The store's removal may wait: from here on, one boxed future.
                        Some((plan, asked)) => Box::pin(plan.run(response, asked)),
                        None => {
                            let mut response = match sign_out.as_ref() {
                                // An `ApiError` a browser should read as a page.
                                Some(plan)
                                    if response.extensions().get::<ApiProblem>().is_some() =>
                                {
                                    plan.browser_page(response)
                                }
                                _ => response.map(Body::new),
                            };
                            if let Some(cookie) = cookie.take() {
                                set_cookie(&mut response, *cookie);
                            }
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
            };
            kind.set(Kind::SigningOut { future: response });
        }
    }
}

/// What a signed-in request's response gets on its way out of the layer.
pub(crate) struct WayOut {
    /// The key cookie to set (a renewed or re-sealed one); boxed, as it is rare and the
    /// future stays smaller without it.
    pub(crate) set_cookie: Option<Box<HeaderValue>>,
    /// For a signed-in request: how to sign the user out, should the response ask, and the
    /// key whose calls' `X-RateLimit-*` headers the response passes on.
    pub(crate) sign_out: Option<SignOutPlan>,
}

/// The sign-out a response asks for, if any: ModelGates' refusal of the key wins over the
/// app's own.
fn sign_out_asked(extensions: &http::Extensions) -> Option<SignOutAsked> {
    if extensions.get::<KeyRejectedSignOut>().is_some() {
        Some(SignOutAsked::KeyRejected)
    } else if extensions.get::<SignOut>().is_some() {
        Some(SignOutAsked::App)
    } else {
        None
    }
}

impl<F, E> std::fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
