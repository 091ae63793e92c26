//! The real binary, end to end against the emulator on 127.0.0.1: the loopback sign-in
//! (approval, a stray request, a second callback, denial, timeout), the headless sign-in with a
//! pasted code, the key kept in a 0600 file and never printed, `whoami`, `chat` streamed and
//! its money errors as exit codes, and `logout`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use modelgates_emulator::{Emulator, Endpoint, Fault};

const TOOL: &str = env!("CARGO_BIN_EXE_example-cli-login");

/// A scratch key file, in a folder the tool must create.
fn temp_key_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cli-login-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("nested").join("key")
}

/// The tool, with the emulator's URL and the key file; no keychain, no real browser.
fn command_for(base_url: &str, key_file: &Path) -> Command {
    let mut command = Command::new(TOOL);
    command
        .args(["--base-url", base_url])
        .arg("--key-file")
        .arg(key_file)
        // `webbrowser` runs $BROWSER: `true` opens nothing and succeeds.
        .env("BROWSER", "true");
    command
}

/// A tool signing in, whose first line of stdout (the URL) was read.
struct SigningIn {
    child: Child,
    url: String,
    /// The rest of stdout, read in the background so the tool never blocks on a full pipe.
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Drop for SigningIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start_login(mut command: Command) -> SigningIn {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next()
        .expect("the URL, alone on the first line")
        .unwrap();
    let rest = std::thread::spawn(move || lines.map(Result::unwrap).collect::<Vec<_>>().join("\n"));
    SigningIn {
        child,
        url,
        stdout: Some(rest),
    }
}

/// Waits for the tool to exit (bounded): its exit code, stdout after the URL, and stderr.
async fn finish(mut tool: SigningIn) -> (i32, String, String) {
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            // Kept open while waiting (`wait` would close it): a person who pastes nothing.
            let _stdin = tool.child.stdin.take();
            let status = tool.child.wait().unwrap();
            let mut stderr = String::new();
            std::io::Read::read_to_string(tool.child.stderr.as_mut().unwrap(), &mut stderr)
                .unwrap();
            let stdout = tool.stdout.take().unwrap().join().unwrap();
            (status.code().unwrap(), stdout, stderr)
        }),
    )
    .await
    .expect("the tool exits")
    .unwrap()
}

