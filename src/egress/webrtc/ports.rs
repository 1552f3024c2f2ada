//! Hands out UDP ports from the configured range, one per viewer session, and takes them back
//! when the session ends. webrtc 0.21 binds its own sockets and has no range setting, so
//! Lookout picks a free port and gives the PeerConnection `IP:port` to bind.

use crate::config::PortRange;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

pub struct PortPool {
    range: PortRange,
    leased: Mutex<BTreeSet<u16>>,
}

/// A port held for one session; returned to the pool when dropped.
pub struct PortLease {
    pool: Arc<PortPool>,
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.lock().remove(&self.port);
    }
}

impl PortPool {
    pub fn new(range: PortRange) -> Arc<Self> {
        Arc::new(Self { range, leased: Mutex::new(BTreeSet::new()) })
    }

    pub fn range(&self) -> PortRange {
        self.range
    }

    /// A port of the range that no session holds and that every address in `ips` can bind
    /// now, for UDP and, with `tcp_too`, for TCP (another program may use some), or `None`
    /// when the range is exhausted.
    pub fn lease(self: &Arc<Self>, ips: &[IpAddr], tcp_too: bool) -> Option<PortLease> {
        let mut leased = self.lock();
        let free = |port: u16| {
            ips.iter().all(|ip| {
                let address = SocketAddr::new(*ip, port);
                UdpSocket::bind(address).is_ok() && (!tcp_too || TcpListener::bind(address).is_ok())
            })
        };
        let port = (self.range.first..=self.range.last).filter(|port| !leased.contains(port)).find(|port| free(*port))?;
        leased.insert(port);
        Some(PortLease { pool: self.clone(), port })
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u16>> {
        self.leased.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_each_port_once_and_takes_them_back() {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        let (first, last) = if base < 65000 { (base, base + 2) } else { (base - 2, base) };
        let pool = PortPool::new(PortRange { first, last });
        let loopback = [IpAddr::from([127, 0, 0, 1])];
        // A port some other program holds is skipped.
        let held = UdpSocket::bind(("127.0.0.1", first + 1));
        let leases: Vec<PortLease> = std::iter::from_fn(|| pool.lease(&loopback, true)).take(4).collect();
        let expected = if held.is_ok() { 2 } else { 3 };
        assert_eq!(leases.len(), expected, "the range is exhausted after its free ports");
        assert!(leases.iter().all(|l| (first..=last).contains(&l.port)));
        drop(leases);
        assert_eq!(pool.in_use(), 0);
        assert!(pool.lease(&loopback, false).is_some(), "ports come back when sessions end");
    }
}
