//! Network settings proven against real peers: a UDP port range that holds every session and
//! refuses one past it; STUN/TURN servers handed to the page, which plays through a real TURN
//! server (coturn) with static and time-limited credentials.

mod common;

use common::{small_pattern, wait_live};
use lookout::config::{Config, MediaPorts, PathDefinition, PortRange, WebRtcConfig};
use lookout::Server;
use lookout_signaling::{ClientMessage, ErrorCode, ServerMessage};
use lookout_testkit::signaling::SignalingClient;
use lookout_testkit::viewer::Viewer;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

async fn start(webrtc: WebRtcConfig) -> Server {
    common::init_logging();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths: [("demo".to_owned(), PathDefinition::from(small_pattern()).always_on())].into(), webrtc, ..Config::builtin_default() };
    Server::start(config).await.expect("server starts")
}

/// UDP ports bound on this machine inside `range`, read with `ss` as an operator would.
fn udp_ports_in(range: PortRange) -> BTreeSet<u16> {
    let output = Command::new("ss").args(["-H", "-u", "-a", "-n"]).output().expect("run ss (iproute2)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3)?.rsplit(':').next()?.parse().ok())
        .filter(|port| range.contains(*port))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_range_holds_each_session_and_refuses_one_past_it() {
    // Above Linux's ephemeral ports (32768-60999), so no client socket lands in it by chance.
    let range = PortRange { first: 61100, last: 61102 };
    let webrtc = WebRtcConfig { listen_ips: vec!["127.0.0.1".parse().expect("ip")], media_ports: MediaPorts::Range(range), ..common::shared_port_of_its_own() };
    let server = start(webrtc).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;

    let mut viewers = Vec::new();
    for _ in 0..range.port_count() {
        let viewer = Viewer::watch_ws(server.addr, "demo", 0).await.expect("viewer within the range");
        viewer.wait_for_packets(30, Duration::from_secs(15)).await.expect("plays");
        viewers.push(viewer);
    }
    assert_eq!(udp_ports_in(range).len(), range.port_count(), "each session holds one port of the range");

    let mut refused = SignalingClient::connect(server.addr).await.expect("connect");
    refused.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    match refused.receive_until(Duration::from_secs(5), |m| matches!(m, ServerMessage::Error { .. })).await {
        Ok(ServerMessage::Error { code: ErrorCode::ServerFull, message }) => assert!(message.contains("61100-61102"), "{message}"),
        other => panic!("expected server_full, got {other:?}"),
    }
    let whep = Viewer::watch_whep(server.addr, "demo", 0).await.err().expect("WHEP refused too").to_string();
    assert!(whep.contains("503") && whep.contains("server full"), "{whep}");

    let before: Vec<u64> = viewers.iter().map(|v| v.received().packets).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (viewer, before) in viewers.iter().zip(before) {
        assert!(viewer.received().packets > before + 10, "the viewers in the range kept playing");
    }

    // A session that ends gives its port back.
    viewers.pop().expect("a viewer").close().await.expect("close");
    let mut again = None;
    for _ in 0..50 {
        match Viewer::watch_ws(server.addr, "demo", 0).await {
            Ok(viewer) => {
                again = Some(viewer);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let again = again.expect("a port came back");
    again.wait_for_packets(30, Duration::from_secs(15)).await.expect("plays on the freed port");
}

mod through_turn {
    use super::*;
    use lookout::config::{IceServerConfig, TurnCredentials};
    use lookout_testkit::browser;
    use lookout_testkit::turn::{TurnAuth, TurnServer};

    fn turn_config(port: u16, credentials: TurnCredentials, media_ports: MediaPorts) -> WebRtcConfig {
        WebRtcConfig {
            ice_servers: vec![IceServerConfig { urls: vec![format!("turn:127.0.0.1:{port}?transport=udp")], credentials: Some(credentials) }],
            media_ports,
            ..common::shared_port_of_its_own()
        }
    }

    /// Starts coturn with `auth` and Lookout with `credentials` for it, and plays the page with
    /// `ice=relay`: TURN candidates only, so it plays through coturn or not at all.
    async fn play_relayed(auth: TurnAuth<'_>, credentials: TurnCredentials, media_ports: MediaPorts, first_frame_timeout: &str) -> (TurnServer, Server, Result<serde_json::Value, String>) {
        let turn = TurnServer::start(lookout_testkit::free_port(), auth).expect("coturn");
        let server = start(turn_config(turn.port, credentials, media_ports)).await;
        wait_live(&server, "demo", Duration::from_secs(10)).await;
        let url = format!("{}?path=demo&ice=relay", server.page_url());
        let timeout = first_frame_timeout.to_owned();
        let result = tokio::task::spawn_blocking(move || browser::play(&url, &["--seconds", "3", "--first-frame-timeout", &timeout])).await.expect("join");
        (turn, server, result)
    }

    fn assert_relayed(turn: &TurnServer, result: Result<serde_json::Value, String>) {
        let result = result.unwrap_or_else(|e| panic!("no play through TURN: {e}\ncoturn log:\n{}", turn.log()));
        assert_eq!(result["route"].as_str().map(|r| r.starts_with("relay")), Some(true), "{result}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_plays_through_turn_with_static_credentials() {
        let credentials = TurnCredentials::Static { username: "viewer".into(), credential: "pa55".into() };
        let (turn, _server, result) = play_relayed(TurnAuth::User { username: "viewer", password: "pa55" }, credentials, MediaPorts::Shared(0), "20").await;
        assert_relayed(&turn, result);
    }

    /// With a port per viewer, Lookout's own ICE agent gathers through TURN too, with
    /// credentials of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_plays_through_turn_with_time_limited_credentials() {
        let credentials = TurnCredentials::SharedSecret { secret: "north-wind".into(), ttl: Duration::from_secs(600) };
        let range = MediaPorts::Range(PortRange { first: 61110, last: 61119 });
        let (turn, server, result) = play_relayed(TurnAuth::SharedSecret("north-wind"), credentials, range, "20").await;
        assert_relayed(&turn, result);
        let candidates = announced_candidates(&server).await;
        assert!(candidates.iter().any(|c| c.contains(" typ relay ")), "Lookout gathered a relay candidate: {candidates:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_turn_credentials_fail_clearly() {
        let credentials = TurnCredentials::Static { username: "viewer".into(), credential: "wrong".into() };
        let (turn, _server, result) = play_relayed(TurnAuth::User { username: "viewer", password: "pa55" }, credentials, MediaPorts::Shared(0), "8").await;
        let failure = result.expect_err("no relay, no picture");
        assert!(failure.contains("no frame rendered"), "{failure}");
        assert!(turn.log().contains("credentials are incorrect"), "coturn refused the credentials:\n{}", turn.log());
    }
}

/// The candidates Lookout announces to a /ws viewer: in its offer and trickled after it.
async fn announced_candidates(server: &Server) -> Vec<String> {
    let mut client = SignalingClient::connect(server.addr).await.expect("connect");
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(ServerMessage::Offer { sdp, .. }) = client.receive_until(Duration::from_secs(5), |m| matches!(m, ServerMessage::Offer { .. })).await {
        candidates.extend(sdp.lines().filter_map(|l| l.strip_prefix("a=")).filter(|l| l.starts_with("candidate:")).map(str::to_owned));
    }
    // Trickled candidates follow the offer; host candidates take milliseconds, TURN a round trip.
    while let Ok(ServerMessage::Candidate { candidate }) =
        client.receive_until(Duration::from_secs(2), |m| matches!(m, ServerMessage::Candidate { .. })).await
    {
        candidates.push(candidate.candidate);
    }
    candidates.retain(|c| !c.is_empty());
    assert!(!candidates.is_empty(), "some candidate was announced");
    candidates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_candidates_carry_the_shared_port() {
    let media_port = lookout_testkit::free_port();
    let webrtc = WebRtcConfig { listen_ips: vec!["127.0.0.1".parse().expect("ip")], media_ports: MediaPorts::Shared(media_port), ..Default::default() };
    let server = start(webrtc).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    for candidate in announced_candidates(&server).await {
        assert!(candidate.contains(&format!(" 127.0.0.1 {media_port} typ host")), "{candidate}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_private_addresses_are_announced_only_as_the_public_one() {
    let webrtc = WebRtcConfig {
        listen_ips: vec!["127.0.0.1".parse().expect("ip")],
        public_ips: vec!["203.0.113.7".parse().expect("ip")],
        hide_private_addresses: true,
        ..common::shared_port_of_its_own()
    };
    let server = start(webrtc).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let candidates = announced_candidates(&server).await;
    for candidate in &candidates {
        assert!(candidate.contains(" 203.0.113.7 ") && !candidate.contains("127.0.0.1"), "{candidate}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_over_ipv6() {
    let webrtc = WebRtcConfig { listen_ips: vec!["::1".parse().expect("ip")], ..common::shared_port_of_its_own() };
    let server = start(webrtc).await;
    wait_live(&server, "demo", Duration::from_secs(10)).await;
    let viewer = Viewer::watch_ws_from("::1".parse().expect("ip"), server.addr, "demo", 0).await.expect("watch over IPv6");
    let received = viewer.wait_for_packets(50, Duration::from_secs(15)).await.expect("media over ::1");
    assert_eq!(received.sequence_gaps, 0);
}