/// Runs the tool with `args` to its end, no stdin.
async fn run(base_url: &str, key_file: &Path, args: &[&str]) -> Output {
    let mut command = command_for(base_url, key_file);
    command.args(args).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `login --headless`, the code approved on the emulator and pasted: signed in.
async fn signed_in_headless(emu: &Emulator, key_file: &Path) {
    let mut command = command_for(emu.base_url(), key_file);
    command.args(["login", "--headless"]);
    let mut signing_in = start_login(command);
    let code = emu.approve_headless(&signing_in.url).unwrap();
    writeln!(signing_in.child.stdin.as_mut().unwrap(), "{code}").unwrap();
    let (exit, _, stderr) = finish(signing_in).await;
    assert_eq!(exit, 0, "{stderr}");
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn callback_of(auth_url: &str) -> url::Url {
    let auth = url::Url::parse(auth_url).unwrap();
    let callback = auth
        .query_pairs()
        .find(|(k, _)| k == "callback_url")
        .expect("a loopback sign-in's URL names its callback")
        .1
        .into_owned();
    url::Url::parse(&callback).unwrap()
}

fn assert_private(key_file: &Path, key: &str) {
    assert_eq!(std::fs::read_to_string(key_file).unwrap().trim(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is the owner's alone");
    }
}

#[tokio::test]
async fn loopback_sign_in_keeps_the_key_in_a_private_file() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key_file = temp_key_file("approve");
    let mut command = command_for(emu.base_url(), &key_file);
    command.args(["login", "--browser", "--limit", "4"]);
    let tool = start_login(command);
    let auth = url::Url::parse(&tool.url).unwrap();
    assert!(
        auth.query_pairs()
            .any(|(k, v)| k == "code_challenge_method" && v == "S256")
    );
    let callback = callback_of(&tool.url);
    assert_eq!(callback.host_str(), Some("127.0.0.1"));
    assert_ne!(callback.port(), Some(3000), "a free port, not a fixed one");
    let segments: Vec<_> = callback.path_segments().unwrap().collect();
    assert_eq!(segments[0], "callback");
    assert_eq!(
        segments[1].len(),
        22,
        "a 128-bit per-run segment (base64url)"
    );

    // Another local page that knows the port cannot cancel the sign-in or inject a code.
    let origin = format!("http://127.0.0.1:{}", callback.port().unwrap());
    for hostile in [
        format!("{origin}/callback?error=access_denied"),
        format!("{origin}/callback/{}?error=access_denied", "A".repeat(22)),
        format!("{origin}/callback/guess?code=attacker-code"),
    ] {
        let answer = http().get(&hostile).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{hostile}");
    }

    let approved = emu.approve(&tool.url).unwrap().to_string();
    let page = http()
        .get(&approved)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("You can close this tab"), "{page}");
    let (code, stdout, stderr) = finish(tool).await;
    assert_eq!(code, 0, "{stderr}");
    // The sign-in is over: a second callback finds nobody listening.
    assert!(http().get(&approved).send().await.is_err());

    let issued = emu.issued_keys().pop().unwrap().key;
    assert_eq!(emu.key(&issued).unwrap().limit, Some(4.0));
    assert!(stdout.contains("Signed in. Key sk-mg-v1…"), "{stdout}");
    assert!(
        !stdout.contains(&issued) && !stderr.contains(&issued),
        "only a masked form"
    );
    assert_private(&key_file, &issued);
}

#[tokio::test]
async fn denial_exits_2_and_a_timeout_3_keeping_nothing() {
    let emu = Emulator::builder().start().await.unwrap();
    let key_file = temp_key_file("deny");
    let mut command = command_for(emu.base_url(), &key_file);
    command.args(["login", "--browser"]);
    let tool = start_login(command);
    http()
        .get(emu.deny(&tool.url).unwrap())
        .send()
        .await
        .unwrap();
    let (code, _, stderr) = finish(tool).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(!key_file.exists());

    for flow in ["--browser", "--headless"] {
        let mut command = command_for(emu.base_url(), &key_file);
        command.args(["login", flow, "--timeout-secs", "1"]);
        let (code, _, stderr) = finish(start_login(command)).await;
        assert_eq!(code, 3, "{flow}: {stderr}");
        assert!(stderr.contains("no sign-in within 1 seconds"), "{stderr}");
        assert!(!key_file.exists());
    }
}

#[tokio::test]
async fn headless_sign_in_reads_the_pasted_code_then_whoami_chat_and_logout() {
    let emu = Emulator::builder().start().await.unwrap();
    let key_file = temp_key_file("headless");
    let mut command = command_for(emu.base_url(), &key_file);
    command.args(["login", "--headless", "--limit", "3"]);
    let mut signing_in = start_login(command);
    let auth = url::Url::parse(&signing_in.url).unwrap();
    assert!(
        auth.query_pairs().all(|(k, _)| k != "callback_url"),
        "no callback: headless"
    );

    // The person approves on another device and pastes the code: first a bad paste.
    let code = emu.approve_headless(&signing_in.url).unwrap();
    let stdin = signing_in.child.stdin.as_mut().unwrap();
    stdin.write_all(b"two words\n").unwrap();
    stdin.write_all(format!("  {code}  \n").as_bytes()).unwrap();
    let (exit, stdout, stderr) = finish(signing_in).await;
    assert_eq!(exit, 0, "{stderr}");
    assert!(stderr.contains("not a code ModelGates shows"), "{stderr}");
    assert!(
        !stdout.contains(&code) && !stderr.contains(&code),
        "the code is never echoed"
    );
    let issued = emu.issued_keys().pop().unwrap().key;
    assert_private(&key_file, &issued);

    // whoami: the key's usage, limit, what remains and where to manage it.
    let chat = run(
        emu.base_url(),
        &key_file,
        &["chat", "Hello from the terminal"],
    )
    .await;
    assert!(chat.status.success(), "{chat:?}");
    assert_eq!(
        String::from_utf8_lossy(&chat.stdout).trim(),
        "[openai/gpt-5.2] You said: Hello from the terminal"
    );
    let whoami = run(emu.base_url(), &key_file, &["whoami"]).await;
    let shown = String::from_utf8_lossy(&whoami.stdout);
    assert!(whoami.status.success(), "{whoami:?}");
    let usage = emu.key(&issued).unwrap().usage;
    assert!(usage > 0.0);
    assert!(
        shown.contains(&format!("Usage:     {usage:.6} credits")),
        "{shown}"
    );
    assert!(shown.contains("Limit:     3.00 credits"), "{shown}");
    assert!(
        shown.contains(&format!("Manage:    {}/keys/", emu.base_url())),
        "{shown}"
    );
    assert!(!shown.contains(&issued));

    let logout = run(emu.base_url(), &key_file, &["logout"]).await;
    assert!(logout.status.success());
    assert!(!key_file.exists());
    let signed_out = run(emu.base_url(), &key_file, &["whoami"]).await;
    assert_eq!(signed_out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&signed_out.stderr).contains("not signed in"));
}

