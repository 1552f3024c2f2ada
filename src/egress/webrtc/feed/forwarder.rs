//! Feeds one viewer's video track from its path: drives its `VideoFeed` with the stream's
//! readers, the viewer's keyframe requests, pins and link, and writes the packets it releases
//! to the viewer's connection when their time comes.

use crate::egress::webrtc::feed::forwarder_stats::{ForwarderStats, LayerStatus};
use crate::egress::webrtc::rtcp::keyframe_requests::KeyframeRequests;
use crate::egress::webrtc::rtcp::link_quality::LinkQuality;
use crate::egress::webrtc::feed::media_sink::{MediaSink, SinkClosed};
use crate::egress::webrtc::feed::send_delay::StreamSendDelay;
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

pub struct Forwarder {
    pub sink: MediaSink,
    pub ssrc: u32,
    pub stream: Arc<Stream>,
    pub state: watch::Receiver<ConnectionState>,
    pub stats: Arc<ForwarderStats>,
    pub keyframe_requests: Arc<KeyframeRequests>,
    /// What this viewer was sent, for its NACKs.
    pub sent: Arc<SentFrames>,
    pub link: Arc<LinkQuality>,
    /// The layer the viewer pinned through signalling, by index; `None` lets Lookout choose.
    pub pinned_layer: watch::Receiver<Option<usize>>,
    pub layer_status: watch::Sender<LayerStatus>,
    /// Where each layer's send delays are recorded, in the order of `Stream::layers`.
    pub send_delays: Vec<Arc<StreamSendDelay>>,
    /// When the viewer asked to watch (before a camera on demand opened for it), to tell how
    /// long it waited for its connection and its first frame.
    pub created: Instant,
}

impl Forwarder {
    pub async fn run(mut self) {
        if !track_start::connected(&mut self.state).await {
            return;
        }
        let Some(payload_type) = self.sink.payload_type(self.stream.name()) else { return };
        tracing::info!(path = self.stream.name(), "viewer connected after {} ms", self.created.elapsed().as_millis());
        let layers = self.stream.layers();
        let mut reader = self.stream.subscribe();
        let id = RtpStreamId { ssrc: self.ssrc, payload_type };
        let mut feed = VideoFeed::new(id, &layers, reader.take_backlog(), self.sent.clone(), self.stats.clone(), Instant::now());
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
            if self.send(&mut released).is_err() {
                return;
            }
            let wake_at = feed.poll_timeout();
            tokio::select! {
                frame = reader.next() => {
                    let Some(frame) = frame else { return };
                    feed.on_frame(&frame, &layers, Instant::now());
                }
                keyframe = next_keyframe(&mut pending) => {
                    let switch_reader = pending.take();
                    feed.on_switch_keyframe(keyframe.as_ref(), &layers, Instant::now());
                    if let (Some(_), Some(switch_reader)) = (&keyframe, switch_reader) {
                        skipped_before += reader.frames_lost();
                        reader = switch_reader;
                        let status = feed.status();
                        tracing::info!(path = self.stream.name(), layer = %status.layer, reason = %status.reason, "viewer switched layer");
                    }
                }
                changed = self.pinned_layer.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let pinned = *self.pinned_layer.borrow_and_update();
                    feed.on_pin(pinned, Instant::now());
                }
                _ = self.keyframe_requests.next() => feed.on_keyframe_request(&layers, Instant::now()),
                changed = self.state.changed() => {
                    if changed.is_err() || self.state.borrow().is_terminal() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(wake_at.into()) => {
                    let link = self.link.snapshot();
                    let reading = LinkReading { estimate_bps: link.estimated_bitrate_bps, loss_fraction: link.loss_fraction, burst_bps: link.burst_bps };
                    feed.handle_timeout(reading, &layers, Instant::now());
                }
            }
            self.stats.frames_skipped.store(skipped_before + reader.frames_lost(), Ordering::Relaxed);
        }
    }

    /// Writes the packets released now, together (one lock of the connection, one wake of the
    /// socket's sender), and empties `released`; fails once the viewer's connection is closed.
    fn send(&self, released: &mut Vec<Outgoing>) -> Result<(), SinkClosed> {
        if released.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        for outgoing in released.iter() {
            if let Some(live) = outgoing.live {
                // The pacer's wait counts from when the frame reached it: the packets before it
                // in the frame waited on purpose too.
                self.send_delays[live.layer].record(now.saturating_duration_since(live.arrived_at), outgoing.release.saturating_duration_since(live.handed_in), now);
            }
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes_sent.fetch_add(outgoing.packet.payload.len() as u64, Ordering::Relaxed);
            if outgoing.ends_frame && self.stats.frames_sent.fetch_add(1, Ordering::Relaxed) == 0 {
                let _ = self.stats.first_frame_after.set(self.created.elapsed());
            }
        }
        self.sink.write_rtp(released.drain(..).map(|outgoing| outgoing.packet))
    }
}
