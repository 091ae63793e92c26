//! Floods and abuse over real HTTP on 127.0.0.1: the rate bounds on key exchanges (per client
//! and in all), the record of spent flows that cannot be flushed, a callback refused as busy
//! that can be retried, and the cap on each session's open streams.

#![cfg(feature = "openai")]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use http::HeaderName;
use modelgates_axum::ApiError;
use modelgates_axum::config::{ClientKey, ExchangeLimits, RateLimit};
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use modelgates_axum::testing::{self, TestApp, reqwest};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use reqwest::StatusCode;

const CLIENT_HEADER: &str = "x-test-client";

async fn serve(
    emulator: &Emulator,
    tweak: impl FnOnce(ModelGatesConfig) -> ModelGatesConfig,
) -> TestApp {
    let base_url = emulator.base_url().to_owned();
    testing::serve(|public_url| {
        let config = tweak(
            ModelGatesConfig::new(public_url, CookieSecret::generate()).with_base_url(base_url),
        );
        Router::new()
            .route("/", get(|| async { "home" }))
            .route("/stream", post(stream))
            .layer(ModelGatesAuth::new(config))
    })
    .await
    .unwrap()
}

async fn stream(key: ModelGatesKey) -> Result<axum::response::Response, ApiError> {
    let request = CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from("Tell me a long story").into()])
        .build()?;
    Ok(axum::response::IntoResponse::into_response(
        key.stream_chat(request).await?,
    ))
}

/// Limits told apart by a header, so that one test process can be many clients.
fn limits() -> ExchangeLimits {
    ExchangeLimits::unlimited().with_client_key(ClientKey::last_header_value(
        HeaderName::from_static(CLIENT_HEADER),
    ))
}

/// A client whose requests say they come from `name`.
fn client_named(name: &str) -> reqwest::Client {
    client_sending(CLIENT_HEADER, name)
}

/// A cookie-keeping client that sends `header: value` with every request.
fn client_sending(header: &'static str, value: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(header, value.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A started flow's callback URL with its code replaced by a made-up one, as a script would
/// send: the flow is genuine (its cookie is in `client`), the code is not.
async fn bogus_callback(client: &reqwest::Client, app: &TestApp, emulator: &Emulator) -> String {
    let callback = testing::start_sign_in(client, app.url(), emulator)
        .await
        .unwrap();
    let (path, _) = callback.split_once('?').unwrap();
    format!("{path}?code=made-up-code")
}

async fn error_code(response: reqwest::Response) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        retry_after,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn json(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client.get(url).header("accept", "application/json")
}

#[tokio::test]
async fn one_client_cannot_make_the_app_flood_modelgates_with_exchanges() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = serve(&emulator, |config| {
        config
            .with_exchange_limits(limits().with_per_client(RateLimit::per_minute(3).with_burst(3)))
    })
    .await;
    let script = client_named("203.0.113.66");
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let callback = bogus_callback(&script, &app, &emulator).await;
        let (status, retry_after, code) =
            error_code(json(&script, &callback).send().await.unwrap()).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code, "too_many_sign_ins");
            let wait: u64 = retry_after
                .expect("a 429 says when to retry")
                .parse()
                .unwrap();
            assert!((1..=20).contains(&wait), "{wait}");
        } else {
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::BAD_REQUEST, "code_rejected")
            );
        }
        statuses.push(status);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "3 per minute: no permit came back meanwhile"
    );
    assert_eq!(
        emulator.exchange_count(),
        3,
        "only the burst reached ModelGates: {statuses:?}"
    );
    // Another client is not held up by the script.
    let person = client_named("198.51.100.7");
    testing::sign_in(&person, app.url(), &emulator)
        .await
        .unwrap();
    assert_eq!(emulator.exchange_count(), 4);
}

/// The global bound counts failures too: once the layer's are over it, a client with
/// failures on record waits (JSON and page alike), while a client without any still signs in.
#[tokio::test]
async fn the_global_bound_holds_clients_with_failures_and_lets_newcomers_in() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = serve(&emulator, |config| {
        config.with_exchange_limits(
            limits()
                .with_global(RateLimit::per_minute(2).with_burst(2))
                .with_per_client(RateLimit::per_minute(10).with_burst(5)),
        )
    })
    .await;
    for name in ["a", "b"] {
        let client = client_named(name);
        let callback = bogus_callback(&client, &app, &emulator).await;
        let (status, _, code) = error_code(json(&client, &callback).send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "code_rejected")
        );
    }
    let again = client_named("a");
    let callback = testing::start_sign_in(&again, app.url(), &emulator)
        .await
        .unwrap();
    let (status, retry_after, code) =
        error_code(json(&again, &callback).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins")
    );
    let wait: u64 = retry_after.unwrap().parse().unwrap();
    assert!(
        (1..=30).contains(&wait),
        "2 per minute: a try in at most 30 s, said {wait}"
    );
    assert_eq!(
        emulator.exchange_count(),
        2,
        "nothing was sent for the third"
    );
    // The page a browser gets says the same, with Retry-After.
    let page = again
        .get(&callback)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key("retry-after"));
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Too many sign-ins from here")
    );
    // Someone who never failed is not locked out by the others' failures.
    testing::sign_in(&client_named("c"), app.url(), &emulator)
        .await
        .unwrap();
    assert_eq!(emulator.exchange_count(), 3);
}

