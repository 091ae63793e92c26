//! Every answer of the emulator checked against ModelGates' published schema: the responses of
//! OpenRouter's OpenAPI document (which ModelGates follows) for the routes the emulator serves,
//! vendored in `tests/schema/` with its source and date. Each route is called for each of its
//! answers and with each fault the emulator can inject; an answer must match the schema of its
//! route and status (a status the route does not list: the document's error schema for that
//! status). Faults that exist to send a broken answer (`MalformedJson`, `MissingKey`,
//! `DropConnection`) must *not* match, or they would test nothing.
//!
//! The crate's own types read the published example answers here too: `KeyInfo` and
//! `ModelInfo` parse every field of them, and ignore fields they do not know.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use modelgates_axum::oauth_core::api::{KeyInfo, ModelInfo};
use modelgates_axum::oauth_core::{ChallengeMethod, Pkce};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};

/// The vendored part of the published document.
const PUBLISHED: &str = include_str!("../../schema/openrouter-openapi-subset.json");

fn published() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::from_str(PUBLISHED).expect("the vendored schema is JSON"))
}

/// The schema of each status code's error answer, for statuses a route does not list.
fn error_schema(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UnauthorizedResponse",
        402 => "PaymentRequiredResponse",
        403 => "ForbiddenResponse",
        404 => "NotFoundResponse",
        408 => "RequestTimeoutResponse",
        413 => "PayloadTooLargeResponse",
        422 => "UnprocessableEntityResponse",
        429 => "TooManyRequestsResponse",
        500 => "InternalServerResponse",
        502 => "BadGatewayResponse",
        503 => "ServiceUnavailableResponse",
        524 => "EdgeNetworkTimeoutResponse",
        529 => "ProviderOverloadedResponse",
        // 400, 405 and any other client error share the one shape.
        _ => "BadRequestResponse",
    }
}

/// A JSON pointer's escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The validator of the schema at `pointer` (a `#/…` reference into the vendored document),
/// built once.
fn validator(pointer: &str) -> &'static jsonschema::Validator {
    static BUILT: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    built.entry(pointer.to_owned()).or_insert_with(|| {
        let document = published();
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": pointer,
            "paths": document["paths"],
            "components": document["components"],
        });
        let validator = jsonschema::draft202012::new(&root)
            .unwrap_or_else(|error| panic!("the schema at {pointer} compiles: {error}"));
        Box::leak(Box::new(validator))
    })
}

/// The pointer of the schema an answer of `route` with `status` must match.
fn answer_schema(route: &str, method: &Method, status: StatusCode, media: &str) -> String {
    let path = route.split('?').next().unwrap_or(route);
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let method = method.as_str().to_ascii_lowercase();
    let listed = published()["paths"][path][&method]["responses"][status.as_str()]["content"]
        [media]["schema"]
        .is_object();
    if listed {
        format!(
            "#/paths/{}/{method}/responses/{}/content/{}/schema",
            escape(path),
            status.as_str(),
            escape(media)
        )
    } else {
        assert!(
            !status.is_success(),
            "{route} answers {status}, which the schema does not list"
        );
        format!("#/components/schemas/{}", error_schema(status))
    }
}

/// The errors of `instance` against the schema at `pointer`, one per line; empty when valid.
fn errors(pointer: &str, instance: &Value) -> String {
    validator(pointer)
        .iter_errors(instance)
        .map(|error| format!("  {} at {}\n", error, error.instance_path()))
        .collect()
}

#[track_caller]
fn assert_matches(pointer: &str, instance: &Value, what: &str) {
    let errors = errors(pointer, instance);
    assert!(
        errors.is_empty(),
        "{what} does not match {pointer}:\n{errors}{instance:#}"
    );
}

/// One call to the emulator, as a test sees it.
struct Call<'a> {
    emulator: &'a Emulator,
    client: &'a Client,
    method: Method,
    route: &'a str,
    key: Option<&'a str>,
    body: Option<Value>,
}

