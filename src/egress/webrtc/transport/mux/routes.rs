//! Which session a datagram arriving on the shared port belongs to.
//!
//! A viewer's first datagrams are ICE connectivity checks, addressed by Lookout's ICE username
//! fragment, which is unique per session; each check also teaches the table the address it came
//! from. DTLS, SRTP and SRTCP carry no such name, so they are routed by that address.

use super::stun::binding_request_ufrag;
use std::collections::HashMap;
use std::net::SocketAddr;

/// More addresses than any viewer's candidates give (host, reflexive, relay, per family);
/// bounds what checks with a leaked ufrag from made-up addresses can add.
const MAX_REMOTES_PER_SESSION: usize = 32;

pub struct Routes<T> {
    by_ufrag: HashMap<String, Entry<T>>,
    by_remote: HashMap<SocketAddr, String>,
}

struct Entry<T> {
    session: T,
    remotes: usize,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Self { by_ufrag: HashMap::new(), by_remote: HashMap::new() }
    }
}

impl<T> Routes<T> {
    pub fn insert(&mut self, ufrag: String, session: T) {
        self.by_ufrag.insert(ufrag, Entry { session, remotes: 0 });
    }

    /// Forgets a session and every address that led to it.
    pub fn remove(&mut self, ufrag: &str) {
        if self.by_ufrag.remove(ufrag).is_some() {
            self.by_remote.retain(|_, owner| owner != ufrag);
        }
    }

    /// The session `datagram` from `from` belongs to, if any.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<&T> {
        let Some(ufrag) = binding_request_ufrag(datagram) else {
            let owner = self.by_remote.get(&from)?;
            return self.by_ufrag.get(owner).map(|entry| &entry.session);
        };
        if self.by_remote.get(&from).is_none_or(|owner| owner != ufrag) && self.by_ufrag.contains_key(ufrag) {
            self.learn(from, ufrag.to_owned());
        }
        self.by_ufrag.get(ufrag).map(|entry| &entry.session)
    }

    /// The session of `ufrag`, for traffic that names it without being a datagram (ICE-TCP).
    pub fn session(&self, ufrag: &str) -> Option<&T> {
        self.by_ufrag.get(ufrag).map(|entry| &entry.session)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    /// Routes what comes from `from` to the session of `ufrag` from now on.
    pub fn learn(&mut self, from: SocketAddr, ufrag: String) {
        let Some(entry) = self.by_ufrag.get_mut(&ufrag) else { return };
        if entry.remotes >= MAX_REMOTES_PER_SESSION {
            return;
        }
        entry.remotes += 1;
        // An address moves to the session that checked from it last (a port reused by a new
        // connection of the same viewer).
        if let Some(previous) = self.by_remote.insert(from, ufrag) {
            if let Some(old) = self.by_ufrag.get_mut(&previous) {
                old.remotes = old.remotes.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::stun::binding_request;
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    const RTP: &[u8] = &[0x80, 0x66, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn checks_route_by_ufrag_then_media_by_address() {
        let mut routes = Routes::default();
        routes.insert("aaaa".to_owned(), 'a');
        routes.insert("bbbb".to_owned(), 'b');
        assert_eq!(routes.route(addr(1), RTP), None, "media before any check is unroutable");
        assert_eq!(routes.route(addr(1), &binding_request("aaaa:v1")), Some(&'a'));
        assert_eq!(routes.route(addr(2), &binding_request("bbbb:v2")), Some(&'b'));
        assert_eq!(routes.route(addr(1), RTP), Some(&'a'));
        assert_eq!(routes.route(addr(2), RTP), Some(&'b'));
        assert_eq!(routes.route(addr(3), &binding_request("cccc:v3")), None, "unknown ufrag");
        assert_eq!(routes.route(addr(3), RTP), None, "and its address was not learnt");
    }

    #[test]
    fn removing_a_session_forgets_its_addresses_only() {
        let mut routes = Routes::default();
        routes.insert("aaaa".to_owned(), 'a');
        routes.insert("bbbb".to_owned(), 'b');
        routes.route(addr(1), &binding_request("aaaa:v"));
        routes.route(addr(2), &binding_request("aaaa:v"));
        routes.route(addr(3), &binding_request("bbbb:v"));
        routes.remove("aaaa");
        assert_eq!(routes.len(), 1);
        assert_eq!(routes.route(addr(1), RTP), None);
        assert_eq!(routes.route(addr(2), RTP), None);
        assert_eq!(routes.route(addr(3), RTP), Some(&'b'));
    }

    #[test]
    fn an_address_follows_the_latest_check_and_the_table_is_bounded() {
        let mut routes = Routes::default();
        routes.insert("aaaa".to_owned(), 'a');
        routes.insert("bbbb".to_owned(), 'b');
        routes.route(addr(1), &binding_request("aaaa:v"));
        routes.route(addr(1), &binding_request("bbbb:v"));
        assert_eq!(routes.route(addr(1), RTP), Some(&'b'));
        for port in 100..200 {
            routes.route(addr(port), &binding_request("aaaa:v"));
        }
        let learnt = (100..200).filter(|port| routes.route(addr(*port), RTP).is_some()).count();
        assert_eq!(learnt, MAX_REMOTES_PER_SESSION);
    }
}
