//! Feeds one viewer's track from its path: shared payloads, per-viewer RTP headers, paced;
//! a fresh keyframe when the viewer asks for one; the layer its link carries.

use super::keyframe_requests::KeyframeRequests;
use super::layer_choice::{LayerChooser, LayerInputs, LayerMode, LayerStep};
use super::layer_ladder::{rung, rung_bitrates, rung_names};
use super::link_quality::{LinkQuality, LinkQualitySnapshot};
use super::pacer::{ViewerPacer, MAX_PACING_DELAY};
use super::retransmitter::{NackStats, NackStatsSnapshot};
use super::rtp_header::RtpHeaderState;
use super::send_delay::StreamSendDelay;
use super::sent_frames::{RtpStreamId, SentFrames};
use super::track_start::{self, is_terminal};
use crate::media::Frame;
use crate::stream::{Reader, Stream};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use super::media_sink::{MediaSink, SinkClosed};
use webrtc::peer_connection::RTCPeerConnectionState;

/// A new viewer gets the cached GOP at once (its keyframe is the only picture it can start
/// from) with its timestamps squeezed to this spacing, ending at the newest cached frame's:
/// a burst of frames stamped with their capture times, seconds apart, would be played at their
/// original pace and keep the viewer seconds behind live for good. Squeezed, the timestamps
/// agree with the way the frames arrive, the browser shows the GOP as a short fast-forward
/// and then plays live frames at live latency. 2 ms is a few times what a browser takes to
/// decode one frame.
const REPLAY_FRAME_SPACING_90K: u64 = 180;

/// The replayed GOP is paced at the rate that sends it within this window, or at the live
/// pacing rate when that is faster. At memory speed it would be hundreds of packets in one
/// burst; spread much longer, the live frames queued behind it arrive late for the timestamps
/// they carry (at 300 ms Chromium raised its playout delay and froze in two of four joins).
const REPLAY_WINDOW: Duration = Duration::from_millis(100);

/// Browsers repeat keyframe requests while they wait; one answer per interval is enough.
const MIN_RESYNC_INTERVAL: Duration = Duration::from_millis(300);

/// How often a viewer is checked against its link.
const LAYER_CHOICE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Default, Debug)]
pub struct ForwarderStats {
    pub frames_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub frames_skipped: AtomicU64,
    /// Frames left out on purpose: the viewer is on keyframes only.
    pub frames_withheld: AtomicU64,
    pub keyframes_resent: AtomicU64,
    pub layer_switches: AtomicU64,
}

#[derive(Serialize)]
pub struct ForwarderStatsSnapshot {
    pub frames_sent: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub frames_skipped: u64,
    pub frames_withheld: u64,
    pub keyframe_requests: u64,
    pub keyframes_resent: u64,
    pub layer_switches: u64,
    #[serde(flatten)]
    pub nack: NackStatsSnapshot,
    #[serde(flatten)]
    pub link: LinkQualitySnapshot,
    pub layer: LayerStatus,
}

impl ForwarderStats {
    pub fn snapshot(&self, keyframe_requests: &KeyframeRequests, nack: &NackStats, link: &LinkQuality, layer: LayerStatus) -> ForwarderStatsSnapshot {
        ForwarderStatsSnapshot {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            frames_skipped: self.frames_skipped.load(Ordering::Relaxed),
            frames_withheld: self.frames_withheld.load(Ordering::Relaxed),
            keyframe_requests: keyframe_requests.received(),
            keyframes_resent: self.keyframes_resent.load(Ordering::Relaxed),
            layer_switches: self.layer_switches.load(Ordering::Relaxed),
            nack: nack.snapshot(),
            link: link.snapshot(),
            layer,
        }
    }
}

/// The layer a viewer gets and why: in its session's stats and told to the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerStatus {
    pub layer: String,
    /// The path's layers, best first, and last `keyframes` (the lowest layer's keyframes alone).
    pub layers: Vec<String>,
    pub mode: LayerMode,
    pub reason: String,
}

impl LayerStatus {
    pub fn initial(layer_count: usize) -> Self {
        let reason = if layer_count > 1 { "the best layer, to start" } else { "the path's only layer" };
        let layers = rung_names(layer_count);
        Self { layer: layers[0].clone(), layers, mode: LayerMode::Auto, reason: reason.to_owned() }
    }
}

/// How a frame goes out: a live frame at its own timestamp, by a deadline from its arrival,
/// its wait recorded for its layer (`StreamSendDelay::record`); a frame sent to catch up (the
/// replayed GOP, a cached keyframe) at the timestamp and by the deadline given.
#[derive(Clone, Copy)]
enum Delivery<'a> {
    Live(&'a StreamSendDelay),
    Catchup { timestamp: u64, deadline: Instant },
}

