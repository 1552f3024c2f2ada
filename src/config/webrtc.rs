//! The `[webrtc]` section: where media sockets bind, which addresses viewers are told, and the
//! STUN/TURN servers handed to viewers and used by Lookout itself.

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct WebRtcConfig {
    /// Local addresses media sockets bind. A wildcard (`0.0.0.0`, `::`) stands for every
    /// non-loopback interface of that family, so the default pairs it with loopback.
    pub listen_ips: Vec<IpAddr>,
    /// The ports viewers' media uses.
    pub media_ports: MediaPorts,
    /// Addresses viewers are told to reach Lookout at (1:1 NAT, as cloud hosts have).
    pub public_ips: Vec<IpAddr>,
    /// Announce only `public_ips`, never the machine's own addresses.
    pub hide_private_addresses: bool,
    /// Also accept ICE over TCP (RFC 6544, passive), for viewers whose networks block UDP.
    pub ice_tcp: bool,
    pub ice_servers: Vec<IceServerConfig>,
    /// Sent to viewers that take the playout-delay extension as the most their jitter buffer
    /// may hold a frame (the least being zero); `None`: not sent, browsers choose.
    pub max_playout_delay: Option<Duration>,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            listen_ips: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([0, 0, 0, 0])],
            media_ports: MediaPorts::Shared(DEFAULT_UDP_PORT),
            public_ips: Vec::new(),
            hide_private_addresses: false,
            ice_tcp: false,
            ice_servers: Vec::new(),
            max_playout_delay: None,
        }
    }
}

/// The shared media port when none is configured.
pub const DEFAULT_UDP_PORT: u16 = 8189;

/// How viewers' media uses ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPorts {
    /// Every viewer on one UDP port (and the same TCP port for ICE-TCP); 0 lets the system
    /// choose one at start.
    Shared(u16),
    /// A port of its own for each viewer, from this range.
    Range(PortRange),
}

/// An inclusive range of UDP ports, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// How many ports: never zero, as `first <= last` is checked when the range is read.
    pub fn port_count(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IceServerConfig {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs, as browsers take them.
    pub urls: Vec<String>,
    pub credentials: Option<TurnCredentials>,
}

#[derive(Clone, PartialEq)]
pub enum TurnCredentials {
    Static { username: String, credential: String },
    /// Time-limited credentials derived from a secret shared with the TURN server (the TURN
    /// REST API scheme, coturn's `use-auth-secret`), made afresh for each viewer.
    SharedSecret { secret: String, ttl: Duration },
}

impl std::fmt::Debug for TurnCredentials {
    // Keep secrets out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static { username, .. } => write!(f, "static credentials for {username:?}"),
            Self::SharedSecret { ttl, .. } => write!(f, "shared-secret credentials valid {} s", ttl.as_secs()),
        }
    }
}

// ── The file's shape ────────────────────────────────────────────────────────────────────────

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWebRtc {
    listen_ips: Option<Vec<String>>,
    udp_port: Option<u16>,
    udp_ports: Option<String>,
    #[serde(default)]
    public_ips: Vec<String>,
    #[serde(default)]
    hide_private_addresses: bool,
    #[serde(default)]
    ice_tcp: bool,
    #[serde(default)]
    ice_servers: Vec<FileIceServer>,
    max_playout_delay_ms: Option<u64>,
    /// Gone: Lookout's own endpoint serves every viewer. Read only to say so.
    own_endpoint: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIceServer {
    urls: Vec<String>,
    username: Option<String>,
    credential: Option<String>,
    secret: Option<String>,
    ttl_secs: Option<u64>,
}

/// The playout-delay extension's largest value: 4095 steps of 10 ms.
const MAX_PLAYOUT_DELAY_MS: u64 = 40_950;

const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

pub(super) fn webrtc_config(file: FileWebRtc) -> Result<WebRtcConfig, ConfigError> {
    let default = WebRtcConfig::default();
    let listen_ips = match file.listen_ips {
        None => default.listen_ips,
        Some(ips) if ips.is_empty() => return Err(invalid("webrtc.listen_ips", "needs at least one address")),
        Some(ips) => ips.iter().map(|ip| parse_ip("webrtc.listen_ips", ip)).collect::<Result<_, _>>()?,
    };
    let media_ports = match (file.udp_port, file.udp_ports.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid("webrtc.udp_ports", "set either webrtc.udp_port (one port shared by every viewer) or webrtc.udp_ports (a port per viewer), not both"))
        }
        (Some(port), None) => MediaPorts::Shared(port),
        (None, Some(range)) => MediaPorts::Range(parse_port_range(range)?),
        (None, None) => default.media_ports,
    };
    if file.own_endpoint.is_some() {
        return Err(invalid("webrtc.own_endpoint", "no longer a setting: Lookout's own endpoint serves every viewer; remove the line"));
    }
    let public_ips: Vec<IpAddr> = file.public_ips.iter().map(|ip| parse_ip("webrtc.public_ips", ip)).collect::<Result<_, _>>()?;
    if let Some(ip) = public_ips.iter().find(|ip| ip.is_unspecified()) {
        return Err(invalid("webrtc.public_ips", format!("{ip} is not an address a viewer can reach")));
    }
    if file.hide_private_addresses && public_ips.is_empty() {
        return Err(invalid("webrtc.hide_private_addresses", "needs webrtc.public_ips: otherwise viewers would get no address at all"));
    }
    let max_playout_delay = match file.max_playout_delay_ms {
        Some(ms) if ms > MAX_PLAYOUT_DELAY_MS => {
            return Err(invalid("webrtc.max_playout_delay_ms", format!("{ms} is more than the extension carries ({MAX_PLAYOUT_DELAY_MS} ms)")))
        }
        ms => ms.map(Duration::from_millis),
    };
    let ice_servers = file
        .ice_servers
        .into_iter()
        .enumerate()
        .map(|(i, server)| ice_server(&format!("webrtc.ice_servers[{i}]"), server))
        .collect::<Result<_, _>>()?;
    Ok(WebRtcConfig {
        listen_ips,
        media_ports,
        public_ips,
        hide_private_addresses: file.hide_private_addresses,
        ice_tcp: file.ice_tcp,
        ice_servers,
        max_playout_delay,
    })
}

