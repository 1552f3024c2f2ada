//! One viewer of one path over one connection (Lookout's own endpoint, or a webrtc-rs
//! PeerConnection where that one does not serve), whichever signalling set it up (/ws or WHEP).

use super::forwarder::Forwarder;
use super::forwarder_stats::{ForwarderStats, LayerStatus};
use super::media_sink::MediaSink;
use super::keyframe_requests::KeyframeRequests;
use super::link_quality::LinkQuality;
use super::retransmitter::NackStats;
use super::sent_frames::SentFrames;
pub use super::forwarder_stats::ForwarderStatsSnapshot as SessionStats;
use super::announce::Announcer;
use super::audio_forwarder::AudioForwarder;
use super::network::{Network, SocketHold};
use super::send_delay::SendDelays;
use super::peer::{self, BuildError, Connection, PeerEvent};
use crate::media::AudioCodec;
use super::viewer_activity::ViewerActivity;
use crate::limits::ViewerSlot;
use crate::stream::Stream;
use lookout_signaling::IceCandidate;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Mutex};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::rtp_transceiver::RtpSender;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription};

/// Host candidates gather in milliseconds; this bounds a WHEP answer when something is wrong.
const GATHERING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("path {path:?} is not live: {state}")]
    PathNotLive { path: String, state: String },
    #[error("bad SDP: {0}")]
    BadSdp(String),
    #[error("{0}")]
    ServerFull(String),
    #[error("no layer {layer:?}; this path has {}", layers.join(", "))]
    UnknownLayer { layer: String, layers: Vec<String> },
    #[error("{0}")]
    Internal(String),
}

/// What a session tells the signalling side that set it up.
#[derive(Debug)]
pub enum SessionEvent {
    Candidate(IceCandidate),
    GatheringComplete,
}

/// Who sends the offer: Lookout over /ws, the viewer over WHEP.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OfferFrom {
    Server,
    Viewer,
}

pub struct ViewerSession {
    pub id: String,
    pub path: String,
    connection: Connection,
    state: watch::Receiver<RTCPeerConnectionState>,
    events: Mutex<mpsc::UnboundedReceiver<PeerEvent>>,
    announcer: Arc<Announcer>,
    forwarder: tokio::task::JoinHandle<()>,
    audio_forwarder: Option<tokio::task::JoinHandle<()>>,
    stats: Arc<ForwarderStats>,
    keyframe_requests: Arc<KeyframeRequests>,
    nack_stats: Arc<NackStats>,
    link: Arc<LinkQuality>,
    pinned_layer: watch::Sender<Option<usize>>,
    layer_status: watch::Receiver<LayerStatus>,
    sent_frames: Arc<SentFrames>,
    activity: Arc<ViewerActivity>,
    /// Counts this viewer against the limits until the session is closed (a socket may hold
    /// a closed session a while longer; it no longer counts).
    slot: parking_lot::Mutex<Option<ViewerSlot>>,
    sockets: SocketHold,
    closed: std::sync::atomic::AtomicBool,
}

