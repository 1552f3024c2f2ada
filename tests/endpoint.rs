//! Lookout's WebRTC endpoint (ICE-lite, DTLS and SRTP of its own on the shared UDP port)
//! against real, independent peers:
//!
//! * webrtc-rs viewers over /ws (Lookout offers; webrtc-rs answers `a=setup:passive`, so
//!   Lookout is the DTLS client) and over WHEP (the viewer offers; Lookout is the DTLS server),
//!   and a WHEP player of a path without sound (the answer rejects its audio);
//! * aiortc (Debian's python3-aiortc: aioice, PyAV's decoder; tests/aiortc/viewer.py) both ways;
//! * Chromium on the page;
//! * NACKs answered from the shared history, keyframe requests, bad offers while another viewer
//!   watches, twenty viewers at once.
//!
//! Every server binds loopback only, on a shared media port chosen here, so the candidates it
//! must announce are known exactly.

mod common;

use common::{assert_decodable_from_the_first_keyframe, assert_lost_packets_come_back_over_rtx, init_logging, small_pattern, wait_for, wait_live};
use lookout::config::{Config, MediaPorts, PathConfig, PathDefinition, TestPatternSettings, WebRtcConfig};
use lookout::Server;
use lookout_signaling::{ClientMessage, ErrorCode, ServerMessage};
use lookout_testkit::browser;
use lookout_testkit::h264;
use lookout_testkit::http;
use lookout_testkit::signaling::SignalingClient;
use lookout_testkit::swarm::{LightViewer, SwarmIdentity};
use lookout_testkit::viewer::{longest_pause, Viewer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use webrtc::peer_connection::RTCPeerConnectionState;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const KEEP: usize = 400;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Lookout serving the demo on its shared UDP port, and that port.
struct Lookout {
    server: Server,
    media_port: u16,
}


async fn start_lookout(paths: impl IntoIterator<Item = (&'static str, PathConfig)>) -> Lookout {
    start_lookout_with(paths, |_| {}).await
}

/// Lookout on loopback and a shared port of its own, its WebRTC settings changed by `configure`.
async fn start_lookout_with(paths: impl IntoIterator<Item = (&'static str, PathConfig)>, configure: impl FnOnce(&mut WebRtcConfig)) -> Lookout {
    init_logging();
    let media_port = lookout_testkit::free_port();
    let mut webrtc = WebRtcConfig { listen_ips: vec![LOOPBACK], media_ports: MediaPorts::Shared(media_port), ..Default::default() };
    configure(&mut webrtc);
    let paths = paths.into_iter().map(|(name, path)| (name.to_owned(), PathDefinition::from(path).always_on())).collect();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, webrtc, ..Config::builtin_default() };
    let server = Server::start(config).await.expect("server starts");
    Lookout { server, media_port }
}

/// The `a=candidate` lines of a description as (transport, address, type).
fn candidates(sdp: &str) -> Vec<(String, SocketAddr, String)> {
    sdp.lines()
        .filter_map(|line| line.trim_end().strip_prefix("a=candidate:"))
        .map(|candidate| {
            let fields: Vec<&str> = candidate.split(' ').collect();
            let address = format!("{}:{}", fields.get(4).copied().unwrap_or_default(), fields.get(5).copied().unwrap_or_default());
            let address = address.parse().unwrap_or_else(|_| panic!("candidate with an address: {candidate}"));
            (fields.get(2).copied().unwrap_or_default().to_ascii_lowercase(), address, fields.get(7).copied().unwrap_or_default().to_owned())
        })
        .collect()
}

/// What Lookout's descriptions say, and what it must: ICE-lite, the DTLS role `setup`, a
/// sha-256 fingerprint, the session's track in `a=msid:lookout-PATH video-SESSION` (webrtc-rs
/// writes its own), and exactly one candidate, the shared port on loopback, on which every
/// m-section it serves says it is.
fn assert_endpoint_description(sdp: &str, setup: &str, session: &str, media_port: u16) {
    let has = |line: &str| sdp.lines().any(|l| l.trim_end() == line);
    assert!(has("a=ice-lite"), "ICE-lite: {sdp}");
    assert!(has(&format!("a=setup:{setup}")), "a=setup:{setup}: {sdp}");
    assert!(sdp.lines().any(|l| l.starts_with("a=fingerprint:sha-256 ")), "a sha-256 fingerprint: {sdp}");
    assert!(has(&format!("a=msid:lookout-demo video-{session}")), "Lookout's description of session {session}: {sdp}");
    let shared = SocketAddr::new(LOOPBACK, media_port);
    assert_eq!(candidates(sdp), vec![("udp".to_owned(), shared, "host".to_owned())], "exactly the shared port's candidate: {sdp}");
    assert!(has("a=end-of-candidates"), "it never trickles: {sdp}");
    let served_ports: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).filter_map(|l| l.split(' ').nth(1)).filter(|port| *port != "0").collect();
    assert!(!served_ports.is_empty() && served_ports.iter().all(|port| *port == media_port.to_string()), "m= lines on the shared port {media_port}: {sdp}");
}

/// Asks for `demo` over /ws; returns the signalling client, the session id and Lookout's offer.
async fn watch_over_ws(server: SocketAddr) -> (SignalingClient, String, String) {
    let mut client = SignalingClient::connect(server).await.expect("connect");
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    let Ok(ServerMessage::Offer { session, sdp, .. }) = client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Offer { .. })).await else {
        panic!("no offer")
    };
    (client, session, sdp)
}

