//! A viewer's connection on Lookout's own endpoint. A task drives its transport: the datagrams
//! the media port routes to it (checks, DTLS, the viewer's RTCP, and its ICE servers' answers
//! and relayed data when Lookout gathers through them) and its timers. Media does not pass
//! through that task: a forwarder encrypts its RTP in its own task and queues it on the shared
//! socket's batched sends, one lock and no hop per packet.

use crate::egress::webrtc::transport::dtls_srtp::Identity;
use crate::egress::webrtc::transport::ice::full::{FullIce, LocalCandidate};
use crate::egress::webrtc::transport::ice::gatherer::{Gathered, Gatherer, Relayed};
use crate::egress::webrtc::transport::ice::path::IcePath;
use crate::egress::webrtc::transport::viewer_transport::{RemoteTransport, ViewerTransport, TransportError, TransportEvent};
use crate::egress::webrtc::transport::mux::SessionSocket;
use crate::egress::webrtc::rtcp::observer::RtcpObserver;
use crate::egress::webrtc::rtcp::sender_reports::SenderReporter;
use crate::egress::webrtc::rtcp::link_quality::PublishedGcc;
use crate::egress::webrtc::rtcp::twcc::TwccSender;
use rtc::interceptor::BandwidthEstimator;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use bytes::BytesMut;
use rtc::interceptor::{Packet, StreamInfo, TaggedPacket};
use rtc::shared::marshal::Marshal;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use parking_lot::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use crate::egress::webrtc::transport::connection_state::ConnectionState;

/// A viewer that has not connected by then will not.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connected viewer that sends neither connectivity checks (browsers refresh consent every
/// few seconds, RFC 7675) nor RTCP for this long is gone.
const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a viewer's connection failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no description from the viewer within {} s", CONNECT_TIMEOUT.as_secs())]
    NoDescription,
    #[error("no connectivity check arrived within {} s", CONNECT_TIMEOUT.as_secs())]
    NoCheck,
    #[error("nothing from the viewer (checks, RTCP) for {} s", CONSENT_TIMEOUT.as_secs())]
    Silent,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

pub struct LocalCredentials {
    pub ufrag: String,
    pub password: String,
}

/// Where the viewer can reach this connection: the host addresses, and with a gatherer the
/// candidates it finds through Lookout's own ICE servers (full ICE then, instead of lite).
pub struct LocalAddresses {
    pub host: Vec<SocketAddr>,
    pub gatherer: Option<Gatherer>,
}

/// The RTCP observers of a connection, sharing one call per packet.
pub type Observers = Box<dyn RtcpObserver>;

/// What the viewer's RTCP feeds and what the connection reports on.
pub struct ConnectionFeedback {
    pub observers: Observers,
    pub reporter: SenderReporter,
    /// Estimates the viewer's link from its transport-wide feedback.
    pub estimator: PublishedGcc,
}

pub struct Connection {
    inner: Mutex<Inner>,
    socket: SessionSocket,
    host: Vec<SocketAddr>,
    /// Whether gathering through the ICE servers is over (answered, failed or timed out).
    gathering_done: watch::Sender<bool>,
    state: watch::Sender<ConnectionState>,
    identity: Arc<Identity>,
    local: LocalCredentials,
    closing: Notify,
    /// Wakes the driver to compute its next deadline again.
    timers_changed: Notify,
    created: Instant,
}

struct Inner {
    /// Made when the viewer's description arrives.
    transport: Option<ViewerTransport>,
    observers: Observers,
    reporter: SenderReporter,
    /// When the viewer agreed to transport-wide feedback: what was sent, for its reports.
    twcc: Option<TwccSender>,
    estimator: PublishedGcc,
    gatherer: Option<Gatherer>,
}

#[derive(Debug, thiserror::Error)]
#[error("the viewer's connection is closed")]
pub struct Closed;

impl Connection {
    pub fn new(identity: Arc<Identity>, local: LocalCredentials, addresses: LocalAddresses, socket: SessionSocket, feedback: ConnectionFeedback) -> Arc<Self> {
        let ConnectionFeedback { observers, reporter, estimator } = feedback;
        let LocalAddresses { host, gatherer } = addresses;
        let gathering_done = watch::channel(gatherer.as_ref().is_none_or(Gatherer::is_done)).0;
        let connection = Arc::new(Self {
            inner: Mutex::new(Inner { transport: None, observers, reporter, twcc: None, estimator, gatherer }),
            socket,
            host,
            gathering_done,
            state: watch::channel(ConnectionState::New).0,
            identity,
            local,
            closing: Notify::new(),
            timers_changed: Notify::new(),
            created: Instant::now(),
        });
        tokio::spawn(Arc::clone(&connection).drive());
        connection
    }

