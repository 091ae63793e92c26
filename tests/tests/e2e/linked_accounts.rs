//! example-linked-accounts over real HTTP on 127.0.0.1 against the emulator, with a client
//! that keeps cookies as Chromium does (`SameSite` included): the app's own accounts, a
//! ModelGates connection with a spend limit, its usage on the settings page, disconnecting, the
//! next person at the keyboard, a summary streamed and one kept, the background job over every
//! linked user, an out-of-credits answer shown, and a rejected key unlinked.

use std::time::{Duration, Instant};

use modelgates_axum::testing;
use modelgates_e2e::{LinkedApp, start_linked_app};
use modelgates_emulator::Emulator;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE};

async fn start() -> LinkedApp {
    start_linked_app(
        Emulator::start_auto_approve().await.unwrap(),
        "127.0.0.1",
        |o| o,
    )
    .await
}

/// A new browser, signed up to the app as `username`.
async fn sign_up(app: &LinkedApp, username: &str) -> reqwest::Client {
    let client = testing::client();
    let response = client
        .post(format!("{}/signup", app.url))
        .form(&[("username", username), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{username} signs up"
    );
    assert_eq!(response.headers()[LOCATION], "/settings");
    client
}

async fn sign_in(
    client: &reqwest::Client,
    app: &LinkedApp,
    username: &str,
    password: &str,
) -> StatusCode {
    client
        .post(format!("{}/signin", app.url))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
}

async fn sign_out(client: &reqwest::Client, app: &LinkedApp) {
    let response = client
        .post(format!("{}/signout", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn settings(client: &reqwest::Client, app: &LinkedApp) -> String {
    let response = client
        .get(format!("{}/settings", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the settings page");
    response.text().await.unwrap()
}

/// Connects ModelGates through `/modelgates/login` (with `?limit=` when given), approved on
/// the emulator; returns the key issued.
async fn connect(client: &reqwest::Client, app: &LinkedApp, limit: Option<&str>) -> String {
    let login = match limit {
        Some(limit) => format!("/modelgates/login?limit={limit}"),
        None => "/modelgates/login".to_owned(),
    };
    let before = app.emulator.issued_keys().len();
    testing::sign_in_at(client, &app.url, &login, &app.emulator)
        .await
        .expect("ModelGates connects");
    let issued = app.emulator.issued_keys();
    assert_eq!(issued.len(), before + 1, "one key issued");
    issued.last().unwrap().key.clone()
}

/// Adds a note; returns its id (the newest note is listed first).
async fn add_note(client: &reqwest::Client, app: &LinkedApp, text: &str) -> i64 {
    let response = client
        .post(format!("{}/notes", app.url))
        .form(&[("text", text)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the note is added"
    );
    let page = settings(client, app).await;
    let start = page.find("<li id=\"note-").expect("a note listed") + "<li id=\"note-".len();
    page[start..].split('"').next().unwrap().parse().unwrap()
}

/// How a summary is asked for: streamed to the page, or kept with the note.
#[derive(Clone, Copy)]
enum Summary {
    Streamed,
    Kept,
}

/// `POST /notes/{note}/summarise`, as the page's script (`Streamed`) or a plain form (`Kept`).
async fn summarise(
    client: &reqwest::Client,
    app: &LinkedApp,
    note: i64,
    how: Summary,
) -> reqwest::Response {
    let request = client.post(format!("{}/notes/{note}/summarise", app.url));
    let request = match how {
        Summary::Streamed => request.header(ACCEPT, "text/event-stream"),
        Summary::Kept => request,
    };
    request.send().await.unwrap()
}

async fn user_id(app: &LinkedApp, username: &str) -> String {
    example_linked_accounts::accounts::id_of(&app.state.db, username)
        .await
        .unwrap()
        .expect("the user exists")
        .to_string()
}

async fn run_job(app: &LinkedApp) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{}/jobs/summarise", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn accounts_of_the_app_are_its_own_and_its_session_cookie_is_lax() {
    let app = start().await;
    let page = reqwest::get(format!("{}/", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"signup\"") && page.contains("id=\"signin\""));

    let client = testing::client();
    let response = client
        .post(format!("{}/signup", app.url))
        .form(&[("username", "alice"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("notes_session=") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(
        settings(&client, &app)
            .await
            .contains("id=\"username\">alice<")
    );

    // A taken username, a short password, wrong credentials: each named, nobody signed in.
    let other = testing::client();
    let taken = other
        .post(format!("{}/signup", app.url))
        .form(&[("username", "alice"), ("password", "another one")])
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert!(taken.text().await.unwrap().contains("is taken"));
    let short = other
        .post(format!("{}/signup", app.url))
        .form(&[("username", "bob"), ("password", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        sign_in(&other, &app, "alice", "wrong password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&other, &app, "nobody", "correct horse").await,
        StatusCode::UNAUTHORIZED
    );
    let signed_out = other
        .get(format!("{}/settings", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_out.status(),
        StatusCode::SEE_OTHER,
        "to the sign-in forms"
    );
    assert_eq!(
        sign_in(&other, &app, "alice", "correct horse").await,
        StatusCode::SEE_OTHER
    );

    // Connecting needs an app user: without one the layer refuses, naming it.
    let nobody = testing::client();
    let refused = nobody
        .get(format!("{}/modelgates/login", app.url))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("not_signed_in_to_app")
    );

    // Another site cannot make a signed-in browser post a note.
    let forged = client
        .post(format!("{}/notes", app.url))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("text", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(!settings(&client, &app).await.contains("forged"));
}

#[tokio::test]
async fn a_user_connects_with_a_spend_limit_sees_the_usage_and_disconnects() {
    let app = start().await;
    let alice = sign_up(&app, "alice").await;
    let page = settings(&alice, &app).await;
    assert!(page.contains("id=\"status\">Not connected."), "{page}");
    assert!(page.contains("action=\"/modelgates/login\""));

    let key = connect(&alice, &app, Some("5")).await;
    assert_eq!(
        app.emulator.key(&key).unwrap().limit,
        Some(5.0),
        "the limit chosen"
    );
    let page = settings(&alice, &app).await;
    assert!(page.contains("id=\"status\">Connected."), "{page}");
    assert!(
        page.contains("Spent 0.00 of a 5.00 credit limit; 5.00 remaining."),
        "{page}"
    );
    let manage = format!("href=\"{}/keys/", app.emulator.base_url());
    assert!(page.contains(&manage), "the manage link: {page}");
    assert!(!page.contains(&key), "the key is never shown");
    let alice_id = user_id(&app, "alice").await;
    assert!(app.state.auth.key_for(&alice_id).await.unwrap().is_some());

    // The link belongs to alice, not to the browser session: it outlives signing out.
    sign_out(&alice, &app).await;
    assert_eq!(
        sign_in(&alice, &app, "alice", "correct horse").await,
        StatusCode::SEE_OTHER
    );
    assert!(settings(&alice, &app).await.contains("Connected."));

    let disconnected = alice
        .post(format!("{}/modelgates/disconnect", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(disconnected.status(), StatusCode::SEE_OTHER);
    assert!(settings(&alice, &app).await.contains("Not connected."));
    assert!(app.state.auth.key_for(&alice_id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_next_person_at_the_keyboard_never_reaches_the_previous_users_key() {
    let app = start().await;
    let browser = sign_up(&app, "alice").await;
    connect(&browser, &app, None).await;
    let alice_note = add_note(&browser, &app, "alice's secret plans").await;
    sign_out(&browser, &app).await;

    // bob signs up on the same browser.
    let response = browser
        .post(format!("{}/signup", app.url))
        .form(&[("username", "bob"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = settings(&browser, &app).await;
    assert!(
        page.contains("id=\"username\">bob<") && page.contains("Not connected."),
        "{page}"
    );
    assert!(
        !page.contains("secret plans"),
        "bob does not see alice's notes"
    );

    // bob's own note cannot be summarised with alice's key; alice's note is not found for him.
    let bob_note = add_note(&browser, &app, "bob's note").await;
    let chats = app.emulator.chat_count();
    let refused = summarise(&browser, &app, bob_note, Summary::Streamed).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("not_connected"));
    let not_his = summarise(&browser, &app, alice_note, Summary::Kept).await;
    assert_eq!(not_his.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.emulator.chat_count(),
        chats,
        "no call reached ModelGates"
    );
}

#[tokio::test]
async fn a_summary_streams_to_the_page_or_is_kept_with_the_note() {
    let app = start().await;
    let alice = sign_up(&app, "alice").await;
    connect(&alice, &app, None).await;
    let note = add_note(&alice, &app, "Buy milk, eggs and flour").await;

    let streamed = summarise(&alice, &app, note, Summary::Streamed).await;
    assert_eq!(streamed.status(), StatusCode::OK);
    assert!(
        streamed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = streamed.text().await.unwrap();
    let deltas: String = events
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|event| event["delta"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        deltas,
        "[openai/gpt-5.2] You said: Buy milk, eggs and flour"
    );
    assert!(events.contains("event: done"), "{events}");

    // Without JavaScript: kept with the note, shown on the page.
    let kept = summarise(&alice, &app, note, Summary::Kept).await;
    assert_eq!(kept.status(), StatusCode::SEE_OTHER);
    let page = settings(&alice, &app).await;
    assert!(
        page.contains(&format!(
            "id=\"summary-{note}\">[openai/gpt-5.2] You said: Buy milk, eggs and flour<"
        )),
        "{page}"
    );
    assert_eq!(app.emulator.chat_count(), 2);
}

#[tokio::test]
async fn the_job_summarises_every_linked_users_new_notes_with_their_own_key() {
    let app = start().await;
    let mut keys = Vec::new();
    for name in ["alice", "bob"] {
        let client = sign_up(&app, name).await;
        keys.push(connect(&client, &app, None).await);
        add_note(&client, &app, &format!("{name}'s first note")).await;
        add_note(&client, &app, &format!("{name}'s second note")).await;
    }
    let carol = sign_up(&app, "carol").await;
    let carol_note = add_note(&carol, &app, "carol is not connected").await;

    let report = run_job(&app).await;
    assert_eq!(report, serde_json::json!({"summarised": 4, "failed": []}));
    for key in &keys {
        assert!(
            app.emulator.key(key).unwrap().usage > 0.0,
            "each key paid for its own"
        );
    }
    assert!(
        !settings(&carol, &app)
            .await
            .contains(&format!("id=\"summary-{carol_note}\">["))
    );
    // Nothing new: nothing spent.
    let chats = app.emulator.chat_count();
    assert_eq!(run_job(&app).await["summarised"], 0);
    assert_eq!(app.emulator.chat_count(), chats);
}

#[tokio::test]
async fn out_of_credits_is_shown_and_a_key_modelgates_rejects_is_unlinked() {
    let app = start().await;
    let alice = sign_up(&app, "alice").await;
    let alice_key = connect(&alice, &app, None).await;
    let alice_note = add_note(&alice, &app, "alice's note").await;
    let bob = sign_up(&app, "bob").await;
    let bob_key = connect(&bob, &app, None).await;
    add_note(&bob, &app, "bob's note").await;

    // alice is out of credits; bob revoked the app's key on ModelGates.
    let alice_person = app.emulator.key(&alice_key).unwrap().user_id;
    app.emulator.set_credits(&alice_person, 0.0);
    app.emulator.revoke_key(&bob_key);
    let (alice_id, bob_id) = (user_id(&app, "alice").await, user_id(&app, "bob").await);

    let report = run_job(&app).await;
    assert_eq!(report["summarised"], 0, "{report}");
    let failed = report["failed"].as_array().unwrap();
    let code_of = |user: &str| {
        failed
            .iter()
            .find(|f| f["user"] == user)
            .map(|f| f["error"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        code_of(&alice_id).as_deref(),
        Some("insufficient_credits"),
        "{report}"
    );
    assert_eq!(
        code_of(&bob_id).as_deref(),
        Some("key_rejected"),
        "{report}"
    );

    // alice's page shows the 402 by name, and she is still connected.
    let page = settings(&alice, &app).await;
    assert!(
        page.contains(&format!(
            "id=\"summary-error-{alice_note}\" data-code=\"insufficient_credits\""
        )),
        "{page}"
    );
    assert!(
        page.contains("out of credits") && page.contains("Connected."),
        "{page}"
    );
    // In a request too: 402, named.
    let refused = summarise(&alice, &app, alice_note, Summary::Streamed).await;
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("insufficient_credits")
    );

    // bob's key is unlinked (in a task the call spawned: polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.auth.key_for(&bob_id).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "bob's rejected key is never unlinked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(settings(&bob, &app).await.contains("Not connected."));
    assert!(app.state.auth.key_for(&alice_id).await.unwrap().is_some());
}
