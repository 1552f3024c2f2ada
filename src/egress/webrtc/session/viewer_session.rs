//! One viewer of one path over one connection of Lookout's endpoint, whichever signalling set
//! it up (/ws or WHEP).

use crate::egress::webrtc::feed::forwarder::Forwarder;
use crate::egress::webrtc::feed::forwarder_stats::{ForwarderStats, LayerStatus};
use crate::egress::webrtc::feed::media_sink::MediaSink;
use crate::egress::webrtc::rtcp::keyframe_requests::KeyframeRequests;
use crate::egress::webrtc::rtcp::link_quality::{LinkQuality, ReportedLink};
use crate::egress::webrtc::rtcp::retransmitter::NackStats;
use crate::egress::webrtc::rtp::sent_frames::SentFrames;
pub use crate::egress::webrtc::feed::forwarder_stats::ForwarderStatsSnapshot as SessionStats;
use crate::egress::webrtc::transport::announce::Announcer;
use crate::egress::webrtc::feed::audio_forwarder::{self, AudioForwarder};
use crate::egress::webrtc::transport::network::{Network, SocketHold};
use crate::egress::webrtc::feed::send_delay::SendDelays;
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use crate::egress::webrtc::negotiation::peer::{NegotiationError, Peer};
use crate::egress::webrtc::session::viewer_peer::{self, BuildError};
use crate::media::AudioCodec;
use crate::egress::webrtc::rtcp::viewer_activity::ViewerActivity;
use crate::limits::ViewerSlot;
use crate::stream::{ReaderHold, Stream};
use lookout_signaling::{IceCandidate, QoeReport};
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("path {path:?} is not live: {state}")]
    PathNotLive { path: String, state: String },
    #[error("bad SDP: {0}")]
    BadSdp(#[from] NegotiationError),
    #[error("bad ICE candidate: {0}")]
    BadCandidate(rtc::shared::error::Error),
    #[error("server full: every UDP port of {0} is in use")]
    ServerFull(crate::config::PortRange),
    #[error("no layer {layer:?}; this path has {}", layers.join(", "))]
    UnknownLayer { layer: String, layers: Vec<String> },
    #[error("cannot set up the viewer's connection: {0}")]
    Setup(BuildError),
}

pub struct ViewerSession {
    pub id: String,
    pub path: String,
    peer: Arc<Peer>,
    state: watch::Receiver<ConnectionState>,
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
    /// Counts this viewer against the limits, and as a reader of its path (which keeps a
    /// camera on demand open), until the session is closed (a socket may hold a closed session
    /// a while longer; it no longer counts).
    counted: parking_lot::Mutex<Option<(ViewerSlot, ReaderHold)>>,
    sockets: SocketHold,
    closed: std::sync::atomic::AtomicBool,
    /// The viewer's page's last report of its playback.
    experience: parking_lot::Mutex<Option<QoeReport>>,
}

