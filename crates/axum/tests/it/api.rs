//! Spending the key through the layer: async-openai whole and streamed, tools, timeouts that
//! fit model calls, the SSE relay, a revoked key signing the user out, and attribution. The
//! emulator runs in-process on 127.0.0.1; the relay tests serve the app over real HTTP.

use crate::support;

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use http::{StatusCode, header};
use modelgates_axum::ApiError;
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageArgs,
    ChatCompletionRequestMessage, ChatCompletionRequestToolMessageArgs,
    ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs, FinishReason, FunctionObjectArgs,
};
use modelgates_axum::store::{
    KeyStore, MemoryStore, SessionToken, StoreError, StoredKey, TokenProtection,
};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey, testing};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use support::{Browser, config, emulator};

fn ask(text: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from(text).into()])
        .build()
        .unwrap()
}

async fn whole(key: ModelGatesKey) -> Result<String, ApiError> {
    let reply = key.openai().chat().create(ask("whole")).await?;
    Ok(reply.choices[0].message.content.clone().unwrap_or_default())
}

async fn streamed(key: ModelGatesKey) -> Result<String, ApiError> {
    let request = CreateChatCompletionRequest {
        stream: Some(true),
        ..ask("one two three")
    };
    let mut stream = key.openai_stream().chat().create_stream(request).await?;
    let mut pieces = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if let Some(text) = chunk.choices.first().and_then(|c| c.delta.content.clone()) {
            pieces.push(text);
        }
    }
    Ok(pieces.join("|"))
}

/// The tool-call round trip: the model calls a tool, the app answers, the model replies.
async fn tool_round_trip(key: ModelGatesKey) -> Result<String, ApiError> {
    let tool = ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("weather")
            .description("The weather in a city")
            .parameters(
                serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}}),
            )
            .build()?,
    });
    let question: ChatCompletionRequestMessage =
        ChatCompletionRequestUserMessage::from("Paris").into();
    let first = CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([question.clone()])
        .tools(vec![tool.clone()])
        .build()?;
    let call = key.openai().chat().create(first).await?;
    let choice = &call.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let tool_calls = choice.message.tool_calls.clone().unwrap_or_default();
    let Some(ChatCompletionMessageToolCalls::Function(called)) = tool_calls.first() else {
        return Err(ApiError::InvalidRequest("no tool call".into()));
    };
    assert_eq!(called.function.name, "weather");
    let arguments: serde_json::Value = serde_json::from_str(&called.function.arguments).unwrap();
    assert_eq!(arguments["text"], "Paris");
    let second = CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([
            question,
            ChatCompletionRequestAssistantMessageArgs::default()
                .tool_calls(tool_calls.clone())
                .build()?
                .into(),
            ChatCompletionRequestToolMessageArgs::default()
                .tool_call_id(called.id.clone())
                .content("sunny, 21 °C")
                .build()?
                .into(),
        ])
        .tools(vec![tool])
        .build()?;
    let answer = key.openai().chat().create(second).await?;
    Ok(answer.choices[0]
        .message
        .content
        .clone()
        .unwrap_or_default())
}

fn weather_tool() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("weather")
            .parameters(
                serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}}),
            )
            .build()
            .unwrap(),
    })
}

fn ask_with_tool(text: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        tools: Some(vec![weather_tool()]),
        ..ask(text)
    }
}

/// A streamed tool call through async-openai, joined the way an app does it: deltas by index,
/// arguments concatenated. Answers `name|arguments|pieces`.
async fn streamed_tool_call(key: ModelGatesKey) -> Result<String, ApiError> {
    let request = CreateChatCompletionRequest {
        stream: Some(true),
        ..ask_with_tool("the weather in Paris")
    };
    let mut stream = key.openai_stream().chat().create_stream(request).await?;
    let (mut name, mut arguments, mut pieces) = (String::new(), String::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let Some(choice) = chunk.choices.into_iter().next() else {
            continue;
        };
        for call in choice.delta.tool_calls.into_iter().flatten() {
            assert_eq!(call.index, 0);
            if let Some(function) = call.function {
                name.push_str(function.name.as_deref().unwrap_or_default());
                if let Some(part) = function.arguments.filter(|a| !a.is_empty()) {
                    arguments.push_str(&part);
                    pieces += 1;
                }
            }
        }
    }
    Ok(format!("{name}|{arguments}|{pieces}"))
}