    /// Waits until gathering through the ICE servers is over, or `timeout`; then says what
    /// was gathered, for the descriptions.
    pub async fn gathered(&self, timeout: Duration) -> Vec<Gathered> {
        let mut done = self.gathering_done.subscribe();
        let _ = tokio::time::timeout(timeout, done.wait_for(|done| *done)).await;
        let inner = self.inner.lock();
        let Some(gatherer) = inner.gatherer.as_ref() else { return Vec::new() };
        for (url, why) in gatherer.failures() {
            tracing::warn!(ufrag = %self.local.ufrag, url, "gathered nothing through an ICE server: {why}");
        }
        gatherer.gathered()
    }

    /// The viewer's description arrived: checks and DTLS from it can be answered. `controlling`:
    /// Lookout offered, so with full ICE it nominates.
    pub fn set_remote(&self, remote: &RemoteTransport, controlling: bool) -> Result<(), TransportError> {
        let mut transport = ViewerTransport::new(&self.identity, &self.local.ufrag, &self.local.password, remote, self.socket.label())?;
        let mut inner = self.inner.lock();
        if let Some(gatherer) = inner.gatherer.as_ref() {
            let base = self.host.first().copied().unwrap_or(self.socket.label());
            let mut candidates: Vec<LocalCandidate> = self.host.iter().map(|address| LocalCandidate::Host(*address)).collect();
            candidates.extend(gatherer.gathered().into_iter().map(|gathered| match gathered {
                Gathered::Reflexive { address, .. } => LocalCandidate::Reflexive { address, base },
                Gathered::Relayed { address, .. } => LocalCandidate::Relayed { address, base },
            }));
            let credentials = (self.local.ufrag.as_str(), self.local.password.as_str());
            let full = FullIce::new(credentials, (&remote.ufrag, &remote.password), &candidates, controlling, self.identity.crypto.clone(), Instant::now())?;
            transport = transport.with_full_ice(full);
            for candidate in &remote.candidates {
                transport.add_remote_candidate(candidate);
            }
        }
        inner.transport = Some(transport);
        drop(inner);
        self.state.send_replace(ConnectionState::Connecting);
        // Full ICE's first checks go out now rather than at the agent's first timer.
        self.timers_changed.notify_one();
        Ok(())
    }

    /// A candidate the viewer trickled.
    pub fn add_remote_candidate(&self, line: &str) {
        if let Some(transport) = self.inner.lock().transport.as_mut() {
            transport.add_remote_candidate(line);
        }
        self.timers_changed.notify_one();
    }

    /// Stamps transport-wide sequence numbers with header extension `extension_id` from now on.
    pub fn enable_twcc(&self, extension_id: u8) {
        self.inner.lock().twcc = Some(TwccSender::new(extension_id));
    }

