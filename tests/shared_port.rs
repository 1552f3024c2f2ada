//! The shared media port, proven with the binary as an operator runs it: Rust viewers (over /ws
//! and WHEP) and Chromium play at once while the Lookout process has exactly one UDP socket and
//! one ICE-TCP listener, read with `ss`.

use lookout_testkit::browser;
use lookout_testkit::viewer::Viewer;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

/// Lookout (the binary) with a configuration file, stopped by its PID.
struct Lookout {
    child: Child,
    config: std::path::PathBuf,
    http: SocketAddr,
}

impl Lookout {
    fn start(media_port: u16) -> Self {
        let config = std::env::temp_dir().join(format!("lookout-shared-port-{}.toml", std::process::id()));
        let text = format!(
            "listen = \"127.0.0.1:0\"\n[paths.demo]\nsource = \"testpattern\"\n\
             test_pattern = {{ width = 320, height = 180, fps = 15, keyframe_interval_secs = 1, bitrate_kbps = 300 }}\n\
             [webrtc]\nlisten_ips = [\"127.0.0.1\"]\nudp_port = {media_port}\nice_tcp = true\n"
        );
        std::fs::write(&config, text).expect("write config");
        let mut child = Command::new(LOOKOUT).arg("--config").arg(&config).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start lookout");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        // "Lookout is running: open http://127.0.0.1:PORT/?path=demo"
        let http = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("lookout printed its URL: {line:?}"));
        Self { child, config, http }
    }

    /// Local addresses of this process's sockets as `ss` lists them: `-ua` every UDP socket,
    /// `-tl` the TCP listeners.
    fn sockets(&self, which: &str) -> Vec<String> {
        let output = Command::new("ss").args(["-H", "-n", "-p", which]).output().expect("run ss (iproute2)");
        let owner = format!("pid={},", self.child.id());
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.contains(&owner))
            .filter_map(|line| line.split_whitespace().nth(3).map(str::to_owned))
            .collect()
    }
}

impl Drop for Lookout {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Watches over /ws until the test pattern is live (a second or so after start).
async fn first_viewer(http: SocketAddr) -> Viewer {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match Viewer::watch_ws(http, "demo", 0).await {
            Ok(viewer) => return viewer,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error:#}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("no viewer could watch: {error:#}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_plays_through_one_udp_socket() {
    let media_port = lookout_testkit::free_port();
    let lookout = Lookout::start(media_port);
    let mut viewers = vec![first_viewer(lookout.http).await];
    viewers.push(Viewer::watch_ws(lookout.http, "demo", 0).await.expect("second /ws viewer"));
    viewers.push(Viewer::watch_whep(lookout.http, "demo", 0).await.expect("WHEP viewer"));
    for viewer in &viewers {
        viewer.wait_for_packets(30, Duration::from_secs(15)).await.expect("plays");
    }
    let page = format!("http://{}/?path=demo", lookout.http);
    let chromium = tokio::task::spawn_blocking(move || browser::play(&page, &["--seconds", "3"]));

    // While Chromium plays beside them, every viewer keeps receiving.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shared = format!("127.0.0.1:{media_port}");
    assert_eq!(lookout.sockets("-ua"), vec![shared.clone()], "one UDP socket carries every viewer's media");
    let mut listeners = lookout.sockets("-tl");
    listeners.sort();
    let mut expected = vec![lookout.http.to_string(), shared];
    expected.sort();
    assert_eq!(listeners, expected, "TCP: the page's HTTP port and one ICE-TCP listener, nothing per viewer");
    let result = chromium.await.expect("join").unwrap_or_else(|failure| panic!("Chromium did not play: {failure}"));
    assert!(result["framesRendered"].as_u64().unwrap_or(0) > 20, "Chromium rendered frames: {result}");
    assert_eq!(result["transport"], "webrtc", "Chromium played over WebRTC, with no fallback: {result}");
    for viewer in &viewers {
        let before = viewer.received().packets;
        let after = viewer.wait_for_packets(before + 20, Duration::from_secs(10)).await.expect("still playing");
        assert_eq!(after.sequence_gaps, 0, "no packet lost on loopback");
    }
}
