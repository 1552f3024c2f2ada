//! HLS as players see it: ffprobe and ffmpeg (independent of Lookout) read the playlist of
//! `demo` and of a GStreamer camera path and decode its segments, with the audio beside the
//! video: a camera's AAC as it came, a camera's Opus as it came, G.711 (the demo's beeping
//! tone, a camera's A-law) as Opus; bad requests answer 404.

mod common;

use common::{small_pattern, start_server, wait_live};
use lookout::config::{PathConfig, RtspSource, RtspTransport};
use lookout::Server;
use lookout_testkit::audio::{rms, tone_share};
use lookout_testkit::camera::Camera;
use lookout_testkit::http;
use std::process::Command;
use std::time::Duration;

/// Decodes `seconds` of the playlist's `stream` ("v" or "a") with ffmpeg; returns how many
/// frames decoded (one `framemd5` line per frame), failing on any decoder error.
fn decoded_frames(url: &str, stream: &str, seconds: u32) -> usize {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-t", &seconds.to_string(), "-map", &format!("0:{stream}:0"), "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg (scripts/install-test-deps installs it)");
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && errors.trim().is_empty(), "ffmpeg decoded {url} cleanly: {errors}");
    String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.starts_with('#')).count()
}

fn probe(url: &str) -> String {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "stream=codec_name,width,height", "-of", "compact=p=0", url])
        .output()
        .expect("run ffprobe");
    // The stream is listed under its program and again alone: the first line says it.
    String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or_default().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_read_and_decode_demo_and_a_camera() {
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "640", "--height", "360", "--keyint", "30"]).expect("camera");
    let cam = PathConfig::Rtsp(RtspSource { url: camera.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp });
    let server = start_server([("demo", small_pattern()), ("cam", cam)]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    wait_live(&server, "cam", Duration::from_secs(15)).await;
    for (path, size, fps) in [("demo", "320|height=180", 15), ("cam", "640|height=360", 30)] {
        let url = format!("http://{}/hls/{path}/index.m3u8", server.addr);
        let (probe_url, decode_url) = (url.clone(), url.clone());
        let probed = tokio::task::spawn_blocking(move || probe(&probe_url)).await.expect("join");
        assert_eq!(probed, format!("codec_name=h264|width={size}"), "{path}");
        let frames = tokio::task::spawn_blocking(move || decoded_frames(&decode_url, "v", 3)).await.expect("join");
        assert!(frames >= fps * 2, "{path}: {frames} frames decoded from 3 s");
        eprintln!("{path}: ffmpeg decoded {frames} frames from 3 s of HLS");
    }
}

/// The body of a GET, as bytes (segments are binary).
async fn fetch(server: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server).await.expect("connect");
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let body = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers") + 4;
    assert!(raw.starts_with(b"HTTP/1.1 200"), "GET {path}: {}", String::from_utf8_lossy(&raw[..body]));
    raw.split_off(body)
}

/// Each stream of `path` (a file) as (codec name, its first packet's time in
/// seconds).
fn probe_streams(path: &str) -> Vec<(String, f64)> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-show_entries", "stream=index,codec_name:packet=stream_index,pts_time", "-of", "csv", path])
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ffprobe read {path}: {}", String::from_utf8_lossy(&output.stderr));
    // ffprobe lists the packets first, then the streams.
    let mut first_packets: Vec<(usize, f64)> = Vec::new();
    let mut streams: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        match line.trim().split(',').collect::<Vec<_>>().as_slice() {
            ["packet", index, time] => {
                let (Ok(index), Ok(time)) = (index.parse::<usize>(), time.parse::<f64>()) else { continue };
                if !first_packets.iter().any(|(i, _)| *i == index) {
                    first_packets.push((index, time));
                }
            }
            ["stream", index, codec] => streams.extend(index.parse::<usize>().ok().map(|index| (index, codec.to_string()))),
            _ => {}
        }
    }
    let streams = streams
        .into_iter()
        .map(|(index, codec)| (codec, first_packets.iter().find(|(i, _)| *i == index).map_or(f64::NAN, |(_, time)| *time)))
        .collect();
    streams
}

