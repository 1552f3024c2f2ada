//! Spreads one viewer's packets over time instead of writing each frame as one burst.
//!
//! A keyframe is many times the size of an average frame. Written at once, its dozens of
//! packets leave at memory speed, far above the stream's bitrate; a shallow router queue or a
//! browser's socket buffer then drops the tail and the viewer freezes until a NACK round trip
//! or the next keyframe. Sent at a few times the stream's average bitrate (libwebrtc paces at
//! 2.5 times its target), a keyframe reaches a link that carries the average with only a small
//! queue. The wait is bounded: a packet never waits past its frame's deadline, after which the
//! rest of the frame goes at once, because video that arrives late is worth less than a burst.
//!
//! The schedule is a virtual clock: `paced_until` is when the packets handed in so far would
//! have left at the pacing rate. A packet may leave up to `BURST` ahead of that schedule, so
//! an average frame goes out whole and only larger ones are spread.

use std::time::{Duration, Instant};

/// How much faster than the stream's average bitrate a viewer's packets may leave.
const PACING_FACTOR: f64 = 2.5;
/// The rate before the stream's bitrate is known (its first second), and the floor after.
const MIN_PACING_BITRATE: f64 = 1_000_000.0;
/// How far ahead of the paced schedule a packet may leave. An average frame at 30 fps takes
/// 13 ms at 2.5 times the average bitrate: it leaves whole, adding no delay (at 5 ms, pacing
/// added about 9 ms to the median glass-to-glass latency in Chromium).
const BURST: Duration = Duration::from_millis(15);
/// What a packet adds on the wire to its RTP payload: RTP header and extensions, SRTP's
/// authentication tag, UDP and IPv4 headers.
const WIRE_OVERHEAD_BYTES: usize = 50;
/// The longest a live frame waits in the pacer, from when Lookout received it.
pub const MAX_PACING_DELAY: Duration = Duration::from_millis(150);

#[derive(Debug)]
pub struct ViewerPacer {
    bits_per_second: f64,
    /// What the viewer's link showed it takes in a burst: pacing never goes slower.
    link_bits_per_second: f64,
    paced_until: Option<Instant>,
}

impl Default for ViewerPacer {
    fn default() -> Self {
        Self { bits_per_second: MIN_PACING_BITRATE, link_bits_per_second: 0.0, paced_until: None }
    }
}

impl ViewerPacer {
    /// Paces at `PACING_FACTOR` times the stream's average bitrate.
    pub fn follow_stream_bitrate(&mut self, stream_bits_per_second: f64) {
        self.set_rate(stream_bits_per_second * PACING_FACTOR);
    }

    pub fn set_rate(&mut self, bits_per_second: f64) {
        self.bits_per_second = bits_per_second.max(MIN_PACING_BITRATE);
    }

    /// Paces no slower than `bits_per_second`, the rate the viewer's link took its last burst
    /// at (`rtcp::burst_delivery`), when that is known.
    pub fn allow_link_rate(&mut self, bits_per_second: Option<f64>) {
        self.link_bits_per_second = bits_per_second.unwrap_or(0.0);
    }

    pub fn rate(&self) -> f64 {
        self.bits_per_second.max(self.link_bits_per_second)
    }

    /// When a packet with `payload_bytes` of RTP payload, handed in at `now`, may leave: at
    /// once while the schedule allows, otherwise when it does, but never after `deadline`.
    pub fn release_time(&mut self, payload_bytes: usize, now: Instant, deadline: Instant) -> Instant {
        let bits = (payload_bytes + WIRE_OVERHEAD_BYTES) as f64 * 8.0;
        let start = self.paced_until.map_or(now, |until| until.max(now));
        let release = start.checked_sub(BURST).map_or(now, |early| early.max(now)).min(deadline.max(now));
        self.paced_until = Some(start + Duration::from_secs_f64(bits / self.rate()));
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 000 bits on the wire: 10 ms at 1 Mbit/s.
    const PACKET: usize = 1250 - WIRE_OVERHEAD_BYTES;

    fn releases(pacer: &mut ViewerPacer, packets: usize, now: Instant, deadline: Instant) -> Vec<Duration> {
        (0..packets).map(|_| pacer.release_time(PACKET, now, deadline) - now).collect()
    }

    /// Where the k-th packet of a burst handed in at once leaves: on the paced schedule, up to
    /// `BURST` early.
    fn paced(k: u32) -> Duration {
        (Duration::from_millis(10) * k).saturating_sub(BURST)
    }

    #[test]
    fn a_burst_is_spread_at_the_pacing_rate() {
        let mut pacer = ViewerPacer::default();
        pacer.set_rate(1_000_000.0);
        let now = Instant::now();
        let far = now + Duration::from_secs(10);
        let expected: Vec<Duration> = (0..8).map(paced).collect();
        assert_eq!(releases(&mut pacer, 8, now, far), expected);
        assert_eq!(expected[7], Duration::from_millis(70) - BURST, "10 ms per packet at 1 Mbit/s");
    }

    #[test]
    fn a_frame_never_waits_past_its_deadline() {
        let mut pacer = ViewerPacer::default();
        pacer.set_rate(1_000_000.0);
        let now = Instant::now();
        let deadline = now + paced(5) + Duration::from_millis(2);
        let waits = releases(&mut pacer, 8, now, deadline);
        assert_eq!(waits[5], paced(5));
        assert_eq!(&waits[6..], [deadline - now, deadline - now]);
        assert!(waits.windows(2).all(|pair| pair[0] <= pair[1]), "in order: {waits:?}");
        let passed = pacer.release_time(PACKET, now, now - Duration::from_millis(1));
        assert_eq!(passed, now, "a deadline already passed sends at once");
    }

    #[test]
    fn idle_time_is_not_banked() {
        let mut pacer = ViewerPacer::default();
        pacer.set_rate(1_000_000.0);
        let start = Instant::now();
        let far = start + Duration::from_secs(10);
        pacer.release_time(PACKET, start, far);
        let later = start + Duration::from_secs(1);
        let waits = releases(&mut pacer, 8, later, far);
        assert_eq!(waits, (0..8).map(paced).collect::<Vec<_>>(), "the schedule does not bank idle time");
    }

    #[test]
    fn the_rate_follows_the_stream_with_a_floor() {
        let mut pacer = ViewerPacer::default();
        pacer.follow_stream_bitrate(2_000_000.0);
        assert_eq!(pacer.rate(), 5_000_000.0);
        pacer.follow_stream_bitrate(0.0);
        assert_eq!(pacer.rate(), MIN_PACING_BITRATE, "before the stream's bitrate is known");
    }

    #[test]
    fn a_link_that_took_bursts_fast_is_paced_at_its_rate_and_never_below_the_stream() {
        let mut pacer = ViewerPacer::default();
        pacer.follow_stream_bitrate(2_000_000.0);
        pacer.allow_link_rate(Some(100_000_000.0));
        let now = Instant::now();
        let far = now + Duration::from_secs(10);
        // 60 packets of 10 000 bits, a keyframe: 6 ms at 100 Mbit/s, all within the burst.
        assert!(releases(&mut pacer, 60, now, far).iter().all(|wait| *wait == Duration::ZERO));
        pacer.allow_link_rate(Some(1_000_000.0));
        assert_eq!(pacer.rate(), 5_000_000.0, "a narrow link's figure never paces below 2.5 times the stream");
        pacer.allow_link_rate(None);
        assert_eq!(pacer.rate(), 5_000_000.0);
    }
}
