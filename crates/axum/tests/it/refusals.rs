//! The gateway's refusals as it means them, through the layer against the emulator: each kind
//! (a spent key limit as 402 and as 403, an empty balance, a guardrail, a moderation flag with
//! its reasons, a rate limit, an outage) as a JSON client, a browser and a stream see it, never
//! a 502; `Retry-After` and `X-RateLimit-*` passed on.

use crate::support;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use http::{StatusCode, header};
use modelgates_axum::ModelGatesAuth;
use modelgates_emulator::{Emulator, Endpoint, Fault};
use support::{Browser, config, emulator};

use crate::money::{chat, post_as, stream};

async fn signed_in(emu: &Emulator) -> Browser {
    let app = Router::new()
        .route("/chat", post(chat))
        .route("/stream", post(stream))
        .layer(ModelGatesAuth::new(config(emu)));
    let mut browser = Browser::new(app);
    browser.sign_in("/login").await;
    browser
}

struct Case {
    fault: Fault,
    status: u16,
    code: &'static str,
    /// What the JSON message and the page both say.
    says: &'static str,
    retry_after: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            fault: Fault::KeyLimitSpent,
            status: 403,
            code: "key_limit_reached",
            says: "Raise the key's limit",
            retry_after: None,
        },
        Case {
            fault: Fault::KeyLimitExceeded,
            status: 403,
            code: "key_limit_reached",
            says: "Raise the key's limit",
            retry_after: None,
        },
        Case {
            fault: Fault::InsufficientCredits,
            status: 402,
            code: "insufficient_credits",
            says: "Top up your credits",
            retry_after: None,
        },
        Case {
            fault: Fault::GuardrailBlocked,
            status: 403,
            code: "refused_by_modelgates",
            says: "guardrail: this model is not allowed",
            retry_after: None,
        },
        Case {
            fault: Fault::ModerationFlagged(vec!["violence".into(), "<b>hate</b>".into()]),
            status: 403,
            code: "refused_by_modelgates",
            says: "flagged for violence",
            retry_after: None,
        },
        Case {
            fault: Fault::RateLimited(Duration::from_secs(30)),
            status: 429,
            code: "rate_limited",
            says: "wait 30 seconds",
            retry_after: Some("30"),
        },
        Case {
            fault: Fault::Unavailable(Duration::from_secs(20)),
            status: 503,
            code: "upstream_unavailable",
            says: "wait 20 seconds",
            retry_after: Some("20"),
        },
    ]
}

/// Each refusal, as a script, a browser and a stream refused before its first event see it.
#[tokio::test]
async fn each_refusal_is_named_for_scripts_browsers_and_streams() {
    let emu = emulator().await;
    let mut browser = signed_in(&emu).await;
    for case in cases() {
        let what = format!("{:?}", case.fault);
        emu.inject(Endpoint::Chat, case.fault);
        for (path, accept) in [
            ("/chat", "application/json"),
            ("/stream", "text/event-stream"),
        ] {
            let script = post_as(&mut browser, path, accept).await;
            assert_eq!(
                script.status.as_u16(),
                case.status,
                "{what} {path}: {}",
                script.body
            );
            let body: serde_json::Value = serde_json::from_str(&script.body).unwrap();
            assert_eq!(body["error"]["code"], case.code, "{what} {path}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(case.says), "{what} {path}: {message}");
            assert_eq!(
                script
                    .headers
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap()),
                case.retry_after,
                "{what} {path}"
            );
        }
        let page = post_as(&mut browser, "/chat", "text/html").await;
        assert_eq!(page.status.as_u16(), case.status, "{what}: {}", page.body);
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let escaped = html_escape::encode_text(case.says);
        assert!(
            page.body.contains(escaped.as_ref()),
            "{what}: {}",
            page.body
        );
        assert!(
            !page.body.contains("<b>hate</b>"),
            "the gateway's text stays text"
        );
        assert!(
            page.set_cookie("modelgates_key").is_none(),
            "{what}: still signed in"
        );
        emu.clear_faults();
    }
    assert_eq!(
        post_as(&mut browser, "/chat", "application/json")
            .await
            .status,
        StatusCode::OK
    );
}

/// A stream refused midway by moderation ends with `event: error` naming the refusal, and the
/// reasons ModelGates gave.
#[tokio::test]
async fn a_stream_flagged_midway_ends_with_refused_by_modelgates() {
    let emu = emulator().await;
    let mut browser = signed_in(&emu).await;
    emu.inject_once(Endpoint::Chat, Fault::StreamFlaggedMidway);
    let failed = post_as(&mut browser, "/stream", "text/event-stream").await;
    assert_eq!(failed.status, StatusCode::OK);
    assert!(failed.body.contains("\"delta\""), "{}", failed.body);
    assert!(failed.body.contains("event: error"), "{}", failed.body);
    assert!(
        failed.body.contains("refused_by_modelgates"),
        "{}",
        failed.body
    );
    assert!(failed.body.contains("harassment"), "{}", failed.body);
    assert!(!failed.body.contains("event: done"), "{}", failed.body);
}

/// ModelGates' `X-RateLimit-*` reach the handler's response, on a success and on a refusal.
#[tokio::test]
async fn rate_limit_headers_are_passed_on() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .rate_limit(2, Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    let mut browser = signed_in(&emu).await;
    let first = post_as(&mut browser, "/chat", "application/json").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.headers["x-ratelimit-limit"], "2");
    assert_eq!(first.headers["x-ratelimit-remaining"], "1");
    let reset: u64 = first.headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset > 1_700_000_000_000,
        "milliseconds since the epoch: {reset}"
    );
    post_as(&mut browser, "/chat", "application/json").await;
    let refused = post_as(&mut browser, "/chat", "application/json").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
}
