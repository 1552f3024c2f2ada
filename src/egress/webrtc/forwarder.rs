//! Feeds one viewer's track from its stream: shared payloads, per-viewer RTP headers, and a
//! fresh keyframe when the viewer asks for one.

use super::keyframe_requests::KeyframeRequests;
use super::link_quality::{LinkQuality, LinkQualitySnapshot};
use super::pacer::{ViewerPacer, MAX_PACING_DELAY};
use super::packetizer;
use super::retransmitter::{NackStats, NackStatsSnapshot};
use super::session::is_terminal;
use crate::media::Frame;
use crate::stream::Stream;
use super::sent_frames::{rtp_packet, RtpStreamId, SentFrames};
use rtc::rtp::packet::Packet;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RtpSender;

/// A viewer that has not connected by then will not: ICE gives up well before.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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

#[derive(Default, Debug)]
pub struct ForwarderStats {
    pub frames_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub frames_skipped: AtomicU64,
    pub keyframes_resent: AtomicU64,
}

#[derive(Serialize)]
pub struct ForwarderStatsSnapshot {
    pub frames_sent: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub frames_skipped: u64,
    pub keyframe_requests: u64,
    pub keyframes_resent: u64,
    #[serde(flatten)]
    pub nack: NackStatsSnapshot,
    #[serde(flatten)]
    pub link: LinkQualitySnapshot,
}

impl ForwarderStats {
    pub fn snapshot(&self, keyframe_requests: &KeyframeRequests, nack: &NackStats, link: &LinkQuality) -> ForwarderStatsSnapshot {
        ForwarderStatsSnapshot {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            frames_skipped: self.frames_skipped.load(Ordering::Relaxed),
            keyframe_requests: keyframe_requests.received(),
            keyframes_resent: self.keyframes_resent.load(Ordering::Relaxed),
            nack: nack.snapshot(),
            link: link.snapshot(),
        }
    }
}

/// The per-viewer part of the RTP header.
struct RtpHeaderState {
    id: RtpStreamId,
    sequence_number: u16,
    timestamp_offset: u32,
    /// Never goes backwards, so a keyframe resent from the cache is not taken for a stale frame.
    last_timestamp: Option<u64>,
}

impl RtpHeaderState {
    /// The frame's packets with this viewer's header, noted in its history for NACKs.
    /// `timestamp` is the frame's own, or the one it is replayed at.
    fn packets<'a>(&'a mut self, frame: &'a Arc<Frame>, timestamp: u64, sent: &SentFrames) -> impl Iterator<Item = Packet> + 'a {
        let payloads = packetizer::payloads_of(frame);
        let timestamp = match self.last_timestamp {
            Some(last) if timestamp <= last => last + 1,
            _ => timestamp,
        };
        let on_time = timestamp == frame.timestamp;
        self.last_timestamp = Some(timestamp);
        let rtp_timestamp = (timestamp as u32).wrapping_add(self.timestamp_offset);
        let first_sequence = self.sequence_number.wrapping_add(1);
        sent.record(first_sequence, rtp_timestamp, frame.clone(), on_time, Instant::now());
        self.sequence_number = self.sequence_number.wrapping_add(payloads.len() as u16);
        let id = self.id;
        (0..payloads.len()).map(move |index| rtp_packet(id, first_sequence.wrapping_add(index as u16), rtp_timestamp, payloads, index))
    }
}

pub(super) struct Forwarder {
    pub track: Arc<TrackLocalStaticRTP>,
    pub sender: Arc<dyn RtpSender>,
    pub ssrc: u32,
    pub stream: Arc<Stream>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub stats: Arc<ForwarderStats>,
    pub keyframe_requests: Arc<KeyframeRequests>,
    /// What this viewer was sent, for its NACKs.
    pub sent: Arc<SentFrames>,
    /// When the session was created, to log how long the viewer waited for its first frame.
    pub created: Instant,
}

