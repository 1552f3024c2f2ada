//! When a camera captured each frame, on its own clock, from its RTCP sender reports (RFC 3550
//! §6.4.1: an SR pairs an NTP wall-clock time with the RTP timestamp of that instant).
//!
//! Viewers get this capture time through Lookout's own sender reports, so a browser's
//! `estimatedPlayoutTimestamp` gives glass-to-glass latency for a camera whose clock is
//! synchronised. A camera whose clock is far off (many have never seen an NTP server) would
//! make that figure nonsense: its reports are ignored and Lookout's receive time stands in.

use crate::media::ntp;
use std::time::{Duration, SystemTime};

/// A camera clock further than this from Lookout's is taken as unsynchronised.
const MAX_CLOCK_DISAGREEMENT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct CameraClock {
    /// The latest usable report: an extended RTP timestamp and the wall-clock time it stands for.
    reference: Option<(i64, SystemTime)>,
    /// Whether the last report was usable; `None` before the first.
    usable: Option<bool>,
    /// Without a usable report: the first frame's RTP timestamp and when it arrived, from which
    /// later frames are placed by their timestamps (steady, unlike each frame's own arrival).
    arrival_reference: Option<(i64, SystemTime)>,
}

impl CameraClock {
    /// Takes in a sender report received at `now`. A report from a clock that disagrees with
    /// Lookout's too much is not used, and the earlier reference is dropped with it. Returns
    /// whether reports are usable when that changed (or is first known), for the log.
    pub fn on_sender_report(&mut self, rtp_timestamp: i64, ntp_timestamp: u64, now: SystemTime) -> Option<bool> {
        let reported = ntp::to_system_time(ntp_timestamp).filter(|reported| {
            let disagreement = reported.duration_since(now).unwrap_or_else(|e| e.duration());
            disagreement <= MAX_CLOCK_DISAGREEMENT
        });
        self.reference = reported.map(|reported| (rtp_timestamp, reported));
        let usable = reported.is_some();
        (self.usable.replace(usable) != Some(usable)).then_some(usable)
    }

    /// When the frame of `rtp_timestamp` (extended, in `clock_rate` Hz) was captured, if the
    /// camera has sent a usable report.
    pub fn capture_time(&self, rtp_timestamp: i64, clock_rate: u32) -> Option<SystemTime> {
        let (reference_rtp, reference_time) = self.reference?;
        place(rtp_timestamp, clock_rate, reference_rtp, reference_time)
    }

    /// The capture time by the camera's reports when it has sent a usable one; otherwise
    /// Lookout's receive time of the first frame it was asked about (`now` then), advanced by
    /// the RTP timestamps since, so that frames 20 ms apart stay 20 ms apart however their
    /// packets arrive.
    pub fn capture_time_or_arrival(&mut self, rtp_timestamp: i64, clock_rate: u32, now: SystemTime) -> SystemTime {
        if let Some(reported) = self.capture_time(rtp_timestamp, clock_rate) {
            return reported;
        }
        let (reference_rtp, reference_time) = *self.arrival_reference.get_or_insert((rtp_timestamp, now));
        place(rtp_timestamp, clock_rate, reference_rtp, reference_time).unwrap_or(now)
    }
}

/// `reference_time` moved by the RTP time from `reference_rtp` to `rtp_timestamp`.
fn place(rtp_timestamp: i64, clock_rate: u32, reference_rtp: i64, reference_time: SystemTime) -> Option<SystemTime> {
    let offset = Duration::from_secs_f64((rtp_timestamp - reference_rtp).unsigned_abs() as f64 / f64::from(clock_rate));
    if rtp_timestamp >= reference_rtp {
        reference_time.checked_add(offset)
    } else {
        reference_time.checked_sub(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn frames_are_placed_around_the_report() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut clock = CameraClock::default();
        assert_eq!(clock.capture_time(0, 90_000), None, "no report yet");
        let reported = now - Duration::from_millis(40);
        assert_eq!(clock.on_sender_report(900_000, ntp::from_system_time(reported), now), Some(true));
        let at = |rtp| clock.capture_time(rtp, 90_000).expect("reference").duration_since(UNIX_EPOCH).expect("after").as_secs_f64();
        let base = reported.duration_since(UNIX_EPOCH).expect("after").as_secs_f64();
        assert!((at(900_000 + 45_000) - (base + 0.5)).abs() < 1e-6);
        assert!((at(900_000 - 9_000) - (base - 0.1)).abs() < 1e-6);
    }

    #[test]
    fn before_a_report_frames_are_placed_from_the_first_arrival() {
        let first = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut clock = CameraClock::default();
        assert_eq!(clock.capture_time_or_arrival(48_000, 48_000, first), first);
        // The next packet arrives late (a busy machine): its capture time is still 20 ms later.
        let late = first + Duration::from_millis(45);
        assert_eq!(clock.capture_time_or_arrival(48_960, 48_000, late), first + Duration::from_millis(20));
        // Once a report comes, it decides.
        let reported = first - Duration::from_millis(100);
        clock.on_sender_report(48_000, ntp::from_system_time(reported), late);
        let placed = clock.capture_time_or_arrival(48_960, 48_000, late).duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64();
        let expected = (reported + Duration::from_millis(20)).duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64();
        assert!((placed - expected).abs() < 1e-6);
    }

    #[test]
    fn an_unsynchronised_camera_clock_is_not_used() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut clock = CameraClock::default();
        assert_eq!(clock.on_sender_report(0, ntp::from_system_time(now), now), Some(true));
        assert_eq!(clock.on_sender_report(90, ntp::from_system_time(now), now), None, "no change to tell");
        // A camera that thinks it is 1970, then one an hour ahead.
        assert_eq!(clock.on_sender_report(0, ntp::from_system_time(UNIX_EPOCH + Duration::from_secs(60)), now), Some(false));
        assert_eq!(clock.capture_time(0, 90_000), None, "the earlier reference is dropped too");
        assert_eq!(clock.on_sender_report(0, ntp::from_system_time(now + Duration::from_secs(3600)), now), None);
    }
}
