//! The shared media port: every viewer's WebRTC media through one UDP port (and, with ICE-TCP,
//! one TCP port of the same number), so a firewall needs one rule.
//!
//! Each session's connection reads a `SessionSocket` fed by the shared socket's receive loop,
//! which routes datagrams by ICE username fragment, then by the viewer's address (`routes`).
//! Sends go out of the shared socket in batches. A port of the range is the same, with one
//! session on it.

mod datagram;
mod routes;
mod send_queue;
mod session_socket;
mod shared_socket;
mod stun;
mod tcp;
mod tcp_peers;

/// How a datagram on the shared port is routed; public for the fuzz targets (tests/fuzz).
pub use stun::binding_request_ufrag;

use routes::Routes;
pub use datagram::Datagram;
pub use session_socket::SessionSocket;
use shared_socket::SharedSocket;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use parking_lot::Mutex;
use tcp::{AcceptedStream, SharedListener};
use tcp_peers::TcpPeers;
use std::sync::Weak;
use tokio::sync::mpsc;

/// Datagrams waiting for one session's connection to read them; more are dropped. Inbound
/// traffic of a viewer is checks and RTCP, a few packets a second.
const SESSION_INBOX: usize = 256;
/// Connectivity checks that arrive before the session knows the viewer's ICE credentials are
/// held, at most this many, rather than dropped (see `SessionRoute::open`).
const HELD_BEFORE_REMOTE_DESCRIPTION: usize = 32;
/// A failed bind on one address of a system-chosen port: how often to try another port.
const BIND_ATTEMPTS: usize = 8;

pub struct SharedMediaPort {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Shared {
    udp: Arc<[Arc<SharedSocket>]>,
    tcp: Arc<[SocketAddr]>,
    routes: Mutex<Routes<Arc<SessionRoute>>>,
}

impl Drop for SharedMediaPort {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|task| task.abort());
    }
}

/// A non-blocking socket for `address`, not yet bound. An IPv6 one is IPv6 only: `::` then
/// stands for IPv6 alone, and IPv4 has its own socket on the same port.
fn new_socket(address: SocketAddr, kind: socket2::Type, protocol: socket2::Protocol) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(address), kind, Some(protocol))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The addresses to bind: a wildcard covers every address of its family, loopback included.
fn socket_addresses(listen_ips: &[IpAddr], port: u16) -> Vec<SocketAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in listen_ips {
        let covered = ips.iter().any(|bound| bound.is_unspecified() && bound.is_ipv4() == ip.is_ipv4());
        if covered || ips.contains(ip) {
            continue;
        }
        if ip.is_unspecified() {
            ips.retain(|bound| bound.is_ipv4() != ip.is_ipv4());
        }
        ips.push(*ip);
    }
    ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()
}

/// Who a media port carries: every viewer, or one (a port of the range). A viewer sends a few
/// packets a second (checks, RTCP), so one viewer's port reads one datagram at a time, not a
/// batch: its receive buffers would otherwise cost megabytes per viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortUse {
    EveryViewer,
    OneViewer,
}

impl PortUse {
    fn receive_batch(self) -> usize {
        match self {
            PortUse::EveryViewer => quinn_udp::BATCH_SIZE,
            PortUse::OneViewer => 1,
        }
    }
}

impl SharedMediaPort {
    /// Binds `port` (0: one the system chooses) on every listen address, for UDP and, with
    /// `tcp`, for TCP, and starts routing. Must run in a Tokio runtime.
    pub fn bind(listen_ips: &[IpAddr], port: u16, tcp: bool, usage: PortUse) -> io::Result<Self> {
        let mut attempt = 0;
        let (udp, tcp_listeners) = loop {
            attempt += 1;
            match bind_all(listen_ips, port, tcp) {
                Err(error) if port == 0 && error.kind() == io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => continue,
                other => break other?,
            }
        };
        let shared = Arc::new(Shared {
            udp: udp.into_iter().map(Arc::new).collect(),
            tcp: tcp_listeners.iter().map(|l| l.bound).collect(),
            routes: Mutex::new(Routes::default()),
        });
        let mut tasks: Vec<_> = shared.udp.iter().map(|socket| tokio::spawn(receive(socket.clone(), shared.clone(), usage.receive_batch()))).collect();
        tasks.extend(shared.udp.iter().map(|socket| {
            let socket = socket.clone();
            tokio::spawn(async move { socket.send_queued().await })
        }));
        tasks.extend(tcp_listeners.into_iter().map(|listener| {
            let shared = shared.clone();
            tokio::spawn(listener.accept_loop(move |ufrag| shared.routes.lock().session(ufrag).cloned()))
        }));
        Ok(Self { shared, tasks })
    }

