//! What one PeerConnection sees as its UDP socket when every session shares the media port:
//! datagrams the mux routed to it, and sends that leave through the shared socket.
//!
//! The PeerConnection binds a socket of its own first (webrtc 0.21 always does) and hands it
//! to the runtime to wrap. That socket is closed at once; its address stays as the label the
//! connection's ICE agent knows its host candidate by, and the announced candidate carries the
//! shared port instead (see `announce`).

use super::shared_socket::SharedSocket;
use super::tcp_peers::TcpPeers;
use bytes::Bytes;
use quinn_udp::{RecvMeta, Transmit};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use parking_lot::Mutex;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use webrtc::runtime::AsyncUdpSocket;

/// One datagram routed to a session.
#[derive(Debug)]
pub struct Datagram {
    pub from: SocketAddr,
    /// The local address it was sent to (on a wildcard socket, which of the machine's).
    pub local_ip: IpAddr,
    pub data: Bytes,
}

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

    /// Queues one datagram on the connection of a viewer on ICE-TCP, else on the shared
    /// socket's batched sends.
    pub fn send(&self, to: SocketAddr, contents: &[u8]) {
        if self.tcp_peers.as_ref().is_some_and(|peers| peers.send(to, contents)) {
            return;
        }
        self.shared.sends.push(to, self.source_ip, contents);
    }

    /// The address the viewer reaches this session at (for DTLS's bookkeeping).
    pub fn label(&self) -> SocketAddr {
        self.label
    }
}

impl AsyncUdpSocket for SessionSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.label)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if transmit.segment_size.is_some() {
            // Already a batch of its own: straight out.
            let from_label = Transmit { src_ip: self.source_ip, ..*transmit };
            return self.shared.poll_send(cx, &from_label);
        }
        self.shared.sends.push(transmit.destination, self.source_ip, transmit.contents);
        Poll::Ready(Ok(transmit.contents.len()))
    }

    fn poll_recv(&self, cx: &mut Context<'_>, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> Poll<io::Result<usize>> {
        // Only this connection's driver polls its inbox, so the lock is never contended.
        let mut inbox = self.inbox.lock();
        let mut filled = 0;
        while filled < bufs.len().min(meta.len()) {
            let next = if filled == 0 {
                match inbox.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, "session left the shared media port"))),
                    Poll::Ready(Some(datagram)) => datagram,
                }
            } else {
                match inbox.try_recv() {
                    Ok(datagram) => datagram,
                    Err(_) => break,
                }
            };
            let len = next.data.len().min(bufs[filled].len());
            bufs[filled][..len].copy_from_slice(&next.data[..len]);
            let mut received = RecvMeta::default();
            received.addr = next.from;
            received.len = len;
            received.stride = len.max(1);
            received.dst_ip = Some(self.label.ip());
            meta[filled] = received;
            filled += 1;
        }
        Poll::Ready(Ok(filled))
    }

    fn max_gso_segments(&self) -> usize {
        self.shared.max_gso_segments()
    }
}
