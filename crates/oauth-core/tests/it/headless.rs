//! Headless sign-in against the emulator on 127.0.0.1: the `/auth` URL without a callback, the
//! code the page shows, pasted back (trimmed); a wrong, an expired and a malformed paste; and
//! `plain` refused without a callback.

use std::time::Duration;

use modelgates_emulator::Emulator;
use modelgates_oauth_core::headless::{HeadlessError, PastedCodeError};
use modelgates_oauth_core::key::SpendLimit;
use modelgates_oauth_core::pkce::CodeVerifier;
use modelgates_oauth_core::{ChallengeMethod, KeyRequest, ModelGatesClient};

fn client(base: &str) -> ModelGatesClient {
    ModelGatesClient::builder().base_url(base).build().unwrap()
}

/// The code in the emulator's page: `<code id="code">…</code>`.
fn code_in(page: &str) -> String {
    let start = page
        .find("<code id=\"code\">")
        .expect("the page shows a code")
        + 16;
    let end = start + page[start..].find("</code>").unwrap();
    page[start..end].to_owned()
}

#[tokio::test]
async fn the_code_shown_on_the_page_and_pasted_back_signs_in() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let client = client(emu.base_url());
    let key = KeyRequest::new(
        Some(SpendLimit::parse("2.5").unwrap()),
        Some("my tool".into()),
    );
    let sign_in = client.headless_sign_in(&key);
    let url = sign_in.url().clone();
    assert!(url.query_pairs().all(|(name, _)| name != "callback_url"));
    assert!(
        url.query_pairs()
            .any(|(name, value)| name == "code_challenge_method" && value == "S256")
    );

    // The person opens the URL (auto-approved here): the page shows the code.
    let page = reqwest::get(url.as_str()).await.unwrap();
    assert_eq!(page.status(), 200);
    let code = code_in(&page.text().await.unwrap());

    // Pasted with a terminal's newline and a copy's spaces.
    let issued = sign_in
        .exchange(&client, &format!("  {code} \r\n"))
        .await
        .unwrap();
    let record = emu.key(issued.key.expose_secret()).unwrap();
    assert_eq!(record.limit, Some(2.5));
    assert_eq!(record.label, "my tool");

    // Used once.
    let again = sign_in.exchange(&client, &code).await.unwrap_err();
    assert!(
        matches!(again, HeadlessError::Exchange(ref e) if e.is_code_rejected()),
        "{again}"
    );
}

#[tokio::test]
async fn the_consent_page_shows_the_code_after_approval() {
    let emu = Emulator::builder().start().await.unwrap();
    let client = client(emu.base_url());
    let sign_in = client.headless_sign_in(&KeyRequest::default());
    let http = reqwest::Client::new();
    let consent = http
        .get(sign_in.url().as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("without a browser"), "{consent}");
    let start = consent.find("name=\"consent_id\" value=\"").unwrap() + 25;
    let consent_id = &consent[start..start + consent[start..].find('"').unwrap()];
    let approved = http
        .post(format!("{}/auth/consent", emu.base_url()))
        .form(&[("consent_id", consent_id), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200, "a page, not a redirect");
    let code = code_in(&approved.text().await.unwrap());
    sign_in.exchange(&client, &code).await.unwrap();
}

#[tokio::test]
async fn wrong_expired_and_malformed_codes_are_refused() {
    let emu = Emulator::builder()
        .code_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let client = client(emu.base_url());
    let sign_in = client.headless_sign_in(&KeyRequest::default());

    // Malformed: nothing is sent, and the sign-in can take another paste.
    for (pasted, expected) in [
        (" \n", PastedCodeError::Empty),
        ("two words", PastedCodeError::Malformed),
        ("caf\u{e9}", PastedCodeError::Malformed),
    ] {
        let error = sign_in.exchange(&client, pasted).await.unwrap_err();
        assert!(
            matches!(error, HeadlessError::Code(e) if e == expected),
            "{pasted:?}: {error}"
        );
    }
    assert_eq!(emu.exchange_count(), 0, "nothing was sent");

    // Wrong: ModelGates refuses it, and the error holds no code.
    let error = sign_in
        .exchange(&client, "not-a-code-it-issued")
        .await
        .unwrap_err();
    assert!(
        matches!(error, HeadlessError::Exchange(ref e) if e.is_code_rejected()),
        "{error}"
    );
    assert!(!error.to_string().contains("not-a-code-it-issued"));

    // Expired: this emulator's codes live no time at all.
    let code = emu.approve_headless(sign_in.url().as_str()).unwrap();
    let error = sign_in.exchange(&client, &code).await.unwrap_err();
    assert!(
        matches!(error, HeadlessError::Exchange(ref e) if e.is_code_rejected()),
        "{error}"
    );
}

#[tokio::test]
async fn without_a_callback_plain_or_no_challenge_is_refused() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let verifier = CodeVerifier::generate();
    let plain = verifier.challenge(ChallengeMethod::Plain);
    for query in [
        format!(
            "code_challenge={}&code_challenge_method=plain",
            plain.as_str()
        ),
        format!("code_challenge={}", plain.as_str()),
        String::new(),
    ] {
        let url = format!("{}/auth?{query}", emu.base_url());
        let answer = reqwest::get(&url).await.unwrap();
        assert_eq!(answer.status(), 400, "{query}");
        assert!(answer.text().await.unwrap().contains("S256"));
        assert!(emu.approve_headless(&url).is_err());
    }
    assert!(emu.issued_codes().is_empty());
}