    /// The port number, UDP and TCP alike.
    pub fn port(&self) -> u16 {
        self.shared.udp.first().map_or(0, |socket| socket.bound.port())
    }

    /// The sockets, for the startup log.
    pub fn describe(&self) -> String {
        let udp = self.shared.udp.iter().map(|s| format!("udp {}", s.bound));
        let tcp = self.shared.tcp.iter().map(|a| format!("tcp {a}"));
        udp.chain(tcp).collect::<Vec<_>>().join(", ")
    }

    /// Admits a session whose ICE username fragment is `ufrag` (unique and unguessable);
    /// it leaves when the registration is dropped.
    pub fn register(&self, ufrag: String) -> MuxRegistration {
        let route = Arc::new(SessionRoute {
            ufrag: ufrag.clone(),
            udp: self.shared.udp.clone(),
            udp_inboxes: Mutex::new(Vec::new()),
            tcp_connections: Mutex::new(Weak::new()),
            servers: Mutex::new(Vec::new()),
            open: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        });
        self.shared.routes.lock().insert(ufrag, route.clone());
        MuxRegistration { shared: self.shared.clone(), route }
    }
}

fn bind_all(listen_ips: &[IpAddr], port: u16, tcp: bool) -> io::Result<(Vec<SharedSocket>, Vec<SharedListener>)> {
    let mut udp: Vec<SharedSocket> = Vec::new();
    let mut tcp_listeners = Vec::new();
    for address in socket_addresses(listen_ips, port) {
        // Every address takes the port the first one got.
        let address = SocketAddr::new(address.ip(), udp.first().map_or(port, |s| s.bound.port()));
        let socket = SharedSocket::bind(address).map_err(|e| io::Error::new(e.kind(), format!("cannot bind UDP {address}: {e}")))?;
        if tcp {
            let address = socket.bound;
            tcp_listeners.push(SharedListener::bind(address).map_err(|e| io::Error::new(e.kind(), format!("cannot bind TCP {address}: {e}")))?);
        }
        udp.push(socket);
    }
    Ok((udp, tcp_listeners))
}

/// A session's place on the shared port, held for as long as the session lives.
pub struct MuxRegistration {
    shared: Arc<Shared>,
    pub route: Arc<SessionRoute>,
}

impl MuxRegistration {
    /// The session's socket: the first UDP socket of the media port, reached at `label` (a
    /// listen address and the port), and the ICE-TCP connections the listeners route to it.
    pub fn socket(&self) -> io::Result<SessionSocket> {
        let first = self.route.udp.first().ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no shared UDP socket"))?;
        let tcp_peers = Arc::new(TcpPeers::default());
        *self.route.tcp_connections.lock() = Arc::downgrade(&tcp_peers);
        self.route.udp_socket(first.bound).map(|socket| socket.with_tcp_peers(tcp_peers))
    }

    /// Routes what comes from `address` (one of the session's ICE servers) to the session,
    /// at once: their answers are awaited before the viewer has a description to reply with.
    pub fn route_from(&self, address: SocketAddr) {
        self.route.servers.lock().push(address);
        self.shared.routes.lock().learn(address, self.route.ufrag.clone());
    }

    /// The media port's number, UDP and TCP alike.
    pub fn port(&self) -> u16 {
        self.route.udp.first().map_or(0, |socket| socket.bound.port())
    }
}

impl Drop for MuxRegistration {
    fn drop(&mut self) {
        self.shared.routes.lock().remove(&self.route.ufrag);
    }
}

