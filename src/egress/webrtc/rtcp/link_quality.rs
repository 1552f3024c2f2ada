//! How much one viewer's link carries, from what the viewer reports: Google Congestion
//! Control (rtc's `Gcc`) over its transport-wide feedback (TWCC, what Chromium and Firefox
//! send when transport-cc is negotiated), or else the viewer's own estimate in REMB; and the
//! loss, jitter and round trip of its RTCP receiver reports; and how fast it takes a burst. The
//! forwarder reads it to choose a layer and to pace; the metrics read every report's round trip
//! and loss.

use crate::egress::webrtc::rtcp::burst_delivery::BurstDelivery;
use crate::egress::webrtc::rtcp::observer::{is_video, RtcpObserver};
use crate::histogram::Histogram;
use crate::media::ntp;
use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Where a congestion controller starts: optimistic, so a viewer starts on the best layer and
/// steps down within a second or two if its link cannot carry it.
const INITIAL_ESTIMATE_BPS: f64 = 10_000_000.0;
const MIN_ESTIMATE_BPS: f64 = 50_000.0;
const MAX_ESTIMATE_BPS: f64 = 100_000_000.0;

/// An `f64` that threads share; `NaN` stands for "not known yet".
struct SharedValue(AtomicU64);

impl Default for SharedValue {
    fn default() -> Self {
        Self(AtomicU64::new(f64::NAN.to_bits()))
    }
}

impl SharedValue {
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> Option<f64> {
        Some(f64::from_bits(self.0.load(Ordering::Relaxed))).filter(|value| !value.is_nan())
    }
}

/// Where the estimate came from; 0 (the default) is "no estimate yet".
const FROM_TWCC: u8 = 1;
const FROM_REMB: u8 = 2;

#[derive(Clone, Copy)]
struct Restart {
    bits_per_second: f64,
    /// Feedback on packets that left before this describes what was sent before.
    at: Instant,
}

/// Written by what reads one viewer's RTCP, read by its forwarder.
#[derive(Default)]
pub struct LinkQuality {
    estimate_bps: SharedValue,
    estimate_from: AtomicU8,
    /// Asked for by the forwarder: the congestion controller starts again from a rate.
    restart: Mutex<Option<Restart>>,
    loss_fraction: SharedValue,
    jitter_ms: SharedValue,
    round_trip_ms: SharedValue,
    /// The rate the viewer's next burst (a keyframe) may leave at.
    burst_bps: SharedValue,
    reported: Mutex<ReportedLink>,
}

/// Upper bounds of the round-trip histogram, in seconds.
const ROUND_TRIP_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Upper bounds of the loss histogram: the fraction of packets lost since the report before.
const LOSS_BUCKETS: &[f64] = &[0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];

/// Every receiver report's round trip and loss on the video, in histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedLink {
    pub round_trip_seconds: Histogram,
    pub loss_fraction: Histogram,
}

impl Default for ReportedLink {
    fn default() -> Self {
        Self { round_trip_seconds: Histogram::new(ROUND_TRIP_BUCKETS), loss_fraction: Histogram::new(LOSS_BUCKETS) }
    }
}

