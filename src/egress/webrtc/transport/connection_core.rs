//! What a viewer's connection decides, without I/O: datagrams, RTP to send and the time go in;
//! datagrams for the media port, what changed, and when to be called next come out. It holds
//! the viewer's transport (ICE, DTLS, SRTP), the observers of its RTCP (NACKs answered with
//! retransmissions, keyframe requests, receiver reports), the sender reports, transport-wide
//! sequence numbers and the link estimate they feed, and the gatherer of Lookout's own
//! candidates. `Connection` drives it with a socket and a task; the tests drive it in
//! simulated time over a link that loses and delays.

use crate::egress::webrtc::rtcp::link_quality::PublishedGcc;
use crate::egress::webrtc::rtcp::observer::RtcpObserver;
use crate::egress::webrtc::rtcp::sender_reports::SenderReporter;
use crate::egress::webrtc::rtcp::twcc::TwccSender;
use crate::egress::webrtc::rtp::playout_delay::PlayoutDelayStamp;
use crate::egress::webrtc::transport::ice::gatherer::{Gatherer, Relayed};
use crate::egress::webrtc::transport::ice::path::IcePath;
use crate::egress::webrtc::transport::viewer_transport::{TransportError, TransportEvent, ViewerTransport};
use bytes::BytesMut;
use rtc::interceptor::{BandwidthEstimator, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A viewer that has not connected by then will not.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connected viewer that sends neither connectivity checks (browsers refresh consent every
/// few seconds, RFC 7675) nor RTCP for this long is gone.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a viewer's connection failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no description from the viewer within {} s", CONNECT_TIMEOUT.as_secs())]
    NoDescription,
    #[error("no connectivity check arrived within {} s", CONNECT_TIMEOUT.as_secs())]
    NoCheck,
    #[error("nothing from the viewer (checks, RTCP) for {} s", CONSENT_TIMEOUT.as_secs())]
    Silent,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// What changed, for the driver to tell.
#[derive(Debug, PartialEq)]
pub enum ConnectionEvent {
    /// The handshake completed: media can flow.
    Connected,
    /// The viewer closed the connection.
    Closed,
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

pub struct ConnectionCore {
    /// Made when the viewer's description arrives.
    transport: Option<ViewerTransport>,
    observers: Observers,
    reporter: SenderReporter,
    /// When the viewer agreed to transport-wide feedback: what was sent, for its reports.
    twcc: Option<TwccSender>,
    playout_delay: Option<PlayoutDelayStamp>,
    estimator: PublishedGcc,
    gatherer: Option<Gatherer>,
    created: Instant,
    /// Datagrams for the media port's socket, to the viewer or to an ICE server.
    outbox: VecDeque<(SocketAddr, BytesMut)>,
    events: VecDeque<ConnectionEvent>,
    refusals: Refusals,
}

/// The viewer's datagrams the transport refused: how many, and the first, for the log of a
/// connection that ends without coming up.
#[derive(Default)]
pub struct Refusals {
    pub count: u64,
    pub first: Option<(IcePath, TransportError)>,
}

impl ConnectionCore {
    pub fn new(feedback: ConnectionFeedback, gatherer: Option<Gatherer>, now: Instant) -> Self {
        let ConnectionFeedback { observers, reporter, estimator } = feedback;
        let mut core = Self { transport: None, observers, reporter, twcc: None, playout_delay: None, estimator, gatherer, created: now, outbox: VecDeque::new(), events: VecDeque::new(), refusals: Refusals::default() };
        core.collect_gatherer();
        core
    }

    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    pub fn gatherer(&self) -> Option<&Gatherer> {
        self.gatherer.as_ref()
    }

    /// The viewer's transport, made from its description.
    pub fn set_transport(&mut self, transport: ViewerTransport) {
        self.transport = Some(transport);
    }

    /// A candidate the viewer trickled.
    pub fn add_remote_candidate(&mut self, line: &str) {
        if let Some(transport) = self.transport.as_mut() {
            transport.add_remote_candidate(line);
        }
    }

    /// Stamps transport-wide sequence numbers with header extension `extension_id` from now on.
    pub fn enable_twcc(&mut self, extension_id: u8) {
        self.twcc = Some(TwccSender::new(extension_id));
    }

    /// Puts the playout-delay limits on the video's packets from now on.
    pub fn enable_playout_delay(&mut self, stamp: PlayoutDelayStamp) {
        self.playout_delay = Some(stamp);
    }

    /// A stream this connection sends, for the observers (its SSRCs, for NACKs) and the sender
    /// reports.
    pub fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.observers.bind_local_stream(info);
        self.reporter.bind(info);
    }

    /// Encrypts one RTP packet for the viewer, leaving at `now`, at the end of `out` (the send
    /// queue's buffer), and says where it goes from the socket. `None` (and `out` as it was)
    /// before the connection is up, and for a viewer reached through a relay: the packet then
    /// went to the relay's outbox.
    pub fn write_rtp(&mut self, mut packet: rtc::rtp::Packet, now: Instant, out: &mut Vec<u8>) -> Option<SocketAddr> {
        if let Some(playout_delay) = self.playout_delay.as_ref() {
            playout_delay.stamp(&mut packet);
        }
        if let Some(twcc) = self.twcc.as_mut() {
            twcc.stamp(&mut packet, now);
        }
        self.reporter.on_rtp(packet.header.ssrc, packet.payload.len(), now);
        let start = out.len();
        let path = match self.transport.as_mut()?.write_rtp(&packet, out) {
            Ok(path) => path?,
            Err(error) => {
                tracing::debug!(%error, "RTP not sent");
                return None;
            }
        };
        if path.via_relay.is_none() {
            return Some(path.remote);
        }
        let datagram = BytesMut::from(&out[start..]);
        out.truncate(start);
        self.send(path, datagram, now);
        None
    }

    pub fn close(&mut self, now: Instant) {
        if let Some(mut transport) = self.transport.take() {
            transport.close(now);
            self.collect_transport(&mut transport, now);
        }
        if let Some(gatherer) = self.gatherer.as_mut() {
            gatherer.close(now);
        }
        self.collect_gatherer();
    }

    /// A datagram that reached the media port's socket at `local`: from one of the ICE servers
    /// (an answer, or data relayed from the viewer), or from the viewer directly. Refusals go
    /// to the log: garbage and strangers' datagrams concern nobody else.
    pub fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr, local: SocketAddr, now: Instant) {
        if let Some(gatherer) = self.gatherer.as_mut().filter(|gatherer| gatherer.is_server(from)) {
            let relayed = gatherer.on_server_datagram(datagram, from, now);
            self.collect_gatherer();
            for datagram in relayed {
                self.on_relayed(datagram, now);
            }
            return;
        }
        self.on_viewer_datagram(datagram, IcePath::direct(from), local, now);
    }

    /// When `handle_timeout` has work next.
    pub fn poll_timeout(&mut self) -> Instant {
        let liveness = match self.transport.as_ref().and_then(ViewerTransport::last_heard) {
            Some(last) => last + CONSENT_TIMEOUT,
            None => self.created + CONNECT_TIMEOUT,
        };
        let transport = self.transport.as_mut().and_then(ViewerTransport::poll_timeout);
        let gatherer = self.gatherer.as_mut().and_then(Gatherer::poll_timeout);
        [transport, gatherer, self.reporter.next_report(), self.estimator.poll_timeout()].into_iter().flatten().fold(liveness, Instant::min)
    }

    /// Handles due timers; says why the connection failed, if it did.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Failure> {
        if self.estimator.poll_timeout().is_some_and(|due| due <= now) {
            self.estimator.handle_timeout(now);
        }
        if let Some(gatherer) = self.gatherer.as_mut() {
            let relayed = gatherer.handle_timeout(now);
            self.collect_gatherer();
            for datagram in relayed {
                self.on_relayed(datagram, now);
            }
        }
        let Some(mut transport) = self.transport.take() else {
            return if now >= self.created + CONNECT_TIMEOUT { Err(Failure::NoDescription) } else { Ok(()) };
        };
        let result = transport.on_timeout(now);
        self.collect_transport(&mut transport, now);
        self.send_sender_reports(&mut transport, now);
        let last_heard = transport.last_heard();
        self.transport = Some(transport);
        result?;
        match last_heard {
            Some(last) if now >= last + CONSENT_TIMEOUT => Err(Failure::Silent),
            None if now >= self.created + CONNECT_TIMEOUT => Err(Failure::NoCheck),
            _ => Ok(()),
        }
    }

    /// The next datagram for the media port's socket.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.outbox.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.events.pop_front()
    }

    fn send_sender_reports(&mut self, transport: &mut ViewerTransport, now: Instant) {
        let reports: Vec<Box<dyn rtc::rtcp::packet::Packet>> = self.reporter.due(now).into_iter().map(|report| Box::new(report) as _).collect();
        if reports.is_empty() {
            return;
        }
        match rtc::rtcp::packet::marshal(&reports).map(|plain| transport.protect_rtcp(&plain)) {
            Ok(Ok(Some((path, protected)))) => self.send(path, protected, now),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::debug!(%error, "sender reports not sent"),
            Err(error) => tracing::debug!(%error, "sender reports not sent"),
        }
    }

    /// Sends one datagram to the viewer on `path`: from the socket, or through a relay.
    fn send(&mut self, path: IcePath, datagram: BytesMut, now: Instant) {
        match (path.via_relay, self.gatherer.as_mut()) {
            (Some(relay), Some(gatherer)) => {
                gatherer.send_via(relay, path.remote, &datagram, now);
                self.collect_gatherer();
            }
            _ => self.outbox.push_back((path.remote, datagram)),
        }
    }

    /// What the transport has to send.
    fn collect_transport(&mut self, transport: &mut ViewerTransport, now: Instant) {
        while let Some((path, datagram)) = transport.poll_transmit() {
            self.send(path, datagram, now);
        }
    }

    /// What the gatherer has for its servers.
    fn collect_gatherer(&mut self) {
        let Some(gatherer) = self.gatherer.as_mut() else { return };
        while let Some(datagram) = gatherer.poll_transmit() {
            self.outbox.push_back(datagram);
        }
    }

    fn on_relayed(&mut self, relayed: Relayed, now: Instant) {
        let path = IcePath { remote: relayed.peer, via_relay: Some(relayed.relay) };
        self.on_viewer_datagram(&relayed.data, path, relayed.relay, now);
    }

    fn on_viewer_datagram(&mut self, datagram: &[u8], path: IcePath, local: SocketAddr, now: Instant) {
        let Some(mut transport) = self.transport.take() else { return };
        let event = transport.on_datagram(datagram, path, local, now);
        self.collect_transport(&mut transport, now);
        match event {
            Ok(None) => {}
            Ok(Some(TransportEvent::Connected)) => self.events.push_back(ConnectionEvent::Connected),
            Ok(Some(TransportEvent::Closed)) => self.events.push_back(ConnectionEvent::Closed),
            Ok(Some(TransportEvent::Rtcp(rtcp))) => self.on_rtcp(&mut transport, rtcp, now),
            Err(error) => {
                tracing::debug!(%path, %error, "datagram refused");
                self.refusals.count += 1;
                self.refusals.first.get_or_insert((path, error));
            }
        }
        self.transport = Some(transport);
    }

    /// The viewer's decrypted RTCP: transport-wide feedback to the estimator, every packet to
    /// the observers, and their answers (retransmissions) to the viewer.
    fn on_rtcp(&mut self, transport: &mut ViewerTransport, mut rtcp: BytesMut, now: Instant) {
        let packets = match rtc::rtcp::packet::unmarshal(&mut rtcp) {
            Ok(packets) => packets,
            Err(error) => return tracing::debug!(%error, "malformed RTCP from a viewer"),
        };
        if let Some(twcc) = self.twcc.as_ref() {
            for feedback in packets.iter().filter_map(|packet| packet.as_any().downcast_ref::<TransportLayerCc>()) {
                let reports = twcc.on_feedback(feedback);
                if !reports.is_empty() {
                    self.estimator.on_reports(now, &reports);
                }
            }
        }
        let mut replies: VecDeque<TaggedPacket> = VecDeque::new();
        for packet in &packets {
            self.observers.observe(packet.as_ref(), now, &mut replies);
        }
        for reply in replies {
            let Packet::Rtp(rtp) = reply.message.packet else { continue };
            let mut protected = Vec::new();
            match transport.write_rtp(&rtp, &mut protected) {
                Ok(Some(path)) => self.send(path, BytesMut::from(&protected[..]), now),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "retransmission not sent"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::shared::marshal::Marshal;
    use crate::egress::webrtc::rtcp::link_quality::LinkQuality;
    use crate::egress::webrtc::rtcp::retransmitter::{NackStats, Retransmitter};
    use crate::egress::webrtc::rtcp::sender_reports::ClockReference;
    use crate::egress::webrtc::rtp::header::RtpHeaderState;
    use crate::egress::webrtc::rtp::sent_frames::{RtpStreamId, SentFrames};
    use crate::egress::webrtc::transport::dtls_srtp::{DtlsRole, Identity};
    use crate::egress::webrtc::transport::simulated_viewer::{check, server_addr, viewer_addr, SimulatedViewer, SERVER_PASSWORD, SERVER_UFRAG, VIEWER_UFRAG};
    use crate::media::{Frame, VideoParameters};
    use bytes::Bytes;
    use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
    use rtc::rtcp::sender_report::SenderReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
    use rtc::srtp::context::Context;
    use std::collections::HashSet;
    use std::sync::Arc;

    const VIDEO: RtpStreamId = RtpStreamId { ssrc: 0x1234, payload_type: 102 };
    const STEP: Duration = Duration::from_millis(5);
    const FRAME_INTERVAL: Duration = Duration::from_millis(33);
    /// How often the viewer repeats its checks: until answered, then as consent freshness.
    const CHECK_EVERY: Duration = Duration::from_millis(200);
    const CONSENT_EVERY: Duration = Duration::from_millis(2500);
    const NACK_EVERY: Duration = Duration::from_millis(100);

    /// One direction of the link: each datagram arrives `delay` after it left, but every
    /// `lose_every`-th is lost (0: none).
    struct Wire {
        delay: Duration,
        lose_every: usize,
        sent: usize,
        in_flight: VecDeque<(Instant, BytesMut)>,
    }

    impl Wire {
        fn new(delay: Duration, lose_every: usize) -> Self {
            Self { delay, lose_every, sent: 0, in_flight: VecDeque::new() }
        }

        fn send(&mut self, datagram: BytesMut, now: Instant) {
            self.sent += 1;
            if self.lose_every > 0 && self.sent.is_multiple_of(self.lose_every) {
                return;
            }
            self.in_flight.push_back((now + self.delay, datagram));
        }

        fn arrived(&mut self, now: Instant) -> Vec<BytesMut> {
            let mut arrived = Vec::new();
            while self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
                arrived.extend(self.in_flight.pop_front().map(|(_, datagram)| datagram));
            }
            arrived
        }
    }

    /// The viewer's side: checks, DTLS as the client, then SRTP; what it received.
    struct Viewer {
        side: SimulatedViewer,
        answered: bool,
        next_check: Instant,
        srtp: Option<(Context, Context)>,
        received: HashSet<u16>,
        sender_reports: usize,
        next_nack: Instant,
        /// Whether it still sends anything (checks, RTCP).
        active: bool,
    }

    impl Viewer {
        fn new(now: Instant) -> Self {
            Self { side: SimulatedViewer::new(DtlsRole::Server), answered: false, next_check: now, srtp: None, received: HashSet::new(), sender_reports: 0, next_nack: now, active: true }
        }

        fn on_datagram(&mut self, datagram: BytesMut, now: Instant) {
            match datagram.first() {
                Some(0..=3) => {
                    if !self.answered {
                        self.answered = true;
                        self.side.connect_dtls(now);
                    }
                }
                Some(20..=63) => {
                    // A flight that lost records is read in part; DTLS resends what is missing.
                    let _ = self.side.dtls.read(now, server_addr(), None, datagram);
                    let ready = self.side.dtls.get_connection_state(server_addr()).is_some_and(|state| state.srtp_protection_profile() != SrtpProtectionProfile::Unsupported);
                    if ready && self.srtp.is_none() {
                        self.srtp = Some(self.side.srtp());
                    }
                }
                Some(128..=191) => self.on_srtp(&datagram),
                _ => panic!("Lookout sent a datagram of no known kind"),
            }
        }

        fn on_srtp(&mut self, datagram: &[u8]) {
            let Some((_, inbound)) = self.srtp.as_mut() else { return };
            // RTCP's packet types take the place of RTP's marker and payload type (RFC 5761).
            if (192..=223).contains(&datagram[1]) {
                let mut plain = inbound.decrypt_rtcp(datagram).expect("the viewer decrypts Lookout's RTCP");
                let packets = rtc::rtcp::packet::unmarshal(&mut plain).expect("RTCP");
                self.sender_reports += packets.iter().filter(|packet| packet.as_any().is::<SenderReport>()).count();
            } else {
                let plain = inbound.decrypt_rtp(datagram).expect("the viewer decrypts Lookout's RTP");
                self.received.insert(u16::from_be_bytes([plain[2], plain[3]]));
            }
        }

        /// What the viewer sends at `now`: checks, DTLS, and NACKs for what it misses of `sent`.
        fn transmit(&mut self, sent: &[u16], now: Instant, up: &mut Wire) {
            if !self.active {
                return;
            }
            if now >= self.next_check {
                let crypto = self.side.identity.crypto.clone();
                up.send(BytesMut::from(&check(&format!("{SERVER_UFRAG}:{VIEWER_UFRAG}"), SERVER_PASSWORD, true, crypto.crypto())[..]), now);
                self.next_check = now + if self.srtp.is_some() { CONSENT_EVERY } else { CHECK_EVERY };
            }
            if self.side.dtls.poll_timeout(&server_addr()).is_some_and(|due| due <= now) {
                let _ = self.side.dtls.handle_timeout(server_addr(), now);
            }
            while let Some(record) = self.side.dtls.poll_transmit() {
                up.send(record.message, now);
            }
            if now >= self.next_nack {
                self.next_nack = now + NACK_EVERY;
                // Asks for what it misses before the newest packet it has: a gap is seen when
                // a later packet arrives.
                let missing = missing_before_newest(sent, &self.received);
                if let (false, Some((outbound, _))) = (missing.is_empty(), self.srtp.as_mut()) {
                    let nacks = missing.iter().map(|&packet_id| NackPair { packet_id, lost_packets: 0 }).collect();
                    let nack = TransportLayerNack { sender_ssrc: 1, media_ssrc: VIDEO.ssrc, nacks };
                    let plain = nack.marshal().expect("NACK");
                    up.send(outbound.encrypt_rtcp(&plain).expect("encrypt"), now);
                }
            }
        }
    }

    /// What `received` misses of `sent` (in send order) before the newest packet it holds.
    fn missing_before_newest(sent: &[u16], received: &HashSet<u16>) -> Vec<u16> {
        let newest = sent.iter().rposition(|sequence| received.contains(sequence)).unwrap_or(0);
        sent[..newest].iter().filter(|sequence| !received.contains(sequence)).copied().collect()
    }

    /// Lookout's core and a viewer over a link, in simulated time.
    struct Simulation {
        core: ConnectionCore,
        viewer: Viewer,
        up: Wire,
        down: Wire,
        now: Instant,
        connected: bool,
        failure: Option<Failure>,
        header: RtpHeaderState,
        sent_frames: Arc<SentFrames>,
        nack_stats: Arc<NackStats>,
        /// The sequence numbers Lookout sent, in order (they may wrap).
        sent: Vec<u16>,
    }

    impl Simulation {
        fn new(delay: Duration, lose_every: usize) -> Self {
            let now = Instant::now();
            let sent_frames = Arc::new(SentFrames::default());
            let nack_stats = Arc::new(NackStats::default());
            let feedback = ConnectionFeedback {
                observers: Box::new(Retransmitter::new(VIDEO.ssrc, sent_frames.clone(), nack_stats.clone())),
                reporter: SenderReporter::new(vec![(VIDEO.ssrc, sent_frames.clone() as Arc<dyn ClockReference>)]),
                estimator: PublishedGcc::new(Arc::new(LinkQuality::default())),
            };
            let mut core = ConnectionCore::new(feedback, None, now);
            let viewer = Viewer::new(now);
            let lookout = Identity::generate().expect("identity");
            core.set_transport(ViewerTransport::new(&lookout, SERVER_UFRAG, SERVER_PASSWORD, &viewer.side.remote_transport(), server_addr()).expect("transport"));
            core.bind_local_stream(&StreamInfo { ssrc: VIDEO.ssrc, payload_type: VIDEO.payload_type, mime_type: "video/H264".to_owned(), clock_rate: 90_000, ..Default::default() });
            Self {
                core,
                viewer,
                up: Wire::new(delay, lose_every),
                down: Wire::new(delay, lose_every),
                now,
                connected: false,
                failure: None,
                header: RtpHeaderState::new(VIDEO),
                sent_frames,
                nack_stats,
                sent: Vec::new(),
            }
        }

        /// Runs `duration` of simulated time; with `frames`, Lookout sends a frame every 33 ms
        /// once connected.
        fn run(&mut self, duration: Duration, frames: bool) {
            let end = self.now + duration;
            let mut next_frame = self.now;
            let mut timestamp = 0u64;
            while self.now < end && self.failure.is_none() {
                self.now += STEP;
                let now = self.now;
                if frames && self.connected && now >= next_frame {
                    next_frame = now + FRAME_INTERVAL;
                    timestamp += 3000;
                    let frame = frame(timestamp);
                    let packets: Vec<_> = self.header.packets(&frame, timestamp, &self.sent_frames).collect();
                    for packet in packets {
                        self.sent.push(packet.header.sequence_number);
                        let mut datagram = Vec::new();
                        if let Some(to) = self.core.write_rtp(packet, now, &mut datagram) {
                            assert_eq!(to, viewer_addr());
                            self.down.send(BytesMut::from(&datagram[..]), now);
                        }
                    }
                }
                self.viewer.transmit(&self.sent, now, &mut self.up);
                for datagram in self.up.arrived(now) {
                    self.core.handle_datagram(&datagram, viewer_addr(), server_addr(), now);
                }
                if self.core.poll_timeout() <= now {
                    self.failure = self.core.handle_timeout(now).err();
                }
                while let Some((to, datagram)) = self.core.poll_transmit() {
                    assert_eq!(to, viewer_addr());
                    self.down.send(datagram, now);
                }
                while let Some(event) = self.core.poll_event() {
                    self.connected |= event == ConnectionEvent::Connected;
                }
                for datagram in self.down.arrived(now) {
                    self.viewer.on_datagram(datagram, now);
                }
            }
        }

        /// Runs until both sides are connected, at most `limit`; returns how long it took.
        fn connect(&mut self, limit: Duration) -> Duration {
            let start = self.now;
            while !(self.connected && self.viewer.srtp.is_some()) && self.now < start + limit {
                self.run(STEP, false);
            }
            assert!(self.connected && self.viewer.srtp.is_some(), "connected within {limit:?} (failure: {:?})", self.failure);
            self.now - start
        }
    }

    /// A frame of 3000 bytes: three packets.
    fn frame(timestamp: u64) -> Arc<Frame> {
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        let mut data = 3000u32.to_be_bytes().to_vec();
        data.push(0x41);
        data.resize(4 + 3000, 0xAB);
        Arc::new(Frame::new(timestamp, false, Bytes::from(data), parameters))
    }

    #[test]
    fn over_a_link_that_loses_a_quarter_and_delays_40_ms_it_connects_reports_and_resends_what_was_lost() {
        let mut simulation = Simulation::new(Duration::from_millis(40), 4);
        let took = simulation.connect(Duration::from_secs(10));
        simulation.run(Duration::from_secs(3), true);
        simulation.run(Duration::from_secs(1), false);
        let viewer = &simulation.viewer;
        let missing = missing_before_newest(&simulation.sent, &viewer.received);
        let resent = simulation.nack_stats.snapshot().packets_resent;
        assert!(simulation.sent.len() > 250, "three seconds of frames: {}", simulation.sent.len());
        assert!(missing.is_empty(), "every packet before the last one received arrived in the end, {resent} of them resent; missing: {missing:?}");
        assert!(resent as usize >= simulation.sent.len() / 5, "about a quarter was lost and resent: {resent} of {}", simulation.sent.len());
        assert!(viewer.sender_reports >= 2, "sender reports about every second, some lost: {}", viewer.sender_reports);
        assert!(simulation.failure.is_none(), "{:?}", simulation.failure);
        eprintln!("connected after {took:?}; {} packets, {resent} resent, {} sender reports", simulation.sent.len(), viewer.sender_reports);
    }

    #[test]
    fn a_viewer_that_goes_silent_fails_after_the_consent_timeout_and_not_before() {
        let mut simulation = Simulation::new(Duration::from_millis(20), 0);
        simulation.connect(Duration::from_secs(2));
        simulation.run(Duration::from_secs(5), true);
        assert!(simulation.failure.is_none());
        simulation.viewer.active = false;
        let silent_from = simulation.now;
        simulation.run(CONSENT_TIMEOUT - Duration::from_secs(3), true);
        assert!(simulation.failure.is_none(), "still within its consent: {:?}", simulation.failure);
        simulation.run(Duration::from_secs(5), true);
        assert!(matches!(simulation.failure, Some(Failure::Silent)), "{:?}", simulation.failure);
        let failed_after = simulation.now - silent_from;
        assert!(failed_after <= CONSENT_TIMEOUT + Duration::from_millis(50), "failed {failed_after:?} after the viewer's last word");
    }

    #[test]
    fn refused_datagrams_are_counted_and_the_first_is_kept_for_the_log() {
        let mut simulation = Simulation::new(Duration::from_millis(20), 0);
        let now = simulation.now;
        simulation.viewer.side.connect_dtls(now);
        let hello = simulation.viewer.side.dtls.poll_transmit().expect("a ClientHello");
        simulation.core.handle_datagram(&hello.message, viewer_addr(), server_addr(), now);
        simulation.core.handle_datagram(b"\x16garbage", viewer_addr(), server_addr(), now);
        let refusals = simulation.core.refusals();
        assert_eq!(refusals.count, 2);
        assert!(matches!(refusals.first, Some((_, TransportError::UncheckedAddress(_)))), "DTLS before any check");
    }

    #[test]
    fn a_viewer_that_never_describes_itself_or_never_checks_fails_after_the_connect_timeout() {
        let start = Instant::now();
        let feedback = || ConnectionFeedback {
            observers: Box::new(Retransmitter::new(VIDEO.ssrc, Arc::new(SentFrames::default()), Arc::new(NackStats::default()))),
            reporter: SenderReporter::new(Vec::new()),
            estimator: PublishedGcc::new(Arc::new(LinkQuality::default())),
        };
        let mut undescribed = ConnectionCore::new(feedback(), None, start);
        assert_eq!(undescribed.poll_timeout(), start + CONNECT_TIMEOUT);
        assert!(undescribed.handle_timeout(start + CONNECT_TIMEOUT - STEP).is_ok());
        assert!(matches!(undescribed.handle_timeout(start + CONNECT_TIMEOUT), Err(Failure::NoDescription)));

        let mut unchecked = Simulation::new(Duration::from_millis(20), 0);
        unchecked.viewer.active = false;
        unchecked.run(CONNECT_TIMEOUT - Duration::from_secs(1), false);
        assert!(unchecked.failure.is_none());
        unchecked.run(Duration::from_secs(2), false);
        assert!(matches!(unchecked.failure, Some(Failure::NoCheck)), "{:?}", unchecked.failure);
    }
}