impl Call<'_> {
    async fn send(&self) -> Response {
        self.try_send().await.expect("the emulator answers")
    }

    async fn try_send(&self) -> reqwest::Result<Response> {
        let mut request = self.client.request(
            self.method.clone(),
            format!("{}{}", self.emulator.base_url(), self.route),
        );
        if let Some(key) = self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        request.send().await
    }

    /// Sends the call and checks its answer (JSON, or each event of a stream) against the
    /// schema; returns the status and the JSON answer (`Null` for a stream).
    async fn checked(&self, what: &str) -> (StatusCode, Value) {
        let response = self.send().await;
        let status = response.status();
        let streamed = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        if streamed {
            let text = response.text().await.expect("a whole stream");
            check_stream(&text, what);
            return (status, Value::Null);
        }
        let body: Value = response.json().await.expect("a JSON answer");
        let pointer = answer_schema(self.route, &self.method, status, "application/json");
        assert_matches(&pointer, &body, &format!("{what} ({status})"));
        (status, body)
    }
}

/// Each event of a stream against the published `ChatStreamingResponse`; returns the chunks.
fn check_stream(text: &str, what: &str) -> Vec<Value> {
    let pointer = answer_schema(
        "/api/v1/chat/completions",
        &Method::POST,
        StatusCode::OK,
        "text/event-stream",
    );
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("each event is JSON"))
        .collect();
    assert!(!chunks.is_empty(), "{what}: a stream with no chunk");
    for chunk in &chunks {
        assert_matches(&pointer, &json!({ "data": chunk }), what);
    }
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "{what}: ends with [DONE]"
    );
    chunks
}

/// A key, from a code approved with an S256 challenge, and the exchange's answer (checked).
async fn sign_in(emulator: &Emulator, client: &Client) -> (String, Value) {
    let pkce = Pkce::generate(ChallengeMethod::S256);
    let auth = format!(
        "{}/auth?callback_url=https%3A%2F%2Fapp.example%2Fcallback&code_challenge={}&code_challenge_method=S256&key_label=schema&limit=5",
        emulator.base_url(),
        pkce.challenge().as_str()
    );
    let callback = emulator.approve(&auth).expect("a valid /auth URL");
    let code = callback
        .query_pairs()
        .find(|(name, _)| name == "code")
        .expect("a code")
        .1
        .into_owned();
    let (status, answer) = Call::exchange(emulator, client)
        .with_body(json!({
            "code": code,
            "code_verifier": pkce.verifier().expose_secret(),
            "code_challenge_method": "S256"
        }))
        .checked("the exchange")
        .await;
    assert_eq!(status, StatusCode::OK);
    (answer["key"].as_str().expect("a key").to_owned(), answer)
}

impl<'a> Call<'a> {
    fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn with_key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    fn exchange(emulator: &'a Emulator, client: &'a Client) -> Self {
        Self {
            emulator,
            client,
            method: Method::POST,
            route: "/api/v1/auth/keys",
            key: None,
            body: None,
        }
    }

    fn get(emulator: &'a Emulator, client: &'a Client, route: &'a str) -> Self {
        Self {
            emulator,
            client,
            method: Method::GET,
            route,
            key: None,
            body: None,
        }
    }

    fn chat(emulator: &'a Emulator, client: &'a Client, key: &'a str, body: Value) -> Self {
        Self {
            emulator,
            client,
            method: Method::POST,
            route: "/api/v1/chat/completions",
            key: Some(key),
            body: Some(body),
        }
    }
}

fn said(text: &str, stream: bool) -> Value {
    json!({"model": "openai/gpt-5.2", "stream": stream, "messages": [{"role": "user", "content": text}]})
}

