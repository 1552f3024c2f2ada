//! Paths on demand with real peers: a GStreamer camera is not connected to until the first
//! viewer comes, is closed a while after the last leaves, and opens again for the next; viewers
//! that come while it opens wait and play; Chromium plays the built-in test pattern from idle and
//! says it is starting the camera; an LL-HLS player (ffprobe) opens it too.

mod common;

use common::{init_logging, scratch_state_dir, shared_port_of_its_own, wait_for};
use lookout::config::{Config, OnDemand, PathConfig, PathDefinition, PathSpec};
use lookout::Server;
use lookout_testkit::camera::Camera;
use lookout_testkit::viewer::Viewer;
use std::time::Duration;

const CLOSE_AFTER: Duration = Duration::from_secs(2);

async fn start(paths: Vec<(&str, PathDefinition)>) -> Server {
    init_logging();
    let paths = paths.into_iter().map(|(name, path)| (name.to_owned(), path)).collect();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, webrtc: shared_port_of_its_own(), state_dir: scratch_state_dir(), ..Config::builtin_default() };
    Server::start(config).await.expect("server starts")
}

fn camera_on_demand(camera: &Camera) -> PathDefinition {
    let spec = PathSpec { source: camera.url(), on_demand: Some(true), close_after_secs: Some(CLOSE_AFTER.as_secs_f64()), ..Default::default() };
    PathDefinition::from_spec("", spec).expect("valid")
}

