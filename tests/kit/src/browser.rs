//! Runs tests/browser/play.mjs: Debian's Chromium, driven by playwright-core, on Lookout's page.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../browser/play.mjs")
}

/// Opens `url`, which the server should refuse; `Ok` with the JSON result when the page said it
/// is not allowed and showed nothing, `Err` otherwise.
pub fn refused(url: &str) -> Result<serde_json::Value, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../browser/refused.mjs");
    let mut command = Command::new("node");
    command.arg(script).args(["--url", url]);
    run(command)
}

/// `node play.mjs ARGS`, for tests that drive it step by step.
pub fn play_command(args: &[String]) -> Command {
    let mut command = Command::new("node");
    command.arg(script()).args(args);
    command
}

/// Plays `url` to the end; `Ok` with the JSON result when the page played, `Err` with the
/// result (or the failure) when it did not.
pub fn play(url: &str, extra: &[&str]) -> Result<serde_json::Value, String> {
    let mut args = vec!["--url".to_owned(), url.to_owned()];
    args.extend(extra.iter().map(|a| a.to_string()));
    run(play_command(&args))
}

/// Runs a prepared play.mjs command (inside a network namespace, say) to the end.
pub fn run(mut command: Command) -> Result<serde_json::Value, String> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run node (scripts/install-test-deps installs it): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("play.mjs: {stdout}");
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).map_err(|_| stdout.clone())?;
    if output.status.success() {
        Ok(result)
    } else {
        Err(result.to_string())
    }
}