impl ViewerSession {
    /// Sets up the connection and its tracks (video, and audio when the path has some); media
    /// flows once ICE and DTLS connect. `id` comes from `new_session_id` (access control may
    /// have been asked about it already); `slot` from admitting the viewer.
    pub async fn start(stream: &Arc<Stream>, network: &Network, send_delays: &SendDelays, offer_from: OfferFrom, id: String, slot: ViewerSlot) -> Result<Self, SessionError> {
        let state = stream.state();
        if !state.is_live() {
            return Err(SessionError::PathNotLive { path: stream.name().to_owned(), state: state.to_string() });
        }
        let audio = stream.audio_codec();
        let peer = match peer::build(network, network.own_ice_servers(&id), audio, (&id, stream.name())).await {
            Ok(peer) => peer,
            Err(error @ BuildError::PortsExhausted(_)) => return Err(SessionError::ServerFull(error.to_string())),
            Err(BuildError::WebRtc(error)) => return Err(internal("creating the peer connection")(error)),
            Err(BuildError::Own(error)) => return Err(SessionError::Internal(format!("creating the viewer's connection: {error}"))),
        };
        let (video, ssrc, audio_forwarder) = match attach_media(&peer, stream, &id, audio, offer_from).await {
            Ok(media) => media,
            Err(error) => {
                // A dropped connection's driver task would run on, detached: close it.
                close_connection(&peer.connection).await;
                return Err(error);
            }
        };
        let stats = Arc::new(ForwarderStats::default());
        let (pinned_layer, pinned_layer_rx) = watch::channel(None);
        let (layer_status_tx, layer_status) = watch::channel(LayerStatus::initial(stream.layers().len()));
        let forwarder = Forwarder {
            sink: video,
            ssrc,
            stream: stream.clone(),
            state: peer.state.clone(),
            stats: stats.clone(),
            keyframe_requests: peer.keyframe_requests.clone(),
            sent: peer.sent_frames.clone(),
            link: peer.link.clone(),
            pinned_layer: pinned_layer_rx,
            layer_status: layer_status_tx,
            send_delays: stream.layers().iter().map(|layer| send_delays.of(layer.name())).collect(),
            created: std::time::Instant::now(),
        };
        let forwarder = tokio::spawn(forwarder.run());
        tracing::info!(session = %id, path = stream.name(), "viewer session created");
        Ok(Self {
            id,
            path: stream.name().to_owned(),
            connection: peer.connection,
            state: peer.state,
            events: Mutex::new(peer.events),
            announcer: network.announcer.clone(),
            forwarder,
            audio_forwarder,
            stats,
            keyframe_requests: peer.keyframe_requests,
            nack_stats: peer.nack_stats,
            link: peer.link,
            pinned_layer,
            layer_status,
            sent_frames: peer.sent_frames,
            activity: peer.activity,
            slot: parking_lot::Mutex::new(Some(slot)),
            sockets: peer.hold,
            closed: Default::default(),
        })
    }

    /// Lookout's offer (the /ws flow); candidates follow as events.
    pub async fn create_offer(&self) -> Result<String, SessionError> {
        let connection = match &self.connection {
            Connection::Own(own) => return Ok(self.announcer.sdp(&own.create_offer())),
            Connection::WebRtcRs(connection) => connection,
        };
        let offer = connection.create_offer(None).await.map_err(|e| SessionError::Internal(format!("creating the offer: {e}")))?;
        let sdp = self.announcer.sdp(&offer.sdp);
        connection.set_local_description(offer).await.map_err(|e| SessionError::Internal(format!("applying the offer: {e}")))?;
        Ok(sdp)
    }

    /// The viewer's answer to Lookout's offer.
    pub async fn accept_answer(&self, sdp: String) -> Result<(), SessionError> {
        match &self.connection {
            Connection::Own(own) => own.accept_answer(&sdp).map_err(|e| SessionError::BadSdp(e.to_string()))?,
            Connection::WebRtcRs(connection) => {
                let answer = RTCSessionDescription::answer(sdp).map_err(|e| SessionError::BadSdp(e.to_string()))?;
                connection.set_remote_description(answer).await.map_err(|e| SessionError::BadSdp(e.to_string()))?;
            }
        }
        self.sockets.remote_description_applied();
        Ok(())
    }

