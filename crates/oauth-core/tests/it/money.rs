//! The user's money against the emulator over real HTTP: the spend limit asked at `/auth` and
//! enforced on the key, and ModelGates' refusals (out of credits, key limit reached, rate
//! limited, failed midway) typed as such on plain calls, streams and ModelGates' own
//! endpoints, with the retry rules of `ApiRetries`.

use std::time::Duration;

use futures_util::StreamExt as _;
use modelgates_emulator::{Emulator, Endpoint, Fault};
use modelgates_oauth_core::api::ApiRetries;
use modelgates_oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use modelgates_oauth_core::key::SpendLimit;
use modelgates_oauth_core::{
    ApiKey, CallbackParams, ChallengeMethod, KeyRequest, ModelGatesClient, Pkce, RequestError, Url,
    openai,
};

fn client(emu: &Emulator, retries: ApiRetries) -> ModelGatesClient {
    ModelGatesClient::builder()
        .base_url(emu.base_url())
        .api_retries(retries)
        .build()
        .unwrap()
}

/// Signs in on the emulator asking for `key`; the key and its owner.
async fn sign_in(emu: &Emulator, client: &ModelGatesClient, key: &KeyRequest) -> (ApiKey, String) {
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let callback = Url::parse("http://localhost:3000/callback").unwrap();
    let url = client.authorization_url_for_key(&callback, Some(&pkce.challenge()), key);
    let to = emu.approve(url.as_str()).unwrap();
    let Ok(CallbackParams::Code(code)) = CallbackParams::parse(to.query().unwrap()) else {
        panic!("no code in {to}");
    };
    let issued = client.exchange_code(&code, Some(&pkce)).await.unwrap();
    (issued.key, issued.user_id.unwrap())
}

fn hello(stream: bool) -> CreateChatCompletionRequest {
    let mut request = CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from("hello").into()])
        .build()
        .unwrap();
    request.stream = Some(stream);
    request
}

/// One plain chat call that must succeed.
async fn chat_ok(client: &ModelGatesClient, key: &ApiKey) {
    client
        .openai(key)
        .chat()
        .create(hello(false))
        .await
        .unwrap();
}

/// The typed error of one plain chat call.
async fn chat_error(client: &ModelGatesClient, key: &ApiKey) -> RequestError {
    let error = client
        .openai(key)
        .chat()
        .create(hello(false))
        .await
        .unwrap_err();
    openai::request_error(&error).unwrap_or_else(|| panic!("untyped: {error}"))
}

#[tokio::test]
async fn the_limit_asked_at_auth_is_the_keys_and_is_enforced() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(&emu, ApiRetries::default());
    let ask = KeyRequest::new(
        Some(SpendLimit::parse("2.50").unwrap()),
        Some("Chat app".into()),
    );
    let (key, _) = sign_in(&emu, &client, &ask).await;
    let record = emu.key(key.expose_secret()).unwrap();
    assert_eq!(record.limit, Some(2.5));
    assert_eq!(record.label, "Chat app");

    let info = client.key_info(&key).await.unwrap();
    assert_eq!((info.limit, info.label.as_str()), (Some(2.5), "Chat app"));
    assert_eq!(info.limit_remaining, Some(2.5));
    assert_eq!(info.usage_monthly, Some(0.0));
    assert_eq!(info.include_byok_in_limit, Some(false));

    chat_ok(&client, &key).await;
    emu.add_usage(key.expose_secret(), 2.5);
    match chat_error(&client, &key).await {
        // A spent key limit is a 402 naming the limit, as OpenRouter answers it.
        RequestError::KeyLimitReached { message } => {
            assert!(message.starts_with("Key limit exceeded"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.key_info(&key).await.unwrap().limit_remaining,
        Some(0.0)
    );
}

#[tokio::test]
async fn out_of_credits_is_named_on_calls_streams_and_midway() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(&emu, ApiRetries::default());
    let (key, user) = sign_in(&emu, &client, &KeyRequest::default()).await;
    emu.set_credits(&user, 0.0);
    assert!(matches!(
        chat_error(&client, &key).await,
        RequestError::InsufficientCredits { .. }
    ));
    // A stream refused before its first chunk fails to start, typed the same way.
    let refused = client
        .openai_stream(&key)
        .chat()
        .create_stream(hello(true))
        .await
        .err()
        .unwrap();
    assert!(matches!(
        openai::request_error(&refused),
        Some(RequestError::InsufficientCredits { .. })
    ));

    // A stream that fails midway ends with the gateway's error chunk, typed too.
    emu.set_credits(&user, 10.0);
    emu.inject_once(Endpoint::Chat, Fault::StreamFailsMidway(402));
    let mut stream = client
        .openai_stream(&key)
        .chat()
        .create_stream(hello(true))
        .await
        .unwrap();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            failure = Some(error);
            break;
        }
    }
    let failure = failure.expect("the stream failed");
    let gateway = openai::gateway_error(&failure).unwrap();
    assert_eq!(gateway.status, 402);
    assert!(matches!(
        openai::request_error(&failure),
        Some(RequestError::InsufficientCredits { .. })
    ));
}

