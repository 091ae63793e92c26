//! The emulator's behaviour over real HTTP on 127.0.0.1: each documented rule, the
//! concurrency rule, fault injection and purging.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use modelgates_emulator::{Emulator, Endpoint, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "http://localhost:3000/callback";

/// A client that does not follow redirects.
fn http() -> reqwest::Client {
    // Per thread, so that no pooled connection outlives the test runtime that opened it
    // (a later test's server may reuse the port); building one per request is slow.
    thread_local! {
        static CLIENT: reqwest::Client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
    }
    CLIENT.with(Clone::clone)
}

fn auth_url(emu: &Emulator, callback: &str, challenge: Option<(&str, &str)>) -> String {
    let mut url = url::Url::parse(&format!("{}/auth", emu.base_url())).unwrap();
    url.query_pairs_mut().append_pair("callback_url", callback);
    if let Some((challenge, method)) = challenge {
        url.query_pairs_mut()
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", method);
    }
    url.into()
}

fn location(response: &reqwest::Response) -> url::Url {
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs /auth on an auto-approving emulator and returns the code.
async fn code_for(emu: &Emulator, challenge: Option<(&str, &str)>) -> String {
    let response = http()
        .get(auth_url(emu, CALLBACK, challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    param(&location(&response), "code").expect("a code in the redirect")
}

async fn exchange(emu: &Emulator, body: Value) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{}/api/v1/auth/keys", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap()
}

#[tokio::test]
async fn home_page_says_what_it_is() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let page = http()
        .get(emu.base_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("ModelGates emulator"));
}

#[tokio::test]
async fn auth_rejects_bad_callbacks_and_challenges_with_400() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let cases = [
        auth_url(&emu, "http://app.example/cb", None),
        auth_url(&emu, "ftp://localhost/cb", None),
        auth_url(&emu, "not a url", None),
        auth_url(&emu, CALLBACK, Some(("short", "S256"))),
        auth_url(&emu, CALLBACK, Some((CHALLENGE, "S512"))),
        format!("{}/auth?code_challenge={CHALLENGE}", emu.base_url()),
        format!(
            "{}/auth?callback_url={CALLBACK}&code_challenge_method=S256",
            emu.base_url()
        ),
    ];
    for url in cases {
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Bad authorization request")
        );
    }
    assert!(emu.issued_codes().is_empty());
}

