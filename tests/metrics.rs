//! `/metrics` with real parts: Debian's Prometheus, started by the test on loopback, scrapes
//! Lookout while a webrtc-rs viewer and then Chromium watch, and the series are read back
//! through Prometheus's HTTP API: the round trip and loss from each viewer's receiver reports,
//! and the page's own report of its playback (`qoe`); ffmpeg playing LL-HLS counts as an HLS
//! viewer; `promtool check metrics` passes on the output; counters keep what ended sessions
//! were sent.

mod common;

use common::{small_pattern, start_server, wait_live};
use lookout_testkit::http::request;
use lookout_testkit::viewer::Viewer;
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn scrape(server: SocketAddr) -> String {
    let response = request(server, "GET", "/metrics", None, b"").await.expect("the server answers");
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

/// The value of the sample `series` (name and labels, as written) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|value| value.trim().parse().ok()))
}

/// Prometheus, scraping `target` every second, until dropped.
struct Prometheus {
    child: std::process::Child,
    addr: SocketAddr,
    folder: std::path::PathBuf,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Self {
        let folder = std::env::temp_dir().join(format!("lookout-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("folder");
        let config = folder.join("prometheus.yml");
        std::fs::write(&config, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lookout\n    static_configs:\n      - targets: ['{target}']\n")).expect("config");
        let addr: SocketAddr = format!("127.0.0.1:{}", lookout_testkit::free_port()).parse().expect("address");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", folder.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/install-test-deps installs it)");
        Self { child, addr, folder }
    }

    /// The value of an instant query's first result, if it has one.
    async fn query(&self, query: &str) -> Option<f64> {
        let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let response = request(self.addr, "GET", &format!("/api/v1/query?query={encoded}"), None, b"").await.ok()?;
        let answer: Value = serde_json::from_str(&response.body).ok()?;
        answer["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits (30 s at most) until `query` gives a value that `wanted` accepts.
    async fn wait_for(&self, query: &str, wanted: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.query(query).await;
            if let Some(value) = value.filter(|value| wanted(*value)) {
                return value;
            }
            assert!(Instant::now() < deadline, "Prometheus never had {query} as wanted (last {value:?})");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_paths_and_viewers() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let viewer = Viewer::watch_ws(server.addr, "demo", 0).await.expect("a viewer");
    viewer.wait_for_packets(100, Duration::from_secs(10)).await.expect("video");

    let text = scrape(server.addr).await;
    assert_promtool_passes(&text);
    assert_eq!(sample(&text, "lookout_path_state{path=\"demo\",layer=\"main\",state=\"live\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "lookout_webrtc_sessions_open{path=\"demo\"}"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "lookout_path_viewers{path=\"demo\",transport=\"webrtc\"}"), Some(1.0), "{text}");
    // Every live packet's wait is counted (not those of the keyframe replayed at the start).
    let delayed = sample(&text, "lookout_webrtc_send_delay_seconds_count{path=\"demo\",layer=\"main\"}").unwrap_or(0.0);
    let sent = sample(&text, "lookout_webrtc_packets_sent_total{path=\"demo\"}").unwrap_or(0.0);
    assert!(delayed > 0.0 && delayed <= sent, "{delayed} waits counted, {sent} packets sent: {text}");

    let prometheus = Prometheus::start(server.addr);
    let packets = prometheus.wait_for("lookout_webrtc_packets_sent_total{path=\"demo\"}", |packets| packets > 0.0).await;
    prometheus.wait_for("lookout_path_frames_total{path=\"demo\",layer=\"main\"}", |frames| frames > 0.0).await;
    prometheus.wait_for("lookout_webrtc_first_frame_seconds_count{path=\"demo\"}", |count| count == 1.0).await;
    // webrtc-rs answers Lookout's sender reports in its receiver reports, every second.
    let round_trips = prometheus.wait_for("lookout_webrtc_round_trip_seconds_count{path=\"demo\"}", |count| count >= 1.0).await;
    let round_trip = prometheus.wait_for("lookout_webrtc_round_trip_seconds_sum{path=\"demo\"}", |sum| sum > 0.0).await / round_trips;
    assert!(round_trip < 0.5, "a round trip on loopback: {round_trip} s");
    prometheus.wait_for("lookout_webrtc_loss_ratio_count{path=\"demo\"}", |count| count >= 1.0).await;
    eprintln!("Prometheus read {packets} packets sent to demo's viewer, a round trip of {:.1} ms", round_trip * 1000.0);

    // The session ends; what it was sent stays counted.
    viewer.close().await.expect("close");
    common::wait_for("the session to end", Duration::from_secs(10), || server.sessions.list().is_empty().then_some(())).await;
    let after = scrape(server.addr).await;
    assert_eq!(sample(&after, "lookout_webrtc_sessions_open{path=\"demo\"}"), Some(0.0), "{after}");
    assert_eq!(sample(&after, "lookout_webrtc_sessions_total{path=\"demo\"}"), Some(1.0), "{after}");
    let sent_after = sample(&after, "lookout_webrtc_packets_sent_total{path=\"demo\"}").expect("still counted");
    assert!(sent_after >= packets, "counters only grow: {sent_after} after, {packets} seen by Prometheus before");
    let round_trips_before_chromium = sample(&after, "lookout_webrtc_round_trip_seconds_count{path=\"demo\"}").expect("still counted");

    // Chromium's page reports what it saw (every 5 s), and Prometheus has it.
    let url = format!("{}?path=demo", server.page_url());
    let page = tokio::task::spawn_blocking(move || lookout_testkit::browser::play(&url, &["--seconds", "11"])).await.expect("join");
    let page = page.unwrap_or_else(|failure| panic!("the page did not play: {failure}"));
    let reports = prometheus.wait_for("lookout_viewer_reports_total{path=\"demo\"}", |reports| reports >= 2.0).await;
    let first_frames = prometheus.wait_for("lookout_viewer_first_frame_seconds_count{path=\"demo\"}", |count| count >= 1.0).await;
    assert_eq!(first_frames, 1.0, "the page's first frame counts once, however many reports: {reports} reports");
    let first_frame = prometheus.wait_for("lookout_viewer_first_frame_seconds_sum{path=\"demo\"}", |sum| sum > 0.0).await;
    prometheus.wait_for("lookout_viewer_glass_to_glass_seconds_count{path=\"demo\"}", |count| count >= 1.0).await;
    eprintln!("the page reported a first frame after {first_frame} s (it measured {} ms)", page["firstFrameMs"]);
    prometheus.wait_for("lookout_webrtc_round_trip_seconds_count{path=\"demo\"}", |count| count > round_trips_before_chromium).await;

    // ffmpeg reading LL-HLS at the pace of the video is an HLS viewer while it plays.
    let hls_viewers = "lookout_path_viewers{path=\"demo\",transport=\"hls\"}";
    assert_eq!(sample(&scrape(server.addr).await, hls_viewers), Some(0.0));
    let playlist = format!("http://{}/hls/demo/index.m3u8", server.addr);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-re", "-i", &playlist, "-t", "20", "-f", "null", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ffmpeg (scripts/install-test-deps installs it)");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut counted = None;
    while Instant::now() < deadline && counted != Some(1.0) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        counted = sample(&scrape(server.addr).await, hls_viewers);
    }
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert_eq!(counted, Some(1.0), "ffmpeg playing LL-HLS counts as one HLS viewer");

    assert_promtool_passes(&scrape(server.addr).await);
}

/// `promtool check metrics` finds nothing wrong with `text` (its lint included).
fn assert_promtool_passes(text: &str) {
    let mut promtool = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("promtool runs");
    promtool.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let checked = promtool.wait_with_output().expect("promtool ends");
    assert!(checked.status.success(), "promtool check metrics: {}{}\n{text}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
}