/// Successes never count: a dozen people behind one address (an office NAT, a proxy) all sign
/// in within a few seconds, with the default bounds.
#[tokio::test]
async fn twelve_people_behind_one_address_all_sign_in() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = serve(&emulator, |config| {
        config.with_exchange_limits(ExchangeLimits::default().with_client_key(
            ClientKey::last_header_value(HeaderName::from_static(CLIENT_HEADER)),
        ))
    })
    .await;
    let signed_in = futures_util::future::join_all((0..12).map(|_| {
        let (url, emulator) = (app.url().to_owned(), &emulator);
        async move { testing::sign_in(&client_named("203.0.113.1"), &url, emulator).await }
    }))
    .await;
    for outcome in signed_in {
        outcome.unwrap();
    }
    assert_eq!(emulator.exchange_count(), 12);
}

#[tokio::test]
async fn a_callback_refused_as_busy_keeps_its_flow_for_the_retry() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = serve(&emulator, |config| config.with_max_concurrent_exchanges(1)).await;
    let slow = testing::client();
    let slow_callback = testing::start_sign_in(&slow, app.url(), &emulator)
        .await
        .unwrap();
    let waiting = testing::client();
    let waiting_callback = testing::start_sign_in(&waiting, app.url(), &emulator)
        .await
        .unwrap();
    emulator.inject_once(Endpoint::Keys, Fault::Delay(Duration::from_millis(800)));
    let in_flight = tokio::spawn({
        let slow = slow.clone();
        async move { slow.get(&slow_callback).send().await.unwrap().status() }
    });
    // Poll until the slow exchange holds the only slot.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, retry_after, code) = loop {
        assert!(
            Instant::now() < deadline,
            "the slow exchange never took the slot"
        );
        if emulator.exchange_count() == 0 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        break error_code(json(&waiting, &waiting_callback).send().await.unwrap()).await;
    };
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(in_flight.await.unwrap(), StatusCode::SEE_OTHER);
    let retried = waiting.get(&waiting_callback).send().await.unwrap();
    assert_eq!(
        retried.status(),
        StatusCode::SEE_OTHER,
        "the same callback completes: refusing it as busy did not spend its flow"
    );
}

#[tokio::test]
async fn the_spent_flow_record_refuses_when_full_instead_of_forgetting() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = serve(&emulator, |config| config.with_max_spent_flows(3)).await;
    // The attacker keeps each flow's cookie and callback URL, to replay them.
    let replayer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut used = Vec::new();
    for _ in 0..3 {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = testing::client_with_jar(jar.clone());
        let callback = testing::start_sign_in(&client, app.url(), &emulator)
            .await
            .unwrap();
        let flow_cookie = reqwest::cookie::CookieStore::cookies(&*jar, &app.url().parse().unwrap())
            .expect("the flow cookie");
        assert_eq!(
            client.get(&callback).send().await.unwrap().status(),
            StatusCode::SEE_OTHER
        );
        used.push((flow_cookie, callback));
    }
    let replay = |(cookie, callback): &(reqwest::header::HeaderValue, String)| {
        replayer
            .get(callback)
            .header("cookie", cookie.clone())
            .header("accept", "application/json")
            .send()
    };
    // The attacker touches its spent flows again and again (what TinyLFU would count).
    for _ in 0..5 {
        for spent in &used {
            let (status, _, code) = error_code(replay(spent).await.unwrap()).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::BAD_REQUEST, "flow_used")
            );
        }
    }
    let newcomer = testing::client();
    let callback = testing::start_sign_in(&newcomer, app.url(), &emulator)
        .await
        .unwrap();
    let before = emulator.exchange_count();
    let (status, retry_after, code) =
        error_code(json(&newcomer, &callback).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    let wait: u64 = retry_after.unwrap().parse().unwrap();
    assert!(
        wait > 600,
        "the oldest flow expires after its lifetime: {wait}"
    );
    assert_eq!(emulator.exchange_count(), before, "nothing was sent");
    for spent in &used {
        let (status, _, code) = error_code(replay(spent).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "flow_used"),
            "no spent flow was forgotten to make room"
        );
    }
}

#[tokio::test]
async fn a_session_holds_at_most_its_cap_of_streams() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let app = serve(&emulator, |config| config.with_max_streams_per_session(2)).await;
    let client = testing::client();
    testing::sign_in(&client, app.url(), &emulator)
        .await
        .unwrap();
    emulator.inject(Endpoint::Chat, Fault::StallStream);
    let open = || {
        client
            .post(format!("{}/stream", app.url()))
            .header("accept", "text/event-stream")
            .send()
    };
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let chats = emulator.chat_count();
    let third = open().await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["retry-after"], "1");
    let (_, _, code) = error_code(third).await;
    assert_eq!(code, "too_many_streams");
    assert_eq!(
        emulator.chat_count(),
        chats,
        "nothing was sent for the third"
    );
    // A client that goes away frees its slot.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = open().await.unwrap();
        if again.status() == StatusCode::OK {
            break;
        }
        assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            Instant::now() < deadline,
            "the dropped stream's slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another session has its own slots.
    let other = testing::client();
    testing::sign_in(&other, app.url(), &emulator)
        .await
        .unwrap();
    let theirs = other
        .post(format!("{}/stream", app.url()))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::OK);
}

