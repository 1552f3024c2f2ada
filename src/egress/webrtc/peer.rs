//! Builds the PeerConnection of one viewer: codecs, interceptors, sockets, events.

use super::announce::Announcer;
pub use super::peer_event::PeerEvent;
use super::keyframe_requests::{KeyframeRequestWatcher, KeyframeRequests};
use super::link_quality::{LinkQuality, PublishedGcc, ReceiverReportWatcher};
use super::network::{Network, PortsExhausted, SocketHold};
use super::retransmitter::{NackStats, Retransmitter};
use super::rtcp_tap::{RtcpObserver, RtcpTap};
use super::endpoint::connection::{ConnectionFeedback, LocalAddresses, LocalCredentials, OwnConnection};
use super::endpoint::full_ice::{candidate_lines, LocalCandidate};
use super::endpoint::gatherer::{Gathered, Gatherer};
use super::gather_servers;
use std::net::SocketAddr;
use super::endpoint::dtls_srtp::Identity;
use super::endpoint::peer::OwnPeer;
use super::endpoint::sdp::{LocalAudio, LocalParameters, LocalVideo};
use super::sender_reports::{AudioClock, SenderReporter, SenderReports};
use super::sent_frames::SentFrames;
use super::viewer_activity::{ActivityWatcher, ViewerActivity};
use crate::media::AudioCodec;
use lookout_signaling::{IceCandidate, IceServer};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{CongestionControlBuilder, Registry, Slot};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::peer_connection::{
    configure_simulcast_extension_headers, configure_twcc_sender_only, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, SettingEngineBuilder, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

/// The payload types Lookout offers for H.264 and its retransmissions; in WHEP the viewer's
/// offer decides instead.
const H264_PAYLOAD_TYPE: u8 = 102;
const RTX_PAYLOAD_TYPE: u8 = 103;

/// Constrained Baseline level 3.1, with level asymmetry allowed: every browser accepts it,
/// and Chromium and Firefox decode Main and High streams sent under it.
pub const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

pub fn h264_codec() -> RTCRtpCodec {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() };
    RTCRtpCodec {
        mime_type: "video/H264".to_owned(),
        clock_rate: crate::media::VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![feedback("nack", ""), feedback("nack", "pli"), feedback("ccm", "fir"), feedback("goog-remb", "")],
    }
}

/// Opus as browsers offer it: SDP always says two channels (RFC 7587 §7); Lookout sends mono,
/// which every decoder plays. The same fmtp as Chromium's and webrtc-rs's, so that their
/// offers match it exactly.
const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

pub fn audio_codec(codec: AudioCodec) -> RTCRtpCodec {
    let (channels, fmtp) = match codec {
        AudioCodec::Pcmu | AudioCodec::Pcma => (1, ""),
        AudioCodec::Opus => (2, OPUS_FMTP),
    };
    RTCRtpCodec { mime_type: codec.mime_type().to_owned(), clock_rate: codec.clock_rate(), channels, sdp_fmtp_line: fmtp.to_owned(), rtcp_feedback: Vec::new() }
}

/// RFC 4588 retransmission of the H.264 payload type.
fn rtx_codec(associated_payload_type: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/rtx".to_owned(),
        clock_rate: crate::media::VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: format!("apt={associated_payload_type}"),
        rtcp_feedback: Vec::new(),
    }
}

struct Handler {
    events: mpsc::UnboundedSender<PeerEvent>,
    announcer: Arc<Announcer>,
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                for candidate in self.announcer.candidates(&init.candidate) {
                    let _ = self.events.send(PeerEvent::Candidate(IceCandidate {
                        candidate,
                        sdp_mid: init.sdp_mid.clone(),
                        sdp_m_line_index: init.sdp_mline_index,
                        username_fragment: init.username_fragment.clone(),
                    }));
                }
            }
            Err(error) => tracing::warn!(%error, "cannot encode a local ICE candidate"),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.send(PeerEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }
}

/// A viewer's connection: a webrtc-rs PeerConnection, or a peer of Lookout's own endpoint.
pub enum Connection {
    WebRtcRs(Arc<dyn PeerConnection>),
    Own(Arc<OwnPeer>),
}

pub struct Peer {
    pub connection: Connection,
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub keyframe_requests: Arc<KeyframeRequests>,
    /// Filled by the forwarder, read to answer NACKs.
    pub sent_frames: Arc<SentFrames>,
    pub nack_stats: Arc<NackStats>,
    pub link: Arc<LinkQuality>,
    /// Filled by the audio forwarder, read by the sender reports.
    pub audio_clock: Arc<AudioClock>,
    /// When the viewer last sent RTCP: whether it is still there.
    pub activity: Arc<ViewerActivity>,
    /// Its port of the range, or its place on the shared port.
    pub hold: SocketHold,
}

