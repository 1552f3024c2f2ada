//! Builds the PeerConnection of one viewer: codecs, interceptors, sockets, events.

use super::keyframe_requests::{KeyframeRequestWatcher, KeyframeRequests};
use lookout_signaling::IceCandidate;
use rtc::interceptor::{Registry, Slot};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, SettingEngineBuilder, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

/// The payload type Lookout offers for H.264; in WHEP the viewer's offer decides instead.
const H264_PAYLOAD_TYPE: u8 = 102;

/// Constrained Baseline level 3.1, with level asymmetry allowed: every browser accepts it,
/// and Chromium and Firefox decode Main and High streams sent under it.
pub const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Network settings of the WebRTC side.
#[derive(Debug, Clone)]
pub struct WebRtcSettings {
    /// Local addresses for media sockets. A wildcard stands for every non-loopback interface,
    /// so the default pairs it with loopback to serve the LAN and this machine at once.
    pub udp_addrs: Vec<String>,
}

impl Default for WebRtcSettings {
    fn default() -> Self {
        Self { udp_addrs: vec!["127.0.0.1:0".to_owned(), "0.0.0.0:0".to_owned()] }
    }
}

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

/// What the PeerConnection tells its session.
#[derive(Debug)]
pub enum PeerEvent {
    Candidate(IceCandidate),
    GatheringComplete,
}

struct Handler {
    events: mpsc::UnboundedSender<PeerEvent>,
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.events.send(PeerEvent::Candidate(IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_m_line_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                }));
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

pub struct Peer {
    pub connection: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub keyframe_requests: Arc<KeyframeRequests>,
}

/// ICE-lite (RFC 8445 §2.5), as SFUs run: Lookout has only host candidates and answers checks,
/// and the viewer, as the controlling agent, nominates. This fixes the order of events: Lookout
/// is connected, and its DTLS endpoint started, when it answers the nominating check, before
/// the viewer can send its ClientHello. With Lookout controlling, a ClientHello that arrived
/// before Lookout saw its own check succeed was dropped, and a viewer that retransmits after
/// 1 s (webrtc-rs does) waited that long for its first frame.
const ICE_LITE: bool = true;

/// Where the keyframe-request watcher sits: after the default interceptors on the read path
/// (closest to the application of them all), so it sees what reached the end of the chain.
const KEYFRAME_REQUEST_SLOT: usize = 14_000;

pub async fn build(settings: &WebRtcSettings) -> webrtc::error::Result<Peer> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: h264_codec(), payload_type: H264_PAYLOAD_TYPE },
        RtpCodecKind::Video,
    )?;
    let keyframe_requests = Arc::new(KeyframeRequests::default());
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?
        .with(Slot::from(KEYFRAME_REQUEST_SLOT), KeyframeRequestWatcher::new(keyframe_requests.clone()));
    let (events_tx, events) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let setting_engine = SettingEngineBuilder::new().with_lite(ICE_LITE).build();
    let connection = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting_engine)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { events: events_tx, state: state_tx }))
        .with_udp_addrs(settings.udp_addrs.clone())
        .build()
        .await?;
    Ok(Peer { connection: Arc::new(connection), events, state, keyframe_requests })
}