fn parse_ip(field: &str, text: &str) -> Result<IpAddr, ConfigError> {
    text.parse().map_err(|_| invalid(field, format!("{text:?} is not an IPv4 or IPv6 address")))
}

fn parse_port_range(text: &str) -> Result<PortRange, ConfigError> {
    let field = "webrtc.udp_ports";
    let problem = || invalid(field, format!("{text:?} is not a port range such as \"40000-40999\" (or one port, \"40000\")"));
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let first: u16 = first.trim().parse().map_err(|_| problem())?;
    let last: u16 = last.trim().parse().map_err(|_| problem())?;
    if first == 0 || first > last {
        return Err(invalid(field, format!("{text:?}: the first port must be from 1 to the last")));
    }
    Ok(PortRange { first, last })
}

fn ice_server(field: &str, server: FileIceServer) -> Result<IceServerConfig, ConfigError> {
    if server.urls.is_empty() {
        return Err(invalid(format!("{field}.urls"), "needs at least one URL"));
    }
    let mut turn = false;
    for url in &server.urls {
        turn |= validate_ice_url(&format!("{field}.urls"), url)?;
    }
    let credentials = match (server.username, server.credential, server.secret) {
        (None, None, None) => None,
        (Some(username), Some(credential), None) => Some(TurnCredentials::Static { username, credential }),
        (None, None, Some(secret)) if !secret.is_empty() => {
            let ttl = Duration::from_secs(server.ttl_secs.unwrap_or(DEFAULT_TTL.as_secs()));
            if !(60..=7 * 24 * 3600).contains(&ttl.as_secs()) {
                return Err(invalid(format!("{field}.ttl_secs"), "must be from 60 s to 7 days"));
            }
            Some(TurnCredentials::SharedSecret { secret, ttl })
        }
        _ => return Err(invalid(field, "give either username and credential, or secret (TURN REST API), not a mix")),
    };
    if server.ttl_secs.is_some() && !matches!(credentials, Some(TurnCredentials::SharedSecret { .. })) {
        return Err(invalid(format!("{field}.ttl_secs"), "applies only with secret"));
    }
    match (turn, &credentials) {
        (true, None) => Err(invalid(field, "a TURN server needs username and credential, or secret")),
        (false, Some(_)) => Err(invalid(field, "credentials apply to turn: and turns: URLs only")),
        _ => Ok(IceServerConfig { urls: server.urls, credentials }),
    }
}