fn with_tool(stream: bool) -> Value {
    json!({
        "model": "openai/gpt-5.2",
        "stream": stream,
        "messages": [{"role": "user", "content": "look this up"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    })
}

#[tokio::test]
async fn the_key_exchange_answers_in_the_published_schema() {
    let emulator = Emulator::builder()
        .key_lifetime(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let client = Client::new();
    let (_, answer) = sign_in(&emulator, &client).await;
    assert!(answer["user_id"].is_string());
    assert!(answer["expires_at"].is_string(), "{answer}");

    let refusals = [
        (
            json!({"code": "made-up", "code_verifier": "x".repeat(43)}),
            403,
        ),
        (json!({"no": "code"}), 400),
    ];
    for (body, status) in refusals {
        let (got, _) = Call::exchange(&emulator, &client)
            .with_body(body.clone())
            .checked(&format!("the exchange of {body}"))
            .await;
        assert_eq!(got.as_u16(), status, "{body}");
    }
    let mut wrong_method = Call::exchange(&emulator, &client);
    wrong_method.method = Method::GET;
    let (status, _) = wrong_method.checked("GET on the exchange").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn completions_whole_and_streamed_answer_in_the_published_schema() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let client = Client::new();
    let (key, _) = sign_in(&emulator, &client).await;

    let (status, whole) = Call::chat(&emulator, &client, &key, said("hello there", false))
        .checked("a whole completion")
        .await;
    assert_eq!(status, StatusCode::OK);
    let message = &whole["choices"][0]["message"];
    assert!(
        message.get("tool_calls").is_none(),
        "no tool call: the field is left out, not null: {message}"
    );
    assert!(whole["usage"]["cost"].as_f64().unwrap() > 0.0);

    let (_, called) = Call::chat(&emulator, &client, &key, with_tool(false))
        .checked("a whole tool call")
        .await;
    assert_eq!(called["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        called["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "lookup"
    );

    let tool_result = json!({
        "model": "openai/gpt-5.2",
        "messages": [
            {"role": "user", "content": "look this up"},
            {"role": "assistant", "content": null, "tool_calls": called["choices"][0]["message"]["tool_calls"]},
            {"role": "tool", "tool_call_id": "call_emulator_0", "content": "42"}
        ]
    });
    Call::chat(&emulator, &client, &key, tool_result)
        .checked("an answer after a tool result")
        .await;

    for (body, what) in [
        (said("hello there", true), "a streamed completion"),
        (with_tool(true), "a streamed tool call"),
    ] {
        let text = Call::chat(&emulator, &client, &key, body)
            .send()
            .await
            .text()
            .await
            .unwrap();
        let chunks = check_stream(&text, what);
        for chunk in &chunks[..chunks.len() - 1] {
            assert!(
                chunk.get("usage").is_none(),
                "{what}: usage only at the end"
            );
            assert!(chunk.get("system_fingerprint").is_none(), "{what}: {chunk}");
        }
        assert!(chunks.last().unwrap()["usage"]["total_tokens"].is_u64());
    }

    let (status, _) = Call::chat(&emulator, &client, &key, json!({"model": "m"}))
        .checked("a completion without messages")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = Call::chat(&emulator, &client, "sk-mg-v1-unknown", said("hi", false))
        .checked("a completion with an unknown key")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_money_refusals_answer_in_the_published_schema() {
    let emulator = Emulator::builder()
        .auto_approve(true)
        .rate_limit(2, Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let client = Client::new();

    let (key, answer) = sign_in(&emulator, &client).await;
    emulator.add_usage(&key, 100.0);
    let (status, _) = Call::chat(&emulator, &client, &key, said("hi", false))
        .checked("a key past its limit")
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);

    emulator.set_credits(answer["user_id"].as_str().unwrap(), 0.0);
    let (other, _) = sign_in(&emulator, &client).await;
    emulator.set_credits(&emulator.key(&other).unwrap().user_id, 0.0);
    let (status, _) = Call::chat(&emulator, &client, &other, said("hi", false))
        .checked("an account without credits")
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);

    let (limited, _) = sign_in(&emulator, &client).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _) = Call::chat(&emulator, &client, &limited, said("hi", false))
            .checked("a rate-limited key")
            .await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn key_info_and_models_answer_in_the_published_schema() {
    let emulator = Emulator::builder()
        .auto_approve(true)
        .rate_limit(100, Duration::from_secs(10))
        .key_lifetime(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let client = Client::new();
    let (key, _) = sign_in(&emulator, &client).await;

    let (status, info) = Call::get(&emulator, &client, "/api/v1/key")
        .with_key(&key)
        .checked("the key's info")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["data"]["rate_limit"]["requests"], 100);
    let parsed: KeyInfo = serde_json::from_value(info["data"].clone()).unwrap();
    assert_eq!(parsed.label, "schema");
    assert_eq!(parsed.limit, Some(5.0));
    assert!(parsed.expires_at.is_some());
    assert_eq!(parsed.allowed_data_regions, ["global"]);

    let (status, _) = Call::get(&emulator, &client, "/api/v1/key")
        .with_key("sk-mg-v1-unknown")
        .checked("the info of an unknown key")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, all) = Call::get(&emulator, &client, "/api/v1/models")
        .checked("the models")
        .await;
    assert_eq!(all["total_count"], modelgates_emulator::MODELS.len());
    assert_eq!(all["links"]["next"], Value::Null);
    let models: Vec<ModelInfo> = serde_json::from_value(all["data"].clone()).unwrap();
    assert_eq!(models.len(), modelgates_emulator::MODELS.len());
    assert!(
        models[0]
            .pricing
            .as_ref()
            .unwrap()
            .prompt_per_token()
            .unwrap()
            > 0.0
    );

    let (_, first) = Call::get(&emulator, &client, "/api/v1/models?offset=0&limit=1")
        .checked("a page of the models")
        .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    assert_eq!(first["links"]["next"], "/api/v1/models?offset=1&limit=1");
    let (status, _) = Call::get(&emulator, &client, "/api/v1/models?limit=0")
        .checked("a page of no models")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = Call::get(&emulator, &client, "/api/v1/models/user")
        .with_key(&key)
        .checked("the user's models")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = Call::get(&emulator, &client, "/api/v1/models/user")
        .checked("the user's models without a key")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Every fault that answers instead of the endpoint, on every route it can be injected into.
fn answering_faults() -> Vec<Fault> {
    let mut faults: Vec<Fault> = [
        400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503, 524, 529,
    ]
    .into_iter()
    .map(Fault::Status)
    .collect();
    faults.extend([
        Fault::InsufficientCredits,
        Fault::KeyLimitExceeded,
        Fault::KeyLimitSpent,
        Fault::GuardrailBlocked,
        Fault::ModerationFlagged(vec!["harassment".into()]),
        Fault::RateLimited(Duration::from_secs(2)),
        Fault::Unavailable(Duration::from_secs(3)),
        Fault::Delay(Duration::from_millis(1)),
    ]);
    faults
}

#[tokio::test]
async fn every_injected_fault_answers_in_the_published_schema_or_is_broken_on_purpose() {
    let emulator = Emulator::builder()
        .auto_approve(true)
        .key_limit(None)
        .start()
        .await
        .unwrap();
    let client = Client::new();
    let (key, _) = sign_in(&emulator, &client).await;
    let chat = said("hi", false);
    let calls = [
        (
            Endpoint::Keys,
            Call::exchange(&emulator, &client).with_body(json!({"code": "x"})),
        ),
        (Endpoint::Chat, Call::chat(&emulator, &client, &key, chat)),
        (
            Endpoint::KeyInfo,
            Call::get(&emulator, &client, "/api/v1/key").with_key(&key),
        ),
        (
            Endpoint::Models,
            Call::get(&emulator, &client, "/api/v1/models"),
        ),
    ];
    for (endpoint, call) in &calls {
        for fault in answering_faults() {
            emulator.inject_once(*endpoint, fault.clone());
            call.checked(&format!("{endpoint:?} with {fault:?}")).await;
        }
        for fault in [
            Fault::MalformedJson,
            Fault::MissingKey,
            Fault::DropConnection,
        ] {
            emulator.inject_once(*endpoint, fault.clone());
            let body = match call.try_send().await {
                Ok(response) => response.json::<Value>().await,
                Err(error) => Err(error),
            };
            let matched = match body {
                Ok(body) => {
                    let pointer =
                        answer_schema(call.route, &call.method, StatusCode::OK, "application/json");
                    errors(&pointer, &body).is_empty()
                }
                Err(_) => false,
            };
            assert!(
                !matched,
                "{endpoint:?} with {fault:?} is meant to break the schema"
            );
        }
    }

    // /auth is a page, not part of the API document: its injected errors keep the error shape.
    for fault in answering_faults() {
        if matches!(fault, Fault::Delay(_)) {
            continue;
        }
        emulator.inject_once(Endpoint::Auth, fault.clone());
        let response = client
            .get(format!("{}/auth", emulator.base_url()))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let pointer = format!("#/components/schemas/{}", error_schema(status));
        assert_matches(&pointer, &body, &format!("/auth with {fault:?}"));
    }
}

#[tokio::test]
async fn streams_that_fail_midway_or_are_paced_answer_in_the_published_schema() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let client = Client::new();
    let (key, _) = sign_in(&emulator, &client).await;
    let mut faults: Vec<Fault> = [402, 403, 429, 502]
        .into_iter()
        .map(Fault::StreamFailsMidway)
        .collect();
    faults.extend([
        Fault::StreamFlaggedMidway,
        Fault::SlowStream(Duration::from_millis(1)),
    ]);
    for fault in faults {
        emulator.inject_once(Endpoint::Chat, fault.clone());
        let text = Call::chat(&emulator, &client, &key, said("one two three", true))
            .send()
            .await
            .text()
            .await
            .unwrap();
        let chunks = check_stream(&text, &format!("a stream with {fault:?}"));
        if matches!(
            fault,
            Fault::StreamFailsMidway(_) | Fault::StreamFlaggedMidway
        ) {
            let last = chunks.last().unwrap();
            assert!(last["error"]["code"].is_u64(), "{last}");
            assert!(
                last["error"]["metadata"]["error_type"].is_string(),
                "{last}"
            );
        }
    }

    // A stalled stream: the chunks that do arrive match.
    emulator.inject_once(Endpoint::Chat, Fault::StallStream);
    let mut stalled = Call::chat(&emulator, &client, &key, said("one two three", true))
        .send()
        .await;
    let pointer = answer_schema(
        "/api/v1/chat/completions",
        &Method::POST,
        StatusCode::OK,
        "text/event-stream",
    );
    let mut seen = String::new();
    while seen.matches("data: ").count() < 2 {
        let piece = stalled.chunk().await.unwrap().expect("the first chunks");
        seen.push_str(std::str::from_utf8(&piece).unwrap());
    }
    for data in seen.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert_matches(&pointer, &json!({ "data": chunk }), "a stalled stream");
    }
}

#[test]
fn the_schema_refuses_what_the_official_typescript_sdk_refused() {
    // What the emulator answered before, which @openrouter/sdk 1.3.19 refused: this test
    // would have caught each.
    let chat = "#/components/schemas/ChatResult";
    let whole = json!({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "system_fingerprint": null,
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "hi", "tool_calls": null}}]
    });
    assert!(!errors(chat, &whole).is_empty(), "tool_calls: null");
    let chunk = |extra: Value| {
        let mut chunk = json!({
            "id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]
        });
        chunk
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "data": chunk })
    };
    let stream = "#/components/schemas/ChatStreamingResponse";
    assert!(errors(stream, &chunk(json!({}))).is_empty());
    assert!(!errors(stream, &chunk(json!({"system_fingerprint": null}))).is_empty());
    assert!(!errors(stream, &chunk(json!({"usage": null}))).is_empty());
    let key = answer_schema(
        "/api/v1/key",
        &Method::GET,
        StatusCode::OK,
        "application/json",
    );
    let before = json!({"data": {
        "label": "l", "limit": null, "limit_remaining": null, "limit_reset": null, "usage": 0,
        "usage_daily": 0, "usage_weekly": 0, "usage_monthly": 0, "is_free_tier": false,
        "expires_at": null, "include_byok_in_limit": false
    }});
    let missing = errors(&key, &before);
    let named_by_the_sdk = [
        "allowed_data_regions",
        "byok_usage",
        "byok_usage_daily",
        "byok_usage_weekly",
        "byok_usage_monthly",
        "creator_user_id",
        "free_model_daily_requests",
        "is_management_key",
        "is_provisioning_key",
        "organization_id",
        "rate_limit",
        "workspace_id",
    ];
    for field in named_by_the_sdk {
        assert!(
            missing.contains(&format!("\"{field}\" is a required property")),
            "{field} is required:\n{missing}"
        );
    }
}