/// The test pattern's tone (G.711, 50 packets a second) arrives too, none missing.
async fn assert_audio_arrives(viewer: &Viewer, how: &str) {
    let received = wait_for(&format!("{how}: audio"), Duration::from_secs(5), || Some(viewer.received()).filter(|r| r.audio_packets >= 50)).await;
    assert_eq!(received.audio_sequence_gaps, 0, "{how}: no audio packet missing");
    assert_eq!(received.audio_ssrcs.len(), 1, "{how}: one audio SSRC");
    assert_eq!(received.audio_mime_type.as_deref().map(str::to_ascii_lowercase).as_deref(), Some("audio/pcmu"), "{how}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_rs_viewer_over_ws_plays_with_lookout_as_the_dtls_client() {
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;

    // Lookout's offer: ICE-lite, actpass, the shared port alone.
    let (client, session, sdp) = watch_over_ws(own.server.addr).await;
    assert_endpoint_description(&sdp, "actpass", &session, own.media_port);
    drop(client);

    // webrtc-rs answers an ICE-lite offer with a=setup:passive: Lookout does the DTLS handshake
    // as the client.
    let viewer = Viewer::watch_ws(own.server.addr, "demo", KEEP).await.expect("watch over /ws");
    viewer.wait_for_packets(KEEP as u64, Duration::from_secs(15)).await.expect("packets arrive");
    assert_decodable_from_the_first_keyframe(&viewer, "/ws");
    assert_audio_arrives(&viewer, "/ws").await;
    assert_eq!(viewer.connection_state(), RTCPeerConnectionState::Connected);
    assert!(own.server.sessions.get(&viewer.session).is_some(), "the viewer's session is listed");

    // Closing the socket ends the session.
    viewer.close().await.expect("close");
    wait_for("the viewer to be gone", Duration::from_secs(10), || (own.server.viewers.of("demo") == 0 && own.server.sessions.list().is_empty()).then_some(())).await;
}

/// What Chromium offers for a WHEP player (video and audio, receive only), with `video` as its
/// video formats and `fingerprint` as its fingerprint line; its candidate is never used, as
/// ICE-lite Lookout only answers checks.
fn browser_offer(video: &str, fingerprint: &str) -> String {
    const H264_AND_VP8: &str = "\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host generation 0
a=ice-ufrag:Tst1
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
FINGERPRINT
a=setup:actpass
a=mid:0
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
";
    let video = if video.is_empty() { H264_AND_VP8.to_owned() } else { video.to_owned() };
    let text = format!(
        "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
{video}m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Tst1
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=ice-options:trickle
FINGERPRINT
a=setup:actpass
a=mid:1
a=recvonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
"
    );
    text.replace("FINGERPRINT", fingerprint).replace('\n', "\r\n")
}

const SHA256: &str = "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";

/// The same offer with only VP8: a viewer Lookout cannot send its H.264 to.
const VP8_ONLY: &str = "\
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=ice-ufrag:Tst1
a=ice-pwd:abcdefghijklmnopqrstuvwx
FINGERPRINT
a=setup:actpass
a=mid:0
a=recvonly
a=rtcp-mux
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
";

async fn post_offer(server: SocketAddr, offer: impl AsRef<[u8]>) -> http::Response {
    http::request(server, "POST", "/whep/demo", Some("application/sdp"), offer.as_ref()).await.expect("POST /whep/demo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_rs_viewer_over_whep_plays_with_lookout_as_the_dtls_server() {
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;

    // The answer to a browser's offer: ICE-lite, passive, the shared port's candidate alone,
    // the offer's own payload types (H.264 102 with its RTX 103, and the path's PCMU).
    let response = post_offer(own.server.addr, browser_offer("", SHA256)).await;
    assert_eq!(response.status, 201, "{}", response.body);
    let location = response.header("location").expect("a Location").to_owned();
    let session = http::whep_session_id(&location);
    let answer = &response.body;
    assert_endpoint_description(answer, "passive", &session, own.media_port);
    assert!(answer.contains(&format!("m=video {} UDP/TLS/RTP/SAVPF 102 103\r\n", own.media_port)), "H.264 and its RTX as offered: {answer}");
    assert!(answer.contains("a=fmtp:103 apt=102"), "{answer}");
    assert!(answer.contains(&format!("m=audio {} UDP/TLS/RTP/SAVPF 0\r\n", own.media_port)), "the path's PCMU as offered: {answer}");
    assert!(answer.contains("a=group:BUNDLE 0 1"), "{answer}");
    let deleted = http::request(own.server.addr, "DELETE", &location, None, b"").await.expect("DELETE");
    assert_eq!(deleted.status, 200);
    assert!(own.server.sessions.get(&session).is_none(), "the session is gone after DELETE");

    // A webrtc-rs viewer offers actpass: Lookout answers as the DTLS server.
    let viewer = Viewer::watch_whep(own.server.addr, "demo", KEEP).await.expect("watch over WHEP");
    viewer.wait_for_packets(KEEP as u64, Duration::from_secs(15)).await.expect("packets arrive");
    assert_decodable_from_the_first_keyframe(&viewer, "WHEP");
    assert_audio_arrives(&viewer, "WHEP").await;
    assert_eq!(viewer.connection_state(), RTCPeerConnectionState::Connected);

    let session = viewer.session.clone();
    viewer.close().await.expect("WHEP DELETE");
    assert!(own.server.sessions.get(&session).is_none(), "the session is gone after DELETE");
    wait_for("the viewer to be gone", Duration::from_secs(10), || (own.server.viewers.of("demo") == 0).then_some(())).await;
}

/// With `max_playout_delay_ms` set, a viewer that takes the playout-delay extension finds the
/// limits on every video packet (250 ms: 25 steps of 10 ms, the least 0); one that does not
/// take it gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playout_delay_limits_ride_on_the_video_of_viewers_that_take_them() {
    let own = start_lookout_with([("demo", small_pattern())], |webrtc| webrtc.max_playout_delay = Some(Duration::from_millis(250))).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let options = lookout_testkit::viewer::ViewerOptions { playout_delay: true, ..lookout_testkit::viewer::ViewerOptions::keeping(100) };
    let taking = Viewer::watch_whep_with(own.server.addr, "demo", options).await.expect("watch over WHEP");
    let not_taking = Viewer::watch_whep(own.server.addr, "demo", 100).await.expect("watch over WHEP");
    let carries_limits = |packet: &rtc::rtp::packet::Packet| packet.header.extensions.iter().any(|extension| extension.payload[..] == [0x00, 0x00, 0x19]);
    for (viewer, expected, how) in [(&taking, true, "a viewer that takes the extension"), (&not_taking, false, "a viewer that does not")] {
        let received = viewer.wait_for_packets(100, Duration::from_secs(15)).await.expect("packets arrive");
        let with_limits = received.kept.iter().filter(|packet| carries_limits(packet)).count();
        assert_eq!(with_limits, if expected { received.kept.len() } else { 0 }, "{how}: {with_limits} of {} video packets carry the limits", received.kept.len());
    }
}

/// A WHEP player offers audio beside video, as players do, to a path without sound: the answer
/// rejects the audio (port 0) in a form the player accepts, and the video plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whep_viewer_of_a_path_without_audio_plays_its_video() {
    let silent = TestPatternSettings { width: 320, height: 180, fps: 15, keyframe_interval: Duration::from_secs(1), bitrate_kbps: 300, audio: false };
    let own = start_lookout([("demo", PathConfig::TestPattern(silent))]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let viewer = Viewer::watch_whep(own.server.addr, "demo", KEEP).await.expect("a webrtc-rs player takes the answer to its video and audio offer");
    viewer.wait_for_packets(KEEP as u64, Duration::from_secs(15)).await.expect("packets arrive");
    assert_decodable_from_the_first_keyframe(&viewer, "WHEP without audio");
    assert_eq!(viewer.received().audio_packets, 0, "no sound where the path has none");
}

/// tests/aiortc/viewer.py, driven over its stdin and stdout; killed when dropped.
struct Aiortc {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Aiortc {
    /// `role`: "--offer" (WHEP) or "--answer" (/ws); `extra`: more of viewer.py's options.
    fn start(role: &str, seconds: u32, extra: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aiortc/viewer.py");
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(script)
            .args([role, "--seconds", &seconds.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run /usr/bin/python3 tests/aiortc/viewer.py (Debian's python3-aiortc)");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    async fn read(&mut self, timeout: Duration) -> serde_json::Value {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("aiortc said nothing within {timeout:?}"))
            .expect("read aiortc's output")
            .expect("aiortc ended without a word (is python3-aiortc installed?)");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("aiortc printed {line:?}"))
    }

    async fn write(&mut self, value: serde_json::Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{value}\n").as_bytes()).await.expect("tell aiortc");
        stdin.flush().await.expect("flush");
    }

    /// Its report after playing, and its exit.
    async fn report(mut self) -> serde_json::Value {
        let report = self.read(Duration::from_secs(45)).await;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.expect("aiortc exits").expect("wait");
        assert!(status.success(), "aiortc failed: {report}");
        report
    }
}

/// aiortc played `seconds` of demo and decoded each picture at its size, with its audio.
fn assert_aiortc_played(report: &serde_json::Value, seconds: u32, how: &str) {
    eprintln!("aiortc {how}: {report}");
    assert!(report.get("error").is_none(), "{how}: {report}");
    // 15 fps: most of the frames of those seconds, whatever the first picture waited for.
    let pictures = report["pictures"].as_u64().unwrap_or(0);
    assert!(pictures >= u64::from(seconds) * 15 * 2 / 3, "{how}: {pictures} pictures in {seconds} s: {report}");
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(320), Some(180)), "{how}: {report}");
    assert_eq!(report["decodeFailures"].as_u64(), Some(0), "{how}: PyAV decoded every frame: {report}");
    assert_eq!(report["packetsLost"].as_i64(), Some(0), "{how}: no packet lost on loopback: {report}");
    assert!(report["packetsReceived"].as_u64().unwrap_or(0) >= pictures, "{how}: {report}");
    assert!(report["audioFrames"].as_u64().unwrap_or(0) >= u64::from(seconds) * 25, "{how}: the tone's G.711 decoded: {report}");
    assert_eq!(report["connectionState"], "connected", "{how}: {report}");
    // aioice runs full ICE against Lookout's ICE-lite: it must be the controlling agent.
    assert_eq!(report["iceRole"], "controlling", "{how}: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_plays_over_whep_and_ws() {
    const SECONDS: u32 = 4;
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;

    // WHEP: aiortc offers (actpass), Lookout answers passive and is the DTLS server.
    let mut aiortc = Aiortc::start("--offer", SECONDS, &[]);
    let offer = aiortc.read(Duration::from_secs(15)).await;
    let offer = offer["offer"].as_str().unwrap_or_else(|| panic!("an offer from aiortc: {offer}")).to_owned();
    let response = post_offer(own.server.addr, &offer).await;
    assert_eq!(response.status, 201, "Lookout answers aiortc's offer: {}\n{offer}", response.body);
    let location = response.header("location").expect("a Location").to_owned();
    let session = http::whep_session_id(&location);
    assert_endpoint_description(&response.body, "passive", &session, own.media_port);
    aiortc.write(serde_json::json!({ "answer": response.body })).await;
    let report = aiortc.report().await;
    assert_aiortc_played(&report, SECONDS, "over WHEP");
    assert_eq!(report["dtlsRole"], "client", "Lookout was the DTLS server: {report}");
    // aiortc closed its connection (DTLS close_notify): that ends the session on Lookout.
    wait_for("aiortc's session to end", Duration::from_secs(5), || own.server.sessions.get(&session).is_none().then_some(())).await;

    // /ws: Lookout offers, aiortc answers active, and Lookout is the DTLS server again.
    let (mut client, session, sdp) = watch_over_ws(own.server.addr).await;
    assert_endpoint_description(&sdp, "actpass", &session, own.media_port);
    let mut aiortc = Aiortc::start("--answer", SECONDS, &[]);
    aiortc.write(serde_json::json!({ "offer": sdp })).await;
    let answer = aiortc.read(Duration::from_secs(15)).await;
    let answer = answer["answer"].as_str().unwrap_or_else(|| panic!("an answer from aiortc: {answer}")).to_owned();
    assert!(answer.contains("a=setup:active"), "aiortc takes the DTLS client's role: {answer}");
    client.send(&ClientMessage::Answer { sdp: answer }).await.expect("send the answer");
    // The signalling socket stays open while aiortc plays: closing it would end the session.
    let report = aiortc.report().await;
    assert_aiortc_played(&report, SECONDS, "over /ws");
    assert_eq!(report["dtlsRole"], "client", "{report}");
    wait_for("aiortc's session to end", Duration::from_secs(5), || own.server.sessions.get(&session).is_none().then_some(())).await;
    drop(client);
}

/// aiortc offering VP8 alone, as a client without H.264 would, is refused in words that say
/// it cannot decode what Lookout sends, and where to go instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_without_h264_is_refused_as_one_that_cannot_be_decoded() {
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let mut aiortc = Aiortc::start("--offer", 1, &["--video-codec", "VP8"]);
    let offer = aiortc.read(Duration::from_secs(15)).await;
    let offer = offer["offer"].as_str().unwrap_or_else(|| panic!("an offer from aiortc: {offer}")).to_owned();
    assert!(offer.contains("VP8/90000") && !offer.contains("H264"), "aiortc offers VP8 alone: {offer}");
    let response = post_offer(own.server.addr, &offer).await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.body.contains("no H.264") && response.body.contains("cannot decode") && response.body.contains("LL-HLS"), "{}", response.body);
    assert!(own.server.sessions.list().is_empty(), "no session for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_page_with_no_frame_dropped() {
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let url = format!("{}?path=demo", own.server.page_url());
    let result = tokio::task::spawn_blocking(move || browser::play(&url, &["--width", "320", "--height", "180", "--seconds", "5"]))
        .await
        .expect("join")
        .unwrap_or_else(|failure| panic!("Chromium did not play the demo: {failure}"));
    eprintln!("Chromium: first frame {} ms, {} frames rendered", result["firstFrameMs"], result["framesRendered"]);
    assert_eq!(result["transport"], "webrtc", "played over WebRTC, with no fallback to HLS: {result}");
    assert!(result["firstFrameMs"].as_f64().is_some(), "a first frame: {result}");
    // 15 fps for 5 s, after the first frame.
    assert!(result["framesRendered"].as_u64().unwrap_or(0) >= 50, "frames rendered: {result}");
    assert_eq!(result["framesDropped"].as_u64(), Some(0), "Chromium dropped no frame: {result}");
    assert_eq!(result["packetsLost"].as_u64(), Some(0), "no packet lost on loopback: {result}");
    assert!(result["errors"].as_array().is_some_and(|e| e.is_empty()), "no player or decoder error: {result}");
    let audio = &result["audio"];
    assert_eq!(audio["codec"], "PCMU", "{result}");
    assert!(audio["packetsReceived"].as_u64().unwrap_or(0) > 100 && audio["packetsLost"] == 0, "the tone's packets, none lost: {result}");
}

/// A viewer that loses chosen packets on arrival NACKs them (webrtc-rs's NACK generator), and
/// Lookout resends each over RTX, as browsers negotiate it, from the stream's shared history.
/// (Plain retransmission, for viewers without RTX, is covered by the retransmitter's unit tests:
/// a packet dropped inside this client has already passed its SRTP layer, so a resend of the
/// same sequence number cannot stand for one lost on the network.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_resent_over_rtx_from_the_shared_history() {
    let own = start_lookout([("demo", small_pattern())]).await;
    assert_lost_packets_come_back_over_rtx(&own.server).await;
}

/// A PLI from the viewer gets it a keyframe at once, from the path's cache (the source makes
/// none meanwhile), and what follows decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyframe_request_gets_the_cached_keyframe() {
    // Keyframes 30 s apart: a keyframe soon after the PLI can only be the cached one.
    let rare_keyframes = TestPatternSettings { width: 320, height: 180, fps: 15, keyframe_interval: Duration::from_secs(30), bitrate_kbps: 300, audio: true };
    let own = start_lookout([("demo", PathConfig::TestPattern(rare_keyframes))]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let demo = own.server.registry.get("demo").expect("demo").clone();
    let ws = Viewer::watch_ws(own.server.addr, "demo", 2000).await.expect("watch over /ws");
    let whep = Viewer::watch_whep(own.server.addr, "demo", 2000).await.expect("watch over WHEP");
    for (viewer, how) in [(&ws, "/ws"), (&whep, "WHEP")] {
        wait_for(&format!("{how}: the first keyframe"), Duration::from_secs(15), || viewer.received().first_keyframe_after).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let source_keyframes = demo.stats().keyframes;
    for (viewer, how) in [(&ws, "/ws"), (&whep, "WHEP")] {
        let before = viewer.received();
        viewer.request_keyframe().await.expect("PLI sent");
        let after = wait_for(&format!("{how}: a keyframe after the PLI"), Duration::from_secs(3), || {
            let now = viewer.received();
            (now.keyframe_starts > before.keyframe_starts).then_some(now)
        })
        .await;
        assert_eq!(after.sequence_gaps, 0, "{how}");
        let stats = own.server.sessions.get(&viewer.session).expect("session").video_stats().expect("video");
        assert!(stats.keyframe_requests >= 1 && stats.keyframes_resent >= 1, "{how}: counted: {}", serde_json::to_string(&stats).unwrap_or_default());
    }
    assert_eq!(demo.stats().keyframes, source_keyframes, "the source made no keyframe meanwhile: they came from the cache");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (viewer, how) in [(&ws, "/ws"), (&whep, "WHEP")] {
        let received = viewer.received();
        let report = h264::decode(h264::from_first_keyframe(&received.kept)).expect("decodes");
        assert!(report.access_units >= 2 && report.pictures == report.access_units, "{how}: every access unit decodes, the resent keyframe included: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_get_a_clear_4xx_while_another_viewer_keeps_playing() {
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let watcher = Viewer::watch_ws(own.server.addr, "demo", 0).await.expect("watcher");
    let before = watcher.wait_for_packets(50, Duration::from_secs(15)).await.expect("the watcher plays");
    let frames_before = before.video_timeline.len();

    // The valid offer the bad ones are made from is answered: each refusal is for its fault.
    let good = post_offer(own.server.addr, browser_offer("", SHA256)).await;
    assert_eq!(good.status, 201, "the offer the bad ones come from is good: {}", good.body);
    let location = good.header("location").expect("a Location").to_owned();
    assert_eq!(http::request(own.server.addr, "DELETE", &location, None, b"").await.expect("DELETE").status, 200);

    let sha1 = "a=fingerprint:sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB";
    let whole = browser_offer("", SHA256);
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "this is not a session description at all".to_owned(), "v=0"),
        ("binary garbage", String::from_utf8_lossy(&[0x16, 0xfe, 0xfd, 0x00, 0x01, 0x7f, 0x1b]).into_owned(), "v=0"),
        ("a sha-1 fingerprint only", browser_offer("", sha1), "sha-256"),
        ("no H.264", browser_offer(VP8_ONLY, SHA256), "H.264"),
        ("ICE-lite itself", whole.replace("a=msid-semantic: WMS\r\n", "a=msid-semantic: WMS\r\na=ice-lite\r\n"), "full ICE"),
        ("cut short", whole[..whole.len() / 3].to_owned(), ""),
    ];
    for (what, offer, says) in &cases {
        let response = post_offer(own.server.addr, offer).await;
        eprintln!("{what}: {} {}", response.status, response.body.trim());
        assert_eq!(response.status, 400, "an offer with {what} is refused as a bad request: {}", response.body);
        assert!(!response.body.trim().is_empty(), "{what}: the 400 says why");
        assert!(response.body.contains(says), "{what}: the reason mentions {says:?}: {}", response.body);
        assert!(response.header("location").is_none(), "{what}: no session");
    }

    // Over /ws: a garbage answer to Lookout's offer is a bad-SDP error.
    let (mut client, _, _) = watch_over_ws(own.server.addr).await;
    client.send(&ClientMessage::Answer { sdp: browser_offer("", sha1).replace("a=setup:actpass", "a=setup:active") }).await.expect("send");
    match client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Error { .. })).await {
        Ok(ServerMessage::Error { code, message }) => {
            assert_eq!(code, ErrorCode::BadSdp, "{message}");
            assert!(message.contains("sha-256"), "says why: {message}");
        }
        other => panic!("expected a bad-SDP error, got {other:?}"),
    }
    client.send(&ClientMessage::Stop {}).await.expect("send");
    drop(client);

    // The watcher never stopped: its frames kept coming all along, none lost.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = watcher.received();
    assert!(after.packets > before.packets + 20, "the watcher kept receiving: {} then {}", before.packets, after.packets);
    assert_eq!(after.sequence_gaps, 0, "and lost nothing");
    let (pause, _) = longest_pause(&after.video_timeline[frames_before.saturating_sub(1)..], 90_000).expect("frames meanwhile");
    assert!(pause < Duration::from_secs(1), "no pause in the watcher's frames while the bad offers came: {pause:?}");
    assert_eq!(watcher.connection_state(), RTCPeerConnectionState::Connected);
    wait_for("only the watcher's session left", Duration::from_secs(5), || (own.server.sessions.list().len() == 1).then_some(())).await;
}

