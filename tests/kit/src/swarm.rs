//! Light viewers for load tests: each is a WHEP offer, ICE checks, a DTLS handshake and SRTP
//! decryption of what arrives, counting packets and frames, with none of a WebRTC stack's
//! jitter buffers, interceptors and tasks. Hundreds of them run on one thread beside the
//! server under test, where as many webrtc-rs peers would take more CPU than the server.
//!
//! What a light viewer sends back is what keeps a session alive and tells the server how it is
//! doing: a consent check every 2.5 s and a receiver report every second. It asks for nothing
//! again (no NACK, no PLI) and gives no congestion feedback; the offer negotiates neither.

use crate::http;
use anyhow::{bail, Context as _};
use bytes::BytesMut;
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::shared::marshal::Marshal;
use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use rtc::stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, BINDING_REQUEST};
use rtc::stun::textattrs::TextAttribute;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const CONSENT_EVERY: Duration = Duration::from_millis(2500);
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Until the server answers: checks and the DTLS flight go again this often.
const RETRY_EVERY: Duration = Duration::from_millis(200);
const VIEWER_UFRAG: &str = "swarmviewer";
const VIEWER_PASSWORD: &str = "swarmviewerpassword0123456";
const VIDEO_PAYLOAD_TYPE: u8 = 102;

/// One DTLS identity for every light viewer: what the server checks is that a viewer presents
/// the certificate its offer named, not that each has its own.
pub struct SwarmIdentity {
    certificate: Certificate,
    fingerprint: String,
    crypto: Arc<dyn rtc::crypto::RTCCryptoProvider>,
}

