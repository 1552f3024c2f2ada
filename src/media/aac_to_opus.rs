//! AAC from cameras to Opus for browsers (WebRTC has no AAC): each access unit is decoded
//! (symphonia, AAC-LC), mixed down to mono, resampled where Opus does not take the camera's
//! rate, and cut into 20 ms Opus packets (opus-rs).
//!
//! Packets carry RTP timestamps on Opus's 48 kHz clock, continuous while the camera's are;
//! each one's capture time is the latest AAC frame's plus the offset of the packet's first
//! sample from it. A damaged frame is replaced with silence of its length and a gap of a few
//! frames is filled with silence, so the timestamps run on; a longer gap starts a new run.

use super::resampler::{Resampler, UnsupportedRatio};
use bytes::Bytes;
use opus_rs::{Application, OpusEncoder};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, SystemTime};
use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::packet::PacketRef;
use symphonia::core::units::{Duration as Frames, Timestamp};
use symphonia::default::codecs::AacDecoder;

/// Opus's RTP clock, whatever the rate it encodes at (RFC 7587).
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// The packet length WebRTC expects of Opus.
pub const OPUS_PACKET: Duration = Duration::from_millis(20);
/// Enough for speech and a camera's ambient sound at any of Opus's rates.
const OPUS_BITRATE_BPS: i32 = 32_000;
/// RFC 6716's largest packet.
const MAX_OPUS_PACKET_BYTES: usize = 1_276;
/// The rates the Opus encoder takes.
const OPUS_INPUT_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// Samples per AAC frame: symphonia takes only AAC-LC's 1024.
const FRAME_SAMPLES: usize = 1024;
/// A gap in the camera's timestamps up to this long is filled with silence; a longer one, or
/// a step back, starts a new run of timestamps.
const MAX_SILENCE_FILL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("the camera's AAC cannot be decoded: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Rate(#[from] UnsupportedRatio),
    #[error("a damaged AAC frame ({bytes} bytes) was played as silence: {reason}")]
    DamagedFrame { bytes: usize, reason: String },
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
    /// The AAC timestamp (in samples) of the run's first sample, and its Opus timestamp.
    start: i64,
    start_opus: u64,
    /// The AAC timestamp the next frame should have.
    next: i64,
    /// Samples at the encoder's rate already sent in packets.
    encoded: u64,
}

pub struct AacToOpus {
    decoder: AacDecoder,
    audio_specific_config: Vec<u8>,
    /// The AAC's sample rate and channels.
    sample_rate: u32,
    channels: usize,
    resampler: Option<Resampler>,
    encoder: OpusEncoder,
    encoder_rate: u32,
    /// Mono samples at the encoder's rate not yet in a packet (less than one packet between
    /// calls).
    pending: Vec<f32>,
    run: Option<Run>,
    /// Scratch space, kept to spare allocations: decoded planes, their mono mix.
    planes: Vec<Vec<f32>>,
    mono: Vec<f32>,
    /// The latest AAC frame's timestamp and capture time.
    reference: (i64, SystemTime),
}

impl AacToOpus {
    /// For a track described by its AudioSpecificConfig (ISO 14496-3 §1.6.2.1), as the SDP's
    /// `config` parameter gives it.
    pub fn new(audio_specific_config: &[u8]) -> Result<Self, TranscodeError> {
        let decoder = new_decoder(audio_specific_config)?;
        let parameters = decoder.codec_params();
        let sample_rate = parameters.sample_rate.ok_or_else(|| TranscodeError::Unsupported("no sample rate".into()))?;
        let channels = parameters.channels.as_ref().map_or(0, |c| c.count());
        if channels == 0 {
            return Err(TranscodeError::Unsupported("no channels".into()));
        }
        let encoder_rate = encoder_rate_for(sample_rate);
        let resampler = (encoder_rate != sample_rate).then(|| Resampler::new(sample_rate, encoder_rate)).transpose()?;
        // CELT alone: the lowest delay (2.5 ms of look-ahead; SILK adds more) and the lowest
        // cost (measured at 16 kHz: 61 µs a packet, against 141-259 µs where SILK is chosen);
        // at 32 kbit/s it carries speech and a camera's surroundings well.
        let mut encoder = OpusEncoder::new(encoder_rate as i32, 1, Application::RestrictedLowDelay).map_err(TranscodeError::Encoder)?;
        encoder.bitrate_bps = OPUS_BITRATE_BPS;
        Ok(Self {
            decoder,
            audio_specific_config: audio_specific_config.to_vec(),
            sample_rate,
            channels,
            resampler,
            encoder,
            encoder_rate,
            pending: Vec::new(),
            run: None,
            planes: Vec::new(),
            mono: Vec::new(),
            reference: (0, SystemTime::UNIX_EPOCH),
        })
    }

