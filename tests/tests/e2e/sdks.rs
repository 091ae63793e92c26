//! The official SDKs as the emulator's clients: OpenRouter's TypeScript SDK (`@openrouter/sdk`)
//! and Python SDK (`openrouter`), whose API and schema ModelGates follows, each pinned in
//! `tests/sdk/`. Their scripts sign in (authorization URL, PKCE S256, the exchange, a wrong
//! verifier as the SDK types it), meet each refusal the test injected (402 out of credits, 402
//! key limit, 403, 429, 503), which must reach the script as the SDK's own error type, then
//! chat whole and streamed, call a tool both ways, read the key's metadata and the models, and
//! meet a 401.
//!
//! An SDK that is not installed is skipped with the reason printed, unless
//! `MODELGATES_REQUIRE_SDKS` is set (`.ci/run` sets it after installing both): then it fails.
//! Install by hand: `npm ci --prefix tests/sdk/typescript` and
//! `python3 -m pip install --target target/sdk-python -r tests/sdk/python/requirements.txt`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use modelgates_emulator::{Emulator, Endpoint, Fault};
use tokio::process::Command;

/// Far more than a script takes (about a second), so that a hung one fails the test.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk")
}

/// One SDK's script and how to run it.
struct Sdk {
    name: &'static str,
    program: &'static str,
    script: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
}

impl Sdk {
    fn typescript() -> Self {
        Self {
            name: "the TypeScript SDK",
            program: "node",
            script: sdk_dir().join("typescript/check.mjs"),
            env: Vec::new(),
        }
    }

    fn python() -> Self {
        let packages = std::env::var_os("MODELGATES_SDK_PYTHONPATH").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/sdk-python"),
            PathBuf::from,
        );
        Self {
            name: "the Python SDK",
            program: "python3",
            script: sdk_dir().join("python/check.py"),
            env: vec![("PYTHONPATH", packages)],
        }
    }

    /// Why the SDK cannot run here, if it cannot.
    async fn missing(&self) -> Option<String> {
        let probe = match self.program {
            "node" => "import('@openrouter/sdk')",
            _ => "import openrouter",
        };
        let flag = if self.program == "node" { "-e" } else { "-c" };
        let mut command = Command::new(self.program);
        command
            .arg(flag)
            .arg(probe)
            .current_dir(self.script.parent().expect("a folder"))
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match command.status().await {
            Ok(status) if status.success() => None,
            Ok(_) => Some(format!(
                "{} is not installed (see the install commands in tests/tests/e2e/sdks.rs)",
                self.name
            )),
            Err(error) => Some(format!("{} cannot start: {error}", self.program)),
        }
    }

    /// Runs the script against `emulator`; its stdout, or the failure explained.
    async fn run(&self, emulator: &Emulator, args: &[&str]) -> String {
        let mut command = Command::new(self.program);
        command
            .arg(&self.script)
            .args(args)
            .current_dir(self.script.parent().expect("a folder"))
            .envs(self.env.iter().cloned())
            .env("MODELGATES_BASE_URL", emulator.base_url())
            .kill_on_drop(true);
        let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("{} {args:?} took over {SCRIPT_TIMEOUT:?}", self.name))
            .unwrap_or_else(|error| panic!("{} cannot start: {error}", self.program));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{} {args:?} failed:\n{}{stdout}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// Runs `sdk`'s whole check against the emulator, or says why it is skipped.
async fn official_sdk_accepts_every_answer(sdk: Sdk) {
    if let Some(reason) = sdk.missing().await {
        assert!(
            std::env::var_os("MODELGATES_REQUIRE_SDKS").is_none(),
            "MODELGATES_REQUIRE_SDKS is set, but {reason}"
        );
        println!("skipped: {reason}");
        return;
    }
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let refusals = [
        (
            "402",
            Fault::InsufficientCredits,
            "PaymentRequiredResponseError",
        ),
        ("402", Fault::KeyLimitSpent, "PaymentRequiredResponseError"),
        ("403", Fault::GuardrailBlocked, "ForbiddenResponseError"),
        (
            "429",
            Fault::RateLimited(Duration::from_secs(1)),
            "TooManyRequestsResponseError",
        ),
        (
            "503",
            Fault::Unavailable(Duration::from_secs(1)),
            "ServiceUnavailableResponseError",
        ),
    ];
    // The script signs in, then makes one chat call per status: these refusals, in turn.
    let (statuses, faults): (Vec<&str>, Vec<Fault>) = refusals
        .iter()
        .map(|(status, fault, _)| (*status, fault.clone()))
        .unzip();
    emulator.inject_in_turn(Endpoint::Chat, faults);
    let output = sdk.run(&emulator, &statuses).await;
    let mut lines: Vec<&str> = output.lines().collect();
    let key = lines.pop().expect("the key on the last line");
    assert!(
        emulator.key(key).is_some(),
        "the SDK's key is the emulator's"
    );
    let types: Vec<&str> = lines
        .iter()
        .map(|line| line.split(':').next().unwrap_or(line))
        .collect();
    let expected: Vec<&str> = refusals
        .iter()
        .map(|(_, _, error_type)| *error_type)
        .collect();
    assert_eq!(
        types, expected,
        "{} types the refusals:\n{output}",
        sdk.name
    );
}

#[tokio::test]
async fn the_official_typescript_sdk_accepts_every_answer() {
    official_sdk_accepts_every_answer(Sdk::typescript()).await;
}

#[tokio::test]
async fn the_official_python_sdk_accepts_every_answer() {
    official_sdk_accepts_every_answer(Sdk::python()).await;
}
