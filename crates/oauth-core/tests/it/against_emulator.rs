//! The client against a real HTTP server on 127.0.0.1: the emulator, and a tiny fixed-answer
//! server for answers the emulator never gives. Every error path of the exchange and the chat
//! call, and no secret in any error.

use std::time::Duration;

use futures_util::StreamExt as _;
use modelgates_emulator::{Emulator, Endpoint, Fault};
use modelgates_oauth_core::async_openai;
use modelgates_oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FinishReason,
};
use modelgates_oauth_core::pkce::CodeVerifier;
use modelgates_oauth_core::{
    ApiKey, CallbackParams, ChallengeMethod, ExchangeError, ModelGatesClient, Pkce, RequestError,
    Url, openai,
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

        let reply = client
            .openai(&issued.key)
            .chat()
            .create(hello())
            .await
            .unwrap();
        assert_eq!(
            reply.choices[0].message.content.as_deref(),
            Some("[openai/gpt-5.2] You said: Hello!")
        );
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
        .exchange_timeout(Duration::from_secs(1))
        .build()
        .unwrap();

    let cases: Vec<(Fault, Expectation)> = vec![
        (Fault::Status(405), |e| {
            matches!(e, ExchangeError::MethodNotAllowed)
        }),
        (
            Fault::Status(500),
            |e| matches!(e, ExchangeError::Request(RequestError::Status { status: 500, message }) if message == "Internal Server Error"),
        ),
        (Fault::Status(502), |e| {
            matches!(
                e,
                ExchangeError::Request(RequestError::Status { status: 502, .. })
            )
        }),
        (Fault::Status(403), ExchangeError::is_code_rejected),
        (Fault::MalformedJson, |e| {
            matches!(
                e,
                ExchangeError::Request(RequestError::MalformedResponse(_))
            )
        }),
        (
            Fault::MissingKey,
            |e| matches!(e, ExchangeError::Request(RequestError::MalformedResponse(m)) if m.contains("no key")),
        ),
        (Fault::DropConnection, |e| {
            matches!(e, ExchangeError::Request(RequestError::Transport(_)))
        }),
        (Fault::Delay(Duration::from_secs(3)), |e| {
            matches!(e, ExchangeError::Request(RequestError::Timeout))
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
    assert!(
        matches!(error, ExchangeError::Request(RequestError::Transport(_))),
        "{error:?}"
    );
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
        matches!(&error, ExchangeError::Request(RequestError::Status { status: 418, message }) if message == "short and stout")
    );

    let base = fixed(200, r#"{"key":"","user_id":null}"#).await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(
            error,
            ExchangeError::Request(RequestError::MalformedResponse(_))
        ),
        "an empty key is no key"
    );

    // A hostile gateway's markup, spaces or control characters are no key and no user id.
    for answer in [
        r#"{"key":"<script>alert(1)</script>aaaaaaaa"}"#,
        r#"{"key":"sk-mg-v1-aaaa aaaaaaaaaaaa"}"#,
        r#"{"key":"sk-short"}"#,
        r#"{"key":"sk-mg-v1-aaaaaaaaaaaaaaaa","user_id":"user[31m"}"#,
    ] {
        let base = fixed(200, answer).await;
        let error = client(&base).exchange_code("c", None).await.unwrap_err();
        assert!(
            matches!(
                error,
                ExchangeError::Request(RequestError::MalformedResponse(_))
            ),
            "{answer}: {error:?}"
        );
    }
    let long: &'static str = format!(r#"{{"key":"sk-{}"}}"#, "a".repeat(600)).leak();
    let base = fixed(200, long).await;
    assert!(
        client(&base).exchange_code("c", None).await.is_err(),
        "over 512 characters"
    );

    let base = fixed(200, r#"{"key":"sk-x-0123456789abcdef"}"#).await;
    let issued = client(&base).exchange_code("c", None).await.unwrap();
    assert_eq!(issued.user_id, None, "user_id may be absent");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let base = fixed(307, "").await;
    let error = client(&base).exchange_code("c", None).await.unwrap_err();
    assert!(
        matches!(
            error,
            ExchangeError::Request(RequestError::Status { status: 307, .. })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn key_rejection_and_api_failures() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(emu.base_url());
    let forged = ApiKey::new("sk-mg-v1-forged-key-value-123456");
    let error = client.key_info(&forged).await.unwrap_err();
    assert!(matches!(error, RequestError::KeyRejected), "{error:?}");
    assert!(error.to_string().contains("sign in again"));
    assert_no_secret(&error, &error.to_string(), &[forged.expose_secret()]);
    let rejected = client
        .openai(&forged)
        .chat()
        .create(hello())
        .await
        .unwrap_err();
    assert!(openai::is_key_rejected(&rejected), "{rejected:?}");

    let code = sign_in(&emu, &client, None);
    let key = client.exchange_code(&code, None).await.unwrap().key;
    emu.inject_once(Endpoint::KeyInfo, Fault::Status(503));
    assert!(matches!(
        client.key_info(&key).await,
        Err(RequestError::Unavailable { .. })
    ));
    // async-openai retries server errors itself: fail every attempt.
    emu.inject(Endpoint::Chat, Fault::Status(400));
    let refused = client
        .openai(&key)
        .chat()
        .create(hello())
        .await
        .unwrap_err();
    assert!(!openai::is_key_rejected(&refused), "{refused:?}");
    emu.clear_faults();
    emu.revoke_key(key.expose_secret());
    let revoked = client
        .openai(&key)
        .chat()
        .create(hello())
        .await
        .unwrap_err();
    assert!(openai::is_key_rejected(&revoked), "{revoked:?}");
    assert!(matches!(
        client.key_info(&key).await,
        Err(RequestError::KeyRejected)
    ));
}

fn hello() -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
        .build()
        .unwrap()
}

/// `hello()` as a stream; `stream: true` set explicitly, as async-openai's `byot` feature
/// (which an app may turn on) requires.
fn hello_stream() -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        stream: Some(true),
        ..hello()
    }
}

/// async-openai, through the client's pools, in both shapes; the key's usage grows; the models
/// list parses; every call, the exchange included, carries the app's attribution.
#[tokio::test]
async fn the_api_through_async_openai_with_attribution() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = ModelGatesClient::builder()
        .base_url(emu.base_url())
        .app_url("https://github.com/me/tool")
        .app_title("My tool")
        .build()
        .unwrap();
    let code = sign_in(&emu, &client, None);
    let key = client.exchange_code(&code, None).await.unwrap().key;

    let reply = client.openai(&key).chat().create(hello()).await.unwrap();
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        Some("[openai/gpt-5.2] You said: Hello!")
    );
    let mut stream = client
        .openai_stream(&key)
        .chat()
        .create_stream(hello_stream())
        .await
        .unwrap();
    let mut text = String::new();
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(choice) = chunk.choices.first() {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(choice.finish_reason);
        }
    }
    assert_eq!(text, "[openai/gpt-5.2] You said: Hello!");
    assert_eq!(finish, Some(FinishReason::Stop));

    let info = client.key_info(&key).await.unwrap();
    assert!(info.usage > 0.0, "{info:?}");
    assert_eq!(info.limit, Some(modelgates_emulator::DEFAULT_KEY_LIMIT));
    let models = client.models().await.unwrap();
    assert_eq!(models[0].id, "openai/gpt-5.2");

    let seen = emu.attributions();
    for path in [
        "/api/v1/auth/keys",
        "/api/v1/chat/completions",
        "/api/v1/key",
        "/api/v1/models",
    ] {
        let record = seen.iter().find(|r| r.path == path).expect(path);
        assert_eq!(
            record.referer.as_deref(),
            Some("https://github.com/me/tool"),
            "{path}"
        );
        assert_eq!(record.title.as_deref(), Some("My tool"), "{path}");
    }
}