    /// The AAC's sample rate, and the rate it is encoded at.
    pub fn rates(&self) -> (u32, u32) {
        (self.sample_rate, self.encoder_rate)
    }

    /// Takes one AAC access unit whose first sample has `timestamp` (in samples at the AAC's
    /// rate) and was captured at `captured_at`, and appends the packets it completes to `out`.
    /// A damaged frame still gives its packets (of silence) before the error.
    pub fn push(&mut self, access_unit: &[u8], timestamp: i64, captured_at: SystemTime, out: &mut Vec<OpusPacket>) -> Result<(), TranscodeError> {
        self.reference = (timestamp, captured_at);
        let max_fill = MAX_SILENCE_FILL.as_millis() as i64 * i64::from(self.sample_rate) / 1000;
        match self.run.as_ref().map(|run| timestamp - run.next) {
            Some(0) => {}
            Some(gap) if (1..=max_fill).contains(&gap) => {
                self.mono.clear();
                self.mono.resize(gap as usize, 0.0);
                self.take_samples(out)?;
            }
            _ => self.restart(timestamp),
        }
        let damage = self.decode(access_unit).err();
        self.take_samples(out)?;
        match damage {
            Some(reason) => Err(TranscodeError::DamagedFrame { bytes: access_unit.len(), reason }),
            None => Ok(()),
        }
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

    /// Decodes one frame into `mono`; a damaged one gives silence of a frame's length.
    fn decode(&mut self, access_unit: &[u8]) -> Result<(), String> {
        self.mono.clear();
        let packet = PacketRef::new(0, Timestamp::ZERO, Frames::from(FRAME_SAMPLES as u64), access_unit);
        // Symphonia is not hardened against every malformed frame; a panic in it must not end
        // the camera's session.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            let buffer = self.decoder.decode_ref(&packet).map_err(|error| error.to_string())?;
            buffer.copy_to_vecs_planar::<f32>(&mut self.planes);
            Ok(())
        }));
        let outcome = decoded.unwrap_or_else(|_| {
            // Its state is unknown: start afresh (infallible, as the same config made it once).
            if let Ok(decoder) = new_decoder(&self.audio_specific_config) {
                self.decoder = decoder;
            }
            Err("the AAC decoder panicked".to_owned())
        });
        if outcome.is_err() {
            self.mono.resize(FRAME_SAMPLES, 0.0);
            return outcome;
        }
        let planes = &self.planes[..self.planes.len().min(self.channels)];
        let length = planes.iter().map(Vec::len).min().unwrap_or(0);
        let scale = 1.0 / planes.len().max(1) as f32;
        self.mono.extend((0..length).map(|i| {
            let mixed = planes.iter().map(|plane| plane[i]).sum::<f32>() * scale;
            // A decoder gone wrong must not feed the encoder NaNs or overloads.
            if mixed.is_finite() { mixed.clamp(-1.0, 1.0) } else { 0.0 }
        }));
        Ok(())
    }

    /// Moves `mono` (at the AAC's rate) through the resampler into packets. A packet the
    /// encoder fails on is left out; its timestamps stay taken.
    fn take_samples(&mut self, out: &mut Vec<OpusPacket>) -> Result<(), TranscodeError> {
        let Some(run) = &mut self.run else { return Ok(()) };
        run.next += self.mono.len() as i64;
        match &mut self.resampler {
            Some(resampler) => resampler.process(&self.mono, &mut self.pending),
            None => self.pending.extend_from_slice(&self.mono),
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
                    // The packet's first sample, placed from the latest AAC frame's.
                    let offset = (run.start - reference) as f64 / f64::from(self.sample_rate) + run.encoded as f64 / f64::from(self.encoder_rate);
                    out.push(OpusPacket {
                        timestamp: run.start_opus + run.encoded * ticks_per_sample,
                        data: Bytes::copy_from_slice(&buffer[..length]),
                        captured_at: shift(reference_captured_at, offset),
                    });
                }
                Err(error) => failure = Some(TranscodeError::Encoder(error)),
            }
            run.encoded += packet_samples as u64;
            consumed += packet_samples;
        }
        self.pending.drain(..consumed);
        failure.map_or(Ok(()), Err)
    }
}