/// Where the shared port delivers one session's traffic: an inbox per local address its
/// connection bound (the label its ICE agent knows the candidate by).
pub struct SessionRoute {
    ufrag: String,
    udp: Arc<[Arc<SharedSocket>]>,
    udp_inboxes: Mutex<Vec<(IpAddr, mpsc::Sender<Datagram>)>>,
    /// The session serves its ICE-TCP connections itself (see `tcp_peers`).
    tcp_connections: Mutex<Weak<TcpPeers>>,
    /// The ICE servers the session gathers through: never held.
    servers: Mutex<Vec<SocketAddr>>,
    /// Whether the connection has the viewer's description; until then datagrams wait in `held`.
    open: AtomicBool,
    held: Mutex<Vec<(IpAddr, Datagram)>>,
}

impl std::fmt::Debug for SessionRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRoute").field("ufrag", &self.ufrag).finish_non_exhaustive()
    }
}

/// The bound address that serves `ip`: itself, or the wildcard of its family.
fn serving<T>(items: &[T], address: impl Fn(&T) -> SocketAddr, ip: IpAddr) -> Option<&T> {
    items.iter().find(|i| address(i).ip() == ip).or_else(|| items.iter().find(|i| address(i).ip().is_unspecified() && address(i).is_ipv4() == ip.is_ipv4()))
}

fn no_shared_socket(kind: &str, ip: IpAddr) -> io::Error {
    io::Error::new(io::ErrorKind::AddrNotAvailable, format!("no shared {kind} media socket serves {ip}"))
}

/// The inbox for traffic that arrived on `local_ip`: the one of that address, else the first
/// of the family (a wildcard socket may see an address the connection did not bind).
fn inbox_for<T: Clone>(inboxes: &Mutex<Vec<(IpAddr, T)>>, local_ip: IpAddr) -> Option<T> {
    let inboxes = inboxes.lock();
    inboxes.iter().find(|(ip, _)| *ip == local_ip).or_else(|| inboxes.iter().find(|(ip, _)| ip.is_ipv4() == local_ip.is_ipv4())).map(|(_, tx)| tx.clone())
}

impl SessionRoute {
    fn udp_socket(&self, label: SocketAddr) -> io::Result<SessionSocket> {
        let shared = serving(&self.udp, |s| s.bound, label.ip()).ok_or_else(|| no_shared_socket("UDP", label.ip()))?;
        let (tx, rx) = mpsc::channel(SESSION_INBOX);
        self.udp_inboxes.lock().push((label.ip(), tx));
        Ok(SessionSocket::new(label, rx, shared.clone()))
    }

    /// Lets datagrams through to the connection, those held first. To be called once the
    /// connection has the viewer's description: a browser starts its checks as soon as it has
    /// answered, and they often arrive before its answer has come through the signalling. The
    /// connection would reject them (it cannot check their username yet), and the browser
    /// would retry only after its retransmission timer, up to 2 s later.
    pub fn open(&self) {
        // Delivered under the lock, before the route opens: a datagram that arrives meanwhile
        // waits for the lock and goes after them (a DTLS ClientHello that overtook the check
        // before it would be refused, and the viewer would resend it only a second later).
        let mut held = self.held.lock();
        for (local_ip, datagram) in held.drain(..) {
            self.deliver_now(local_ip, datagram);
        }
        self.open.store(true, Ordering::Release);
    }

    fn deliver_datagram(&self, local_ip: IpAddr, datagram: Datagram) {
        if !self.open.load(Ordering::Acquire) && !self.servers.lock().contains(&datagram.from) {
            let mut held = self.held.lock();
            // Checked again under the lock, which `open` holds while it drains.
            if !self.open.load(Ordering::Acquire) {
                if held.len() < HELD_BEFORE_REMOTE_DESCRIPTION {
                    held.push((local_ip, datagram));
                }
                return;
            }
        }
        self.deliver_now(local_ip, datagram);
    }

    fn deliver_now(&self, local_ip: IpAddr, datagram: Datagram) {
        let Some(inbox) = inbox_for(&self.udp_inboxes, local_ip) else { return };
        if inbox.try_send(datagram).is_err() {
            tracing::debug!(ufrag = %self.ufrag, "session inbox full or closed: datagram dropped");
        }
    }

    fn deliver_stream(self: &Arc<Self>, accepted: AcceptedStream) {
        let peers = self.tcp_connections.lock().clone();
        if peers.strong_count() == 0 {
            tracing::debug!(ufrag = %self.ufrag, peer = %accepted.peer, "ICE-TCP connection for a session that is gone");
            return;
        }
        tokio::spawn(tcp_peers::serve(Arc::downgrade(self), peers, accepted));
    }
}

