//! `LoopbackReceiver` over real HTTP on 127.0.0.1: only a GET to its random path ends the
//! wait, with what the callback carried; anything else is a 404 that changes nothing.

use modelgates_oauth_core::CallbackParams;
use modelgates_oauth_core::loopback::{LoopbackError, LoopbackReceiver};

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
            .contains("return to the terminal")
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