#[tokio::test]
async fn consent_page_approve_keeps_the_callback_query() {
    let emu = Emulator::builder().start().await.unwrap();
    let callback = "https://app.example/cb?from=nav";
    let response = http()
        .get(auth_url(&emu, callback, Some((CHALLENGE, "S256"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("https://app.example"),
        "names the app's origin"
    );
    assert!(page.contains(r#"value="approve""#) && page.contains(r#"value="deny""#));
    let consent_id = modelgates_emulator::consent_id(&page).unwrap();

    let approved = http()
        .post(format!("{}/auth/consent", emu.base_url()))
        .form(&[("consent_id", consent_id), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let to = location(&approved);
    assert_eq!(to.host_str(), Some("app.example"));
    assert_eq!(param(&to, "from").as_deref(), Some("nav"));
    assert_eq!(param(&to, "code"), emu.issued_codes().first().cloned());

    // A consent is decided once.
    let again = http()
        .post(format!("{}/auth/consent", emu.base_url()))
        .form(&[("consent_id", consent_id), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn consent_page_deny_redirects_with_access_denied() {
    let emu = Emulator::builder().start().await.unwrap();
    let page = http()
        .get(auth_url(&emu, CALLBACK, None))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent_id = modelgates_emulator::consent_id(&page).unwrap();
    let denied = http()
        .post(format!("{}/auth/consent", emu.base_url()))
        .form(&[("consent_id", consent_id), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let to = location(&denied);
    assert_eq!(param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&to, "code"), None);
    assert!(emu.issued_codes().is_empty());
}

#[tokio::test]
async fn s256_exchange_succeeds_once() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let code = code_for(&emu, Some((CHALLENGE, "S256"))).await;
    let body = json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"});
    let (status, answer) = exchange(&emu, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let key = answer["key"].as_str().unwrap();
    assert!(key.starts_with("sk-mg-v1-"));
    assert!(answer["user_id"].as_str().unwrap().starts_with("user_"));
    assert_eq!(emu.issued_keys()[0].key, key);
    assert_eq!(emu.issued_keys()[0].code, code);
    assert_eq!(emu.last_exchange().unwrap().json, Some(body.clone()));

    let (status, answer) = exchange(&emu, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a code is single-use");
    assert_eq!(error_message(&answer), "Invalid code or code_verifier");
    assert_eq!(answer["error"]["code"], 403);
    assert_eq!(emu.exchange_count(), 2);
}

#[tokio::test]
async fn plain_and_no_challenge_modes_work() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let plain = code_for(&emu, Some((VERIFIER, "plain"))).await;
    let (status, _) = exchange(
        &emu,
        json!({"code": plain, "code_verifier": VERIFIER, "code_challenge_method": "plain"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let none = code_for(&emu, None).await;
    let (status, _) = exchange(&emu, json!({"code": none})).await;
    assert_eq!(status, StatusCode::OK);
}

/// RFC 9700 §2.1.1: a verifier for a code issued without a challenge is refused, so an
/// attacker's challenge-less code cannot be redeemed inside a victim's PKCE flow. The lenient
/// switch restores the permissive behaviour some providers have.
#[tokio::test]
async fn a_verifier_for_a_code_without_challenge_is_refused_unless_lenient() {
    let strict = Emulator::start_auto_approve().await.unwrap();
    let code = code_for(&strict, None).await;
    let body = json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"});
    let (status, answer) = exchange(&strict, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_message(&answer), "Invalid code or code_verifier");

    let lenient = Emulator::builder()
        .auto_approve(true)
        .lenient_pkce(true)
        .start()
        .await
        .unwrap();
    let code = code_for(&lenient, None).await;
    let body = json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"});
    let (status, _) = exchange(&lenient, body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the lenient provider ignores the verifier"
    );
}

#[tokio::test]
async fn documented_errors() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let s256 = Some((CHALLENGE, "S256"));

    let (status, body) = exchange(
        &emu,
        json!({"code": "nope", "code_verifier": VERIFIER, "code_challenge_method": "S256"}),
    )
    .await;
    assert_eq!(
        (status, error_message(&body)),
        (StatusCode::FORBIDDEN, "Invalid code or code_verifier")
    );

    let code = code_for(&emu, s256).await;
    let (status, body) = exchange(
        &emu,
        json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "plain"}),
    )
    .await;
    assert_eq!(
        (status, error_message(&body)),
        (StatusCode::BAD_REQUEST, "Invalid code_challenge_method")
    );

    let code = code_for(&emu, s256).await;
    let (status, body) = exchange(&emu, json!({"code": code, "code_verifier": VERIFIER})).await;
    assert_eq!(
        (status, error_message(&body)),
        (StatusCode::BAD_REQUEST, "Invalid code_challenge_method")
    );

    let code = code_for(&emu, s256).await;
    let wrong = URL_SAFE_NO_PAD.encode(Sha256::digest(b"another"));
    let (status, _) = exchange(
        &emu,
        json!({"code": code, "code_verifier": wrong, "code_challenge_method": "S256"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "mismatched verifier");

    let code = code_for(&emu, s256).await;
    let (status, _) = exchange(&emu, json!({"code": code, "code_challenge_method": "S256"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "missing verifier");

    let code = code_for(&emu, s256).await;
    let (status, _) = exchange(
        &emu,
        json!({"code": code, "code_verifier": "bad verifier!", "code_challenge_method": "S256"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "malformed verifier");

    let response = http()
        .post(format!("{}/api/v1/auth/keys", emu.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(emu.last_exchange().unwrap().json, None);

    for method in [reqwest::Method::GET, reqwest::Method::PUT] {
        let response = http()
            .request(method, format!("{}/api/v1/auth/keys", emu.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_message(&body), "Method Not Allowed");
    }
}

#[tokio::test]
async fn expired_codes_are_rejected_and_purged() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .code_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let mut last = String::new();
    for _ in 0..50 {
        last = code_for(&emu, Some((CHALLENGE, "S256"))).await;
    }
    assert_eq!(emu.pending_code_count(), 0, "expired codes are purged");
    let (status, _) = exchange(
        &emu,
        json!({"code": last, "code_verifier": VERIFIER, "code_challenge_method": "S256"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn eight_concurrent_redemptions_of_one_code_yield_one_key() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    for _ in 0..5 {
        let code = code_for(&emu, Some((CHALLENGE, "S256"))).await;
        let body =
            json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"});
        let attempts = (0..8).map(|_| exchange(&emu, body.clone()));
        let statuses: Vec<_> = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::FORBIDDEN)
                .count(),
            7,
            "{statuses:?}"
        );
    }
}

async fn issued_key(emu: &Emulator) -> String {
    let code = code_for(emu, None).await;
    let (_, body) = exchange(emu, json!({"code": code})).await;
    body["key"].as_str().unwrap().to_owned()
}

async fn chat(emu: &Emulator, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = http()
        .post(format!("{}/api/v1/chat/completions", emu.base_url()))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn chat_needs_an_issued_key_and_answers_deterministically() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let body =
        json!({"model": "openai/gpt-5.2", "messages": [{"role": "user", "content": "Hello!"}]});

    for key in [None, Some("sk-mg-v1-forged")] {
        let response = chat(&emu, key, body.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], 401);
    }

    let key = issued_key(&emu).await;
    let first: Value = chat(&emu, Some(&key), body.clone())
        .await
        .json()
        .await
        .unwrap();
    let second: Value = chat(&emu, Some(&key), body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first, second, "deterministic");
    assert_eq!(
        first["choices"][0]["message"]["content"],
        "[openai/gpt-5.2] You said: Hello!"
    );
    assert_eq!(first["choices"][0]["message"]["role"], "assistant");
    assert_eq!(first["usage"]["total_tokens"], 5);

    let bad = chat(&emu, Some(&key), json!({"model": "m", "messages": []})).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    emu.revoke_key(&key);
    assert_eq!(
        chat(&emu, Some(&key), body).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn chat_streams_server_sent_events() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key = issued_key(&emu).await;
    let response = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two"}]}),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with(": MODELGATES PROCESSING\n\n"),
        "a keep-alive comment first"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    let mut content = String::new();
    let mut last = Value::Null;
    for event in text
        .split("\n\n")
        .filter(|e| !e.is_empty() && *e != "data: [DONE]" && !e.starts_with(':'))
    {
        let chunk: Value = serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        content.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
        last = chunk;
    }
    assert_eq!(content, "[m] You said: one two");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["total_tokens"], 7);
}

#[tokio::test]
async fn tools_are_called_and_their_results_answered() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key = issued_key(&emu).await;
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let call: Value = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "tools": tools, "messages": [{"role": "user", "content": "weather"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let choice = &call["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let tool_call = &choice["message"]["tool_calls"][0];
    assert_eq!(tool_call["function"]["name"], "lookup");
    assert_eq!(tool_call["function"]["arguments"], r#"{"text":"weather"}"#);
    let answer: Value = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "tools": tools, "messages": [
            {"role": "user", "content": "weather"},
            {"role": "assistant", "content": null, "tool_calls": choice["message"]["tool_calls"]},
            {"role": "tool", "tool_call_id": tool_call["id"], "content": "sunny"}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "[m] The tool said: sunny"
    );
}

/// A streamed tool call comes as real providers send it: the name first with empty arguments,
/// then the arguments in pieces that name only the call's index.
#[tokio::test]
async fn a_streamed_tool_call_is_split_into_name_and_argument_pieces() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key = issued_key(&emu).await;
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let text = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "stream": true, "tools": tools,
               "messages": [{"role": "user", "content": "the weather in Paris"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let deltas: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str::<Value>(data).unwrap())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .collect();
    assert!(deltas.len() > 2, "a header and several pieces: {deltas:?}");
    assert_eq!(deltas[0]["function"]["name"], "lookup");
    assert_eq!(deltas[0]["function"]["arguments"], "");
    assert_eq!(deltas[0]["id"], "call_emulator_0");
    let mut arguments = String::new();
    for piece in &deltas[1..] {
        assert_eq!(piece["index"], 0);
        assert!(piece.get("id").is_none() && piece["function"].get("name").is_none());
        let part = piece["function"]["arguments"].as_str().unwrap();
        assert!(part.chars().count() <= 8, "{part:?}");
        arguments.push_str(part);
    }
    assert_eq!(arguments, r#"{"text":"the weather in Paris"}"#);
}

#[tokio::test]
async fn key_info_counts_usage_and_models_are_listed() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key = issued_key(&emu).await;
    let info = |key: String| {
        let emu_url = emu.base_url().to_owned();
        async move {
            http()
                .get(format!("{emu_url}/api/v1/key"))
                .bearer_auth(key)
                .header("http-referer", "https://app.example")
                .header("x-title", "Example")
                .send()
                .await
                .unwrap()
        }
    };
    let before: Value = info(key.clone()).await.json().await.unwrap();
    assert_eq!(before["data"]["usage"], 0.0);
    assert_eq!(before["data"]["limit"], 10.0);
    chat(
        &emu,
        Some(&key),
        json!({"model": "m", "messages": [{"role": "user", "content": "one two three"}]}),
    )
    .await;
    let after: Value = info(key.clone()).await.json().await.unwrap();
    let usage = after["data"]["usage"].as_f64().unwrap();
    assert!(
        (usage - 9.0 * modelgates_emulator::PRICE_PER_TOKEN).abs() < 1e-12,
        "{usage}"
    );
    assert!(after["data"]["limit_remaining"].as_f64().unwrap() < 10.0);
    assert_eq!(
        info("sk-mg-v1-unknown".into()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let attribution = emu.attributions().pop().unwrap();
    assert_eq!(attribution.path, "/api/v1/key");
    assert_eq!(attribution.referer.as_deref(), Some("https://app.example"));
    assert_eq!(attribution.title.as_deref(), Some("Example"));

    let models: Value = http()
        .get(format!("{}/api/v1/models", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "openai/gpt-5.2");
    assert_eq!(
        models["data"].as_array().unwrap().len(),
        modelgates_emulator::MODELS.len()
    );
}

#[tokio::test]
async fn a_stalled_stream_sends_one_chunk_and_a_dropped_one_is_counted() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key = issued_key(&emu).await;
    emu.inject_once(Endpoint::Chat, Fault::StallStream);
    let mut response = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await;
    let mut received = String::new();
    while !received.contains("\"content\":\"[m] \"") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the first chunks arrive");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    let next = tokio::time::timeout(std::time::Duration::from_millis(300), response.chunk()).await;
    assert!(next.is_err(), "then nothing");
    drop(response);
    for _ in 0..500 {
        if emu.streams_cancelled() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(emu.streams_cancelled(), 1);
}

#[tokio::test]
async fn custom_reply_function() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .chat_reply(|input| input.messages.len().to_string())
        .start()
        .await
        .unwrap();
    let key = issued_key(&emu).await;
    let answer: Value = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "1");
}

#[tokio::test]
async fn injected_faults_on_the_key_exchange() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let code = code_for(&emu, None).await;
    let body = json!({"code": code});

    emu.inject_once(Endpoint::Keys, Fault::Status(502));
    let (status, answer) = exchange(&emu, body.clone()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(answer["error"]["code"], 502);

    emu.inject_once(Endpoint::Keys, Fault::MalformedJson);
    let response = http()
        .post(format!("{}/api/v1/auth/keys", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).is_err());

    emu.inject_once(Endpoint::Keys, Fault::MissingKey);
    let (status, answer) = exchange(&emu, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer.get("key").is_none());

    emu.inject_once(Endpoint::Keys, Fault::DropConnection);
    // The connection drops mid-answer: the client sees an error, at the head or in the body.
    let cut = match http()
        .post(format!("{}/api/v1/auth/keys", emu.base_url()))
        .json(&body)
        .send()
        .await
    {
        Ok(response) => response.bytes().await.is_err(),
        Err(error) => !error.is_timeout(),
    };
    assert!(cut, "the answer is cut off");

    emu.inject_once(Endpoint::Keys, Fault::Delay(Duration::from_secs(5)));
    let slow = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = slow
        .post(format!("{}/api/v1/auth/keys", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());

    // Faults are checked before the code is consumed: it still works once they are gone.
    let (status, _) = exchange(&emu, body.clone()).await;
    assert_eq!(status, StatusCode::OK);

    emu.inject(Endpoint::Chat, Fault::Status(500));
    let key = emu.issued_keys()[0].key.clone();
    for _ in 0..2 {
        let response = chat(
            &emu,
            Some(&key),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    emu.clear_faults();
    let response = chat(
        &emu,
        Some(&key),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let url = emu.base_url().to_owned();
    emu.shutdown().await;
    assert!(http().get(url).send().await.is_err());
}
