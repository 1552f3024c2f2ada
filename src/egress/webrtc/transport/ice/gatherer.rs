//! The candidates Lookout gathers for one viewer through its own STUN and TURN servers, and
//! the TURN relays its media then goes through: sans I/O, over the viewer's socket. A STUN
//! server tells the address the socket is seen at from outside (a server-reflexive
//! candidate); a TURN server allocates an address of its own that forwards to the socket (a
//! relayed candidate), for a server whose network lets nothing in. rtc's TURN client (the
//! rtc-turn crate) speaks the protocol; this keeps one per server and routes through them.

use super::full::LocalCandidate;
use bytes::BytesMut;
use rtc::crypto::RTCCryptoProvider;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc::turn::client::{Client, ClientConfig, Event};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Packets held for a peer while the relay asks the TURN server to let them through; the
/// ICE agent repeats its checks, so a few are enough.
const HELD_PER_PEER: usize = 8;

/// One server to gather through, its address already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherServer {
    pub url: String,
    pub address: SocketAddr,
    /// TURN's long-term credentials; `None` for a STUN server.
    pub turn_credentials: Option<(String, String)>,
}

/// A candidate gathered, with the server it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Gathered {
    Reflexive { address: SocketAddr, url: String },
    Relayed { address: SocketAddr, url: String },
}

impl Gathered {
    /// The candidate it makes for full ICE, whose base is the media port's host address.
    pub fn candidate(&self, base: SocketAddr) -> LocalCandidate {
        match *self {
            Gathered::Reflexive { address, .. } => LocalCandidate::Reflexive { address, base },
            Gathered::Relayed { address, .. } => LocalCandidate::Relayed { address, base },
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{url}: {source}")]
pub struct GatherError {
    url: String,
    source: rtc::shared::error::Error,
}

struct ServerClient {
    server: GatherServer,
    client: Client,
    outcome: Outcome,
    /// Packets waiting for a permission, by peer.
    held: Vec<(SocketAddr, Vec<BytesMut>)>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Waiting,
    Gathered(Gathered),
    Failed(GatherFailure),
}

/// Why a server gave no candidate.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum GatherFailure {
    #[error("{0}")]
    Refused(rtc::shared::error::Error),
    #[error("no answer")]
    NoAnswer,
}

pub struct Gatherer {
    local: SocketAddr,
    clients: Vec<ServerClient>,
}

/// A datagram that came through a relay: from `peer`, to Lookout's relayed address `relay`.
pub struct Relayed {
    pub relay: SocketAddr,
    pub peer: SocketAddr,
    pub data: BytesMut,
}

impl Gatherer {
    /// Starts gathering from `local`, the viewer's socket, through `servers`.
    pub fn start(servers: Vec<GatherServer>, local: SocketAddr, crypto: Arc<dyn RTCCryptoProvider>, now: Instant) -> Result<Self, GatherError> {
        let mut clients = Vec::new();
        for server in servers {
            let failed = |source| GatherError { url: server.url.clone(), source };
            let (username, password) = server.turn_credentials.clone().unwrap_or_default();
            let address = server.address.to_string();
            let is_turn = server.turn_credentials.is_some();
            let config = ClientConfig {
                stun_serv_addr: if is_turn { String::new() } else { address.clone() },
                turn_serv_addr: if is_turn { address } else { String::new() },
                local_addr: local,
                transport_protocol: TransportProtocol::UDP,
                username,
                password,
                realm: String::new(),
                software: String::new(),
                rto_in_ms: 0,
                allocation_refresh_interval_cap: None,
            };
            let mut client = Client::new(config, crypto.clone()).map_err(failed)?;
            match is_turn {
                true => client.allocate(now).map(drop),
                false => client.send_binding_request(now).map(drop),
            }
            .map_err(failed)?;
            clients.push(ServerClient { server, client, outcome: Outcome::Waiting, held: Vec::new() });
        }
        Ok(Self { local, clients })
    }

    /// Whether every server answered or gave up.
    pub fn is_done(&self) -> bool {
        self.clients.iter().all(|client| client.outcome != Outcome::Waiting)
    }

    pub fn gathered(&self) -> Vec<Gathered> {
        self.clients.iter().filter_map(|client| if let Outcome::Gathered(gathered) = &client.outcome { Some(gathered.clone()) } else { None }).collect()
    }

    /// What each server did not give, for the log: `(url, why)`.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &GatherFailure)> {
        self.clients.iter().filter_map(|client| if let Outcome::Failed(why) = &client.outcome { Some((client.server.url.as_str(), why)) } else { None })
    }

    /// Whether `from` is one of the servers: its datagrams are for `on_server_datagram`.
    pub fn is_server(&self, from: SocketAddr) -> bool {
        self.clients.iter().any(|client| client.server.address == from)
    }

    /// The servers' addresses, which the media port routes to this viewer's session.
    pub fn server_addresses(&self) -> Vec<SocketAddr> {
        self.clients.iter().map(|client| client.server.address).collect()
    }

    /// A datagram from a server: an answer, or data a peer sent through the relay.
    pub fn on_server_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> Vec<Relayed> {
        let local = self.local;
        let Some(client) = self.clients.iter_mut().find(|client| client.server.address == from) else { return Vec::new() };
        let message = TransportMessage { now, transport: context(local, from), message: BytesMut::from(datagram) };
        if let Err(error) = client.client.handle_read(message) {
            tracing::debug!(server = %client.server.url, %error, "datagram from an ICE server not understood");
        }
        client.take_events(now)
    }

    /// Sends `data` to `peer` through the relay at `relay`; the first packets to a new peer
    /// wait for the server's permission.
    pub fn send_via(&mut self, relay: SocketAddr, peer: SocketAddr, data: &[u8], now: Instant) {
        let Some(client) = self.clients.iter_mut().find(|client| matches!(&client.outcome, Outcome::Gathered(Gathered::Relayed { address, .. }) if *address == relay)) else { return };
        let Ok(mut allocation) = client.client.relay(relay) else { return };
        match allocation.send_to(now, data, peer) {
            Ok(()) => {}
            Err(rtc::shared::error::Error::ErrNoPermission) => {
                if let Err(error) = allocation.create_permission(now, peer) {
                    tracing::debug!(server = %client.server.url, %peer, %error, "cannot ask the TURN server for a permission");
                    return;
                }
                match client.held.iter_mut().find(|(held_for, _)| *held_for == peer) {
                    Some((_, packets)) if packets.len() < HELD_PER_PEER => packets.push(BytesMut::from(data)),
                    Some(_) => {}
                    None => client.held.push((peer, vec![BytesMut::from(data)])),
                }
            }
            Err(error) => tracing::debug!(server = %client.server.url, %peer, %error, "not sent through the TURN relay"),
        }
    }

    /// Datagrams for the servers.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.clients.iter_mut().find_map(|client| client.client.poll_write()).map(|transmit| (transmit.transport.peer_addr, transmit.message))
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.clients.iter_mut().filter_map(|client| client.client.poll_timeout()).min()
    }

