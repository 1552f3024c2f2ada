//! Hands out UDP ports from the configured range, one per viewer session, and takes them back
//! when the session ends. The caller binds: a port another program holds is skipped.
//!
//! Ports are handed out in turn around the range rather than lowest first: a port just given
//! back may still be known elsewhere for a while (a TURN server keeps an allocation for its
//! 5-tuple until it expires, since a closed connection does not release it), and a new session
//! on it would be refused there.

use crate::config::PortRange;
use std::collections::BTreeSet;
use std::io;
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

    /// The first port of the range, in turn, that no session holds and that `bind` takes
    /// (another program may hold some), with what `bind` made of it; `None` when the range is
    /// exhausted.
    pub fn lease<T>(self: &Arc<Self>, mut bind: impl FnMut(u16) -> io::Result<T>) -> Option<(PortLease, T)> {
        let mut state = self.state.lock();
        let in_turn = (state.next..=self.range.last).chain(self.range.first..state.next);
        let (port, bound) = in_turn.filter(|port| !state.leased.contains(port)).find_map(|port| match bind(port) {
            Ok(bound) => Some((port, bound)),
            Err(error) => {
                tracing::debug!(port, %error, "port of the range not available");
                None
            }
        })?;
        state.leased.insert(port);
        state.next = if port == self.range.last { self.range.first } else { port + 1 };
        Some((PortLease { pool: self.clone(), port }, bound))
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.state.lock().leased.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn bind_loopback(port: u16) -> io::Result<UdpSocket> {
        UdpSocket::bind(("127.0.0.1", port))
    }

    #[test]
    fn leases_each_port_once_and_takes_them_back() {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        let (first, last) = if base < 65000 { (base, base + 2) } else { (base - 2, base) };
        let pool = PortPool::new(PortRange { first, last });
        // A port some other program holds is skipped.
        let held = UdpSocket::bind(("127.0.0.1", first + 1));
        let leases: Vec<(PortLease, UdpSocket)> = std::iter::from_fn(|| pool.lease(bind_loopback)).take(4).collect();
        let expected = if held.is_ok() { 2 } else { 3 };
        assert_eq!(leases.len(), expected, "the range is exhausted after its free ports");
        assert!(leases.iter().all(|(lease, socket)| (first..=last).contains(&lease.port) && socket.local_addr().is_ok_and(|a| a.port() == lease.port)));
        drop(leases);
        assert_eq!(pool.in_use(), 0);
        assert!(pool.lease(bind_loopback).is_some(), "ports come back when sessions end");
    }

    #[test]
    fn a_port_given_back_is_not_the_next_one_handed_out() {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        let first = base.min(65000);
        let pool = PortPool::new(PortRange { first, last: first + 2 });
        let (one, socket) = pool.lease(bind_loopback).expect("a port");
        let given_back = one.port;
        drop((one, socket));
        let (next, _socket) = pool.lease(bind_loopback).expect("another port");
        assert_ne!(next.port, given_back);
    }
}
