//! Cameras that answer badly (fault_proxy.py in front of GStreamer's RTSP server): garbage
//! instead of RTSP, a malformed SDP, a connection closed in the middle of DESCRIBE. Each path
//! reports its error in words and keeps retrying; the process and the other paths' viewers are
//! unaffected; a camera that answers well again is picked up by itself.

mod common;

use common::{small_pattern, start_server, wait_live, wait_retrying};
use lookout::config::{PathConfig, RtspSource, RtspTransport};
use lookout_testkit::camera::{Camera, FaultProxy};
use lookout_testkit::viewer::Viewer;
use std::time::Duration;

fn through(proxy: &FaultProxy) -> PathConfig {
    PathConfig::Rtsp(RtspSource { url: proxy.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp })
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

/// A camera that loses a few hundred bytes inside its interleaved packets every 2-3 s, as
/// cheap cameras do on TCP: Lookout resynchronises on the stream instead of reconnecting (the
/// path never leaves live), drops the frames the loss damaged up to the next keyframe, and a
/// viewer gets only whole frames: no sequence gap, and every access unit decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_bytes_are_resynchronised_without_reconnecting_and_no_damaged_frame_is_forwarded() {
    use lookout_testkit::h264;
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--keyint", "15"]).expect("camera");
    let lossy = FaultProxy::start(camera.port, "drop-bytes", &["--interval-min", "2", "--interval-max", "3", "--seed", "7"]).expect("proxy");
    let server = start_server([("cam", through(&lossy))]).await;
    wait_live(&server, "cam", Duration::from_secs(15)).await;
    let stream = server.registry.get("cam").expect("cam").clone();
    let viewer = Viewer::watch_ws(server.addr, "cam", 20_000).await.expect("viewer");
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    while std::time::Instant::now() < deadline {
        assert!(stream.state().is_live(), "the path stayed live: {}", stream.state());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = stream.stats();
    eprintln!("after 12 s of lost bytes: {stats:?}");
    assert!(stats.resyncs >= 3 && stats.bytes_lost >= 300, "resynchronised after each loss: {stats:?}");
    assert!(stats.frames_dropped_after_loss > 0, "{stats:?}");
    let received = viewer.received();
    assert_eq!(received.sequence_gaps, 0, "the viewer lost nothing: damaged frames were never sent");
    let report = h264::decode(h264::from_first_keyframe(&received.kept)).expect("decodes");
    assert!(report.access_units > 100 && report.pictures == report.access_units, "{report:?}");
}

/// A camera killed and started again: its viewer stays on the same WebRTC session, is told the
/// camera is reconnecting, and its video and audio resume on the same tracks with the same
/// SSRCs, no sequence gap, and timestamps that advanced by the time the camera was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_camera_resumes_on_the_same_session_with_continuous_rtp() {
    use lookout_testkit::viewer::longest_pause;
    use webrtc::peer_connection::RTCPeerConnectionState;
    const AWAY: Duration = Duration::from_secs(3);
    let mut camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--audio", "pcmu"]).expect("camera");
    let source = RtspSource { url: camera.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp };
    let server = start_server([("cam", PathConfig::Rtsp(source))]).await;
    wait_live(&server, "cam", Duration::from_secs(15)).await;
    let viewer = Viewer::watch_ws(server.addr, "cam", 0).await.expect("viewer");
    let before = viewer.wait_for_packets(60, Duration::from_secs(15)).await.expect("plays");

    camera.stop();
    let stopped = std::time::Instant::now();
    wait_retrying(&server, "cam", Duration::from_secs(15)).await;
    tokio::time::sleep(AWAY.saturating_sub(stopped.elapsed())).await;
    camera.restart().expect("camera restarts on the same port");
    let packets_then = viewer.received().packets;
    let resumed = viewer.wait_for_packets(packets_then + 60, Duration::from_secs(15)).await.expect("the video resumes");
    wait_live(&server, "cam", Duration::from_secs(1)).await;

    assert_eq!(viewer.connection_state(), RTCPeerConnectionState::Connected, "the viewer stayed connected");
    assert!(resumed.packets > before.packets);
    assert_eq!((resumed.ssrcs.len(), resumed.audio_ssrcs.len()), (1, 1), "one video and one audio SSRC throughout: {:?} {:?}", resumed.ssrcs, resumed.audio_ssrcs);
    assert_eq!((resumed.sequence_gaps, resumed.audio_sequence_gaps), (0, 0), "sequence numbers continue");
    assert!(resumed.source_states.iter().any(|state| state == "retrying"), "told the camera was lost: {:?}", resumed.source_states);
    assert_eq!(resumed.source_states.last().map(String::as_str), Some("live"), "and that it is back: {:?}", resumed.source_states);
    for (track, timeline, clock_rate) in [("video", &resumed.video_timeline, 90_000), ("audio", &resumed.audio_timeline, 8_000)] {
        let (pause, advanced) = longest_pause(timeline, clock_rate).expect("packets on both sides of the outage");
        eprintln!("{track}: paused {pause:?}, timestamps advanced {advanced:.3} s");
        assert!(pause >= AWAY, "{track}: the outage is the longest pause: {pause:?}");
        assert!((advanced - pause.as_secs_f64()).abs() < 0.5, "{track}: timestamps advanced {advanced:.3} s over a pause of {pause:?}");
    }
}

