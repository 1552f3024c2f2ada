//! What a viewer heard: Opus packets decoded (with opus-rs, the crate whose encoder Lookout
//! uses; Chromium's libopus checks the same stream in tests/browser.rs), and how much of the
//! sound is one tone.

use anyhow::{anyhow, Context};

/// Opus's output rate here, and the longest packet it may carry (120 ms).
pub const OPUS_RATE: u32 = 48_000;
const MAX_PACKET_SAMPLES: usize = 5_760;

/// The mono samples of consecutive Opus packets, at 48 kHz.
pub fn decode_opus<'a>(packets: impl IntoIterator<Item = &'a [u8]>) -> anyhow::Result<Vec<f32>> {
    let mut decoder = opus_rs::OpusDecoder::new(OPUS_RATE as i32, 1).map_err(|e| anyhow!("Opus decoder: {e}"))?;
    let mut samples = Vec::new();
    let mut frame = vec![0f32; MAX_PACKET_SAMPLES];
    for (i, packet) in packets.into_iter().enumerate() {
        let decoded = decoder.decode(packet, MAX_PACKET_SAMPLES, &mut frame).map_err(|e| anyhow!("{e}")).with_context(|| format!("Opus packet {i} ({} bytes)", packet.len()))?;
        samples.extend_from_slice(&frame[..decoded]);
    }
    Ok(samples)
}

/// The share of the power of `samples` (at `rate`) that is at `hz` (Goertzel), 0 to 1.
pub fn tone_share(samples: &[f32], rate: u32, hz: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        (s1, s2) = (f64::from(x) + coefficient * s1 - s2, s1);
    }
    let at_tone = (s1 * s1 + s2 * s2 - coefficient * s1 * s2) * 2.0 / samples.len().max(1) as f64;
    let total: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if total > 0.0 { at_tone / total } else { 0.0 }
}

/// The root mean square of `samples`, 0 to 1 (full scale).
pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}
