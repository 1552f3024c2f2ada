//! Hands out UDP ports from the configured range, one per viewer session, and takes them back
//! when the session ends. webrtc 0.21 binds its own sockets and has no range setting, so
//! Lookout picks a free port and gives the PeerConnection `IP:port` to bind.
//!
//! Ports are handed out in turn around the range rather than lowest first: a port just given
//! back may still be known elsewhere for a while (a TURN server keeps an allocation for its
//! 5-tuple until it expires, since a closed connection does not release it), and a new session
//! on it would be refused there.

use crate::config::PortRange;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use parking_lot::Mutex;

pub struct PortPool {
    range: PortRange,
    state: Mutex<Leases>,
}

struct Leases {
    leased: BTreeSet<u16>,
    /// Where the search for the next free port starts.
    next: u16,
}

/// A port held for one session; returned to the pool when dropped.
pub struct PortLease {
    pool: Arc<PortPool>,
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.state.lock().leased.remove(&self.port);
    }
}

impl PortPool {
    pub fn new(range: PortRange) -> Arc<Self> {
        Arc::new(Self { range, state: Mutex::new(Leases { leased: BTreeSet::new(), next: range.first }) })
    }

    pub fn range(&self) -> PortRange {
        self.range
    }

    /// A port of the range that no session holds and that every address in `ips` can bind
    /// now, for UDP and, with `tcp_too`, for TCP (another program may use some), or `None`
    /// when the range is exhausted.
    pub fn lease(self: &Arc<Self>, ips: &[IpAddr], tcp_too: bool) -> Option<PortLease> {
        let mut state = self.state.lock();
        let free = |port: u16| {
            ips.iter().all(|ip| {
                let address = SocketAddr::new(*ip, port);
                UdpSocket::bind(address).is_ok() && (!tcp_too || TcpListener::bind(address).is_ok())
            })
        };
        let in_turn = (state.next..=self.range.last).chain(self.range.first..state.next);
        let port = in_turn.filter(|port| !state.leased.contains(port)).find(|port| free(*port))?;
        state.leased.insert(port);
        state.next = if port == self.range.last { self.range.first } else { port + 1 };
        Some(PortLease { pool: self.clone(), port })
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.state.lock().leased.len()
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

    #[test]
    fn a_port_given_back_is_not_the_next_one_handed_out() {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        let first = base.min(65000);
        let pool = PortPool::new(PortRange { first, last: first + 2 });
        let loopback = [IpAddr::from([127, 0, 0, 1])];
        let one = pool.lease(&loopback, false).expect("a port");
        let given_back = one.port;
        drop(one);
        let next = pool.lease(&loopback, false).expect("another port");
        assert_ne!(next.port, given_back);
    }
}
