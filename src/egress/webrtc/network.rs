//! The network side of WebRTC as configured: which sockets a session binds, which addresses
//! and ICE servers viewers get, and whether Lookout runs ICE-lite.

use super::announce::Announcer;
use super::endpoint::dtls_srtp::Identity;
use super::ice_servers;
use super::mux::{MuxRegistration, MuxRuntime, SharedMediaPort};
use super::ports::{PortLease, PortPool};
use crate::config::{MediaPorts, PortRange, WebRtcConfig};
use lookout_signaling::IceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use webrtc::runtime::Runtime;

pub struct Network {
    pub config: WebRtcConfig,
    ports: Ports,
    pub announcer: Arc<Announcer>,
    /// Lookout's DTLS certificate when it serves viewers from its own endpoint.
    pub own_endpoint: Option<Arc<Identity>>,
}

enum Ports {
    Shared(SharedMediaPort),
    Range(Arc<PortPool>),
}

/// Binds and drops UDP (and with `tcp` TCP) `port` on every address of `ips`: whether a
/// PeerConnection could bind it now.
fn is_free(ips: &[std::net::IpAddr], port: u16, tcp: bool) -> std::io::Result<()> {
    for ip in ips {
        let address = SocketAddr::new(*ip, port);
        std::net::UdpSocket::bind(address)?;
        if tcp {
            std::net::TcpListener::bind(address)?;
        }
    }
    Ok(())
}

/// Every port of this range is held by a session (or by another program).
#[derive(Debug)]
pub struct PortsExhausted(pub PortRange);

/// What one session binds, and what it holds while it lives.
pub struct Binding {
    pub udp_addrs: Vec<String>,
    /// Passive ICE-TCP listeners, on the same port as UDP; empty without ICE-TCP.
    pub tcp_addrs: Vec<String>,
    /// On the shared port, the runtime that routes the session's sockets through it.
    pub runtime: Option<Arc<dyn Runtime>>,
    pub hold: SocketHold,
}

/// Released when the session ends: its port of the range, or its place on the shared port.
pub enum SocketHold {
    /// A PeerConnection's port of the range, which it binds itself.
    Port(PortLease),
    SharedPort(MuxRegistration),
    /// A port of the range for Lookout's own endpoint: a media port of its own, the session its
    /// only one. Fields drop in order: the session leaves, the sockets close, the port returns.
    PortOfItsOwn { registration: MuxRegistration, media_port: SharedMediaPort, lease: PortLease },
}

impl SocketHold {
    /// The session's place on a media port Lookout reads, where it has one.
    pub fn registration(&self) -> Option<&MuxRegistration> {
        match self {
            SocketHold::Port(_) => None,
            SocketHold::SharedPort(registration) | SocketHold::PortOfItsOwn { registration, .. } => Some(registration),
        }
    }

    /// The connection now has the viewer's description: traffic held for it may pass.
    pub fn remote_description_applied(&self) {
        if let Some(registration) = self.registration() {
            registration.route.open();
        }
    }
}

impl Network {
    /// Binds the shared media port when one is configured. Must run in a Tokio runtime.
    pub fn start(config: WebRtcConfig) -> anyhow::Result<Self> {
        let ports = match config.media_ports {
            MediaPorts::Shared(port) => Ports::Shared(
                SharedMediaPort::bind(&config.listen_ips, port, config.ice_tcp)
                    .map_err(|e| anyhow::anyhow!("webrtc.udp_port: {e} (choose another port, or 0 to let the system choose)"))?,
            ),
            MediaPorts::Range(range) => Ports::Range(PortPool::new(range)),
        };
        let shared_port = match &ports {
            Ports::Shared(shared) => Some(shared.port()),
            Ports::Range(_) => None,
        };
        let announcer = Arc::new(Announcer::new(config.public_ips.clone(), config.hide_private_addresses, shared_port));
        let mut network = Self { config, ports, announcer, own_endpoint: None };
        if network.config.own_endpoint {
            network.own_endpoint = Some(Arc::new(Identity::generate().map_err(|e| anyhow::anyhow!("Lookout's own WebRTC endpoint: {e}"))?));
        }
        Ok(network)
    }

    /// Whether Lookout gathers through its ICE servers itself. It does with a port per viewer;
    /// a shared socket cannot hold one TURN allocation per viewer, so on the shared port
    /// Lookout announces its host (and configured public) addresses and leaves STUN and TURN
    /// to viewers.
    fn gathers_through_ice_servers(&self) -> bool {
        matches!(self.ports, Ports::Range(_)) && !self.config.ice_servers.is_empty()
    }

    /// ICE-lite (RFC 8445 §2.5), as SFUs run, unless Lookout gathers through ICE servers of
    /// its own. Lite fixes the order of events: the viewer nominates, and Lookout is
    /// connected, its DTLS endpoint started, when it answers the nominating check, before the
    /// viewer's ClientHello can arrive. As the controlling agent, Lookout could get that
    /// ClientHello before it saw its own check succeed; rtc drops it, and a viewer that
    /// retransmits after 1 s (webrtc-rs does) waited that long for its first frame.
    pub fn ice_lite(&self) -> bool {
        !self.gathers_through_ice_servers()
    }

