//! Where a viewer is reached: its address, directly from Lookout's socket or through one of
//! Lookout's TURN relays.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcePath {
    /// The viewer's address (as the relay sees it, when one is in between).
    pub remote: SocketAddr,
    /// Lookout's relayed address the traffic goes through, if any.
    pub via_relay: Option<SocketAddr>,
}

impl IcePath {
    pub fn direct(remote: SocketAddr) -> Self {
        Self { remote, via_relay: None }
    }
}

impl std::fmt::Display for IcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.via_relay {
            Some(relay) => write!(f, "{} through the relay {relay}", self.remote),
            None => write!(f, "{}", self.remote),
        }
    }
}
