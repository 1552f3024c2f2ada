//! ICE-TCP connections of a session on Lookout's own endpoint. Each connection the shared
//! listener routed to the session is served by one task: the packets it frames (RFC 4571: a
//! 16-bit length, then the packet) go to the session's inbox like datagrams, and what the
//! session sends to that viewer address goes back framed on the same connection.

use super::datagram::Datagram;
use super::tcp::AcceptedStream;
use super::SessionRoute;
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Weak;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A viewer that takes no data for this long (its receive window stays shut) is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Packets waiting to be written to one connection; more are dropped, as a full UDP socket
/// buffer would drop them. A keyframe of a few hundred packets fits.
const OUTGOING_PACKETS: usize = 1024;

/// The viewer addresses a session reaches over TCP, and the queue of each one's connection.
#[derive(Default)]
pub struct TcpPeers {
    connections: Mutex<Vec<TcpPeer>>,
    /// Tells connections from one address apart: a newer one replaces an older one.
    next_id: AtomicU64,
    /// Whether any connection is open: the UDP path asks this alone, without the lock.
    any: AtomicBool,
}

impl std::fmt::Debug for TcpPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpPeers").field("any", &self.any.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

struct TcpPeer {
    peer: SocketAddr,
    id: u64,
    queue: mpsc::Sender<Bytes>,
}

impl TcpPeers {
    /// Queues `packet` on the connection from `to`; false when `to` is no TCP peer, so the
    /// packet goes over UDP.
    pub fn send(&self, to: SocketAddr, packet: &[u8]) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let connections = self.connections.lock();
        let Some(connection) = connections.iter().find(|connection| connection.peer == to) else { return false };
        if connection.queue.try_send(Bytes::copy_from_slice(packet)).is_err() {
            tracing::debug!(%to, "ICE-TCP connection's queue full or closed: packet dropped");
        }
        true
    }

    fn add(&self, peer: SocketAddr) -> (u64, mpsc::Receiver<Bytes>) {
        let (queue, outgoing) = mpsc::channel(OUTGOING_PACKETS);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut connections = self.connections.lock();
        // A viewer that connects again from the same address replaces its old connection.
        connections.retain(|connection| connection.peer != peer);
        connections.push(TcpPeer { peer, id, queue });
        self.any.store(true, Ordering::Release);
        (id, outgoing)
    }

    fn remove(&self, id: u64) {
        let mut connections = self.connections.lock();
        connections.retain(|connection| connection.id != id);
        self.any.store(!connections.is_empty(), Ordering::Release);
    }
}

/// Serves one connection until the viewer closes it, it breaks, or the session ends (its
/// route is gone, or its socket dropped the peers and with them this connection's queue).
pub async fn serve(route: Weak<SessionRoute>, peers: Weak<TcpPeers>, accepted: AcceptedStream) {
    let AcceptedStream { mut read_half, mut write_half, local, peer, prefix } = accepted;
    let Some((id, mut outgoing)) = peers.upgrade().map(|peers| peers.add(peer)) else { return };
    let mut unread = BytesMut::from(&prefix[..]);
    let reason = 'serving: loop {
        while let Some(frame) = next_frame(&mut unread) {
            let Some(route) = route.upgrade() else { break 'serving "the session ended" };
            route.deliver_datagram(local.ip(), Datagram { from: peer, local_ip: local.ip(), data: frame });
        }
        tokio::select! {
            read = read_half.read_buf(&mut unread) => match read {
                Ok(0) => break "closed by the viewer",
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%peer, %error, "ICE-TCP connection broke");
                    break "it broke";
                }
            },
            packet = outgoing.recv() => match packet {
                Some(packet) => match tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut write_half, &packet)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "ICE-TCP connection broke");
                        break "it broke";
                    }
                    Err(_) => break "the viewer stopped reading",
                },
                None => break "the session ended",
            },
        }
    };
    tracing::debug!(%peer, %reason, "ICE-TCP connection done");
    if let Some(peers) = peers.upgrade() {
        peers.remove(id);
    }
}

/// Takes one whole frame off the front of `unread`, if one is there.
fn next_frame(unread: &mut BytesMut) -> Option<Bytes> {
    let length = usize::from(u16::from_be_bytes([*unread.first()?, *unread.get(1)?]));
    if unread.len() < 2 + length {
        unread.reserve(2 + length - unread.len());
        return None;
    }
    unread.advance(2);
    Some(unread.split_to(length).freeze())
}

async fn write_frame(write_half: &mut tokio::net::tcp::OwnedWriteHalf, packet: &[u8]) -> std::io::Result<()> {
    // Lookout's packets fit a UDP datagram, far below the frame's 64 KiB.
    let length = u16::try_from(packet.len()).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("a packet of {} bytes does not fit a frame", packet.len())))?;
    let mut framed = Vec::with_capacity(2 + packet.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(packet);
    write_half.write_all(&framed).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_where_their_length_says_and_wait_until_whole() {
        let mut unread = BytesMut::from(&[0, 3, b'a', b'b', b'c', 0, 2, b'd'][..]);
        assert_eq!(next_frame(&mut unread).as_deref(), Some(&b"abc"[..]));
        assert_eq!(next_frame(&mut unread), None, "the second frame is not whole yet");
        unread.extend_from_slice(b"e");
        assert_eq!(next_frame(&mut unread).as_deref(), Some(&b"de"[..]));
        assert_eq!(next_frame(&mut unread), None);
        let mut empty_frame = BytesMut::from(&[0, 0][..]);
        assert_eq!(next_frame(&mut empty_frame).as_deref(), Some(&b""[..]));
    }
}