#[tokio::test]
async fn chat_names_out_of_credits_and_rate_limits_by_exit_code() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key_file = temp_key_file("money");
    signed_in_headless(&emu, &key_file).await;

    for (fault, exit, words) in [
        (Fault::InsufficientCredits, 5, "out of credits"),
        (Fault::KeyLimitSpent, 5, "spend limit"),
        (
            Fault::RateLimited(Duration::from_secs(7)),
            6,
            "rate limiting",
        ),
    ] {
        emu.inject_once(Endpoint::Chat, fault);
        let chat = run(emu.base_url(), &key_file, &["chat", "hi"]).await;
        let stderr = String::from_utf8_lossy(&chat.stderr);
        assert_eq!(chat.status.code(), Some(exit), "{stderr}");
        assert!(stderr.contains(words), "{stderr}");
    }
}

/// Ctrl-C, as a terminal sends it.
fn interrupt(child: &Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_ends_the_wait_and_the_paid_stream_cleanly() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key_file = temp_key_file("interrupt");
    let mut command = command_for(emu.base_url(), &key_file);
    command.args(["login", "--browser"]);
    let signing_in = start_login(command);
    let port = callback_of(&signing_in.url).port().unwrap();
    interrupt(&signing_in.child);
    let (code, _, stderr) = finish(signing_in).await;
    assert_eq!(code, 130, "{stderr}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the callback's listener closed with it"
    );
    assert!(!key_file.exists());

    // Signed in, a slow reply: Ctrl-C after its first words stops it there.
    signed_in_headless(&emu, &key_file).await;
    emu.inject_once(
        Endpoint::Chat,
        Fault::SlowStream(Duration::from_millis(300)),
    );
    let mut chat = command_for(emu.base_url(), &key_file)
        .args(["chat", "a long question"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = chat.stdout.take().unwrap();
    let (first, chat) = tokio::task::spawn_blocking(move || {
        let mut first = [0_u8; 256];
        let read = std::io::Read::read(&mut stdout, &mut first).unwrap();
        (String::from_utf8_lossy(&first[..read]).into_owned(), chat)
    })
    .await
    .unwrap();
    assert!(!first.is_empty(), "the reply started");
    interrupt(&chat);
    let output = tokio::task::spawn_blocking(move || chat.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(130));
    let printed = format!("{first}{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        !printed.contains("a long question"),
        "stopped before the end of the reply: {printed}"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn without_a_keychain_the_key_goes_to_a_private_file_in_the_config_folder() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let config = temp_key_file("config").parent().unwrap().to_owned();
    let mut command = Command::new(TOOL);
    command
        .args(["--base-url", emu.base_url(), "login", "--headless"])
        .env("XDG_CONFIG_HOME", &config)
        // No session bus: no Secret Service answers, as on a server or in a container.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("MODELGATES_KEY_FILE");
    let mut signing_in = start_login(command);
    let code = emu.approve_headless(&signing_in.url).unwrap();
    writeln!(signing_in.child.stdin.as_mut().unwrap(), "{code}").unwrap();
    let (exit, stdout, stderr) = finish(signing_in).await;
    assert_eq!(exit, 0, "{stderr}");
    let key_file = config.join("modelgates").join("key");
    assert!(stdout.contains(&key_file.display().to_string()), "{stdout}");
    assert_private(&key_file, &emu.issued_keys().pop().unwrap().key);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn login_chooses_the_headless_flow_where_no_browser_can_be_shown() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key_file = temp_key_file("choice");
    // (SSH_CONNECTION, DISPLAY) → whether the URL names a loopback callback.
    for (ssh, display, loopback) in [
        (Some("10.0.0.2 50000 10.0.0.1 22"), None, false),
        (
            Some("10.0.0.2 50000 10.0.0.1 22"),
            Some("localhost:10.0"),
            true,
        ),
        (None, None, false),
        (None, Some(":0"), true),
    ] {
        let mut command = command_for(emu.base_url(), &key_file);
        command
            .args(["login", "--timeout-secs", "1"])
            .env_remove("SSH_CONNECTION")
            .env_remove("SSH_TTY")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        if let Some(ssh) = ssh {
            command.env("SSH_CONNECTION", ssh);
        }
        if let Some(display) = display {
            command.env("DISPLAY", display);
        }
        let signing_in = start_login(command);
        let named = url::Url::parse(&signing_in.url)
            .unwrap()
            .query_pairs()
            .any(|(k, _)| k == "callback_url");
        assert_eq!(named, loopback, "SSH {ssh:?}, DISPLAY {display:?}");
        assert_eq!(
            finish(signing_in).await.0,
            3,
            "it times out, keeping nothing"
        );
    }
}
