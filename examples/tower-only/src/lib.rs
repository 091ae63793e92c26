//! `ModelGatesAuth` around a plain tower service, served by hyper with no axum `Router`: the
//! layer is a tower `Layer` like any other, and the key is read from the request's extensions
//! with [`ModelGatesKey::from_extensions`].

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use modelgates_axum::extract::ConnectInfo;
use modelgates_axum::{ModelGatesAuth, ModelGatesKey};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// The app: one handler for every path the layer does not answer itself.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match ModelGatesKey::from_extensions(request.extensions()) {
        Ok(Some(key)) => (StatusCode::OK, signed_in_page(&key.api_key().masked())),
        Ok(None) => (
            StatusCode::OK,
            "<p>Signed out. <a href=\"/login\">Connect ModelGates</a></p>".to_owned(),
        ),
        Err(missing) => (StatusCode::INTERNAL_SERVER_ERROR, missing.to_string()),
    };
    let response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response");
    Ok(response)
}

/// The page of a signed-in user, showing the masked key: text from the gateway, escaped like
/// any other.
#[must_use]
pub fn signed_in_page(masked_key: &str) -> String {
    format!(
        "<p>Signed in with key {}.</p><form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
        html_escape::encode_text(masked_key)
    )
}

/// Serves `handle` behind `layer` on `listener` until the task is dropped. Each request
/// carries its connection's address (`ConnectInfo`), as axum's
/// `into_make_service_with_connect_info` would add it, so that the layer tells clients apart.
pub async fn serve(listener: TcpListener, layer: ModelGatesAuth) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        // Small writes go out at once (no Nagle wait for the ACK of the one before).
        let _ = stream.set_nodelay(true);
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .layer(layer.clone())
            .service_fn(handle);
        let service = TowerToHyperService::new(service);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
