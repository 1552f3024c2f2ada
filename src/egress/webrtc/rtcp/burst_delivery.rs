//! How fast a viewer's link takes a burst, measured on the bursts Lookout sends anyway: each
//! keyframe leaves as a run of packets at the pacer's rate, and the viewer's transport-wide
//! feedback says when each arrived. A run that arrived as fast as it left shows the link
//! carries that rate, and the next one may leave twice as fast; a run that arrived spread out
//! shows what the link carries, and the next one leaves at that, and no faster for a while (a
//! run sent at just what the link carries arrives intact too). So a viewer on a good link
//! soon takes a keyframe at once, as an unpaced SFU would send it, without the jitter buffer
//! delay a spread keyframe costs; one behind a narrow link keeps being paced.
//!
//! A congestion controller's estimate cannot say this: it follows what Lookout sends (a few
//! Mbit/s) and never learns that the link would carry ten times more.

use rtc::interceptor::PacketReport;
use std::time::{Duration, Instant};

/// Packets that left within this of each other are one run: a paced keyframe leaves a packet
/// every 2 ms or less, frames at 30 fps are 33 ms apart.
const RUN_GAP: Duration = Duration::from_millis(4);
/// A shorter run (an ordinary frame) says too little about the link.
const MIN_RUN_PACKETS: usize = 20;
/// A run arrived intact when its arrivals spread at most this much more than its departures,
/// plus `SPREAD_SLACK` for the receiver's clock resolution and scheduling.
const SPREAD_TOLERANCE: f64 = 1.1;
const SPREAD_SLACK: Duration = Duration::from_millis(2);
/// After an intact run, the next may leave this much faster.
const GROWTH: f64 = 2.0;
/// At this rate a keyframe of a few hundred kilobytes leaves within a frame's time.
pub const MAX_BURST_BPS: f64 = 200_000_000.0;
/// Once a run showed where the link's limit lies (it arrived spread out, or lost packets),
/// bursts do not grow past that limit for this long: doubling from just under it overflowed a
/// narrow link's queue every other keyframe. After it, growth may try again: links improve.
const LIMIT_MEMORY: Duration = Duration::from_secs(30);

/// What one run showed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// Arrived as fast as it left, at this rate.
    Intact { sent_bps: f64 },
    /// Arrived spread out: the link delivered this rate.
    Spread { arrived_bps: f64 },
    /// Lost packets, sent at this rate; what did arrive came at `arrived_bps`, if anything
    /// arrived to say.
    Lossy { sent_bps: f64, arrived_bps: Option<f64> },
}

/// One run of packets as the feedback reported it.
struct Run {
    first_departure: Instant,
    last_departure: Instant,
    /// On the viewer's clock: the first and last arrival among those that arrived.
    arrivals: Option<(Duration, Duration)>,
    packets: usize,
    lost: usize,
    /// Bits sent and bits arrived after the run's first packet (a rate is bits over the time
    /// between the first packet and the last).
    bits_after_first: f64,
    arrived_bits_after_first: f64,
}

impl Run {
    fn start(report: &PacketReport) -> Self {
        let arrivals = report.arrival.filter(|_| report.arrived).map(|at| (at, at));
        let lost = usize::from(!report.arrived);
        Self { first_departure: report.departure, last_departure: report.departure, arrivals, packets: 1, lost, bits_after_first: 0.0, arrived_bits_after_first: 0.0 }
    }

    fn add(&mut self, report: &PacketReport) {
        let bits = report.size as f64 * 8.0;
        self.last_departure = report.departure;
        self.packets += 1;
        self.bits_after_first += bits;
        match report.arrival.filter(|_| report.arrived) {
            Some(at) => {
                self.arrived_bits_after_first += bits;
                self.arrivals = Some(self.arrivals.map_or((at, at), |(first, last)| (first.min(at), last.max(at))));
            }
            None => self.lost += 1,
        }
    }

    /// What this run says about the link, if anything.
    fn verdict(&self) -> Option<Verdict> {
        if self.packets < MIN_RUN_PACKETS {
            return None;
        }
        let sent_over = (self.last_departure - self.first_departure).max(Duration::from_millis(1));
        let sent_bps = self.bits_after_first / sent_over.as_secs_f64();
        let arrived = self.arrivals.map(|(first, last)| last.saturating_sub(first)).filter(|over| !over.is_zero());
        let arrived_bps = arrived.map(|over| self.arrived_bits_after_first / over.as_secs_f64());
        if self.lost > 0 {
            return Some(Verdict::Lossy { sent_bps, arrived_bps });
        }
        // Nothing arrived with a time to judge by.
        self.arrivals?;
        match (arrived, arrived_bps) {
            (Some(over), Some(arrived_bps)) if over.as_secs_f64() > sent_over.as_secs_f64() * SPREAD_TOLERANCE + SPREAD_SLACK.as_secs_f64() => {
                Some(Verdict::Spread { arrived_bps })
            }
            _ => Some(Verdict::Intact { sent_bps }),
        }
    }
}