    /// Retransmissions, refreshes; returns what relays delivered meanwhile (none, usually).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Relayed> {
        let mut relayed = Vec::new();
        for client in &mut self.clients {
            if client.client.poll_timeout().is_some_and(|due| due <= now) {
                let _ = client.client.handle_timeout(now);
            }
            relayed.extend(client.take_events(now));
        }
        relayed
    }

    /// Gives the relays back to their servers.
    pub fn close(&mut self, now: Instant) {
        for client in &mut self.clients {
            if let Outcome::Gathered(Gathered::Relayed { address, .. }) = client.outcome {
                if let Ok(mut allocation) = client.client.relay(address) {
                    let _ = allocation.close(now);
                }
            }
        }
    }
}

impl ServerClient {
    fn take_events(&mut self, now: Instant) -> Vec<Relayed> {
        let mut relayed = Vec::new();
        while let Some(event) = self.client.poll_event() {
            let url = self.server.url.clone();
            match event {
                Event::BindingResponse(_, address) => self.outcome = Outcome::Gathered(Gathered::Reflexive { address, url }),
                Event::AllocateResponse(_, address) => self.outcome = Outcome::Gathered(Gathered::Relayed { address, url }),
                Event::BindingError(_, error) | Event::AllocateError(_, error) => self.outcome = Outcome::Failed(GatherFailure::Refused(error)),
                Event::TransactionTimeout(_) if self.outcome == Outcome::Waiting => self.outcome = Outcome::Failed(GatherFailure::NoAnswer),
                Event::CreatePermissionResponse(_, peer) => self.release_held(peer, now),
                Event::CreatePermissionError(_, error) => tracing::debug!(server = %url, %error, "the TURN server refused a permission"),
                Event::DataIndicationOrChannelData(_, peer, data) => {
                    if let Outcome::Gathered(Gathered::Relayed { address, .. }) = self.outcome {
                        relayed.push(Relayed { relay: address, peer, data });
                    }
                }
                _ => {}
            }
        }
        relayed
    }

    fn release_held(&mut self, peer: SocketAddr, now: Instant) {
        let Some(position) = self.held.iter().position(|(held_for, _)| *held_for == peer) else { return };
        let (_, packets) = self.held.swap_remove(position);
        let Outcome::Gathered(Gathered::Relayed { address, .. }) = self.outcome else { return };
        let Ok(mut allocation) = self.client.relay(address) else { return };
        for packet in packets {
            let _ = allocation.send_to(now, &packet, peer);
        }
    }
}

fn context(local: SocketAddr, peer: SocketAddr) -> TransportContext {
    TransportContext { local_addr: local, peer_addr: peer, transport_protocol: TransportProtocol::UDP, ecn: None }
}
