//! The REST API, `/api/v1`, end to end: a GStreamer camera added through it plays in Chromium,
//! a patched source reaches the same viewer without a new session, paths outlive a restart and
//! a kill -9 in the middle of a batch, bad bodies get 4xx with the field named, a deleted path
//! tells its viewers why, SIGHUP applies only what the file changed, and the OpenAPI document
//! is valid 3.1 and lists routes that answer.

mod common;

use common::{init_logging, shared_port_of_its_own, small_pattern, wait_for, wait_live};
use lookout::config::{Config, PathDefinition};
use lookout::Server;
use lookout_signaling::{ClientMessage, ServerMessage};
use lookout_testkit::browser::PausedPage;
use lookout_testkit::camera::Camera;
use lookout_testkit::http::{request, Response};
use lookout_testkit::signaling::SignalingClient;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

/// A folder of this test's own for `state_dir`, empty.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lookout-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Lookout on loopback keeping its API paths in `state_dir`, with `demo` from the "file".
async fn start(state_dir: &Path) -> Server {
    init_logging();
    let paths = [("demo".to_owned(), PathDefinition::from(small_pattern()))].into();
    let config = Config { listen: "127.0.0.1:0".parse().expect("address"), paths, webrtc: shared_port_of_its_own(), state_dir: state_dir.to_owned(), ..Config::builtin_default() };
    Server::start(config).await.expect("server starts")
}

async fn call(server: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    request(server, method, path, Some("application/json"), body.as_bytes()).await.expect("the server answers")
}

fn json_of(response: &Response) -> Value {
    serde_json::from_str(&response.body).unwrap_or_else(|_| panic!("JSON, got {} {:?}", response.status, response.body))
}

/// A 4xx answer of the API's form, with this code and field.
fn assert_error(response: &Response, status: u16, code: &str, field: Option<&str>) {
    let error = json_of(response);
    assert_eq!((response.status, error["code"].as_str()), (status, Some(code)), "{error}");
    assert_eq!(error["field"].as_str(), field, "{error}");
    assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{error}");
}

