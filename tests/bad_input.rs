//! Bad input gets a clear error and loses nothing: garbage, wrong messages and malformed SDP
//! over /ws and WHEP are each answered with an error, while another viewer keeps playing.

mod common;

use common::{small_pattern, start_server, wait_for, wait_live, wait_retrying};
use lookout::config::{PathConfig, RtspSource, RtspTransport};
use lookout_signaling::{ClientMessage, ErrorCode, ServerMessage, MAX_MESSAGE_BYTES};
use lookout_testkit::http;
use lookout_testkit::signaling::SignalingClient;
use lookout_testkit::viewer::Viewer;
use std::time::Duration;
use webrtc::peer_connection::RTCPeerConnectionState;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

async fn expect_error(client: &mut SignalingClient, code: ErrorCode) -> String {
    match client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Error { .. })).await {
        Ok(ServerMessage::Error { code: got, message }) => {
            assert_eq!(got, code, "error message: {message}");
            message
        }
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

fn dead_camera() -> PathConfig {
    // Nothing listens on port 1 of loopback: connection refused, forever retrying.
    PathConfig::Rtsp(RtspSource { url: "rtsp://127.0.0.1:1/none".parse().expect("url"), credentials: None, transport: RtspTransport::Tcp })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_errors_and_other_viewers_keep_playing() {
    let server = start_server([("demo", small_pattern()), ("dead", dead_camera())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let watcher = Viewer::watch_ws(server.addr, "demo", 0).await.expect("watcher");
    let before = watcher.wait_for_packets(50, Duration::from_secs(15)).await.expect("watcher plays");

    let mut client = SignalingClient::connect(server.addr).await.expect("connect");

    client.send_text("this is not json").await.expect("send");
    expect_error(&mut client, ErrorCode::BadMessage).await;
    client.send_text(r#"{"type":"teleport","path":"demo"}"#).await.expect("send");
    expect_error(&mut client, ErrorCode::BadMessage).await;
    client.send_text(r#"{"type":"watch"}"#).await.expect("send");
    expect_error(&mut client, ErrorCode::BadMessage).await;
    client.send_binary(vec![0xff; 64]).await.expect("send");
    expect_error(&mut client, ErrorCode::BadMessage).await;
    client.send_text("x".repeat(MAX_MESSAGE_BYTES + 1)).await.expect("send");
    expect_error(&mut client, ErrorCode::MessageTooLarge).await;

    client.send(&ClientMessage::Answer { sdp: "v=0".into() }).await.expect("send");
    expect_error(&mut client, ErrorCode::UnexpectedMessage).await;
    client.send(&ClientMessage::Watch { path: "nowhere".into() }).await.expect("send");
    let message = expect_error(&mut client, ErrorCode::UnknownPath).await;
    assert!(message.contains("demo"), "lists the known paths: {message}");
    wait_retrying(&server, "dead", Duration::from_secs(10)).await;
    client.send(&ClientMessage::Watch { path: "dead".into() }).await.expect("send");
    let message = expect_error(&mut client, ErrorCode::PathNotLive).await;
    assert!(message.contains("connection refused"), "says why: {message}");

    // A real offer, answered with a malformed SDP, then a malformed candidate.
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Offer { .. })).await.expect("offer");
    client.send(&ClientMessage::Answer { sdp: "v=0\r\nthis is not sdp\r\n".into() }).await.expect("send");
    expect_error(&mut client, ErrorCode::BadSdp).await;
    let candidate = lookout_signaling::IceCandidate { candidate: "candidate:garbage".into(), sdp_mid: Some("0".into()), sdp_m_line_index: Some(0), username_fragment: None };
    client.send(&ClientMessage::Candidate { candidate }).await.expect("send");
    expect_error(&mut client, ErrorCode::BadSdp).await;

    // An answer that turns the video down (port 0), as a browser without H.264 answers: the
    // error says so, with its own code, so that a client can go to LL-HLS at once.
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    let offer = client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Offer { .. })).await.expect("offer");
    let ServerMessage::Offer { sdp, .. } = offer else { unreachable!("matched above") };
    let rejecting: String = sdp
        .lines()
        .filter(|line| *line != "a=ice-lite")
        .map(|line| match line {
            "a=setup:actpass" => "a=setup:active".to_owned(),
            video if video.starts_with("m=video ") => format!("m=video 0 {}", video.splitn(3, ' ').nth(2).unwrap_or_default()),
            other => other.to_owned(),
        })
        .map(|line| line + "\r\n")
        .collect();
    client.send(&ClientMessage::Answer { sdp: rejecting }).await.expect("send");
    let message = expect_error(&mut client, ErrorCode::CodecUnsupported).await;
    assert!(message.contains("cannot decode the H.264"), "{message}");

    // After all that, the socket still works and the watcher never stopped.
    client.send(&ClientMessage::Stop {}).await.expect("send");
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Offer { .. })).await.expect("offer after errors");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = watcher.received();
    assert!(after.packets > before.packets + 20, "the watcher kept receiving: {} then {}", before.packets, after.packets);
    assert_eq!(after.sequence_gaps, 0, "and lost nothing");
    assert_eq!(watcher.connection_state(), RTCPeerConnectionState::Connected);

    // A frame far over the limit is refused by the WebSocket layer: close code 1009, as
    // PROTOCOL.md says.
    let mut flooder = SignalingClient::connect(server.addr).await.expect("connect");
    flooder.send_text("x".repeat(17 * MAX_MESSAGE_BYTES)).await.expect("send");
    assert_eq!(flooder.close_code(Duration::from_secs(5)).await.expect("closed"), 1009);
    let last = watcher.received();
    watcher.wait_for_packets(last.packets + 20, Duration::from_secs(5)).await.expect("the watcher plays on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_rejects_bad_requests_with_their_reason() {
    let server = start_server([("demo", small_pattern()), ("dead", dead_camera())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let watcher = Viewer::watch_whep(server.addr, "demo", 0).await.expect("watcher");
    let before = watcher.wait_for_packets(50, Duration::from_secs(15)).await.expect("watcher plays");
    let post = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let server = server.addr;
        async move { http::request(server, "POST", path, Some(content_type), &body).await }
    };

    let cases: Vec<(u16, http::Response)> = vec![
        (415, post("/whep/demo", "text/plain", b"v=0".to_vec()).await.expect("post")),
        (400, post("/whep/demo", "application/sdp", b"v=0\r\nnot an offer\r\n".to_vec()).await.expect("post")),
        (400, post("/whep/demo", "application/sdp", vec![0xff, 0xfe, 0x00]).await.expect("post")),
        (413, post("/whep/demo", "application/sdp", vec![b'a'; MAX_MESSAGE_BYTES + 1]).await.expect("post")),
        (404, post("/whep/nowhere", "application/sdp", b"v=0".to_vec()).await.expect("post")),
        (404, http::request(server.addr, "DELETE", "/whep-sessions/0123", None, b"").await.expect("delete")),
        // A session's id, as /api/sessions lists it, is not its WHEP resource: it ends nothing.
        (404, http::request(server.addr, "DELETE", &format!("/whep-sessions/{}", watcher.session), None, b"").await.expect("delete")),
        (404, http::request(server.addr, "DELETE", &format!("/whep-sessions/{}.AAAA", watcher.session), None, b"").await.expect("delete")),
        (405, http::request(server.addr, "PATCH", &format!("/whep-sessions/{}", watcher.session), Some("application/trickle-ice-sdpfrag"), b"a=end-of-candidates").await.expect("patch")),
    ];
    for (expected, response) in &cases {
        assert_eq!(response.status, *expected, "body: {}", response.body);
        assert!(!response.body.trim().is_empty(), "a {expected} says why");
    }
    wait_retrying(&server, "dead", Duration::from_secs(10)).await;
    let not_live = post("/whep/dead", "application/sdp", b"v=0".to_vec()).await.expect("post");
    assert_eq!(not_live.status, 503, "{}", not_live.body);
    assert!(not_live.header("retry-after").is_some());

    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = watcher.received();
    assert!(after.packets > before.packets + 20, "the WHEP watcher kept receiving: {} then {}", before.packets, after.packets);
    assert_eq!(after.sequence_gaps, 0, "and lost nothing");
    assert_eq!(watcher.connection_state(), RTCPeerConnectionState::Connected);
    assert_eq!(server.sessions.list().len(), 1, "failed requests leave no session behind");
}

/// Sessions whose viewers never answer are ended after the viewer silence timeout, and every
/// one of their sockets is told so with a `state` message (19 of 300 were not, when the
/// session's layer channel closed before its state changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_sessions_are_ended_and_each_socket_is_told() {
    const ABANDONED: usize = 20;
    let server = start_server([("demo", small_pattern())]).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let mut clients = Vec::new();
    for _ in 0..ABANDONED {
        let mut client = SignalingClient::connect(server.addr).await.expect("connect");
        client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
        client.receive_until(ANSWER_TIMEOUT, |m| matches!(m, ServerMessage::Offer { .. })).await.expect("offer");
        clients.push(client);
    }
    assert_eq!(server.sessions.list().len(), ABANDONED);
    let ended = |m: &ServerMessage| matches!(m, ServerMessage::State { state, .. } if state == "closed" || state == "failed");
    for (index, client) in clients.iter_mut().enumerate() {
        // Within the silence timeout, the reaper's check interval and some slack.
        client.receive_until(Duration::from_secs(45), ended).await.unwrap_or_else(|e| panic!("socket {index} was not told its session ended: {e}"));
    }
    wait_for("the abandoned sessions to be gone", Duration::from_secs(5), || server.sessions.list().is_empty().then_some(())).await;
    // Their sockets are still open, holding what they watched: those no longer count as viewers.
    assert_eq!(server.viewers.of("demo"), 0, "ended sessions count against the viewer limit");
}
