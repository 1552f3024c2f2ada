//! Mono PCM to Opus, the half that Lookout's transcoders share (a camera's AAC for WebRTC,
//! G.711 for HLS): samples at the source's rate are resampled where Opus does not take that
//! rate and cut into 20 ms packets (opus-rs, CELT).
//!
//! Packets carry RTP timestamps on Opus's 48 kHz clock, continuous while the source's are;
//! each one's capture time is the latest input's plus the offset of the packet's first sample
//! from it. A gap of a few frames in the source's timestamps is filled with silence, so the
//! timestamps run on; a longer gap, or a step back, starts a new run.

use super::opus::OPUS_CLOCK_RATE;
use super::resampler::{Resampler, UnsupportedRatio};
use bytes::Bytes;
use opus_rs::{Application, OpusEncoder};
use std::time::{Duration, SystemTime};

/// Enough for speech and a camera's ambient sound at any of Opus's rates.
const OPUS_BITRATE_BPS: i32 = 32_000;
/// RFC 6716's largest packet.
const MAX_OPUS_PACKET_BYTES: usize = 1_276;
/// The rates the Opus encoder takes.
const OPUS_INPUT_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// A gap in the source's timestamps up to this long is filled with silence; a longer one, or
/// a step back, starts a new run of timestamps.
const MAX_SILENCE_FILL: Duration = Duration::from_millis(500);
/// How far the decoded sound lags the encoder's input, on the 48 kHz clock: CELT's 2.5 ms
/// look-ahead (libopus's lookahead for the restricted low-delay application, which adds no
/// delay compensation). An MP4 Opus track states it as its pre-skip.
pub const ENCODER_DELAY_TICKS: u16 = 120;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Rate(#[from] UnsupportedRatio),
    #[error("the Opus encoder failed: {0}")]
    Encoder(&'static str),
}

/// One 20 ms Opus packet.
#[derive(Debug, Clone)]
pub struct OpusPacket {
    /// On the 48 kHz clock.
    pub timestamp: u64,
    pub data: Bytes,
    /// When its first sample was captured.
    pub captured_at: SystemTime,
}

/// Where the current run of timestamps stands.
struct Run {
    /// The source's timestamp (in samples) of the run's first sample, and its Opus timestamp.
    start: i64,
    start_opus: u64,
    /// The source timestamp the next samples should have.
    next: i64,
    /// Samples at the encoder's rate already sent in packets.
    encoded: u64,
}

pub struct PcmToOpus {
    /// The source's rate.
    sample_rate: u32,
    resampler: Option<Resampler>,
    encoder: OpusEncoder,
    encoder_rate: u32,
    /// Samples at the encoder's rate not yet in a packet (less than one packet between calls).
    pending: Vec<f32>,
    run: Option<Run>,
    /// The latest input's timestamp and capture time.
    reference: (i64, SystemTime),
}

impl PcmToOpus {
    /// For mono samples at `sample_rate`.
    pub fn new(sample_rate: u32) -> Result<Self, EncodeError> {
        let encoder_rate = encoder_rate_for(sample_rate);
        let resampler = (encoder_rate != sample_rate).then(|| Resampler::new(sample_rate, encoder_rate)).transpose()?;
        // CELT alone: the lowest delay (2.5 ms of look-ahead; SILK adds more) and the lowest
        // cost (measured at 16 kHz: 61 µs a packet, against 141-259 µs where SILK is chosen);
        // at 32 kbit/s it carries speech and a camera's surroundings well.
        let mut encoder = OpusEncoder::new(encoder_rate as i32, 1, Application::RestrictedLowDelay).map_err(EncodeError::Encoder)?;
        encoder.bitrate_bps = OPUS_BITRATE_BPS;
        Ok(Self { sample_rate, resampler, encoder, encoder_rate, pending: Vec::new(), run: None, reference: (0, SystemTime::UNIX_EPOCH) })
    }

    /// The source's sample rate, and the rate it is encoded at.
    pub fn rates(&self) -> (u32, u32) {
        (self.sample_rate, self.encoder_rate)
    }

    /// Takes `samples` (mono, full scale ±1.0) whose first has `timestamp` (in samples at the
    /// source's rate) and was captured at `captured_at`, and appends the packets they complete
    /// to `out`. A packet the encoder fails on is left out; its timestamps stay taken.
    pub fn push(&mut self, samples: &[f32], timestamp: i64, captured_at: SystemTime, out: &mut Vec<OpusPacket>) -> Result<(), EncodeError> {
        self.reference = (timestamp, captured_at);
        let max_fill = MAX_SILENCE_FILL.as_millis() as i64 * i64::from(self.sample_rate) / 1000;
        match self.run.as_ref().map(|run| timestamp - run.next) {
            Some(0) => {}
            Some(gap) if (1..=max_fill).contains(&gap) => self.encode(&vec![0.0; gap as usize], out)?,
            _ => self.restart(timestamp),
        }
        self.encode(samples, out)
    }

    /// Starts a run of timestamps at `timestamp`: the first, or after a long gap or a step
    /// back (then at the earliest right after the last packet).
    fn restart(&mut self, timestamp: i64) {
        let ticks_per_sample = u64::from(OPUS_CLOCK_RATE / self.encoder_rate);
        let after = self.run.as_ref().map_or(0, |run| run.start_opus + run.encoded * ticks_per_sample);
        let start_opus = (i128::from(timestamp.max(0)) * i128::from(OPUS_CLOCK_RATE) / i128::from(self.sample_rate)) as u64;
        self.run = Some(Run { start: timestamp, start_opus: start_opus.max(after), next: timestamp, encoded: 0 });
        self.pending.clear();
        if self.resampler.is_some() {
            // Infallible: the same rates were accepted when the first was made.
            self.resampler = Resampler::new(self.sample_rate, self.encoder_rate).ok();
        }
    }

    /// Moves `samples` (at the source's rate) through the resampler into packets.
    fn encode(&mut self, samples: &[f32], out: &mut Vec<OpusPacket>) -> Result<(), EncodeError> {
        let Some(run) = &mut self.run else { return Ok(()) };
        run.next += samples.len() as i64;
        match &mut self.resampler {
            Some(resampler) => resampler.process(samples, &mut self.pending),
            None => self.pending.extend_from_slice(samples),
        }
        let packet_samples = self.encoder_rate as usize / 50;
        let ticks_per_sample = u64::from(OPUS_CLOCK_RATE / self.encoder_rate);
        let (reference, reference_captured_at) = self.reference;
        let mut buffer = [0u8; MAX_OPUS_PACKET_BYTES];
        let mut failure = None;
        let mut consumed = 0;
        while self.pending.len() - consumed >= packet_samples {
            let samples = &self.pending[consumed..consumed + packet_samples];
            match self.encoder.encode(samples, packet_samples, &mut buffer) {
                Ok(length) => {
                    // The packet's first sample, placed from the latest input's.
                    let offset = (run.start - reference) as f64 / f64::from(self.sample_rate) + run.encoded as f64 / f64::from(self.encoder_rate);
                    out.push(OpusPacket {
                        timestamp: run.start_opus + run.encoded * ticks_per_sample,
                        data: Bytes::copy_from_slice(&buffer[..length]),
                        captured_at: shift(reference_captured_at, offset),
                    });
                }
                Err(error) => failure = Some(EncodeError::Encoder(error)),
            }
            run.encoded += packet_samples as u64;
            consumed += packet_samples;
        }
        self.pending.drain(..consumed);
        failure.map_or(Ok(()), Err)
    }
}

/// The Opus input rate for a source at `sample_rate`: the same where Opus takes it, else the
/// next above (48 kHz above that), so that nothing the source sent is cut off.
fn encoder_rate_for(sample_rate: u32) -> u32 {
    OPUS_INPUT_RATES.into_iter().find(|&rate| rate >= sample_rate).unwrap_or(OPUS_CLOCK_RATE)
}

fn shift(time: SystemTime, seconds: f64) -> SystemTime {
    let Ok(by) = Duration::try_from_secs_f64(seconds.abs()) else { return time };
    let shifted = if seconds >= 0.0 { time.checked_add(by) } else { time.checked_sub(by) };
    shifted.unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_rate_is_the_source_rate_or_the_next_above() {
        let rates: Vec<u32> = [8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000].into_iter().map(encoder_rate_for).collect();
        assert_eq!(rates, [8_000, 12_000, 16_000, 24_000, 48_000, 48_000, 48_000, 48_000]);
    }
}