/// A switch decided and waiting for the new layer's next keyframe.
struct PendingSwitch {
    step: LayerStep,
    reader: Reader,
}

/// The next keyframe of the layer being switched to; never, when no switch is pending.
async fn next_keyframe(pending: &mut Option<PendingSwitch>) -> Option<Arc<Frame>> {
    match pending {
        Some(switch) => switch.reader.next().await,
        None => std::future::pending().await,
    }
}

pub(super) struct Forwarder {
    pub sink: MediaSink,
    pub ssrc: u32,
    pub stream: Arc<Stream>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
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
    /// When the session was created, to log how long the viewer waited for its first frame.
    pub created: Instant,
}

impl Forwarder {
    pub async fn run(mut self) {
        if !track_start::connected(&mut self.state).await {
            return;
        }
        let Some(payload_type) = self.sink.payload_type(self.stream.name(), "video").await else { return };
        let mut header = RtpHeaderState::new(RtpStreamId { ssrc: self.ssrc, payload_type });
        tracing::info!(path = self.stream.name(), "viewer connected after {} ms", self.created.elapsed().as_millis());
        let layers = self.stream.layers();
        let names = rung_names(layers.len());
        let mut chooser = LayerChooser::new(0);
        let mut reader = self.stream.subscribe();
        let mut pacer = ViewerPacer::default();
        let backlog = reader.take_backlog();
        let replay_bits: usize = backlog.iter().map(|frame| frame.data.len() * 8).sum();
        pacer.follow_stream_bitrate(self.stream.bitrate_bps());
        pacer.set_rate(pacer.rate().max(replay_bits as f64 / REPLAY_WINDOW.as_secs_f64()));
        let replay_deadline = Instant::now() + REPLAY_WINDOW;
        for (frame, timestamp) in squeezed_replay(backlog) {
            if self.send(&mut header, &mut pacer, &frame, Delivery::Catchup { timestamp, deadline: replay_deadline }).await.is_err() {
                return;
            }
        }
        pacer.follow_stream_bitrate(self.stream.bitrate_bps());
        let mut last_resync: Option<Instant> = None;
        let mut pending: Option<PendingSwitch> = None;
        // Frames skipped by the readers of layers left behind.
        let mut skipped_before = 0;
        let mut choice_ticks = tokio::time::interval(LAYER_CHOICE_INTERVAL);
        choice_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                frame = reader.next() => {
                    let Some(frame) = frame else { return };
                    let current = rung(chooser.current(), layers.len());
                    if current.keyframes_only && !frame.keyframe {
                        self.stats.frames_withheld.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if frame.keyframe {
                        pacer.follow_stream_bitrate(layers[current.layer].bitrate_bps());
                    }
                    if self.send(&mut header, &mut pacer, &frame, Delivery::Live(&self.send_delays[current.layer])).await.is_err() {
                        return;
                    }
                }
                keyframe = next_keyframe(&mut pending) => {
                    let Some(switch) = pending.take() else { continue };
                    let Some(keyframe) = keyframe else {
                        chooser.switch_abandoned(); // that layer's stream is gone
                        continue;
                    };
                    skipped_before += reader.frames_lost();
                    reader = switch.reader;
                    header.continue_with(&keyframe);
                    chooser.switched_to(switch.step.layer, Instant::now());
                    if let Some(bits_per_second) = switch.step.probe_at_bps {
                        self.link.restart_estimate_from(bits_per_second);
                    }
                    let layer_index = rung(switch.step.layer, layers.len()).layer;
                    pacer.follow_stream_bitrate(layers[layer_index].bitrate_bps());
                    self.stats.layer_switches.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(path = self.stream.name(), layer = names[switch.step.layer], reason = %switch.step.reason, "viewer switched layer");
                    self.layer_status.send_modify(|status| {
                        status.layer = names[switch.step.layer].clone();
                        status.mode = chooser.mode();
                        status.reason = switch.step.reason;
                    });
                    if self.send(&mut header, &mut pacer, &keyframe, Delivery::Live(&self.send_delays[layer_index])).await.is_err() {
                        return;
                    }
                }
                _ = choice_ticks.tick() => {
                    let bitrates = rung_bitrates(&layers);
                    let link = self.link.snapshot();
                    let inputs = LayerInputs { bitrates: &bitrates, names: &names, estimate_bps: link.estimated_bitrate_bps, loss_fraction: link.loss_fraction, now: Instant::now() };
                    if let Some(step) = chooser.decide(&inputs) {
                        if pending.as_ref().is_none_or(|switch| switch.step.layer != step.layer) {
                            let layer = &layers[rung(step.layer, layers.len()).layer];
                            let mut reader = layer.subscribe();
                            reader.skip_to_next_keyframe();
                            // The switch waits for that layer's keyframe: ask its camera for one.
                            layer.request_source_keyframe();
                            pending = Some(PendingSwitch { step, reader });
                        }
                    }
                }
                changed = self.pinned_layer.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let pinned = *self.pinned_layer.borrow_and_update();
                    chooser.pin(pinned.filter(|&layer| layer < names.len()));
                    self.layer_status.send_modify(|status| status.mode = chooser.mode());
                    choice_ticks.reset_immediately();
                }
                _ = self.keyframe_requests.next() => {
                    if last_resync.is_some_and(|at| at.elapsed() < MIN_RESYNC_INTERVAL) {
                        continue;
                    }
                    last_resync = Some(Instant::now());
                    // A camera that honours the request sends a fresh keyframe, where this viewer
                    // resumes sooner than at the camera's next periodic one.
                    let layer = &layers[rung(chooser.current(), layers.len()).layer];
                    layer.request_source_keyframe();
                    let Some(keyframe) = layer.cached_keyframe() else { continue };
                    // Frames after the cached keyframe would reference pictures this viewer
                    // may not have: after the keyframe it continues at the next live one.
                    reader.skip_to_next_keyframe();
                    self.stats.keyframes_resent.fetch_add(1, Ordering::Relaxed);
                    let resend = Delivery::Catchup { timestamp: keyframe.timestamp, deadline: Instant::now() + MAX_PACING_DELAY };
                    if self.send(&mut header, &mut pacer, &keyframe, resend).await.is_err() {
                        return;
                    }
                }
                changed = self.state.changed() => {
                    if changed.is_err() || is_terminal(*self.state.borrow()) {
                        return;
                    }
                }
            }
            self.stats.frames_skipped.store(skipped_before + reader.frames_lost(), Ordering::Relaxed);
        }
    }

    /// Sends a frame through the pacer; fails once the viewer's connection is closed.
    async fn send(&self, header: &mut RtpHeaderState, pacer: &mut ViewerPacer, frame: &Arc<Frame>, delivery: Delivery<'_>) -> Result<(), SinkClosed> {
        let (timestamp, deadline) = match delivery {
            Delivery::Live(_) => (frame.timestamp, frame.arrived_at + MAX_PACING_DELAY),
            Delivery::Catchup { timestamp, deadline } => (timestamp, deadline),
        };
        // The pacer's wait for a packet counts from when the frame reached it: the packets before
        // it in the frame waited on purpose too.
        let frame_handed_in = Instant::now();
        for packet in header.packets(frame, timestamp, &self.sent) {
            let size = packet.payload.len() as u64;
            let release = pacer.release_time(packet.payload.len(), Instant::now(), deadline);
            if release > Instant::now() {
                tokio::time::sleep_until(release.into()).await;
            }
            self.sink.write_rtp(packet).await?;
            if let Delivery::Live(send_delay) = delivery {
                let now = Instant::now();
                send_delay.record(now.saturating_duration_since(frame.arrived_at), release.saturating_duration_since(frame_handed_in), now);
            }
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes_sent.fetch_add(size, Ordering::Relaxed);
        }
        self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The cached GOP with the timestamps it is replayed at (see `REPLAY_FRAME_SPACING_90K`).
fn squeezed_replay(backlog: Vec<Arc<Frame>>) -> impl Iterator<Item = (Arc<Frame>, u64)> {
    let newest = backlog.last().map_or(0, |frame| frame.timestamp);
    let count = backlog.len() as u64;
    backlog.into_iter().zip(1..).map(move |(frame, position)| {
        let timestamp = newest.saturating_sub((count - position) * REPLAY_FRAME_SPACING_90K);
        (frame, timestamp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoParameters;
    use bytes::Bytes;

    fn frames(timestamps: &[u64]) -> Vec<Arc<Frame>> {
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        timestamps.iter().map(|&t| Arc::new(Frame::new(t, t == timestamps[0], Bytes::new(), parameters.clone()))).collect()
    }

    #[test]
    fn a_replayed_gop_ends_at_the_newest_frame_squeezed_behind_it() {
        let gop = frames(&[90_000, 93_000, 96_000, 450_000]);
        let replayed: Vec<u64> = squeezed_replay(gop).map(|(_, t)| t).collect();
        let spacing = REPLAY_FRAME_SPACING_90K;
        assert_eq!(replayed, vec![450_000 - 3 * spacing, 450_000 - 2 * spacing, 450_000 - spacing, 450_000]);
    }

    #[test]
    fn replay_of_nothing_or_of_an_early_gop() {
        assert_eq!(squeezed_replay(Vec::new()).count(), 0);
        let replayed: Vec<u64> = squeezed_replay(frames(&[0, 100])).map(|(_, t)| t).collect();
        assert_eq!(replayed, vec![0, 100], "saturates at zero; the sender keeps timestamps rising");
    }
}