async fn relayed_tool_call(key: ModelGatesKey) -> Result<impl IntoResponse, ApiError> {
    key.stream_chat(ask_with_tool("the weather in Paris")).await
}

async fn relayed(key: ModelGatesKey) -> Result<impl IntoResponse, ApiError> {
    key.stream_chat(ask("alpha beta gamma")).await
}

async fn usage(key: ModelGatesKey) -> Result<String, ApiError> {
    let info = key.key_info().await?;
    let models = key.models().await?;
    Ok(format!(
        "{} {} {}",
        info.usage > 0.0,
        info.limit.unwrap_or(0.0),
        models.len()
    ))
}

fn app(layer: ModelGatesAuth<impl modelgates_axum::store::KeyStore>) -> Router {
    Router::new()
        .route("/whole", post(whole))
        .route("/streamed", post(streamed))
        .route("/tools", post(tool_round_trip))
        .route("/relay", post(relayed))
        .route("/streamed-tool-call", post(streamed_tool_call))
        .route("/relayed-tool-call", post(relayed_tool_call))
        .route("/usage", get(usage))
        .layer(layer)
}

#[tokio::test]
async fn async_openai_whole_streamed_and_with_tools() {
    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    browser.sign_in("/login").await;
    assert_eq!(
        browser.post("/whole").await.body,
        "[openai/gpt-5.2] You said: whole"
    );
    assert_eq!(
        browser.post("/streamed").await.body,
        "[openai/gpt-5.2] |You |said: |one |two |three",
        "arrives in pieces, in order"
    );
    let answer = browser.post("/tools").await;
    assert_eq!(
        answer.body, "[openai/gpt-5.2] The tool said: sunny, 21 °C",
        "{}",
        answer.body
    );
    // No limit was picked or configured: the layer asked for the maximum, 1000 credits.
    assert_eq!(browser.get("/usage").await.body, "true 1000 3");
}

/// A completion that takes longer than the key exchange's timeout succeeds: API calls have a
/// total timeout of their own.
#[tokio::test]
async fn a_completion_slower_than_the_exchange_timeout_succeeds() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .completion_delay(Duration::from_millis(1500))
        .start()
        .await
        .unwrap();
    let cfg = config(&emu).with_http_timeout(Duration::from_secs(1));
    let mut browser = Browser::new(app(ModelGatesAuth::new(cfg)));
    browser.sign_in("/login").await;
    let reply = browser.post("/whole").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let impatient = config(&emu).with_api_timeout(Duration::from_millis(500));
    let mut browser = Browser::new(app(ModelGatesAuth::new(impatient)));
    browser.sign_in("/login").await;
    let timed_out = browser.post("/whole").await;
    assert_eq!(
        timed_out.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        timed_out.body
    );
    assert!(timed_out.body.contains("upstream_timeout"));
}

/// A store that never answers at once (as a database): the layer's boxed path.
#[derive(Clone, Default)]
struct Waiting(MemoryStore);

impl KeyStore for Waiting {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        tokio::task::yield_now().await;
        self.0.save(key).await
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        tokio::task::yield_now().await;
        self.0.load(token).await
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        self.0.remove(token).await
    }
}

/// A key revoked on ModelGates signs the user out at the next call: the store forgets it,
/// the cookie is deleted, a browser is sent to sign in again, an API client gets a 401; a
/// fresh sign-in works. Both with a store that answers at once and with one that waits.
#[tokio::test]
async fn a_revoked_key_signs_the_user_out() {
    let store = MemoryStore::default();
    a_revoked_key_signs_the_user_out_with(store.clone(), move || store.len()).await;
    let store = Waiting::default();
    a_revoked_key_signs_the_user_out_with(store.clone(), move || store.0.len()).await;
}

