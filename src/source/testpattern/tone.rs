//! The synthetic camera's sound: G.711 µ-law at 8 kHz, silent but for a 1 kHz beep during the
//! first 100 ms of every second of capture time. The picture's barcode carries the same capture
//! time, so a player can tell how far apart it shows the two (lip sync).

use crate::media::g711::linear_to_ulaw;
use crate::media::{AudioCodec, AudioFrame, SourceAudio};
use crate::stream::Stream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SAMPLE_RATE: u64 = 8_000;
/// 20 ms of audio per RTP packet, as WebRTC expects of G.711.
const SAMPLES_PER_FRAME: u64 = 160;
const BEEP_HZ: f64 = 1_000.0;
const BEEP: Duration = Duration::from_millis(100);
const AMPLITUDE: f64 = 8_000.0;

/// The µ-law samples of the frame whose first sample was captured `first_sample_micros` after
/// 1970.
pub fn tone_frame(first_sample_micros: u64) -> Vec<u8> {
    (0..SAMPLES_PER_FRAME)
        .map(|n| {
            let micros = first_sample_micros + n * 1_000_000 / SAMPLE_RATE;
            let into_second = Duration::from_micros(micros % 1_000_000);
            let sample = if into_second < BEEP {
                (AMPLITUDE * (2.0 * std::f64::consts::PI * BEEP_HZ * into_second.as_secs_f64()).sin()) as i16
            } else {
                0
            };
            linear_to_ulaw(sample)
        })
        .collect()
}

/// Publishes the tone on `stream` in real time until `stop`.
pub fn run(stream: &Stream, stop: &AtomicBool) {
    stream.set_source_audio(Some(SourceAudio::Rtp(AudioCodec::Pcmu)));
    let frame_period = Duration::from_micros(SAMPLES_PER_FRAME * 1_000_000 / SAMPLE_RATE);
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let start_micros = start_wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
    let mut frame_number: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + frame_period * frame_number as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let offset = frame_period * frame_number as u32;
        let samples = tone_frame(start_micros + offset.as_micros() as u64);
        stream.publish_audio(AudioFrame {
            timestamp: frame_number * SAMPLES_PER_FRAME,
            codec: AudioCodec::Pcmu,
            data: samples.into(),
            captured_at: start_wall + offset,
            arrived_at: Instant::now(),
        });
        frame_number += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beep_starts_each_second_and_silence_follows() {
        let silence = linear_to_ulaw(0);
        let at_second = tone_frame(1_800_000_000_000_000);
        assert_eq!(at_second.len(), 160);
        assert!(at_second.iter().filter(|&&s| s != silence).count() > 100, "the beep sounds");
        let later = tone_frame(1_800_000_000_000_000 + 200_000);
        assert!(later.iter().all(|&s| s == silence), "silent after the first 100 ms");
        let ending = tone_frame(1_800_000_000_000_000 + 90_000);
        assert!(ending[..80].iter().any(|&s| s != silence) && ending[80..].iter().all(|&s| s == silence), "ends at 100 ms");
    }
}