/// Where the RTCP watchers sit: after the default interceptors on the read path (closest to
/// the application of them all), so they see what reached the end of the chain.
const RTCP_WATCHERS_SLOT: usize = 14_000;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("server full: every UDP port of {0} is in use")]
    PortsExhausted(crate::config::PortRange),
    #[error("{0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("{0}")]
    Own(String),
}

/// ICE credentials made here rather than by webrtc, so that the shared media port knows the
/// username fragment before the first check arrives. ICE asks for 24 bits of randomness in the
/// ufrag and 128 in the password (RFC 8445 §5.3); these carry about 95 and 190.
fn ice_credentials() -> (String, String) {
    use rand::distr::{Alphanumeric, SampleString};
    let mut rng = rand::rng();
    (Alphanumeric.sample_string(&mut rng, 16), Alphanumeric.sample_string(&mut rng, 32))
}

/// `own_ice_servers`: the ICE servers with the credentials Lookout itself uses; `audio`: the
/// path's audio codec, the only one offered (the browser answers with the first it supports).
/// `names`: the session's id and its path's name, for the descriptions of the own endpoint.
pub async fn build(network: &Network, own_ice_servers: Vec<IceServer>, audio: Option<AudioCodec>, names: (&str, &str)) -> Result<Peer, BuildError> {
    let (ufrag, password) = ice_credentials();
    let binding = network.bind(&ufrag).map_err(|PortsExhausted(range)| BuildError::PortsExhausted(range))?;
    let feedback = Feedback::new();
    if let Some(identity) = &network.own_endpoint {
        return build_own(network, own_ice_servers, identity.clone(), binding.hold, (ufrag, password), audio, names, feedback).await;
    }
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: h264_codec(), payload_type: H264_PAYLOAD_TYPE },
        RtpCodecKind::Video,
    )?;
    media_engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: rtx_codec(H264_PAYLOAD_TYPE), payload_type: RTX_PAYLOAD_TYPE },
        RtpCodecKind::Video,
    )?;
    if let Some(codec) = audio {
        media_engine.register_codec(RTCRtpCodecParameters { rtp_codec: audio_codec(codec), payload_type: codec.payload_type() }, RtpCodecKind::Audio)?;
    }
    configure_simulcast_extension_headers(&mut media_engine)?;
    let Feedback { keyframe_requests, sent_frames, nack_stats, link, audio_clock, activity } = feedback;
    // Lookout only sends: it makes its own sender reports and answers NACKs itself. webrtc's
    // NACK generator, TWCC receiver and receiver reports would watch for media that never comes.
    // Transport-wide sequence numbers on every packet make the viewer send TWCC feedback, which
    // drives the bandwidth estimate.
    let registry = Registry::new()
        .with(Slot::CongestionControl, CongestionControlBuilder::new(PublishedGcc::new(link.clone())).build())
        .with(Slot::SenderReport, SenderReports::new(sent_frames.clone(), audio_clock.clone()))
        .with(Slot::NackResponder, RtcpTap::new(Retransmitter::new(sent_frames.clone(), nack_stats.clone())))
        .with(Slot::from(RTCP_WATCHERS_SLOT), RtcpTap::new(watchers(&keyframe_requests, &link, &activity)));
    let registry = configure_twcc_sender_only(registry, &mut media_engine)?;
    let (events_tx, events) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    // No mDNS: Lookout announces real addresses, and learns a browser's hidden one from its
    // connectivity checks. Its multicast socket also fails (ENODEV) on hosts without a
    // multicast route, which would stop every session there.
    let setting_engine = SettingEngineBuilder::new()
        .with_lite(network.ice_lite())
        .with_ice_credentials(ufrag, password)
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        // Zero turns the agent's disconnected and failed timers off: it watches only the first
        // pair nominated (see viewer_activity.rs), and Lookout judges liveness itself.
        .with_ice_timeouts(Some(Duration::ZERO), Some(Duration::ZERO), None);
    let ice_servers = own_ice_servers
        .into_iter()
        .map(|s| RTCIceServer { urls: s.urls, username: s.username.unwrap_or_default(), credential: s.credential.unwrap_or_default() })
        .collect();
    let mut builder = PeerConnectionBuilder::new();
    if let Some(runtime) = binding.runtime {
        builder = builder.with_runtime(runtime);
    }
    let connection = builder
        .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
        .with_setting_engine(setting_engine.build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { events: events_tx, announcer: network.announcer.clone(), state: state_tx }))
        .with_udp_addrs(binding.udp_addrs)
        .with_tcp_addrs(binding.tcp_addrs)
        .build()
        .await?;
    Ok(Peer { connection: Connection::WebRtcRs(Arc::new(connection)), events, state, keyframe_requests, sent_frames, nack_stats, link, audio_clock, activity, hold: binding.hold })
}

