//! One video track of a viewer's session: the path it shows (a session watching a path has one
//! track; a wall of cameras has one per tile, each switched to another path by a message), the
//! forwarder that feeds it, and what it counts.

use crate::egress::webrtc::feed::forwarder::{Forwarder, TrackTarget};
use crate::egress::webrtc::feed::forwarder_stats::LayerStatus;
use crate::egress::webrtc::feed::media_sink::{MediaSink, SinkTrack};
use crate::egress::webrtc::feed::send_delay::SendDelays;
use crate::egress::webrtc::rtcp::keyframe_requests::KeyframeRequests;
use crate::egress::webrtc::rtcp::link_quality::LinkQuality;
use crate::egress::webrtc::rtcp::retransmitter::NackStats;
use crate::egress::webrtc::rtp::sent_frames::SentFrames;
use crate::egress::webrtc::session::viewer_peer::{VideoTrackFeedback, ViewerPeer};
pub use crate::egress::webrtc::feed::forwarder_stats::ForwarderStatsSnapshot as TrackStats;
use crate::limits::ViewerSlot;
use crate::stream::Stream;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
#[error("no layer {layer:?}; this path has {}", layers.join(", "))]
pub struct UnknownLayer {
    pub layer: String,
    pub layers: Vec<String>,
}

pub struct VideoTrack {
    /// The path it shows, and what it counted for it (afresh for each path).
    target: watch::Sender<Option<TrackTarget>>,
    forwarder: tokio::task::JoinHandle<()>,
    keyframe_requests: Arc<KeyframeRequests>,
    sent_frames: Arc<SentFrames>,
    /// Counts the viewer against the limits of the path it shows, until the session closes.
    slot: Mutex<Option<ViewerSlot>>,
    pinned_layer: watch::Sender<Option<String>>,
    layer_status: watch::Receiver<LayerStatus>,
}

impl VideoTrack {
    /// Starts the forwarder of track `index` of `peer`, showing `path` with the viewer's slot
    /// on it (none yet: nothing is sent until a path is given). `requested`: when the viewer
    /// asked to watch.
    pub fn start(index: usize, feedback: VideoTrackFeedback, peer: &ViewerPeer, path: Option<(Arc<Stream>, ViewerSlot)>, send_delays: &SendDelays, requested: Instant) -> Self {
        let (path, slot) = path.unzip();
        let layer_count = path.as_ref().map_or(1, |stream| stream.layers().len());
        let target = path.map(|stream| TrackTarget { stream, stats: Arc::default(), requested, keyframe_requests_before: 0 });
        let (target, target_rx) = watch::channel(target);
        let (pinned_layer, pinned_layer_rx) = watch::channel(None);
        let (layer_status_tx, layer_status) = watch::channel(LayerStatus::initial(layer_count));
        let forwarder = Forwarder {
            sink: MediaSink { peer: peer.peer.clone(), track: SinkTrack::Video(index) },
            ssrc: feedback.ssrc,
            target: target_rx,
            state: peer.state.clone(),
            keyframe_requests: feedback.keyframe_requests.clone(),
            sent: feedback.sent_frames.clone(),
            link: peer.link.clone(),
            pinned_layer: pinned_layer_rx,
            layer_status: layer_status_tx,
            send_delays: send_delays.clone(),
        };
        Self {
            target,
            forwarder: tokio::spawn(forwarder.run()),
            keyframe_requests: feedback.keyframe_requests,
            sent_frames: feedback.sent_frames,
            slot: Mutex::new(slot),
            pinned_layer,
            layer_status,
        }
    }

    /// The path the track shows, if any.
    pub fn path(&self) -> Option<String> {
        self.target.borrow().as_ref().map(|target| target.stream.name().to_owned())
    }

    /// Shows `path` from now on (its cached GOP first), with the viewer's slot on it, or
    /// nothing. Gives back what the track counted for the path it showed, with that path's name.
    pub fn show(&self, path: Option<(Arc<Stream>, ViewerSlot)>, nack: &NackStats, link: &LinkQuality) -> Option<(String, TrackStats)> {
        let (path, slot) = path.unzip();
        *self.slot.lock() = slot;
        let keyframe_requests_before = self.keyframe_requests.received();
        let target = path.map(|stream| TrackTarget { stream, stats: Arc::default(), requested: Instant::now(), keyframe_requests_before });
        let before = self.target.send_replace(target)?;
        Some((before.stream.name().to_owned(), self.snapshot(&before, nack, link, keyframe_requests_before)))
    }

    /// The path it shows and what it counted for it, read together (`None` when it shows none).
    pub fn figures(&self, nack: &NackStats, link: &LinkQuality) -> Option<(String, TrackStats)> {
        let target = self.target.borrow();
        let target = target.as_ref()?;
        Some((target.stream.name().to_owned(), self.snapshot(target, nack, link, self.keyframe_requests.received())))
    }

    /// What the track counted for the path it shows now (`None` when it shows none). The
    /// link's and NACK figures are the connection's.
    pub fn stats(&self, nack: &NackStats, link: &LinkQuality) -> Option<TrackStats> {
        self.target.borrow().as_ref().map(|target| self.snapshot(target, nack, link, self.keyframe_requests.received()))
    }

    /// What the track counted while it showed `target`, whose keyframe requests had come to
    /// `requests_until` by its end (or now).
    fn snapshot(&self, target: &TrackTarget, nack: &NackStats, link: &LinkQuality, requests_until: u64) -> TrackStats {
        let requests = requests_until.saturating_sub(target.keyframe_requests_before);
        target.stats.snapshot(requests, nack, link, self.layer_status.borrow().clone())
    }

    /// Pins the layer named `layer` ("main", "sub", ...), or lets Lookout choose again with
    /// `None`. A pin outlasts a switch to another path that has a layer of that name.
    pub fn pin_layer(&self, layer: Option<&str>) -> Result<(), UnknownLayer> {
        if let Some(name) = layer {
            let layers = self.layer_status.borrow().layers.clone();
            if !layers.iter().any(|known| known == name) {
                return Err(UnknownLayer { layer: name.to_owned(), layers });
            }
        }
        self.pinned_layer.send_replace(layer.map(str::to_owned));
        Ok(())
    }

    /// The layer the track gets and why, updated as it changes.
    pub fn layer_status(&self) -> watch::Receiver<LayerStatus> {
        self.layer_status.clone()
    }

    /// An RTP timestamp of this track and when that frame was captured, once one was sent.
    pub fn clock_reference(&self) -> Option<(u32, std::time::SystemTime)> {
        self.sent_frames.clock_reference()
    }

    /// Stops sending, and no longer counts the viewer.
    pub fn stop(&self) {
        self.forwarder.abort();
        self.slot.lock().take();
    }
}

impl Drop for VideoTrack {
    fn drop(&mut self) {
        self.stop();
    }
}