/// What `path`'s HLS carries beside its video: the multivariant playlist names the video's
/// codec and `codec`; ffprobe finds H.264 and `probed` in the initialization segment and the
/// first two segments (the muxer's one-frame start and the cached GOP), the audio starting less
/// than `frame_secs` (one audio frame) after the video; ffmpeg decodes 3 s of the playlist's
/// audio with no error, at least `min_frames` frames. Returns the initialization segment and
/// the first two segments, as one file.
async fn assert_audio_beside_video(server: &Server, path: &str, (codec, probed): (&str, &str), frame_secs: f64, min_frames: usize) -> Vec<u8> {
    let addr = server.addr;
    let get = |uri: String| async move { http::request(addr, "GET", &uri, None, b"").await.expect("request") };
    let multivariant = get(format!("/hls/{path}/index.m3u8")).await;
    assert_eq!(multivariant.status, 200, "{}", multivariant.body);
    assert!(multivariant.body.contains("CODECS=\"avc1.") && multivariant.body.contains(&format!(",{codec}\"")), "{path}: {}", multivariant.body);

    // The muxer's first segments: where both tracks start, from the first keyframe muxed.
    let playlist = parse_playlist(&get(format!("/hls/{path}/stream.m3u8?_HLS_msn=2")).await.body);
    assert_eq!(playlist.segments.first(), Some(&0), "{path}: the first segment is still listed");
    let mut file = fetch(addr, &format!("/hls/{path}/init.mp4")).await;
    for segment in [0, 1] {
        file.extend(fetch(addr, &format!("/hls/{path}/seg{segment}.m4s")).await);
    }
    let streams = with_file(&file, probe_streams).await;
    let codecs: Vec<&str> = streams.iter().map(|(codec, _)| codec.as_str()).collect();
    assert_eq!(codecs, vec!["h264", probed], "{path}: {streams:?}");
    let (video_start, audio_start) = (streams[0].1, streams[1].1);
    assert!((0.0..frame_secs).contains(&(audio_start - video_start)), "{path}: audio starts at its first frame captured after the keyframe: video {video_start} s, audio {audio_start} s");
    eprintln!("{path}: {probed} in HLS: video starts at {video_start} s, audio at {audio_start} s");

    let url = format!("http://{addr}/hls/{path}/index.m3u8");
    let frames = tokio::task::spawn_blocking(move || decoded_frames(&url, "a", 3)).await.expect("join");
    assert!(frames >= min_frames, "{path}: {frames} {probed} frames decoded from 3 s");
    eprintln!("{path}: ffmpeg decoded {frames} {probed} frames from 3 s of HLS, no error");
    file
}

/// The fraction of its second at which the first segment listed was captured, from the
/// playlist's EXT-X-PROGRAM-DATE-TIME (`…T08:00:00.123Z` gives 0.123): the capture time of the
/// tracks' zero, as the muxer's first segment is still listed.
async fn first_capture_phase(server: &Server, path: &str) -> f64 {
    let playlist = http::request(server.addr, "GET", &format!("/hls/{path}/stream.m3u8"), None, b"").await.expect("playlist").body;
    let date = playlist.lines().find_map(|line| line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")).unwrap_or_else(|| panic!("a program date-time: {playlist}"));
    assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "the first segment is still listed: {playlist}");
    let fraction = date.rsplit_once('.').and_then(|(_, rest)| rest.strip_suffix('Z')).unwrap_or_else(|| panic!("milliseconds in {date}"));
    fraction.parse::<f64>().expect("digits") / 10f64.powi(fraction.len() as i32)
}

/// Runs `read` on `data` written to a file of its own, off the runtime.
async fn with_file<T: Send + 'static>(data: &[u8], read: fn(&str) -> T) -> T {
    static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("lookout-hls-{}-{n}.mp4", std::process::id()));
    std::fs::write(&path, data).expect("write the segment");
    let name = path.to_string_lossy().into_owned();
    let result = tokio::task::spawn_blocking(move || read(&name)).await.expect("join");
    let _ = std::fs::remove_file(&path);
    result
}

/// The file's audio decoded by ffmpeg to mono 48 kHz, sample 0 at the file's time zero (the
/// video's start): silence fills what precedes the first audio frame.
fn decoded_audio(path: &str) -> Vec<f32> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path, "-map", "0:a:0", "-af", "aresample=async=1:first_pts=0", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("run ffmpeg");
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && errors.trim().is_empty(), "ffmpeg decoded {path}'s audio cleanly: {errors}");
    output.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// A camera's AAC goes into the fMP4 as it came, as a second track, starting within one AAC
/// frame of the video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cameras_aac_is_muxed_beside_its_video() {
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--keyint", "30", "--audio", "aac"]).expect("camera");
    let cam = PathConfig::Rtsp(RtspSource { url: camera.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp });
    let server = start_server([("cam", cam)]).await;
    wait_live(&server, "cam", Duration::from_secs(15)).await;
    // 3 s at 16 kHz is 47 frames of 1024 samples.
    assert_audio_beside_video(&server, "cam", ("mp4a.40.2", "aac"), 1024.0 / 16_000.0, 40).await;
    drop(camera);
}

