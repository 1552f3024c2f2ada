//! Ingest from an independent RTSP server (GStreamer's, tests/camera/rtsp_camera.py):
//! H.264 over TCP and UDP, with Digest and Basic auth; keyframes arrive flagged and the path
//! goes live; wrong credentials are reported in words; a camera that dies and comes back is
//! picked up again by itself.

mod common;

use common::{start_server, wait_live, wait_retrying};
use lookout::config::{Credentials, PathConfig, RtspSource, RtspTransport};
use lookout::media::h264::{self, NAL_IDR, NAL_PPS, NAL_SPS};
use lookout_testkit::camera::Camera;
use lookout_testkit::free_port;
use std::time::Duration;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;

fn camera(extra: &[&str]) -> Camera {
    let mut args = vec!["--width", "640", "--height", "360", "--keyint", "15"];
    args.extend_from_slice(extra);
    Camera::start(free_port(), &args).expect("camera starts")
}

fn source(camera: &Camera, transport: RtspTransport, credentials: Option<(&str, &str)>) -> PathConfig {
    PathConfig::Rtsp(RtspSource {
        url: camera.url().parse().expect("url"),
        credentials: credentials.map(|(u, p)| Credentials { username: u.into(), password: p.into() }),
        transport,
    })
}

/// Reads two seconds of frames from the path and checks what the hub hands its readers.
async fn assert_frames_flow(server: &lookout::Server, path: &str, how: &str) {
    wait_live(server, path, Duration::from_secs(20)).await;
    let stream = server.registry.get(path).expect("path").clone();
    let mut reader = stream.subscribe();
    let (mut frames, mut keyframes, mut last_timestamp) = (0, 0, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let frame = tokio::time::timeout(Duration::from_secs(5), reader.next()).await.expect("a frame within 5 s").expect("stream open");
        let types: Vec<u8> = h264::split_length_prefixed(&frame.data).expect("well-formed").iter().map(|n| h264::nal_type(n)).collect();
        if frame.keyframe {
            keyframes += 1;
            for wanted in [NAL_SPS, NAL_PPS, NAL_IDR] {
                assert!(types.contains(&wanted), "{how}: keyframe has NAL type {wanted}: {types:?}");
            }
        } else {
            assert!(!types.contains(&NAL_IDR), "{how}: an IDR not flagged as a keyframe: {types:?}");
        }
        if let Some(last) = last_timestamp {
            assert!(frame.timestamp > last, "{how}: timestamps increase");
        }
        last_timestamp = Some(frame.timestamp);
        assert_eq!((frame.parameters.width, frame.parameters.height), (WIDTH, HEIGHT), "{how}");
        frames += 1;
    }
    assert!(frames >= 30, "{how}: {frames} frames in 2 s");
    assert!(keyframes >= 2, "{how}: {keyframes} keyframes in 2 s with one every 15 frames");
    eprintln!("{how}: {frames} frames, {keyframes} keyframes in 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_over_tcp_and_udp() {
    let camera = camera(&[]);
    let server = start_server([("tcp", source(&camera, RtspTransport::Tcp, None)), ("udp", source(&camera, RtspTransport::Udp, None))]).await;
    assert_frames_flow(&server, "tcp", "TCP interleaved").await;
    assert_frames_flow(&server, "udp", "UDP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_and_basic_auth() {
    let digest = camera(&["--auth", "digest", "--user", "admin", "--password", "s3cret!"]);
    let basic = camera(&["--auth", "basic", "--user", "admin", "--password", "s3cret!"]);
    let mut in_url = RtspSource { url: digest.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp };
    in_url.credentials = Some(Credentials { username: "admin".into(), password: "s3cret!".into() });
    let server = start_server([
        ("digest", PathConfig::Rtsp(in_url)),
        ("basic", source(&basic, RtspTransport::Tcp, Some(("admin", "s3cret!")))),
        ("wrong", source(&digest, RtspTransport::Tcp, Some(("admin", "guess")))),
    ])
    .await;
    assert_frames_flow(&server, "digest", "Digest auth").await;
    assert_frames_flow(&server, "basic", "Basic auth").await;
    let error = wait_retrying(&server, "wrong", Duration::from_secs(15)).await;
    assert!(error.contains("401 Unauthorized"), "in words: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_dies_and_returns_is_picked_up_again() {
    let mut camera = camera(&[]);
    let server = start_server([("cam", source(&camera, RtspTransport::Tcp, None))]).await;
    assert_frames_flow(&server, "cam", "before the camera died").await;
    let stream = server.registry.get("cam").expect("path").clone();

    camera.stop();
    let error = wait_retrying(&server, "cam", Duration::from_secs(15)).await;
    eprintln!("while the camera was down: {error}");
    // Let it fail a few times against the closed port, as a real outage would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!stream.state().is_live());

    camera.restart().expect("camera restarts on the same port");
    assert_frames_flow(&server, "cam", "after the camera returned").await;
}

/// A camera whose sessions expire without keepalives (a 3 s timeout in its Session header,
/// enforced over UDP; without keepalives GStreamer ends such a session about 9 s after PLAY):
/// Lookout refreshes it as often as the camera asks, and the one session lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_session_timeout_is_kept_alive() {
    let camera = camera(&["--session-timeout", "3"]);
    let server = start_server([("cam", source(&camera, RtspTransport::Udp, None))]).await;
    assert_frames_flow(&server, "cam", "at first").await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_frames_flow(&server, "cam", "15 s later").await;
    let stats = server.registry.get("cam").expect("path").stats();
    assert_eq!(stats.reconnects, 0, "the camera's one session lived on: {stats:?}");
}

/// A camera with G.711 audio beside its video (µ-law over TCP, A-law over UDP): the path
/// knows its audio codec and hands out 8 kHz frames with rising timestamps, about a second's
/// worth a second, while the video flows as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_audio_from_a_camera_is_passed_on() {
    use lookout::media::AudioCodec;
    for (audio, codec, transport) in [("pcmu", AudioCodec::Pcmu, RtspTransport::Tcp), ("pcma", AudioCodec::Pcma, RtspTransport::Udp)] {
        let camera = camera(&["--audio", audio]);
        let server = start_server([("cam", source(&camera, transport, None))]).await;
        assert_frames_flow(&server, "cam", audio).await;
        let stream = server.registry.get("cam").expect("path").clone();
        assert_eq!(stream.source_audio(), Some(lookout::media::SourceAudio::Rtp(codec)), "{audio}");
        let mut frames = stream.subscribe_audio();
        let (mut samples, mut expected_timestamp) = (0, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < deadline {
            let frame = tokio::time::timeout(Duration::from_secs(2), frames.recv()).await.expect("audio within 2 s").expect("audio open");
            assert_eq!(frame.codec, codec);
            if let Some(expected) = expected_timestamp {
                assert_eq!(frame.timestamp, expected, "{audio}: each frame follows the samples of the one before (8 kHz, a byte each)");
            }
            expected_timestamp = Some(frame.timestamp + samples_of(&frame));
            samples += samples_of(&frame);
        }
        assert!((14_000..=18_000).contains(&samples), "{audio}: {samples} samples in 2 s");
    }
}

/// G.711: one byte a sample; the timestamp of the next frame is this one's plus its length.
fn samples_of(frame: &lookout::media::AudioFrame) -> u64 {
    frame.data.len() as u64
}

/// A camera's AAC reaches the hub as it came, and a reader of Opus gets Opus made from it (16 kHz
/// over TCP; 44.1 kHz over UDP, which Lookout resamples to 48 kHz): 20 ms packets, each 960
/// ticks of the 48 kHz clock after the one before, captured 20 ms apart, that decode to the
/// camera's 440 Hz tone. Prints how long after capture the packets are published (the camera's
/// AAC encoder and framing included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aac_from_a_camera_arrives_as_continuous_20ms_opus() {
    for (rate, transport) in [("16000", RtspTransport::Tcp), ("44100", RtspTransport::Udp)] {
        let camera = camera(&["--audio", "aac", "--audio-rate", rate]);
        let server = start_server([("cam", source(&camera, transport, None))]).await;
        assert_opus_flows(&server, &format!("AAC at {rate} Hz")).await;
        let stream = server.registry.get("cam").expect("path");
        assert!(matches!(stream.source_audio(), Some(lookout::media::SourceAudio::Aac(ref config)) if config.sample_rate.to_string() == rate));
        // The making stops at the camera's next frame after the last reader left.
        let mut making = stream.making_opus();
        for _ in 0..50 {
            if !making {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            making = stream.making_opus();
        }
        assert!(!making, "no Opus is made once nobody reads it");
    }
}

/// A camera's Opus reaches the path as it came (over an RTSP session of its own, as retina
/// cannot depacketize Opus beside the video), 20 ms packets on the 48 kHz clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_from_a_camera_is_passed_on() {
    let camera = camera(&["--audio", "opus"]);
    let server = start_server([("cam", source(&camera, RtspTransport::Tcp, None))]).await;
    assert_opus_flows(&server, "Opus").await;
    let stream = server.registry.get("cam").expect("path");
    assert_eq!(stream.source_audio(), Some(lookout::media::SourceAudio::Rtp(lookout::media::AudioCodec::Opus)));
}

/// Reads three seconds of the path's audio as Opus: continuous 20 ms packets of the camera's tone.
async fn assert_opus_flows(server: &lookout::Server, how: &str) {
    use lookout::media::AudioCodec;
    use lookout_testkit::audio;
    assert_frames_flow(server, "cam", how).await;
    let stream = server.registry.get("cam").expect("path").clone();
    let mut frames = stream.subscribe_live_audio(AudioCodec::Opus);
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let frame = tokio::time::timeout(Duration::from_secs(2), frames.recv()).await.expect("audio within 2 s").expect("audio open");
        let published_after = std::time::SystemTime::now().duration_since(frame.captured_at).unwrap_or_default();
        received.push((frame, published_after));
    }
    assert!((140..=160).contains(&received.len()), "{how}: {} packets in 3 s", received.len());
    for pair in received.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        assert_eq!(a.codec, AudioCodec::Opus);
        assert_eq!(b.timestamp - a.timestamp, 960, "{how}: each packet 20 ms after the one before");
    }
    // Capture times come from the camera's sender reports once they arrive; each one may move
    // the mapping a little. Between them, packets are 20 ms apart.
    let steps = received.windows(2).filter_map(|pair| pair[1].0.captured_at.duration_since(pair[0].0.captured_at).ok());
    let on_time = steps.filter(|step| step.abs_diff(Duration::from_millis(20)) < Duration::from_millis(1)).count();
    assert!(on_time * 10 >= received.len() * 9, "{how}: {on_time} of {} capture times 20 ms apart", received.len());
    let samples = audio::decode_opus(received.iter().map(|(frame, _)| &frame.data[..])).expect("the Opus decodes");
    assert_eq!(samples.len(), received.len() * 960, "{how}: 20 ms a packet");
    let share = audio::tone_share(&samples[4_800..], audio::OPUS_RATE, 440.0);
    assert!(share > 0.8, "{how}: {:.0}% of the sound is the camera's 440 Hz tone", share * 100.0);
    let mut delays: Vec<Duration> = received.iter().map(|(_, after)| *after).collect();
    delays.sort();
    eprintln!(
        "{how}: {} packets in 3 s, {:.0}% at 440 Hz; first sample captured to published p50 {:?}, max {:?}",
        received.len(),
        share * 100.0,
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
}

/// A viewer's keyframe request (RTCP PLI) is passed to a camera that honours it (GStreamer's
/// does), through the relay on the camera's TCP connection. The camera makes no periodic
/// keyframe after its first, so a new one can only answer the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyframe_request_reaches_the_camera() {
    use lookout_testkit::viewer::Viewer;
    let camera = Camera::start(free_port(), &["--width", "320", "--height", "180", "--keyint", "100000"]).expect("camera starts");
    let server = start_server([("cam", source(&camera, RtspTransport::Tcp, None))]).await;
    wait_live(&server, "cam", Duration::from_secs(20)).await;
    let stream = server.registry.get("cam").expect("path").clone();
    let viewer = Viewer::watch_ws(server.addr, "cam", 0).await.expect("watch");
    common::wait_for("the first keyframe", Duration::from_secs(15), || viewer.received().first_keyframe_after).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = stream.stats().keyframes;
    viewer.request_keyframe().await.expect("PLI sent");
    let asked = std::time::Instant::now();
    common::wait_for("a keyframe from the camera", Duration::from_secs(3), || (stream.stats().keyframes > before).then_some(())).await;
    eprintln!("the camera's keyframe came {} ms after the PLI", asked.elapsed().as_millis());
    drop(camera);
}