impl Forwarder {
    pub async fn run(mut self) {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.state.wait_for(|s| *s == RTCPeerConnectionState::Connected || is_terminal(*s)))
            .await
            .is_ok_and(|reached| reached.is_ok_and(|s| *s == RTCPeerConnectionState::Connected));
        if !connected {
            return;
        }
        // The payload type is the one negotiated, which in WHEP is the viewer's choice.
        let payload_type = match self.sender.get_parameters().await {
            Ok(parameters) => match parameters.rtp_parameters.codecs.first() {
                Some(codec) => codec.payload_type,
                None => return tracing::warn!(path = self.stream.name(), "no codec negotiated; not sending"),
            },
            Err(error) => return tracing::warn!(path = self.stream.name(), %error, "cannot read the negotiated codec"),
        };
        let mut header = RtpHeaderState {
            id: RtpStreamId { ssrc: self.ssrc, payload_type },
            sequence_number: rand::random(),
            timestamp_offset: rand::random(),
            last_timestamp: None,
        };
        tracing::info!(path = self.stream.name(), "viewer connected after {} ms", self.created.elapsed().as_millis());
        let mut reader = self.stream.subscribe();
        let mut pacer = ViewerPacer::default();
        let backlog = reader.take_backlog();
        let replay_bits: usize = backlog.iter().map(|frame| frame.data.len() * 8).sum();
        pacer.follow_stream_bitrate(self.stream.bitrate_bps());
        pacer.set_rate(pacer.rate().max(replay_bits as f64 / REPLAY_WINDOW.as_secs_f64()));
        let replay_deadline = Instant::now() + REPLAY_WINDOW;
        for (frame, timestamp) in squeezed_replay(backlog) {
            if self.send(&mut header, &mut pacer, &frame, timestamp, replay_deadline).await.is_err() {
                return;
            }
        }
        pacer.follow_stream_bitrate(self.stream.bitrate_bps());
        let mut last_resync: Option<Instant> = None;
        loop {
            tokio::select! {
                frame = reader.next() => {
                    let Some(frame) = frame else { return };
                    if frame.keyframe {
                        pacer.follow_stream_bitrate(self.stream.bitrate_bps());
                    }
                    if self.send(&mut header, &mut pacer, &frame, frame.timestamp, frame.arrived_at + MAX_PACING_DELAY).await.is_err() {
                        return;
                    }
                }
                _ = self.keyframe_requests.next() => {
                    if last_resync.is_some_and(|at| at.elapsed() < MIN_RESYNC_INTERVAL) {
                        continue;
                    }
                    last_resync = Some(Instant::now());
                    let Some(keyframe) = self.stream.cached_keyframe() else { continue };
                    // Frames after the cached keyframe would reference pictures this viewer
                    // may not have: after the keyframe it continues at the next live one.
                    reader.skip_to_next_keyframe();
                    self.stats.keyframes_resent.fetch_add(1, Ordering::Relaxed);
                    let deadline = Instant::now() + MAX_PACING_DELAY;
                    if self.send(&mut header, &mut pacer, &keyframe, keyframe.timestamp, deadline).await.is_err() {
                        return;
                    }
                }
                changed = self.state.changed() => {
                    if changed.is_err() || is_terminal(*self.state.borrow()) {
                        return;
                    }
                }
            }
            self.stats.frames_skipped.store(reader.frames_lost(), Ordering::Relaxed);
        }
    }

    /// Sends a frame through the pacer; its packets leave by `deadline` at the latest.
    async fn send(&self, header: &mut RtpHeaderState, pacer: &mut ViewerPacer, frame: &Arc<Frame>, timestamp: u64, deadline: Instant) -> Result<(), ()> {
        for packet in header.packets(frame, timestamp, &self.sent) {
            let size = packet.payload.len() as u64;
            let now = Instant::now();
            let release = pacer.release_time(packet.payload.len(), now, deadline);
            if release > now {
                tokio::time::sleep_until(release.into()).await;
            }
            if let Err(error) = self.track.write_rtp(packet).await {
                tracing::debug!(%error, "viewer track closed");
                return Err(());
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
