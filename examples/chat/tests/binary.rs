//! The real `example-chat` binary with nothing set: it starts the embedded emulator in consent
//! mode, prints both URLs, and serves the contract's routes on them.

mod support;

use std::process::{Command, Stdio};

use support::{banner, banner_value, example_chat, serving, startup_error};

#[tokio::test]
async fn runs_on_the_embedded_emulator_with_nothing_set() {
    let (lines, _guard) = serving(&mut example_chat());
    let emulator = lines
        .iter()
        .find_map(|l| l.strip_prefix("ModelGates emulator (consent page, no real money): "))
        .expect("the emulator's URL is printed");
    let app = lines
        .iter()
        .find_map(|l| l.strip_prefix("App: "))
        .and_then(|rest| rest.split(' ').next())
        .expect("the app's URL is printed");
    assert!(
        app.starts_with("http://localhost:"),
        "PUBLIC_URL defaults to http://localhost:$PORT"
    );
    let port = app.rsplit(':').next().unwrap();

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let home = client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Connect ModelGates"));

    // Opened on 127.0.0.1 while the public URL is localhost: sent to the public URL first,
    // where the sign-in's cookie and its callback will be.
    let elsewhere = client
        .get(format!("http://127.0.0.1:{port}/login?return_to=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 303);
    assert_eq!(
        elsewhere.headers()["location"],
        format!("{app}/login?return_to=%2F").as_str()
    );
    let login = client.get(format!("{app}/login")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let auth = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    assert!(auth.as_str().starts_with(&format!("{emulator}/auth?")));
    let callback = auth
        .query_pairs()
        .find(|(k, _)| k == "callback_url")
        .unwrap()
        .1
        .into_owned();
    assert!(
        callback.starts_with(&format!("{app}/callback/")),
        "the callback carries the flow id: {callback}"
    );

    let consent = client.get(auth).send().await.unwrap();
    assert_eq!(
        consent.status(),
        200,
        "consent mode: a page, not an instant redirect"
    );
    assert!(consent.text().await.unwrap().contains("Approve"));
}

#[tokio::test]
async fn a_sqlite_key_store_is_created_and_named_without_secrets() {
    let path = std::env::temp_dir().join(format!("example-chat-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (lines, _guard) =
        serving(example_chat().env("MODELGATES_KEY_STORE", format!("sqlite:{}", path.display())));
    assert!(
        lines.iter().any(|l| l == "Keys kept in: sqlite"),
        "{lines:?}"
    );
    assert!(path.exists(), "the database file is created with its table");
    let _ = std::fs::remove_file(&path);
}

/// A Redis store is cached by default, and the banner says so without the URL; `off` turns
/// the cache off. Runs when `.ci/run` started Redis (`MODELGATES_TEST_REDIS_URL`).
#[tokio::test]
async fn a_redis_key_store_is_cached_unless_asked_not_to() {
    let Ok(url) = std::env::var("MODELGATES_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MODELGATES_TEST_REDIS_URL is not set"
        );
        eprintln!("SKIPPED: MODELGATES_TEST_REDIS_URL is not set");
        return;
    };
    for (cache, expected) in [
        (
            None,
            "Keys kept in: redis, cached (revocations heard from every instance)",
        ),
        (Some("off"), "Keys kept in: redis"),
    ] {
        let mut command = example_chat();
        command.env("MODELGATES_KEY_STORE", &url);
        if let Some(cache) = cache {
            command.env("MODELGATES_KEY_CACHE", cache);
        }
        let (lines, _guard) = serving(&mut command);
        assert!(lines.iter().any(|l| l == expected), "{lines:?}");
    }
}

#[test]
fn a_key_cache_setting_other_than_on_or_off_is_a_clear_startup_error() {
    let stderr = startup_error(example_chat().env("MODELGATES_KEY_CACHE", "maybe"));
    assert!(
        stderr.contains("MODELGATES_KEY_CACHE must be `on` or `off`, not `maybe`"),
        "{stderr}"
    );
}

/// The deployment settings come from the environment: a proxy list or a bound that cannot be
/// read stops the app at startup, naming the variable.
#[test]
fn the_proxy_and_bound_settings_are_read_and_checked_at_startup() {
    for (name, value) in [
        ("MODELGATES_TRUSTED_PROXIES", "nginx.internal"),
        ("MODELGATES_FAILED_SIGN_INS_PER_CLIENT", "ten a minute"),
    ] {
        let stderr = startup_error(example_chat().env(name, value));
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

#[test]
fn an_unknown_key_store_is_a_clear_startup_error() {
    let stderr = startup_error(example_chat().env("MODELGATES_KEY_STORE", "mongodb://nope"));
    assert!(
        stderr.contains("MODELGATES_KEY_STORE `mongodb://nope` is not one of"),
        "{stderr}"
    );
    // With no secret set, the warning reaches stderr even without reading the logs, and logs
    // written to a pipe carry no colour codes.
    assert!(
        stderr.contains("WARNING: MODELGATES_COOKIE_SECRET is not set"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escape codes in a pipe: {stderr}"
    );
}

/// The secret command the docs recommend, and `openssl rand -base64 64` as people type it
/// (wrapped at 64 columns, final newline kept), both start the app with that secret: no
/// "not set" warning, no "not valid base64" refusal.
#[tokio::test]
async fn starts_with_a_secret_made_by_the_documented_command_wrapped_or_not() {
    let commands = [
        "openssl rand -base64 64 | tr -d '\\n'",
        "openssl rand -base64 64",
    ];
    for command in commands {
        let secret = shell_output(command);
        if command == "openssl rand -base64 64" {
            assert!(
                secret.trim_end().contains('\n'),
                "openssl wraps its output: {secret:?}"
            );
        }
        let mut child = example_chat()
            .env("MODELGATES_COOKIE_SECRET", &secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = banner(&mut child);
        assert!(lines.iter().any(|l| l.starts_with("App: ")), "{lines:?}");
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("MODELGATES_COOKIE_SECRET is not set"),
            "{command}: the given secret is used, not a generated one: {stderr}"
        );
    }
}

/// `command`'s standard output, exactly as the shell's `$(…)` would keep it (final newline
/// included: an `.env` file or `export` may keep it too).
fn shell_output(command: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", command])
        .output()
        .unwrap_or_else(|e| panic!("`{command}` (openssl is needed for this test): {e}"));
    assert!(output.status.success(), "`{command}` failed");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn sigterm_finishes_what_is_under_way_and_ends_open_streams_saying_why() {
    use modelgates_axum::testing;
    use modelgates_emulator::{Emulator, Endpoint, Fault};

    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (lines, mut guard) = serving(
        example_chat()
            .env("MODELGATES_BASE_URL", emulator.base_url())
            .env("SHUTDOWN_GRACE_SECS", "1"),
    );
    let app = lines
        .iter()
        .find_map(|l| l.strip_prefix("App: "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let client = testing::client();
    testing::sign_in(&client, &app, &emulator).await.unwrap();
    emulator.inject(Endpoint::Chat, Fault::StallStream);
    let mut stream = client
        .post(format!("{app}/chat"))
        .header("accept", "text/event-stream")
        .header("origin", &app)
        .form(&[("message", "a long story, please")])
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("delta"),
        "the reply started"
    );

    let pid = guard.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let started = std::time::Instant::now();
    let mut rest = String::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    let took = started.elapsed();
    assert!(rest.contains("event: error"), "{rest}");
    assert!(rest.contains("server_restarting"), "{rest}");
    assert!(!rest.contains("event: done"), "{rest}");
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(10),
        "the stream ran its grace period, then ended: {took:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(status.success(), "a clean stop: {status}");
}

#[tokio::test]
async fn metrics_addr_serves_prometheus_text_with_the_crate_series_after_a_sign_in() {
    use modelgates_axum::testing;
    use modelgates_emulator::Emulator;

    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (lines, _guard) = serving(
        example_chat()
            .env("MODELGATES_BASE_URL", emulator.base_url())
            .env("METRICS_ADDR", "127.0.0.1:0"),
    );
    let app = banner_value(&lines, "App: ");
    let metrics = banner_value(&lines, "Metrics: ");
    assert!(metrics.starts_with("http://127.0.0.1:") && metrics.ends_with("/metrics"));
    let client = testing::client();
    testing::sign_in(&client, &app, &emulator).await.unwrap();
    let chat = client
        .post(format!("{app}/chat"))
        .header("accept", "text/event-stream")
        .header("origin", &app)
        .form(&[("message", "hello")])
        .send()
        .await
        .unwrap();
    assert!(chat.text().await.unwrap().contains("event: done"));

    let scraped = reqwest::get(&metrics).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scraped.text().await.unwrap();
    for line in [
        "# TYPE modelgates_sign_ins_total counter",
        "modelgates_sign_ins_total{outcome=\"success\"} 1",
        "# TYPE modelgates_key_exchange_duration_seconds histogram",
        "modelgates_key_exchange_duration_seconds_count{outcome=\"success\"} 1",
        "# TYPE modelgates_stream_first_token_seconds histogram",
        "modelgates_stream_first_token_seconds_count 1",
        "modelgates_open_streams 0",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
    // The app's own port serves no metrics.
    let on_app = client.get(format!("{app}/metrics")).send().await.unwrap();
    assert_eq!(on_app.status(), 404);
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_cookies_or_modelgates() {
    use modelgates_emulator::Emulator;

    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (lines, _guard) = serving(example_chat().env("MODELGATES_BASE_URL", emulator.base_url()));
    let app = banner_value(&lines, "App: ");
    for (path, status) in [("/healthz", "alive"), ("/readyz", "ready")] {
        let answer = reqwest::get(format!("{app}{path}")).await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert!(answer.headers().get("set-cookie").is_none(), "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["status"], status, "{path}");
    }
    assert_eq!(emulator.exchange_count(), 0);
    assert!(
        emulator.attributions().is_empty(),
        "ModelGates was not asked"
    );
}