/// Checks one ICE server URL (RFC 7064, RFC 7065); true for TURN.
fn validate_ice_url(field: &str, url: &str) -> Result<bool, ConfigError> {
    let bad = |why: &str| invalid(field, format!("{url:?} {why}; expected for example stun:stun.example.org:3478 or turn:turn.example.org:3478?transport=udp"));
    let (scheme, rest) = url.split_once(':').ok_or_else(|| bad("has no scheme"))?;
    let turn = match scheme {
        "stun" | "stuns" => false,
        "turn" | "turns" => true,
        _ => return Err(bad("is not a stun:, stuns:, turn: or turns: URL")),
    };
    let (host_port, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() {
        if !turn {
            return Err(bad("has a query, which only TURN URLs take"));
        }
        if !matches!(query, "transport=udp" | "transport=tcp") {
            return Err(bad("has a query other than transport=udp or transport=tcp"));
        }
    }
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("has an unclosed IPv6 bracket"))?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(bad("has no valid host"));
    }
    if let Some(port) = port {
        port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("has an invalid port"))?;
    }
    Ok(turn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebRtcConfig, ConfigError> {
        let file: FileWebRtc = toml::from_str(text).expect("TOML");
        webrtc_config(file)
    }

    fn field_of(result: Result<WebRtcConfig, ConfigError>) -> String {
        match result {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_serve_loopback_and_the_lan() {
        let config = parse("").expect("valid");
        assert_eq!(config, WebRtcConfig::default());
        assert!(config.listen_ips.iter().any(IpAddr::is_loopback) && config.listen_ips.iter().any(IpAddr::is_unspecified));
    }

    #[test]
    fn full_section_parses() {
        let config = parse(
            r#"
            listen_ips = ["0.0.0.0", "::"]
            udp_ports = "40000-40999"
            public_ips = ["203.0.113.7", "2001:db8::7"]
            hide_private_addresses = true
            ice_tcp = true
            max_playout_delay_ms = 0
            [[ice_servers]]
            urls = ["stun:stun.example.org:3478"]
            [[ice_servers]]
            urls = ["turn:turn.example.org:3478?transport=udp", "turns:[2001:db8::1]:5349"]
            username = "u"
            credential = "p"
            [[ice_servers]]
            urls = ["turn:127.0.0.1:3478"]
            secret = "s3cret"
            ttl_secs = 3600
            "#,
        )
        .expect("valid");
        assert_eq!(config.media_ports, MediaPorts::Range(PortRange { first: 40000, last: 40999 }));
        assert_eq!(parse("udp_port = 50000").expect("valid").media_ports, MediaPorts::Shared(50000));
        assert_eq!(PortRange { first: 40000, last: 40999 }.port_count(), 1000);
        assert_eq!(config.public_ips.len(), 2);
        assert!(config.ice_tcp);
        assert_eq!(config.max_playout_delay, Some(Duration::ZERO));
        assert_eq!(parse("").expect("valid").max_playout_delay, None, "not sent unless asked for");
        assert_eq!(config.ice_servers.len(), 3);
        assert_eq!(config.ice_servers[2].credentials, Some(TurnCredentials::SharedSecret { secret: "s3cret".into(), ttl: Duration::from_secs(3600) }));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (r#"listen_ips = ["eth0"]"#, "webrtc.listen_ips"),
            (r#"listen_ips = []"#, "webrtc.listen_ips"),
            (r#"udp_ports = "40000-30000""#, "webrtc.udp_ports"),
            ("max_playout_delay_ms = 40960", "webrtc.max_playout_delay_ms"),
            (r#"udp_ports = "0-10""#, "webrtc.udp_ports"),
            (r#"udp_ports = "lots""#, "webrtc.udp_ports"),
            ("udp_port = 8189\nudp_ports = \"40000-40999\"", "webrtc.udp_ports"),
            (r#"public_ips = ["0.0.0.0"]"#, "webrtc.public_ips"),
            ("hide_private_addresses = true", "webrtc.hide_private_addresses"),
            ("[[ice_servers]]\nurls = [\"http://x\"]", "webrtc.ice_servers[0].urls"),
            ("[[ice_servers]]\nurls = [\"stun:\"]", "webrtc.ice_servers[0].urls"),
            ("[[ice_servers]]\nurls = [\"stun:x:99999\"]", "webrtc.ice_servers[0].urls"),
            ("[[ice_servers]]\nurls = [\"turn:x?transport=sctp\"]\nsecret = \"s\"", "webrtc.ice_servers[0].urls"),
            ("[[ice_servers]]\nurls = [\"turn:x\"]", "webrtc.ice_servers[0]"),
            ("[[ice_servers]]\nurls = [\"stun:x\"]\nusername = \"u\"\ncredential = \"c\"", "webrtc.ice_servers[0]"),
            ("[[ice_servers]]\nurls = [\"turn:x\"]\nusername = \"u\"\nsecret = \"s\"", "webrtc.ice_servers[0]"),
            ("[[ice_servers]]\nurls = [\"turn:x\"]\nsecret = \"s\"\nttl_secs = 5", "webrtc.ice_servers[0].ttl_secs"),
            ("[[ice_servers]]\nurls = []", "webrtc.ice_servers[0].urls"),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(parse(text)), field, "for {text}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let credentials = TurnCredentials::Static { username: "u".into(), credential: "hunter2".into() };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
