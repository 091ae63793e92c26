//! The real binary, end to end against the emulator on 127.0.0.1: approval stores the key in
//! a 0600 file and prints only a masked form; denial and timeout exit non-zero with a message.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use modelgates_emulator::Emulator;

struct Tool {
    child: Child,
    auth_url: String,
    /// The rest of stdout, read in the background so the tool never blocks on a full pipe.
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn temp_key_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cli-login-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("nested").join("key")
}

/// Starts the tool and reads stdout up to the URL it prints.
fn start(base_url: &str, key_file: &std::path::Path, timeout_secs: u64) -> Tool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-cli-login"))
        .args(["--port", "0", "--no-browser", "--base-url", base_url])
        .arg("--key-file")
        .arg(key_file)
        .args(["--timeout-secs", &timeout_secs.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let auth_url = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.starts_with("http"))
        .expect("the tool prints the /auth URL");
    let rest = std::thread::spawn(move || lines.map(Result::unwrap).collect::<Vec<_>>().join("\n"));
    Tool {
        child,
        auth_url,
        stdout: Some(rest),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Waits for the tool to exit: its exit code, stdout after the URL, and stderr.
fn wait(tool: &mut Tool) -> (i32, String, String) {
    let status = tool.child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(tool.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let stdout = tool.stdout.take().unwrap().join().unwrap();
    (status.code().unwrap(), stdout, stderr)
}

#[tokio::test]
async fn approval_stores_the_key_in_a_private_file() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key_file = temp_key_file("approve");
    let mut tool = start(emu.base_url(), &key_file, 30);
    let auth = url::Url::parse(&tool.auth_url).unwrap();
    assert!(
        auth.query_pairs()
            .any(|(k, v)| k == "code_challenge_method" && v == "S256")
    );
    let callback_url = auth
        .query_pairs()
        .find(|(k, _)| k == "callback_url")
        .unwrap()
        .1
        .into_owned();
    let callback_url = url::Url::parse(&callback_url).unwrap();
    assert_eq!(callback_url.host_str(), Some("127.0.0.1"));
    let segments: Vec<_> = callback_url.path_segments().unwrap().collect();
    assert_eq!(segments[0], "callback");
    assert_eq!(
        segments[1].len(),
        22,
        "a 128-bit per-run segment (base64url)"
    );

    // Another local page that knows the port cannot cancel the sign-in or inject a code.
    let origin = format!("http://127.0.0.1:{}", callback_url.port().unwrap());
    for hostile in [
        format!("{origin}/callback?error=access_denied"),
        format!("{origin}/callback/{}?error=access_denied", "A".repeat(22)),
        format!("{origin}/callback/guess?code=attacker-code"),
    ] {
        let answer = http().get(&hostile).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{hostile}");
    }

    let callback = emu.approve(&tool.auth_url).unwrap().to_string();
    let page = http()
        .get(&callback)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in"));

    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || wait(&mut tool))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let issued = emu.issued_keys().pop().unwrap().key;
    assert!(stdout.contains("Signed in. Key sk-mg-v1…"), "{stdout}");
    assert!(
        !stdout.contains(&issued) && !stderr.contains(&issued),
        "only a masked form is printed"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), issued);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test]
async fn denial_exits_2_and_stores_nothing() {
    let emu = Emulator::builder().start().await.unwrap();
    let key_file = temp_key_file("deny");
    let mut tool = start(emu.base_url(), &key_file, 30);
    let callback = emu.deny(&tool.auth_url).unwrap();
    http().get(callback).send().await.unwrap();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || wait(&mut tool))
        .await
        .unwrap();
    assert_eq!(code, 2);
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(!key_file.exists());
}

#[tokio::test]
async fn timeout_exits_3() {
    let emu = Emulator::start_auto_approve().await.unwrap();
    let key_file = temp_key_file("timeout");
    let mut tool = start(emu.base_url(), &key_file, 1);
    let (code, _, stderr) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || wait(&mut tool)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(code, 3);
    assert!(stderr.contains("no sign-in within 1 seconds"), "{stderr}");
    assert!(!key_file.exists());
}
