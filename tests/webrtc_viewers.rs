//! Rust WebRTC viewers (webrtc 0.21, not Lookout's code) watch through /ws and through WHEP
//! and each receives a decodable H.264 stream that starts with SPS, PPS and an IDR.

mod common;

use common::{assert_decodable_from_the_first_keyframe, small_pattern, start_server, wait_for, wait_live};
use lookout_testkit::h264;
use lookout_testkit::viewer::Viewer;
use std::time::Duration;

const KEEP: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_and_whep_viewers_receive_decodable_h264_and_audio() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;

    let ws = Viewer::watch_ws(server.addr, "demo", KEEP).await.expect("watch over /ws");
    let whep = Viewer::watch_whep(server.addr, "demo", KEEP).await.expect("watch over WHEP");
    for viewer in [&ws, &whep] {
        viewer.wait_for_packets(KEEP as u64, Duration::from_secs(15)).await.expect("packets arrive");
    }
    assert_decodable_from_the_first_keyframe(&ws, "/ws");
    assert_decodable_from_the_first_keyframe(&whep, "WHEP");
    // The test pattern's tone reaches both, 50 packets a second, none missing.
    for (viewer, how) in [(&ws, "/ws"), (&whep, "WHEP")] {
        let received = wait_for(&format!("{how}: audio"), Duration::from_secs(5), || Some(viewer.received()).filter(|r| r.audio_packets >= 50)).await;
        assert_eq!(received.audio_sequence_gaps, 0, "{how}");
    }
    assert_eq!(server.viewers.of("demo"), 2);
    assert_eq!(server.sessions.list().len(), 2);

    // DELETE ends the WHEP session on the server; closing the socket ends the /ws one.
    let whep_session = whep.session.clone();
    whep.close().await.expect("WHEP DELETE");
    assert!(server.sessions.get(&whep_session).is_none(), "WHEP session gone after DELETE");
    ws.close().await.expect("close");
    wait_for("both viewers to be gone", Duration::from_secs(10), || (server.viewers.of("demo") == 0).then_some(())).await;
}