fn state_of(server: &Server, path: &str) -> String {
    server.registry.get(path).map(|stream| stream.state().name().to_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_on_demand_opens_for_the_first_viewer_and_closes_after_the_last() {
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--keyint", "15"]).expect("camera");
    let server = start(vec![("cam", camera_on_demand(&camera))]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((camera.connections_made(), state_of(&server, "cam").as_str()), (0, "idle"), "nobody watches: the camera is not connected to");

    // Two viewers at once: both wait for the camera to open, one connection serves them.
    let (first, second) = tokio::join!(Viewer::watch_ws(server.addr, "cam", 0), Viewer::watch_ws(server.addr, "cam", 0));
    let (first, second) = (first.expect("the first viewer"), second.expect("the second viewer"));
    for viewer in [&first, &second] {
        let received = viewer.wait_for_packets(100, Duration::from_secs(15)).await.expect("video");
        assert!(received.source_states.first().is_some_and(|state| state == "starting"), "told the camera was starting: {:?}", received.source_states);
        eprintln!("on demand: first keyframe {:?} after the watch request", received.first_keyframe_after);
    }
    assert_eq!((camera.connections_made(), camera.open_connections()), (1, 1), "one connection to the camera for both");

    first.close().await.expect("close");
    tokio::time::sleep(CLOSE_AFTER / 2).await;
    assert_eq!(camera.open_connections(), 1, "a viewer is left");
    second.close().await.expect("close");
    tokio::time::sleep(CLOSE_AFTER / 2).await;
    assert_eq!(camera.open_connections(), 1, "kept open a while after the last viewer left");
    wait_for("the camera to be closed", CLOSE_AFTER * 3, || (camera.open_connections() == 0).then_some(())).await;
    assert_eq!(state_of(&server, "cam"), "idle");

    let again = Viewer::watch_ws(server.addr, "cam", 0).await.expect("a viewer after the close");
    again.wait_for_packets(100, Duration::from_secs(15)).await.expect("video again");
    assert_eq!(camera.connections_made(), 2, "opened again for it");
    again.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_test_pattern_from_idle_and_says_it_is_starting() {
    // The test pattern is on demand by default, as `cargo run` serves it.
    let pattern = PathConfig::TestPattern(lookout::config::TestPatternSettings { width: 640, height: 360, ..Default::default() });
    let definition = PathDefinition::from(pattern);
    assert_eq!(definition.on_demand, Some(OnDemand::default()));
    let server = start(vec![("demo", definition)]).await;
    assert_eq!(state_of(&server, "demo"), "idle");
    let url = format!("{}?path=demo", server.page_url());
    let result = tokio::task::spawn_blocking(move || lookout_testkit::browser::play(&url, &["--width", "640", "--height", "360", "--seconds", "3"]))
        .await
        .expect("join")
        .unwrap_or_else(|failure| panic!("the page did not play demo from idle: {failure}"));
    let statuses = result["statusesSeen"].to_string();
    assert!(statuses.contains("Starting camera"), "the page said so: {statuses}");
    assert_eq!(result["sessionsStarted"].as_u64(), Some(1), "played on the first session, without a retry: {result}");
    eprintln!("Chromium from idle: first frame {} ms", result["firstFrameMs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llhls_player_opens_a_camera_on_demand() {
    let camera = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--keyint", "15"]).expect("camera");
    let server = start(vec![("cam", camera_on_demand(&camera))]).await;
    let url = format!("http://{}/hls/cam/index.m3u8", server.addr);
    let probe = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-rw_timeout", "15000000", "-show_entries", "stream=codec_name,width,height", "-of", "json", &url])
            .output()
            .expect("ffprobe runs")
    })
    .await
    .expect("join");
    let streams: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap_or_default();
    assert!(probe.status.success(), "ffprobe read the path: {}", String::from_utf8_lossy(&probe.stderr));
    assert_eq!(streams["streams"][0]["width"], 320, "{streams}");
    assert_eq!(camera.connections_made(), 1);
}

/// A viewer waiting for a camera that does not open can give the wait up: `stop` and a `watch`
/// of another path are heard at once (not after the start timeout), the camera is let go, and
/// the abandoned wait holds no viewer slot (here one per path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_waiting_for_a_camera_can_give_up_and_watch_another() {
    use lookout_signaling::{ClientMessage, ServerMessage};
    init_logging();
    let dead = PathSpec { source: "rtsp://127.0.0.1:9/nothing".into(), on_demand: Some(true), close_after_secs: Some(0.5), ..Default::default() };
    let dead = PathDefinition::from_spec("", dead).expect("valid");
    assert_eq!(dead.on_demand.map(|settings| settings.start_timeout), Some(Duration::from_secs(10)), "the default start timeout");
    let paths = [("dead".to_owned(), dead), ("demo".to_owned(), PathDefinition::from(common::small_pattern()).always_on())].into_iter().collect();
    let limits = lookout::limits::LimitSettings { max_viewers_per_path: 1, ..Default::default() };
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, limits, webrtc: shared_port_of_its_own(), state_dir: scratch_state_dir(), ..Config::builtin_default() };
    let server = Server::start(config).await.expect("server starts");
    // The path watched after giving up is live: what is tested is the abandoned wait, not its start.
    common::wait_live(&server, "demo", Duration::from_secs(10)).await;
    let mut client = lookout_testkit::signaling::SignalingClient::connect(server.addr).await.expect("signalling");
    let starting = |message: &ServerMessage| matches!(message, ServerMessage::Source { state, .. } if state == "starting") || matches!(message, ServerMessage::Error { .. });
    for attempt in ["first", "second"] {
        // The second watch replaces the first, whose slot it needs.
        client.send(&ClientMessage::Watch { path: "dead".into() }).await.expect("watch");
        let told = client.receive_until(Duration::from_secs(5), starting).await.expect("an answer");
        assert!(matches!(told, ServerMessage::Source { .. }), "the {attempt} watch is told the camera is starting: {told:?}");
    }

    let gave_up = std::time::Instant::now();
    client.send(&ClientMessage::Stop {}).await.expect("stop");
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("watch another");
    let offer = client.receive_until(Duration::from_secs(5), |message| matches!(message, ServerMessage::Offer { .. } | ServerMessage::Error { .. })).await.expect("an answer");
    assert!(matches!(&offer, ServerMessage::Offer { path, .. } if path == "demo"), "offered the other path, not an error about the first: {offer:?}");
    eprintln!("offered demo {:?} after giving up on dead", gave_up.elapsed());
    wait_for("the dead camera to be let go", Duration::from_secs(5), || (state_of(&server, "dead") == "idle").then_some(())).await;
}
