//! RTCP sender reports that tell a viewer when its frames were captured, in place of webrtc's,
//! which pair each RTP timestamp with the moment Lookout sent the frame.
//!
//! The pairing comes from the newest frame sent at its own timestamp: its RTP timestamp and its
//! capture time (the camera's clock when it sends usable reports, see `source::camera_clock`).
//! So a browser's `estimatedPlayoutTimestamp` is the capture time of what it shows, and the page
//! can show glass-to-glass latency for any camera with a synchronised clock.

use super::sent_frames::SentFrames;
use crate::media::{ntp, VIDEO_CLOCK_RATE};
use rtc::interceptor::{AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// RFC 3550 suggests about 5 s for a few participants; browsers want a first report soon
/// after the media starts, for their audio/video sync and playout estimates.
const FIRST_REPORT_AFTER: Duration = Duration::from_millis(100);
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

pub struct SenderReports {
    sent: Arc<SentFrames>,
    ssrc: Option<u32>,
    packets: u32,
    octets: u32,
    next_report: Option<Instant>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl SenderReports {
    pub fn new(sent: Arc<SentFrames>) -> Self {
        Self { sent, ssrc: None, packets: 0, octets: 0, next_report: None, read_queue: VecDeque::new(), write_queue: VecDeque::new() }
    }

    /// The report for `wall_clock`, once a frame was sent on time.
    fn report(&self, wall_clock: SystemTime) -> Option<SenderReport> {
        let ssrc = self.ssrc?;
        let (rtp_timestamp, captured_at) = self.sent.clock_reference()?;
        Some(SenderReport {
            ssrc,
            ntp_time: ntp::from_system_time(wall_clock),
            rtp_time: rtp_timestamp.wrapping_add(ticks_between(captured_at, wall_clock) as u32),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// Video clock ticks from `from` to `to`, negative when `to` is earlier.
fn ticks_between(from: SystemTime, to: SystemTime) -> i64 {
    let ticks = |d: Duration| (d.as_secs_f64() * f64::from(VIDEO_CLOCK_RATE)) as i64;
    match to.duration_since(from) {
        Ok(after) => ticks(after),
        Err(before) => -ticks(before.duration()),
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SenderReports {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &msg.message.packet {
            if Some(packet.header.ssrc) == self.ssrc {
                self.packets = self.packets.wrapping_add(1);
                self.octets = self.octets.wrapping_add(packet.payload.len() as u32);
                self.next_report.get_or_insert(msg.now + FIRST_REPORT_AFTER);
            }
        }
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        if self.next_report.is_some_and(|at| now >= at) {
            self.next_report = Some(now + REPORT_INTERVAL);
            if let Some(report) = self.report(SystemTime::now()) {
                self.write_queue.push_back(TaggedPacket {
                    now,
                    transport: TransportContext::default(),
                    message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(report)])),
                });
            }
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        self.next_report
    }
}

impl Interceptor for SenderReports {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.ssrc = Some(info.ssrc);
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        if self.ssrc == Some(info.ssrc) {
            self.ssrc = None;
            self.next_report = None;
        }
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::join_length_prefixed;
    use crate::media::{Frame, VideoParameters};
    use bytes::Bytes;
    use rtc::rtp::{header::Header, packet::Packet as RtpPacket};
    use std::time::UNIX_EPOCH;

    fn write_rtp(reports: &mut SenderReports, now: Instant, ssrc: u32) {
        let packet = RtpPacket { header: Header { ssrc, ..Default::default() }, payload: Bytes::from_static(&[0; 100]) };
        let message = TaggedPacket { now, transport: TransportContext::default(), message: AttributedPacket::new(Packet::Rtp(packet)) };
        reports.handle_write(message).expect("write");
        assert!(reports.poll_write().is_some());
    }

    #[test]
    fn a_report_maps_the_rtp_clock_to_the_capture_time() {
        let sent = Arc::new(SentFrames::default());
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        let mut frame = Frame::new(0, true, join_length_prefixed([&[0x65u8, 1][..]]), parameters);
        let captured_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        frame.captured_at = captured_at;
        sent.record(1, 90_000, Arc::new(frame), true, Instant::now());

        let mut reports = SenderReports::new(sent);
        reports.bind_local_stream(&StreamInfo { ssrc: 42, ..Default::default() });
        let start = Instant::now();
        assert_eq!(reports.poll_timeout(), None, "nothing to report before media");
        write_rtp(&mut reports, start, 42);
        write_rtp(&mut reports, start, 7);
        assert_eq!(reports.poll_timeout(), Some(start + FIRST_REPORT_AFTER));

        let report = reports.report(captured_at + Duration::from_millis(500)).expect("a report");
        assert_eq!((report.ssrc, report.packet_count, report.octet_count), (42, 1, 100), "counts only its own stream");
        assert_eq!(report.rtp_time, 90_000 + 45_000, "half a second after the capture");
        assert_eq!(ntp::to_system_time(report.ntp_time), Some(captured_at + Duration::from_millis(500)));
        let earlier = reports.report(captured_at - Duration::from_millis(100)).expect("a report");
        assert_eq!(earlier.rtp_time, 90_000 - 9_000);

        reports.handle_timeout(start + FIRST_REPORT_AFTER).expect("timeout");
        assert!(matches!(reports.poll_write().map(|m| m.message.packet), Some(Packet::Rtcp(_))));
        assert_eq!(reports.poll_timeout(), Some(start + FIRST_REPORT_AFTER + REPORT_INTERVAL));
    }
}
