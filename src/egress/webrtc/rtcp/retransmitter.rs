//! Answers a viewer's NACKs from what it was sent (`SentFrames`), in place of webrtc's NACK
//! responder, which keeps a copy of every packet header per viewer (1024 of them) to do the same.
//!
//! Resent over RTX (RFC 4588) when the viewer negotiated it, so that its loss and jitter
//! statistics stay honest; as the original packet otherwise.

use crate::egress::webrtc::rtp::header::initial_sequence_number;
use crate::egress::webrtc::rtp::sent_frames::{RtpStreamId, SentFrames, HISTORY};
use crate::egress::webrtc::rtcp::observer::{is_video, RtcpObserver};
use rtc::interceptor::{Attribute, AttributedPacket, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::{self, header::Header};
use rtc::shared::TransportContext;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A viewer repeats its NACK until the packet arrives. Answering every repeat is what turns a
/// congested link into a retransmission storm (a viewer behind 1 Mbit/s was resent five times
/// what it had been sent), so a packet is resent at most once per interval, a few times.
const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(100);
const MAX_RESENDS: u8 = 3;

#[derive(Default, Debug)]
pub struct NackStats {
    nacks_received: AtomicU64,
    packets_resent: AtomicU64,
    packets_not_found: AtomicU64,
    resends_suppressed: AtomicU64,
}

#[derive(Serialize, Debug, Clone, Copy)]
pub struct NackStatsSnapshot {
    /// RTCP NACK messages from the viewer.
    pub nacks_received: u64,
    /// Packets sent again in answer.
    pub packets_resent: u64,
    /// Packets asked for that had left the history (or were never sent).
    pub packets_not_found: u64,
    /// Packets asked for again too soon after, or too often.
    pub resends_suppressed: u64,
}

impl NackStats {
    pub fn snapshot(&self) -> NackStatsSnapshot {
        NackStatsSnapshot {
            nacks_received: self.nacks_received.load(Ordering::Relaxed),
            packets_resent: self.packets_resent.load(Ordering::Relaxed),
            packets_not_found: self.packets_not_found.load(Ordering::Relaxed),
            resends_suppressed: self.resends_suppressed.load(Ordering::Relaxed),
        }
    }
}

/// The viewer's video stream as negotiated.
struct BoundStream {
    id: RtpStreamId,
    /// RTX SSRC and payload type, and the RTX stream's own sequence numbers.
    rtx: Option<(u32, u8, u16)>,
}

/// Answers the NACKs on one video stream.
pub struct Retransmitter {
    ssrc: u32,
    sent: Arc<SentFrames>,
    stats: Arc<NackStats>,
    stream: Option<BoundStream>,
    /// When each packet was last resent and how often, for as long as the history keeps it.
    resends: HashMap<u16, (Instant, u8)>,
}

impl Retransmitter {
    /// For the video stream `ssrc`, once it is bound, from what it was sent (`sent`).
    pub fn new(ssrc: u32, sent: Arc<SentFrames>, stats: Arc<NackStats>) -> Self {
        Self { ssrc, sent, stats, stream: None, resends: HashMap::new() }
    }

    fn answer(&mut self, now: Instant, nack: &TransportLayerNack, replies: &mut VecDeque<TaggedPacket>) {
        let Some(stream) = self.stream.as_mut().filter(|s| s.id.ssrc == nack.media_ssrc) else { return };
        self.stats.nacks_received.fetch_add(1, Ordering::Relaxed);
        self.resends.retain(|_, (at, _)| now.saturating_duration_since(*at) < HISTORY);
        for sequence_number in nack.nacks.iter().flat_map(|pair| pair.packet_list()) {
            let resent = self.resends.get(&sequence_number).copied();
            if resent.is_some_and(|(at, count)| now.saturating_duration_since(at) < MIN_RESEND_INTERVAL || count >= MAX_RESENDS) {
                self.stats.resends_suppressed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(original) = self.sent.packet(stream.id, sequence_number) else {
                self.stats.packets_not_found.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let packet = match &mut stream.rtx {
                Some((ssrc, payload_type, rtx_sequence)) => {
                    *rtx_sequence = rtx_sequence.wrapping_add(1);
                    rtx_packet(original, *ssrc, *payload_type, *rtx_sequence)
                }
                None => original,
            };
            self.stats.packets_resent.fetch_add(1, Ordering::Relaxed);
            self.resends.insert(sequence_number, (now, resent.map_or(1, |(_, count)| count + 1)));
            // Tagged so that send-side accounting sees new bytes on the wire, not the original.
            replies.push_back(TaggedPacket {
                now,
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)).with(Attribute::Retransmission),
            });
        }
    }
}

/// RFC 4588 §4: the RTX payload is the original sequence number, then the original payload.
fn rtx_packet(original: rtp::packet::Packet, ssrc: u32, payload_type: u8, sequence_number: u16) -> rtp::packet::Packet {
    let mut payload = Vec::with_capacity(2 + original.payload.len());
    payload.extend_from_slice(&original.header.sequence_number.to_be_bytes());
    payload.extend_from_slice(&original.payload);
    rtp::packet::Packet {
        header: Header { ssrc, payload_type, sequence_number, ..original.header },
        payload: payload.into(),
    }
}

/// Answers the NACKs an `RtcpTap` shows it.
impl RtcpObserver for Retransmitter {
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, now: Instant, replies: &mut VecDeque<TaggedPacket>) {
        if let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() {
            self.answer(now, nack, replies);
        }
    }

    fn bind_local_stream(&mut self, info: &StreamInfo) {
        // Only the video is NACKed, each stream by its own retransmitter.
        if !is_video(info) || info.ssrc != self.ssrc {
            return;
        }
        let rtx = info.ssrc_rtx.zip(info.payload_type_rtx).map(|(ssrc, payload_type)| (ssrc, payload_type, initial_sequence_number()));
        self.stream = Some(BoundStream { id: RtpStreamId { ssrc: info.ssrc, payload_type: info.payload_type }, rtx });
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        if self.stream.as_ref().is_some_and(|s| s.id.ssrc == info.ssrc) {
            self.stream = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::join_length_prefixed;
    use crate::media::{Frame, VideoParameters};
    use bytes::Bytes;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    const SSRC: u32 = 1111;
    const RTX_SSRC: u32 = 2222;

    fn stream_info(rtx: bool) -> StreamInfo {
        StreamInfo {
            ssrc: SSRC,
            payload_type: 102,
            mime_type: "video/H264".into(),
            ssrc_rtx: rtx.then_some(RTX_SSRC),
            payload_type_rtx: rtx.then_some(103),
            ..Default::default()
        }
    }

    /// A retransmitter whose viewer was sent one frame of five packets, sequence numbers 10 to
    /// 14; and what it was sent.
    fn retransmitter(rtx: bool) -> (Retransmitter, Arc<NackStats>, Arc<SentFrames>) {
        let sent = Arc::new(SentFrames::default());
        let nal: Vec<u8> = std::iter::once(0x41).chain((0..5000).map(|i| i as u8)).collect();
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::from_static(&[0x67]), pps: Bytes::from_static(&[0x68]) });
        sent.record(10, 3000, Arc::new(Frame::new(0, false, join_length_prefixed([&nal[..]]), parameters)), true, Instant::now());
        let stats = Arc::new(NackStats::default());
        let mut retransmitter = Retransmitter::new(SSRC, sent.clone(), stats.clone());
        retransmitter.bind_local_stream(&stream_info(rtx));
        (retransmitter, stats, sent)
    }

    /// Feeds one NACK (a packet id and the bitmap of the 16 after it) and returns what it wrote.
    fn nack(retransmitter: &mut Retransmitter, now: Instant, media_ssrc: u32, packet_id: u16, lost_packets: u16) -> Vec<rtp::packet::Packet> {
        let nack = TransportLayerNack { sender_ssrc: 1, media_ssrc, nacks: vec![NackPair { packet_id, lost_packets }] };
        let mut replies = VecDeque::new();
        retransmitter.observe(&nack, now, &mut replies);
        replies
            .into_iter()
            .map(|tagged| match tagged.message.packet {
                Packet::Rtp(packet) => packet,
                _ => panic!("only RTP is written"),
            })
            .collect()
    }

    #[test]
    fn plain_retransmission_resends_the_original_packets() {
        let (mut retransmitter, stats, _) = retransmitter(false);
        // 12, and through the bitmap 13 and 20 (never sent).
        let resent = nack(&mut retransmitter, Instant::now(), SSRC, 12, 0b1000_0001);
        let sequences: Vec<u16> = resent.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(sequences, vec![12, 13]);
        assert!(resent.iter().all(|p| p.header.ssrc == SSRC && p.header.payload_type == 102 && p.header.timestamp == 3000));
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.nacks_received, snapshot.packets_resent, snapshot.packets_not_found), (1, 2, 1));
    }

    #[test]
    fn rtx_carries_the_original_sequence_number_first() {
        let (mut retransmitter, _, sent) = retransmitter(true);
        let resent = nack(&mut retransmitter, Instant::now(), SSRC, 13, 0b1);
        let original = sent.packet(RtpStreamId { ssrc: SSRC, payload_type: 102 }, 13).expect("sent");
        assert_eq!(resent.len(), 2);
        assert_eq!((resent[0].header.ssrc, resent[0].header.payload_type, resent[0].header.timestamp), (RTX_SSRC, 103, 3000));
        assert_eq!(&resent[0].payload[..2], &13u16.to_be_bytes());
        assert_eq!(&resent[0].payload[2..], &original.payload[..]);
        assert_eq!(resent[1].header.sequence_number, resent[0].header.sequence_number.wrapping_add(1), "RTX numbers its own packets");
    }

    #[test]
    fn a_nack_for_another_ssrc_is_ignored() {
        let (mut retransmitter, stats, _) = retransmitter(false);
        assert!(nack(&mut retransmitter, Instant::now(), SSRC + 1, 12, 0).is_empty());
        assert_eq!(stats.snapshot().nacks_received, 0);
    }

    #[test]
    fn a_repeated_nack_is_answered_once_per_interval_a_few_times() {
        let (mut retransmitter, stats, _) = retransmitter(false);
        let start = Instant::now();
        let resent_at = |retransmitter: &mut Retransmitter, ms: u64| nack(retransmitter, start + Duration::from_millis(ms), SSRC, 12, 0).len();
        let answers: Vec<usize> = [0, 50, 100, 150, 200, 300, 400].into_iter().map(|ms| resent_at(&mut retransmitter, ms)).collect();
        assert_eq!(answers, vec![1, 0, 1, 0, 1, 0, 0], "every 100 ms, three times");
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.packets_resent, snapshot.resends_suppressed), (3, 4));
    }
}
