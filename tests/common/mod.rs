//! Helpers shared by the integration tests: a Lookout server in-process, polling with bounds.
#![allow(dead_code)] // each test binary uses its own subset

use lookout::config::{Config, MediaPorts, PathConfig, PathDefinition, TestPatternSettings, WebRtcConfig};
use lookout::Server;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A small, cheap test pattern, so tests leave CPU to the peers they talk to.
pub fn small_pattern() -> PathConfig {
    PathConfig::TestPattern(TestPatternSettings { width: 320, height: 180, fps: 15, keyframe_interval: Duration::from_secs(1), bitrate_kbps: 300, audio: true })
}

/// Starts Lookout on an ephemeral loopback port with the given paths, their sources running
/// all the time (tests of on-demand paths start their own).
pub async fn start_server(paths: impl IntoIterator<Item = (&'static str, PathConfig)>) -> Server {
    start_server_with_layers(paths, []).await
}

/// Likewise, with lower layers for some of the paths.
pub async fn start_server_with_layers(
    paths: impl IntoIterator<Item = (&'static str, PathConfig)>,
    lower_layers: impl IntoIterator<Item = (&'static str, Vec<PathConfig>)>,
) -> Server {
    start(paths, lower_layers, shared_port_of_its_own()).await
}

/// Likewise, with these network settings.
pub async fn start_server_with_webrtc(paths: impl IntoIterator<Item = (&'static str, PathConfig)>, webrtc: WebRtcConfig) -> Server {
    start(paths, [], webrtc).await
}

/// Starts Lookout on an ephemeral loopback port with the given paths and access control.
pub async fn start_server_with_auth(
    paths: impl IntoIterator<Item = (&'static str, PathConfig)>,
    auth: Option<lookout::auth::AuthSettings>,
    limits: lookout::limits::LimitSettings,
) -> Server {
    init_logging();
    let paths = paths.into_iter().map(|(n, p)| (n.to_owned(), PathDefinition::from(p).always_on())).collect();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, webrtc: shared_port_of_its_own(), auth, limits, state_dir: scratch_state_dir(), ..Config::builtin_default() };
    Server::start(config).await.expect("server starts")
}

async fn start(
    paths: impl IntoIterator<Item = (&'static str, PathConfig)>,
    lower_layers: impl IntoIterator<Item = (&'static str, Vec<PathConfig>)>,
    webrtc: WebRtcConfig,
) -> Server {
    init_logging();
    let mut lower_layers: BTreeMap<&str, Vec<PathConfig>> = lower_layers.into_iter().collect();
    let paths = paths.into_iter().map(|(n, p)| (n.to_owned(), PathDefinition::with_layers(p, lower_layers.remove(n).unwrap_or_default()).always_on())).collect();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, webrtc, state_dir: scratch_state_dir(), ..Config::builtin_default() };
    Server::start(config).await.expect("server starts")
}

/// A `state_dir` of one server's own (made only if a path is added through the API), so that
/// what one test adds never reaches another.
pub fn scratch_state_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("lookout-test-state-{}-{n}", std::process::id()))
}

/// The default network settings, but on a shared media port the system chooses, so that
/// servers of tests running side by side do not meet.
pub fn shared_port_of_its_own() -> WebRtcConfig {
    WebRtcConfig { media_ports: MediaPorts::Shared(0), ..Default::default() }
}

/// Lookout's logs in the test output (shown for failing tests), webrtc's warnings included:
/// it reports rejected packets only there.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the path is live.
pub async fn wait_live(server: &Server, path: &str, timeout: Duration) {
    let stream = server.registry.get(path).expect("path exists").clone();
    wait_for(&format!("{path} to go live (now {})", stream.state()), timeout, || stream.state().is_live().then_some(())).await;
}

/// Waits until the path is retrying and returns its last error, in words.
pub async fn wait_retrying(server: &Server, path: &str, timeout: Duration) -> String {
    let stream = server.registry.get(path).expect("path exists").clone();
    wait_for(&format!("{path} to be retrying (now {})", stream.state()), timeout, || match stream.state() {
        lookout::stream::PathState::Retrying { error, .. } => Some(error),
        _ => None,
    })
    .await
}

/// A viewer of `small_pattern` got a stream that plays. Lookout sends SPS, PPS and an IDR first;
/// webrtc-rs, the receiver here, drops SRTP packets that arrive before it has applied the DTLS
/// keys, so it can miss the start of that keyframe, and then asks for one (PLI) as a browser
/// would, which Lookout answers from its cache. So: whatever comes before the first keyframe
/// start is only that lost beginning, followed by a keyframe request; from the first keyframe
/// on, every access unit decodes. One SSRC, no gap in the sequence numbers.
pub fn assert_decodable_from_the_first_keyframe(viewer: &lookout_testkit::viewer::Viewer, how: &str) {
    use lookout_testkit::h264;
    let received = viewer.received();
    assert_eq!(received.ssrcs.len(), 1, "{how}: one SSRC, got {:?}", received.ssrcs);
    assert_eq!(received.sequence_gaps, 0, "{how}: no packet lost after the first");
    let playable = h264::from_first_keyframe(&received.kept);
    let skipped = received.kept.len() - playable.len();
    if skipped > 0 {
        assert!(received.keyframe_requests_sent >= 1, "{how}: {skipped} packets before a keyframe, and no PLI sent");
        assert!(skipped < 100, "{how}: {skipped} packets before a keyframe came: the PLI was not answered from the cache");
    }
    let types = h264::first_access_unit_types(playable).expect("a complete first access unit");
    assert_eq!(&types[..3], &[h264::SPS, h264::PPS, h264::IDR], "{how}: the first access unit starts SPS, PPS, IDR: {types:?}");
    let report = h264::decode(playable).expect("every access unit decodes");
    assert!(report.pictures >= 10, "{how}: decoded {report:?}");
    assert_eq!(report.pictures, report.access_units, "{how}: every access unit gave a picture: {report:?}");
    assert_eq!((report.width, report.height), (320, 180), "{how}");
}

/// A /ws and a WHEP viewer of `demo` that each drop 15 chosen packets get every one of them
/// back over RTX, from the stream's shared history, and the session counts the NACKs answered.
pub async fn assert_lost_packets_come_back_over_rtx(server: &Server) {
    use lookout_testkit::loss::LossPattern;
    use lookout_testkit::viewer::{Viewer, ViewerOptions};
    const DROPS: usize = 15;
    wait_live(server, "demo", Duration::from_secs(10)).await;
    let lossy = ViewerOptions { loss: Some(LossPattern { every: 23, count: DROPS }), ..ViewerOptions::keeping(0) };
    let ws = Viewer::watch_ws_with(std::net::Ipv4Addr::LOCALHOST.into(), server.addr, "demo", lossy.clone()).await.expect("watch over /ws");
    let whep = Viewer::watch_whep_with(server.addr, "demo", lossy).await.expect("watch over WHEP");
    for (viewer, how) in [(&ws, "/ws"), (&whep, "WHEP")] {
        let report = wait_for(&format!("{how}: every dropped packet back"), Duration::from_secs(20), || {
            let report = viewer.loss_report();
            (report.dropped.len() == DROPS && report.recovered == report.dropped).then_some(report)
        })
        .await;
        assert_eq!(report.recovered_over_rtx, DROPS, "{how}: each came back over RTX: {report:?}");
        let stats = server.sessions.get(&viewer.session).expect("session").video_stats().expect("video");
        let stats_text = serde_json::to_string(&stats).unwrap_or_default();
        assert!(stats.nack.nacks_received >= 1 && stats.nack.packets_resent >= DROPS as u64, "{how}: the NACKs were answered: {stats_text}");
        assert_eq!(viewer.connection_state(), webrtc::peer_connection::RTCPeerConnectionState::Connected, "{how}");
    }
}
