//! Access control against real clients: webrtc-rs viewers over /ws and WHEP, plain HTTP for the
//! API, ffprobe for signed LL-HLS URLs, Chromium for the page; a JWKS server and an auth
//! backend on loopback started by the tests.

mod common;

use axum::routing::post;
use common::{small_pattern, start_server_with_auth, wait_live};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use lookout::auth::{AuthSettings, CallbackSettings, JwtKey, JwtSettings, Permissions, User, DEFAULT_JWT_CLAIM};
use lookout::limits::LimitSettings;
use lookout_signaling::{ClientMessage, ErrorCode, ServerMessage};
use lookout_testkit::{browser, http, signaling::SignalingClient, viewer::Viewer, viewer::ViewerOptions};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "a test secret of at least thirty-two bytes";
const TIMEOUT: Duration = Duration::from_secs(10);

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn jwt_auth() -> AuthSettings {
    AuthSettings {
        jwt: Some(JwtSettings { key: JwtKey::Secret(SECRET.into()), issuer: None, audience: Some("lookout".into()), claim: DEFAULT_JWT_CLAIM.into() }),
        ..Default::default()
    }
}

/// An HS256 token with these permissions, valid for a minute.
fn token(permissions: Value) -> String {
    token_with(json!({"aud": "lookout", "sub": "tester", "exp": now() + 60, DEFAULT_JWT_CLAIM: permissions}))
}

fn token_with(claims: Value) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).expect("key")).expect("token")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn get_with(server: SocketAddr, path: &str, authorization: Option<&str>) -> http::Response {
    let headers: Vec<(&str, &str)> = authorization.iter().map(|value| ("Authorization", *value)).collect();
    http::request_with(server, "GET", path, &headers, None, b"").await.expect("request")
}

fn names(response: &http::Response) -> Vec<String> {
    let paths: Vec<Value> = serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("a JSON list ({e}): {}", response.body));
    paths.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect()
}