    /// Tells a stream this connection sends to the observers (its SSRCs, for NACKs) and to
    /// the sender reports.
    pub fn bind_local_stream(&self, info: &StreamInfo) {
        let mut inner = self.inner.lock();
        inner.observers.bind_local_stream(info);
        inner.reporter.bind(info);
    }

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }

    /// Encrypts one RTP packet and queues it for the viewer. Dropped (Ok) before the
    /// connection is up.
    pub fn send_rtp(&self, mut packet: rtc::rtp::Packet) -> Result<(), Closed> {
        if self.state.borrow().is_terminal() {
            return Err(Closed);
        }
        let mut inner = self.inner.lock();
        let now = Instant::now();
        if let Some(twcc) = inner.twcc.as_mut() {
            twcc.stamp(&mut packet, now);
        }
        inner.reporter.on_rtp(packet.header.ssrc, packet.payload.len(), now);
        let Ok(plain) = packet.marshal() else { return Ok(()) };
        let protected = inner.transport.as_mut().map(|transport| transport.protect_rtp(&plain));
        match protected {
            Some(Ok(Some((path, datagram)))) => self.send(&mut inner, path, &datagram, now),
            Some(Err(error)) => tracing::debug!(%error, "RTP not sent"),
            _ => {}
        }
        Ok(())
    }

    pub fn close(&self) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if let Some(mut transport) = inner.transport.take() {
            transport.close(now);
            self.flush(&mut inner, &mut transport, now);
        }
        if let Some(gatherer) = inner.gatherer.as_mut() {
            gatherer.close(now);
        }
        self.flush_gatherer(&mut inner);
        drop(inner);
        self.state.send_replace(ConnectionState::Closed);
        self.closing.notify_one();
    }

    /// Sends one datagram to the viewer on `path`: from the socket, or through a relay.
    fn send(&self, inner: &mut Inner, path: IcePath, datagram: &[u8], now: Instant) {
        match (path.via_relay, inner.gatherer.as_mut()) {
            (Some(relay), Some(gatherer)) => {
                gatherer.send_via(relay, path.remote, datagram, now);
                self.flush_gatherer(inner);
            }
            _ => self.socket.send(path.remote, datagram),
        }
    }

    /// What the transport has to send.
    fn flush(&self, inner: &mut Inner, transport: &mut ViewerTransport, now: Instant) {
        while let Some((path, datagram)) = transport.poll_transmit() {
            self.send(inner, path, &datagram, now);
        }
    }

    /// What the gatherer has for its servers.
    fn flush_gatherer(&self, inner: &mut Inner) {
        let Some(gatherer) = inner.gatherer.as_mut() else { return };
        while let Some((server, datagram)) = gatherer.poll_transmit() {
            self.socket.send(server, &datagram);
        }
        if gatherer.is_done() {
            self.gathering_done.send_if_modified(|done| !std::mem::replace(done, true));
        }
    }

    async fn drive(self: Arc<Self>) {
        self.flush_gatherer(&mut self.inner.lock());
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                datagram = self.socket.recv() => match datagram {
                    Some(datagram) => {
                        let local = SocketAddr::new(datagram.local_ip, self.socket.label().port());
                        self.on_datagram(&datagram.data, datagram.from, local, Instant::now());
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(reason) = self.on_timeout(Instant::now()) {
                        tracing::info!(ufrag = %self.local.ufrag, "viewer connection failed: {reason}");
                        self.state.send_replace(ConnectionState::Failed);
                        break;
                    }
                }
                // The timers changed (full ICE started): the deadline is computed again.
                _ = self.timers_changed.notified() => {}
                _ = self.closing.notified() => break,
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut inner = self.inner.lock();
        let liveness = match inner.transport.as_ref().and_then(ViewerTransport::last_heard) {
            Some(last) => last + CONSENT_TIMEOUT,
            None => self.created + CONNECT_TIMEOUT,
        };
        let transport = inner.transport.as_mut().and_then(ViewerTransport::poll_timeout);
        let gatherer = inner.gatherer.as_mut().and_then(Gatherer::poll_timeout);
        [transport, gatherer, inner.reporter.next_report(), inner.estimator.poll_timeout()].into_iter().flatten().fold(liveness, Instant::min)
    }

    /// Handles due timers; says why the connection failed, if it did.
    fn on_timeout(&self, now: Instant) -> Option<Failure> {
        let mut inner = self.inner.lock();
        if inner.estimator.poll_timeout().is_some_and(|due| due <= now) {
            inner.estimator.handle_timeout(now);
        }
        if let Some(gatherer) = inner.gatherer.as_mut() {
            let relayed = gatherer.handle_timeout(now);
            self.flush_gatherer(&mut inner);
            for datagram in relayed {
                self.on_relayed(&mut inner, datagram, now);
            }
        }
        let Some(mut transport) = inner.transport.take() else {
            return (now >= self.created + CONNECT_TIMEOUT).then_some(Failure::NoDescription);
        };
        let result = transport.on_timeout(now);
        self.flush(&mut inner, &mut transport, now);
        let reports: Vec<Box<dyn rtc::rtcp::packet::Packet>> = inner.reporter.due(now).into_iter().map(|report| Box::new(report) as _).collect();
        if !reports.is_empty() {
            match rtc::rtcp::packet::marshal(&reports).map(|plain| transport.protect_rtcp(&plain)) {
                Ok(Ok(Some((path, protected)))) => self.send(&mut inner, path, &protected, now),
                Ok(Ok(None)) => {}
                Ok(Err(error)) => tracing::debug!(%error, "sender reports not sent"),
                Err(error) => tracing::debug!(%error, "sender reports not sent"),
            }
        }
        let last_heard = transport.last_heard();
        inner.transport = Some(transport);
        if let Err(error) = result {
            return Some(error.into());
        }
        match last_heard {
            Some(last) if now >= last + CONSENT_TIMEOUT => Some(Failure::Silent),
            None if now >= self.created + CONNECT_TIMEOUT => Some(Failure::NoCheck),
            _ => None,
        }
    }

    /// A datagram that reached the socket at `local`: from one of the ICE servers (an answer,
    /// or data relayed from the viewer), or from the viewer directly.
    fn on_datagram(&self, datagram: &[u8], from: SocketAddr, local: SocketAddr, now: Instant) {
        let mut inner = self.inner.lock();
        if let Some(gatherer) = inner.gatherer.as_mut().filter(|gatherer| gatherer.is_server(from)) {
            let relayed = gatherer.on_server_datagram(datagram, from, now);
            self.flush_gatherer(&mut inner);
            for datagram in relayed {
                self.on_relayed(&mut inner, datagram, now);
            }
            return;
        }
        self.on_viewer_datagram(&mut inner, datagram, IcePath::direct(from), local, now);
    }

    fn on_relayed(&self, inner: &mut Inner, relayed: Relayed, now: Instant) {
        let path = IcePath { remote: relayed.peer, via_relay: Some(relayed.relay) };
        self.on_viewer_datagram(inner, &relayed.data, path, relayed.relay, now);
    }

    fn on_viewer_datagram(&self, inner: &mut Inner, datagram: &[u8], path: IcePath, local: SocketAddr, now: Instant) {
        let Some(mut transport) = inner.transport.take() else { return };
        let event = transport.on_datagram(datagram, path, local, now);
        self.flush(inner, &mut transport, now);
        match event {
            Ok(None) => {}
            Ok(Some(TransportEvent::Connected)) => {
                tracing::debug!(ufrag = %self.local.ufrag, %path, "viewer connected (DTLS done) after {} ms", self.created.elapsed().as_millis());
                self.state.send_replace(ConnectionState::Connected);
            }
            Ok(Some(TransportEvent::Closed)) => {
                self.state.send_replace(ConnectionState::Closed);
                self.closing.notify_one();
            }
            Ok(Some(TransportEvent::Rtcp(rtcp))) => {
                if let Some(packets) = unmarshal_rtcp(rtcp) {
                    if let Some(twcc) = inner.twcc.as_ref() {
                        for feedback in packets.iter().filter_map(|packet| packet.as_any().downcast_ref::<TransportLayerCc>()) {
                            let reports = twcc.on_feedback(feedback);
                            if !reports.is_empty() {
                                inner.estimator.on_reports(now, &reports);
                            }
                        }
                    }
                    for reply in observe_rtcp(&packets, inner.observers.as_mut(), now) {
                        if let Ok(Some((to, protected))) = transport.protect_rtp(&reply) {
                            self.send(inner, to, &protected, now);
                        }
                    }
                }
            }
            // Garbage and strangers' datagrams concern nobody else; the log says what they were.
            Err(error) => tracing::debug!(ufrag = %self.local.ufrag, %path, %error, "datagram refused"),
        }
        inner.transport = Some(transport);
    }
}

fn unmarshal_rtcp(mut rtcp: BytesMut) -> Option<Vec<Box<dyn rtc::rtcp::packet::Packet>>> {
    rtc::rtcp::packet::unmarshal(&mut rtcp).map_err(|error| tracing::debug!(%error, "malformed RTCP from a viewer")).ok()
}

/// Shows each packet of a compound RTCP packet to the observers; returns the RTP they answer
/// with (retransmissions), marshalled.
fn observe_rtcp(packets: &[Box<dyn rtc::rtcp::packet::Packet>], observers: &mut dyn RtcpObserver, now: Instant) -> Vec<BytesMut> {
    let mut replies: VecDeque<TaggedPacket> = VecDeque::new();
    for packet in packets {
        observers.observe(packet.as_ref(), now, &mut replies);
    }
    replies
        .into_iter()
        .filter_map(|reply| match reply.message.packet {
            Packet::Rtp(rtp) => rtp.marshal().ok(),
            _ => None,
        })
        .collect()
}
