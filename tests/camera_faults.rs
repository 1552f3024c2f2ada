//! Cameras that answer badly (fault_proxy.py in front of GStreamer's RTSP server): garbage
//! instead of RTSP, a malformed SDP, a connection closed in the middle of DESCRIBE. Each path
//! reports its error in words and keeps retrying; the process and the other paths' viewers are
//! unaffected; a camera that answers well again is picked up by itself.

mod common;

use common::{small_pattern, start_server, wait_live, wait_retrying};
use lookout::config::{PathConfig, RtspSource, Transport};
use lookout_testkit::camera::{Camera, FaultProxy};
use lookout_testkit::viewer::Viewer;
use std::time::Duration;

fn through(proxy: &FaultProxy) -> PathConfig {
    PathConfig::Rtsp(RtspSource { url: proxy.url().parse().expect("url"), credentials: None, transport: Transport::Tcp })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_reported_and_retried_while_others_play() {
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180"]).expect("camera");
    let garbage = FaultProxy::start(camera.port, "bad-rtsp", &[]).expect("proxy");
    let bad_sdp = FaultProxy::start(camera.port, "bad-sdp", &[]).expect("proxy");
    let cut = FaultProxy::start(camera.port, "close-mid-describe", &[]).expect("proxy");
    // Faults only its first connection: the retry reaches the camera.
    let once = FaultProxy::start(camera.port, "bad-sdp", &["--fault-connections", "1"]).expect("proxy");
    let server = start_server([
        ("demo", small_pattern()),
        ("garbage", through(&garbage)),
        ("bad-sdp", through(&bad_sdp)),
        ("cut", through(&cut)),
        ("once", through(&once)),
    ])
    .await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let watcher = Viewer::watch_ws(server.addr, "demo", 0).await.expect("watcher");
    let before = watcher.wait_for_packets(30, Duration::from_secs(15)).await.expect("plays");

    for (path, words) in [("garbage", "not valid RTSP"), ("bad-sdp", "malformed SDP"), ("cut", "")] {
        let error = wait_retrying(&server, path, Duration::from_secs(15)).await;
        eprintln!("{path}: {error}");
        assert!(error.contains(words) && !error.trim().is_empty(), "{path}: {error:?}");
        assert!(!error.contains('\n') && error.chars().count() <= 301, "{path}: one line in words: {error:?}");
    }
    // Still retrying a while later: the attempts go on, and the path never went live.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for path in ["garbage", "bad-sdp", "cut"] {
        let state = server.registry.get(path).expect("path").state();
        assert!(!state.is_live(), "{path}: {state}");
    }
    wait_live(&server, "once", Duration::from_secs(20)).await;

    let after = watcher.received();
    assert!(after.packets > before.packets + 30, "the demo viewer kept playing: {} then {}", before.packets, after.packets);
    assert_eq!(after.sequence_gaps, 0, "and lost nothing");
}