#[tokio::test]
async fn a_long_rate_limit_is_returned_at_once_and_a_short_one_retried() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(&emu, ApiRetries::default());
    let (key, _) = sign_in(&emu, &client, &KeyRequest::default()).await;

    emu.inject_once(Endpoint::Chat, Fault::RateLimited(Duration::from_secs(30)));
    match chat_error(&client, &key).await {
        RequestError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.chat_count(), 1, "not waited out, not sent again");

    emu.inject_once(Endpoint::Chat, Fault::RateLimited(Duration::from_secs(1)));
    chat_ok(&client, &key).await;
    assert_eq!(emu.chat_count(), 3, "sent again after the 1 s it asked for");

    let none = self::client(&emu, ApiRetries::none());
    emu.inject_once(Endpoint::Chat, Fault::RateLimited(Duration::from_secs(1)));
    assert!(matches!(
        chat_error(&none, &key).await,
        RequestError::RateLimited { .. }
    ));
    assert_eq!(emu.chat_count(), 4);
}

#[tokio::test]
async fn server_errors_are_not_sent_again_unless_asked() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(&emu, ApiRetries::default());
    let (key, _) = sign_in(&emu, &client, &KeyRequest::default()).await;
    emu.inject_once(Endpoint::Chat, Fault::Status(503));
    match chat_error(&client, &key).await {
        RequestError::Unavailable {
            retry_after,
            message,
        } => {
            assert_eq!(
                (retry_after, message.as_str()),
                (None, "Service Unavailable")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.chat_count(), 1, "a billable call is not sent twice");

    let retrying = self::client(&emu, ApiRetries::default().with_server_errors(true));
    emu.inject_once(Endpoint::Chat, Fault::Status(503));
    chat_ok(&retrying, &key).await;
    assert_eq!(emu.chat_count(), 3);
}

#[tokio::test]
async fn the_emulators_rate_limit_and_own_endpoints_answer_typed() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .rate_limit(1, Duration::from_secs(3600))
        .key_lifetime(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let client = client(&emu, ApiRetries::default());
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let callback = Url::parse("http://localhost:3000/callback").unwrap();
    let to = emu
        .approve(
            client
                .authorization_url(&callback, Some(&pkce.challenge()))
                .as_str(),
        )
        .unwrap();
    let Ok(CallbackParams::Code(code)) = CallbackParams::parse(to.query().unwrap()) else {
        panic!("no code");
    };
    let issued = client.exchange_code(&code, Some(&pkce)).await.unwrap();
    let expires_at = issued.expires_at.expect("the emulator's keys expire");
    let now = modelgates_oauth_core::__private::unix_now();
    assert!(
        (now + 3590..=now + 3610).contains(&expires_at),
        "{expires_at}"
    );
    let info = client.key_info(&issued.key).await.unwrap();
    assert!(info.expires_at.is_some());

    chat_ok(&client, &issued.key).await;
    match chat_error(&client, &issued.key).await {
        RequestError::RateLimited { retry_after, .. } => {
            assert!(retry_after.is_some_and(|wait| wait > Duration::from_secs(3000)));
        }
        other => panic!("{other:?}"),
    }
    let models = client.models_for_user(&issued.key).await.unwrap();
    assert!(!models.is_empty());
    assert!(matches!(
        client
            .models_for_user(&ApiKey::new("sk-mg-v1-unknown"))
            .await,
        Err(RequestError::KeyRejected)
    ));
    emu.inject_once(Endpoint::KeyInfo, Fault::InsufficientCredits);
    assert!(matches!(
        client.key_info(&issued.key).await,
        Err(RequestError::InsufficientCredits { .. })
    ));
}

/// Every item of a stream, errors included, until it ends.
async fn drained(
    mut stream: modelgates_oauth_core::async_openai::types::chat::ChatCompletionResponseStream,
) -> Vec<Result<String, modelgates_oauth_core::async_openai::error::OpenAIError>> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item.map(|chunk| {
            chunk
                .choices
                .iter()
                .map(|choice| choice.delta.content.clone().unwrap_or_default())
                .collect()
        }));
    }
    items
}