    /// Answers the viewer's offer (the WHEP flow) with all candidates included, as WHEP
    /// clients may not trickle.
    pub async fn answer_offer(&self, sdp: String) -> Result<String, SessionError> {
        let connection = match &self.connection {
            Connection::Own(own) => {
                let answer = own.answer_offer(&sdp).map_err(|e| SessionError::BadSdp(e.to_string()))?;
                self.sockets.remote_description_applied();
                return Ok(self.announcer.sdp(&answer));
            }
            Connection::WebRtcRs(connection) => connection,
        };
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SessionError::BadSdp(e.to_string()))?;
        connection.set_remote_description(offer).await.map_err(|e| SessionError::BadSdp(e.to_string()))?;
        self.sockets.remote_description_applied();
        let answer = connection.create_answer(None).await.map_err(|e| SessionError::BadSdp(format!("no usable H.264 video in the offer: {e}")))?;
        connection.set_local_description(answer).await.map_err(|e| SessionError::Internal(format!("applying the answer: {e}")))?;
        let _ = tokio::time::timeout(GATHERING_TIMEOUT, async {
            while let Some(event) = self.next_event().await {
                if matches!(event, SessionEvent::GatheringComplete) {
                    break;
                }
            }
        })
        .await;
        let local = connection.local_description().await;
        local.map(|d| self.announcer.sdp(&d.sdp)).ok_or_else(|| SessionError::Internal("no local description after answering".into()))
    }

    pub async fn add_remote_candidate(&self, candidate: IceCandidate) -> Result<(), SessionError> {
        if candidate.candidate.is_empty() {
            return Ok(()); // end of candidates
        }
        let connection = match &self.connection {
            Connection::WebRtcRs(connection) => connection,
            Connection::Own(own) => {
                // Full ICE checks it; ICE-lite learns the viewer's addresses from its checks
                // alone. A malformed one is the viewer's mistake to hear about either way.
                let attribute = candidate.candidate.strip_prefix("candidate:").unwrap_or(&candidate.candidate);
                rtc::ice::candidate::unmarshal_candidate(attribute).map_err(|e| SessionError::BadSdp(format!("bad ICE candidate: {e}")))?;
                own.connection.add_remote_candidate(attribute);
                return Ok(());
            }
        };
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: candidate.username_fragment,
            url: None,
        };
        connection.add_ice_candidate(init).await.map_err(|e| SessionError::BadSdp(format!("bad ICE candidate: {e}")))
    }

    /// The next local candidate or gathering event; `None` once the connection is gone.
    pub async fn next_event(&self) -> Option<SessionEvent> {
        Some(match self.events.lock().await.recv().await? {
            PeerEvent::Candidate(candidate) => SessionEvent::Candidate(candidate),
            PeerEvent::GatheringComplete => SessionEvent::GatheringComplete,
        })
    }

    pub fn stats(&self) -> SessionStats {
        self.stats.snapshot(&self.keyframe_requests, &self.nack_stats, &self.link, self.layer_status.borrow().clone())
    }

    /// An RTP timestamp of this session's video and when that frame was captured, once one
    /// was sent (what its RTCP sender reports say).
    pub fn clock_reference(&self) -> Option<(u32, std::time::SystemTime)> {
        self.sent_frames.clock_reference()
    }

    /// Pins the layer named `layer` ("main", "sub", ...), or lets Lookout choose again with `None`.
    pub fn pin_layer(&self, layer: Option<&str>) -> Result<(), SessionError> {
        let index = match layer {
            None => None,
            Some(name) => {
                let layers = self.layer_status.borrow().layers.clone();
                let index = layers.iter().position(|known| known == name);
                Some(index.ok_or_else(|| SessionError::UnknownLayer { layer: name.to_owned(), layers })?)
            }
        };
        self.pinned_layer.send_replace(index);
        Ok(())
    }

    /// The layer this viewer gets and why, updated as it changes.
    pub fn layer_status(&self) -> watch::Receiver<LayerStatus> {
        self.layer_status.clone()
    }

    /// How long the viewer has sent nothing (see `viewer_activity.rs`).
    pub fn silent_for(&self, now: std::time::Instant) -> std::time::Duration {
        self.activity.silent_for(now)
    }

    pub fn state(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state.clone()
    }

    /// Ends the session; closing it again (its viewer's socket after the reaper, say) does
    /// nothing more, and logs nothing more.
    pub async fn close(&self) {
        if self.closed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.stop_forwarders();
        self.slot.lock().take();
        close_connection(&self.connection).await;
        tracing::info!(session = %self.id, path = %self.path, "viewer session closed");
    }
}

impl ViewerSession {
    fn stop_forwarders(&self) {
        self.forwarder.abort();
        if let Some(audio) = &self.audio_forwarder {
            audio.abort();
        }
    }
}

impl Drop for ViewerSession {
    fn drop(&mut self) {
        self.stop_forwarders();
    }
}

/// The video's sink and SSRC, and the audio's forwarder, started, when the path has sound.
type AttachedMedia = (MediaSink, u32, Option<tokio::task::JoinHandle<()>>);

