//! Opus facts egress needs: its clock, the packet length Lookout makes, and how long a packet
//! plays, read from its TOC byte (RFC 6716 §3.1).

use std::time::Duration;

/// Opus's RTP clock, whatever the rate it encodes at (RFC 7587); also the timescale of an Opus
/// track in MP4 (ISO/IEC 23003-5).
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// The packet length WebRTC expects of Opus, and the one Lookout's encoder makes.
pub const OPUS_PACKET: Duration = Duration::from_millis(20);
/// RFC 6716's longest packet: 120 ms.
const MAX_PACKET_TICKS: u32 = 5_760;

/// How long `packet` plays, in ticks of the 48 kHz clock; `None` for a packet whose TOC makes
/// no sense (empty, a frame count of zero, longer than 120 ms).
pub fn packet_duration(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = usize::from(toc >> 3);
    let frame = match config {
        0..=11 => [480, 960, 1_920, 2_880][config % 4], // SILK: 10, 20, 40, 60 ms
        12..=15 => [480, 960][config % 2],              // hybrid: 10, 20 ms
        _ => [120, 240, 480, 960][config % 4],          // CELT: 2.5, 5, 10, 20 ms
    };
    let frames = match toc & 0b11 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(packet.get(1)? & 0x3f),
    };
    let ticks = frame * frames;
    (frames > 0 && ticks <= MAX_PACKET_TICKS).then_some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_the_toc() {
        // CELT fullband 20 ms mono, one frame: what Lookout's encoder makes.
        assert_eq!(packet_duration(&[0xf8, 0x01]), Some(960));
        // SILK wideband 20 ms, two frames of equal size: 40 ms.
        assert_eq!(packet_duration(&[(9 << 3) | 1]), Some(1_920));
        // CELT 2.5 ms, code 3 with 6 frames.
        assert_eq!(packet_duration(&[(16 << 3) | 3, 6]), Some(720));
        // SILK 60 ms, code 3 with 3 frames: 180 ms, too long.
        assert_eq!(packet_duration(&[(3 << 3) | 3, 3]), None);
        assert_eq!(packet_duration(&[(16 << 3) | 3, 0]), None, "no frames");
        assert_eq!(packet_duration(&[(16 << 3) | 3]), None, "frame count missing");
        assert_eq!(packet_duration(&[]), None);
    }
}
