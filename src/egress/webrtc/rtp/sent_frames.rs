//! What one viewer was sent lately, so that a NACK can be answered without keeping packets,
//! and its sender reports can say when the frames it gets were captured.
//!
//! The packets themselves are the stream's: a frame is packetized once (`packetizer`) and its
//! payloads are shared by every viewer. A viewer keeps one small entry per frame it was sent,
//! saying which of its sequence numbers and which RTP timestamp carried that frame; the packet a
//! NACK asks for is rebuilt from it, identical to the one first sent. So the history costs a
//! viewer about 40 bytes per frame, whatever the bitrate, and no payload is ever copied for it.
//! It goes back at most `HISTORY`, and not past a new start of the viewer's decoder.

use crate::egress::webrtc::rtp::packetizer::payloads_of;
use crate::media::Frame;
use bytes::Bytes;
use rtc::rtp::{header::Header, packet::Packet};
use std::collections::VecDeque;
use std::sync::Arc;
use parking_lot::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A retransmission older than this would arrive after the viewer's jitter buffer gave up on
/// the frame; a second also covers a NACK repeated after a lost retransmission at 300 ms RTT.
pub const HISTORY: Duration = Duration::from_millis(1500);

/// Bounds the index whatever the frame rate (a 240 fps source fills 1.5 s with 360 entries).
const MAX_FRAMES: usize = 512;

struct SentFrame {
    first_sequence: u16,
    rtp_timestamp: u32,
    frame: Arc<Frame>,
    sent_at: Instant,
}

impl SentFrame {
    fn packet_count(&self) -> usize {
        payloads_of(&self.frame).len()
    }
}

/// The per-viewer fields of an RTP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpStreamId {
    pub ssrc: u32,
    pub payload_type: u8,
}

/// The packet carrying payload `index` of a frame, as every path that sends one builds it.
pub fn rtp_packet(id: RtpStreamId, sequence_number: u16, timestamp: u32, payloads: &[Bytes], index: usize) -> Packet {
    Packet {
        header: Header {
            version: 2,
            marker: index + 1 == payloads.len(),
            payload_type: id.payload_type,
            sequence_number,
            timestamp,
            ssrc: id.ssrc,
            ..Default::default()
        },
        payload: payloads[index].clone(),
    }
}

/// Shared by the viewer's forwarder (which records) and its RTCP handling (which looks up);
/// no other viewer ever takes this lock.
#[derive(Default)]
pub struct SentFrames {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    frames: VecDeque<SentFrame>,
    /// The newest frame sent at its own timestamp (not replayed at a squeezed one), as the
    /// RTP timestamp it had and its capture time: what sender reports are built from.
    clock_reference: Option<(u32, SystemTime)>,
}

impl SentFrames {
    /// Notes that `frame` went out with sequence numbers from `first_sequence` on; `on_time`
    /// when its RTP timestamp is its own (not a replay's).
    pub fn record(&self, first_sequence: u16, rtp_timestamp: u32, frame: Arc<Frame>, on_time: bool, now: Instant) {
        let mut inner = self.inner.lock();
        if on_time {
            inner.clock_reference = Some((rtp_timestamp, frame.captured_at));
        }
        let frames = &mut inner.frames;
        while frames.front().is_some_and(|oldest| now.duration_since(oldest.sent_at) > HISTORY) || frames.len() >= MAX_FRAMES {
            frames.pop_front();
        }
        frames.push_back(SentFrame { first_sequence, rtp_timestamp, frame, sent_at: now });
    }

    /// The viewer's decoder starts again at the next frame (another layer's keyframe, a resent
    /// one): nothing sent before it is worth resending, and resending it would take the link from
    /// what follows (after a step down for congestion, the resends of the layer left filled the
    /// link the new one needed).
    pub fn forget_sent(&self) {
        self.inner.lock().frames.clear();
    }

    /// An RTP timestamp of this viewer's stream and the wall-clock capture time it stands for.
    pub fn clock_reference(&self) -> Option<(u32, SystemTime)> {
        self.inner.lock().clock_reference
    }

