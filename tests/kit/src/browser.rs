//! Runs tests/browser/play.mjs: Debian's Chromium, driven by playwright-core, on Lookout's page.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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

/// Runs tests/browser/wall.mjs on the wall at `server` (the page's URL) with `args`.
pub fn wall(server: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../browser/wall.mjs");
    let mut command = Command::new("node");
    command.arg(script).args(["--server", server]).args(args);
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

/// The page playing a path under play.mjs --resume: it has played, and waits for the test to
/// break something and say "continue", then checks that playback resumes by itself.
pub struct PausedPage {
    page: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    /// Frames Chromium dropped before the pause.
    dropped_before_pause: Option<u64>,
}

impl PausedPage {
    pub async fn open(url: &str) -> Self {
        Self::open_with_env(url, &[]).await
    }

    /// Likewise, with these variables in the page script's environment (`CHROMIUM_TRUST_SPKI`).
    pub async fn open_with_env(url: &str, env: &[(&str, &str)]) -> Self {
        let mut page = play_command(&["--url".into(), url.to_owned(), "--seconds".into(), "2".into(), "--resume".into(), "--first-frame-timeout".into(), "30".into()])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node");
        let mut lines = BufReader::new(page.stdout.take().expect("stdout")).lines();
        let (line, lines) = tokio::task::spawn_blocking(move || (lines.next(), lines)).await.expect("join");
        let line = line.expect("a line").expect("readable");
        assert!(line.contains("playing"), "the page played first: {line}");
        let playing: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        Self { page, lines, dropped_before_pause: playing["framesDropped"].as_u64() }
    }

    /// Lets the page go on and fails the test unless playback resumes; returns what the page
    /// script measured.
    /// The figures get `framesDroppedBeforePause`: the dropped frames counted before the pause.
    pub async fn assert_resumes(mut self, after: &str) -> serde_json::Value {
        let dropped_before_pause = self.dropped_before_pause;
        self.page.stdin.take().expect("stdin").write_all(b"continue\n").expect("tell the page script");
        let (status, last) = tokio::task::spawn_blocking(move || {
            let status = self.page.wait().expect("wait");
            (status, self.lines.map_while(Result::ok).last())
        })
        .await
        .expect("join");
        eprintln!("after {after}: {last:?}");
        assert!(status.success(), "playback resumed after {after}: {last:?}");
        let mut result: serde_json::Value = last.and_then(|line| serde_json::from_str(&line).ok()).unwrap_or_default();
        result["framesDroppedBeforePause"] = dropped_before_pause.into();
        result
    }
}
