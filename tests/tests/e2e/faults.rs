//! Fault injection over real HTTP: ModelGates answering 500, 502, malformed JSON, 200 without a
//! key, slower than the timeout, or dropping the connection mid-answer. Each gives the right
//! status and page, leaves the user signed out and able to retry, and the server keeps serving
//! everyone else meanwhile.

use std::time::{Duration, Instant};

use modelgates_e2e::{RunningApp, browser_like_client, start_chat_app_with};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use reqwest::{Client, StatusCode};

const TIMEOUT: Duration = Duration::from_secs(1);

async fn app() -> RunningApp {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    start_chat_app_with(emulator, |config| config.with_http_timeout(TIMEOUT)).await
}

/// /login and the auto-approving /auth: the callback URL to visit.
async fn callback_url(client: &Client, app: &RunningApp) -> String {
    let login = client
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap();
    let auth = login.headers()["location"].to_str().unwrap().to_owned();
    let approved = client.get(auth).send().await.unwrap();
    approved.headers()["location"].to_str().unwrap().to_owned()
}

async fn signed_in(client: &Client, app: &RunningApp) -> bool {
    let page = client
        .get(&app.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.contains("id=\"message\"")
}

async fn full_sign_in_and_chat(client: &Client, app: &RunningApp) {
    modelgates_axum::testing::sign_in(client, &app.url, &app.emulator)
        .await
        .unwrap();
    assert!(signed_in(client, app).await);
    let reply = client
        .post(format!("{}/chat", app.url))
        .form(&[("message", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_upstream_fault_gives_its_status_and_others_keep_being_served() {
    let app = app().await;
    let faults = [
        (Fault::Status(500), StatusCode::BAD_GATEWAY),
        (Fault::Status(502), StatusCode::BAD_GATEWAY),
        (Fault::MalformedJson, StatusCode::BAD_GATEWAY),
        (Fault::MissingKey, StatusCode::BAD_GATEWAY),
        (Fault::DropConnection, StatusCode::BAD_GATEWAY),
    ];
    for (fault, status) in faults {
        let unlucky = browser_like_client();
        let callback = callback_url(&unlucky, &app).await;
        app.emulator.inject_once(Endpoint::Keys, fault.clone());
        let failed = unlucky.get(&callback).send().await.unwrap();
        assert_eq!(failed.status(), status, "{fault:?}");
        assert_eq!(failed.headers()["cache-control"], "private, no-store");
        let page = failed.text().await.unwrap();
        assert!(page.contains("Please try again"), "{fault:?}: {page}");
        assert!(
            !signed_in(&unlucky, &app).await,
            "{fault:?} leaves the user signed out"
        );

        // Everyone else is served, and the unlucky user can simply try again.
        full_sign_in_and_chat(&browser_like_client(), &app).await;
        full_sign_in_and_chat(&unlucky, &app).await;
    }
}

#[tokio::test]
async fn a_slow_modelgates_times_out_with_504_while_others_sign_in() {
    let app = app().await;
    let slow = browser_like_client();
    let callback = callback_url(&slow, &app).await;
    app.emulator
        .inject_once(Endpoint::Keys, Fault::Delay(Duration::from_secs(5)));
    let before = app.emulator.exchange_count();
    let started = Instant::now();
    let pending = tokio::spawn({
        let slow = slow.clone();
        async move { slow.get(callback).send().await.unwrap() }
    });
    // Wait until the slow exchange has reached ModelGates (poll, no fixed sleep).
    while app.emulator.exchange_count() == before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the exchange never arrived"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Meanwhile another user signs in and chats.
    full_sign_in_and_chat(&browser_like_client(), &app).await;

    let timed_out = pending.await.unwrap();
    assert_eq!(timed_out.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the app's timeout, not the delay, ended it"
    );
    assert!(timed_out.text().await.unwrap().contains("took too long"));
    assert!(!signed_in(&slow, &app).await);
    full_sign_in_and_chat(&slow, &app).await;
}
