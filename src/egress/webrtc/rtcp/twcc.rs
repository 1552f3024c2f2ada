//! Transport-wide congestion control for one viewer (draft-holmer-rmcat-transport-wide-cc):
//! every packet Lookout sends carries a transport-wide sequence number; the viewer reports
//! when each arrived; those reports, matched with when and how big each packet left, are what
//! Google Congestion Control estimates the viewer's link from.
//!
//! What was sent is kept in a ring indexed by the sequence number, not a map: this runs for
//! every packet of every viewer, and a viewer's feedback comes within a few hundred packets.
//! An entry is 24 bytes, so that the ring costs a viewer 24 KiB.

use rtc::interceptor::{convert_twcc, PacketReport};
use rtc::shared::marshal::MarshalSize;
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use std::time::{Duration, Instant};

/// Packets remembered for feedback: about 4 s at 2.5 Mbit/s and 1 s at 10 Mbit/s, where a
/// viewer reports every 50 to 100 ms.
const REMEMBERED: usize = 1024;

/// The id of a slot nothing was sent in.
const NOTHING_SENT: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Sent {
    /// The transport-wide sequence number, extended to 64 bits: also the report's id, which
    /// keeps reports in send order across wraps.
    id: u64,
    /// When it left, from the sender's epoch.
    departure_micros: u64,
    ssrc: u32,
    rtp_sequence_number: u16,
    size: u16,
}

impl Sent {
    const NONE: Sent = Sent { id: NOTHING_SENT, departure_micros: 0, ssrc: 0, rtp_sequence_number: 0, size: 0 };
}

pub struct TwccSender {
    /// The header extension id the viewer agreed to.
    extension_id: u8,
    next_id: u64,
    /// When the first packet was stamped; departures are kept from it.
    epoch: Option<Instant>,
    sent: Box<[Sent]>,
}

impl TwccSender {
    pub fn new(extension_id: u8) -> Self {
        Self { extension_id, next_id: 0, epoch: None, sent: vec![Sent::NONE; REMEMBERED].into_boxed_slice() }
    }

    /// Stamps the next transport-wide sequence number on `packet`, which leaves at `now`.
    pub fn stamp(&mut self, packet: &mut rtc::rtp::Packet, now: Instant) {
        let id = self.next_id;
        self.next_id += 1;
        let sequence_number = id as u16;
        if packet.header.set_extension(self.extension_id, bytes::Bytes::copy_from_slice(&sequence_number.to_be_bytes())).is_err() {
            return; // an id outside the one-byte range: the description parser does not let one through
        }
        let size = u16::try_from(packet.header.marshal_size() + packet.payload.len()).unwrap_or(u16::MAX);
        let epoch = *self.epoch.get_or_insert(now);
        let departure_micros = u64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX);
        self.sent[id as usize % REMEMBERED] = Sent { id, departure_micros, ssrc: packet.header.ssrc, rtp_sequence_number: packet.header.sequence_number, size };
    }

    /// The packets a feedback report covers that are still remembered, in send order.
    pub fn on_feedback(&self, feedback: &TransportLayerCc) -> Vec<PacketReport> {
        let newest = self.next_id.checked_sub(1);
        let mut reports: Vec<PacketReport> = convert_twcc(feedback)
            .into_iter()
            .filter_map(|acknowledgement| {
                // The 16-bit number back to the id it stands for: the latest id with those bits.
                let newest = newest?;
                let behind = (newest as u16).wrapping_sub(acknowledgement.sequence_number);
                let id = newest.checked_sub(u64::from(behind))?;
                let sent = Some(self.sent[id as usize % REMEMBERED]).filter(|sent| sent.id == id)?;
                let epoch = self.epoch?;
                Some(PacketReport {
                    ssrc: sent.ssrc,
                    id,
                    rtp_sequence_number: sent.rtp_sequence_number,
                    is_twcc: true,
                    twcc_sequence_number: acknowledgement.sequence_number,
                    size: usize::from(sent.size),
                    arrived: acknowledgement.arrived,
                    departure: epoch + Duration::from_micros(sent.departure_micros),
                    arrival: acknowledgement.arrival,
                    ecn: Ecn::NotEct,
                })
            })
            .collect();
        reports.sort_by_key(|report| report.id);
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::{PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc};

    fn packet(sequence_number: u16) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header { version: 2, ssrc: 9, sequence_number, ..Default::default() },
            payload: bytes::Bytes::from_static(&[0; 1000]),
        }
    }

    /// A report that `count` packets from `base` all arrived, 1 ms apart.
    fn feedback(base: u16, count: u16) -> TransportLayerCc {
        TransportLayerCc {
            base_sequence_number: base,
            packet_status_count: count,
            reference_time: 1,
            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                run_length: count,
            })],
            recv_deltas: (0..count).map(|_| RecvDelta { type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta, delta: 1000 }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn stamped_numbers_come_back_as_reports_with_departure_and_size() {
        let mut twcc = TwccSender::new(3);
        let start = Instant::now();
        for n in 0..10u16 {
            let mut packet = packet(500 + n);
            twcc.stamp(&mut packet, start + Duration::from_millis(u64::from(n)));
            assert_eq!(packet.header.get_extension(3).as_deref(), Some(&n.to_be_bytes()[..]), "one-byte extension with the number");
        }
        let reports = twcc.on_feedback(&feedback(2, 5));
        let ids: Vec<u64> = reports.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![2, 3, 4, 5, 6]);
        assert!(reports.iter().all(|r| r.arrived && r.ssrc == 9 && r.size > 1000));
        assert_eq!(reports[0].departure, start + Duration::from_millis(2));
        assert_eq!(std::mem::size_of::<Sent>(), 24);
        assert_eq!(reports[0].rtp_sequence_number, 502);
    }

    #[test]
    fn numbers_across_a_wrap_and_forgotten_ones() {
        let mut twcc = TwccSender::new(1);
        let start = Instant::now();
        for n in 0..70_000u32 {
            twcc.stamp(&mut packet(n as u16), start);
        }
        // 69_998 and 69_999 were stamped 4462 and 4463 (16 bits), after a wrap.
        let reports = twcc.on_feedback(&feedback(4462, 2));
        assert_eq!(reports.iter().map(|r| r.id).collect::<Vec<_>>(), vec![69_998, 69_999]);
        assert!(twcc.on_feedback(&feedback(4463 - 1500, 1)).is_empty(), "sent longer ago than the ring remembers");
        assert!(TwccSender::new(1).on_feedback(&feedback(0, 3)).is_empty(), "nothing sent yet");
    }
}
