//! A camera's AAC as the SDP and the RTP packets give it: the AudioSpecificConfig is read by
//! `AacConfig::parse` (an error or a config with a rate and a frame length that exist, never a
//! panic), and, when the transcoder takes it, access units of any content and timestamps of any
//! order go through `AacToOpus::push`: damaged units are errors or silence, and the Opus packets
//! that come out never go back in time.
//!
//! Input: one byte giving the config's length, the config, then access units each preceded by
//! a length byte and a timestamp step byte (steps past 127 go back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout::media::aac::AacConfig;
use lookout::media::aac_to_opus::AacToOpus;
use std::time::{Duration, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let Some((&config_length, rest)) = data.split_first() else { return };
    let (config, mut units) = rest.split_at(usize::from(config_length % 16).min(rest.len()));
    if let Ok(parsed) = AacConfig::parse(config) {
        assert!(parsed.sample_rate > 0 && matches!(parsed.frame_length, 960 | 1024), "{parsed:?}");
    }
    let Ok(mut transcoder) = AacToOpus::new(config) else { return };
    let (mut timestamp, mut last_out) = (0i64, None);
    let mut packets = Vec::new();
    while let [length, step, tail @ ..] = units {
        let (unit, after) = tail.split_at(usize::from(*length).min(tail.len()));
        units = after;
        timestamp += i64::from(*step as i8) * 64;
        let captured_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(timestamp.unsigned_abs() % 1_000_000);
        let _ = transcoder.push(unit, timestamp, captured_at, &mut packets);
        for packet in packets.drain(..) {
            assert!(last_out.is_none_or(|last| packet.timestamp > last), "Opus timestamps went back: {last_out:?} then {}", packet.timestamp);
            last_out = Some(packet.timestamp);
        }
    }
});