impl ViewerSession {
    /// Sets up the connection and its tracks (video, and audio when the path has some); media
    /// flows once ICE and DTLS connect. `id` comes from `new_session_id` (access control may
    /// have been asked about it already); `slot` from admitting the viewer.
    pub async fn start(stream: &Arc<Stream>, network: &Network, send_delays: &SendDelays, id: String, slot: ViewerSlot) -> Result<Self, SessionError> {
        let requested = std::time::Instant::now();
        // A camera on demand opens for this reader; the viewer waits for its first frame.
        let reading = stream.hold();
        let state = stream.until_live().await;
        if !state.is_live() {
            return Err(SessionError::PathNotLive { path: stream.name().to_owned(), state: state.to_string() });
        }
        let audio = stream.source_audio().as_ref().map(audio_forwarder::codec_for);
        let peer = match viewer_peer::build(network, network.own_ice_servers(&id), audio, (&id, stream.name())).await {
            Ok(peer) => peer,
            Err(BuildError::PortsExhausted(range)) => return Err(SessionError::ServerFull(range)),
            Err(error) => return Err(SessionError::Setup(error)),
        };
        let (video, ssrc, audio_forwarder) = attach_media(&peer, stream, audio);
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
            created: requested,
        };
        let forwarder = tokio::spawn(forwarder.run());
        tracing::info!(session = %id, path = stream.name(), "viewer session created");
        Ok(Self {
            id,
            path: stream.name().to_owned(),
            peer: peer.peer,
            state: peer.state,
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
            counted: parking_lot::Mutex::new(Some((slot, reading))),
            sockets: peer.hold,
            closed: Default::default(),
            experience: Default::default(),
        })
    }

    /// Lookout's offer (the /ws flow), with every candidate.
    pub fn create_offer(&self) -> String {
        self.announcer.sdp(&self.peer.create_offer())
    }

    /// The viewer's answer to Lookout's offer.
    pub fn accept_answer(&self, sdp: &str) -> Result<(), SessionError> {
        self.peer.accept_answer(sdp)?;
        self.sockets.remote_description_applied();
        Ok(())
    }

    /// Answers the viewer's offer (the WHEP flow) with every candidate, as WHEP clients may not
    /// trickle.
    pub fn answer_offer(&self, sdp: &str) -> Result<String, SessionError> {
        let answer = self.peer.answer_offer(sdp)?;
        self.sockets.remote_description_applied();
        Ok(self.announcer.sdp(&answer))
    }

    /// A candidate the viewer trickled: full ICE checks it; ICE-lite learns the viewer's
    /// addresses from its checks alone. A malformed one is the viewer's mistake to hear about
    /// either way.
    pub fn add_remote_candidate(&self, candidate: IceCandidate) -> Result<(), SessionError> {
        if candidate.candidate.is_empty() {
            return Ok(()); // end of candidates
        }
        let attribute = candidate.candidate.strip_prefix("candidate:").unwrap_or(&candidate.candidate);
        rtc::ice::candidate::unmarshal_candidate(attribute).map_err(SessionError::BadCandidate)?;
        self.peer.connection.add_remote_candidate(attribute);
        Ok(())
    }

    pub fn stats(&self) -> SessionStats {
        self.stats.snapshot(&self.keyframe_requests, &self.nack_stats, &self.link, self.layer_status.borrow().clone())
    }

    /// The round trip and loss of every receiver report so far.
    pub fn reported_link(&self) -> ReportedLink {
        self.link.reported()
    }

    /// Keeps the page's new report of its playback, and gives back the one before.
    pub fn replace_experience(&self, report: QoeReport) -> Option<QoeReport> {
        self.experience.lock().replace(report)
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

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Ends the session; closing it again (its viewer's socket after the reaper, say) does
    /// nothing more, and logs nothing more.
    pub fn close(&self) {
        if self.closed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.stop_forwarders();
        self.counted.lock().take();
        // How far the connection got, and what it was sent: a session that ends before its
        // first frame says where it stopped.
        let reached = *self.state.borrow();
        let frames_sent = self.stats().frames_sent;
        self.peer.connection.close();
        tracing::info!(session = %self.id, path = %self.path, connection = ?reached, frames_sent, "viewer session closed");
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

/// The tracks' sinks. In a WHEP player's offer without audio the audio is left out of the
/// answer and its forwarder finds no codec negotiated.
fn attach_media(peer: &viewer_peer::ViewerPeer, stream: &Arc<Stream>, audio: Option<AudioCodec>) -> AttachedMedia {
    let (ssrc, audio_ssrc) = peer.peer.ssrcs();
    let audio = audio.zip(audio_ssrc).map(|(codec, audio_ssrc)| {
        let sink = MediaSink { peer: peer.peer.clone(), audio: Some(codec) };
        let forwarder = AudioForwarder { sink, ssrc: audio_ssrc, stream: stream.clone(), state: peer.state.clone(), clock: peer.audio_clock.clone() };
        tokio::spawn(forwarder.run())
    });
    (MediaSink { peer: peer.peer.clone(), audio: None }, ssrc, audio)
}

/// A new viewer session's id: random, so that knowing one tells nothing of another.
pub fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
