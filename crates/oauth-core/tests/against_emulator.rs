//! The client against a real HTTP server on 127.0.0.1: the emulator, and a tiny fixed-answer
//! server for answers the emulator never gives. Every error path of the exchange and the chat
//! call, and no secret in any error.

use std::time::Duration;

use modelgates_emulator::{Emulator, Endpoint, Fault};
use modelgates_oauth_core::{
    ApiKey, CallbackParams, ChallengeMethod, ChatError, ChatMessage, ChatRequest, CodeVerifier,
    ExchangeError, ModelGatesClient, Pkce, Url,
};

fn client(base: &str) -> ModelGatesClient {
    ModelGatesClient::builder().base_url(base).build().unwrap()
}

/// Approves an /auth URL for `pkce` on the emulator and returns the code.
fn sign_in(emu: &Emulator, client: &ModelGatesClient, pkce: Option<&Pkce>) -> String {
    let callback = Url::parse("http://localhost:3000/callback?x=1").unwrap();
    let url = client.authorization_url(&callback, pkce.map(Pkce::challenge).as_ref());
    let to = emu.approve(url.as_str()).unwrap();
    assert_eq!(to.query_pairs().find(|(k, _)| k == "x").unwrap().1, "1");
    let Ok(CallbackParams::Code(code)) = CallbackParams::parse(to.query().unwrap()) else {
        panic!("no code in {to}");
    };
    assert_eq!(emu.issued_codes().last(), Some(&code));
    code
}

#[tokio::test]
async fn all_three_modes_exchange_and_chat() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(emu.base_url());
    for method in [
        Some(ChallengeMethod::S256),
        Some(ChallengeMethod::Plain),
        None,
    ] {
        let pkce = method.map(Pkce::generate);
        let code = sign_in(&emu, &client, pkce.as_ref());
        let issued = client.exchange_code(&code, pkce.as_ref()).await.unwrap();
        let record = emu.issued_keys().pop().unwrap();
        assert_eq!(issued.key, ApiKey::new(record.key));
        assert_eq!(issued.user_id.as_deref(), Some(record.user_id.as_str()));

        let body = emu.last_exchange().unwrap().json.unwrap();
        assert_eq!(body["code"], code.as_str());
        match &pkce {
            Some(pkce) => {
                assert_eq!(body["code_verifier"], pkce.verifier().expose_secret());
                assert_eq!(body["code_challenge_method"], pkce.method().as_str());
            }
            None => {
                assert!(
                    body.get("code_verifier").is_none(),
                    "left out without a challenge"
                );
                assert!(body.get("code_challenge_method").is_none());
            }
        }

        let request = ChatRequest::new("openai/gpt-5.2", vec![ChatMessage::user("Hello!")]);
        let reply = client.chat(&issued.key, &request).await.unwrap();
        assert_eq!(reply.text(), Some("[openai/gpt-5.2] You said: Hello!"));
        assert_eq!(reply.usage.unwrap().total_tokens, 5);
    }
}

fn assert_no_secret(error: &dyn std::fmt::Debug, display: &str, secrets: &[&str]) {
    let debug = format!("{error:?}");
    for secret in secrets {
        assert!(!debug.contains(secret), "secret in Debug: {debug}");
        assert!(!display.contains(secret), "secret in Display: {display}");
    }
}

#[tokio::test]
async fn replayed_and_wrong_verifier_codes_are_rejected() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(emu.base_url());
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let verifier = pkce.verifier();
    let code = sign_in(&emu, &client, Some(&pkce));
    client.exchange_code(&code, Some(&pkce)).await.unwrap();

    let replay = client.exchange_code(&code, Some(&pkce)).await.unwrap_err();
    assert!(replay.is_code_rejected(), "{replay:?}");
    assert!(matches!(
        replay,
        ExchangeError::CodeRejected { status: 403, .. }
    ));
    assert!(replay.to_string().contains("sign-in again"), "{replay}");
    assert_no_secret(&replay, &replay.to_string(), &[verifier.expose_secret()]);

    let code = sign_in(&emu, &client, Some(&pkce));
    let other = CodeVerifier::generate();
    let wrong = client
        .exchange_code(
            &code,
            Some(&Pkce::new(other.clone(), ChallengeMethod::S256)),
        )
        .await
        .unwrap_err();
    assert!(wrong.is_code_rejected());
    assert_no_secret(
        &wrong,
        &wrong.to_string(),
        &[other.expose_secret(), verifier.expose_secret()],
    );

    let code = sign_in(&emu, &client, Some(&pkce));
    let plain = Pkce::new(verifier.clone(), ChallengeMethod::Plain);
    let method = client.exchange_code(&code, Some(&plain)).await.unwrap_err();
    assert!(
        matches!(method, ExchangeError::InvalidChallengeMethod { .. }),
        "{method:?}"
    );
    assert!(method.to_string().contains("same method"));
}

