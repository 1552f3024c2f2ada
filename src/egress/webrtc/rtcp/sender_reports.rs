//! RTCP sender reports that tell a viewer when its frames were captured, rather than pairing
//! each RTP timestamp with the moment Lookout sent the frame.
//!
//! The pairing comes from the newest frame sent at its own timestamp: its RTP timestamp and its
//! capture time (the camera's clock when it sends usable reports, see `source::camera_clock`).
//! So a browser's `estimatedPlayoutTimestamp` is the capture time of what it shows, the page
//! can show glass-to-glass latency for any camera with a synchronised clock, and the browser
//! plays audio and video in sync, as both are mapped to the same capture clock.

use crate::egress::webrtc::rtp::sent_frames::SentFrames;
use crate::media::ntp;
use rtc::interceptor::StreamInfo;
use rtc::rtcp::sender_report::SenderReport;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What a sent stream's reports are built from: an RTP timestamp it sent and the capture time
/// it stands for.
pub trait ClockReference: Send + Sync {
    fn clock_reference(&self) -> Option<(u32, SystemTime)>;
}

/// The latest audio RTP timestamp sent and the capture time of its first sample.
#[derive(Default)]
pub struct AudioClock(Mutex<Option<(u32, SystemTime)>>);

impl AudioClock {
    pub fn set(&self, rtp_timestamp: u32, captured_at: SystemTime) {
        *self.0.lock() = Some((rtp_timestamp, captured_at));
    }
}

impl ClockReference for AudioClock {
    fn clock_reference(&self) -> Option<(u32, SystemTime)> {
        *self.0.lock()
    }
}

/// The video's reference: the newest frame sent at its own timestamp.
impl ClockReference for SentFrames {
    fn clock_reference(&self) -> Option<(u32, SystemTime)> {
        SentFrames::clock_reference(self)
    }
}

/// RFC 3550 suggests about 5 s for a few participants; browsers want a first report soon
/// after the media starts, for their audio/video sync and playout estimates.
const FIRST_REPORT_AFTER: Duration = Duration::from_millis(100);
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// One stream this connection sends.
struct ReportedStream {
    ssrc: u32,
    clock: Arc<dyn ClockReference>,
    clock_rate: u32,
    packets: u32,
    octets: u32,
}

/// The reports of one connection's streams, and when they are due.
pub struct SenderReporter {
    /// Each stream's clock, by SSRC.
    clocks: Vec<(u32, Arc<dyn ClockReference>)>,
    /// A handful (video and audio, a video per tile of a wall): a list is quicker to search per
    /// packet than a map.
    streams: Vec<ReportedStream>,
    next_report: Option<Instant>,
}

impl SenderReporter {
    /// Reports on each stream from its clock, given by SSRC; a stream without one goes
    /// unreported.
    pub fn new(clocks: Vec<(u32, Arc<dyn ClockReference>)>) -> Self {
        Self { clocks, streams: Vec::new(), next_report: None }
    }

    pub fn bind(&mut self, info: &StreamInfo) {
        let Some((_, clock)) = self.clocks.iter().find(|(ssrc, _)| *ssrc == info.ssrc) else { return };
        self.streams.retain(|stream| stream.ssrc != info.ssrc);
        self.streams.push(ReportedStream { ssrc: info.ssrc, clock: clock.clone(), clock_rate: info.clock_rate, packets: 0, octets: 0 });
    }

    pub fn unbind(&mut self, ssrc: u32) {
        self.streams.retain(|stream| stream.ssrc != ssrc);
        if self.streams.is_empty() {
            self.next_report = None;
        }
    }

    /// Counts an RTP packet sent at `now` with `payload_len` bytes of payload.
    pub fn on_rtp(&mut self, ssrc: u32, payload_len: usize, now: Instant) {
        if let Some(stream) = self.streams.iter_mut().find(|stream| stream.ssrc == ssrc) {
            stream.packets = stream.packets.wrapping_add(1);
            stream.octets = stream.octets.wrapping_add(payload_len as u32);
            self.next_report.get_or_insert(now + FIRST_REPORT_AFTER);
        }
    }