async fn a_revoked_key_signs_the_user_out_with<K: KeyStore>(store: K, len: impl Fn() -> usize) {
    let emu = emulator().await;
    let layer = ModelGatesAuth::new(config(&emu)).with_store(store);
    let mut browser = Browser::new(app(layer));
    browser.sign_in("/login").await;
    assert_eq!(len(), 1);
    emu.revoke_key(&emu.issued_keys().pop().unwrap().key);

    let api = browser
        .send(
            http::Request::get("/usage").header(header::ACCEPT, "application/json"),
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{}", api.body);
    assert!(api.body.contains("key_rejected"), "{}", api.body);
    assert!(
        api.set_cookie("modelgates_key")
            .unwrap()
            .contains("Max-Age=0"),
        "the cookie is deleted"
    );
    assert_eq!(len(), 0, "the store forgot the key");

    browser.sign_in("/login").await;
    emu.revoke_key(&emu.issued_keys().pop().unwrap().key);
    let page = browser.get("/usage?tab=2").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?return_to=%2Fusage%3Ftab%3D2");
    assert!(!browser.cookies.contains_key("modelgates_key"));
    // A signed-out browser form post is sent to sign in too: back to the page the form was
    // on when the Referer is one of the app's pages, else to `/`.
    for (referer, back) in [
        (None, "%2F"),
        (
            Some("http://localhost:3000/chat?room=2#end"),
            "%2Fchat%3Froom%3D2",
        ),
        (Some("https://evil.example/chat"), "%2F"),
        (Some("http://localhost:30000/chat"), "%2F"),
    ] {
        let mut request = http::Request::post("/whole").header(header::ACCEPT, "text/html");
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        let form = browser.send(request, axum::body::Body::empty()).await;
        assert_eq!(
            form.status,
            StatusCode::SEE_OTHER,
            "{referer:?}: {}",
            form.body
        );
        assert_eq!(
            form.location(),
            format!("/login?return_to={back}"),
            "{referer:?}"
        );
    }
    let script = browser
        .send(
            http::Request::post("/whole").header(header::ACCEPT, "*/*"),
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(script.status, StatusCode::UNAUTHORIZED, "{}", script.body);

    browser.sign_in("/login").await;
    assert_eq!(
        browser.post("/whole").await.status,
        StatusCode::OK,
        "a fresh sign-in works"
    );
}

/// Every call to ModelGates carries the app's attribution: the exchange and API calls.
#[tokio::test]
async fn attribution_goes_with_every_call() {
    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    browser.sign_in("/login").await;
    browser.post("/whole").await;
    let titled = config(&emu)
        .with_app_url("https://github.com/me/app")
        .with_app_title("My app");
    let mut other = Browser::new(app(ModelGatesAuth::new(titled)));
    other.sign_in("/login").await;
    other.get("/usage").await;

    let seen = emu.attributions();
    let default = seen
        .iter()
        .find(|r| r.path == "/api/v1/chat/completions")
        .unwrap();
    assert_eq!(
        default.referer.as_deref(),
        Some("http://localhost:3000"),
        "the public URL"
    );
    assert_eq!(default.title, None);
    let exchanges: Vec<_> = seen
        .iter()
        .filter(|r| r.path == "/api/v1/auth/keys")
        .collect();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(
        exchanges[1].referer.as_deref(),
        Some("https://github.com/me/app")
    );
    assert_eq!(exchanges[1].title.as_deref(), Some("My app"));
    for path in ["/api/v1/key", "/api/v1/models"] {
        let record = seen.iter().find(|r| r.path == path).unwrap();
        assert_eq!(record.title.as_deref(), Some("My app"), "{path}");
    }
}

/// The app served on 127.0.0.1, signed in, for the relay tests that need a real connection.
struct Served {
    url: String,
    http: reqwest::Client,
    _app: testing::TestApp,
}

impl Served {
    /// `POST path` on the served app, signed in.
    async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }
}

/// Serves the app with `tweak` applied to its configuration (public URL: where it is served).
async fn serve(emu: &Emulator, tweak: impl FnOnce(ModelGatesConfig) -> ModelGatesConfig) -> Served {
    let app = testing::serve(|url| {
        let config = tweak(
            ModelGatesConfig::new(url, CookieSecret::generate()).with_base_url(emu.base_url()),
        );
        app(ModelGatesAuth::new(config))
    })
    .await
    .unwrap();
    let http = testing::client();
    testing::sign_in(&http, app.url(), emu).await.unwrap();
    Served {
        url: app.url().to_owned(),
        http,
        _app: app,
    }
}

/// The emulator streams a tool call in pieces, as models do: async-openai hands the pieces to
/// the app, and `stream_chat` joins them into one whole call for the browser.
#[tokio::test]
async fn split_tool_call_deltas_are_reassembled() {
    let emu = emulator().await;
    let served = serve(&emu, |config| config).await;
    let joined = served
        .post("/streamed-tool-call")
        .await
        .text()
        .await
        .unwrap();
    let parts: Vec<&str> = joined.split('|').collect();
    assert_eq!(parts[0], "weather");
    assert_eq!(parts[1], r#"{"text":"the weather in Paris"}"#);
    assert!(parts[2].parse::<u32>().unwrap() > 1, "split: {joined}");

    let body = served
        .post("/relayed-tool-call")
        .await
        .text()
        .await
        .unwrap();
    let events = events(&body);
    let tool_calls: Vec<_> = events
        .iter()
        .filter(|(name, _)| name == "tool_call")
        .collect();
    assert_eq!(tool_calls.len(), 1, "one whole call: {body}");
    let calls: serde_json::Value = serde_json::from_str(&tool_calls[0].1).unwrap();
    assert_eq!(calls[0]["id"], "call_emulator_0");
    assert_eq!(calls[0]["function"]["name"], "weather");
    let arguments: serde_json::Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["text"], "the weather in Paris");
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done");
    assert!(done.contains("tool_calls"), "{done}");
}

/// Events of an SSE body: (event name, data).
fn events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("data:")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim_start().to_owned())
                    .unwrap_or_default()
            };
            (field("event:"), field("data:"))
        })
        .collect()
}

