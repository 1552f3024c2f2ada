//! The network side of WebRTC as configured: which sockets a session binds, which addresses
//! and ICE servers viewers get, and whether Lookout gathers through ICE servers itself.

use crate::egress::webrtc::transport::announce::Announcer;
use crate::egress::webrtc::transport::dtls_srtp::Identity;
use crate::egress::webrtc::transport::ice_servers;
use crate::egress::webrtc::transport::mux::{MuxRegistration, PortUse, SharedMediaPort};
use crate::egress::webrtc::transport::ports::{PortLease, PortPool};
use crate::config::{MediaPorts, PortRange, WebRtcConfig};
use lookout_signaling::IceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub struct Network {
    pub config: WebRtcConfig,
    ports: Ports,
    pub announcer: Arc<Announcer>,
    /// Lookout's DTLS certificate, one for every viewer.
    pub identity: Arc<Identity>,
}

enum Ports {
    Shared(SharedMediaPort),
    Range(Arc<PortPool>),
}

/// Every port of this range is held by a session (or by another program).
#[derive(Debug)]
pub struct PortsExhausted(pub PortRange);

/// Released when the session ends: its port of the range, or its place on the shared port.
pub enum SocketHold {
    SharedPort(MuxRegistration),
    /// A port of the range: a media port of its own, the session its only one. Fields drop in order: the session leaves, the sockets close, the port returns.
    PortOfItsOwn { registration: MuxRegistration, media_port: SharedMediaPort, lease: PortLease },
}

impl SocketHold {
    /// The session's place on its media port.
    pub fn registration(&self) -> &MuxRegistration {
        match self {
            SocketHold::SharedPort(registration) | SocketHold::PortOfItsOwn { registration, .. } => registration,
        }
    }

    /// The connection now has the viewer's description: traffic held for it may pass.
    pub fn remote_description_applied(&self) {
        self.registration().route.open();
    }
}

impl Network {
    /// Binds the shared media port when one is configured. Must run in a Tokio runtime.
    pub fn start(config: WebRtcConfig) -> anyhow::Result<Self> {
        let ports = match config.media_ports {
            MediaPorts::Shared(port) => Ports::Shared(
                SharedMediaPort::bind(&config.listen_ips, port, config.ice_tcp, PortUse::EveryViewer)
                    .map_err(|e| anyhow::anyhow!("webrtc.udp_port: {e} (choose another port, or 0 to let the system choose)"))?,
            ),
            MediaPorts::Range(range) => Ports::Range(PortPool::new(range)),
        };
        let announcer = Arc::new(Announcer::new(config.public_ips.clone(), config.hide_private_addresses));
        let identity = Arc::new(Identity::generate().map_err(|e| anyhow::anyhow!("Lookout's DTLS certificate: {e}"))?);
        Ok(Self { config, ports, announcer, identity })
    }

    /// Whether Lookout gathers through its ICE servers itself. It does with a port per viewer;
    /// a shared socket cannot hold one TURN allocation per viewer, so on the shared port
    /// Lookout announces its host (and configured public) addresses and leaves STUN and TURN
    /// to viewers.
    fn gathers_through_ice_servers(&self) -> bool {
        matches!(self.ports, Ports::Range(_)) && !self.config.ice_servers.is_empty()
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

    /// What a new session binds, given the ICE username fragment it will use: with a port per
    /// viewer, a port of the range on every listen IP (UDP, and TCP with ICE-TCP), a media port
    /// of its own; on the shared port, a place on it.
    pub fn bind(&self, ufrag: &str) -> Result<SocketHold, PortsExhausted> {
        let listen_ips = &self.config.listen_ips;
        let tcp = self.config.ice_tcp;
        Ok(match &self.ports {
            Ports::Range(pool) => {
                let (lease, media_port) = pool.lease(|port| SharedMediaPort::bind(listen_ips, port, tcp, PortUse::OneViewer)).ok_or(PortsExhausted(pool.range()))?;
                let registration = media_port.register(ufrag.to_owned());
                SocketHold::PortOfItsOwn { registration, media_port, lease }
            }
            Ports::Shared(shared) => SocketHold::SharedPort(shared.register(ufrag.to_owned())),
        })
    }

    /// The host candidates of a session on `port`: each listen address, a
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

    /// Where viewers' media comes and goes, in words.
    pub fn describe_ports(&self) -> String {
        match &self.ports {
            Ports::Shared(shared) => format!("one port shared by every viewer: {}", shared.describe()),
            Ports::Range(pool) => {
                let ips: Vec<String> = self.config.listen_ips.iter().map(|ip| ip.to_string()).collect();
                format!("a port per viewer from {} ({} viewers at most), on {}", pool.range(), pool.range().port_count(), if ips.is_empty() { "none".to_owned() } else { ips.join(", ") })
            }
        }
    }

    /// The effective settings, for the startup log.
    pub fn summary(&self) -> String {
        let list = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
        let c = &self.config;
        let ice = c.ice_servers.iter().map(|s| format!("{} ({})", s.urls.join(" "), s.credentials.as_ref().map_or("no credentials".to_owned(), |c| format!("{c:?}"))));
        let ports = self.describe_ports();
        let ice_tcp = match (&self.ports, c.ice_tcp) {
            (_, false) => "off",
            (Ports::Shared(_), true) => "passive, on the shared port",
            (Ports::Range(_), true) => "passive, on each viewer's UDP port number",
        };
        let ice_mode = if !self.gathers_through_ice_servers() { "lite (viewers nominate; ICE servers are for viewers)" } else { "full (Lookout gathers through the ICE servers too)" };
        format!(
            "WebRTC network settings:\n  media ports: {ports}\n  ICE-TCP: {ice_tcp}\n  announced public addresses: {}{}\n  ICE servers: {}\n  ICE mode: {ice_mode}",
            list(c.public_ips.iter().map(|ip| ip.to_string()).collect()),
            if c.hide_private_addresses { " (only these are announced)" } else { "" },
            list(ice.collect()),
        )
    }
}
