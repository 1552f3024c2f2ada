//! coturn (Debian's `turnserver`) as a real TURN server, on loopback or on an address of a
//! network namespace, stopped by its PID.

use crate::netns::Namespace;
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub enum TurnAuth<'a> {
    /// Long-term credentials: one static user.
    User { username: &'a str, password: &'a str },
    /// TURN REST API: time-limited credentials derived from this shared secret.
    SharedSecret(&'a str),
}

pub struct TurnServer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl TurnServer {
    /// On loopback, relaying on loopback too.
    pub fn start(port: u16, auth: TurnAuth<'_>) -> anyhow::Result<Self> {
        let command = Command::new("turnserver");
        Self::spawn(command, "127.0.0.1", port, auth, |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// In `namespace`, listening and relaying on `ip`, one of its addresses.
    pub fn start_in(namespace: &Namespace, ip: &str, port: u16, auth: TurnAuth<'_>) -> anyhow::Result<Self> {
        let command = namespace.command("turnserver");
        let listening = |port: u16| {
            let listeners = namespace.exec("ss", &["-H", "-l", "-t", "-n", "sport", "=", &format!(":{port}")]);
            listeners.is_ok_and(|output| !output.stdout.is_empty())
        };
        Self::spawn(command, ip, port, auth, listening)
    }

    fn spawn(mut command: Command, ip: &str, port: u16, auth: TurnAuth<'_>, is_listening: impl Fn(u16) -> bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("lookout-turn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        command
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint", "--realm", "lookout.test"])
            .args(["--listening-ip", ip, "--relay-ip", ip, "--allow-loopback-peers"])
            .args(["--listening-port", &port.to_string(), "--min-port", "62000", "--max-port", "62999"])
            .arg("--db")
            .arg(dir.join("turndb"))
            .arg("--pidfile")
            .arg(dir.join("turn.pid"))
            .arg("--log-file")
            .arg(dir.join("turn.log"))
            .args(["--simple-log", "--no-stdout-log"]);
        match auth {
            TurnAuth::User { username, password } => command.args(["--lt-cred-mech", "--user", &format!("{username}:{password}")]),
            TurnAuth::SharedSecret(secret) => command.args(["--use-auth-secret", "--static-auth-secret", secret]),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting turnserver (Debian's coturn; scripts/install-test-deps installs it)")?;
        let mut server = Self { child, dir, port };
        // Ready when it accepts TCP on its listening port (it serves UDP and TCP there).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_listening(port) {
            if Instant::now() > deadline || matches!(server.child.try_wait(), Ok(Some(_))) {
                server.stop();
                bail!("turnserver did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// What coturn logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