/// Reads one shared socket for as long as Lookout runs and hands each datagram to its session.
async fn receive(socket: Arc<SharedSocket>, shared: Arc<Shared>, batch: usize) {
    let buffer_len = socket.gro_segments().max(1) * 1500;
    let mut buffers = vec![vec![0u8; buffer_len]; batch];
    let mut meta = vec![quinn_udp::RecvMeta::default(); batch];
    loop {
        let mut slices: Vec<IoSliceMut<'_>> = buffers.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let received = futures::future::poll_fn(|cx| socket.poll_recv(cx, &mut slices, &mut meta)).await;
        drop(slices);
        let count = match received {
            Ok(count) => count,
            // ICMP errors from viewers that went away surface here; they concern one viewer.
            Err(error) if matches!(error.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted) => continue,
            Err(error) => {
                tracing::error!(%error, socket = %socket.bound, "shared media socket failed; retrying in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        for (buffer, meta) in buffers.iter().zip(&meta).take(count) {
            let local_ip = meta.dst_ip.unwrap_or(socket.bound.ip());
            // With GRO, one buffer holds several datagrams of `stride` bytes from one sender.
            for datagram in buffer[..meta.len].chunks(meta.stride.max(1)) {
                let session = shared.routes.lock().route(meta.addr, datagram).cloned();
                match session {
                    Some(session) => session.deliver_datagram(local_ip, Datagram { from: meta.addr, local_ip, data: bytes::Bytes::copy_from_slice(datagram) }),
                    None => tracing::trace!(from = %meta.addr, len = datagram.len(), "datagram for no session on the shared port"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_with_inbox() -> (SessionRoute, mpsc::Receiver<Datagram>) {
        let (tx, rx) = mpsc::channel(SESSION_INBOX);
        let route = SessionRoute {
            ufrag: "u".into(),
            udp: Arc::from(Vec::new()),
            udp_inboxes: Mutex::new(vec![(IpAddr::from([127, 0, 0, 1]), tx)]),
            tcp_connections: Mutex::new(Weak::new()),
            servers: Mutex::new(Vec::new()),
            open: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        };
        (route, rx)
    }

    fn datagram(n: u8) -> Datagram {
        Datagram { from: SocketAddr::from(([127, 0, 0, 2], 5000)), local_ip: IpAddr::from([127, 0, 0, 1]), data: bytes::Bytes::from(vec![n]) }
    }

    #[test]
    fn checks_before_the_remote_description_wait_then_pass_in_order() {
        let (route, mut inbox) = route_with_inbox();
        let local = IpAddr::from([127, 0, 0, 1]);
        for n in 0..(HELD_BEFORE_REMOTE_DESCRIPTION + 5) as u8 {
            route.deliver_datagram(local, datagram(n));
        }
        assert!(inbox.try_recv().is_err(), "held until the description is applied");
        route.open();
        route.deliver_datagram(local, datagram(200));
        let delivered: Vec<u8> = std::iter::from_fn(|| inbox.try_recv().ok()).map(|d| d.data[0]).collect();
        let mut expected: Vec<u8> = (0..HELD_BEFORE_REMOTE_DESCRIPTION as u8).collect();
        expected.push(200);
        assert_eq!(delivered, expected, "the first held ones (bounded), then the rest directly");
    }

    #[test]
    fn a_wildcard_covers_its_family() {
        let ips = |list: &[&str]| list.iter().map(|ip| ip.parse().expect("ip")).collect::<Vec<IpAddr>>();
        let addresses = |list: &[&str]| socket_addresses(&ips(list), 9).into_iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(addresses(&["127.0.0.1", "0.0.0.0"]), ["0.0.0.0:9"]);
        assert_eq!(addresses(&["0.0.0.0", "127.0.0.1", "::1"]), ["0.0.0.0:9", "[::1]:9"]);
        assert_eq!(addresses(&["127.0.0.1", "10.0.0.2", "127.0.0.1"]), ["127.0.0.1:9", "10.0.0.2:9"]);
        assert_eq!(addresses(&["::1", "::", "0.0.0.0"]), ["[::]:9", "0.0.0.0:9"]);
    }
}
