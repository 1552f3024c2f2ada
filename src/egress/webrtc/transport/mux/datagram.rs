//! One datagram a media port routed to a session (or a frame of one of its ICE-TCP
//! connections, delivered the same way).

use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug)]
pub struct Datagram {
    pub from: SocketAddr,
    /// The local address it was sent to (on a wildcard socket, which of the machine's).
    pub local_ip: IpAddr,
    pub data: Bytes,
}
