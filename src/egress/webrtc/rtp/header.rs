//! The per-viewer part of the RTP header: one SSRC, sequence numbers and timestamps that run
//! on without a jump for the viewer whatever Lookout does upstream (a replayed GOP, a keyframe
//! resent from the cache, a switch to another layer with a clock of its own).

use crate::egress::webrtc::rtp::packetizer;
use crate::egress::webrtc::rtp::sent_frames::{rtp_packet, RtpStreamId, SentFrames};
use crate::media::{Frame, VIDEO_CLOCK_RATE};
use rtc::rtp::packet::Packet;
use std::sync::Arc;
use std::time::Instant;

/// The first sequence number of a stream Lookout sends: random, but below 2^15, so that the
/// stream cannot wrap within its first 32768 packets. A receiver whose side of the DTLS
/// handshake completes after Lookout's has started sending takes the first packet it can
/// decrypt to be of rollover count 0 (RFC 3711 §3.3.1); after an early wrap it would never
/// decrypt another (one light viewer in 200 did so when 500 joined at once).
pub fn initial_sequence_number() -> u16 {
    rand::random::<u16>() & 0x7fff
}

pub struct RtpHeaderState {
    id: RtpStreamId,
    sequence_number: u16,
    timestamp_offset: u32,
    /// Added to the timestamps of the layer being sent, to place them on this viewer's clock.
    layer_shift: i64,
    /// The last timestamp sent, on this viewer's clock, and when its frame reached Lookout.
    /// Timestamps never go backwards, so a keyframe resent from the cache is not taken for a
    /// stale frame.
    last: Option<(u64, Instant)>,
}

impl RtpHeaderState {
    pub fn new(id: RtpStreamId) -> Self {
        Self { id, sequence_number: initial_sequence_number(), timestamp_offset: rand::random(), layer_shift: 0, last: None }
    }

    /// Places the timestamps of another layer or path, whose frame `frame` is sent next at its
    /// own timestamp, on this viewer's clock: that frame follows the last one sent by the time
    /// between their arrivals, and by at least `lead` ticks and one, for frames sent before it
    /// at earlier timestamps (a replayed GOP that ends with it; 0 when there are none).
    pub fn continue_with(&mut self, frame: &Frame, lead: u64) {
        let Some((last_timestamp, last_arrival)) = self.last else { return };
        let elapsed = frame.arrived_at.saturating_duration_since(last_arrival).as_secs_f64();
        let least = i64::try_from(lead).unwrap_or(i64::MAX / 2) + 1;
        let wanted = last_timestamp as i64 + ((elapsed * f64::from(VIDEO_CLOCK_RATE)) as i64).max(least);
        self.layer_shift = wanted - frame.timestamp as i64;
    }

    /// The frame's packets with this viewer's header, noted in its history for NACKs.
    /// `timestamp` is the frame's own, or the one it is replayed at, on its layer's clock.
    pub fn packets<'a>(&'a mut self, frame: &'a Arc<Frame>, timestamp: u64, sent: &SentFrames) -> impl Iterator<Item = Packet> + 'a {
        let payloads = packetizer::payloads_of(frame);
        let wanted = timestamp.saturating_add_signed(self.layer_shift);
        let timestamp = match self.last {
            Some((last, _)) if wanted <= last => last + 1,
            _ => wanted,
        };
        // Sender reports pair a timestamp with the capture time of a frame sent at its own.
        let on_time = timestamp == frame.timestamp.saturating_add_signed(self.layer_shift);
        self.last = Some((timestamp, frame.arrived_at));
        let rtp_timestamp = (timestamp as u32).wrapping_add(self.timestamp_offset);
        let first_sequence = self.sequence_number.wrapping_add(1);
        sent.record(first_sequence, rtp_timestamp, frame.clone(), on_time, Instant::now());
        self.sequence_number = self.sequence_number.wrapping_add(payloads.len() as u16);
        let id = self.id;
        (0..payloads.len()).map(move |index| rtp_packet(id, first_sequence.wrapping_add(index as u16), rtp_timestamp, payloads, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::join_length_prefixed;
    use crate::media::VideoParameters;
    use std::time::Duration;

    fn frame(timestamp: u64, arrived_at: Instant) -> Arc<Frame> {
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Default::default(), pps: Default::default() });
        let mut frame = Frame::new(timestamp, false, join_length_prefixed([&[0x41u8, 1][..]]), parameters);
        frame.arrived_at = arrived_at;
        Arc::new(frame)
    }

    fn sent(header: &mut RtpHeaderState, frame: &Arc<Frame>, sent: &SentFrames) -> (u16, u32) {
        let packet = header.packets(frame, frame.timestamp, sent).last().expect("a packet");
        (packet.header.sequence_number, packet.header.timestamp)
    }

    #[test]
    fn a_stream_starts_where_it_cannot_wrap_for_32768_packets() {
        let firsts: Vec<u16> = (0..10_000).map(|_| initial_sequence_number()).collect();
        assert!(firsts.iter().all(|&first| first < 0x8000));
        assert!(firsts.iter().any(|&first| first > 0x4000) && firsts.iter().any(|&first| first < 0x4000), "and still random");
    }

    #[test]
    fn another_layer_continues_the_sequence_and_the_clock() {
        let history = SentFrames::default();
        let mut header = RtpHeaderState::new(RtpStreamId { ssrc: 1, payload_type: 102 });
        let start = Instant::now();
        let (seq_a, ts_a) = sent(&mut header, &frame(5_000_000, start), &history);
        let (seq_b, ts_b) = sent(&mut header, &frame(5_003_000, start + Duration::from_millis(33)), &history);
        assert_eq!((seq_b.wrapping_sub(seq_a), ts_b.wrapping_sub(ts_a)), (1, 3000));

        // The sub stream's clock started elsewhere; its frame came 100 ms after the last one.
        let sub = frame(42, start + Duration::from_millis(133));
        header.continue_with(&sub, 0);
        let (seq_c, ts_c) = sent(&mut header, &sub, &history);
        assert_eq!((seq_c.wrapping_sub(seq_b), ts_c.wrapping_sub(ts_b)), (1, 9000));
        let (_, ts_d) = sent(&mut header, &frame(42 + 3000, start + Duration::from_millis(166)), &history);
        assert_eq!(ts_d.wrapping_sub(ts_c), 3000, "the layer's own spacing from then on");
    }
}