    /// When the next reports are due; `None` before anything was sent.
    pub fn next_report(&self) -> Option<Instant> {
        self.next_report
    }

    /// The reports due at `now`, if any are, for the streams that sent something on time.
    pub fn due(&mut self, now: Instant) -> Vec<SenderReport> {
        if self.next_report.is_none_or(|at| now < at) {
            return Vec::new();
        }
        self.next_report = Some(now + REPORT_INTERVAL);
        let wall_clock = SystemTime::now();
        self.streams.iter().filter_map(|stream| report(stream, wall_clock)).collect()
    }
}

/// The report on `stream` for `wall_clock`, once it sent something on time.
fn report(stream: &ReportedStream, wall_clock: SystemTime) -> Option<SenderReport> {
    let (rtp_timestamp, captured_at) = stream.clock.clock_reference()?;
    Some(SenderReport {
        ssrc: stream.ssrc,
        ntp_time: ntp::from_system_time(wall_clock),
        rtp_time: rtp_timestamp.wrapping_add(ticks_between(captured_at, wall_clock, stream.clock_rate) as u32),
        packet_count: stream.packets,
        octet_count: stream.octets,
        ..Default::default()
    })
}

/// Clock ticks at `clock_rate` from `from` to `to`, negative when `to` is earlier.
fn ticks_between(from: SystemTime, to: SystemTime, clock_rate: u32) -> i64 {
    let ticks = |d: Duration| (d.as_secs_f64() * f64::from(clock_rate)) as i64;
    match to.duration_since(from) {
        Ok(after) => ticks(after),
        Err(before) => -ticks(before.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::join_length_prefixed;
    use crate::media::{Frame, VideoParameters};
    use bytes::Bytes;
    use rtc::rtp::{header::Header, packet::Packet as RtpPacket};
    use std::time::UNIX_EPOCH;

    fn write_rtp(reporter: &mut SenderReporter, now: Instant, ssrc: u32) {
        let packet = RtpPacket { header: Header { ssrc, ..Default::default() }, payload: Bytes::from_static(&[0; 100]) };
        reporter.on_rtp(packet.header.ssrc, packet.payload.len(), now);
    }

    #[test]
    fn a_report_maps_the_rtp_clock_to_the_capture_time() {
        let sent = Arc::new(SentFrames::default());
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        let mut frame = Frame::new(0, true, join_length_prefixed([&[0x65u8, 1][..]]), parameters);
        let captured_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        frame.captured_at = captured_at;
        sent.record(1, 90_000, Arc::new(frame), true, Instant::now());

        let mut reporter = SenderReporter::new(vec![(42, sent), (7, Arc::new(SentFrames::default()))]);
        reporter.bind(&StreamInfo { ssrc: 42, clock_rate: 90_000, mime_type: "video/H264".into(), ..Default::default() });
        let start = Instant::now();
        assert_eq!(reporter.next_report(), None, "nothing to report before media");
        write_rtp(&mut reporter, start, 42);
        write_rtp(&mut reporter, start, 7);
        assert_eq!(reporter.next_report(), Some(start + FIRST_REPORT_AFTER));

        let stream = reporter.streams.iter().find(|s| s.ssrc == 42).expect("stream 42");
        let reported = |at| report(stream, at).expect("a report");
        let report = reported(captured_at + Duration::from_millis(500));
        assert_eq!((report.ssrc, report.packet_count, report.octet_count), (42, 1, 100), "counts only its own stream");
        assert_eq!(report.rtp_time, 90_000 + 45_000, "half a second after the capture");
        assert_eq!(ntp::to_system_time(report.ntp_time), Some(captured_at + Duration::from_millis(500)));
        let earlier = reported(captured_at - Duration::from_millis(100));
        assert_eq!(earlier.rtp_time, 90_000 - 9_000);

        assert_eq!(reporter.due(start + FIRST_REPORT_AFTER).len(), 1, "one report, of the stream that sent");
        assert_eq!(reporter.next_report(), Some(start + FIRST_REPORT_AFTER + REPORT_INTERVAL));
    }
}