#[tokio::test]
async fn expired_codes_are_rejected() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .code_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let client = client(emu.base_url());
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let code = sign_in(&emu, &client, Some(&pkce));
    let error = client.exchange_code(&code, Some(&pkce)).await.unwrap_err();
    assert!(error.is_code_rejected());
}

type Expectation = fn(&ExchangeError) -> bool;

#[tokio::test]
async fn upstream_faults_map_to_typed_errors() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = ModelGatesClient::builder()
        .base_url(emu.base_url())
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();

    let cases: Vec<(Fault, Expectation)> = vec![
        (Fault::Status(405), |e| {
            matches!(e, ExchangeError::MethodNotAllowed)
        }),
        (
            Fault::Status(500),
            |e| matches!(e, ExchangeError::Status { status: 500, message } if message == "Internal Server Error"),
        ),
        (Fault::Status(502), |e| {
            matches!(e, ExchangeError::Status { status: 502, .. })
        }),
        (Fault::Status(403), ExchangeError::is_code_rejected),
        (Fault::MalformedJson, |e| {
            matches!(e, ExchangeError::MalformedResponse(_))
        }),
        (
            Fault::MissingKey,
            |e| matches!(e, ExchangeError::MalformedResponse(m) if m.contains("no key")),
        ),
        (Fault::DropConnection, |e| {
            matches!(e, ExchangeError::Transport(_))
        }),
        (Fault::Delay(Duration::from_secs(3)), |e| {
            matches!(e, ExchangeError::Timeout)
        }),
    ];
    for (fault, expected) in cases {
        emu.inject_once(Endpoint::Keys, fault.clone());
        let error = client.exchange_code("any-code", None).await.unwrap_err();
        assert!(expected(&error), "{fault:?} gave {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    // Bind then drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&format!("http://127.0.0.1:{port}"));
    let error = client.exchange_code("code", None).await.unwrap_err();
    assert!(matches!(error, ExchangeError::Transport(_)), "{error:?}");
    assert!(error.to_string().contains("check the base URL"));
}

/// A server that answers every request with one fixed status and body.
async fn fixed(status: u16, body: &'static str) -> String {
    use axum::http::StatusCode;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move {
        (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_400_naming_the_code_is_a_rejected_code() {
    let base = fixed(400, r#"{"error":{"code":400,"message":"Invalid code"}}"#).await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(error, ExchangeError::CodeRejected { status: 400, .. }),
        "{error:?}"
    );

    let base = fixed(
        400,
        r#"{"error":{"code":400,"message":"Invalid code_challenge_method"}}"#,
    )
    .await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(error, ExchangeError::InvalidChallengeMethod { .. }),
        "{error:?}"
    );

    let base = fixed(418, r#"{"error":{"code":418,"message":"short and stout"}}"#).await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(&error, ExchangeError::Status { status: 418, message } if message == "short and stout")
    );

    let base = fixed(200, r#"{"key":"","user_id":null}"#).await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(error, ExchangeError::MalformedResponse(_)),
        "an empty key is no key"
    );

    let base = fixed(200, r#"{"key":"sk-x"}"#).await;
    let issued = client(&base).exchange_code("c", None).await.unwrap();
    assert_eq!(issued.user_id, None, "user_id may be absent");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let base = fixed(307, "").await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(error, ExchangeError::Status { status: 307, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn chat_errors() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(emu.base_url());
    let request = ChatRequest::new("m", vec![ChatMessage::user("hi")]);
    let forged = ApiKey::new("sk-mg-v1-forged-key-value-123456");
    let error = client.chat(&forged, &request).await.unwrap_err();
    assert!(matches!(error, ChatError::KeyRejected));
    assert!(error.to_string().contains("sign in again"));
    assert_no_secret(&error, &error.to_string(), &[forged.expose_secret()]);

    let code = sign_in(&emu, &client, None);
    let key = client.exchange_code(&code, None).await.unwrap().key;
    emu.inject_once(Endpoint::Chat, Fault::Status(503));
    assert!(matches!(
        client.chat(&key, &request).await,
        Err(ChatError::Status { status: 503, .. })
    ));
    emu.inject_once(Endpoint::Chat, Fault::MissingKey);
    assert!(matches!(
        client.chat(&key, &request).await,
        Err(ChatError::MalformedResponse(_))
    ));
    emu.revoke_key(key.expose_secret());
    assert!(matches!(
        client.chat(&key, &request).await,
        Err(ChatError::KeyRejected)
    ));
}