#[derive(Default)]
pub struct BurstDelivery {
    run: Option<Run>,
    /// The newest packet taken in: a report covering it again is not counted twice.
    newest_id: Option<u64>,
    /// The highest rate the link was last seen to take, and when (see `LIMIT_MEMORY`).
    limit: Option<(f64, Instant)>,
}

impl BurstDelivery {
    /// Takes one feedback's packet reports, in send order. Returns the rate the next burst may
    /// leave at when a run ended and said something about the link.
    pub fn on_reports(&mut self, reports: &[PacketReport]) -> Option<f64> {
        let mut verdict = None;
        for report in reports {
            if self.newest_id.is_some_and(|newest| report.id <= newest) {
                continue;
            }
            self.newest_id = Some(report.id);
            match &mut self.run {
                Some(run) if report.departure.saturating_duration_since(run.last_departure) <= RUN_GAP => run.add(report),
                _ => {
                    let ended = self.run.replace(Run::start(report));
                    if let Some((judged, at)) = ended.and_then(|run| Some((run.verdict()?, run.last_departure))) {
                        verdict = Some(self.next_rate(judged, at));
                    }
                }
            }
        }
        verdict
    }

    /// The rate the next burst may leave at after a run sent until `at`: twice an intact
    /// run's, up to the limit the link showed lately; what a spread run arrived at; half a
    /// lossy run's.
    fn next_rate(&mut self, verdict: Verdict, at: Instant) -> f64 {
        let known_limit = self.limit.filter(|(_, since)| at.saturating_duration_since(*since) < LIMIT_MEMORY).map(|(bps, _)| bps);
        match verdict {
            Verdict::Intact { sent_bps } => {
                let grown = (sent_bps * GROWTH).min(MAX_BURST_BPS);
                known_limit.map_or(grown, |limit| grown.min(limit.max(sent_bps)))
            }
            Verdict::Spread { arrived_bps } => {
                self.limit = Some((arrived_bps, at));
                arrived_bps
            }
            // A burst that left at memory speed (its frame's deadline passed) and lost most
            // of itself says the link takes no more than what got through.
            Verdict::Lossy { sent_bps, arrived_bps } => {
                let next = (sent_bps / GROWTH).min(arrived_bps.unwrap_or(f64::INFINITY));
                self.limit = Some((next, at));
                next
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    const PACKET_BYTES: usize = 1250;

    /// `count` packets of 10 000 bits leaving every `sent_every` from `start`, arriving every
    /// `arrive_every` (or lost where `lost` says), ids from `first_id`.
    fn run(first_id: u64, count: usize, start: Instant, sent_every: Duration, arrive_every: Duration, lost: impl Fn(usize) -> bool) -> Vec<PacketReport> {
        (0..count)
            .map(|i| PacketReport {
                ssrc: 1,
                id: first_id + i as u64,
                rtp_sequence_number: i as u16,
                is_twcc: true,
                twcc_sequence_number: (first_id + i as u64) as u16,
                size: PACKET_BYTES,
                arrived: !lost(i),
                departure: start + sent_every * i as u32,
                arrival: Some(Duration::from_secs(100) + arrive_every * i as u32),
                ecn: Ecn::NotEct,
            })
            .collect()
    }

    /// A keyframe's run, then the first packet of the next frame 33 ms later, which ends it.
    fn keyframe_then_next(delivery: &mut BurstDelivery, sent_every: Duration, arrive_every: Duration, lost: impl Fn(usize) -> bool) -> Option<f64> {
        // Each keyframe a second after the one before.
        let start = Instant::now() + Duration::from_secs(delivery.newest_id.map_or(0, |newest| newest + 1));
        let first_id = delivery.newest_id.map_or(0, |newest| newest + 1);
        let mut reports = run(first_id, 50, start, sent_every, arrive_every, lost);
        reports.extend(run(first_id + 50, 1, start + sent_every * 50 + Duration::from_millis(33), sent_every, arrive_every, |_| false));
        delivery.on_reports(&reports)
    }

    fn mbps(bps: f64) -> f64 {
        (bps / 1e5).round() / 10.0
    }

    #[test]
    fn a_run_that_arrived_as_fast_as_it_left_lets_the_next_leave_twice_as_fast() {
        let mut delivery = BurstDelivery::default();
        // 10 000 bits every 1.6 ms: 6.25 Mbit/s out, and in.
        let every = Duration::from_micros(1600);
        let rate = keyframe_then_next(&mut delivery, every, every, |_| false).expect("a verdict");
        assert_eq!(mbps(rate), 12.5);
    }

    #[test]
    fn a_run_that_arrived_spread_gives_the_rate_the_link_delivered() {
        let mut delivery = BurstDelivery::default();
        // Sent at 6.25 Mbit/s, delivered at 5 (a packet every 2 ms).
        let rate = keyframe_then_next(&mut delivery, Duration::from_micros(1600), Duration::from_millis(2), |_| false).expect("a verdict");
        assert_eq!(mbps(rate), 5.0);
    }

    #[test]
    fn a_run_that_lost_packets_halves_the_rate() {
        let mut delivery = BurstDelivery::default();
        let every = Duration::from_micros(1600);
        let rate = keyframe_then_next(&mut delivery, every, every, |i| i > 40).expect("a verdict");
        assert_eq!(mbps(rate), 3.1);
    }

    #[test]
    fn a_burst_at_memory_speed_that_lost_most_of_itself_leaves_next_at_what_got_through() {
        let mut delivery = BurstDelivery::default();
        let reports = through_link(0, Instant::now(), 300_000_000.0, 5_000_000.0);
        assert!(reports.iter().filter(|r| !r.arrived).count() > 30, "the queue overflowed");
        let rate = delivery.on_reports(&reports).expect("a verdict");
        assert!(rate <= 5_500_000.0, "{} Mbit/s, not half of 300", mbps(rate));
    }

    #[test]
    fn ordinary_frames_say_nothing() {
        let mut delivery = BurstDelivery::default();
        let start = Instant::now();
        for frame in 0..30u64 {
            let frame_start = start + Duration::from_millis(33 * frame);
            let reports = run(frame * 7, 7, frame_start, Duration::from_micros(100), Duration::from_micros(100), |_| false);
            assert_eq!(delivery.on_reports(&reports), None, "frame {frame}");
        }
    }

    #[test]
    fn a_run_over_two_reports_is_judged_once_and_repeats_are_ignored() {
        let mut delivery = BurstDelivery::default();
        let every = Duration::from_micros(1600);
        let start = Instant::now();
        let reports = run(0, 50, start, every, every, |_| false);
        assert_eq!(delivery.on_reports(&reports[..30]), None, "the run goes on");
        assert_eq!(delivery.on_reports(&reports[20..]), None, "it may go on still");
        let next = run(50, 1, start + Duration::from_millis(150), every, every, |_| false);
        assert_eq!(delivery.on_reports(&next).map(mbps), Some(12.5), "judged on its 50 packets, none twice");
    }

    /// Packets of a keyframe, and of the next frame's first packet, which ends its run.
    const KEYFRAME_PACKETS: u64 = 70;

    /// A keyframe sent at `rate_bps` from `start` into a link of `link_bps` whose queue holds
    /// 30 packets (as the namespace test's), as the feedback reports it.
    fn through_link(first_id: u64, start: Instant, rate_bps: f64, link_bps: f64) -> Vec<PacketReport> {
        const QUEUE: usize = 30;
        let (sent_every, served_every) = (Duration::from_secs_f64(10_000.0 / rate_bps), Duration::from_secs_f64(10_000.0 / link_bps));
        let count = KEYFRAME_PACKETS as usize;
        let mut reports = run(first_id, count + 1, start, sent_every, Duration::ZERO, |_| false);
        reports[count].departure = reports[count - 1].departure + Duration::from_millis(33);
        // When the link finishes each packet it took, in order.
        let mut done: Vec<Duration> = Vec::new();
        for report in reports.iter_mut() {
            let sent = report.departure - start;
            let queued = done.iter().filter(|finished| **finished > sent).count();
            if queued >= QUEUE {
                report.arrived = false;
                continue;
            }
            let finished = done.last().map_or(sent, |last| (*last).max(sent)) + served_every;
            done.push(finished);
            report.arrival = Some(Duration::from_secs(100) + finished);
        }
        reports
    }

    #[test]
    fn a_narrow_link_found_once_is_not_overflowed_every_other_keyframe() {
        let mut delivery = BurstDelivery::default();
        let start = Instant::now();
        let link = 5_000_000.0;
        let mut rate = 20_000_000.0;
        let mut lossy = Vec::new();
        for keyframe in 0..20u64 {
            let reports = through_link(keyframe * (KEYFRAME_PACKETS + 1), start + Duration::from_secs(keyframe), rate, link);
            lossy.extend(reports.iter().any(|r| !r.arrived).then_some(keyframe));
            rate = delivery.on_reports(&reports).expect("a verdict");
        }
        // Doubling from what the link takes would overflow it every other keyframe.
        assert_eq!(lossy, vec![0], "only the keyframe that found the link's limit");
        assert!(rate <= link * 1.1, "settled at what the link takes: {}", mbps(rate));
        // Long after, growth tries again, and finds a link that got faster.
        let later = start + Duration::from_secs(20) + LIMIT_MEMORY;
        let reports = through_link(20 * (KEYFRAME_PACKETS + 1), later, rate, 50_000_000.0);
        assert!(delivery.on_reports(&reports).expect("a verdict") > rate * 1.9);
    }

    #[test]
    fn the_rate_grows_to_its_ceiling_on_a_link_that_takes_everything() {
        let mut delivery = BurstDelivery::default();
        let mut rate = 6_250_000.0;
        for _ in 0..10 {
            let every = Duration::from_secs_f64(10_000.0 / rate);
            rate = keyframe_then_next(&mut delivery, every, every, |_| false).expect("a verdict");
        }
        assert_eq!(rate, MAX_BURST_BPS);
    }
}
