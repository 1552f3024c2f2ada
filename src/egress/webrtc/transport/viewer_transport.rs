//! One viewer's transport, sans I/O: datagrams in, datagrams out, time passed in. It runs ICE
//! (lite: answering the viewer's checks; or full, when Lookout gathered candidates through its
//! own servers), the DTLS handshake, then encrypts Lookout's RTP and decrypts the viewer's
//! RTCP. Datagrams are told apart by their first byte (RFC 7983): STUN 0-3, DTLS 20-63,
//! SRTP/SRTCP 128-191.

use crate::egress::webrtc::transport::srtp_sender::SrtpSendError;
use crate::egress::webrtc::transport::dtls_srtp::{Dtls, DtlsError, DtlsProgress, DtlsRole, Identity, SrtpContexts};
use crate::egress::webrtc::transport::ice::full::FullIce;
use crate::egress::webrtc::transport::ice::lite::{CheckError, IceLite};
use crate::egress::webrtc::transport::ice::path::IcePath;
use bytes::BytesMut;
use rtc::crypto::RTCCryptoProvider;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
    #[error(transparent)]
    FullIce(#[from] crate::egress::webrtc::transport::ice::full::FullIceError),
    #[error("DTLS from {0}, an address no connectivity check came from")]
    UncheckedAddress(IcePath),
    #[error("a STUN message that is no valid part of the connectivity checks")]
    RefusedStun,
    #[error("undecryptable RTCP: {0}")]
    Srtcp(rtc::shared::error::Error),
    #[error("cannot encrypt: {0}")]
    Srtp(#[from] SrtpSendError),
}

/// What a datagram changed, for the session.
#[derive(Debug)]
pub enum TransportEvent {
    /// The handshake completed: media can flow.
    Connected,
    /// A decrypted compound RTCP packet from the viewer.
    Rtcp(BytesMut),
    /// The viewer closed the connection.
    Closed,
}

/// What the viewer's description told about its transport.
pub struct RemoteTransport {
    pub ufrag: String,
    pub password: String,
    /// `candidate:…` values from its description: full ICE checks them.
    pub candidates: Vec<String>,
    /// Its DTLS certificate's sha-256 fingerprint.
    pub fingerprint: String,
    /// Lookout's side of the DTLS handshake, as the descriptions agreed.
    pub dtls_role: DtlsRole,
}

/// ICE-lite (Lookout answers), or full ICE (Lookout checks too).
enum Ice {
    Lite(IceLite),
    Full(Box<FullIce>),
}

pub struct ViewerTransport {
    ice: Ice,
    dtls: Dtls,
    srtp: Option<SrtpContexts>,
    /// Where the viewer's DTLS last came from (or, as client, where Lookout began it): flights
    /// are retransmitted there, and media goes there until the viewer nominates a pair (a
    /// browser starts DTLS as soon as a check succeeds, often before it nominates).
    dtls_remote: Option<IcePath>,
    last_rtcp: Option<Instant>,
    crypto: Arc<dyn RTCCryptoProvider>,
    /// Paths that passed a connectivity check: the only ones DTLS is taken from.
    checked: Vec<IcePath>,
    /// STUN messages and DTLS records waiting to be sent.
    outbox: VecDeque<(IcePath, BytesMut)>,
}

/// A viewer gathers a few candidates; checks from more addresses than this are not remembered.
const MAX_CHECKED_ADDRESSES: usize = 8;

impl ViewerTransport {
    /// `local_addr`: the socket address the viewer reaches (for DTLS's bookkeeping only).
    pub fn new(identity: &Identity, local_ufrag: &str, local_password: &str, remote: &RemoteTransport, local_addr: SocketAddr) -> Result<Self, TransportError> {
        Ok(Self {
            ice: Ice::Lite(IceLite::new(local_ufrag, local_password, &remote.ufrag)),
            dtls: Dtls::new(identity, local_addr, &remote.fingerprint, remote.dtls_role)?,
            srtp: None,
            dtls_remote: None,
            last_rtcp: None,
            crypto: identity.crypto.clone(),
            checked: Vec::new(),
            outbox: VecDeque::new(),
        })
    }

    /// Runs full ICE instead of lite: Lookout gathered candidates through its own servers.
    pub fn with_full_ice(self, full: FullIce) -> Self {
        Self { ice: Ice::Full(Box::new(full)), ..self }
    }

    /// A candidate the viewer trickled; ICE-lite learns addresses from checks alone.
    pub fn add_remote_candidate(&mut self, line: &str) {
        if let Ice::Full(full) = &mut self.ice {
            full.add_remote_candidate(line);
        }
    }

    pub fn is_connected(&self) -> bool {
        self.srtp.is_some()
    }

    /// Where media goes: the nominated (or selected) path, or before one the path DTLS ran over.
    pub fn destination(&self) -> Option<IcePath> {
        let chosen = match &self.ice {
            Ice::Lite(lite) => lite.nominated().map(IcePath::direct),
            Ice::Full(full) => full.selected(),
        };
        chosen.or(self.dtls_remote)
    }

    /// When the viewer last proved it is there: a valid connectivity check, or RTCP that
    /// decrypted (browsers send receiver reports every second; not every client refreshes
    /// consent with checks).
    pub fn last_heard(&self) -> Option<Instant> {
        let checks = match &self.ice {
            Ice::Lite(lite) => lite.last_check(),
            Ice::Full(full) => full.last_heard(),
        };
        checks.max(self.last_rtcp)
    }

    /// A datagram from the viewer on `path`, which reached Lookout at `local` (the socket's
    /// address, or the relayed one).
    pub fn on_datagram(&mut self, datagram: &[u8], path: IcePath, local: SocketAddr, now: Instant) -> Result<Option<TransportEvent>, TransportError> {
        match datagram.first() {
            Some(0..=3) => {
                match &mut self.ice {
                    Ice::Lite(lite) => {
                        let answer = lite.on_check(datagram, path.remote, now, self.crypto.crypto())?;
                        self.outbox.push_back((path, BytesMut::from(&answer.response[..])));
                        self.remember_checked(path);
                        if answer.nominated {
                            // As DTLS client, Lookout starts the handshake towards the nominated address.
                            self.dtls_remote = Some(path);
                            self.dtls.start(now)?;
                            self.collect_dtls(path);
                        }
                    }
                    Ice::Full(full) => {
                        if !full.on_stun(datagram, path, local, now) {
                            return Err(TransportError::RefusedStun);
                        }
                        self.remember_checked(path);
                        self.collect_full_ice(now)?;
                    }
                }
                Ok(None)
            }
            Some(20..=63) => {
                if !self.checked.contains(&path) {
                    return Err(TransportError::UncheckedAddress(path));
                }
                self.dtls_remote = Some(path);
                let progress = self.dtls.on_datagram(datagram, now);
                self.collect_dtls(path);
                match progress? {
                    DtlsProgress::Handshaking => Ok(None),
                    DtlsProgress::Connected(contexts) => {
                        self.srtp = Some(*contexts);
                        Ok(Some(TransportEvent::Connected))
                    }
                    DtlsProgress::Closed => Ok(Some(TransportEvent::Closed)),
                }
            }
            Some(128..=191) => {
                let Some(srtp) = self.srtp.as_mut() else { return Ok(None) };
                // RTP from a viewer (Lookout negotiates send-only) is ignored; RTCP's packet
                // types are 192-223 in the second byte (RFC 5761 §4).
                if !matches!(datagram.get(1), Some(192..=223)) {
                    return Ok(None);
                }
                let rtcp = srtp.inbound.decrypt_rtcp(datagram).map_err(TransportError::Srtcp)?;
                self.last_rtcp = Some(now);
                Ok(Some(TransportEvent::Rtcp(rtcp)))
            }
            _ => Ok(None),
        }
    }

    fn remember_checked(&mut self, path: IcePath) {
        if !self.checked.contains(&path) && self.checked.len() < MAX_CHECKED_ADDRESSES {
            self.checked.push(path);
        }
    }

    /// Full ICE's checks to send, and the DTLS handshake started (as client) once it selected
    /// a pair.
    fn collect_full_ice(&mut self, now: Instant) -> Result<(), TransportError> {
        let Ice::Full(full) = &mut self.ice else { return Ok(()) };
        let selected = full.take_selection_change();
        let checks: Vec<(IcePath, BytesMut)> = std::iter::from_fn(|| full.poll_transmit()).collect();
        self.outbox.extend(checks);
        if let Some(path) = selected {
            self.remember_checked(path);
            self.dtls_remote = Some(path);
            self.dtls.start(now)?;
            self.collect_dtls(path);
        }
        Ok(())
    }

    /// Appends `packet`, encrypted, to `out` (the send queue's buffer: written once, where it
    /// leaves from), and says where it goes; nothing before the handshake is done.
    pub fn write_rtp(&mut self, packet: &rtc::rtp::Packet, out: &mut Vec<u8>) -> Result<Option<IcePath>, TransportError> {
        let (Some(to), Some(srtp)) = (self.destination(), self.srtp.as_mut()) else { return Ok(None) };
        srtp.outbound.write_rtp(packet, out)?;
        Ok(Some(to))
    }

    /// Encrypts a marshalled compound RTCP packet (sender reports).
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Option<(IcePath, BytesMut)>, TransportError> {
        let (Some(to), Some(srtp)) = (self.destination(), self.srtp.as_mut()) else { return Ok(None) };
        let protected = srtp.outbound.protect_rtcp(packet)?;
        Ok(Some((to, protected)))
    }

    /// The next STUN response or DTLS record to send.
    pub fn poll_transmit(&mut self) -> Option<(IcePath, BytesMut)> {
        self.outbox.pop_front()
    }

    /// When `on_timeout` is next due (a DTLS flight to retransmit, full ICE's next check).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let dtls = self.dtls.poll_timeout();
        let ice = match &mut self.ice {
            Ice::Lite(_) => None,
            Ice::Full(full) => full.poll_timeout(),
        };
        dtls.into_iter().chain(ice).min()
    }

    pub fn on_timeout(&mut self, now: Instant) -> Result<(), TransportError> {
        if let Ice::Full(full) = &mut self.ice {
            if full.poll_timeout().is_some_and(|due| due <= now) {
                full.handle_timeout(now);
                self.collect_full_ice(now)?;
            }
        }
        if let Some(path) = self.dtls_remote.filter(|_| self.dtls.poll_timeout().is_some_and(|due| due <= now)) {
            self.dtls.on_timeout(now)?;
            self.collect_dtls(path);
        }
        Ok(())
    }

    /// Says goodbye to the viewer (a DTLS close_notify).
    pub fn close(&mut self, now: Instant) {
        if let Some(path) = self.destination() {
            self.dtls.close(now);
            self.collect_dtls(path);
        }
    }

    fn collect_dtls(&mut self, path: IcePath) {
        while let Some(record) = self.dtls.poll_transmit() {
            self.outbox.push_back((path, record));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::webrtc::transport::simulated_viewer::{check, server_addr, viewer_addr, SimulatedViewer as Viewer, SERVER_PASSWORD, SERVER_UFRAG, VIEWER_UFRAG};
    use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
    use rtc::shared::marshal::Marshal;
    use rtc::stun::integrity::MessageIntegrity;
    use rtc::stun::message::{Getter, Message, BINDING_SUCCESS};
    use rtc::stun::xoraddr::XorMappedAddress;

    /// Runs checks and the handshake to the end; returns the viewer, connected, or the
    /// transport's refusal of the handshake.
    fn connected(transport: &mut ViewerTransport, viewer: Viewer, now: Instant) -> Result<Viewer, TransportError> {
        let mut viewer = viewer;
        let crypto = viewer.identity.crypto.clone();
        let request = check(&format!("{SERVER_UFRAG}:{VIEWER_UFRAG}"), SERVER_PASSWORD, true, crypto.crypto());
        assert!(transport.on_datagram(&request, IcePath::direct(viewer_addr()), server_addr(), now).expect("check").is_none());
        let (to, response) = transport.poll_transmit().expect("a response");
        // Lookout as DTLS client starts its handshake with the nomination: it follows the response.
        let mut lookout_hello: Vec<BytesMut> = std::iter::from_fn(|| transport.poll_transmit().map(|(_, record)| record)).collect();
        assert_eq!(to, IcePath::direct(viewer_addr()));
        let mut response_message = Message::new();
        response_message.unmarshal_binary(&response).expect("STUN");
        assert_eq!(response_message.typ, BINDING_SUCCESS);
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&response_message).expect("XOR-MAPPED-ADDRESS");
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), viewer_addr(), "tells the viewer where it was seen");
        MessageIntegrity::check(&mut response_message, SERVER_PASSWORD.as_bytes(), crypto.crypto()).expect("signed with our password");
        assert_eq!(transport.destination(), Some(IcePath::direct(viewer_addr())), "nominated");

        viewer.connect_dtls(now);
        for record in lookout_hello.drain(..) {
            viewer.dtls.read(now, server_addr(), None, record).expect("viewer reads the ClientHello");
        }
        let mut connected = false;
        for _ in 0..20 {
            while let Some(record) = viewer.dtls.poll_transmit() {
                if let Some(TransportEvent::Connected) = transport.on_datagram(&record.message, IcePath::direct(viewer_addr()), server_addr(), now)? {
                    connected = true;
                }
            }
            while let Some((to, record)) = transport.poll_transmit() {
                assert_eq!(to, IcePath::direct(viewer_addr()));
                viewer.dtls.read(now, server_addr(), None, record).expect("viewer DTLS");
            }
            if connected && viewer.dtls.get_connection_state(server_addr()).is_some_and(|s| s.srtp_protection_profile() != SrtpProtectionProfile::Unsupported) {
                break;
            }
        }
        assert!(connected && transport.is_connected(), "handshake completed");
        Ok(viewer)
    }

    fn transport_for(viewer: &Viewer, server: &Identity) -> ViewerTransport {
        ViewerTransport::new(server, SERVER_UFRAG, SERVER_PASSWORD, &viewer.remote_transport(), server_addr()).expect("transport")
    }

    #[test]
    fn a_viewer_checks_handshakes_and_then_media_and_rtcp_flow_encrypted() {
        for lookout in [DtlsRole::Server, DtlsRole::Client] {
            media_and_rtcp_flow(lookout);
        }
    }

    fn media_and_rtcp_flow(lookout: DtlsRole) {
        let server = Identity::generate().expect("identity");
        let viewer = Viewer::new(lookout);
        let mut transport = transport_for(&viewer, &server);
        let now = Instant::now();
        let viewer = connected(&mut transport, viewer, now).expect("handshake");
        let (mut viewer_out, mut viewer_in) = viewer.srtp();

        let rtp = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header { version: 2, payload_type: 102, sequence_number: 7, timestamp: 9000, ssrc: 0x1234, ..Default::default() },
            payload: bytes::Bytes::from_static(b"a slice of a picture"),
        };
        let plain = rtp.marshal().expect("marshal");
        let mut protected = Vec::new();
        let to = transport.write_rtp(&rtp, &mut protected).expect("encrypt").expect("connected");
        assert_eq!(to, IcePath::direct(viewer_addr()));
        assert_ne!(&protected[12..], &plain[12..], "the payload is encrypted");
        assert_eq!(&viewer_in.decrypt_rtp(&protected).expect("the viewer decrypts it")[..], &plain[..]);

        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication { sender_ssrc: 1, media_ssrc: 0x1234 };
        let plain = pli.marshal().expect("marshal");
        let protected = viewer_out.encrypt_rtcp(&plain).expect("viewer encrypts");
        let later = now + std::time::Duration::from_secs(10);
        match transport.on_datagram(&protected, IcePath::direct(viewer_addr()), server_addr(), later).expect("RTCP") {
            Some(TransportEvent::Rtcp(rtcp)) => assert_eq!(&rtcp[..], &plain[..]),
            other => panic!("expected RTCP, got {other:?}"),
        }
        assert_eq!(transport.last_heard(), Some(later), "RTCP shows the viewer is there, as checks do");
        let replayed = transport.on_datagram(&protected, IcePath::direct(viewer_addr()), server_addr(), now);
        assert!(matches!(replayed, Err(TransportError::Srtcp(_))), "a replayed packet is refused: {replayed:?}");
    }

    #[test]
    fn checks_without_the_right_credentials_or_role_are_refused_unanswered() {
        let server = Identity::generate().expect("identity");
        let viewer = Viewer::new(DtlsRole::Server);
        let mut transport = transport_for(&viewer, &server);
        let crypto = server.crypto.crypto();
        let now = Instant::now();
        let cases = [
            (check(&format!("{SERVER_UFRAG}:{VIEWER_UFRAG}"), "not the password", true, crypto), "wrong password"),
            (check(&format!("{SERVER_UFRAG}:someoneelse"), SERVER_PASSWORD, true, crypto), "another viewer's ufrag"),
            (check(&format!("other:{VIEWER_UFRAG}"), SERVER_PASSWORD, true, crypto), "another session"),
            (check(&format!("{SERVER_UFRAG}:{VIEWER_UFRAG}"), SERVER_PASSWORD, false, crypto), "not controlling"),
        ];
        for (request, what) in cases {
            assert!(transport.on_datagram(&request, IcePath::direct(viewer_addr()), server_addr(), now).is_err(), "{what}");
            assert!(transport.poll_transmit().is_none(), "{what}: unanswered");
        }
        for cut in [0, 1, 19, 20, 40] {
            let request = check(&format!("{SERVER_UFRAG}:{VIEWER_UFRAG}"), SERVER_PASSWORD, true, crypto);
            let _ = transport.on_datagram(&request[..cut.min(request.len())], IcePath::direct(viewer_addr()), server_addr(), now);
        }
        assert_eq!(transport.destination(), None, "nothing was nominated");
    }

    /// A browser sends DTLS over whichever pair it has selected at the moment, and may select
    /// another (a better one whose check came back later) in the middle of the handshake: the
    /// handshake goes on whatever checked address its records come from.
    #[test]
    fn a_handshake_that_moves_to_another_checked_address_midway_completes() {
        let server = Identity::generate().expect("identity");
        let mut viewer = Viewer::new(DtlsRole::Server);
        let mut transport = transport_for(&viewer, &server);
        let now = Instant::now();
        let crypto = viewer.identity.crypto.clone();
        let (first, second) = (IcePath::direct(viewer_addr()), IcePath::direct("10.0.0.7:50001".parse().expect("address")));
        for path in [first, second] {
            let request = check(&format!("{SERVER_UFRAG}:{VIEWER_UFRAG}"), SERVER_PASSWORD, true, crypto.crypto());
            transport.on_datagram(&request, path, server_addr(), now).expect("check");
        }
        while transport.poll_transmit().is_some() {}
        viewer.connect_dtls(now);
        let mut connected = false;
        let mut from = first;
        for _ in 0..20 {
            while let Some(record) = viewer.dtls.poll_transmit() {
                if let Some(TransportEvent::Connected) = transport.on_datagram(&record.message, from, server_addr(), now).expect("DTLS") {
                    connected = true;
                }
                // Everything after the ClientHello comes over the other pair.
                from = second;
            }
            while let Some((_, record)) = transport.poll_transmit() {
                viewer.dtls.read(now, server_addr(), None, record).expect("viewer DTLS");
            }
        }
        assert!(connected && transport.is_connected(), "the handshake completed across the two addresses");
    }

    #[test]
    fn dtls_from_an_unchecked_address_or_with_another_certificate_is_refused() {
        let server = Identity::generate().expect("identity");
        let mut viewer = Viewer::new(DtlsRole::Server);
        let mut transport = transport_for(&viewer, &server);
        let now = Instant::now();
        viewer.connect_dtls(now);
        let hello = viewer.dtls.poll_transmit().expect("client hello");
        assert!(matches!(transport.on_datagram(&hello.message, IcePath::direct(viewer_addr()), server_addr(), now), Err(TransportError::UncheckedAddress(_))));

        // A viewer whose certificate is not the one its description named.
        let impostor = Viewer::new(DtlsRole::Server);
        let mut transport = transport_for(&Viewer::new(DtlsRole::Server), &server);
        let refused = connected(&mut transport, impostor, now);
        assert!(matches!(refused, Err(TransportError::Dtls(_))), "the handshake fails");
        assert!(!transport.is_connected());
    }
}
