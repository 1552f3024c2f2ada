//! The network side of WebRTC as configured: which sockets a session binds, which addresses
//! and ICE servers viewers get, and whether Lookout runs ICE-lite.

use super::announce::Announcer;
use super::ice_servers;
use super::ports::{PortLease, PortPool};
use crate::config::{PortRange, WebRtcConfig};
use lookout_signaling::IceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub struct Network {
    pub config: WebRtcConfig,
    ports: Option<Arc<PortPool>>,
    pub announcer: Arc<Announcer>,
}

/// Every port of this range is held by a session (or by another program).
#[derive(Debug)]
pub struct PortsExhausted(pub PortRange);

/// What one session binds.
pub struct Binding {
    pub udp_addrs: Vec<String>,
    /// Passive ICE-TCP listeners, on the same port as UDP; empty without ICE-TCP.
    pub tcp_addrs: Vec<String>,
    pub lease: Option<PortLease>,
}

impl Network {
    pub fn new(config: WebRtcConfig) -> Self {
        let ports = config.udp_ports.map(PortPool::new);
        let announcer = Arc::new(Announcer::new(config.public_ips.clone(), config.hide_private_addresses));
        Self { config, ports, announcer }
    }

    /// ICE-lite (RFC 8445 §2.5), as SFUs run, unless Lookout has STUN/TURN servers of its own
    /// to gather through. Lite fixes the order of events: the viewer nominates, and Lookout is
    /// connected, its DTLS endpoint started, when it answers the nominating check, before the
    /// viewer's ClientHello can arrive. As the controlling agent, Lookout could get that
    /// ClientHello before it saw its own check succeed; rtc drops it, and a viewer that
    /// retransmits after 1 s (webrtc-rs does) waited that long for its first frame.
    pub fn ice_lite(&self) -> bool {
        self.config.ice_servers.is_empty()
    }

    /// The configured ICE servers with credentials for `name` (a viewer, or Lookout itself).
    pub fn ice_servers_for(&self, name: &str) -> Vec<IceServer> {
        ice_servers::for_viewer(&self.config.ice_servers, name, SystemTime::now())
    }

    /// The addresses a new session binds: every listen IP on one port of the range (UDP, and
    /// TCP with ICE-TCP), or on ports the system chooses when no range is configured.
    pub fn bind(&self) -> Result<Binding, PortsExhausted> {
        let lease = match &self.ports {
            Some(pool) => Some(pool.lease(&self.config.listen_ips, self.config.ice_tcp).ok_or(PortsExhausted(pool.range()))?),
            None => None,
        };
        let port = lease.as_ref().map_or(0, |l| l.port);
        let udp_addrs: Vec<String> = self.config.listen_ips.iter().map(|ip| SocketAddr::new(*ip, port).to_string()).collect();
        let tcp_addrs = if self.config.ice_tcp { udp_addrs.clone() } else { Vec::new() };
        Ok(Binding { udp_addrs, tcp_addrs, lease })
    }

    /// The effective settings, for the startup log.
    pub fn summary(&self) -> String {
        let list = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
        let c = &self.config;
        let ice = c.ice_servers.iter().map(|s| format!("{} ({})", s.urls.join(" "), s.credentials.as_ref().map_or("no credentials".to_owned(), |c| format!("{c:?}"))));
        format!(
            "WebRTC network settings:\n  media sockets bind: {}\n  UDP ports: {}\n  ICE-TCP: {}\n  announced public addresses: {}{}\n  ICE servers: {}\n  ICE mode: {}",
            list(c.listen_ips.iter().map(|ip| ip.to_string()).collect()),
            c.udp_ports.map_or("any free port (one socket per viewer)".to_owned(), |r| format!("{r} ({} viewers at most)", r.len())),
            if c.ice_tcp { "passive, on each session's UDP port number" } else { "off" },
            list(c.public_ips.iter().map(|ip| ip.to_string()).collect()),
            if c.hide_private_addresses { " (only these are announced)" } else { "" },
            list(ice.collect()),
            if self.ice_lite() { "lite (viewers nominate)" } else { "full (gathers through the ICE servers)" },
        )
    }
}