#[tokio::test]
async fn the_relay_streams_deltas_then_done() {
    let emu = emulator().await;
    let served = serve(&emu, |config| config).await;
    let response = served.post("/relay").await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let events = events(&body);
    let (last_name, last_data) = events.last().unwrap().clone();
    assert_eq!(last_name, "done");
    let done: serde_json::Value = serde_json::from_str(&last_data).unwrap();
    assert_eq!(done["finish_reason"], "stop");
    assert_eq!(
        done["usage"]["total_tokens"], 9,
        "3 prompt and 6 completion tokens"
    );
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|(name, data)| {
            assert_eq!(name, "", "text deltas are unnamed events");
            let delta: serde_json::Value = serde_json::from_str(data).unwrap();
            delta["delta"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "[openai/gpt-5.2] You said: alpha beta gamma");
}

/// A stream that goes silent ends with an `idle_timeout` error event.
#[tokio::test]
async fn a_stalled_stream_ends_with_an_idle_timeout_event() {
    let emu = emulator().await;
    let served = serve(&emu, |config| {
        config.with_stream_idle_timeout(Duration::from_millis(400))
    })
    .await;
    emu.inject_once(Endpoint::Chat, Fault::StallStream);
    let body = served.post("/relay").await.text().await.unwrap();
    let events = events(&body);
    assert!(
        events.iter().any(|(name, _)| name.is_empty()),
        "the first delta: {body}"
    );
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error", "{body}");
    let error: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(error["code"], "idle_timeout", "{body}");
}

/// A browser that goes away stops the upstream stream: ModelGates sees the connection close
/// before the answer's end.
#[tokio::test]
async fn a_client_disconnect_stops_the_upstream_stream() {
    let emu = emulator().await;
    let served = serve(&emu, |config| config).await;
    emu.inject_once(
        Endpoint::Chat,
        Fault::SlowStream(Duration::from_millis(200)),
    );
    let mut response = served.post("/relay").await;
    let mut received = String::new();
    while !received.contains("\"delta\"") {
        let chunk = response.chunk().await.unwrap().expect("a first delta");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(emu.streams_cancelled(), 0);
    drop(response);
    for _ in 0..1000 {
        if emu.streams_cancelled() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        emu.streams_cancelled(),
        1,
        "the upstream stream was dropped"
    );
}
