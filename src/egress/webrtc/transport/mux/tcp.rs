//! ICE-TCP (RFC 6544, passive) on a media port: one listener per address for every session.
//! A viewer's first frame on a new connection (RFC 4571 framing: a 16-bit length, then the
//! packet) is a connectivity check naming the session's ufrag; the connection is handed to that
//! session (`tcp_peers`) with the frame read.

use super::stun::binding_request_ufrag;
use super::SessionRoute;
use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

/// Connections still to say which session they are for; more wait in the kernel's backlog.
const PENDING_HANDSHAKES: usize = 256;
/// How long a new connection has to send its first check.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// A connectivity check is a few hundred bytes.
const MAX_FIRST_FRAME: usize = 2048;

pub struct SharedListener {
    io: tokio::net::TcpListener,
    pub bound: SocketAddr,
}

impl SharedListener {
    pub fn bind(address: SocketAddr) -> io::Result<Self> {
        let socket = super::new_socket(address, socket2::Type::STREAM, socket2::Protocol::TCP)?;
        socket.set_reuse_address(true)?;
        socket.bind(&address.into())?;
        socket.listen(1024)?;
        let io = tokio::net::TcpListener::from_std(socket.into())?;
        let bound = io.local_addr()?;
        Ok(Self { io, bound })
    }

    /// Accepts for as long as Lookout runs; `session` finds the session of a ufrag.
    pub async fn accept_loop(self, session: impl Fn(&str) -> Option<Arc<SessionRoute>> + Send + Sync + 'static) {
        let session = Arc::new(session);
        let pending = Arc::new(Semaphore::new(PENDING_HANDSHAKES));
        loop {
            let (stream, peer) = match self.io.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, listener = %self.bound, "ICE-TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = pending.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many ICE-TCP connections without a first check: closed one");
                continue;
            };
            let session = session.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(FIRST_FRAME_TIMEOUT, first_frame(stream)).await {
                    Ok(Ok((accepted, ufrag))) => match session(&ufrag) {
                        Some(route) => route.deliver_stream(accepted),
                        None => tracing::debug!(%peer, %ufrag, "ICE-TCP check for no session"),
                    },
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "ICE-TCP connection closed before its first check"),
                    Err(_) => tracing::debug!(%peer, "ICE-TCP connection sent no check in time"),
                }
            });
        }
    }
}

/// Reads the first framed packet of a new connection and the ufrag its check names.
async fn first_frame(mut stream: tokio::net::TcpStream) -> io::Result<(AcceptedStream, String)> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await?;
    let frame_len = usize::from(u16::from_be_bytes(length));
    if frame_len > MAX_FIRST_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("first frame of {frame_len} bytes is no connectivity check")));
    }
    let mut prefix = vec![0u8; 2 + frame_len];
    prefix[..2].copy_from_slice(&length);
    stream.read_exact(&mut prefix[2..]).await?;
    let ufrag = binding_request_ufrag(&prefix[2..])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "first frame is no connectivity check"))?
        .to_owned();
    let local = stream.local_addr()?;
    let peer = stream.peer_addr()?;
    let (read_half, write_half) = stream.into_split();
    Ok((AcceptedStream { read_half, write_half, local, peer, prefix: Bytes::from(prefix) }, ufrag))
}

/// A connection handed to a session, its first frame already read.
#[derive(Debug)]
pub struct AcceptedStream {
    pub read_half: OwnedReadHalf,
    pub write_half: OwnedWriteHalf,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// The first frame, length included, already read.
    pub prefix: Bytes,
}