    /// The packet sent with `sequence_number`, if it is still in the history.
    pub fn packet(&self, id: RtpStreamId, sequence_number: u16) -> Option<Packet> {
        let inner = self.inner.lock();
        let frames = &inner.frames;
        // Newest first: NACKs ask for what was just sent.
        frames.iter().rev().find_map(|sent| {
            let index = usize::from(sequence_number.wrapping_sub(sent.first_sequence));
            (index < sent.packet_count())
                .then(|| rtp_packet(id, sequence_number, sent.rtp_timestamp, payloads_of(&sent.frame), index))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::join_length_prefixed;
    use crate::media::VideoParameters;

    const ID: RtpStreamId = RtpStreamId { ssrc: 7, payload_type: 102 };

    /// A frame of `fragments` FU-A packets.
    fn frame(fragments: usize) -> Arc<Frame> {
        let nal: Vec<u8> = std::iter::once(0x41).chain((0..fragments * 1100).map(|i| i as u8)).collect();
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::from_static(&[0x67]), pps: Bytes::from_static(&[0x68]) });
        let frame = Arc::new(Frame::new(0, false, join_length_prefixed([&nal[..]]), parameters));
        assert_eq!(payloads_of(&frame).len(), fragments);
        frame
    }

    #[test]
    fn a_packet_is_rebuilt_as_it_was_sent() {
        let sent = SentFrames::default();
        let now = Instant::now();
        let (a, b) = (frame(3), frame(2));
        sent.record(100, 9000, a.clone(), true, now);
        sent.record(103, 12000, b.clone(), true, now);
        let packet = sent.packet(ID, 102).expect("in history");
        assert_eq!((packet.header.sequence_number, packet.header.timestamp, packet.header.marker), (102, 9000, true));
        assert_eq!((packet.header.ssrc, packet.header.payload_type, packet.header.version), (7, 102, 2));
        assert_eq!(packet.payload, payloads_of(&a)[2], "the shared payload itself");
        assert_eq!(packet.payload.as_ptr(), payloads_of(&a)[2].as_ptr(), "not a copy");
        let first_of_b = sent.packet(ID, 103).expect("in history");
        assert_eq!((first_of_b.header.timestamp, first_of_b.header.marker), (12000, false));
        assert!(sent.packet(ID, 105).is_none(), "never sent");
        assert!(sent.packet(ID, 99).is_none(), "never sent");
    }

    #[test]
    fn the_clock_reference_is_the_newest_frame_sent_on_time() {
        let sent = SentFrames::default();
        assert_eq!(sent.clock_reference(), None);
        let (live, replayed) = (frame(1), frame(1));
        sent.record(1, 1000, live.clone(), true, Instant::now());
        sent.record(2, 1001, replayed, false, Instant::now());
        assert_eq!(sent.clock_reference(), Some((1000, live.captured_at)));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let sent = SentFrames::default();
        sent.record(65534, 1, frame(4), true, Instant::now());
        for sequence in [65534, 65535, 0, 1] {
            assert_eq!(sent.packet(ID, sequence).map(|p| p.header.sequence_number), Some(sequence));
        }
        assert!(sent.packet(ID, 2).is_none());
    }

    #[test]
    fn old_frames_leave_the_history() {
        let sent = SentFrames::default();
        let start = Instant::now();
        sent.record(1, 1, frame(1), true, start);
        sent.record(2, 2, frame(1), true, start + HISTORY);
        assert!(sent.packet(ID, 1).is_some(), "exactly HISTORY old is kept");
        sent.record(3, 3, frame(1), true, start + HISTORY + Duration::from_millis(1));
        assert!(sent.packet(ID, 1).is_none(), "older than HISTORY is gone");
        assert!(sent.packet(ID, 2).is_some());
    }

    #[test]
    fn what_was_sent_before_a_new_start_is_not_resent() {
        let sent = SentFrames::default();
        let now = Instant::now();
        sent.record(1, 1, frame(2), true, now);
        sent.forget_sent();
        sent.record(3, 2, frame(2), true, now);
        assert!(sent.packet(ID, 2).is_none(), "from before");
        assert!(sent.packet(ID, 3).is_some() && sent.packet(ID, 4).is_some(), "from the new start on");
        assert!(sent.clock_reference().is_some(), "sender reports still have their clock");
    }

    #[test]
    fn the_history_is_bounded_in_frames() {
        let sent = SentFrames::default();
        let now = Instant::now();
        let shared = frame(1);
        for sequence in 0..(MAX_FRAMES as u16 + 10) {
            sent.record(sequence, 0, shared.clone(), true, now);
        }
        assert!(sent.packet(ID, 9).is_none());
        assert!(sent.packet(ID, 10).is_some());
        assert_eq!(sent.inner.lock().frames.len(), MAX_FRAMES);
    }
}