/// What the viewer's RTCP feeds, and what the forwarders fill for it.
struct Feedback {
    keyframe_requests: Arc<KeyframeRequests>,
    sent_frames: Arc<SentFrames>,
    nack_stats: Arc<NackStats>,
    link: Arc<LinkQuality>,
    audio_clock: Arc<AudioClock>,
    activity: Arc<ViewerActivity>,
}

impl Feedback {
    fn new() -> Self {
        Self {
            keyframe_requests: Arc::new(KeyframeRequests::default()),
            sent_frames: Arc::new(SentFrames::default()),
            nack_stats: Arc::new(NackStats::default()),
            link: Arc::new(LinkQuality::default()),
            audio_clock: Arc::new(AudioClock::default()),
            activity: ViewerActivity::new(Instant::now()),
        }
    }
}

/// The RTCP watchers that only look: keyframe requests, receiver reports, viewer activity.
fn watchers(keyframe_requests: &Arc<KeyframeRequests>, link: &Arc<LinkQuality>, activity: &Arc<ViewerActivity>) -> impl RtcpObserver {
    (KeyframeRequestWatcher::new(keyframe_requests.clone()), (ReceiverReportWatcher::new(link.clone()), ActivityWatcher(activity.clone())))
}

/// How long a new viewer waits for Lookout's own ICE servers to answer before its description
/// is written with what they gave by then.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer on Lookout's own endpoint, on its place on the shared port or its port of the range.
/// With `own_ice_servers`, Lookout first gathers candidates through them (full ICE).
#[allow(clippy::too_many_arguments)]
async fn build_own(
    network: &Network,
    own_ice_servers: Vec<IceServer>,
    identity: Arc<Identity>,
    hold: SocketHold,
    (ufrag, password): (String, String),
    audio: Option<AudioCodec>,
    (session_id, path): (&str, &str),
    feedback: Feedback,
) -> Result<Peer, BuildError> {
    let Some(registration) = hold.registration() else { return Err(BuildError::Own("the own endpoint needs a media port it reads itself".into())) };
    let socket = registration.own_socket().map_err(|e| BuildError::Own(format!("the media port: {e}")))?;
    let host = network.host_candidates(registration.port());
    let gatherer = match own_ice_servers.is_empty() {
        true => None,
        false => {
            let servers = gather_servers::resolve(&own_ice_servers, socket.label()).await;
            servers.iter().for_each(|server| registration.route_from(server.address));
            let from = host.first().copied().unwrap_or(socket.label());
            Some(Gatherer::start(servers, from, identity.crypto.clone(), Instant::now()).map_err(|e| BuildError::Own(format!("gathering through the ICE servers: {e}")))?)
        }
    };
    let Feedback { keyframe_requests, sent_frames, nack_stats, link, audio_clock, activity } = feedback;
    let feedback = ConnectionFeedback {
        observers: Box::new((Retransmitter::new(sent_frames.clone(), nack_stats.clone()), watchers(&keyframe_requests, &link, &activity))),
        reporter: SenderReporter::new(sent_frames.clone(), audio_clock.clone()),
        estimator: PublishedGcc::new(link.clone()),
    };
    let credentials = LocalCredentials { ufrag: ufrag.clone(), password: password.clone() };
    let gathers = gatherer.is_some();
    let addresses = LocalAddresses { host: host.clone(), gatherer };
    let connection = OwnConnection::new(identity.clone(), credentials, addresses, socket, feedback);
    let gathered = match gathers {
        true => connection.gathered(GATHER_TIMEOUT).await,
        false => Vec::new(),
    };
    let base = host.first().copied().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], registration.port())));
    let gathered_candidates: Vec<LocalCandidate> = gathered
        .into_iter()
        .map(|gathered| match gathered {
            Gathered::Reflexive { address, .. } => LocalCandidate::Reflexive { address, base },
            Gathered::Relayed { address, .. } => LocalCandidate::Relayed { address, base },
        })
        .collect();
    let local = LocalParameters {
        ufrag,
        password,
        fingerprint: identity.fingerprint.clone(),
        candidates: host,
        passive_tcp: network.config.ice_tcp,
        gathered: candidate_lines(&gathered_candidates),
        cname: format!("lookout-{session_id}"),
        stream_id: format!("lookout-{path}"),
        video: LocalVideo { ssrc: rand::random(), rtx_ssrc: rand::random(), track_id: format!("video-{session_id}") },
        audio: audio.map(|codec| LocalAudio { codec, ssrc: rand::random(), track_id: format!("audio-{session_id}") }),
    };
    let state = connection.state();
    // Every candidate is in the descriptions: no event ever comes, but the channel stays open
    // for as long as the peer lives (a closed one would end the signalling).
    let (events_tx, events) = mpsc::unbounded_channel();
    let peer = Arc::new(OwnPeer::new(connection, local, events_tx));
    Ok(Peer { connection: Connection::Own(peer), events, state, keyframe_requests, sent_frames, nack_stats, link, audio_clock, activity, hold })
}