/// The server's first answer to `auth` with this token: welcome, or the error it refuses with.
async fn ws_auth(server: SocketAddr, token: Option<&str>) -> ServerMessage {
    let mut client = SignalingClient::open(server).await.expect("open /ws");
    assert!(matches!(client.receive(TIMEOUT).await, Ok(ServerMessage::Hello { protocol_version: 2, .. })));
    client.send(&ClientMessage::Auth { token: token.map(str::to_owned) }).await.expect("send auth");
    client.receive(TIMEOUT).await.expect("an answer to auth")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_permissions_decide_the_api_whep_and_ws() {
    let server = start_server_with_auth([("garage/door", small_pattern()), ("front", small_pattern())], Some(jwt_auth()), LimitSettings::default()).await;
    wait_live(&server, "garage/door", TIMEOUT).await;
    let garage = token(json!([{"action": "read", "path": "garage/*"}]));
    let admin = token(json!([{"action": "read"}, {"action": "api"}]));

    // The API: no token is asked for one; a token lists only what it may watch.
    let anonymous = get_with(server.addr, "/api/paths", None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(anonymous.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")));
    assert_eq!(names(&get_with(server.addr, "/api/paths", Some(&bearer(&garage))).await), ["garage/door"]);
    assert_eq!(names(&get_with(server.addr, "/api/paths", Some(&bearer(&admin))).await), ["front", "garage/door"]);
    assert_eq!(get_with(server.addr, "/api/sessions", Some(&bearer(&garage))).await.status, 403, "sessions need the api permission");
    assert_eq!(get_with(server.addr, "/api/sessions", Some(&bearer(&admin))).await.status, 200);

    // /api/v1 the same way, its refusals in its JSON form; changing a path needs `api`.
    let anonymous = get_with(server.addr, "/api/v1/paths", None).await;
    assert_eq!((anonymous.status, serde_json::from_str::<Value>(&anonymous.body).ok().map(|e| e["code"].clone())), (401, Some(json!("unauthorized"))), "{}", anonymous.body);
    assert!(anonymous.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")));
    assert_eq!(names(&get_with(server.addr, "/api/v1/paths", Some(&bearer(&garage))).await), ["garage/door"]);
    let add = |authorization: String, name: &'static str| async move {
        let body = json!({"name": name, "config": {"source": "rtsp://127.0.0.1:9/x"}}).to_string();
        http::request_with(server.addr, "POST", "/api/v1/paths", &[("Authorization", &authorization)], Some("application/json"), body.as_bytes()).await.expect("request")
    };
    let refused = add(bearer(&garage), "garage/side").await;
    assert_eq!((refused.status, serde_json::from_str::<Value>(&refused.body).ok().map(|e| e["code"].clone())), (403, Some(json!("forbidden"))), "{}", refused.body);
    assert_eq!(add(bearer(&admin), "garage/side").await.status, 201);
    // A stranger is refused before its body is judged: garbage gets 401, not 400.
    let garbage = http::request_with(server.addr, "POST", "/api/v1/batch/paths", &[], Some("application/json"), b"{not json").await.expect("request");
    assert_eq!(garbage.status, 401, "{}", garbage.body);

    // WHEP: 401 without a token, 403 for a path the token does not cover, plays with it.
    let refused = Viewer::watch_whep(server.addr, "garage/door", 0).await.err().expect("refused without a token").to_string();
    assert!(refused.contains("401"), "{refused}");
    let refused = Viewer::watch_whep_with(server.addr, "front", ViewerOptions::keeping(0).with_token(&garage)).await.err().expect("refused").to_string();
    assert!(refused.contains("403") && refused.contains("not allowed"), "{refused}");
    let whep = Viewer::watch_whep_with(server.addr, "garage/door", ViewerOptions::keeping(0).with_token(&garage)).await.expect("WHEP with a token");
    whep.wait_for_packets(30, TIMEOUT).await.expect("the WHEP viewer plays");

    // /ws: the token in the first message; a path it does not cover answers not_allowed, the
    // same whether or not the path exists.
    let ws = Viewer::watch_ws_with(Ipv4Addr::LOCALHOST.into(), server.addr, "garage/door", ViewerOptions::keeping(0).with_token(&garage)).await.expect("/ws with a token");
    ws.wait_for_packets(30, TIMEOUT).await.expect("the /ws viewer plays");
    let (mut client, ice_servers) = SignalingClient::connect_with_token(server.addr, Some(&garage)).await.expect("welcome");
    assert!(ice_servers.is_empty());
    for path in ["front", "nowhere"] {
        client.send(&ClientMessage::Watch { path: path.into() }).await.expect("send");
        match client.receive(TIMEOUT).await {
            Ok(ServerMessage::Error { code: ErrorCode::NotAllowed, message }) => assert!(message.contains("not allowed"), "{message}"),
            other => panic!("watching {path} with a garage token: {other:?}"),
        }
    }
    let (mut client, _) = SignalingClient::connect_with_token(server.addr, Some(&admin)).await.expect("welcome");
    client.send(&ClientMessage::Watch { path: "nowhere".into() }).await.expect("send");
    assert!(matches!(client.receive(TIMEOUT).await, Ok(ServerMessage::Error { code: ErrorCode::UnknownPath, .. })));

    // Bad tokens are refused at auth, saying why, and the socket closes.
    let expired = token_with(json!({"aud": "lookout", "exp": now() - 120, DEFAULT_JWT_CLAIM: [{"action": "read"}]}));
    let mut tampered = garage.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let header = |alg: &str| base64_url(&json!({"alg": alg, "typ": "JWT"}).to_string());
    let payload = base64_url(&json!({"aud": "lookout", "exp": now() + 60, DEFAULT_JWT_CLAIM: [{"action": "read"}]}).to_string());
    let unsigned = format!("{}.{payload}.", header("none"));
    for (name, bad, says) in [("expired", expired.as_str(), "expired"), ("tampered", &tampered, "signature"), ("alg none", &unsigned, "not a JWT")] {
        match ws_auth(server.addr, Some(bad)).await {
            ServerMessage::Error { code: ErrorCode::Unauthorized, message } => assert!(message.contains(says), "{name}: {message}"),
            other => panic!("{name}: {other:?}"),
        }
        let response = get_with(server.addr, "/api/paths", Some(&bearer(bad))).await;
        assert_eq!(response.status, 401, "{name}: {}", response.body);
        assert!(!response.body.contains(bad), "the answer does not echo the token");
    }
    // Anonymous callers get in, and may watch nothing.
    assert!(matches!(ws_auth(server.addr, None).await, ServerMessage::Welcome { .. }));

    // Through all of it the viewers kept playing.
    let before = (whep.received().packets, ws.received().packets);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(whep.received().packets > before.0 + 10 && ws.received().packets > before.1 + 10, "viewers kept receiving");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// An identity provider's JWKS endpoint: serves whatever key set it is given, counting fetches.
struct JwksServer {
    addr: SocketAddr,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    async fn start() -> Self {
        let keys = Arc::new(Mutex::new(json!({"keys": []})));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let set = served.lock().expect("lock").clone();
                async move { axum::Json(set) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, keys, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A P-256 signing key of the provider: its JWK and a way to sign tokens with it.
struct ProviderKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl ProviderKey {
    fn new(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate().expect("a P-256 key");
        let point = pair.public_key_raw(); // 0x04, x, y
        let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": base64_url_bytes(&point[1..33]), "y": base64_url_bytes(&point[33..65])});
        Self { kid: kid.into(), encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("key"), jwk }
    }

    fn token(&self, permissions: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, &json!({"exp": now() + 60, DEFAULT_JWT_CLAIM: permissions}), &self.encoding).expect("token")
    }
}

fn base64_url_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_jwks_key_is_picked_up_without_a_restart_and_fetches_are_bounded() {
    let provider = JwksServer::start().await;
    let (first, second) = (ProviderKey::new("2026-a"), ProviderKey::new("2026-b"));
    *provider.keys.lock().expect("lock") = json!({"keys": [first.jwk]});
    let jwks = format!("http://{}/jwks.json", provider.addr).parse().expect("url");
    let auth = AuthSettings { jwt: Some(JwtSettings { key: JwtKey::Jwks(jwks), issuer: None, audience: None, claim: DEFAULT_JWT_CLAIM.into() }), ..Default::default() };
    // Every refused token counts against the address: let this test's refusals through.
    let limits = LimitSettings { failed_auth_per_ip_burst: 100, ..Default::default() };
    let server = start_server_with_auth([("demo", small_pattern())], Some(auth), limits).await;
    // The first fetch was before this (during the start, which may be slow on a busy machine):
    // 10 s from here are at least 10 s from it.
    let fetched_by = std::time::Instant::now();
    assert_eq!(provider.fetches(), 1, "the key set is fetched at start");
    let paths = |token: String| {
        let authorization = bearer(&token);
        async move { get_with(server.addr, "/api/paths", Some(&authorization)).await }
    };
    assert_eq!(names(&paths(first.token(json!([{"action": "read"}]))).await), ["demo"]);
    assert_eq!(provider.fetches(), 1, "and kept");

    // The provider rotates to a new key. Within 10 s of the last fetch a new key id is not
    // fetched for (so made-up ids cannot make Lookout hammer the provider)...
    *provider.keys.lock().expect("lock") = json!({"keys": [second.jwk]});
    let early = paths(second.token(json!([{"action": "read"}]))).await;
    assert_eq!(early.status, 401, "{}", early.body);
    assert!(early.body.contains("2026-b"), "says which key id it does not know: {}", early.body);
    assert_eq!(provider.fetches(), 1);
    // ...after it, the new key id is fetched for once, and the new key works.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(fetched_by.elapsed()) + Duration::from_millis(200)).await;
    assert_eq!(names(&paths(second.token(json!([{"action": "read"}]))).await), ["demo"]);
    assert_eq!(provider.fetches(), 2);
    for i in 0..20 {
        let forged = ProviderKey::new(&format!("made-up-{i}"));
        assert_eq!(paths(forged.token(json!([{"action": "read"}]))).await.status, 401);
    }
    assert_eq!(provider.fetches(), 2, "twenty unknown key ids in a row fetched nothing more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_in_the_file_log_in_with_basic_from_their_networks_and_failures_back_off() {
    let user = |name: &str, password: &str, network: &str| User {
        name: name.into(),
        password_hash: lookout::auth::hash_password(password).expect("hash"),
        networks: vec![network.parse().expect("network")],
        permissions: Permissions::read_all(),
    };
    let auth = AuthSettings { users: vec![user("alice", "alice's pw", "127.0.0.0/8"), user("bob", "bob's pw", "10.0.0.0/8")], ..Default::default() };
    let limits = LimitSettings { failed_auth_per_ip_burst: 5, ..Default::default() };
    let server = start_server_with_auth([("demo", small_pattern())], Some(auth), limits).await;
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    };
    let challenge = get_with(server.addr, "/api/paths", None).await;
    assert_eq!(challenge.status, 401);
    assert!(challenge.header("www-authenticate").is_some_and(|c| c.starts_with("Basic")), "browsers are asked for a name and password");
    assert_eq!(names(&get_with(server.addr, "/api/paths", Some(&basic("alice", "alice's pw"))).await), ["demo"]);
    // Bob's password is right, but he may only come from 10.0.0.0/8.
    assert_eq!(get_with(server.addr, "/api/paths", Some(&basic("bob", "bob's pw"))).await.status, 401);
    let wrong = get_with(server.addr, "/api/paths", Some(&basic("alice", "guess"))).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong user name or password") && !wrong.body.contains("guess"), "{}", wrong.body);
    // Five failures from one address: from then on it waits, whatever it sends.
    for _ in 0..4 {
        get_with(server.addr, "/api/paths", Some(&basic("mallory", "x"))).await;
    }
    let blocked = get_with(server.addr, "/api/paths", Some(&basic("alice", "alice's pw"))).await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert!(blocked.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
}

/// The user's backend: allows `let-me-in`, is slow for `slow`, refuses anything else; keeps
/// every question it was asked.
async fn auth_backend() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let app = axum::Router::new().route(
        "/decide",
        post(move |axum::Json(question): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(question.clone());
                match question["token"].as_str() {
                    Some("let-me-in") => axum::http::StatusCode::OK,
                    Some("slow") => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        axum::http::StatusCode::OK
                    }
                    _ => axum::http::StatusCode::FORBIDDEN,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_callback_decides_and_fails_closed() {
    let (backend, asked) = auth_backend().await;
    let callback = |url: String| AuthSettings {
        callback: Some(CallbackSettings { url: url.parse().expect("url"), timeout: Duration::from_millis(500), remember: Duration::from_secs(10) }),
        ..Default::default()
    };
    let server = start_server_with_auth([("demo", small_pattern())], Some(callback(format!("http://{backend}/decide"))), LimitSettings::default()).await;
    wait_live(&server, "demo", TIMEOUT).await;
    let viewer = Viewer::watch_whep_with(server.addr, "demo", ViewerOptions::keeping(0).with_token("let-me-in")).await.expect("the backend allows");
    viewer.wait_for_packets(30, TIMEOUT).await.expect("plays");
    let question = asked.lock().expect("lock").last().cloned().expect("the backend was asked");
    assert_eq!((question["action"].as_str(), question["path"].as_str(), question["protocol"].as_str()), (Some("read"), Some("demo"), Some("whep")), "{question}");
    assert_eq!(question["ip"], "127.0.0.1");
    assert_eq!(question["session"].as_str(), Some(viewer.session.as_str()), "the backend learns the session it allowed: {question}");
    for token in ["nope", "slow"] {
        let started = std::time::Instant::now();
        let refused = Viewer::watch_whep_with(server.addr, "demo", ViewerOptions::keeping(0).with_token(token)).await.err().expect("refused").to_string();
        assert!(refused.contains("403"), "{token}: {refused}");
        assert!(started.elapsed() < Duration::from_secs(3), "a slow backend is not waited for past its timeout");
    }
    // Each new session is asked about (the backend may count them), under its own id.
    let before = asked.lock().expect("lock").len();
    assert_eq!(ws_watch_error(server.addr, "nope").await, Some(ErrorCode::NotAllowed));
    assert_eq!(ws_watch_error(server.addr, "nope").await, Some(ErrorCode::NotAllowed));
    let sessions: Vec<Value> = asked.lock().expect("lock")[before..].iter().map(|q| q["session"].clone()).collect();
    assert!(sessions.len() == 2 && sessions[0].is_string() && sessions[0] != sessions[1], "one question per /ws session: {sessions:?}");
    // Requests without a session (a player's playlists and segments) are answered from memory.
    let before = asked.lock().expect("lock").len();
    for _ in 0..3 {
        assert_eq!(get_with(server.addr, "/hls/demo/index.m3u8", Some("Bearer let-me-in")).await.status, 200);
    }
    let hls_questions = asked.lock().expect("lock")[before..].to_vec();
    assert!(hls_questions.len() == 1 && hls_questions[0]["session"].is_null(), "asked once, with no session: {hls_questions:?}");

    // A backend that is down: refused, not let through.
    let down = start_server_with_auth([("demo", small_pattern())], Some(callback("http://127.0.0.1:9/decide".into())), LimitSettings::default()).await;
    wait_live(&down, "demo", TIMEOUT).await;
    let refused = Viewer::watch_whep_with(down.addr, "demo", ViewerOptions::keeping(0).with_token("let-me-in")).await.err().expect("fails closed").to_string();
    assert!(refused.contains("403"), "{refused}");
    assert!(viewer.received().packets > 30, "the allowed viewer played on");
}

/// Watches `demo` over /ws with this token; the error code it gets, if any, before an offer.
async fn ws_watch_error(server: SocketAddr, token: &str) -> Option<ErrorCode> {
    let (mut client, _) = SignalingClient::connect_with_token(server, Some(token)).await.expect("welcome");
    client.send(&ClientMessage::Watch { path: "demo".into() }).await.expect("send");
    match client.receive(TIMEOUT).await.expect("an answer") {
        ServerMessage::Error { code, .. } => Some(code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_url_lets_ffprobe_play_llhls_without_headers() {
    let server = start_server_with_auth([("demo", small_pattern())], Some(jwt_auth()), LimitSettings::default()).await;
    wait_live(&server, "demo", TIMEOUT).await;
    let reader = token(json!([{"action": "read", "path": "demo"}]));
    assert_eq!(get_with(server.addr, "/hls/demo/index.m3u8", None).await.status, 401, "no header, no signature: refused");
    let headers = [("Authorization", bearer(&reader))];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let signed = http::request_with(server.addr, "POST", "/api/hls-url/demo?ttl_secs=60", &headers, None, b"").await.expect("sign");
    assert_eq!(signed.status, 200, "{}", signed.body);
    let url = serde_json::from_str::<Value>(&signed.body).expect("JSON")["url"].as_str().expect("a url").to_owned();
    assert!(!url.contains(&reader), "the signed URL holds none of the caller's token");
    let playlist = get_with(server.addr, &url, None).await;
    assert_eq!(playlist.status, 200, "{}", playlist.body);
    let sig = url.split_once("?sig=").expect("a signature").1;
    assert!(playlist.body.contains(&format!("stream.m3u8?sig={sig}")), "{}", playlist.body);
    let media = get_with(server.addr, &format!("/hls/demo/stream.m3u8?sig={sig}"), None).await;
    assert!(media.body.lines().filter(|l| !l.starts_with('#') || l.contains("URI=")).all(|l| l.contains(&format!("sig={sig}"))), "{}", media.body);
    // A real player that sends no headers: ffprobe decodes the stream from the signed URL.
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-rw_timeout", "10000000"])
        .arg(format!("http://{}{url}", server.addr))
        .output()
        .expect("run ffprobe");
    let streams = String::from_utf8_lossy(&output.stdout);
    assert!(streams.lines().any(|l| l.trim() == "h264"), "ffprobe found h264: {streams} {}", String::from_utf8_lossy(&output.stderr));
    // Another path's, or a tampered, signature reads nothing.
    let other = get_with(server.addr, &format!("/hls/front/index.m3u8?sig={sig}"), None).await;
    assert_eq!(other.status, 403);
    let tampered = get_with(server.addr, &format!("{}AA", url.trim_end_matches(|c: char| c.is_ascii_alphanumeric())), None).await;
    assert!(tampered.status == 403, "{} {}", tampered.status, tampered.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sessions_is_refused_while_a_viewer_plays_on() {
    let limits = LimitSettings {
        sessions_per_ip_burst: 5,
        sessions_per_ip_per_second: 1.0,
        // Long enough that the three waiting sockets below still wait when the fourth comes.
        ws_first_message: Duration::from_secs(3),
        ws_unauthenticated_per_ip: 3,
        header_read: Duration::from_secs(1),
        body_read: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start_server_with_auth([("demo", small_pattern())], None, limits).await;
    wait_live(&server, "demo", TIMEOUT).await;
    let watcher = Viewer::watch_whep(server.addr, "demo", 0).await.expect("watcher");
    let before = watcher.wait_for_packets(30, TIMEOUT).await.expect("the watcher plays");
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let response = http::request(server.addr, "POST", "/whep/demo", Some("application/sdp"), b"v=0\r\n").await.expect("post");
        if response.status == 429 {
            assert!(response.header("retry-after").is_some(), "a 429 says when to retry");
        }
        statuses.push(response.status);
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 30, "past the burst, offers are refused with 429: {statuses:?}");
    // A WebSocket that says nothing is closed after its first-message time, and only so many
    // may wait at once: the next is refused before it is upgraded.
    let mut silent = SignalingClient::open(server.addr).await.expect("open");
    assert!(matches!(silent.receive(TIMEOUT).await, Ok(ServerMessage::Hello { .. })));
    let _also_silent = [SignalingClient::open(server.addr).await.expect("open"), SignalingClient::open(server.addr).await.expect("open")];
    let refused = SignalingClient::open(server.addr).await.err().expect("a fourth waiting socket is refused").to_string();
    assert!(refused.contains("429") && refused.contains("Retry-After 3") && refused.contains("have not authenticated"), "{refused}");
    match silent.receive(Duration::from_secs(5)).await {
        Ok(ServerMessage::Error { code: ErrorCode::Unauthorized, message }) => assert!(message.contains("no auth message"), "{message}"),
        other => panic!("a silent socket: {other:?}"),
    }
    assert!(silent.receive(Duration::from_secs(5)).await.is_err(), "then it is closed");
    // Slow clients: silence and headers that never end are cut off, a body that never comes
    // gets 408.
    assert_eq!(slow_client(server.addr, "").await, "", "a silent connection is closed, with nothing to say");
    let slow_headers = slow_client(server.addr, "GET /api/paths HTTP/1.1\r\nHost: x\r\n").await;
    assert!(!slow_headers.contains("200 OK"), "{slow_headers:?}");
    let slow_body = slow_client(server.addr, "POST /whep/demo HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n").await;
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body:?}");
    let after = watcher.received();
    assert!(after.packets > before.packets + 30, "the watcher kept receiving");
    assert_eq!(after.sequence_gaps, 0, "with no loss");

    // Viewers that arrive together cannot pass the maximum between them: each takes its
    // place before its connection is built.
    let full = start_server_with_auth([("demo", small_pattern())], None, LimitSettings { max_viewers: 3, ..Default::default() }).await;
    wait_live(&full, "demo", TIMEOUT).await;
    let attempts = futures::future::join_all((0..8).map(|_| Viewer::watch_whep(full.addr, "demo", 0))).await;
    let (admitted, refused): (Vec<_>, Vec<_>) = attempts.into_iter().partition(Result::is_ok);
    let reasons: Vec<String> = refused.into_iter().filter_map(Result::err).map(|e| e.to_string()).collect();
    assert_eq!(admitted.len(), 3, "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains("503") && r.contains("maximum of 3 viewers")), "{reasons:?}");
}

/// Sends `start` and nothing more; returns what the server answered before it closed the
/// connection, which it must do within a few seconds.
async fn slow_client(server: SocketAddr, start: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server).await.expect("connect");
    stream.write_all(start.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed a slow connection in time; it sent {:?}", String::from_utf8_lossy(&answer));
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_with_a_token_in_the_fragment_and_says_when_it_may_not() {
    // Pages of other sites may not connect; the page Lookout serves itself still does.
    let auth = AuthSettings { allowed_origins: vec!["https://app.example".into()], ..jwt_auth() };
    let server = start_server_with_auth([("garage/door", small_pattern()), ("demo", small_pattern())], Some(auth), LimitSettings::default()).await;
    wait_live(&server, "garage/door", TIMEOUT).await;
    let garage = token(json!([{"action": "read", "path": "garage/*"}]));
    let upgrade = |origin: &'static str| {
        let addr = server.addr;
        async move {
            let headers = [("Origin", origin), ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")];
            http::request_with(addr, "GET", "/ws", &headers, None, b"").await.expect("upgrade request")
        }
    };
    assert_eq!(upgrade("https://evil.example").await.status, 403, "a foreign page cannot open /ws");
    let whep = http::request_with(server.addr, "OPTIONS", "/whep/demo", &[("Origin", "https://evil.example")], None, b"").await.expect("preflight");
    assert!(whep.header("access-control-allow-origin").is_none(), "nor read WHEP answers");
    let whep = http::request_with(server.addr, "OPTIONS", "/whep/demo", &[("Origin", "https://app.example")], None, b"").await.expect("preflight");
    assert_eq!(whep.header("access-control-allow-origin"), Some("https://app.example"));
    // hls.js on an allowed origin sends the token in a header: its preflight is answered.
    let preflight = [("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "authorization")];
    let hls = http::request_with(server.addr, "OPTIONS", "/hls/garage/door/index.m3u8", &preflight, None, b"").await.expect("preflight");
    assert_eq!((hls.status, hls.header("access-control-allow-origin")), (204, Some("https://app.example")));
    assert!(hls.header("access-control-allow-headers").is_some_and(|h| h.contains("authorization")), "{:?}", hls.header("access-control-allow-headers"));
    let page = |path: &str, token: &str| format!("http://{}/?path={path}#token={token}", server.addr);
    let played = tokio::task::spawn_blocking({
        let url = page("garage/door", &garage);
        move || browser::play(&url, &["--seconds", "3"])
    })
    .await
    .expect("join");
    let played = played.unwrap_or_else(|e| panic!("Chromium did not play with a valid token: {e}"));
    assert!(played["framesRendered"].as_u64().unwrap_or(0) > 20, "{played}");

    let expired = token_with(json!({"aud": "lookout", "exp": now() - 120, DEFAULT_JWT_CLAIM: [{"action": "read"}]}));
    let mut tampered = garage.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let unsigned = format!("{}.{}.", base64_url(r#"{"alg":"none","typ":"JWT"}"#), base64_url(&json!({"aud": "lookout", "exp": now() + 60, DEFAULT_JWT_CLAIM: [{"action": "read"}]}).to_string()));
    let cases = [
        ("no token", format!("http://{}/?path=demo", server.addr)),
        ("expired", page("demo", &expired)),
        ("another path's", page("demo", &garage)),
        ("tampered", page("garage/door", &tampered)),
        ("alg none", page("demo", &unsigned)),
    ];
    for (name, url) in cases {
        let result = tokio::task::spawn_blocking(move || browser::refused(&url)).await.expect("join");
        let result = result.unwrap_or_else(|e| panic!("{name}: the page did not refuse cleanly: {e}"));
        if name == "another path's" {
            assert_eq!(result["pathsListed"], json!(["garage/door"]), "a garage token lists only garage paths: {result}");
        }
    }
}