/// Two hundred light viewers (WHEP, ICE, DTLS-SRTP, nothing more: the swarm of the benchmark)
/// join within two seconds from one address, on the shared port: every one connects, gets video
/// and loses no packet, and each has a session of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_light_viewers_each_get_every_packet() {
    const VIEWERS: usize = 200;
    init_logging();
    let webrtc = WebRtcConfig { listen_ips: vec![LOOPBACK], media_ports: MediaPorts::Shared(lookout_testkit::free_port()), ..Default::default() };
    let limits = lookout::limits::LimitSettings { sessions_per_ip_burst: VIEWERS as u32, ..Default::default() };
    let paths = [("demo".to_owned(), PathDefinition::from(small_pattern()).always_on())].into_iter().collect();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, webrtc, limits, ..Config::builtin_default() };
    let server = Server::start(config).await.expect("server starts");
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let identity = SwarmIdentity::generate().expect("an identity");
    let mut viewers = Vec::new();
    for i in 0..VIEWERS {
        let viewer = LightViewer::join(&identity, server.addr, "demo", LOOPBACK).await.unwrap_or_else(|e| panic!("viewer {i} joins: {e:#}"));
        viewers.push(viewer);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two keyframes of the 1 s GOP each, after the last join.
    let end = std::time::Instant::now() + Duration::from_secs(3);
    let runs = futures::future::join_all(viewers.iter_mut().map(|viewer| viewer.run_until(end))).await;
    for (i, run) in runs.into_iter().enumerate() {
        run.unwrap_or_else(|e| panic!("viewer {i}: {e:#}"));
    }
    assert_eq!(server.sessions.list().len(), VIEWERS, "a session each");
    for (i, viewer) in viewers.iter().enumerate() {
        let counts = viewer.counts();
        assert!(counts.connected && counts.video_frames >= 30, "viewer {i} connected and played 2 s of 15 fps at least: {counts:?}");
        assert_eq!(counts.lost, 0, "viewer {i} lost nothing on loopback: {counts:?}");
    }
}

