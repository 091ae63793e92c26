//! `LoopbackReceiver` over real HTTP on 127.0.0.1: only a GET to its random path ends the
//! wait, with what the callback carried; anything else is a 404 that changes nothing and is
//! closed; one callback only, then the listener is gone; idle half-written connections neither
//! end nor block the wait; the wait times out, and dropping it closes the listener.

use std::time::{Duration, Instant};

use modelgates_oauth_core::CallbackParams;
use modelgates_oauth_core::loopback::{LoopbackError, LoopbackReceiver};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::test]
async fn only_a_get_to_the_random_path_counts() {
    let receiver = LoopbackReceiver::bind(0).await.unwrap();
    let callback = receiver.callback_url().clone();
    assert_eq!(callback.host_str(), Some("127.0.0.1"));
    assert_eq!(callback.port(), Some(receiver.port()));
    let origin = format!("http://127.0.0.1:{}", receiver.port());
    let waiting = tokio::spawn(receiver.receive());
    let http = reqwest::Client::new();
    for (method, url) in [
        (
            reqwest::Method::GET,
            format!("{origin}/callback?code=attacker"),
        ),
        (
            reqwest::Method::GET,
            format!("{origin}/callback/guess?code=attacker"),
        ),
        (reqwest::Method::POST, format!("{callback}?code=attacker")),
    ] {
        let answer = http.request(method, &url).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{url}");
    }
    let page = http
        .get(format!("{callback}?code=the-code"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("You can close this tab")
    );
    match waiting.await.unwrap().unwrap() {
        CallbackParams::Code(code) => assert_eq!(code.as_str(), "the-code"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_callback_is_an_error_and_a_denial_is_said() {
    let receiver = LoopbackReceiver::bind(0).await.unwrap();
    let callback = receiver.callback_url().clone();
    let waiting = tokio::spawn(receiver.receive());
    reqwest::get(format!("{callback}?code=a&code=b"))
        .await
        .unwrap();
    assert!(matches!(
        waiting.await.unwrap(),
        Err(LoopbackError::Callback(_))
    ));

    let receiver = LoopbackReceiver::bind(0).await.unwrap();
    let callback = receiver.callback_url().clone();
    let waiting = tokio::spawn(receiver.receive());
    let page = reqwest::get(format!("{callback}?error=access_denied"))
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("cancelled"));
    assert!(matches!(
        waiting.await.unwrap().unwrap(),
        CallbackParams::AccessDenied
    ));
}

/// Polls until nothing listens on `port` any more (bounded).
async fn wait_until_closed(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener on {port} stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn one_callback_only_then_the_listener_is_gone() {
    let receiver = LoopbackReceiver::bind(0).await.unwrap();
    let (port, callback) = (receiver.port(), receiver.callback_url().clone());
    let waiting = tokio::spawn(receiver.receive());
    let page = reqwest::get(format!("{callback}?code=first"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        CallbackParams::Code("first".into())
    );
    wait_until_closed(port).await;
    assert!(
        reqwest::get(format!("{callback}?code=second"))
            .await
            .is_err(),
        "a second callback finds nobody listening"
    );
}

#[tokio::test]
async fn a_404_is_closed_and_the_wait_goes_on() {
    let receiver = LoopbackReceiver::bind(0).await.unwrap();
    let (port, callback) = (receiver.port(), receiver.callback_url().clone());
    let waiting = tokio::spawn(receiver.receive());
    let mut stray = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stray
        .write_all(
            b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    // Read to the end: the server closes the connection after its one answer.
    tokio::time::timeout(Duration::from_secs(10), stray.read_to_end(&mut answer))
        .await
        .expect("a 404'd connection is closed, not kept alive")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 404"), "{answer}");
    assert!(
        answer.contains("connection: close"),
        "closed at once: {answer}"
    );
    assert!(!waiting.is_finished(), "a stray request ends nothing");
    reqwest::get(format!("{callback}?code=ok")).await.unwrap();
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        CallbackParams::Code("ok".into())
    );
}

#[tokio::test]
async fn idle_half_written_connections_neither_end_nor_block_the_wait() {
    let receiver = LoopbackReceiver::bind(0)
        .await
        .unwrap()
        .with_header_timeout(Duration::from_millis(100));
    let (port, callback) = (receiver.port(), receiver.callback_url().clone());
    let waiting = tokio::spawn(receiver.receive());
    // What an audit did to the CLI: 244 connections that start a request and never finish it.
    let mut idle = Vec::new();
    for _ in 0..244 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET /callback/x HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        idle.push(stream);
    }
    assert!(!waiting.is_finished(), "they end nothing");
    // The browser's callback still gets through: each idle connection is closed after the
    // header timeout, and at most 16 are open at once.
    let page = tokio::time::timeout(
        Duration::from_secs(30),
        reqwest::get(format!("{callback}?code=the-code")),
    )
    .await
    .expect("the callback is answered while the idle connections wait")
    .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        waiting.await.unwrap().unwrap(),
        CallbackParams::Code("the-code".into())
    );
}

#[tokio::test]
async fn the_wait_times_out_and_dropping_it_closes_the_listener() {
    let receiver = LoopbackReceiver::bind(0)
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    let port = receiver.port();
    assert!(matches!(
        receiver.receive().await,
        Err(LoopbackError::TimedOut(_))
    ));
    wait_until_closed(port).await;

    // Ctrl-C in a `select!` drops the wait: the listener closes with it.
    let receiver = LoopbackReceiver::bind(0).await.unwrap();
    let port = receiver.port();
    let waiting = tokio::spawn(receiver.receive());
    tokio::task::yield_now().await;
    waiting.abort();
    let _ = waiting.await;
    wait_until_closed(port).await;
}