/// A minute of faults every 3-10 s from a camera behind the fault proxy (lost bytes, stalls of
/// 1-2 s, connection resets), with a Rust viewer and Chromium watching: nobody disconnects or
/// renegotiates, every frame the Rust viewer gets decodes, Chromium drops no frame after its
/// join, and the picture comes back after every fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_camera_faults_disconnects_nobody_and_forwards_no_damaged_frame() {
    use lookout_testkit::{browser, h264};
    use webrtc::peer_connection::RTCPeerConnectionState;
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--keyint", "30"]).expect("camera");
    let chaos = FaultProxy::start(camera.port, "chaos", &["--interval-min", "3", "--interval-max", "10", "--seed", "11"]).expect("proxy");
    let server = start_server([("cam", through(&chaos))]).await;
    wait_live(&server, "cam", Duration::from_secs(15)).await;
    let stream = server.registry.get("cam").expect("cam").clone();
    let viewer = Viewer::watch_ws(server.addr, "cam", 100_000).await.expect("viewer");
    let url = format!("{}?path=cam", server.page_url());
    let page = tokio::task::spawn_blocking(move || browser::play(&url, &["--width", "320", "--seconds", "60", "--first-frame-timeout", "20"]));
    let page = page.await.expect("join").unwrap_or_else(|failure| panic!("Chromium did not play through the faults: {failure}"));

    let stats = stream.stats();
    let received = viewer.received();
    let pauses: Vec<Duration> = received.video_timeline.windows(2).map(|pair| pair[1].0.saturating_sub(pair[0].0)).filter(|gap| *gap > Duration::from_millis(200)).collect();
    eprintln!("after a minute of faults: {stats:?}\nChromium: {page}\nRust viewer: pauses over 200 ms: {pauses:?}, total {:?}", pauses.iter().sum::<Duration>());
    assert!(stats.resyncs + stats.frames_dropped_after_loss > 0, "faults were injected: {stats:?}");
    // The seed makes one of the faults a 1.5 s stall, whose backlog must not reach viewers.
    assert!(stats.late_backlogs >= 1 && stats.frames_withheld_late >= 30, "the stall's backlog was withheld: {stats:?}");
    assert_eq!(page["sessionsStarted"].as_u64(), Some(1), "Chromium kept its one session: {page}");
    // The join replays the camera's cached GOP (up to 30 frames here) with its timestamps
    // squeezed 2 ms apart, so that the picture starts at once; Chromium may count some of those
    // as dropped (2 in a CI run beside a release build, sampled when 35 frames were rendered).
    // From then on, through every fault, none may be dropped. play.mjs samples the count every
    // 250 ms (about 8 frames), so the join's are those noted by the time 30 + 2 x 8 were rendered.
    const JOIN_FRAMES: u64 = 46;
    let dropped_at_join = page["framesDroppedAt"]
        .as_array()
        .and_then(|samples| samples.iter().filter(|sample| sample["framesRendered"].as_u64().is_some_and(|rendered| rendered <= JOIN_FRAMES)).filter_map(|sample| sample["framesDropped"].as_u64()).max())
        .unwrap_or(0);
    assert_eq!(page["framesDropped"].as_u64(), Some(dropped_at_join), "and dropped no frame after the join, through every fault: {page}");
    assert_eq!(viewer.connection_state(), RTCPeerConnectionState::Connected, "the Rust viewer stayed connected");
    assert_eq!(received.sequence_gaps, 0, "it lost nothing");
    let report = h264::decode(h264::from_first_keyframe(&received.kept)).expect("every access unit decodes");
    assert!(report.access_units > 900 && report.pictures == report.access_units, "{report:?}");
    let longest = pauses.iter().max().copied().unwrap_or_default();
    assert!(longest < Duration::from_secs(4), "the picture came back after every fault: longest pause {longest:?}");
    viewer.wait_for_packets(received.packets + 30, Duration::from_secs(5)).await.expect("and was still coming at the end");
}
