//! Real networks in namespaces these tests make (they need root): NAT on both sides, and a
//! viewer whose network drops UDP.

use lookout_testkit::browser;
use lookout_testkit::netns::Namespace;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

fn load_generator() -> PathBuf {
    let path = PathBuf::from(LOOKOUT).with_file_name("lookout-load");
    assert!(path.exists(), "{} is missing: build the workspace (scripts/test does)", path.display());
    path
}

/// Packets a NAT rule has matched, from `iptables -L -v -x`.
fn nat_rule_packets(namespace: &Namespace, chain: &str) -> u64 {
    let output = namespace.exec("iptables", &["-t", "nat", "-L", chain, "-v", "-n", "-x"]).expect("iptables -L");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The tests read /api/sessions from inside their namespaces, not over loopback: anonymous
/// callers there may use the API.
const ANYONE_USES_THE_API: &str = "[auth]\nanonymous = [{ action = \"read\" }, { action = \"api\" }]\n";

const SMALL_PATTERN: &str = "{ width = 320, height = 180, fps = 15, keyframe_interval_secs = 1, bitrate_kbps = 300 }";

/// A configuration serving a small test pattern at `demo` on `http_ip:8080`.
fn config(http_ip: &str, webrtc_section: &str) -> String {
    config_with_pattern(http_ip, SMALL_PATTERN, webrtc_section)
}

fn config_with_pattern(http_ip: &str, test_pattern: &str, webrtc_section: &str) -> String {
    format!("listen = \"{http_ip}:8080\"\n{ANYONE_USES_THE_API}[paths.demo]\nsource = \"testpattern\"\non_demand = false\ntest_pattern = {test_pattern}\n[webrtc]\n{webrtc_section}\n")
}

/// Lookout (the binary) in a namespace with this configuration, stopped by its PID.
struct Lookout {
    child: Child,
    config: PathBuf,
}

impl Lookout {
    fn start(namespace: &Namespace, config_text: &str) -> Self {
        let config = std::env::temp_dir().join(format!("lookout-{}.toml", namespace.name));
        std::fs::write(&config, config_text).expect("write config");
        let mut child = namespace
            .command(LOOKOUT)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lookout in its namespace");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        assert!(line.contains("Lookout is running"), "lookout started: {line:?}");
        std::thread::sleep(Duration::from_secs(1)); // the test pattern's first keyframe
        Self { child, config }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

impl Drop for Lookout {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/api/paths` of a Lookout in `namespace` (read with Debian's Python: no curl needed).
fn api_paths(namespace: &Namespace, http_addr: &str) -> serde_json::Value {
    let script = format!("import urllib.request; print(urllib.request.urlopen('http://{http_addr}/api/paths', timeout=5).read().decode())");
    let output = namespace.exec("python3", &["-c", &script]).expect("GET /api/paths");
    serde_json::from_str(&String::from_utf8_lossy(&output.stdout)).expect("JSON from /api/paths")
}

/// A viewer behind a router that masquerades (as a home router does) watches Lookout running
/// behind 1:1 NAT (as on a cloud host), which announces only its public address.
///
///   viewer 192.168.77.2 ── router (MASQUERADE) 192.168.77.1 | 100.64.0.2 ── 100.64.0.1 server
///                                                        public address, DNAT to 10.204.0.1
#[test]
fn a_viewer_behind_masquerade_plays_from_a_server_behind_one_to_one_nat() {
    let id = std::process::id() % 100_000;
    let server = Namespace::new(format!("lk-srv-{id}")).expect("server namespace");
    let router = Namespace::new(format!("lk-rtr-{id}")).expect("router namespace");
    let viewer = Namespace::new(format!("lk-vwr-{id}")).expect("viewer namespace");
    server.link(("s0", "100.64.0.1/24"), &router, ("rwan", "100.64.0.2/24")).expect("wan link");
    router.link(("rlan", "192.168.77.1/24"), &viewer, ("v0", "192.168.77.2/24")).expect("lan link");
    viewer.exec("ip", &["route", "add", "default", "via", "192.168.77.1"]).expect("viewer route");
    router.exec("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"]).expect("router forwards");
    router.exec("iptables", &["-t", "nat", "-A", "POSTROUTING", "-o", "rwan", "-j", "MASQUERADE"]).expect("masquerade");
    // The server's media sockets are on a private address, reached through 1:1 NAT. It sits on
    // a veth pair of its own: a dummy device needs a kernel module not every machine has, and
    // webrtc-rs does not bind addresses of the loopback device.
    server.exec("ip", &["link", "add", "priv", "type", "veth", "peer", "name", "priv-peer"]).expect("private device");
    server.exec("ip", &["addr", "add", "10.204.0.1/32", "dev", "priv"]).expect("private address");
    for device in ["priv", "priv-peer"] {
        server.exec("ip", &["link", "set", device, "up"]).expect("up");
    }
    server
        .exec("iptables", &["-t", "nat", "-A", "PREROUTING", "-i", "s0", "-d", "100.64.0.1", "-p", "udp", "-j", "DNAT", "--to-destination", "10.204.0.1"])
        .expect("1:1 NAT");

    let webrtc = "listen_ips = [\"10.204.0.1\"]\npublic_ips = [\"100.64.0.1\"]\nhide_private_addresses = true";
    let mut lookout = Lookout::start(&server, &config("100.64.0.1", webrtc));

    let load = viewer
        .command(load_generator().to_str().expect("utf-8 path"))
        .args(["--server", "100.64.0.1:8080", "--viewers", "2", "--seconds", "3", "--bind", "0.0.0.0"])
        .output()
        .expect("run lookout-load in the viewer namespace");
    lookout.stop();
    let report = String::from_utf8_lossy(&load.stdout);
    eprintln!("through NAT: {report}\n{}", String::from_utf8_lossy(&load.stderr));
    let report: serde_json::Value = serde_json::from_str(report.trim()).expect("JSON report");
    assert_eq!(report["joined"], 2, "{report}");
    assert_eq!(report["without_video"], 0, "{report}");
    assert!(report["packets"].as_u64().unwrap_or(0) > 100, "{report}");
    assert!(nat_rule_packets(&router, "POSTROUTING") > 0, "the viewer's traffic was masqueraded");
    assert!(nat_rule_packets(&server, "PREROUTING") > 0, "the media reached the server through its 1:1 NAT");
}

/// Chromium in a namespace whose network drops all UDP plays `demo` from Lookout in another,
/// with `webrtc_section` as Lookout's settings; returns play.mjs's result.
fn play_without_udp(name: &str, webrtc_section: &str, seconds: &str) -> Result<serde_json::Value, String> {
    let id = std::process::id() % 100_000;
    let server = Namespace::new(format!("lk-{name}s-{id}")).expect("server namespace");
    let viewer = Namespace::new(format!("lk-{name}v-{id}")).expect("viewer namespace");
    server.link(("s0", "10.210.0.1/24"), &viewer, ("v0", "10.210.0.2/24")).expect("link");
    for chain in ["INPUT", "OUTPUT"] {
        viewer.exec("iptables", &["-A", chain, "-p", "udp", "-j", "DROP"]).expect("drop UDP");
    }
    let mut lookout = Lookout::start(&server, &config("10.210.0.1", &format!("listen_ips = [\"10.210.0.1\"]\n{webrtc_section}")));
    let mut command = viewer.command("node");
    command.arg(browser::script()).args(["--url", "http://10.210.0.1:8080/?path=demo", "--seconds", seconds, "--first-frame-timeout", "20"]);
    let result = browser::run(command);
    lookout.stop();
    let dropped = String::from_utf8_lossy(&viewer.exec("iptables", &["-L", "OUTPUT", "-v", "-n", "-x"]).expect("iptables").stdout).into_owned();
    eprintln!("UDP the viewer tried and lost:\n{dropped}");
    result
}

/// A viewer whose network drops all UDP plays over ICE-TCP (Chromium's active TCP candidate to
/// Lookout's passive one on the shared port).
#[test]
fn a_viewer_without_udp_plays_over_ice_tcp() {
    let result = play_without_udp("tcp", "ice_tcp = true", "3").unwrap_or_else(|failure| panic!("the page did not play without UDP: {failure}"));
    assert_eq!(result["transport"], "webrtc", "{result}");
    // Chromium's active TCP candidate shows as peer-reflexive ("prflx tcp"): the transport is what counts.
    assert!(result["route"].as_str().is_some_and(|route| route.ends_with(" tcp")), "{result}");
}

/// Without UDP and without ICE-TCP, WebRTC cannot get through: the page falls back to LL-HLS
/// by itself, says why, and plays. (Over 8 s: hls.js stalls once, for about a keyframe
/// interval, at the end of the first segment of a muxer that has just started.)
#[test]
fn a_page_without_udp_falls_back_to_ll_hls() {
    let result = play_without_udp("hls", "", "8").unwrap_or_else(|failure| panic!("the page did not play without UDP: {failure}"));
    assert_eq!(result["transport"], "hls", "{result}");
    assert_eq!(result["fallbackReason"], "UDP unreachable", "{result}");
    assert!(result["status"].as_str().is_some_and(|s| s.starts_with("LL-HLS fallback: UDP unreachable")), "{result}");
}

/// A server whose firewall lets viewers' UDP reach only its TURN server's relayed ports: the
/// page plays through the relay Lookout allocated for itself (full ICE: Lookout's own checks
/// from its relayed address open the relay's permission for the viewer). The viewer cannot
/// reach the TURN server's listening port, so it has no relay of its own.
#[test]
fn a_server_that_lets_in_only_its_turn_relay_plays_through_it() {
    use lookout_testkit::turn::{TurnAuth, TurnServer};
    let id = std::process::id() % 100_000;
    let server = Namespace::new(format!("lk-rls-{id}")).expect("server namespace");
    let viewer = Namespace::new(format!("lk-rlv-{id}")).expect("viewer namespace");
    server.link(("s0", "10.212.0.1/24"), &viewer, ("v0", "10.212.0.2/24")).expect("link");
    // Chromium gathers host candidates on the interface of its default route.
    viewer.exec("ip", &["route", "add", "default", "dev", "v0"]).expect("viewer route");
    // coturn relays on ports 62000-62999; every other UDP from the viewer's side is dropped.
    server.exec("iptables", &["-A", "INPUT", "-i", "s0", "-p", "udp", "--dport", "62000:62999", "-j", "ACCEPT"]).expect("allow the relay");
    server.exec("iptables", &["-A", "INPUT", "-i", "s0", "-p", "udp", "-j", "DROP"]).expect("drop other UDP");
    let turn = TurnServer::start_in(&server, "10.212.0.1", 3478, TurnAuth::User { username: "lookout", password: "relay-me" }).expect("coturn");
    let webrtc = "listen_ips = [\"10.212.0.1\"]\nudp_ports = \"61200-61209\"\n\
                  ice_servers = [{ urls = [\"turn:10.212.0.1:3478?transport=udp\"], username = \"lookout\", credential = \"relay-me\" }]";
    let mut lookout = Lookout::start(&server, &config("10.212.0.1", webrtc));
    let mut command = viewer.command("node");
    command.arg(browser::script()).args(["--url", "http://10.212.0.1:8080/?path=demo", "--seconds", "3", "--first-frame-timeout", "20"]);
    let result = browser::run(command);
    lookout.stop();
    let firewall = String::from_utf8_lossy(&server.exec("iptables", &["-L", "INPUT", "-v", "-n", "-x"]).expect("iptables").stdout).into_owned();
    let result = result.unwrap_or_else(|failure| panic!("the page did not play through Lookout's relay: {failure}\nfirewall:\n{firewall}\ncoturn:\n{}", turn.log()));
    assert_eq!(result["transport"], "webrtc", "over WebRTC, not the LL-HLS fallback: {result}");
    assert!(result["framesRendered"].as_u64().unwrap_or(0) > 20, "{result}");
    // `iptables -L -v -x` lines start with the packet count.
    let packets = |rule: &str| firewall.lines().find(|line| line.contains(rule)).and_then(|line| line.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or(0);
    assert!(packets("dpts:62000:62999") > 20, "the viewer's checks and RTCP came in through the relay:\n{firewall}");
    assert!(packets("DROP") > 0, "the viewer tried Lookout's own address too, and was dropped:\n{firewall}");
}

/// A server and a viewer namespace joined by a veth pair, `s0` at 10.`subnet`.0.1 and `v0` at
/// 10.`subnet`.0.2, each with a default route over it: a webrtc-rs viewer's mDNS socket needs a
/// multicast route (ENODEV without one).
fn server_and_viewer(name: &str, subnet: u8) -> (Namespace, Namespace) {
    let id = std::process::id() % 100_000;
    let server = Namespace::new(format!("lk-{name}s-{id}")).expect("server namespace");
    let viewer = Namespace::new(format!("lk-{name}v-{id}")).expect("viewer namespace");
    server.link(("s0", &format!("10.{subnet}.0.1/24")), &viewer, ("v0", &format!("10.{subnet}.0.2/24"))).expect("link");
    viewer.exec("ip", &["route", "add", "default", "dev", "v0"]).expect("viewer route");
    server.exec("ip", &["route", "add", "default", "dev", "s0"]).expect("server route");
    (server, viewer)
}

/// A viewer behind a link of twice the stream's average bitrate with a shallow queue (30
/// packets, as in a cheap router): after the join, the link's queue drops none of the 720p
/// stream's packets, keyframes included, because the pacer spreads each keyframe instead of
/// writing it as one burst (unpaced, it drops the tail of every keyframe). The drops are read
/// from the queue itself: what the viewer's own process loses when this machine's two cores
/// are busy with other tests is its business, not the link's, and is printed beside.
#[test]
fn keyframes_cross_a_link_of_twice_the_average_bitrate_without_loss() {
    let (server, viewer) = server_and_viewer("pc", 211);
    // A token bucket (this machine's kernel has no netem): 5 Mbit/s, a burst of 2 packets and a
    // queue of 36 000 bytes, about 30 packets.
    server.exec("tc", &["qdisc", "add", "dev", "s0", "root", "tbf", "rate", "5mbit", "burst", "3000", "limit", "36000"]).expect("tc tbf");
    let link_drops = || {
        let stats = String::from_utf8_lossy(&server.exec("tc", &["-s", "qdisc", "show", "dev", "s0"]).expect("tc -s").stdout).into_owned();
        let dropped = stats.split("dropped ").nth(1).and_then(|rest| rest.split([',', ' ']).next()?.parse::<u64>().ok());
        (dropped.expect("a drop count in `tc -s qdisc`"), stats)
    };
    let pattern = "{ width = 1280, height = 720, fps = 30, keyframe_interval_secs = 1, bitrate_kbps = 2500 }";
    let mut lookout = Lookout::start(&server, &config_with_pattern("10.211.0.1", pattern, "listen_ips = [\"10.211.0.1\"]"));
    let started = std::time::Instant::now();
    let mut load = viewer
        .command(load_generator().to_str().expect("utf-8 path"))
        .args(["--server", "10.211.0.1:8080", "--viewers", "1", "--warmup", "3", "--seconds", "6", "--bind", "0.0.0.0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lookout-load in the viewer namespace");
    // The join replays the cached GOP faster than the link takes it, on purpose, and the
    // packets it lost come again as retransmissions; what counts is what follows: from when
    // the viewer's session stops asking for retransmissions (its count holds for a sample, a
    // second or more after the session began) to the end. On a busy machine the join itself
    // can come seconds after the start.
    let mut drops_after_join = None;
    let mut link_over_time = Vec::new();
    let (mut session_seen, mut resent_before) = (None, None);
    while started.elapsed() < Duration::from_secs(30) && load.try_wait().ok().flatten().is_none() {
        if let Some(session) = api_sessions(&server, "10.211.0.1:8080").first() {
            link_over_time.push(format!("burst {} estimate {} resent {}", session["burst_bps"], session["estimated_bitrate_bps"], session["packets_resent"]));
            let seen = *session_seen.get_or_insert_with(std::time::Instant::now);
            let resent = session["packets_resent"].as_u64();
            if drops_after_join.is_none() && seen.elapsed() >= Duration::from_secs(1) && resent.is_some() && resent == resent_before {
                drops_after_join = Some(link_drops().0);
                link_over_time.push("(the join is over: drops counted from here)".to_owned());
            }
            resent_before = resent;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let load = load.wait_with_output().expect("lookout-load ends");
    let (drops_at_end, queue) = link_drops();
    let paths = api_paths(&server, "10.211.0.1:8080");
    let average = paths[0]["stats"]["bitrate_bps"].as_f64();
    lookout.stop();
    let receiver_udp = String::from_utf8_lossy(&viewer.exec("grep", &["^Udp:", "/proc/net/snmp"]).expect("snmp").stdout).into_owned();
    let report = String::from_utf8_lossy(&load.stdout);
    let what_happened = format!(
        "behind 5 Mbit/s, stream at {average:?} bit/s: {report}\n{}\nthe link's queue:\n{queue}\nthe viewer's UDP counters:\n{receiver_udp}\nthe viewer's link as Lookout saw it, every 250 ms:\n{}",
        String::from_utf8_lossy(&load.stderr),
        link_over_time.join("\n")
    );
    eprintln!("{what_happened}");
    let report: serde_json::Value = serde_json::from_str(report.trim()).expect("JSON report");
    let average = average.expect("the stream's bitrate from /api/paths");
    assert!(average <= 2_500_000.0 * 1.2, "the link carries about twice the average: {average}");
    assert_eq!(report["joined"], 1, "{what_happened}");
    // The stream flowed, keyframes and all: 600 packets is under a third of what 6 s of it
    // make at 2.5 Mbit/s, as the test pattern's encoder falls short of its bitrate when both
    // cores are busy (2.06 Mbit/s once, 947 packets).
    assert!(report["packets"].as_u64().unwrap_or(0) > 600, "{what_happened}");
    let Some(drops_after_join) = drops_after_join else { panic!("the viewer never stopped asking for retransmissions:\n{what_happened}") };
    assert_eq!(drops_at_end - drops_after_join, 0, "the link's queue dropped packets after the join:\n{what_happened}");
}

/// `/api/sessions` of a Lookout in `namespace`.
fn api_sessions(namespace: &Namespace, http_addr: &str) -> Vec<serde_json::Value> {
    let script = format!("import urllib.request; print(urllib.request.urlopen('http://{http_addr}/api/sessions', timeout=5).read().decode())");
    namespace
        .exec("python3", &["-c", &script])
        .ok()
        .and_then(|output| serde_json::from_str(&String::from_utf8_lossy(&output.stdout)).ok())
        .unwrap_or_default()
}

/// Polls the session `id` every 250 ms until `wanted` holds, for at most `timeout`.
fn wait_for_session(namespace: &Namespace, id: &str, timeout: Duration, what: &str, wanted: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let session = api_sessions(namespace, "10.212.0.1:8080").into_iter().find(|s| s["id"] == id);
        match session {
            Some(session) if wanted(&session) => return session,
            last if std::time::Instant::now() >= deadline => panic!("timed out after {timeout:?} waiting for {what}; last: {last:?}"),
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// One viewer behind a slow, lossy link (1 Mbit/s through a token bucket that queues up to
/// 200 ms, 5% of packets dropped at random) while two others watch on the server's loopback:
/// the slow one steps down to the sub layer and back up once its link recovers; the others
/// stay on the main layer without loss, and nobody is disconnected.
#[test]
fn a_slow_viewer_steps_down_to_the_sub_layer_alone_and_back_up() {
    let (server, viewer) = server_and_viewer("ly", 212);
    let config = format!("listen = \"10.212.0.1:8080\"\n{ANYONE_USES_THE_API}\
        [paths.demo]\nsource = \"testpattern\"\non_demand = false\n\
        test_pattern = {{ width = 1280, height = 720, fps = 30, keyframe_interval_secs = 1, bitrate_kbps = 2500 }}\n\
        [[paths.demo.layers]]\nsource = \"testpattern\"\n\
        test_pattern = {{ width = 320, height = 180, fps = 30, keyframe_interval_secs = 1, bitrate_kbps = 300 }}\n\
        [webrtc]\nlisten_ips = [\"10.212.0.1\", \"127.0.0.1\"]\n");
    let mut lookout = Lookout::start(&server, &config);
    // This machine's kernel has no netem: the rate and the queueing delay come from a token
    // bucket, the random loss from iptables.
    let impair = || {
        server.exec("tc", &["qdisc", "add", "dev", "s0", "root", "tbf", "rate", "1mbit", "burst", "3000", "latency", "200ms"]).expect("tc tbf");
        viewer.exec("iptables", &["-A", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP"]).expect("iptables loss");
    };
    impair();

    let load = |namespace: &Namespace, server_addr: &str, viewers: &str, bind: &str| {
        namespace
            .command(load_generator().to_str().expect("utf-8 path"))
            .args(["--server", server_addr, "--viewers", viewers, "--warmup", "2", "--seconds", "45", "--bind", bind])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start lookout-load")
    };
    let slow = load(&viewer, "10.212.0.1:8080", "1", "0.0.0.0");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let slow_id = loop {
        if let Some(session) = api_sessions(&server, "10.212.0.1:8080").first() {
            break session["id"].as_str().expect("session id").to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "the slow viewer's session did not appear");
        std::thread::sleep(Duration::from_millis(100));
    };
    let fast = load(&server, "10.212.0.1:8080", "2", "127.0.0.1");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = api_sessions(&server, "10.212.0.1:8080");
        if sessions.iter().filter(|s| s["state"] == "connected").count() >= 3 {
            break;
        }
        let states: Vec<&serde_json::Value> = sessions.iter().map(|s| &s["state"]).collect();
        assert!(std::time::Instant::now() < deadline, "the viewers did not all connect: {states:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let down = wait_for_session(&server, &slow_id, Duration::from_secs(15), "the slow viewer on the sub layer", |s| s["layer"]["layer"] == "sub");
    eprintln!("slow viewer stepped down: {down}");
    let others: Vec<serde_json::Value> = api_sessions(&server, "10.212.0.1:8080").into_iter().filter(|s| s["id"] != slow_id.as_str()).collect();
    assert_eq!(others.len(), 2, "{others:?}");
    assert!(others.iter().all(|s| s["layer"]["layer"] == "main"), "the others stay on main: {others:?}");

    // The slow link stays a while: the slow viewer may try main and step down again; the
    // others keep main.
    std::thread::sleep(Duration::from_secs(8));
    let during = api_sessions(&server, "10.212.0.1:8080");
    eprintln!("after 8 s on the slow link: {during:?}");
    assert!(during.iter().filter(|s| s["id"] != slow_id.as_str()).all(|s| s["layer"]["layer"] == "main"), "{during:?}");

    // The link recovers.
    server.exec("tc", &["qdisc", "del", "dev", "s0", "root"]).expect("tc del");
    viewer.exec("iptables", &["-F", "INPUT"]).expect("iptables -F");
    let up = wait_for_session(&server, &slow_id, Duration::from_secs(25), "the slow viewer back on main", |s| s["layer"]["layer"] == "main");
    eprintln!("slow viewer stepped back up: {up}");
    let switches = up["layer_switches"].as_u64().unwrap_or(0);
    assert!(switches <= 6, "a few tries of main while the link was slow, not a flap: {switches} switches");

    let finish = |child: std::process::Child| -> serde_json::Value {
        let output = child.wait_with_output().expect("lookout-load ends");
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).expect("JSON report")
    };
    let sessions = api_sessions(&server, "10.212.0.1:8080");
    let (slow, fast) = (finish(slow), finish(fast));
    lookout.stop();
    eprintln!("slow viewer: {slow}\nloopback viewers: {fast}");
    assert_eq!(sessions.len(), 3, "nobody was disconnected: {sessions:?}");
    assert!(sessions.iter().all(|s| s["state"] == "connected"), "{sessions:?}");
    assert_eq!((slow["joined"].as_u64(), fast["joined"].as_u64()), (Some(1), Some(2)));
    assert_eq!(fast["packets_lost"], 0, "the loopback viewers lost nothing: {fast}");
    assert!(fast["mbit_per_viewer"].as_f64().unwrap_or(0.0) > 1.5, "and got the main layer: {fast}");
}

/// A camera whose RTP over UDP never reaches Lookout (a firewall on the camera's side drops its
/// outgoing UDP) while its RTSP connection does: Lookout, configured for UDP, notices that no
/// video came within a few seconds of PLAY and plays the camera over TCP instead.
#[test]
fn a_camera_whose_udp_is_blocked_is_played_over_tcp() {
    use lookout_testkit::camera::Camera;
    let (server, camera_side) = server_and_viewer("ud", 213);
    camera_side.exec("iptables", &["-A", "OUTPUT", "-p", "udp", "-j", "DROP"]).expect("drop the camera's UDP");
    let _camera = Camera::start_in(&camera_side, "10.213.0.2", 8554, &["--port", "8554", "--width", "320", "--height", "180"]).expect("camera");
    let config = "listen = \"10.213.0.1:8080\"\n[paths.cam]\nsource = \"rtsp://10.213.0.2:8554/test\"\ntransport = \"udp\"\n[webrtc]\nlisten_ips = [\"10.213.0.1\"]\n";
    let _lookout = Lookout::start(&server, config);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut path = serde_json::Value::Null;
    while std::time::Instant::now() < deadline {
        path = api_paths(&server, "10.213.0.1:8080")[0].clone();
        if path["state"] == "live" && path["stats"]["frames"].as_u64().unwrap_or(0) > 30 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("camera with UDP blocked: {path}");
    assert_eq!(path["state"], "live", "played over TCP: {path}");
    assert!(path["stats"]["frames"].as_u64().unwrap_or(0) > 30, "{path}");
}

/// The status `namespace` gets for GET `url`, with an `Authorization` header when given (Debian's
/// Python as the client).
fn status_from(namespace: &Namespace, url: &str, authorization: Option<&str>) -> u16 {
    let script = "import sys, urllib.request, urllib.error\n\
                  headers = {'Authorization': sys.argv[2]} if len(sys.argv) > 2 else {}\n\
                  try: print(urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=headers), timeout=5).status)\n\
                  except urllib.error.HTTPError as e: print(e.code)";
    let mut args = vec!["-c", script, url];
    args.extend(authorization);
    let output = namespace.exec("python3", &args).expect("python3 in the namespace");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or_else(|_| panic!("a status: {output:?}"))
}

/// From a second address (another namespace): without [auth] anyone watches but only loopback
/// uses the API; with users in the file, each is held to its networks.
#[test]
fn the_api_stays_on_loopback_by_default_and_users_keep_to_their_networks() {
    let id = std::process::id() % 100_000;
    let server = Namespace::new(format!("lk-aus-{id}")).expect("server namespace");
    let client = Namespace::new(format!("lk-auc-{id}")).expect("client namespace");
    server.link(("s0", "10.214.0.1/24"), &client, ("c0", "10.214.0.2/24")).expect("link");
    let pattern = format!("[paths.demo]\nsource = \"testpattern\"\ntest_pattern = {SMALL_PATTERN}\n");
    let (remote, local) = ("http://10.214.0.1:8080", "http://127.0.0.1:8080");

    let mut open = Lookout::start(&server, &format!("listen = \"0.0.0.0:8080\"\n{pattern}"));
    assert_eq!(status_from(&client, &format!("{remote}/api/paths"), None), 200, "anyone may list what they may watch");
    assert_eq!(status_from(&client, &format!("{remote}/api/sessions"), None), 403, "the API beyond that is for loopback");
    assert_eq!(status_from(&server, &format!("{local}/api/sessions"), None), 200);
    open.stop();

    let hash = lookout::auth::hash_password("pw").expect("hash");
    let user = |name: &str, network: &str| format!("[[auth.users]]\nname = \"{name}\"\npassword = \"{hash}\"\nnetworks = [\"{network}\"]\npermissions = [{{ action = \"read\" }}, {{ action = \"api\" }}]\n");
    let config = format!("listen = \"0.0.0.0:8080\"\n{}{}{pattern}", user("local", "127.0.0.0/8"), user("remote", "10.214.0.0/24"));
    let _users = Lookout::start(&server, &config);
    let basic = |name: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:pw")))
    };
    assert_eq!(status_from(&client, &format!("{remote}/api/sessions"), Some(&basic("remote"))), 200);
    assert_eq!(status_from(&client, &format!("{remote}/api/sessions"), Some(&basic("local"))), 401, "local may not come from 10.214.0.2");
    assert_eq!(status_from(&server, &format!("{local}/api/sessions"), Some(&basic("local"))), 200);
    assert_eq!(status_from(&server, &format!("{local}/api/sessions"), Some(&basic("remote"))), 401, "remote may not come from loopback");
}
