//! A viewer's connection on Lookout's own endpoint. A task drives its transport: the datagrams
//! the shared port routes to it (checks, DTLS, the viewer's RTCP) and its timers. Media does not
//! pass through that task: a forwarder encrypts its RTP in its own task and queues it on the
//! shared socket's batched sends, one lock and no hop per packet.

use super::dtls_srtp::Identity;
use super::transport::{RemoteTransport, Transport, TransportError, TransportEvent};
use crate::egress::webrtc::mux::SessionSocket;
use crate::egress::webrtc::rtcp_tap::RtcpObserver;
use crate::egress::webrtc::sender_reports::SenderReporter;
use crate::egress::webrtc::link_quality::PublishedGcc;
use super::twcc::TwccSender;
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
use webrtc::peer_connection::RTCPeerConnectionState;

/// A viewer that has not connected by then will not.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connected viewer that sends neither connectivity checks (browsers refresh consent every
/// few seconds, RFC 7675) nor RTCP for this long is gone.
const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LocalCredentials {
    pub ufrag: String,
    pub password: String,
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

pub struct OwnConnection {
    inner: Mutex<Inner>,
    socket: SessionSocket,
    state: watch::Sender<RTCPeerConnectionState>,
    identity: Arc<Identity>,
    local: LocalCredentials,
    closing: Notify,
    created: Instant,
}

struct Inner {
    /// Made when the viewer's description arrives.
    transport: Option<Transport>,
    observers: Observers,
    reporter: SenderReporter,
    /// When the viewer agreed to transport-wide feedback: what was sent, for its reports.
    twcc: Option<TwccSender>,
    estimator: PublishedGcc,
}

#[derive(Debug, thiserror::Error)]
#[error("the viewer's connection is closed")]
pub struct Closed;

impl OwnConnection {
    pub fn new(identity: Arc<Identity>, local: LocalCredentials, socket: SessionSocket, feedback: ConnectionFeedback) -> Arc<Self> {
        let ConnectionFeedback { observers, reporter, estimator } = feedback;
        let connection = Arc::new(Self {
            inner: Mutex::new(Inner { transport: None, observers, reporter, twcc: None, estimator }),
            socket,
            state: watch::channel(RTCPeerConnectionState::New).0,
            identity,
            local,
            closing: Notify::new(),
            created: Instant::now(),
        });
        tokio::spawn(Arc::clone(&connection).drive());
        connection
    }

    /// The viewer's description arrived: checks and DTLS from it can be answered.
    pub fn set_remote(&self, remote: &RemoteTransport) -> Result<(), TransportError> {
        let transport = Transport::new(&self.identity, &self.local.ufrag, &self.local.password, remote, self.socket.label())?;
        self.inner.lock().transport = Some(transport);
        self.state.send_replace(RTCPeerConnectionState::Connecting);
        Ok(())
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

    pub fn state(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state.subscribe()
    }

    /// Encrypts one RTP packet and queues it for the viewer. Dropped (Ok) before the
    /// connection is up.
    pub fn send_rtp(&self, mut packet: rtc::rtp::Packet) -> Result<(), Closed> {
        if matches!(*self.state.borrow(), RTCPeerConnectionState::Closed | RTCPeerConnectionState::Failed) {
            return Err(Closed);
        }
        let protected = {
            let mut inner = self.inner.lock();
            let now = Instant::now();
            if let Some(twcc) = inner.twcc.as_mut() {
                twcc.stamp(&mut packet, now);
            }
            inner.reporter.on_rtp(packet.header.ssrc, packet.payload.len(), now);
            let Ok(plain) = packet.marshal() else { return Ok(()) };
            inner.transport.as_mut().map(|transport| transport.protect_rtp(&plain))
        };
        match protected {
            Some(Ok(Some((to, datagram)))) => self.socket.send(to, &datagram),
            Some(Err(error)) => tracing::debug!(%error, "RTP not sent"),
            _ => {}
        }
        Ok(())
    }

    pub fn close(&self) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if let Some(transport) = inner.transport.as_mut() {
            transport.close(now);
            self.flush(transport);
        }
        drop(inner);
        self.state.send_replace(RTCPeerConnectionState::Closed);
        self.closing.notify_one();
    }

    fn flush(&self, transport: &mut Transport) {
        while let Some((to, datagram)) = transport.poll_transmit() {
            self.socket.send(to, &datagram);
        }
    }

    async fn drive(self: Arc<Self>) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                datagram = self.socket.recv() => match datagram {
                    Some(datagram) => self.on_datagram(&datagram.data, datagram.from, Instant::now()),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(reason) = self.on_timeout(Instant::now()) {
                        tracing::info!(ufrag = %self.local.ufrag, "viewer connection failed: {reason}");
                        self.state.send_replace(RTCPeerConnectionState::Failed);
                        break;
                    }
                }
                _ = self.closing.notified() => break,
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let inner = self.inner.lock();
        let liveness = match inner.transport.as_ref().and_then(Transport::last_heard) {
            Some(last) => last + CONSENT_TIMEOUT,
            None => self.created + CONNECT_TIMEOUT,
        };
        [inner.transport.as_ref().and_then(Transport::poll_timeout), inner.reporter.next_report(), inner.estimator.poll_timeout()]
            .into_iter()
            .flatten()
            .fold(liveness, Instant::min)
    }

    /// Handles due timers; says why the connection failed, if it did.
    fn on_timeout(&self, now: Instant) -> Option<String> {
        let mut inner = self.inner.lock();
        let Inner { transport, reporter, estimator, .. } = &mut *inner;
        if estimator.poll_timeout().is_some_and(|due| due <= now) {
            estimator.handle_timeout(now);
        }
        let Some(transport) = transport.as_mut() else {
            return (now >= self.created + CONNECT_TIMEOUT).then(|| "no description from the viewer".to_owned());
        };
        if let Err(error) = transport.on_timeout(now) {
            return Some(error.to_string());
        }
        self.flush(transport);
        let reports: Vec<Box<dyn rtc::rtcp::packet::Packet>> = reporter.due(now).into_iter().map(|report| Box::new(report) as _).collect();
        if !reports.is_empty() {
            match rtc::rtcp::packet::marshal(&reports).map(|plain| transport.protect_rtcp(&plain)) {
                Ok(Ok(Some((to, protected)))) => self.socket.send(to, &protected),
                Ok(Ok(None)) => {}
                Ok(Err(error)) => tracing::debug!(%error, "sender reports not sent"),
                Err(error) => tracing::debug!(%error, "sender reports not sent"),
            }
        }
        match transport.last_heard() {
            Some(last) if now >= last + CONSENT_TIMEOUT => Some(format!("nothing from the viewer (checks, RTCP) for {} s", CONSENT_TIMEOUT.as_secs())),
            None if now >= self.created + CONNECT_TIMEOUT => Some("no connectivity check arrived".to_owned()),
            _ => None,
        }
    }

    fn on_datagram(&self, datagram: &[u8], from: SocketAddr, now: Instant) {
        let mut inner = self.inner.lock();
        let Inner { transport, observers, twcc, estimator, .. } = &mut *inner;
        let Some(transport) = transport.as_mut() else { return };
        let event = transport.on_datagram(datagram, from, now);
        self.flush(transport);
        match event {
            Ok(None) => {}
            Ok(Some(TransportEvent::Connected)) => {
                tracing::debug!(ufrag = %self.local.ufrag, "viewer connected (DTLS done) after {} ms", self.created.elapsed().as_millis());
                self.state.send_replace(RTCPeerConnectionState::Connected);
            }
            Ok(Some(TransportEvent::Closed)) => {
                self.state.send_replace(RTCPeerConnectionState::Closed);
                self.closing.notify_one();
            }
            Ok(Some(TransportEvent::Rtcp(rtcp))) => {
                let Some(packets) = unmarshal_rtcp(rtcp) else { return };
                if let Some(twcc) = twcc.as_ref() {
                    for feedback in packets.iter().filter_map(|packet| packet.as_any().downcast_ref::<TransportLayerCc>()) {
                        let reports = twcc.on_feedback(feedback);
                        if !reports.is_empty() {
                            estimator.on_reports(now, &reports);
                        }
                    }
                }
                for reply in observe_rtcp(&packets, observers.as_mut(), now) {
                    if let Ok(Some((to, protected))) = transport.protect_rtp(&reply) {
                        self.socket.send(to, &protected);
                    }
                }
            }
            // Garbage and strangers' datagrams concern nobody else; the log says what they were.
            Err(error) => tracing::debug!(ufrag = %self.local.ufrag, %from, %error, "datagram refused"),
        }
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