    /// The configured ICE servers with credentials for `name`, a viewer.
    pub fn ice_servers_for(&self, name: &str) -> Vec<IceServer> {
        ice_servers::for_viewer(&self.config.ice_servers, name, SystemTime::now())
    }

    /// The ICE servers Lookout's own agent uses for session `id`.
    pub fn own_ice_servers(&self, id: &str) -> Vec<IceServer> {
        if self.gathers_through_ice_servers() {
            self.ice_servers_for(&format!("lookout-{id}"))
        } else {
            Vec::new()
        }
    }

    /// What a new session binds, given the ICE username fragment it will use. With a port per
    /// viewer, a port of the range on every listen IP (UDP, and TCP with ICE-TCP): bound here
    /// for the own endpoint, checked free for a PeerConnection, which binds it itself. On the
    /// shared port, a place on it; a PeerConnection gets label sockets on ports the system
    /// chooses, which its runtime swaps for the mux.
    pub fn bind(&self, ufrag: &str) -> Result<Binding, PortsExhausted> {
        let listen_ips = &self.config.listen_ips;
        let tcp = self.config.ice_tcp;
        let (port, runtime, hold) = match &self.ports {
            Ports::Range(pool) if self.own_endpoint.is_some() => {
                let (lease, media_port) = pool.lease(|port| SharedMediaPort::bind(listen_ips, port, tcp)).ok_or(PortsExhausted(pool.range()))?;
                let registration = media_port.register(ufrag.to_owned());
                (lease.port, None, SocketHold::PortOfItsOwn { registration, media_port, lease })
            }
            Ports::Range(pool) => {
                let (lease, ()) = pool.lease(|port| is_free(listen_ips, port, tcp)).ok_or(PortsExhausted(pool.range()))?;
                (lease.port, None, SocketHold::Port(lease))
            }
            Ports::Shared(shared) => {
                let registration = shared.register(ufrag.to_owned());
                let runtime: Arc<dyn Runtime> = Arc::new(MuxRuntime::new(registration.route.clone()));
                (0, Some(runtime), SocketHold::SharedPort(registration))
            }
        };
        let udp_addrs: Vec<String> = listen_ips.iter().map(|ip| SocketAddr::new(*ip, port).to_string()).collect();
        let tcp_addrs = if tcp { udp_addrs.clone() } else { Vec::new() };
        Ok(Binding { udp_addrs, tcp_addrs, runtime, hold })
    }

    /// The host candidates of a session of the own endpoint on `port`: each listen address, a
    /// wildcard standing for the machine's interfaces of its family.
    pub fn host_candidates(&self, port: u16) -> Vec<SocketAddr> {
        let interfaces = rtc::shared::ifaces::ifaces().unwrap_or_default();
        let mut candidates: Vec<SocketAddr> = Vec::new();
        for ip in &self.config.listen_ips {
            let ips: Vec<std::net::IpAddr> = match ip.is_unspecified() {
                false => vec![*ip],
                true => interfaces
                    .iter()
                    .filter_map(|interface| interface.addr.map(|addr| addr.ip()))
                    .filter(|found| found.is_ipv4() == ip.is_ipv4() && !found.is_loopback() && !found.is_unspecified())
                    .collect(),
            };
            for ip in ips {
                let candidate = SocketAddr::new(ip, port);
                if !candidates.contains(&candidate) {
                    candidates.push(candidate);
                }
            }
        }
        candidates
    }

    /// The effective settings, for the startup log.
    pub fn summary(&self) -> String {
        let list = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
        let c = &self.config;
        let ice = c.ice_servers.iter().map(|s| format!("{} ({})", s.urls.join(" "), s.credentials.as_ref().map_or("no credentials".to_owned(), |c| format!("{c:?}"))));
        let ports = match &self.ports {
            Ports::Shared(shared) => format!("one port shared by every viewer: {}", shared.describe()),
            Ports::Range(pool) => format!("a port per viewer from {} ({} viewers at most), on {}", pool.range(), pool.range().port_count(), list(c.listen_ips.iter().map(|ip| ip.to_string()).collect())),
        };
        let ice_tcp = match (&self.ports, c.ice_tcp) {
            (_, false) => "off",
            (Ports::Shared(_), true) => "passive, on the shared port",
            (Ports::Range(_), true) => "passive, on each viewer's UDP port number",
        };
        let ice_mode = if self.ice_lite() { "lite (viewers nominate; ICE servers are for viewers)" } else { "full (Lookout gathers through the ICE servers too)" };
        let endpoint = match self.own_endpoint {
            Some(_) => "Lookout's own (ICE, DTLS-SRTP and batched sends)",
            None => "a webrtc-rs PeerConnection per viewer (webrtc.own_endpoint = false)",
        };
        format!(
            "WebRTC network settings:\n  media ports: {ports}\n  ICE-TCP: {ice_tcp}\n  announced public addresses: {}{}\n  ICE servers: {}\n  ICE mode: {ice_mode}\n  endpoint: {endpoint}",
            list(c.public_ips.iter().map(|ip| ip.to_string()).collect()),
            if c.hide_private_addresses { " (only these are announced)" } else { "" },
            list(ice.collect()),
        )
    }
}
