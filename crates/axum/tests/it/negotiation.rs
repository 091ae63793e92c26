//! One negotiation rule for every answer the crate makes, over real HTTP: for the same
//! `Accept` header, the layer's refusals (cross-site, flow errors, misplacement), the
//! extractor's rejections (signed out, layer missing), the routes without their layer and an
//! `ApiError` all answer in the same format. HTML only when the client prefers `text/html` to
//! `application/json` by q-value; JSON otherwise (`*/*`, curl, `fetch()`, no `Accept`).

use axum::Router;
use axum::routing::{get, post};
use modelgates_axum::ApiError;
use modelgates_axum::testing::{self, TestApp};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::Emulator;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};

/// What the client got: a page (or, for a browser the extractor sends to sign in, the 303
/// to the login route), or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

const CASES: [(Option<&str>, Format); 9] = [
    (None, Format::Json),
    (Some("*/*"), Format::Json),
    (Some("application/json"), Format::Json),
    (Some("application/json, text/html"), Format::Json),
    (Some("text/html;q=0.5, application/json"), Format::Json),
    (Some("text/html"), Format::Html),
    (
        Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        Format::Html,
    ),
    (Some("application/json;q=0.5, text/html"), Format::Html),
    (Some("text/*"), Format::Html),
];

fn app(public_url: &str, emulator: &Emulator) -> Router {
    let config = |url: &str| {
        ModelGatesConfig::new(url, CookieSecret::generate()).with_base_url(emulator.base_url())
    };
    let auth = ModelGatesAuth::new(config(public_url));
    let guarded = Router::new()
        .route("/me", get(|_key: ModelGatesKey| async { "me" }))
        .route("/chat", post(|_key: ModelGatesKey| async { "posted" }))
        .route(
            "/slow",
            get(|_key: ModelGatesKey| async { ApiError::Timeout }),
        )
        .merge(auth.routes())
        .layer(auth.same_origin())
        .layer(auth);
    let unlayered = ModelGatesAuth::new(config(public_url));
    Router::new()
        .merge(guarded)
        .route("/no-layer", get(|_key: ModelGatesKey| async { "never" }))
        .nest("/bare", unlayered.routes())
        .nest(
            "/misplaced",
            Router::new()
                .route("/page", get(|| async { "never" }))
                .layer(ModelGatesAuth::new(config(public_url))),
        )
}

fn format_of(response: &reqwest::Response) -> Format {
    if response.status() == StatusCode::SEE_OTHER {
        let location = response.headers()[LOCATION].to_str().unwrap();
        assert!(location.starts_with("/login"), "{location}");
        return Format::Html;
    }
    let Some(content_type) = response.headers().get(CONTENT_TYPE) else {
        panic!(
            "{} without a content type: {:?}",
            response.status(),
            response.headers()
        );
    };
    let content_type = content_type.to_str().unwrap();
    match content_type {
        "application/json" => Format::Json,
        html if html.starts_with("text/html") => Format::Html,
        other => panic!("unexpected content type {other}"),
    }
}

async fn answer(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
    accept: Option<&str>,
) -> (StatusCode, Format) {
    let request = match accept {
        Some(accept) => request.header(ACCEPT, accept),
        None => request,
    };
    let response = client.execute(request.build().unwrap()).await.unwrap();
    (response.status(), format_of(&response))
}

#[tokio::test]
async fn every_answer_of_the_crate_follows_one_rule_with_q_values() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let served: TestApp = testing::serve(|url| app(url, &emulator)).await.unwrap();
    let url = served.url();
    let stranger = testing::client();
    let signed_in = testing::client();
    testing::sign_in(&signed_in, url, &emulator).await.unwrap();

    for (accept, expected) in CASES {
        let requests = [
            ("signed out", &stranger, stranger.get(format!("{url}/me"))),
            (
                "cross-site post",
                &signed_in,
                signed_in
                    .post(format!("{url}/chat"))
                    .header("sec-fetch-site", "cross-site"),
            ),
            (
                "flow cookie missing",
                &stranger,
                stranger.get(format!("{url}/callback/abc?code=x")),
            ),
            (
                "layer missing",
                &stranger,
                stranger.get(format!("{url}/no-layer")),
            ),
            (
                "routes without the layer",
                &stranger,
                stranger.get(format!("{url}/bare/login")),
            ),
            (
                "layer misplaced",
                &stranger,
                stranger.get(format!("{url}/misplaced/page")),
            ),
            ("ApiError", &signed_in, signed_in.get(format!("{url}/slow"))),
        ];
        let mut statuses = Vec::new();
        for (what, client, request) in requests {
            let (status, format) = answer(client, request, accept).await;
            assert_eq!(format, expected, "{what} with Accept {accept:?} ({status})");
            statuses.push(status.as_u16());
        }
        let signed_out = if expected == Format::Html { 303 } else { 401 };
        assert_eq!(
            statuses,
            [signed_out, 403, 400, 500, 500, 500, 504],
            "Accept {accept:?}"
        );
    }
}