/// Adds the tracks to the connection. In a WHEP player's offer without audio the audio is
/// left out of the answer and its forwarder finds no codec negotiated.
async fn attach_media(peer: &peer::Peer, stream: &Arc<Stream>, id: &str, audio: Option<AudioCodec>, offer_from: OfferFrom) -> Result<AttachedMedia, SessionError> {
    let audio_forwarder = |sink: MediaSink, ssrc: u32| {
        let forwarder = AudioForwarder { sink, ssrc, stream: stream.clone(), state: peer.state.clone(), clock: peer.audio_clock.clone() };
        tokio::spawn(forwarder.run())
    };
    match &peer.connection {
        Connection::WebRtcRs(connection) => {
            let ssrc = rand::random::<u32>();
            // The RTX SSRC is used only if the viewer negotiates RTX.
            let rtx = Some(RTCRtpRtxParameters { ssrc: rand::random() });
            let track = local_track(stream, id, RtpCodecKind::Video, ssrc, rtx, peer::h264_codec());
            let sender = attach_track(connection, Arc::clone(&track) as Arc<dyn TrackLocal>, offer_from).await?;
            let audio = match audio {
                Some(codec) => {
                    let audio_ssrc = rand::random::<u32>();
                    let track = local_track(stream, id, RtpCodecKind::Audio, audio_ssrc, None, peer::audio_codec(codec));
                    let sender = attach_track(connection, Arc::clone(&track) as Arc<dyn TrackLocal>, offer_from).await?;
                    Some(audio_forwarder(MediaSink::Track { track, sender }, audio_ssrc))
                }
                None => None,
            };
            Ok((MediaSink::Track { track, sender }, ssrc, audio))
        }
        Connection::Own(own) => {
            let (ssrc, audio_ssrc) = own.ssrcs();
            let audio = audio.zip(audio_ssrc).map(|(codec, audio_ssrc)| audio_forwarder(MediaSink::Own { peer: own.clone(), audio: Some(codec) }, audio_ssrc));
            Ok((MediaSink::Own { peer: own.clone(), audio: None }, ssrc, audio))
        }
    }
}

async fn close_connection(connection: &Connection) {
    match connection {
        Connection::WebRtcRs(connection) => {
            if let Err(error) = connection.close().await {
                tracing::debug!(%error, "closing the peer connection");
            }
        }
        Connection::Own(own) => own.connection.close(),
    }
}

/// A track of the session. Audio and video share one media stream id, which is what makes a
/// browser play them in sync.
fn local_track(stream: &Stream, id: &str, kind: RtpCodecKind, ssrc: u32, rtx: Option<RTCRtpRtxParameters>, codec: RTCRtpCodec) -> Arc<TrackLocalStaticRTP> {
    let kind_name = if kind == RtpCodecKind::Audio { "audio" } else { "video" };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("lookout-{}", stream.name()),
        format!("{kind_name}-{id}"),
        format!("{} {kind_name}", stream.name()),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), rtx, ..Default::default() },
            codec,
            ..Default::default()
        }],
    )))
}

fn internal(context: &str) -> impl FnOnce(webrtc::error::Error) -> SessionError {
    let context = context.to_owned();
    move |e| SessionError::Internal(format!("{context}: {e}"))
}

/// Adds the video track the way the offer's side needs it, and returns its sender.
async fn attach_track(connection: &Arc<dyn PeerConnection>, track: Arc<dyn TrackLocal>, offer_from: OfferFrom) -> Result<Arc<dyn RtpSender>, SessionError> {
    let sender = match offer_from {
        OfferFrom::Server => {
            let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, ..Default::default() };
            let transceiver = connection.add_transceiver_from_track(track, Some(init)).await;
            let transceiver = transceiver.map_err(internal("adding the video transceiver"))?;
            transceiver.sender().await.map_err(internal("reading the transceiver's sender"))?
        }
        // The viewer's offer brings its own recvonly m-line; add_track attaches to it.
        OfferFrom::Viewer => Some(connection.add_track(track).await.map_err(internal("adding a track"))?),
    };
    sender.ok_or_else(|| SessionError::Internal("the transceiver has no sender".into()))
}


/// A new viewer session's id: random, so that knowing one tells nothing of another.
pub fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