impl ReportedLink {
    /// Adds another's observations (the metrics add up a path's viewers).
    pub fn add(&mut self, other: &ReportedLink) {
        self.round_trip_seconds.add(&other.round_trip_seconds);
        self.loss_fraction.add(&other.loss_fraction);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LinkQualitySnapshot {
    pub estimated_bitrate_bps: Option<f64>,
    /// "twcc" or "remb".
    pub estimate_from: Option<&'static str>,
    /// From the viewer's latest receiver report.
    pub loss_fraction: Option<f64>,
    pub jitter_ms: Option<f64>,
    /// From the viewer's latest receiver report that answered a sender report.
    pub round_trip_ms: Option<f64>,
    /// From how the viewer's last keyframe arrived (`BurstDelivery`).
    pub burst_bps: Option<f64>,
}

impl LinkQuality {
    pub fn snapshot(&self) -> LinkQualitySnapshot {
        LinkQualitySnapshot {
            estimated_bitrate_bps: self.estimate_bps.get().map(f64::round),
            estimate_from: match self.estimate_from.load(Ordering::Relaxed) {
                FROM_TWCC => Some("twcc"),
                FROM_REMB => Some("remb"),
                _ => None,
            },
            loss_fraction: self.loss_fraction.get(),
            jitter_ms: self.jitter_ms.get(),
            round_trip_ms: self.round_trip_ms.get(),
            burst_bps: self.burst_bps.get().map(f64::round),
        }
    }

    /// Starts the congestion controller again from `bits_per_second`, judged only by packets
    /// that leave from `now` on. A controller that backed off climbs back slowly (about
    /// 60 kbit/s per second near its last ceiling, not at all on a link with a few per cent of
    /// random loss), far too slowly to find out whether a link carries a higher layer again;
    /// trying the layer and starting the estimate from its bitrate finds out within a second or
    /// two. And after a step down, the old layer's lost tail would cut the estimate again and
    /// again.
    pub fn restart_estimate_from(&self, bits_per_second: f64, now: Instant) {
        *self.restart.lock() = Some(Restart { bits_per_second, at: now });
    }

    /// Every report's round trip and loss so far.
    pub fn reported(&self) -> ReportedLink {
        self.reported.lock().clone()
    }

    fn publish_estimate(&self, bits_per_second: f64, from: u8) {
        self.estimate_bps.set(bits_per_second);
        self.estimate_from.store(from, Ordering::Relaxed);
    }
}

/// `Gcc` and `BurstDelivery` over the same feedback, publishing to the viewer's `LinkQuality`.
pub struct PublishedGcc {
    gcc: Gcc,
    /// Until feedback on packets that left before the last restart has passed: that feedback
    /// is not given to the new controller.
    restarted_at: Option<Instant>,
    bursts: BurstDelivery,
    link: Arc<LinkQuality>,
}

impl PublishedGcc {
    pub fn new(link: Arc<LinkQuality>) -> Self {
        Self { gcc: Gcc::new(INITIAL_ESTIMATE_BPS, MIN_ESTIMATE_BPS, MAX_ESTIMATE_BPS), restarted_at: None, bursts: BurstDelivery::default(), link }
    }
}

impl BandwidthEstimator for PublishedGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if let Some(restart) = self.link.restart.lock().take() {
            self.gcc = Gcc::new(restart.bits_per_second, MIN_ESTIMATE_BPS, MAX_ESTIMATE_BPS);
            self.restarted_at = Some(restart.at);
        }
        let since_restart = match self.restarted_at {
            Some(at) => {
                let first_new = reports.iter().position(|report| report.departure >= at).unwrap_or(reports.len());
                if first_new == 0 {
                    self.restarted_at = None;
                }
                &reports[first_new..]
            }
            None => reports,
        };
        self.gcc.on_reports(now, since_restart);
        if let Some(burst_bps) = self.bursts.on_reports(reports) {
            self.link.burst_bps.set(burst_bps);
        }
        if !reports.is_empty() {
            self.link.publish_estimate(self.gcc.target_bitrate(), FROM_TWCC);
        }
    }

    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// The round trip a receiver report shows (RFC 3550 §6.4.1): the middle 32 bits of the NTP
/// time it arrived, less those of the sender report it answers (LSR) and how long the viewer
/// held that one (DLSR), in 1/65536 s. `None` when the viewer had no sender report yet, or
/// when the figure cannot be one (a report that claims to answer a report not yet sent).
fn round_trip(arrived: SystemTime, last_sender_report: u32, delay_since: u32) -> Option<Duration> {
    if last_sender_report == 0 {
        return None;
    }
    let arrived = (ntp::from_system_time(arrived) >> 16) as u32;
    let units = arrived.wrapping_sub(last_sender_report).wrapping_sub(delay_since);
    // Over a minute is a report from another clock or a wrapped (negative) difference.
    (units < 60 << 16).then(|| Duration::from_secs_f64(f64::from(units) / 65536.0))
}

/// Notes the viewer's receiver reports and REMB as an `RtcpTap` shows them.
pub struct ReceiverReportWatcher {
    link: Arc<LinkQuality>,
    video_ssrc: Option<u32>,
}

impl ReceiverReportWatcher {
    pub fn new(link: Arc<LinkQuality>) -> Self {
        Self { link, video_ssrc: None }
    }
}

impl RtcpObserver for ReceiverReportWatcher {
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, _now: Instant, _replies: &mut VecDeque<TaggedPacket>) {
        if let Some(report) = packet.as_any().downcast_ref::<ReceiverReport>() {
            for reception in report.reports.iter().filter(|r| Some(r.ssrc) == self.video_ssrc) {
                let loss = f64::from(reception.fraction_lost) / 256.0;
                self.link.loss_fraction.set(loss);
                self.link.jitter_ms.set(f64::from(reception.jitter) * 1000.0 / f64::from(crate::media::VIDEO_CLOCK_RATE));
                let round_trip = round_trip(SystemTime::now(), reception.last_sender_report, reception.delay);
                let mut reported = self.link.reported.lock();
                reported.loss_fraction.observe(loss);
                if let Some(round_trip) = round_trip {
                    self.link.round_trip_ms.set(round_trip.as_secs_f64() * 1000.0);
                    reported.round_trip_seconds.observe(round_trip.as_secs_f64());
                }
            }
        } else if let Some(remb) = packet.as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            // With TWCC feedback, Lookout's own estimate is the better one.
            if self.link.estimate_from.load(Ordering::Relaxed) != FROM_TWCC {
                self.link.publish_estimate(f64::from(remb.bitrate), FROM_REMB);
            }
        }
    }

    fn bind_local_stream(&mut self, info: &StreamInfo) {
        // The layer is chosen by the video's reports; an audio stream binds too.
        if is_video(info) {
            self.video_ssrc = Some(info.ssrc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
    use std::time::Duration;

    fn read(watcher: &mut ReceiverReportWatcher, rtcp: Vec<Box<dyn rtc::rtcp::packet::Packet>>) {
        for packet in &rtcp {
            watcher.observe(packet.as_ref(), Instant::now(), &mut VecDeque::new());
        }
    }

    #[test]
    fn receiver_reports_and_remb_reach_the_snapshot() {
        let link = Arc::new(LinkQuality::default());
        let mut watcher = ReceiverReportWatcher::new(link.clone());
        watcher.bind_local_stream(&StreamInfo { ssrc: 7, mime_type: "video/H264".into(), ..Default::default() });
        watcher.bind_local_stream(&StreamInfo { ssrc: 99, mime_type: "audio/PCMU".into(), ..Default::default() });
        assert_eq!(link.snapshot(), LinkQualitySnapshot::default(), "nothing known yet");
        let reception = |ssrc, fraction_lost| ReceptionReport { ssrc, fraction_lost, jitter: 900, ..Default::default() };
        let report = ReceiverReport { ssrc: 1, reports: vec![reception(99, 200), reception(7, 64)], ..Default::default() };
        // (99 is the audio's.)
        let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 1, bitrate: 1_500_000.0, ssrcs: vec![7] };
        read(&mut watcher, vec![Box::new(report), Box::new(remb)]);
        let snapshot = link.snapshot();
        assert_eq!(snapshot.loss_fraction, Some(0.25), "the report on Lookout's video, not another SSRC's");
        assert_eq!(snapshot.jitter_ms, Some(10.0));
        assert_eq!((snapshot.estimated_bitrate_bps, snapshot.estimate_from), (Some(1_500_000.0), Some("remb")));

        link.publish_estimate(800_000.0, FROM_TWCC);
        read(&mut watcher, vec![Box::new(ReceiverEstimatedMaximumBitrate { sender_ssrc: 1, bitrate: 9e6, ssrcs: vec![7] })]);
        assert_eq!(link.snapshot().estimated_bitrate_bps, Some(800_000.0), "REMB does not override the TWCC estimate");
    }

    #[test]
    fn round_trip_is_the_time_since_the_sender_report_less_the_viewers_hold() {
        let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let last_sender_report = (ntp::from_system_time(sent) >> 16) as u32;
        let held = (65536 / 10) as u32; // 100 ms
        let arrived = sent + Duration::from_millis(150);
        let measured = round_trip(arrived, last_sender_report, held).expect("a round trip");
        assert!((measured.as_secs_f64() - 0.050).abs() < 0.0001, "{measured:?}");
        assert_eq!(round_trip(arrived, 0, 0), None, "no sender report answered yet");
        assert_eq!(round_trip(sent, last_sender_report, held), None, "held longer than since it was sent");
    }

    #[test]
    fn every_report_on_the_video_is_counted_for_the_metrics() {
        let link = Arc::new(LinkQuality::default());
        let mut watcher = ReceiverReportWatcher::new(link.clone());
        watcher.bind_local_stream(&StreamInfo { ssrc: 7, mime_type: "video/H264".into(), ..Default::default() });
        let sent = (ntp::from_system_time(SystemTime::now() - Duration::from_millis(40)) >> 16) as u32;
        let reception = |ssrc, last_sender_report| ReceptionReport { ssrc, fraction_lost: 26, last_sender_report, ..Default::default() };
        read(&mut watcher, vec![Box::new(ReceiverReport { ssrc: 1, reports: vec![reception(7, 0)], ..Default::default() })]);
        read(&mut watcher, vec![Box::new(ReceiverReport { ssrc: 1, reports: vec![reception(7, sent), reception(8, sent)], ..Default::default() })]);
        let reported = link.reported();
        assert_eq!(reported.loss_fraction.count(), 2, "both reports on the video, not the other SSRC's");
        assert_eq!(reported.round_trip_seconds.count(), 1, "only the report that answered a sender report");
        let round_trip_ms = link.snapshot().round_trip_ms.expect("a round trip");
        assert!((39.9..1000.0).contains(&round_trip_ms), "{round_trip_ms} ms: 40 ms at least, less the 1/65536 s the middle 32 bits of NTP round down");
        assert_eq!(reported.loss_fraction.buckets()[5], (0.2, 2), "26/256 lost is just over 10%: in the bucket up to 20%");
    }

    #[test]
    fn a_restart_takes_effect_at_the_next_feedback() {
        let link = Arc::new(LinkQuality::default());
        let mut estimator = PublishedGcc::new(link.clone());
        assert_eq!(estimator.target_bitrate(), INITIAL_ESTIMATE_BPS);
        link.restart_estimate_from(2_000_000.0, Instant::now());
        assert_eq!(estimator.target_bitrate(), INITIAL_ESTIMATE_BPS, "not before feedback");
        estimator.on_reports(Instant::now(), &[]);
        assert_eq!(estimator.target_bitrate(), 2_000_000.0);
        assert_eq!(link.snapshot().estimated_bitrate_bps, None, "empty feedback publishes nothing");
    }

    /// The packets of a layer left behind, lost in the congested link's queue, and the new
    /// layer's, which arrive, reported in the same feedback.
    #[test]
    fn after_a_restart_the_loss_of_packets_sent_before_it_is_not_counted() {
        let start = Instant::now();
        let restart_at = start + Duration::from_millis(200);
        let report = |id: u64, arrived: bool| PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size: 1200,
            arrived,
            departure: start + Duration::from_millis(10 * id),
            arrival: arrived.then(|| Duration::from_secs(100) + Duration::from_millis(10 * id + 30)),
            ecn: Ecn::NotEct,
        };
        // 20 packets before the restart, every one lost; 20 after it, every one arrived.
        let reports: Vec<PacketReport> = (0..40).map(|id| report(id, id >= 20)).collect();
        let link = Arc::new(LinkQuality::default());
        let mut estimator = PublishedGcc::new(link.clone());
        link.restart_estimate_from(800_000.0, restart_at);
        estimator.on_reports(start + Duration::from_millis(450), &reports);
        assert!(estimator.target_bitrate() >= 800_000.0, "cut by the old layer's loss: {}", estimator.target_bitrate());

        // Without the restart the same feedback is half loss, and the estimate falls.
        let mut unrestarted = PublishedGcc::new(Arc::new(LinkQuality::default()));
        unrestarted.on_reports(start + Duration::from_millis(450), &reports);
        assert!(unrestarted.target_bitrate() < INITIAL_ESTIMATE_BPS, "{}", unrestarted.target_bitrate());
    }
}