/// A client whose requests carry `X-Forwarded-For: address`, as a proxy would add it (or as
/// a client would forge it).
fn forwarded_for(address: &str) -> reqwest::Client {
    client_sending("x-forwarded-for", address)
}

/// Sends a made-up code from `address` (in `X-Forwarded-For`) as a script would: `/login` for
/// a genuine flow cookie, then its callback URL (read from the redirect, ModelGates never
/// visited) with a code of its own, through one shared client (building a client per address
/// costs more than the requests). The status and error code.
async fn made_up_code(address: &str, app: &TestApp) -> (StatusCode, String) {
    static SCRIPT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    });
    let client = &*SCRIPT;
    let login = client
        .get(format!("{}/login", app.url()))
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap();
    let flow_cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let auth = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let (_, callback) = auth
        .query_pairs()
        .find(|(name, _)| name == "callback_url")
        .unwrap();
    let response = json(client, &format!("{callback}?code=made-up-code"))
        .header("x-forwarded-for", address)
        .header("cookie", flow_cookie)
        .send()
        .await
        .unwrap();
    let (status, _, code) = error_code(response).await;
    (status, code)
}

/// `X-Forwarded-For` names the client only when the peer is a trusted proxy: from anyone else
/// it is ignored (a script cannot pose as many clients), and counted.
#[tokio::test]
async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
    use modelgates_axum::config::TrustedProxies;
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let two_tries =
        ExchangeLimits::unlimited().with_per_client(RateLimit::per_minute(2).with_burst(2));
    let untrusted = serve(&emulator, |config| {
        config.with_exchange_limits(two_tries.clone())
    })
    .await;
    for spoofed in ["203.0.113.1", "203.0.113.2"] {
        let (status, _) = made_up_code(spoofed, &untrusted).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, code) = made_up_code("203.0.113.3", &untrusted).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins"),
        "every forged address is the peer's, 127.0.0.1"
    );

    // Behind a proxy on 127.0.0.1 that is trusted, each forwarded address is its own client.
    let behind_proxy = serve(&emulator, |config| {
        config
            .with_exchange_limits(two_tries)
            .with_trusted_proxies(TrustedProxies::parse("127.0.0.1").unwrap())
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            made_up_code("203.0.113.9", &behind_proxy).await.0,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        made_up_code("203.0.113.9", &behind_proxy).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The client wrote an address of its own in front: the proxy's (right-most) one counts.
    assert_eq!(
        made_up_code("198.51.100.1, 203.0.113.9", &behind_proxy)
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    testing::sign_in(
        &forwarded_for("198.51.100.2"),
        behind_proxy.url(),
        &emulator,
    )
    .await
    .unwrap();
}

/// A flood of made-up codes from 240 addresses, each within its own bound, fills the global
/// bound; then 22 people from other addresses all sign in, and the flood's addresses wait.
#[tokio::test]
async fn a_flood_from_many_addresses_does_not_lock_people_out() {
    use modelgates_axum::config::TrustedProxies;
    let emulator = Emulator::start_auto_approve().await.unwrap();
    // The default per-client bound; a global one that refills slowly, so that the flood
    // keeps it full for the whole test.
    let app = serve(&emulator, |config| {
        config
            .with_trusted_proxies(TrustedProxies::parse("127.0.0.1").unwrap())
            .with_exchange_limits(
                ExchangeLimits::default().with_global(RateLimit::per_minute(60).with_burst(50)),
            )
    })
    .await;
    let flood: Vec<String> = (0..240)
        .map(|i| format!("10.9.{}.{}", i / 200, i % 200 + 1))
        .collect();
    for chunk in flood.chunks(40) {
        let tries = chunk.iter().map(|address| {
            let app = &app;
            async move { made_up_code(address, app).await.0 }
        });
        for status in futures_util::future::join_all(tries).await {
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::TOO_MANY_REQUESTS,
                "{status}"
            );
        }
    }
    let people = (0..22).map(|i| {
        let (app, emulator) = (&app, &emulator);
        async move {
            testing::sign_in(
                &forwarded_for(&format!("198.51.100.{}", i + 1)),
                app.url(),
                emulator,
            )
            .await
        }
    });
    let refused = futures_util::future::join_all(people)
        .await
        .into_iter()
        .filter(Result::is_err)
        .count();
    assert_eq!(refused, 0, "of 22 people");
    let (status, code) = made_up_code(&flood[0], &app).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins"),
        "a flooding address waits while the layer's failures are over the bound"
    );
}
