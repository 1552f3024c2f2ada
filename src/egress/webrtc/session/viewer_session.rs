//! One viewer's session on Lookout's endpoint, whichever signalling set it up (/ws or WHEP):
//! its connection, and its video tracks (one for a path, with the path's audio beside it; one
//! per tile for a wall of cameras).

use crate::egress::webrtc::feed::audio_forwarder::{self, AudioForwarder};
use crate::egress::webrtc::feed::forwarder_stats::LayerStatus;
use crate::egress::webrtc::feed::media_sink::{MediaSink, SinkTrack};
use crate::egress::webrtc::feed::send_delay::SendDelays;
use crate::egress::webrtc::negotiation::peer::{NegotiationError, Peer};
use crate::egress::webrtc::rtcp::link_quality::{LinkQuality, LinkQualitySnapshot, ReportedLink};
use crate::egress::webrtc::rtcp::retransmitter::NackStats;
use crate::egress::webrtc::rtcp::viewer_activity::ViewerActivity;
use crate::egress::webrtc::session::video_track::{TrackStats, UnknownLayer, VideoTrack};
use crate::egress::webrtc::session::viewer_totals::ViewerTotals;
use crate::egress::webrtc::session::viewer_peer::{self, BuildError, SentMedia, ViewerPeer};
use crate::egress::webrtc::transport::announce::Announcer;
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use crate::egress::webrtc::transport::network::{Network, SocketHold};
use crate::limits::ViewerSlot;
use crate::stream::{ReaderHold, Stream};
use lookout_signaling::{IceCandidate, QoeReport};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
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
    #[error(transparent)]
    UnknownLayer(#[from] UnknownLayer),
    #[error("no track {track}; this session has {tracks} (0 to {})", tracks.saturating_sub(1))]
    UnknownTrack { track: usize, tracks: usize },
    #[error("cannot set up the viewer's connection: {0}")]
    Setup(BuildError),
}

/// The most video tracks a wall of cameras may ask for: a description has at most 16
/// m-sections, and 16 tiles fill a 4 × 4 grid.
pub const MAX_WALL_TRACKS: usize = 16;

