//! The `lookout` binary: a bad configuration stops it with exit code 2 and the field named;
//! a good one starts it and prints the URL of the page; SIGTERM stops it gracefully.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

fn run_expecting_config_error(args: &[&str], field: &str) {
    let output = Command::new(LOOKOUT).args(args).output().expect("run lookout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "args {args:?}, stderr: {stderr}");
    assert!(stderr.contains(field), "names {field:?}: {stderr}");
}

#[test]
fn invalid_configuration_exits_2_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("lookout-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.toml");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(b"[paths.cam]\nsource = \"rtsp://10.0.0.1/s\"\ntransport = \"carrier-pigeon\"\n"))
        .expect("write config");
    let file_name = file.to_str().expect("utf-8 path");
    run_expecting_config_error(&["--config", file_name], "transport");
    for (text, field) in [
        ("[webrtc]\nudp_ports = \"50000-40000\"\n", "webrtc.udp_ports"),
        ("[[webrtc.ice_servers]]\nurls = [\"turn:turn.example.org\"]\n", "webrtc.ice_servers[0]"),
        ("[[webrtc.ice_servers]]\nurls = [\"http://stun.example.org\"]\n", "webrtc.ice_servers[0].urls"),
    ] {
        std::fs::write(&file, text).expect("write config");
        run_expecting_config_error(&["--config", file_name], field);
    }
    run_expecting_config_error(&["--config", "/nonexistent/lookout.toml"], "/nonexistent/lookout.toml");
    run_expecting_config_error(&["--source", "cam"], "--source cam");
    run_expecting_config_error(&["--source", "cam=http://x/y"], "scheme");
    run_expecting_config_error(&["--listen", "everywhere"], "--listen");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn example_configuration_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/lookout.example.toml");
    lookout::config::Config::from_file(std::path::Path::new(example)).expect("lookout.example.toml is valid");
}

#[test]
fn starts_with_no_arguments_but_an_address_and_prints_the_page_url() {
    let mut child = Command::new(LOOKOUT)
        .args(["--listen", "127.0.0.1:0", "--udp-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lookout");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a line on stdout");
    let url = line.trim().rsplit(' ').next().expect("a URL");
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/?path=demo"), "{line}");
}

#[test]
fn a_media_port_in_use_stops_it_with_the_setting_named() {
    let taken = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind a UDP port");
    let port = taken.local_addr().expect("address").port().to_string();
    let output = Command::new(LOOKOUT).args(["--listen", "127.0.0.1:0", "--udp-port", &port]).output().expect("run lookout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refused to start: {stderr}");
    assert!(stderr.contains("webrtc.udp_port") && stderr.contains(&port) && stderr.contains("in use"), "{stderr}");
}

#[test]
fn hash_password_prints_a_hash_the_configuration_takes() {
    let mut child = Command::new(LOOKOUT).arg("hash-password").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run lookout hash-password");
    child.stdin.take().expect("stdin").write_all(b"correct horse\n").expect("write the password");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("correct horse"), "{hash}");
    let config = format!("[[auth.users]]\nname = \"alice\"\npassword = \"{hash}\"\npermissions = [{{ action = \"read\" }}]\n");
    lookout::config::Config::from_toml(&config).expect("the hash is accepted");
}

/// The camera's password appears nowhere a person or client can read: not in the log, the
/// API, or the signalling messages, whether the camera refuses it (401), plays with it, or
/// cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_credentials_never_leave_the_server() {
    const PASSWORD: &str = "Sup3rSecretPw";
    const WRONG_PASSWORD: &str = "N0tThatOne";
    let camera = lookout_testkit::camera::Camera::start(lookout_testkit::free_port(), &["--width", "320", "--height", "180", "--auth", "digest", "--user", "viewer", "--password", PASSWORD])
        .expect("camera");
    let with = |password: &str| camera.url().replacen("rtsp://", &format!("rtsp://viewer:{password}@"), 1);
    let sources = [
        format!("cam={}", with(PASSWORD)),
        format!("refused={}", with(WRONG_PASSWORD)),
        format!("unreachable=rtsp://viewer:{PASSWORD}@127.0.0.1:9/stream"),
    ];
    let mut command = Command::new(LOOKOUT);
    command.args(["--listen", "127.0.0.1:0", "--udp-port", "0"]);
    for source in &sources {
        command.args(["--source", source]);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start lookout");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the page's URL");
    let addr: std::net::SocketAddr = line.split("http://").nth(1).and_then(|rest| rest.split('/').next()).and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("an address in {line:?}"));
    // The good camera plays, the others fail, are retried and are logged.
    let mut api = String::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        api = lookout_testkit::http::request(addr, "GET", "/api/paths", None, b"").await.expect("/api/paths").body;
        if api.contains(r#""state":"live""#) {
            break;
        }
    }
    assert!(api.contains(r#""state":"live""#), "the camera with the right password plays: {api}");
    let mut signalling = Vec::new();
    for path in ["cam", "refused", "unreachable"] {
        let (mut client, _) = lookout_testkit::signaling::SignalingClient::connect_with_token(addr, None).await.expect("welcome");
        client.send(&lookout_signaling::ClientMessage::Watch { path: path.into() }).await.expect("send");
        for _ in 0..3 {
            signalling.push(format!("{:?}", client.receive(Duration::from_secs(2)).await));
        }
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("refused") && log.contains("401"), "the refused password is logged, without the password: {log}");
    let signalling = signalling.join("\n");
    assert!(signalling.contains("Offer"), "the good camera was offered: {signalling}");
    for (what, text) in [("the log", log.as_ref()), ("/api/paths", &api), ("the signalling", &signalling)] {
        for password in [PASSWORD, WRONG_PASSWORD] {
            assert!(!text.contains(password), "a camera password is in {what}: {text}");
        }
    }
}

/// SIGTERM: a watching page's signalling socket is told `going_away` and closed with 1001
/// "server stopping" (it reconnects, to another server if there is one), and the process exits cleanly within the
/// grace time, its port closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_viewers_and_exits_in_time() {
    use lookout_signaling::{ClientMessage, ServerMessage};
    let mut child = Command::new(LOOKOUT).args(["--listen", "127.0.0.1:0", "--udp-port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start lookout");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the page's URL");
    let addr: std::net::SocketAddr = line.split("http://").nth(1).and_then(|rest| rest.split('/').next()).and_then(|addr| addr.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    let mut client = lookout_testkit::signaling::SignalingClient::connect(addr).await.expect("signalling");
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("watch");
    client.receive_until(Duration::from_secs(15), |message| matches!(message, ServerMessage::Offer { .. })).await.expect("an offer");

    let stopping = std::time::Instant::now();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    client.receive_until(Duration::from_secs(5), |message| matches!(message, ServerMessage::GoingAway { .. })).await.expect("told going_away");
    assert_eq!(client.close_code(Duration::from_secs(5)).await.expect("a close frame"), 1001, "going away");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(stopping.elapsed() < lookout::STOP_GRACE + Duration::from_secs(3), "still running {:?} after SIGTERM", stopping.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a clean exit: {status}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the port is closed");
    eprintln!("stopped {:?} after SIGTERM", stopping.elapsed());
}
