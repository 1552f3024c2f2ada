//! Chosen packet loss on a viewer's last hop: an interceptor at the receiving end that drops
//! the first copy of chosen video packets before the NACK generator sees them, so that the
//! viewer asks for them again as it would after loss on the network, and notes which of them
//! come back (as plain retransmissions or over RTX).

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Which packets to drop: every `every`-th media packet after the first, `count` of them.
#[derive(Debug, Clone, Copy)]
pub struct LossPattern {
    pub every: u16,
    pub count: usize,
}

/// What was dropped and what came back.
#[derive(Debug, Clone, Default)]
pub struct LossReport {
    pub dropped: BTreeSet<u16>,
    pub recovered: BTreeSet<u16>,
    /// Recovered packets that came over RTX rather than as plain retransmissions.
    pub recovered_over_rtx: usize,
}

pub struct PacketDropper {
    pattern: LossPattern,
    report: Arc<Mutex<LossReport>>,
    rtx_ssrcs: HashSet<u32>,
    /// Only video is dropped: audio is not NACKed.
    video_ssrcs: HashSet<u32>,
    first_sequence: Option<u16>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl PacketDropper {
    pub fn new(pattern: LossPattern, report: Arc<Mutex<LossReport>>) -> Self {
        Self { pattern, report, rtx_ssrcs: HashSet::new(), video_ssrcs: HashSet::new(), first_sequence: None, read_queue: VecDeque::new(), write_queue: VecDeque::new() }
    }

    /// Whether to let the packet through, noting drops and recoveries.
    fn admit(&mut self, ssrc: u32, sequence_number: u16, payload: &[u8]) -> bool {
        let Ok(mut report) = self.report.lock() else { return true };
        if self.rtx_ssrcs.contains(&ssrc) {
            if let Some(original) = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) {
                if report.dropped.contains(&original) && report.recovered.insert(original) {
                    report.recovered_over_rtx += 1;
                }
            }
            return true;
        }
        if !self.video_ssrcs.contains(&ssrc) {
            return true;
        }
        if report.dropped.contains(&sequence_number) {
            report.recovered.insert(sequence_number);
            return true;
        }
        let first = *self.first_sequence.get_or_insert(sequence_number);
        let offset = sequence_number.wrapping_sub(first);
        let chosen = offset > 0 && offset < 0x8000 && offset.is_multiple_of(self.pattern.every);
        if chosen && report.dropped.len() < self.pattern.count {
            report.dropped.insert(sequence_number);
            return false;
        }
        true
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for PacketDropper {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &msg.message.packet {
            if !self.admit(packet.header.ssrc, packet.header.sequence_number, &packet.payload) {
                return Ok(());
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for PacketDropper {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.rtx_ssrcs.extend(info.ssrc_rtx);
        if info.mime_type.to_ascii_lowercase().starts_with("video/") {
            self.video_ssrcs.insert(info.ssrc);
        }
    }

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
