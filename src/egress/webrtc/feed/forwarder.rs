//! Feeds one viewer's video track from its path: drives its `VideoFeed` with the stream's
//! readers, the viewer's keyframe requests, pins and link, and writes the packets it releases
//! to the viewer's connection when their time comes.

use crate::egress::webrtc::feed::forwarder_stats::{ForwarderStats, LayerStatus};
use crate::egress::webrtc::rtcp::keyframe_requests::KeyframeRequests;
use crate::egress::webrtc::rtcp::link_quality::LinkQuality;
use crate::egress::webrtc::feed::media_sink::{MediaSink, SinkClosed};
use crate::egress::webrtc::feed::send_delay::{SendDelays, StreamSendDelay};
use crate::egress::webrtc::rtp::sent_frames::{RtpStreamId, SentFrames};
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use crate::egress::webrtc::feed::track_start;
use crate::egress::webrtc::feed::video_feed::{FeedAction, LinkReading, Outgoing, VideoFeed};
use crate::media::Frame;
use crate::stream::{Reader, Stream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// The next keyframe of the layer being switched to; never, when no switch is pending.
async fn next_keyframe(pending: &mut Option<Reader>) -> Option<Arc<Frame>> {
    match pending {
        Some(reader) => reader.next().await,
        None => std::future::pending().await,
    }
}

/// A path for a track to show, where to count what it is sent of it, and when the viewer asked
/// for it (to tell how long it waited for its connection and its first frame).
#[derive(Clone)]
pub struct TrackTarget {
    pub stream: Arc<Stream>,
    pub stats: Arc<ForwarderStats>,
    pub requested: Instant,
    /// The keyframe requests the track had had before it showed this path.
    pub keyframe_requests_before: u64,
}

pub struct Forwarder {
    pub sink: MediaSink,
    pub ssrc: u32,
    /// The path the track shows, if any: a tile of a wall switches camera by changing it.
    pub target: watch::Receiver<Option<TrackTarget>>,
    pub state: watch::Receiver<ConnectionState>,
    pub keyframe_requests: Arc<KeyframeRequests>,
    /// What this viewer was sent, for its NACKs.
    pub sent: Arc<SentFrames>,
    pub link: Arc<LinkQuality>,
    /// The layer the viewer pinned through signalling, by name; `None` lets Lookout choose.
    pub pinned_layer: watch::Receiver<Option<String>>,
    pub layer_status: watch::Sender<LayerStatus>,
    /// Where each layer's send delays are recorded.
    pub send_delays: SendDelays,
}

/// Why the forwarder stopped feeding the track from a path.
enum Shown {
    /// The track shows another path now (or none).
    Retargeted,
    /// The path ended (removed, or starting afresh): the track waits to be given one.
    PathEnded,
    /// The connection ended.
    Ended,
}

impl Forwarder {
    pub async fn run(mut self) {
        if !track_start::connected(&mut self.state).await {
            return;
        }
        let Some(payload_type) = self.sink.payload_type() else { return };
        if let Some(target) = &*self.target.borrow() {
            tracing::info!(path = target.stream.name(), "viewer connected after {} ms", target.requested.elapsed().as_millis());
        }
        let id = RtpStreamId { ssrc: self.ssrc, payload_type };
        // Made with the first path shown, and kept across the others: the viewer's sequence
        // numbers and timestamps run on.
        let mut feed: Option<VideoFeed> = None;
        loop {
            let target = self.target.borrow_and_update().clone();
            let shown = match target {
                Some(target) => self.show(&target, id, &mut feed).await,
                None => Shown::PathEnded,
            };
            match shown {
                Shown::Retargeted => {}
                Shown::Ended => return,
                Shown::PathEnded => {
                    if self.target.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Feeds the track from `target` until the track is retargeted or the connection ends.
    async fn show(&mut self, target: &TrackTarget, id: RtpStreamId, feed: &mut Option<VideoFeed>) -> Shown {
        let TrackTarget { stream, stats, requested, .. } = target;
        // A camera on demand opens for this reader.
        let _reading = stream.hold();
        let layers = stream.layers();
        let mut reader = stream.subscribe();
        let backlog = reader.take_backlog();
        let feed = match feed {
            Some(feed) => {
                feed.retarget(&layers, backlog, stats.clone(), Instant::now());
                tracing::info!(path = stream.name(), ssrc = self.ssrc, "viewer's track now shows this path");
                feed
            }
            None => feed.insert(VideoFeed::new(id, &layers, backlog, self.sent.clone(), stats.clone(), Instant::now())),
        };
        // The viewer learns the path's layers.
        self.layer_status.send_replace(feed.status().clone());
        let pinned = self.pinned_layer.borrow_and_update().clone();
        if pinned.is_some() {
            feed.on_pin(pinned.and_then(|name| feed.status().layers.iter().position(|known| *known == name)), Instant::now());
        }
        let send_delays: Vec<Arc<StreamSendDelay>> = layers.iter().map(|layer| self.send_delays.of(layer.name())).collect();
        let mut pending: Option<Reader> = None;
        // Frames skipped by the readers of layers left behind.
        let mut skipped_before = 0;
        // The packets the pacer releases at one moment, kept to spare an allocation a round.
        let mut released = Vec::new();
        loop {
            while let Some(action) = feed.poll_action() {
                match action {
                    FeedAction::AwaitKeyframeOf(layer) => {
                        let mut switch_reader = layers[layer].subscribe();
                        switch_reader.skip_to_next_keyframe();
                        pending = Some(switch_reader);
                    }
                    FeedAction::SkipToNextKeyframe => reader.skip_to_next_keyframe(),
                    FeedAction::RestartEstimateFrom(bits_per_second) => self.link.restart_estimate_from(bits_per_second, Instant::now()),
                    FeedAction::Status(status) => {
                        self.layer_status.send_replace(status);
                    }
                }
            }
            let now = Instant::now();
            released.extend(std::iter::from_fn(|| feed.poll_packet(now)));
            if self.send(&mut released, (stats.as_ref(), *requested), &send_delays).is_err() {
                return Shown::Ended;
            }
            let wake_at = feed.poll_timeout();
            tokio::select! {
                frame = reader.next() => {
                    let Some(frame) = frame else { return Shown::PathEnded };
                    feed.on_frame(&frame, &layers, Instant::now());
                }
                keyframe = next_keyframe(&mut pending) => {
                    let switch_reader = pending.take();
                    feed.on_switch_keyframe(keyframe.as_ref(), &layers, Instant::now());
                    if let (Some(_), Some(switch_reader)) = (&keyframe, switch_reader) {
                        skipped_before += reader.frames_lost();
                        reader = switch_reader;
                        let status = feed.status();
                        tracing::info!(path = stream.name(), layer = %status.layer, reason = %status.reason, "viewer switched layer");
                    }
                }
                changed = self.pinned_layer.changed() => {
                    if changed.is_err() {
                        return Shown::Ended;
                    }
                    let pinned = self.pinned_layer.borrow_and_update().clone();
                    let rung = pinned.and_then(|name| feed.status().layers.iter().position(|known| *known == name));
                    feed.on_pin(rung, Instant::now());
                }
                changed = self.target.changed() => {
                    return if changed.is_ok() { Shown::Retargeted } else { Shown::Ended };
                }
                _ = self.keyframe_requests.next() => feed.on_keyframe_request(&layers, Instant::now()),
                changed = self.state.changed() => {
                    if changed.is_err() || self.state.borrow().is_terminal() {
                        return Shown::Ended;
                    }
                }
                _ = tokio::time::sleep_until(wake_at.into()) => {
                    let link = self.link.snapshot();
                    let reading = LinkReading { estimate_bps: link.estimated_bitrate_bps, loss_fraction: link.loss_fraction, burst_bps: link.burst_bps };
                    feed.handle_timeout(reading, &layers, Instant::now());
                }
            }
            stats.frames_skipped.store(skipped_before + reader.frames_lost(), Ordering::Relaxed);
        }
    }

    /// Writes the packets released now, together (one lock of the connection, one wake of the
    /// socket's sender), and empties `released`; fails once the viewer's connection is closed.
    fn send(&self, released: &mut Vec<Outgoing>, (stats, requested): (&ForwarderStats, Instant), send_delays: &[Arc<StreamSendDelay>]) -> Result<(), SinkClosed> {
        if released.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        for outgoing in released.iter() {
            if let Some(live) = outgoing.live {
                // The pacer's wait counts from when the frame reached it: the packets before it
                // in the frame waited on purpose too.
                if let Some(delays) = send_delays.get(live.layer) {
                    delays.record(now.saturating_duration_since(live.arrived_at), outgoing.release.saturating_duration_since(live.handed_in), now);
                }
            }
            stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            stats.bytes_sent.fetch_add(outgoing.packet.payload.len() as u64, Ordering::Relaxed);
            if outgoing.ends_frame && stats.frames_sent.fetch_add(1, Ordering::Relaxed) == 0 {
                let _ = stats.first_frame_after.set(requested.elapsed());
            }
        }
        self.sink.write_rtp(released.drain(..).map(|outgoing| outgoing.packet))
    }
}
