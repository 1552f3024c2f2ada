//! The test cameras, run as child processes and stopped by their PIDs: GStreamer's RTSP server
//! (tests/camera/rtsp_camera.py) and the fault-injecting proxy (tests/camera/fault_proxy.py).

use crate::netns::Namespace;
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Camera {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    /// The network namespace it runs in, when not the test's own.
    namespace: Option<String>,
    clients: Arc<ClientCount>,
}

/// The RTSP connections a camera has open now, and has had since it started first.
#[derive(Default)]
struct ClientCount {
    open: AtomicUsize,
    ever: AtomicUsize,
}

impl ClientCount {
    /// A line of the camera's: "CLIENTS N", the connections open now.
    fn note(&self, line: &str) {
        let Some(open) = line.strip_prefix("CLIENTS ").and_then(|n| n.trim().parse::<usize>().ok()) else { return };
        if open > self.open.swap(open, Ordering::Relaxed) {
            self.ever.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../camera").join(name)
}

/// Starts a helper script and waits for the `READY` line it prints once listening; its other
/// lines go to `on_line`.
fn spawn_until_ready(mut command: Command, what: &str, on_line: impl Fn(&str) + Send + 'static) -> anyhow::Result<Child> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {what} (is python3-gi installed? run scripts/install-test-deps)"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("READY") {
                let _ = ready_tx.send(());
            } else {
                on_line(&line);
            }
        }
    });
    if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
        stop_child(&mut child);
        bail!("{what} did not become ready within {READY_TIMEOUT:?}");
    }
    Ok(child)
}

/// SIGTERM, then SIGKILL after 3 s, and reap.
fn stop_child(child: &mut Child) {
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

/// tests/camera/fault_proxy.py between a client and a camera: it damages the camera's answers
/// or stream as cheap cameras do (see that script for the modes).
pub struct FaultProxy {
    child: Child,
    pub port: u16,
}

impl FaultProxy {
    pub fn start(target_port: u16, mode: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let port = crate::free_port();
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(script("fault_proxy.py"))
            .args(["--listen-port", &port.to_string(), "--target-port", &target_port.to_string(), "--mode", mode])
            .args(extra);
        Ok(Self { child: spawn_until_ready(command, "the fault proxy", |_| {})?, port })
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Camera {
    /// Starts a camera on `port` with extra arguments (for example `["--auth", "digest"]`).
    pub fn start(port: u16, args: &[&str]) -> anyhow::Result<Self> {
        let mut camera = Self { child: None, port, args: args.iter().map(|a| a.to_string()).collect(), namespace: None, clients: Arc::default() };
        camera.restart()?;
        Ok(camera)
    }

    /// Starts a camera inside `namespace`, listening on `address` (one of that namespace's).
    pub fn start_in(namespace: &Namespace, address: &str, port: u16, args: &[&str]) -> anyhow::Result<Self> {
        let args = ["--address", address].iter().chain(args).map(|a| a.to_string()).collect();
        let mut camera = Self { child: None, port, args, namespace: Some(namespace.name.clone()), clients: Arc::default() };
        camera.restart()?;
        Ok(camera)
    }

    /// The camera's URL without credentials.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }

    /// The RTSP connections open to the camera now.
    pub fn open_connections(&self) -> usize {
        self.clients.open.load(Ordering::Relaxed)
    }

    /// The RTSP connections made to the camera since it first started.
    pub fn connections_made(&self) -> usize {
        self.clients.ever.load(Ordering::Relaxed)
    }

    /// Starts the camera again on the same port (after `stop`).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let started = Instant::now();
        let mut command = match &self.namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace, "/usr/bin/python3"]);
                command
            }
            None => Command::new("/usr/bin/python3"),
        };
        command.arg(script("rtsp_camera.py")).arg("--port").arg(self.port.to_string()).args(&self.args);
        // A new process: none of the old one's connections are open.
        self.clients.open.store(0, Ordering::Relaxed);
        let clients = self.clients.clone();
        self.child = Some(spawn_until_ready(command, "the GStreamer RTSP camera", move |line| clients.note(line))?);
        eprintln!("camera on port {} ready after {:?}", self.port, started.elapsed());
        Ok(())
    }

    /// Stops the camera process (SIGTERM, then SIGKILL after 3 s) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop();
    }
}