#[test]
fn the_crate_reads_every_field_of_the_published_examples() {
    let document = published();
    let key_example = &document["paths"]["/key"]["get"]["responses"]["200"]["content"]["application/json"]
        ["example"]["data"];
    let info: KeyInfo = serde_json::from_value(key_example.clone()).unwrap();
    assert_eq!(info.label, key_example["label"]);
    assert_eq!(info.limit, Some(100.0));
    assert_eq!(info.limit_remaining, Some(74.5));
    assert_eq!(info.limit_reset.as_deref(), Some("monthly"));
    assert_eq!(info.usage_monthly, Some(25.5));
    assert_eq!(info.byok_usage_weekly, Some(17.38));
    assert_eq!(info.expires_at.as_deref(), Some("2027-12-31T23:59:59Z"));
    assert_eq!(
        info.creator_user_id.as_deref(),
        key_example["creator_user_id"].as_str()
    );
    assert!(!info.is_management_key);

    let model_example = &document["components"]["schemas"]["Model"]["example"];
    let model: ModelInfo = serde_json::from_value(model_example.clone()).unwrap();
    assert_eq!(model.id, "openai/gpt-4");
    assert_eq!(model.canonical_slug.as_deref(), Some("openai/gpt-4"));
    assert_eq!(model.created, Some(1_692_901_234));
    assert_eq!(model.context_length, Some(8192));
    let pricing = model.pricing.as_ref().unwrap();
    assert_eq!(pricing.prompt, "0.00003");
    assert_eq!(pricing.completion_per_token(), Some(0.00006));
    assert_eq!(pricing.image.as_deref(), Some("0"));
    let architecture = model.architecture.as_ref().unwrap();
    assert_eq!(architecture.modality.as_deref(), Some("text->text"));
    assert_eq!(architecture.tokenizer.as_deref(), Some("GPT"));
    assert_eq!(architecture.instruct_type.as_deref(), Some("chatml"));
    let top = model.top_provider.unwrap();
    assert_eq!(top.max_completion_tokens, Some(4096));
    assert!(top.is_moderated);
    assert_eq!(
        model.supported_parameters,
        ["temperature", "top_p", "max_tokens"]
    );
    assert!(model.supported_voices.is_empty());
    assert!(model.per_request_limits.is_none());
    assert_eq!(
        model.reasoning.as_ref().unwrap().default_effort.as_deref(),
        Some("medium")
    );
    assert_eq!(
        model.links.as_ref().unwrap().details,
        model_example["links"]["details"]
    );

    let list_example = &document["components"]["schemas"]["ModelsListResponse"]["example"];
    let models: Vec<ModelInfo> = serde_json::from_value(list_example["data"].clone()).unwrap();
    assert_eq!(models.len(), 1);

    // A later revision's fields are ignored, not refused.
    let mut future = key_example.clone();
    future["spend_alerts"] = json!([{"at": 50}]);
    future["label"] = json!("still read");
    let info: KeyInfo = serde_json::from_value(future).unwrap();
    assert_eq!(info.label, "still read");
    let mut future = model_example.clone();
    future["architecture"]["thinking_modes"] = json!(["deep"]);
    future["pricing"]["per_second"] = json!("0.1");
    assert!(serde_json::from_value::<ModelInfo>(future).is_ok());
}
