//! One bound UDP socket of the shared media port, read and written through quinn-udp: batched
//! receives that also say which local address a datagram was sent to (needed when the socket is
//! bound to a wildcard), sends from a chosen source address, and GSO where the kernel has it.

use super::send_queue::{Batch, SendQueue};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{Context, Poll};
use tokio::io::Interest;

/// The shared socket carries every viewer's media: a deeper send queue than the default
/// absorbs a keyframe sent to many viewers at once (the kernel caps it at `wmem_max`).
const SEND_BUFFER_BYTES: usize = 4 << 20;
const RECEIVE_BUFFER_BYTES: usize = 1 << 20;

pub struct SharedSocket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    pub bound: SocketAddr,
    /// What sessions send, sent by `send_queued`.
    pub sends: SendQueue,
}

impl std::fmt::Debug for SharedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSocket").field("bound", &self.bound).finish_non_exhaustive()
    }
}

impl SharedSocket {
    pub fn bind(address: SocketAddr) -> io::Result<Self> {
        let socket = super::new_socket(address, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
        // Best effort: an unprivileged process gets what the system allows.
        let _ = socket.set_send_buffer_size(SEND_BUFFER_BYTES);
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES);
        socket.bind(&address.into())?;
        let std_socket: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new(UdpSockRef::from(&std_socket))?;
        let bound = std_socket.local_addr()?;
        Ok(Self { io: tokio::net::UdpSocket::from_std(std_socket)?, state, bound, sends: SendQueue::default() })
    }

    pub fn is_wildcard(&self) -> bool {
        self.bound.ip().is_unspecified()
    }

    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends what sessions queue, in GSO runs, for as long as Lookout runs.
    pub async fn send_queued(&self) {
        let mut batch = Batch::default();
        let mut scratch = Vec::new();
        loop {
            self.sends.take(&mut batch).await;
            for run in batch.gso_sends(self.max_gso_segments()) {
                let (send, contents) = batch.gather(run, &mut scratch);
                let transmit = Transmit { destination: send.destination, ecn: None, contents, segment_size: send.segment_size, src_ip: send.source_ip };
                if let Err(error) = futures::future::poll_fn(|cx| self.poll_send(cx, &transmit)).await {
                    // One viewer's trouble (an ICMP error, a firewall); others go on.
                    tracing::debug!(%error, destination = %send.destination, datagrams = send.datagrams, "send on the shared media socket failed");
                }
            }
        }
    }

    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    pub fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.io.poll_send_ready(cx))?;
            // Through `try_io`, so that tokio learns when the socket stops being writable
            // and parks the waker instead of spinning.
            match self.io.try_io(Interest::WRITABLE, || {
                self.state.try_send(UdpSockRef::from(&self.io), transmit).map(|()| transmit.contents.len())
            }) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    pub fn poll_recv(&self, cx: &mut Context<'_>, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.io.poll_recv_ready(cx))?;
            match self.io.try_io(Interest::READABLE, || match self.state.recv(UdpSockRef::from(&self.io), bufs, meta)? {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}
