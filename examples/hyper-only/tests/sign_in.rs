//! The hyper-only app over real HTTP against the emulator: sign in, chat with the user's key,
//! sign out; and the flow's defences, which come from oauth-core, hold.

use std::sync::Arc;

use example_hyper_only::App;
use modelgates_emulator::Emulator;

struct Running {
    url: String,
    emu: Emulator,
    server: tokio::task::JoinHandle<()>,
}

async fn start() -> Running {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let app: Arc<App> = App::new(&url, emu.base_url(), &[9; 48]).unwrap();
    let server = tokio::spawn(example_hyper_only::serve(listener, app));
    Running { url, emu, server }
}

/// The body of the answer to `request`.
async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// A client that keeps cookies and follows redirects across both servers, like a browser.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

#[tokio::test]
async fn signs_in_chats_with_the_users_key_and_signs_out() {
    let app = start().await;
    let client = browser();
    let home = text(client.get(&app.url)).await;
    assert!(home.contains("Connect ModelGates"), "{home}");

    let landed = client
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(landed.url().as_str(), format!("{}/", app.url));
    assert!(landed.text().await.unwrap().contains("Log out"));
    let exchange = app.emu.last_exchange().unwrap();
    assert!(
        exchange.raw.contains(r#""code_challenge_method":"S256""#),
        "{}",
        exchange.raw
    );

    let chat = text(
        client
            .post(format!("{}/chat", app.url))
            .form(&[("message", "hello <b>")]),
    )
    .await;
    assert!(chat.contains("You said: hello &lt;b&gt;"), "{chat}");
    let key = app.emu.issued_keys().pop().unwrap().key;
    assert!(!chat.contains(&key), "the key never reaches the page");

    let out = client
        .post(format!("{}/logout", app.url))
        .send()
        .await
        .unwrap();
    assert!(out.text().await.unwrap().contains("Connect ModelGates"));
    app.server.abort();
}

/// A client that stops at each redirect, sending only the cookies it is given.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts a sign-in: the flow cookie (`name=value`) and the callback the emulator approves.
async fn start_sign_in(app: &Running) -> (String, reqwest::Url) {
    let login = bare()
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap();
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap();
    let flow_cookie = set_cookie.split(';').next().unwrap().to_owned();
    let auth_url = login.headers()["location"].to_str().unwrap();
    (flow_cookie, app.emu.approve(auth_url).unwrap())
}

#[tokio::test]
async fn a_callback_is_bound_to_its_browser_and_used_once() {
    let app = start().await;
    let (flow_cookie, callback) = start_sign_in(&app).await;

    // Another browser (no flow cookie), and this browser's cookie with another flow's id:
    // refused before anything reaches ModelGates.
    let stranger = bare().get(callback.as_str()).send().await.unwrap();
    assert_eq!(stranger.status(), 400);
    let mut forged = callback.clone();
    forged.set_path("/callback/AAAAAAAAAAAAAAAAAAAAAA");
    let mismatch = bare()
        .get(forged.as_str())
        .header("cookie", &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 400);
    assert!(mismatch.text().await.unwrap().contains("does not belong"));
    assert_eq!(app.emu.exchange_count(), 0);

    // The real callback signs in once; replayed with the same cookie, it is refused.
    let callback_with_cookie = || {
        bare()
            .get(callback.as_str())
            .header("cookie", &flow_cookie)
            .send()
    };
    assert_eq!(callback_with_cookie().await.unwrap().status(), 303);
    let replay = callback_with_cookie().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    assert_eq!(app.emu.exchange_count(), 1);

    // A tampered flow cookie does not open.
    let (flow_cookie, callback) = start_sign_in(&app).await;
    let (kept, last) = flow_cookie.split_at(flow_cookie.len() - 1);
    let tampered = format!("{kept}{}", if last == "A" { "B" } else { "A" });
    let refused = bare()
        .get(callback.as_str())
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("could not be verified")
    );
    app.server.abort();
}