/// Twenty webrtc-rs viewers join at once (within a second) and each gets its own SSRC, every
/// packet in order, and a stream that decodes from its first keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_viewers_at_once_each_get_every_packet() {
    const VIEWERS: usize = 20;
    const PACKETS: usize = 300;
    let own = start_lookout([("demo", small_pattern())]).await;
    wait_live(&own.server, "demo", Duration::from_secs(10)).await;
    let mut joins = Vec::new();
    for _ in 0..VIEWERS {
        let server = own.server.addr;
        joins.push(tokio::spawn(async move { Viewer::watch_ws(server, "demo", PACKETS).await }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut viewers = Vec::new();
    for join in joins {
        viewers.push(join.await.expect("join").expect("a viewer watches"));
    }
    assert_eq!(own.server.sessions.list().len(), VIEWERS);
    for (i, viewer) in viewers.iter().enumerate() {
        viewer.wait_for_packets(PACKETS as u64, Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("viewer {i}: {e:#}"));
    }
    let mut ssrcs = Vec::new();
    for (i, viewer) in viewers.iter().enumerate() {
        assert_decodable_from_the_first_keyframe(viewer, &format!("viewer {i} of {VIEWERS}"));
        assert_eq!(viewer.connection_state(), RTCPeerConnectionState::Connected, "viewer {i}");
        ssrcs.extend(viewer.received().ssrcs);
    }
    ssrcs.sort_unstable();
    ssrcs.dedup();
    assert_eq!(ssrcs.len(), VIEWERS, "an SSRC of its own for each viewer");
    for viewer in viewers {
        viewer.close().await.expect("close");
    }
    wait_for("every viewer gone", Duration::from_secs(15), || (own.server.viewers.of("demo") == 0).then_some(())).await;
}