fn new_decoder(audio_specific_config: &[u8]) -> Result<AacDecoder, TranscodeError> {
    let mut parameters = AudioCodecParameters::new();
    parameters.for_codec(CODEC_ID_AAC).with_extra_data(audio_specific_config.into());
    let made = catch_unwind(AssertUnwindSafe(|| AacDecoder::try_new(&parameters, &AudioDecoderOptions::default())));
    match made {
        Ok(Ok(decoder)) => Ok(decoder),
        Ok(Err(error)) => Err(TranscodeError::Unsupported(error.to_string())),
        Err(_) => Err(TranscodeError::Unsupported("the AudioSpecificConfig made the decoder panic".into())),
    }
}

/// The Opus input rate for AAC at `sample_rate`: the same where Opus takes it, else the next
/// above (48 kHz above that), so that nothing the camera sent is cut off.
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
    use std::time::UNIX_EPOCH;

    /// One second of a 440 Hz tone at half scale, as ADTS: made with
    /// `gst-launch-1.0 audiotestsrc num-buffers=44 samplesperbuffer=1024 wave=sine freq=440
    /// volume=0.5 ! audio/x-raw,rate=44100,channels=2 ! avenc_aac bitrate=64000 ! aacparse !
    /// audio/mpeg,stream-format=adts ! filesink location=tone-44100.aac` (and 16 kHz mono,
    /// 16 buffers).
    const TONE_44100_STEREO: &[u8] = include_bytes!("testdata/tone-44100.aac");
    const TONE_16000_MONO: &[u8] = include_bytes!("testdata/tone-16000.aac");
    const TONE_HZ: f64 = 440.0;

    /// The AudioSpecificConfig and the raw access units of an ADTS stream (ISO 14496-3 §1.A.2).
    fn split_adts(mut adts: &[u8]) -> (Vec<u8>, Vec<&[u8]>) {
        let mut units = Vec::new();
        let mut config = Vec::new();
        while adts.len() >= 7 {
            assert_eq!((adts[0], adts[1] & 0xf6), (0xff, 0xf0), "ADTS sync");
            let header = if adts[1] & 1 == 1 { 7 } else { 9 };
            let length = (usize::from(adts[3] & 3) << 11) | (usize::from(adts[4]) << 3) | usize::from(adts[5] >> 5);
            let object_type = (adts[2] >> 6) + 1;
            let rate_index = (adts[2] >> 2) & 0xf;
            let channels = ((adts[2] & 1) << 2) | (adts[3] >> 6);
            config = vec![(object_type << 3) | (rate_index >> 1), ((rate_index & 1) << 7) | (channels << 3)];
            units.push(&adts[header..length]);
            adts = &adts[length..];
        }
        (config, units)
    }

    /// Feeds every unit, stamped as a camera would (frame i at 1024 i samples, captured at
    /// `start` plus that), and returns the packets.
    fn transcode(adts: &[u8], sample_rate: u32, start: SystemTime) -> Vec<OpusPacket> {
        let (config, units) = split_adts(adts);
        let mut transcoder = AacToOpus::new(&config).expect("supported");
        assert_eq!(transcoder.rates().0, sample_rate);
        let mut packets = Vec::new();
        for (i, unit) in units.iter().enumerate() {
            let timestamp = (i * FRAME_SAMPLES) as i64;
            let captured_at = start + Duration::from_secs_f64(timestamp as f64 / f64::from(sample_rate));
            transcoder.push(unit, timestamp, captured_at, &mut packets).expect("decodes");
        }
        packets
    }

    /// Decodes packets at 48 kHz and tells how much of the sound past the first 100 ms is at
    /// `hz` (Goertzel) against all of it.
    fn share_at(packets: &[OpusPacket], hz: f64) -> f64 {
        let mut decoder = opus_rs::OpusDecoder::new(48_000, 1).expect("decoder");
        let mut pcm = Vec::new();
        for packet in packets {
            let mut frame = [0f32; 960];
            let decoded = decoder.decode(&packet.data, 960, &mut frame).expect("decodes");
            pcm.extend_from_slice(&frame[..decoded]);
        }
        let samples = &pcm[4_800..];
        let coefficient = 2.0 * (2.0 * std::f64::consts::PI * hz / 48_000.0).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in samples {
            (s1, s2) = (f64::from(x) + coefficient * s1 - s2, s1);
        }
        let at_tone = (s1 * s1 + s2 * s2 - coefficient * s1 * s2) * 2.0 / samples.len() as f64;
        let total: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        at_tone / total
    }

    #[test]
    fn aac_frames_become_continuous_20ms_opus_packets_with_their_capture_times() {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for (adts, rate, encoder_rate) in [(TONE_44100_STEREO, 44_100, 48_000), (TONE_16000_MONO, 16_000, 16_000)] {
            let packets = transcode(adts, rate, start);
            let frames = split_adts(adts).1.len();
            // All the input but the resampler's look-ahead, in whole packets.
            let lag = if rate == encoder_rate { 0 } else { 32 * encoder_rate as usize / rate as usize };
            let expected = ((frames * FRAME_SAMPLES) * encoder_rate as usize / rate as usize - lag) / (encoder_rate as usize / 50);
            assert_eq!(packets.len(), expected, "{rate} Hz: {frames} AAC frames");
            for (i, packet) in packets.iter().enumerate() {
                assert_eq!(packet.timestamp, 960 * i as u64, "{rate} Hz: packet {i} follows the one before by 20 ms");
                let after = packet.captured_at.duration_since(start).expect("after the start");
                assert!(after.abs_diff(OPUS_PACKET * i as u32) < Duration::from_micros(1), "{rate} Hz: packet {i} captured {after:?} after the first sample");
                assert!(!packet.data.is_empty() && packet.data.len() < 200, "{rate} Hz: {} bytes at 32 kbit/s", packet.data.len());
            }
            let share = share_at(&packets, TONE_HZ);
            assert!(share > 0.9, "{rate} Hz: {:.0}% of the sound is the tone", share * 100.0);
        }
    }

    #[test]
    fn timestamps_start_from_the_cameras_and_run_on_over_short_gaps() {
        let (config, units) = split_adts(TONE_44100_STEREO);
        let mut transcoder = AacToOpus::new(&config).expect("supported");
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut packets = Vec::new();
        let first = 441_000; // 10 s into the camera's clock
        for (i, unit) in units.iter().enumerate() {
            if i == 10 || i == 11 {
                continue; // lost
            }
            let timestamp = first + (i * FRAME_SAMPLES) as i64;
            let captured_at = start + Duration::from_secs_f64((i * FRAME_SAMPLES) as f64 / 44_100.0);
            transcoder.push(unit, timestamp, captured_at, &mut packets).expect("decodes");
        }
        assert_eq!(packets[0].timestamp, 480_000, "10 s at 48 kHz");
        for (i, pair) in packets.windows(2).enumerate() {
            assert_eq!(pair[1].timestamp - pair[0].timestamp, 960, "packet {i}: the lost frames' time is filled");
            assert!(pair[1].captured_at.duration_since(pair[0].captured_at).expect("later").abs_diff(OPUS_PACKET) < Duration::from_micros(1));
        }
        // Two seconds lost: a new run at the camera's timestamp; a step back: right after.
        let mut more = Vec::new();
        let far = first + (units.len() * FRAME_SAMPLES) as i64 + 2 * 44_100;
        transcoder.push(units[5], far, start, &mut more).expect("decodes");
        transcoder.push(units[6], far + 1024, start, &mut more).expect("decodes");
        assert_eq!(more[0].timestamp, far as u64 * 48_000 / 44_100, "at the camera's timestamp");
        let (count, last) = (more.len(), more.last().expect("a packet").timestamp);
        transcoder.push(units[7], 0, start, &mut more).expect("decodes");
        transcoder.push(units[8], 1024, start, &mut more).expect("decodes");
        assert_eq!(more.get(count).map(|p| p.timestamp), Some(last + 960), "never backwards");
    }

    #[test]
    fn damaged_frames_are_silence_reported_without_stopping_the_stream() {
        let (config, units) = split_adts(TONE_16000_MONO);
        let mut transcoder = AacToOpus::new(&config).expect("supported");
        let mut packets = Vec::new();
        let mut errors = 0;
        let mut garbage: u64 = 0x9e37_79b9_7f4a_7c15;
        for (i, unit) in units.iter().enumerate() {
            let damaged: Vec<u8> = (0..unit.len())
                .map(|_| {
                    garbage = garbage.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    (garbage >> 56) as u8
                })
                .collect();
            let unit = if i % 3 == 1 { &damaged[..] } else { unit };
            match transcoder.push(unit, (i * FRAME_SAMPLES) as i64, UNIX_EPOCH, &mut packets) {
                Ok(()) => {}
                Err(TranscodeError::DamagedFrame { .. }) => errors += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(errors > 0, "garbage is noticed");
        assert_eq!(packets.len(), units.len() * FRAME_SAMPLES / 320, "every frame's time still gives packets");
        assert!(packets.windows(2).all(|pair| pair[1].timestamp == pair[0].timestamp + 960));
        assert!(AacToOpus::new(&[0xff, 0xff]).is_err(), "a config that makes no sense is refused");
        assert!(AacToOpus::new(&[]).is_err());
    }

    #[test]
    fn the_encoder_rate_is_the_camera_rate_or_the_next_above() {
        let rates: Vec<u32> = [8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 96_000].into_iter().map(encoder_rate_for).collect();
        assert_eq!(rates, [8_000, 12_000, 16_000, 24_000, 48_000, 48_000, 48_000, 48_000]);
    }

    /// The cost of one stream and the delay it adds, printed (not asserted): `cargo test
    /// --release -p lookout --lib aac_to_opus::tests::measure -- --ignored --nocapture`.
    /// Delay: a packet can be published once the AAC frame holding its last sample (and the
    /// resampler's look-ahead) has arrived; its samples from the frame before wait that much
    /// longer than they would if the AAC frames went out as they come. The transcoding time
    /// comes on top.
    #[test]
    #[ignore]
    fn measure_cost_and_latency() {
        const SECONDS: usize = 60;
        for (adts, rate) in [(TONE_44100_STEREO, 44_100u32), (TONE_16000_MONO, 16_000)] {
            let (config, units) = split_adts(adts);
            let mut transcoder = AacToOpus::new(&config).expect("supported");
            let frames = SECONDS * rate as usize / FRAME_SAMPLES;
            // Each packet's timestamp, and the frame whose arrival completed it.
            let (mut packets, mut completed_by) = (Vec::new(), Vec::new());
            let started = std::time::Instant::now();
            for i in 0..frames {
                transcoder.push(units[i % units.len()], (i * FRAME_SAMPLES) as i64, UNIX_EPOCH, &mut packets).expect("decodes");
                completed_by.resize(packets.len(), i as u64);
            }
            let elapsed = started.elapsed();
            let frame_ms = FRAME_SAMPLES as f64 * 1e3 / f64::from(rate);
            let frame_of = |tick: u64| tick * u64::from(rate) / 48_000 / FRAME_SAMPLES as u64;
            let mut first_sample_waits: Vec<f64> = Vec::new();
            let (mut added_sum, mut added_max) = (0u64, 0u64);
            for (packet, &frame) in packets.iter().zip(&completed_by) {
                first_sample_waits.push((frame + 1) as f64 * frame_ms - packet.timestamp as f64 / 48.0);
                for tick in packet.timestamp..packet.timestamp + 960 {
                    let waited = frame - frame_of(tick);
                    added_sum += waited;
                    added_max = added_max.max(waited);
                }
            }
            first_sample_waits.sort_by(f64::total_cmp);
            eprintln!(
                "AAC {rate} Hz {} ch -> Opus at {} Hz: {:.1} µs per 20 ms packet ({:.2}% of a core); first sample to publishable p50 {:.1} ms, max {:.1} ms; \
                 added over the AAC frames: mean {:.1} ms, max {:.1} ms",
                transcoder.channels,
                transcoder.rates().1,
                elapsed.as_secs_f64() * 1e6 / packets.len() as f64,
                elapsed.as_secs_f64() * 100.0 / SECONDS as f64,
                first_sample_waits[first_sample_waits.len() / 2],
                first_sample_waits[first_sample_waits.len() - 1],
                added_sum as f64 * frame_ms / (packets.len() * 960) as f64,
                added_max as f64 * frame_ms,
            );
        }
    }
}