/// A completion slower than the exchange's timeout still succeeds: API calls have their own.
#[tokio::test]
async fn a_completion_slower_than_the_exchange_timeout_succeeds() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .completion_delay(Duration::from_millis(1500))
        .start()
        .await
        .unwrap();
    let client = ModelGatesClient::builder()
        .base_url(emu.base_url())
        .exchange_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let code = sign_in(&emu, &client, None);
    let key = client.exchange_code(&code, None).await.unwrap().key;
    let reply = client.openai(&key).chat().create(hello()).await.unwrap();
    assert!(reply.choices[0].message.content.is_some());

    let impatient = ModelGatesClient::builder()
        .base_url(emu.base_url())
        .api_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let error = impatient
        .openai(&key)
        .chat()
        .create(hello())
        .await
        .unwrap_err();
    assert!(openai::is_timeout(&error), "{error:?}");
}

/// A stream that stops sending ends with an error once the idle timeout passes.
#[tokio::test]
async fn a_stalled_stream_ends_with_an_idle_timeout() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = ModelGatesClient::builder()
        .base_url(emu.base_url())
        .stream_idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let code = sign_in(&emu, &client, None);
    let key = client.exchange_code(&code, None).await.unwrap().key;
    emu.inject_once(Endpoint::Chat, Fault::StallStream);
    let mut stream = client
        .openai_stream(&key)
        .chat()
        .create_stream(hello_stream())
        .await
        .unwrap();
    let mut error = None;
    let started = std::time::Instant::now();
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the stream ends with an error");
    // async-openai reports a stream's transport failure as text; the idle timeout is told by
    // when it comes (the SSE relay of modelgates-axum names it so).
    assert!(
        matches!(error, async_openai::error::OpenAIError::StreamError(_)),
        "{error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}
