//! The playout-delay header extension (http://www.webrtc.org/experiments/rtp-hdrext/playout-delay):
//! tells the viewer's jitter buffer the least and the most it may hold a frame before showing
//! it. Chromium keeps the last limits a frame brought; with both at zero it shows each frame
//! as soon as it is decoded.

use bytes::Bytes;
use rtc::rtp::packet::Packet;
use std::time::Duration;

/// The extension counts in steps of 10 ms, in 12 bits each.
const STEP: Duration = Duration::from_millis(10);
const MAX_STEPS: u128 = 0xfff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutDelay {
    pub min: Duration,
    pub max: Duration,
}

impl PlayoutDelay {
    /// The extension's three bytes: the minimum's 12 bits, then the maximum's, each in 10 ms
    /// steps (rounded down, capped at 40.95 s).
    fn value(self) -> [u8; 3] {
        let steps = |delay: Duration| (delay.as_millis() / STEP.as_millis()).min(MAX_STEPS) as u32;
        let packed = (steps(self.min) << 12) | steps(self.max);
        let [_, high, middle, low] = packed.to_be_bytes();
        [high, middle, low]
    }
}

/// Puts the limits on every packet of the video streams (their retransmissions go on other
/// SSRCs and need none), so that a lost packet does not lose them.
pub struct PlayoutDelayStamp {
    extension_id: u8,
    /// One per video track: a handful at most, quicker to search than a set.
    ssrcs: Vec<u32>,
    /// Made once: each packet shares it.
    value: Bytes,
}

impl PlayoutDelayStamp {
    pub fn new(delay: PlayoutDelay, extension_id: u8, ssrcs: Vec<u32>) -> Self {
        Self { extension_id, ssrcs, value: Bytes::copy_from_slice(&delay.value()) }
    }

    pub fn stamp(&self, packet: &mut Packet) {
        if self.ssrcs.contains(&packet.header.ssrc) {
            // An id outside the one-byte range: the description parser does not let one through.
            let _ = packet.header.set_extension(self.extension_id, self.value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_packed_in_10ms_steps_of_12_bits() {
        let delay = |min, max| PlayoutDelay { min: Duration::from_millis(min), max: Duration::from_millis(max) };
        assert_eq!(delay(0, 0).value(), [0, 0, 0]);
        // 100 ms = 10 steps, 250 ms = 25 steps: 0x00a then 0x019.
        assert_eq!(delay(100, 250).value(), [0x00, 0xa0, 0x19]);
        assert_eq!(delay(15, 99_999).value(), [0x00, 0x1f, 0xff], "rounded down, capped at 0xfff steps");
    }

    #[test]
    fn only_the_chosen_streams_packets_carry_it() {
        let stamp = PlayoutDelayStamp::new(PlayoutDelay { min: Duration::ZERO, max: Duration::ZERO }, 3, vec![1111]);
        let mut video = Packet::default();
        video.header.ssrc = 1111;
        let mut other = Packet::default();
        other.header.ssrc = 2222;
        stamp.stamp(&mut video);
        stamp.stamp(&mut other);
        assert_eq!(video.header.get_extension(3).as_deref(), Some(&[0u8, 0, 0][..]));
        assert!(other.header.get_extension(3).is_none());
    }
}