/// A camera's AAC (44.1 kHz, as many send it) reaches viewers over /ws and WHEP as Opus, and
/// a camera's Opus as it came: no packet missing, 20 ms apart, the camera's 440 Hz tone. The
/// hub makes Opus from AAC while they listen, and stops when they have gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_and_whep_viewers_hear_a_cameras_aac_and_opus_as_opus() {
    use lookout::config::{PathConfig, RtspSource, RtspTransport};
    use lookout_testkit::audio;
    for camera_audio in [&["--audio", "aac", "--audio-rate", "44100"][..], &["--audio", "opus"]] {
        let mut args = vec!["--width", "320", "--height", "180"];
        args.extend_from_slice(camera_audio);
        let camera = lookout_testkit::camera::Camera::start(lookout_testkit::free_port(), &args).expect("camera");
        let source = RtspSource { url: camera.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp };
        let server = start_server([("cam", PathConfig::Rtsp(source))]).await;
        wait_live(&server, "cam", Duration::from_secs(15)).await;
        let ws = Viewer::watch_ws(server.addr, "cam", 0).await.expect("watch over /ws");
        let whep = Viewer::watch_whep(server.addr, "cam", 0).await.expect("watch over WHEP");
        for (viewer, how) in [(&ws, "/ws"), (&whep, "WHEP")] {
            let how = format!("{}, {how}", camera_audio[1]);
            let received = wait_for(&format!("{how}: 3 s of audio"), Duration::from_secs(10), || Some(viewer.received()).filter(|r| r.audio_packets >= 150)).await;
            assert_eq!(received.audio_mime_type.as_deref().map(str::to_ascii_lowercase).as_deref(), Some("audio/opus"), "{how}");
            assert_eq!(received.audio_sequence_gaps, 0, "{how}: no packet missing");
            let timestamps: Vec<u32> = received.audio_kept.iter().map(|p| p.header.timestamp).collect();
            assert!(timestamps.windows(2).all(|pair| pair[1].wrapping_sub(pair[0]) == 960), "{how}: 20 ms apart: {timestamps:?}");
            let samples = audio::decode_opus(received.audio_kept.iter().map(|p| &p.payload[..])).expect("the Opus decodes");
            let (share, level) = (audio::tone_share(&samples[4_800..], audio::OPUS_RATE, 440.0), audio::rms(&samples[4_800..]));
            assert!(share > 0.8 && level > 0.05, "{how}: {:.0}% of the sound at 440 Hz, level {level:.3}", share * 100.0);
            eprintln!("{how}: {} Opus packets, {:.0}% at the camera's 440 Hz, RMS {level:.3}", received.audio_packets, share * 100.0);
        }
        let response = lookout_testkit::http::request_with(server.addr, "GET", "/api/paths", &[], None, b"").await.expect("GET /api/paths");
        let paths: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
        let (codec, rate, made) = if camera_audio[1] == "aac" { ("aac", 44_100, true) } else { ("opus", 48_000, false) };
        assert_eq!(paths[0]["audio"], serde_json::json!({"codec": codec, "sample_rate": rate, "making_opus": made}), "{}", camera_audio[1]);
        ws.close().await.expect("close the /ws viewer");
        whep.close().await.expect("close the WHEP viewer");
        let stream = server.registry.get("cam").expect("path").clone();
        wait_for("no Opus made once nobody listens", Duration::from_secs(5), || (!stream.making_opus()).then_some(())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_share_one_packetization_per_frame() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let a = Viewer::watch_ws(server.addr, "demo", 200).await.expect("viewer a");
    let b = Viewer::watch_ws(server.addr, "demo", 200).await.expect("viewer b");
    let ra = a.wait_for_packets(200, Duration::from_secs(15)).await.expect("a");
    let rb = b.wait_for_packets(200, Duration::from_secs(15)).await.expect("b");
    // Different sessions: different SSRCs, yet the same payload bytes for the same frames.
    assert_ne!(ra.ssrcs, rb.ssrcs);
    let payloads_a: std::collections::HashSet<&[u8]> = ra.kept.iter().map(|p| &p.payload[..]).collect();
    let shared = rb.kept.iter().filter(|p| payloads_a.contains(&p.payload[..])).count();
    assert!(shared > 100, "the two viewers got the same payloads for the frames they share ({shared} of 200)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyframe_request_is_answered_from_the_cache() {
    use lookout::config::{PathConfig, TestPatternSettings};
    // Keyframes ten seconds apart: a keyframe soon after the PLI can only be the cached one.
    let rare_keyframes = TestPatternSettings { width: 320, height: 180, fps: 15, keyframe_interval: Duration::from_secs(10), bitrate_kbps: 300, audio: false };
    let server = start_server([("demo", PathConfig::TestPattern(rare_keyframes))]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let demo = server.registry.get("demo").expect("demo").clone();
    let viewer = Viewer::watch_ws(server.addr, "demo", 2000).await.expect("watch");
    wait_for("the first keyframe", Duration::from_secs(15), || viewer.received().first_keyframe_after).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let source_keyframes = demo.stats().keyframes;
    let before = viewer.received();
    viewer.request_keyframe().await.expect("PLI sent");
    let after = wait_for("a keyframe after the PLI", Duration::from_secs(3), || {
        let now = viewer.received();
        (now.keyframe_starts > before.keyframe_starts).then_some(now)
    })
    .await;
    assert_eq!(demo.stats().keyframes, source_keyframes, "the source made no keyframe meanwhile: it came from the cache");
    assert_eq!(after.sequence_gaps, 0);
    let session = server.sessions.list().pop().expect("one session").video_stats().expect("video");
    assert!(session.keyframe_requests >= 1 && session.keyframes_resent >= 1, "counted: {}", serde_json::to_string(&session).unwrap_or_default());
    // Every access unit from the first keyframe decodes to a picture, the resent one included.
    // (Until the next live keyframe nothing else is sent: P frames after the cached keyframe
    // would reference pictures this viewer may not have.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = viewer.received();
    let report = h264::decode(h264::from_first_keyframe(&received.kept)).expect("decodes");
    assert!(report.access_units >= 2 && report.pictures == report.access_units, "{report:?}");
}

/// Below a path's lowest layer is its keyframes alone (what a link too poor for any layer still
/// carries). A viewer put there gets only whole keyframes, each decodable, on the same track
/// with no sequence gap, and gets every frame again once back on the layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_on_keyframes_only_gets_whole_keyframes_and_comes_back() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let viewer = Viewer::watch_ws(server.addr, "demo", 4000).await.expect("watch");
    wait_for("the first keyframe", Duration::from_secs(15), || viewer.received().first_keyframe_after).await;
    let session = server.sessions.list().pop().expect("one session");
    let layers = session.layer_statuses()[0].borrow().layers.clone();
    assert_eq!(layers, vec!["main", "keyframes"], "a path of one layer has its keyframes below it");

    let on_rung = |name: &'static str| {
        let session = session.clone();
        move || (session.layer_statuses()[0].borrow().layer == name).then_some(())
    };
    session.pin_layer(0, Some("keyframes")).expect("pin keyframes");
    wait_for("the switch to keyframes only", Duration::from_secs(5), on_rung("keyframes")).await;
    let from = viewer.received().kept.len();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let received = viewer.received();
    let keyframes_only = h264::from_first_keyframe(&received.kept[from..]);
    let units = h264::access_units(keyframes_only).expect("whole access units");
    // A keyframe a second: three in 3.5 s, give or take the edges.
    assert!((2..=5).contains(&units.len()), "{} access units in 3.5 s of keyframes only", units.len());
    for unit in &units {
        assert!(unit.iter().any(|nal| nal[0] & 0x1f == h264::IDR), "only keyframes: an access unit of {:?}", unit.iter().map(|nal| nal[0] & 0x1f).collect::<Vec<_>>());
    }
    let report = h264::decode(keyframes_only).expect("decodes");
    assert_eq!(report.pictures, report.access_units, "every keyframe decodes: {report:?}");
    assert!(session.video_stats().expect("video").frames_withheld > 10, "frames between keyframes withheld: {}", session.video_stats().expect("video").frames_withheld);

    session.pin_layer(0, Some("main")).expect("pin main");
    wait_for("the switch back to main", Duration::from_secs(5), on_rung("main")).await;
    let frames_before = viewer.received().frames;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = viewer.received();
    let frames = received.frames - frames_before;
    assert!(frames >= 20, "every frame again: {frames} frames in 2 s at 15 fps");
    assert_eq!(received.sequence_gaps, 0, "one track, sequence numbers continuous through both switches");
    assert_eq!(received.ssrcs.len(), 1);
}
