//! GStreamer's RTSP server as a test camera (tests/camera/rtsp_camera.py), run as a child
//! process and stopped by its PID.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Camera {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../camera/rtsp_camera.py")
}

impl Camera {
    /// Starts a camera on `port` with extra arguments (for example `["--auth", "digest"]`).
    pub fn start(port: u16, args: &[&str]) -> anyhow::Result<Self> {
        let mut camera = Self { child: None, port, args: args.iter().map(|a| a.to_string()).collect() };
        camera.restart()?;
        Ok(camera)
    }

    /// The camera's URL without credentials.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }

    /// Starts the camera again on the same port (after `stop`).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let mut child = Command::new("/usr/bin/python3")
            .arg(script())
            .arg("--port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the GStreamer RTSP camera (is python3-gi installed? run scripts/install-test-deps)")?;
        let stdout = child.stdout.take().context("camera stdout")?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = ready_tx.send(());
                }
            }
        });
        self.child = Some(child);
        let started = Instant::now();
        if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
            self.stop();
            bail!("the camera did not become ready within {READY_TIMEOUT:?}");
        }
        eprintln!("camera on port {} ready after {:?}", self.port, started.elapsed());
        Ok(())
    }

    /// Stops the camera process (SIGTERM, then SIGKILL after 3 s) and reaps it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop();
    }
}