impl SwarmIdentity {
    pub fn generate() -> anyhow::Result<Self> {
        let crypto = rtc::crypto::default_provider().context("a crypto provider")?;
        let certificate = Certificate::generate_self_signed(vec!["swarm".to_owned()], crypto.crypto()).context("a certificate")?;
        let der = certificate.certificate.first().context("an empty certificate chain")?;
        let digest = crypto.crypto().hash(rtc::crypto::HashAlgorithm::Sha256, der.as_ref()).context("hashing the certificate")?;
        let fingerprint = digest.iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":");
        Ok(Self { certificate, fingerprint, crypto })
    }

    fn handshake_config(&self) -> anyhow::Result<HandshakeConfig> {
        ConfigBuilder::default()
            .with_crypto_provider(self.crypto.clone())
            .with_certificates(vec![self.certificate.clone()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(true, None)
            .context("the DTLS configuration")
    }

    /// An offer for H.264 video and PCMU/Opus audio, receive only, taking the DTLS client's role.
    fn offer(&self) -> String {
        let media = |kind: &str, formats: &str, mid: u8, lines: &str| {
            format!(
                "m={kind} 9 UDP/TLS/RTP/SAVPF {formats}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
                 a=ice-ufrag:{VIEWER_UFRAG}\r\na=ice-pwd:{VIEWER_PASSWORD}\r\na=fingerprint:sha-256 {}\r\n\
                 a=setup:active\r\na=mid:{mid}\r\na=recvonly\r\na=rtcp-mux\r\n{lines}",
                self.fingerprint
            )
        };
        let video = media(
            "video",
            "102",
            0,
            "a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        );
        let audio = media("audio", "111 0", 1, "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n");
        format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n{video}{audio}")
    }
}

/// What a light viewer counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwarmCounts {
    pub packets: u64,
    pub bytes: u64,
    /// Sequence numbers skipped, over every stream.
    pub lost: u64,
    pub video_frames: u64,
    /// When the first video frame ended, from when the viewer began to join.
    pub first_frame: Option<Duration>,
    /// The longest gap between the ends of two video frames.
    pub longest_gap: Duration,
    pub connected: bool,
    /// RTP that came before this side of the handshake completed (the server's last flight
    /// was lost or late), and RTP that did not decrypt after it.
    pub before_keys: u64,
    pub undecryptable: u64,
    /// DTLS records the handshake refused, and retransmission timers that failed.
    pub dtls_errors: u64,
}

/// One stream's sequence numbers as RFC 3550 counts them, for the receiver report.
#[derive(Default)]
struct StreamSequence {
    highest: Option<u64>,
    received: u64,
    first: u64,
    /// At the last report.
    expected_prior: u64,
    received_prior: u64,
}

impl StreamSequence {
    /// Notes `sequence_number`; how many were skipped before it.
    fn on_packet(&mut self, sequence_number: u16) -> u64 {
        self.received += 1;
        let Some(highest) = self.highest else {
            self.highest = Some(u64::from(sequence_number));
            self.first = u64::from(sequence_number);
            return 0;
        };
        let ahead = sequence_number.wrapping_sub(highest as u16);
        if ahead == 0 || ahead >= 0x8000 {
            return 0; // a duplicate or late packet
        }
        self.highest = Some(highest + u64::from(ahead));
        u64::from(ahead) - 1
    }

    fn report(&mut self, ssrc: u32) -> Option<ReceptionReport> {
        let highest = self.highest?;
        let expected = highest - self.first + 1;
        let (expected_interval, received_interval) = (expected - self.expected_prior, self.received - self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 { 0 } else { ((lost_interval << 8) / expected_interval).min(255) as u8 };
        Some(ReceptionReport {
            ssrc,
            fraction_lost,
            total_lost: u32::try_from(expected.saturating_sub(self.received)).unwrap_or(u32::MAX).min(0x7f_ffff),
            last_sequence_number: highest as u32,
            ..Default::default()
        })
    }
}

pub struct LightViewer {
    /// The WHEP server, and the session's resource there.
    whep: (SocketAddr, String),
    socket: UdpSocket,
    server: SocketAddr,
    /// The server's ufrag and ours, and the server's password: what each check carries.
    check_username: String,
    check_password: String,
    crypto: Arc<dyn rtc::crypto::RTCCryptoProvider>,
    dtls: Endpoint,
    dtls_failed: bool,
    srtp: Option<(Context, Context)>,
    streams: HashMap<u32, StreamSequence>,
    counts: SwarmCounts,
    started: Instant,
    last_frame_end: Option<Instant>,
}

impl LightViewer {
    /// Offers over WHEP at `server` for `path`, from a socket on `bind`.
    pub async fn join(identity: &SwarmIdentity, server: SocketAddr, path: &str, bind: IpAddr) -> anyhow::Result<Self> {
        let started = Instant::now();
        let socket = UdpSocket::bind((bind, 0)).await.context("binding the media socket")?;
        let answer = http::request(server, "POST", &format!("/whep/{path}"), Some("application/sdp"), identity.offer().as_bytes()).await?;
        if answer.status != 201 {
            bail!("WHEP answered {}: {}", answer.status, answer.body);
        }
        let location = answer.header("location").context("a WHEP answer without Location")?.to_owned();
        let attribute = |name: &str| answer.body.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
        let (ufrag, password) = attribute("a=ice-ufrag:").zip(attribute("a=ice-pwd:")).context("no ICE credentials in the answer")?;
        let media = answer
            .body
            .lines()
            .filter_map(|line| line.strip_prefix("a=candidate:"))
            .filter_map(|candidate| {
                let fields: Vec<&str> = candidate.split_whitespace().collect();
                let (protocol, ip, port) = (fields.get(2)?, fields.get(4)?.parse::<IpAddr>().ok()?, fields.get(5)?.parse::<u16>().ok()?);
                (protocol.eq_ignore_ascii_case("udp") && ip.is_ipv4() == bind.is_ipv4()).then_some(SocketAddr::new(ip, port))
            })
            .next()
            .context("no UDP candidate in the answer")?;
        let mut dtls = Endpoint::new(socket.local_addr()?, TransportProtocol::UDP, None);
        dtls.connect(started, media, Arc::new(identity.handshake_config()?), None).context("starting DTLS")?;
        Ok(Self {
            whep: (server, location),
            socket,
            server: media,
            check_username: format!("{ufrag}:{VIEWER_UFRAG}"),
            check_password: password.to_owned(),
            crypto: identity.crypto.clone(),
            dtls,
            dtls_failed: false,
            srtp: None,
            streams: HashMap::new(),
            counts: SwarmCounts::default(),
            started,
            last_frame_end: None,
        })
    }

    pub fn counts(&self) -> SwarmCounts {
        self.counts
    }

    /// Ends the session (WHEP DELETE), as a player that is closed does.
    pub async fn leave(self) -> anyhow::Result<()> {
        let (server, location) = &self.whep;
        let response = http::request(*server, "DELETE", location, None, b"").await?;
        if response.status != 200 {
            bail!("WHEP DELETE answered {}", response.status);
        }
        Ok(())
    }

    /// Receives and answers until `until`, then returns.
    pub async fn run_until(&mut self, until: Instant) -> anyhow::Result<()> {
        let mut buffer = vec![0u8; 2048];
        let mut next_check = Instant::now();
        let mut next_report = Instant::now() + REPORT_EVERY;
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if now >= next_check {
                let check = connectivity_check(&self.check_username, &self.check_password, self.crypto.crypto())?;
                self.socket.send_to(&check, self.server).await?;
                next_check = now + if self.counts.connected { CONSENT_EVERY } else { RETRY_EVERY };
            }
            if now >= next_report && self.srtp.is_some() {
                self.send_report().await?;
                next_report = now + REPORT_EVERY;
            }
            // A handshake whose timer failed is given up: its timer would stay due.
            let dtls_timer = self.dtls.poll_timeout(&self.server).filter(|_| !self.dtls_failed);
            if dtls_timer.is_some_and(|at| at <= now) && self.dtls.handle_timeout(self.server, now).is_err() {
                self.counts.dtls_errors += 1;
                self.dtls_failed = true;
            }
            self.flush_dtls().await?;
            let dtls_timer = self.dtls.poll_timeout(&self.server).filter(|_| !self.dtls_failed);
            let wake = [Some(until), Some(next_check), self.srtp.is_some().then_some(next_report), dtls_timer]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until);
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => {
                    let (length, _) = received?;
                    self.on_datagram(&buffer[..length])?;
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    async fn flush_dtls(&mut self) -> anyhow::Result<()> {
        while let Some(transmit) = self.dtls.poll_transmit() {
            self.socket.send_to(&transmit.message, self.server).await?;
        }
        Ok(())
    }

    fn on_datagram(&mut self, datagram: &[u8]) -> anyhow::Result<()> {
        match datagram.first() {
            // RFC 7983: STUN (the server's answers to the checks).
            Some(0..=3) => Ok(()),
            Some(20..=63) => self.on_dtls(datagram),
            Some(128..=191) if datagram.get(1).is_some_and(|second| (192..=223).contains(second)) => Ok(()), // RTCP: sender reports
            Some(128..=191) => self.on_rtp(datagram),
            _ => Ok(()),
        }
    }

    fn on_dtls(&mut self, datagram: &[u8]) -> anyhow::Result<()> {
        let events = match self.dtls.read(Instant::now(), self.server, None, BytesMut::from(datagram)) {
            Ok(events) => events,
            Err(_) => {
                self.counts.dtls_errors += 1;
                return Ok(());
            }
        };
        if events.iter().any(|event| matches!(event, EndpointEvent::HandshakeComplete)) {
            let state = self.dtls.get_connection_state(self.server).context("a connection after the handshake")?;
            let mut config = rtc::srtp::config::Config { profile: rtc::srtp::protection_profile::ProtectionProfile::AeadAes128Gcm, ..Default::default() };
            let material = state.export_keying_material(rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len())?;
            config.set_session_keys_from_keying_material(material.as_ref(), true)?;
            let crypto = self.crypto.crypto();
            let keys = &config.keys;
            let local = Context::new(&keys.local_master_key, &keys.local_master_salt, config.profile, None, None, crypto)?;
            let remote = Context::new(&keys.remote_master_key, &keys.remote_master_salt, config.profile, None, None, crypto)?;
            self.srtp = Some((local, remote));
            self.counts.connected = true;
        }
        Ok(())
    }

    /// Counts the packet from its header (SRTP leaves it in the clear), so that loss is the
    /// network's; then decrypts it, to show that the keys and the sealing are right.
    fn on_rtp(&mut self, datagram: &[u8]) -> anyhow::Result<()> {
        if datagram.len() < 12 {
            return Ok(());
        }
        let (marker_and_type, sequence_number, ssrc) = (datagram[1], u16::from_be_bytes([datagram[2], datagram[3]]), u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]));
        self.counts.packets += 1;
        self.counts.bytes += datagram.len() as u64;
        self.counts.lost += self.streams.entry(ssrc).or_default().on_packet(sequence_number);
        if marker_and_type == (0x80 | VIDEO_PAYLOAD_TYPE) {
            let now = Instant::now();
            self.counts.video_frames += 1;
            self.counts.first_frame.get_or_insert(now - self.started);
            if let Some(last) = self.last_frame_end.replace(now) {
                self.counts.longest_gap = self.counts.longest_gap.max(now - last);
            }
        }
        match self.srtp.as_mut().map(|(_, remote)| remote.decrypt_rtp(datagram).is_ok()) {
            None => self.counts.before_keys += 1,
            Some(false) => self.counts.undecryptable += 1,
            Some(true) => {}
        }
        Ok(())
    }

    async fn send_report(&mut self) -> anyhow::Result<()> {
        let reports: Vec<ReceptionReport> = self.streams.iter_mut().filter_map(|(&ssrc, sequence)| sequence.report(ssrc)).collect();
        let report = ReceiverReport { ssrc: 1, reports, ..Default::default() };
        let Some((local, _)) = self.srtp.as_mut() else { return Ok(()) };
        let plain = report.marshal()?;
        let sealed = local.encrypt_rtcp(&plain)?;
        self.socket.send_to(&sealed, self.server).await?;
        Ok(())
    }
}

/// A nominating check with the server's credentials, as a controlling ICE agent sends it.
fn connectivity_check(username: &str, password: &str, crypto: &dyn rtc::crypto::RTCCrypto) -> anyhow::Result<Vec<u8>> {
    struct Attribute(rtc::stun::attributes::AttrType, Vec<u8>);
    impl Setter for Attribute {
        fn add_to(&self, message: &mut Message) -> Result<(), rtc::shared::error::Error> {
            message.add(self.0, &self.1);
            Ok(())
        }
    }
    let mut message = Message::new();
    message.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(rtc::stun::message::TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(Attribute(ATTR_USE_CANDIDATE, Vec::new())),
        Box::new(Attribute(ATTR_ICE_CONTROLLING, 1u64.to_be_bytes().to_vec())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(password.to_owned(), crypto)),
        Box::new(FINGERPRINT),
    ])?;
    Ok(message.raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_count_what_was_skipped_across_a_wrap_and_not_what_came_late() {
        let mut stream = StreamSequence::default();
        let skipped: Vec<u64> = [65533u16, 65534, 1, 2, 0, 2, 5].iter().map(|&n| stream.on_packet(n)).collect();
        // 65535 and 0 skipped at 1 (0 then came late), 3 and 4 at 5; the second 2 a duplicate.
        assert_eq!(skipped, vec![0, 0, 2, 0, 0, 0, 2]);
        let report = stream.report(7).expect("a report");
        // 65533 to 5 is 9 expected; 7 arrived, one of them twice.
        assert_eq!((report.total_lost, report.last_sequence_number), (2, 65536 + 5));
        assert_eq!(u32::from(report.fraction_lost), (2 << 8) / 9);
    }
}