fn camera_source(camera: &Camera) -> Value {
    json!({ "source": camera.url() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_added_through_the_api_plays_follows_a_patch_and_outlives_a_restart() {
    let state_dir = scratch_dir("camera");
    let first = Camera::start(lookout_testkit::free_port(), &["--width", "640", "--height", "360"]).expect("camera");
    let second = Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180"]).expect("camera");
    let server = start(&state_dir).await;

    let added = call(server.addr, "POST", "/api/v1/paths", Some(json!({ "name": "yard/gate", "config": camera_source(&first) }))).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.header("location"), Some("/api/v1/paths/yard%2Fgate"));
    assert_eq!(json_of(&added)["origin"], "api");
    wait_live(&server, "yard/gate", Duration::from_secs(15)).await;
    let page = PausedPage::open(&format!("{}?path=yard/gate", server.page_url())).await;

    let patched = call(server.addr, "PATCH", "/api/v1/paths/yard%2Fgate", Some(camera_source(&second))).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(json_of(&patched)["config"]["source"], second.url());
    let result = page.assert_resumes("the path's source was patched").await;
    assert_eq!((result["width"].as_u64(), result["height"].as_u64()), (Some(320), Some(180)), "the new camera's picture: {result}");
    assert_eq!(result["sessionsStarted"].as_u64(), Some(1), "the same WebRTC session, without renegotiating: {result}");

    drop(server);
    let restarted = start(&state_dir).await;
    let kept = call(restarted.addr, "GET", "/api/v1/paths/yard%2Fgate", None).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(json_of(&kept)["config"]["source"], second.url(), "the patched source was kept");
    wait_live(&restarted, "yard/gate", Duration::from_secs(15)).await;
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_4xx_naming_the_field_and_change_nothing() {
    let state_dir = scratch_dir("bad");
    let server = start(&state_dir).await;
    let ok = json!({ "source": "rtsp://127.0.0.1:9/a" });
    let cases: Vec<(&str, &str, String, u16, &str, Option<&str>)> = vec![
        ("POST", "/api/v1/paths", "{\"name\": ".to_owned(), 400, "bad_json", None),
        ("POST", "/api/v1/paths", json!({ "name": "a", "config": { "source": "rtsp://x/y", "colour": "red" } }).to_string(), 400, "invalid_field", Some("config.colour")),
        ("POST", "/api/v1/paths", json!({ "name": "a", "config": { "source": "http://x/y" } }).to_string(), 400, "invalid_field", Some("config.source")),
        ("POST", "/api/v1/paths", json!({ "name": "a", "config": { "source": "rtsp://x/y", "layers": [{ "source": "not a url" }] } }).to_string(), 400, "invalid_field", Some("config.layers[0].source")),
        ("POST", "/api/v1/paths", json!({ "name": "a b", "config": ok }).to_string(), 400, "invalid_field", Some("name")),
        ("POST", "/api/v1/paths", json!({ "name": "demo", "config": ok }).to_string(), 409, "path_exists", Some("name")),
        ("POST", "/api/v1/paths", json!({ "config": ok }).to_string(), 400, "invalid_field", Some("name")),
        (
            "POST",
            "/api/v1/batch/paths",
            json!({ "paths": [{ "name": "b1", "config": ok }, { "name": "b2", "config": { "source": "testpattern", "test_pattern": { "fps": 0 } } }] }).to_string(),
            400,
            "invalid_field",
            Some("paths[1].config.test_pattern.fps"),
        ),
        ("POST", "/api/v1/batch/paths", json!({ "paths": [{ "name": "b1", "config": ok }, { "name": "b1", "config": ok }] }).to_string(), 409, "path_exists", Some("paths[1].name")),
        ("PATCH", "/api/v1/paths/demo", json!({ "transport": "udp" }).to_string(), 409, "path_from_file", None),
        ("PUT", "/api/v1/paths/demo", ok.to_string(), 409, "path_from_file", None),
        ("DELETE", "/api/v1/paths/demo", String::new(), 409, "path_from_file", None),
        ("DELETE", "/api/v1/paths/nowhere", String::new(), 404, "unknown_path", None),
        ("PATCH", "/api/v1/paths/nowhere", json!({ "transport": "udp" }).to_string(), 404, "unknown_path", None),
        ("DELETE", "/api/v1/sessions/nobody", String::new(), 404, "unknown_session", None),
        ("PUT", "/api/v1/paths/a%20b", ok.to_string(), 400, "invalid_field", None),
        ("POST", "/api/v1/paths", "x".repeat(1024 * 1024 + 1), 413, "body_too_large", None),
        ("PATCH", "/api/v1/paths/demo", "x".repeat(3 * 1024 * 1024), 413, "body_too_large", None),
    ];
    for (method, path, body, status, code, field) in cases {
        let response = request(server.addr, method, path, Some("application/json"), body.as_bytes()).await.expect("the server answers");
        assert_error(&response, status, code, field);
    }
    let patched_wrong = call(server.addr, "POST", "/api/v1/paths", Some(json!({ "name": "cam", "config": ok }))).await;
    assert_eq!(patched_wrong.status, 201, "{}", patched_wrong.body);
    let response = call(server.addr, "PATCH", "/api/v1/paths/cam", Some(json!({ "transport": "pigeon" }))).await;
    assert_error(&response, 400, "invalid_field", Some("transport"));

    let listed = json_of(&call(server.addr, "GET", "/api/v1/paths", None).await);
    let names: Vec<&str> = listed.as_array().expect("a list").iter().filter_map(|path| path["name"].as_str()).collect();
    assert_eq!(names, ["cam", "demo"], "nothing but the good path was added, and the server still answers");
    assert_eq!(json_of(&call(server.addr, "GET", "/api/v1/paths/cam", None).await)["config"]["transport"], Value::Null, "the bad patch changed nothing");
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_path_tells_its_viewers_why_and_ends_their_sessions() {
    let state_dir = scratch_dir("delete");
    let server = start(&state_dir).await;
    let pattern = json!({ "source": "testpattern", "test_pattern": { "width": 320, "height": 180, "fps": 15 } });
    assert_eq!(call(server.addr, "POST", "/api/v1/paths", Some(json!({ "name": "temp", "config": pattern }))).await.status, 201);
    // A test pattern opens on demand: for this viewer.
    let mut client = SignalingClient::connect(server.addr).await.expect("signalling");
    client.send(&ClientMessage::Watch { path: "temp".into() }).await.expect("send");
    client.receive_until(Duration::from_secs(15), |message| matches!(message, ServerMessage::Offer { .. })).await.expect("an offer");
    assert_eq!(server.sessions.list().len(), 1);
    let report = || ClientMessage::Qoe(lookout_signaling::QoeReport { first_frame_ms: Some(100.0), ..Default::default() });
    client.send(&report()).await.expect("qoe");
    let reports = "lookout_viewer_reports_total{path=\"temp\"}";
    let counted = async {
        for _ in 0..50 {
            if call(server.addr, "GET", "/metrics", None).await.body.contains(&format!("{reports} 1")) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(counted.await, "the page's report is in the metrics");

    assert_eq!(call(server.addr, "DELETE", "/api/v1/paths/temp", None).await.status, 204);
    let told = client.receive_until(Duration::from_secs(5), |message| matches!(message, ServerMessage::Source { .. })).await.expect("the source's state");
    let ServerMessage::Source { state, error, .. } = told else { unreachable!("matched above") };
    assert_eq!((state.as_str(), error.as_deref()), ("removed", Some("deleted through the API")));
    let closed = client.receive_until(Duration::from_secs(5), |message| matches!(message, ServerMessage::State { state, .. } if state == "closed")).await;
    assert!(closed.is_ok(), "the session was closed: {closed:?}");
    wait_for("the session to be forgotten", Duration::from_secs(5), || server.sessions.list().is_empty().then_some(())).await;
    assert!(server.registry.get("temp").is_none());
    // Its metrics went with it, and a page's late report does not bring them back.
    client.send(&report()).await.expect("qoe after the end");
    // Messages are handled in order: the answer to this one means the report was read.
    client.send(&ClientMessage::Watch { path: "temp".into() }).await.expect("watch again");
    client.receive_until(Duration::from_secs(5), |message| matches!(message, ServerMessage::Error { .. })).await.expect("no such path now");
    let metrics = call(server.addr, "GET", "/metrics", None).await.body;
    assert!(!metrics.contains("path=\"temp\""), "{metrics}");
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_every_route_in_it_answers() {
    let state_dir = scratch_dir("openapi");
    let server = start(&state_dir).await;
    let response = call(server.addr, "GET", "/api/v1/openapi.json", None).await;
    let document = json_of(&response);
    assert_eq!(document["openapi"], "3.1.0");
    let file = state_dir.with_extension("openapi.json");
    std::fs::write(&file, &response.body).expect("write the document");
    let validator = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/.venv/bin/openapi-spec-validator");
    let output = std::process::Command::new(validator)
        .args(["--schema", "3.1"])
        .arg(&file)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {validator} (scripts/install-test-deps installs it): {error}"));
    assert!(output.status.success(), "openapi-spec-validator: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));

    // Each documented operation is one the router has: axum answers a route or method it does
    // not have with an empty 404 or 405.
    let example = |name: &str| if name == "file" { "app.js" } else { "demo" };
    let mut operations = 0;
    for (template, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("operations").keys() {
            let mut path = template.clone();
            while let (Some(open), Some(close)) = (path.find('{'), path.find('}')) {
                let value = example(&path[open + 1..close]);
                path.replace_range(open..=close, value);
            }
            let answer = request(server.addr, &method.to_uppercase(), &path, None, b"").await.expect("the server answers");
            assert!(!(matches!(answer.status, 404 | 405) && answer.body.is_empty()), "{method} {template}: the router has no such route ({})", answer.status);
            operations += 1;
        }
    }
    assert!(operations >= 25, "{operations} operations documented");
    for route in ["/api/v1/paths", "/api/v1/paths/{name}", "/api/v1/batch/paths", "/api/v1/sessions/{id}", "/api/v1/server", "/healthz", "/readyz", "/ws", "/whep/{path}"] {
        assert!(document["paths"].get(route).is_some(), "{route} is documented");
    }
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(&state_dir);
}

/// The start of a configuration file keeping its paths in `state`, beside it, on addresses the
/// system chooses, with a small `demo`.
const CONFIG_FILE: &str = "listen = \"127.0.0.1:0\"\nstate_dir = \"state\"\n[webrtc]\nudp_port = 0\n[paths.demo]\nsource = \"testpattern\"\ntest_pattern = { width = 160, height = 90, fps = 5 }\n";

/// The `lookout` binary with `dir/lookout.toml` (written with `CONFIG_FILE` when missing), and
/// the address of its page.
fn spawn_lookout(dir: &Path) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let config = dir.join("lookout.toml");
    if !config.exists() {
        std::fs::write(&config, CONFIG_FILE).expect("config");
    }
    let mut child = std::process::Command::new(LOOKOUT)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start lookout");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the page's URL");
    let addr = line.split("http://").nth(1).and_then(|rest| rest.split('/').next()).and_then(|addr| addr.parse().ok());
    (child, addr.unwrap_or_else(|| panic!("no address in {line:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_batch_adds_loses_nothing_acknowledged() {
    const BATCH: usize = 5;
    let dir = scratch_dir("kill");
    std::fs::create_dir_all(&dir).expect("folder");
    let (mut child, addr) = spawn_lookout(&dir);
    let pid = child.id();
    // SIGKILL at a moment the batches do not know of, while they keep coming.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(rand::random_range(300..900)));
        let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let mut acknowledged = BTreeSet::new();
    let mut last_sent = Vec::new();
    let mut killed_while_adding = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for round in 0..20_000 {
        if std::time::Instant::now() > deadline {
            break;
        }
        let names: Vec<String> = (0..BATCH).map(|index| format!("cam-{round}-{index}")).collect();
        let paths: Vec<Value> = names.iter().map(|name| json!({ "name": name, "config": { "source": format!("rtsp://127.0.0.1:9/{name}") } })).collect();
        last_sent = names.clone();
        match request(addr, "POST", "/api/v1/batch/paths", Some("application/json"), json!({ "paths": paths }).to_string().as_bytes()).await {
            Ok(response) if response.status == 201 => acknowledged.extend(names),
            Ok(response) => panic!("a good batch was refused: {} {}", response.status, response.body),
            Err(_) => {
                killed_while_adding = true;
                break;
            }
        }
    }
    killer.join().expect("join");
    let _ = child.wait();
    assert!(killed_while_adding, "the process was killed while batches were still coming");
    assert!(acknowledged.len() >= BATCH, "some batches were acknowledged before the kill: {}", acknowledged.len());

    let (mut restarted, addr) = spawn_lookout(&dir);
    let listed = json_of(&call(addr, "GET", "/api/v1/paths", None).await);
    let present: BTreeSet<String> = listed.as_array().expect("a list").iter().filter_map(|path| path["name"].as_str().map(str::to_owned)).filter(|name| name != "demo").collect();
    let lost: Vec<&String> = acknowledged.difference(&present).collect();
    assert!(lost.is_empty(), "{} acknowledged paths lost after the kill: {lost:?}", lost.len());
    let extra: Vec<&String> = present.difference(&acknowledged).filter(|name| !last_sent.contains(name)).collect();
    assert!(extra.is_empty(), "only the batch in flight may have been kept unacknowledged: {extra:?}");
    eprintln!("{} paths acknowledged before the kill, all {} kept", acknowledged.len(), present.len());
    let _ = restarted.kill();
    let _ = restarted.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_the_servers_own_facts() {
    let state_dir = scratch_dir("health");
    let server = start(&state_dir).await;
    assert_eq!(call(server.addr, "GET", "/healthz", None).await.status, 200);
    assert_eq!(call(server.addr, "GET", "/readyz", None).await.status, 200);
    let facts = json_of(&call(server.addr, "GET", "/api/v1/server", None).await);
    assert_eq!(facts["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(facts["listeners"]["http"], format!("http://{}", server.addr));
    assert!(facts["listeners"]["media"].as_str().is_some_and(|media| media.contains("udp")), "{facts}");
    assert_eq!(facts["paths"], 1);
    let _ = std::fs::remove_dir_all(&state_dir);
}

/// The paths the API lists, by name, with where each came from and its source.
async fn listed(addr: SocketAddr) -> Vec<(String, String, String)> {
    let listed = json_of(&call(addr, "GET", "/api/v1/paths", None).await);
    let field = |path: &Value, name: &str| path[name].as_str().unwrap_or_default().to_owned();
    listed.as_array().expect("a list").iter().map(|path| (field(path, "name"), field(path, "origin"), field(&path["config"], "source"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_only_what_the_file_changed() {
    let dir = scratch_dir("sighup");
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("lookout.toml"), format!("{CONFIG_FILE}[paths.gone]\nsource = \"rtsp://127.0.0.1:9/gone\"\n")).expect("config");
    let (mut child, addr) = spawn_lookout(&dir);
    let kept = call(addr, "POST", "/api/v1/paths", Some(json!({ "name": "kept", "config": { "source": "rtsp://127.0.0.1:9/kept" } }))).await;
    let claimed = call(addr, "POST", "/api/v1/paths", Some(json!({ "name": "claimed", "config": { "source": "rtsp://127.0.0.1:9/api" } }))).await;
    assert_eq!((kept.status, claimed.status), (201, 201));

    let file = format!("{CONFIG_FILE}[paths.new]\nsource = \"rtsp://127.0.0.1:9/new\"\n[paths.claimed]\nsource = \"rtsp://127.0.0.1:9/file\"\n");
    std::fs::write(dir.join("lookout.toml"), file).expect("config");
    let _ = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
    let expected = vec![
        ("claimed".to_owned(), "file".to_owned(), "rtsp://127.0.0.1:9/file".to_owned()),
        ("demo".to_owned(), "file".to_owned(), "testpattern".to_owned()),
        ("kept".to_owned(), "api".to_owned(), "rtsp://127.0.0.1:9/kept".to_owned()),
        ("new".to_owned(), "file".to_owned(), "rtsp://127.0.0.1:9/new".to_owned()),
    ];
    let mut now = Vec::new();
    for _ in 0..50 {
        now = listed(addr).await;
        if now == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, expected, "gone removed, new added, claimed taken over by the file, kept and demo untouched");
    let stored = std::fs::read_to_string(dir.join("state/paths.json")).expect("the store");
    assert!(stored.contains("kept") && !stored.contains("claimed"), "the file's path left the store: {stored}");

    std::fs::write(dir.join("lookout.toml"), "[paths.broken\n").expect("config");
    let _ = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(listed(addr).await, expected, "an invalid file changes nothing");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// What ffprobe reads in a file: its first stream's codec and size.
fn probe_picture(file: &Path) -> (String, u64, u64) {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs (scripts/install-test-deps installs ffmpeg)");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let stream = &report["streams"][0];
    (stream["codec_name"].as_str().unwrap_or_default().to_owned(), stream["width"].as_u64().unwrap_or(0), stream["height"].as_u64().unwrap_or(0))
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_jpegs_of_the_latest_keyframe_at_the_size_asked() {
    let state_dir = scratch_dir("snapshot");
    let server = start(&state_dir).await;
    let dead = call(server.addr, "POST", "/api/v1/paths", Some(json!({ "name": "dead", "config": { "source": "rtsp://127.0.0.1:9/none" } }))).await;
    assert_eq!(dead.status, 201);
    std::fs::create_dir_all(&state_dir).expect("folder");
    for (query, size) in [("", (320, 180)), ("?width=160", (160, 90))] {
        // demo, on demand, opens for the snapshot.
        let response = call(server.addr, "GET", &format!("/api/v1/paths/demo/snapshot.jpg{query}"), None).await;
        assert_eq!((response.status, response.header("content-type")), (200, Some("image/jpeg")), "{}", response.body);
        let file = state_dir.join("snapshot.jpg");
        std::fs::write(&file, &response.body_bytes).expect("write");
        assert_eq!(probe_picture(&file), ("mjpeg".to_owned(), size.0, size.1), "snapshot{query}");
    }
    assert_error(&call(server.addr, "GET", "/api/v1/paths/dead/snapshot.jpg", None).await, 503, "not_live", None);
    assert_error(&call(server.addr, "GET", "/api/v1/paths/nowhere/snapshot.jpg", None).await, 404, "unknown_path", None);
    assert_error(&call(server.addr, "GET", "/api/v1/paths/demo/snapshot.jpg?width=5", None).await, 400, "invalid_field", Some("width"));
    assert_error(&call(server.addr, "GET", "/api/v1/paths/demo/snapshot.jpg?width=abc", None).await, 400, "invalid_field", Some("width"));
    let _ = std::fs::remove_dir_all(&state_dir);
}
