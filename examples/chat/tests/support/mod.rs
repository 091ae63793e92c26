//! Running the real `example-chat` binary: a clean environment, the banner read, the process
//! killed when the guard is dropped.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part of it

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary on a free port with none of the contract's variables set; tests add their own.
pub fn example_chat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_example-chat"));
    command.env("PORT", "0");
    for var in [
        "PUBLIC_URL",
        "MODELGATES_BASE_URL",
        "MODELGATES_COOKIE_SECRET",
        "MODELGATES_KEY_STORE",
        "MODELGATES_KEY_CACHE",
        "SHUTDOWN_GRACE_SECS",
        "METRICS_ADDR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        command.env_remove(var);
    }
    command
}

/// Starts `command` and reads its banner; the process stops when the guard is dropped.
pub fn serving(command: &mut Command) -> (Vec<String>, Killed) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = banner(&mut child);
    (lines, Killed(child))
}

/// Runs `command`, which must refuse to start; its stderr.
pub fn startup_error(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Reads stdout up to and including the `App:` line.
pub fn banner(child: &mut Child) -> Vec<String> {
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("App:");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

/// The line of the banner that starts with `prefix`, up to its first space.
pub fn banner_value(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("`{prefix}` in the banner: {lines:?}"))
        .to_owned()
}