#[tokio::test]
async fn chat_stream_reads_what_async_openais_stream_reads() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(&emu, ApiRetries::default());
    let (key, user) = sign_in(&emu, &client, &KeyRequest::default()).await;

    // The same chunks, in order, and the observer hears the answer.
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let heard = statuses.clone();
    let ours = client
        .chat_stream_observed(&key, hello(true), move |answered| {
            heard.lock().unwrap().push(answered.status);
        })
        .await
        .unwrap();
    let ours = drained(ours).await;
    let theirs = client
        .openai_stream(&key)
        .chat()
        .create_stream(hello(true))
        .await
        .unwrap();
    let theirs = drained(theirs).await;
    let texts = |items: &[Result<String, _>]| -> Vec<String> {
        items
            .iter()
            .map(|item| item.as_ref().unwrap().clone())
            .collect()
    };
    assert!(ours.len() > 1, "{ours:?}");
    assert_eq!(texts(&ours), texts(&theirs));
    assert_eq!(*statuses.lock().unwrap(), [200]);

    // `stream: false` is refused before anything is sent, as by `create_stream`.
    let calls = emu.chat_count();
    let error = client.chat_stream(&key, hello(false)).await.err().unwrap();
    assert!(matches!(
        error,
        modelgates_oauth_core::async_openai::error::OpenAIError::InvalidArgument(_)
    ));
    assert_eq!(emu.chat_count(), calls);

    // Refused before the first chunk: no stream, the refusal typed.
    emu.set_credits(&user, 0.0);
    let refused = client.chat_stream(&key, hello(true)).await.err().unwrap();
    assert!(matches!(
        openai::request_error(&refused),
        Some(RequestError::InsufficientCredits { .. })
    ));
    emu.set_credits(&user, 10.0);

    // The gateway's error chunk midway: typed, as async-openai's stream types it.
    emu.inject_once(Endpoint::Chat, Fault::StreamFailsMidway(402));
    let items = drained(client.chat_stream(&key, hello(true)).await.unwrap()).await;
    let failure = items
        .iter()
        .find_map(|item| item.as_ref().err())
        .expect("the stream failed");
    assert_eq!(openai::gateway_error(failure).unwrap().status, 402);

    // A connection that breaks before the answer: the transport's error.
    emu.inject_once(Endpoint::Chat, Fault::DropConnection);
    let broken = client.chat_stream(&key, hello(true)).await.err().unwrap();
    assert!(matches!(
        openai::request_error(&broken),
        Some(RequestError::Transport(_))
    ));

    // A stream that goes silent past the idle timeout: one stream error, then the end.
    let impatient = ModelGatesClient::builder()
        .base_url(emu.base_url())
        .stream_idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    emu.inject_once(Endpoint::Chat, Fault::StallStream);
    let items = drained(impatient.chat_stream(&key, hello(true)).await.unwrap()).await;
    let (last, before) = items.split_last().expect("an item");
    assert!(before.iter().all(Result::is_ok), "{items:?}");
    assert!(
        matches!(
            last,
            Err(modelgates_oauth_core::async_openai::error::OpenAIError::StreamError(_))
        ),
        "{last:?}"
    );
}