/// The demo's G.711 tone is transcoded to Opus for HLS: CODECS names opus, the track starts
/// within a packet (20 ms) of the video, and its beeps sound where they were captured: in the
/// first 100 ms of each second of capture time, which on the file's timeline lie the first
/// segment's fraction of a second early (its capture time, the playlist's program date-time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_g711_is_muxed_as_opus_and_beeps_in_time() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    // 3 s of 20 ms packets is 150.
    let file = assert_audio_beside_video(&server, "demo", ("opus", "opus"), 0.02, 140).await;
    let phase = first_capture_phase(&server, "demo").await;
    let audio = with_file(&file, decoded_audio).await;
    assert!(audio.len() > 48_000, "{} samples decoded", audio.len());
    // Where the sound starts after a silence, in 5 ms steps; the beeps that lie wholly in the
    // segment and clear of its first 100 ms (where the track may start mid-beep) are checked.
    let step = 240;
    let loud: Vec<bool> = audio.chunks(step).map(|w| rms(w) > 0.05).collect();
    let onsets: Vec<f64> = (1..loud.len()).filter(|&i| loud[i] && !loud[i - 1]).map(|i| (i * step) as f64 / 48_000.0).collect();
    let captured: Vec<f64> = (0..8).map(|k| f64::from(k) - phase).collect();
    let within = |t: &f64| (0.1..audio.len() as f64 / 48_000.0 - 0.11).contains(t);
    let seconds = |times: &[f64]| times.iter().filter(|t| within(t)).map(|t| format!("{t:.3}")).collect::<Vec<_>>().join(", ");
    eprintln!("demo: beeps at {} s on the file's timeline, captured at {} s (keyframe {phase:.3} s into its second)", seconds(&onsets), seconds(&captured));
    // The step, and the keyframe's capture time read against the audio's, within a few ms.
    let near = |t: f64, times: &[f64]| times.iter().copied().find(|other| (t - other).abs() < 0.015);
    assert!(onsets.iter().filter(|t| within(t)).all(|&t| near(t, &captured).is_some()), "no beep but at whole seconds: {onsets:?}, captured at {captured:?}");
    let expected: Vec<f64> = captured.iter().copied().filter(within).collect();
    assert!(!expected.is_empty(), "a whole beep in the segment: captured at {captured:?}, {} s decoded", audio.len() / 48_000);
    for expected in expected {
        let onset = near(expected, &onsets).unwrap_or_else(|| panic!("a beep captured at {expected:.3} s: heard at {onsets:?}"));
        let start = (onset * 48_000.0) as usize;
        let beep = &audio[start + 480..start + 4_320];
        assert!(tone_share(beep, 48_000, 1_000.0) > 0.8, "the beep at {onset:.3} s is the 1 kHz tone: {:.2}", tone_share(beep, 48_000, 1_000.0));
        let after = &audio[(start + 5_280).min(audio.len())..(start + 40_000).min(audio.len())];
        assert!(rms(after) < 0.005, "silence after the beep at {onset:.3} s: rms {}", rms(after));
    }
}