pub struct ViewerSession {
    pub id: String,
    /// What the viewer asked to watch, for logs and the session list: a path's name, or
    /// `wall of N` for a wall of cameras.
    pub label: String,
    peer: Arc<Peer>,
    state: watch::Receiver<ConnectionState>,
    announcer: Arc<Announcer>,
    /// One per video m-section: a path's video, or the tiles of a wall.
    tracks: Vec<VideoTrack>,
    wall: bool,
    audio_forwarder: Option<tokio::task::JoinHandle<()>>,
    nack_stats: Arc<NackStats>,
    link: Arc<LinkQuality>,
    activity: Arc<ViewerActivity>,
    /// Holds the path it was opened for as a reader (which keeps a camera on demand open)
    /// until the session is closed (a socket may hold a closed session a while longer).
    opening: parking_lot::Mutex<Option<ReaderHold>>,
    /// What its tracks counted for paths they no longer show (a wall's switched tiles), by path:
    /// one entry a path, however often tiles switch.
    retired: parking_lot::Mutex<HashMap<String, ViewerTotals>>,
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
        let requested = Instant::now();
        // A camera on demand opens for this reader; the viewer waits for its first frame.
        let reading = stream.hold();
        let state = stream.until_live().await;
        if !state.is_live() {
            return Err(SessionError::PathNotLive { path: stream.name().to_owned(), state: state.to_string() });
        }
        let audio = stream.source_audio().as_ref().map(audio_forwarder::codec_for);
        let media = SentMedia { video_tracks: 1, audio };
        let opened = Self::open(network, media, (id, stream.name().to_owned(), stream.name()), Some(reading)).await?;
        let audio_forwarder = opened.peer.peer.audio_ssrc().zip(audio).map(|(ssrc, codec)| {
            let sink = MediaSink { peer: opened.peer.peer.clone(), track: SinkTrack::Audio(codec) };
            let forwarder = AudioForwarder { sink, ssrc, stream: stream.clone(), state: opened.peer.state.clone(), clock: opened.peer.audio_clock.clone() };
            tokio::spawn(forwarder.run())
        });
        Ok(opened.with_tracks(vec![Some((stream.clone(), slot))], audio_forwarder, send_delays, requested, false))
    }

    /// A session for a wall of cameras: one video track per tile, each showing its path (or
    /// nothing yet) with the viewer's slot on it, no sound. Tiles switch paths with `show`.
    pub async fn start_wall(tiles: Vec<Option<(Arc<Stream>, ViewerSlot)>>, network: &Network, send_delays: &SendDelays, id: String) -> Result<Self, SessionError> {
        let requested = Instant::now();
        let media = SentMedia { video_tracks: tiles.len(), audio: None };
        let opened = Self::open(network, media, (id, format!("wall of {}", tiles.len()), "wall"), None).await?;
        Ok(opened.with_tracks(tiles, None, send_delays, requested, true))
    }

    /// `names`: the session's id, its label, and its media stream's name in the descriptions
    /// (a path's name, or `wall`).
    async fn open(network: &Network, media: SentMedia, (id, label, stream_name): (String, String, &str), opening: Option<ReaderHold>) -> Result<Opened, SessionError> {
        let peer = match viewer_peer::build(network, network.own_ice_servers(&id), media, (&id, stream_name)).await {
            Ok(peer) => peer,
            Err(BuildError::PortsExhausted(range)) => return Err(SessionError::ServerFull(range)),
            Err(error) => return Err(SessionError::Setup(error)),
        };
        Ok(Opened { id, label, peer, opening, announcer: network.announcer.clone() })
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

    /// The connection's figures: its link and the NACKs it answered.
    pub fn link(&self) -> LinkQualitySnapshot {
        self.link.snapshot()
    }

    /// What its first video track counts for the path it shows now: a path's session's video.
    pub fn video_stats(&self) -> Option<TrackStats> {
        self.tracks.first()?.stats(&self.nack_stats, &self.link)
    }

    /// What each track counts for the path it shows now, in track order (`None` for a tile
    /// that shows nothing).
    pub fn track_stats(&self) -> Vec<Option<TrackStats>> {
        self.tracks.iter().map(|track| track.stats(&self.nack_stats, &self.link)).collect()
    }

    /// The paths its tracks show now, in track order.
    pub fn paths(&self) -> Vec<Option<String>> {
        self.tracks.iter().map(VideoTrack::path).collect()
    }

    /// Adds what it sent of each path to `totals`, what its tiles sent of paths they no longer
    /// show included. The connection's own figures (receiver reports, NACKs answered) go with
    /// the path of its first track that shows one.
    pub fn add_figures(&self, totals: &mut HashMap<String, ViewerTotals>) {
        // Held throughout, so that a tile switching meanwhile is counted once.
        let retired = self.retired.lock();
        let link = self.link.reported();
        let shown = self.tracks.iter().filter_map(|track| track.figures(&self.nack_stats, &self.link));
        for (index, (path, stats)) in shown.enumerate() {
            totals.entry(path).or_default().add(&stats, (index == 0).then_some(&link));
        }
        for (path, retired) in retired.iter() {
            totals.entry(path.clone()).or_default().merge(retired);
        }
    }

    /// The one path the session watches, unless it is a wall of cameras.
    pub fn single_path(&self) -> Option<String> {
        match self.wall {
            true => None,
            false => self.tracks.first()?.path(),
        }
    }

    /// Whether it is a wall of cameras, whose tiles go blank rather than end with their paths.
    pub fn is_wall(&self) -> bool {
        self.wall
    }

    /// Blanks every tile that shows `path`.
    pub fn blank(&self, path: &str) {
        for (index, track) in self.tracks.iter().enumerate() {
            if track.path().as_deref() == Some(path) {
                let _ = self.show(index, None);
            }
        }
    }

    /// The round trip and loss of every receiver report so far.
    pub fn reported_link(&self) -> ReportedLink {
        self.link.reported()
    }

    /// Keeps the page's new report of its playback, and gives back the one before.
    pub fn replace_experience(&self, report: QoeReport) -> Option<QoeReport> {
        self.experience.lock().replace(report)
    }

    /// An RTP timestamp of the session's first video track and when that frame was captured,
    /// once one was sent (what its RTCP sender reports say).
    pub fn clock_reference(&self) -> Option<(u32, std::time::SystemTime)> {
        self.tracks.first()?.clock_reference()
    }

    fn track(&self, index: usize) -> Result<&VideoTrack, SessionError> {
        self.tracks.get(index).ok_or(SessionError::UnknownTrack { track: index, tracks: self.tracks.len() })
    }

    /// Pins track `track` to the layer named `layer` ("main", "sub", ...), or lets Lookout
    /// choose again with `None`.
    pub fn pin_layer(&self, track: usize, layer: Option<&str>) -> Result<(), SessionError> {
        Ok(self.track(track)?.pin_layer(layer)?)
    }

    /// Shows `path` on track `track` (a tile of a wall) from its cached GOP on, with the
    /// viewer's slot on it, or nothing.
    pub fn show(&self, track: usize, path: Option<(Arc<Stream>, ViewerSlot)>) -> Result<(), SessionError> {
        let track = self.track(track)?;
        let mut retired = self.retired.lock();
        if let Some((path, before)) = track.show(path, &self.nack_stats, &self.link) {
            retired.entry(path).or_default().add(&before, None);
        }
        Ok(())
    }

    /// Forgets what its tiles counted for `path`, deleted: its metrics go with it.
    pub fn forget_path(&self, path: &str) {
        self.retired.lock().remove(path);
    }

    /// The layer each track gets and why, updated as it changes.
    pub fn layer_statuses(&self) -> Vec<watch::Receiver<LayerStatus>> {
        self.tracks.iter().map(VideoTrack::layer_status).collect()
    }

    /// How long the viewer has sent nothing (see `viewer_activity.rs`).
    pub fn silent_for(&self, now: Instant) -> std::time::Duration {
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
        self.opening.lock().take();
        // How far the connection got, and what it was sent: a session that ends before its
        // first frame says where it stopped.
        let reached = *self.state.borrow();
        let frames_sent: u64 = self.track_stats().iter().flatten().map(|stats| stats.frames_sent).sum();
        self.peer.connection.close();
        tracing::info!(session = %self.id, path = %self.label, connection = ?reached, frames_sent, "viewer session closed");
    }

    fn stop_forwarders(&self) {
        self.tracks.iter().for_each(VideoTrack::stop);
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

/// A session's connection, before its tracks start.
struct Opened {
    id: String,
    label: String,
    peer: ViewerPeer,
    opening: Option<ReaderHold>,
    announcer: Arc<Announcer>,
}

impl Opened {
    /// Starts a video track per tile, showing its path, and the session.
    fn with_tracks(self, tiles: Vec<Option<(Arc<Stream>, ViewerSlot)>>, audio_forwarder: Option<tokio::task::JoinHandle<()>>, send_delays: &SendDelays, requested: Instant, wall: bool) -> ViewerSession {
        let Opened { id, label, mut peer, opening, announcer } = self;
        let feedback = std::mem::take(&mut peer.video_tracks);
        let tracks = feedback.into_iter().zip(tiles).enumerate().map(|(index, (feedback, tile))| VideoTrack::start(index, feedback, &peer, tile, send_delays, requested)).collect();
        tracing::info!(session = %id, path = %label, "viewer session created");
        ViewerSession {
            id,
            label,
            peer: peer.peer,
            state: peer.state,
            announcer,
            tracks,
            wall,
            audio_forwarder,
            nack_stats: peer.nack_stats,
            link: peer.link,
            activity: peer.activity,
            opening: parking_lot::Mutex::new(opening),
            retired: Default::default(),
            sockets: peer.hold,
            closed: Default::default(),
            experience: Default::default(),
        }
    }
}

/// A new viewer session's id: random, so that knowing one tells nothing of another.
pub fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
