//! What one viewer's connection sees as its socket: datagrams the media port routed to it, and
//! sends that leave through the shared socket (or, for a viewer on ICE-TCP, its connection).

use super::datagram::Datagram;
use bytes::BytesMut;
use super::shared_socket::SharedSocket;
use super::tcp_peers::TcpPeers;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use parking_lot::Mutex;
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct SessionSocket {
    label: SocketAddr,
    inbox: Mutex<mpsc::Receiver<Datagram>>,
    shared: Arc<SharedSocket>,
    /// Set when the shared socket is a wildcard: replies leave from the address the
    /// viewer was told, whatever the routing table would pick.
    source_ip: Option<IpAddr>,
    /// On the own endpoint, the viewer addresses reached over ICE-TCP.
    tcp_peers: Option<Arc<TcpPeers>>,
}

impl SessionSocket {
    pub fn new(label: SocketAddr, inbox: mpsc::Receiver<Datagram>, shared: Arc<SharedSocket>) -> Self {
        // A wildcard label (the own endpoint on a wildcard socket) names no address to reply
        // from: the kernel's route to the viewer picks it.
        let source_ip = (shared.is_wildcard() && !label.ip().is_unspecified()).then_some(label.ip());
        Self { label, inbox: Mutex::new(inbox), shared, source_ip, tcp_peers: None }
    }

    /// Sends to the viewer addresses of `tcp_peers` over their connections.
    pub fn with_tcp_peers(self, tcp_peers: Arc<TcpPeers>) -> Self {
        Self { tcp_peers: Some(tcp_peers), ..self }
    }
}

impl SessionSocket {
    /// The next datagram routed to the session; `None` once it left the shared port.
    pub async fn recv(&self) -> Option<Datagram> {
        // Only the session's own driver receives, so the lock is never contended.
        std::future::poll_fn(|cx| self.inbox.lock().poll_recv(cx)).await
    }

    /// Queues datagrams on the connection of a viewer on ICE-TCP, else on the shared socket's
    /// batched sends, all at once.
    pub fn send_all(&self, datagrams: impl IntoIterator<Item = (SocketAddr, BytesMut)>) {
        let over_udp = datagrams.into_iter().filter(|(to, contents)| !self.tcp_peers.as_ref().is_some_and(|peers| peers.send(*to, contents)));
        self.shared.sends.push_all(over_udp.map(|(to, contents)| (to, self.source_ip, contents)));
    }

    /// Writes one datagram per item straight into the shared socket's next batch: `write`
    /// appends it to the buffer it is given and says where it goes (`None`: nowhere). One for
    /// a viewer on ICE-TCP leaves over its connection instead.
    pub fn write_each<T>(&self, items: impl IntoIterator<Item = T>, mut write: impl FnMut(T, &mut Vec<u8>) -> Option<SocketAddr>) {
        let mut writer = self.shared.sends.writer();
        for item in items {
            let queued = writer.write(self.source_ip, |buffer| write(item, buffer));
            if let (true, Some(peers)) = (queued, self.tcp_peers.as_ref()) {
                writer.divert_last(|to, contents| peers.send(to, contents));
            }
        }
    }

    /// The address the viewer reaches this session at (for DTLS's bookkeeping).
    pub fn label(&self) -> SocketAddr {
        self.label
    }
}