/// A camera's own Opus goes into the fMP4 as it came; a camera's G.711 (A-law) is transcoded
/// to Opus like the demo's. Both decode to the camera's 440 Hz tone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cameras_opus_and_g711_are_muxed_as_opus() {
    let mut cameras = Vec::new();
    let mut paths = Vec::new();
    for (name, audio) in [("opus", "opus"), ("alaw", "pcma")] {
        let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--keyint", "30", "--audio", audio]).expect("camera");
        paths.push((name, PathConfig::Rtsp(RtspSource { url: camera.url().parse().expect("url"), credentials: None, transport: RtspTransport::Tcp })));
        cameras.push(camera);
    }
    let server = start_server(paths).await;
    for path in ["opus", "alaw"] {
        wait_live(&server, path, Duration::from_secs(15)).await;
        // The muxer starts at the cached keyframe: let it be one captured after the camera's
        // audio began (its Opus comes over a session of its own, opened after the video's).
        let mut audio = server.registry.get(path).expect("path").subscribe_audio();
        tokio::time::timeout(Duration::from_secs(10), audio.recv()).await.expect("audio within 10 s").expect("audio");
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let file = assert_audio_beside_video(&server, path, ("opus", "opus"), 0.02, 140).await;
        let audio = with_file(&file, decoded_audio).await;
        // Past the first 100 ms, where the track may not have started yet.
        let share = tone_share(&audio[4_800..], 48_000, 440.0);
        assert!(share > 0.8, "{path}: {:.0}% of the sound is the camera's tone", share * 100.0);
        eprintln!("{path}: {:.0}% of the sound in the first segment is the camera's 440 Hz tone", share * 100.0);
    }
    drop(cameras);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hls_requests_answer_with_their_reason() {
    let dead = PathConfig::Rtsp(RtspSource { url: "rtsp://127.0.0.1:1/none".parse().expect("url"), credentials: None, transport: RtspTransport::Tcp });
    let server = start_server([("demo", small_pattern()), ("dead", dead)]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let get = |path: String| async move { http::request(server.addr, "GET", &path, None, b"").await.expect("request") };
    let playlist = get("/hls/demo/stream.m3u8".into()).await;
    assert_eq!(playlist.status, 200);
    assert!(playlist.body.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{}", playlist.body);
    for (path, status) in [
        ("/hls/nowhere/index.m3u8", 404),
        ("/hls/demo/..%2F..%2Fetc%2Fpasswd", 404),
        ("/hls/demo/seg99999.m4s", 404),
        ("/hls/demo/segX.m4s", 404),
        ("/hls/dead/index.m3u8", 503),
    ] {
        let response = get(path.into()).await;
        assert_eq!(response.status, status, "{path}: {}", response.body);
        assert!(!response.body.trim().is_empty(), "{path} says why");
    }
}

/// What a playlist says, parsed independently of Lookout's writer.
struct Parsed {
    part_target: f64,
    media_sequence: u64,
    segments: Vec<u64>,
    part_durations: Vec<f64>,
    parts: Vec<String>,
    hint: String,
}

fn parse_playlist(text: &str) -> Parsed {
    let value = |tag: &str| text.lines().find_map(|l| l.strip_prefix(tag)).unwrap_or_else(|| panic!("{tag} missing in\n{text}"));
    assert!(text.starts_with("#EXTM3U\n"));
    assert!(value("#EXT-X-SERVER-CONTROL:").contains("CAN-BLOCK-RELOAD=YES"));
    let part_target: f64 = value("#EXT-X-PART-INF:PART-TARGET=").parse().expect("part target");
    let hold_back: f64 = value("#EXT-X-SERVER-CONTROL:").split("PART-HOLD-BACK=").nth(1).and_then(|v| v.parse().ok()).expect("PART-HOLD-BACK");
    assert!(hold_back + 1e-9 >= 3.0 * part_target, "PART-HOLD-BACK is at least three part targets (up to rounding)");
    let attribute = |line: &str, name: &str| line.split(&format!("{name}=")).nth(1).map(|v| v.split(',').next().unwrap_or("").trim_matches('"').to_owned());
    let parts: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-PART:")).collect();
    Parsed {
        part_target,
        media_sequence: value("#EXT-X-MEDIA-SEQUENCE:").parse().expect("media sequence"),
        segments: text.lines().filter_map(|l| l.strip_prefix("seg")?.strip_suffix(".m4s")?.parse().ok()).collect(),
        part_durations: parts.iter().filter_map(|l| attribute(l, "DURATION")?.parse().ok()).collect(),
        parts: parts.iter().filter_map(|l| attribute(l, "URI")).collect(),
        hint: attribute(value("#EXT-X-PRELOAD-HINT:"), "URI").expect("hint URI"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_latency_playlist_is_valid_and_blocking_reload_returns_the_asked_part() {
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let get = |path: String| async move { http::request(server.addr, "GET", &path, None, b"").await.expect("request") };
    let first = parse_playlist(&get("/hls/demo/stream.m3u8".into()).await.body);
    assert!(!first.parts.is_empty() && first.part_durations.iter().all(|d| *d <= first.part_target + 1e-6), "parts within PART-TARGET: {:?}", first.part_durations);
    let consecutive = first.segments.windows(2).all(|w| w[1] == w[0] + 1);
    assert!(consecutive && first.segments.first() == Some(&first.media_sequence), "{:?} from {}", first.segments, first.media_sequence);

    // Ask for the hinted part, then block on the playlist until it is listed.
    let (msn, part) = first.hint.strip_prefix("part").and_then(|h| h.strip_suffix(".m4s")).and_then(|h| h.split_once('.')).expect("hint form");
    let hinted = get(format!("/hls/demo/{}", first.hint)).await;
    assert_eq!(hinted.status, 200, "the hinted part is served once made");
    let blocked = get(format!("/hls/demo/stream.m3u8?_HLS_msn={msn}&_HLS_part={part}")).await;
    assert_eq!(blocked.status, 200);
    let second = parse_playlist(&blocked.body);
    assert!(second.parts.contains(&first.hint), "the blocking reload lists the part asked for");
    assert!(second.media_sequence >= first.media_sequence, "the media sequence never goes back");
    for (query, status) in [("_HLS_msn=999999", 400), ("_HLS_part=1", 400)] {
        assert_eq!(get(format!("/hls/demo/stream.m3u8?{query}")).await.status, status, "{query}");
    }
}
