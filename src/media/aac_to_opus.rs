//! AAC from cameras to Opus for browsers (WebRTC has no AAC): each access unit is decoded
//! (symphonia, AAC-LC) and mixed down to mono; `PcmToOpus` resamples it where Opus does not
//! take the camera's rate and cuts it into 20 ms Opus packets (opus-rs).
//!
//! Packets carry RTP timestamps on Opus's 48 kHz clock, continuous while the camera's are;
//! each one's capture time is the latest AAC frame's plus the offset of the packet's first
//! sample from it. A damaged frame is replaced with silence of its length and a gap of a few
//! frames is filled with silence, so the timestamps run on; a longer gap starts a new run.

use super::pcm_to_opus::{EncodeError, OpusPacket, PcmToOpus};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;
use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::packet::PacketRef;
use symphonia::core::units::{Duration as Frames, Timestamp};
use symphonia::default::codecs::AacDecoder;

/// Samples per AAC frame: symphonia takes only AAC-LC's 1024.
const FRAME_SAMPLES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("the camera's AAC cannot be decoded: {0}")]
    Unsupported(DecodeError),
    #[error("a damaged AAC frame ({bytes} bytes) was played as silence: {reason}")]
    DamagedFrame { bytes: usize, reason: DecodeError },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// What the AAC decoder made of a configuration or a frame.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Refused(symphonia::core::errors::Error),
    #[error("the decoder panicked")]
    Panicked,
    #[error("the configuration gives no sample rate")]
    NoSampleRate,
    #[error("the configuration gives no channels")]
    NoChannels,
}

pub struct AacToOpus {
    decoder: AacDecoder,
    audio_specific_config: Vec<u8>,
    channels: usize,
    encoder: PcmToOpus,
    /// Scratch space, kept to spare allocations: decoded planes, their mono mix.
    planes: Vec<Vec<f32>>,
    mono: Vec<f32>,
}

impl AacToOpus {
    /// For a track described by its AudioSpecificConfig (ISO 14496-3 §1.6.2.1), as the SDP's
    /// `config` parameter gives it.
    pub fn new(audio_specific_config: &[u8]) -> Result<Self, TranscodeError> {
        let decoder = new_decoder(audio_specific_config)?;
        let parameters = decoder.codec_params();
        let sample_rate = parameters.sample_rate.ok_or(TranscodeError::Unsupported(DecodeError::NoSampleRate))?;
        let channels = parameters.channels.as_ref().map_or(0, |c| c.count());
        if channels == 0 {
            return Err(TranscodeError::Unsupported(DecodeError::NoChannels));
        }
        let encoder = PcmToOpus::new(sample_rate)?;
        Ok(Self { decoder, audio_specific_config: audio_specific_config.to_vec(), channels, encoder, planes: Vec::new(), mono: Vec::new() })
    }

    /// The AAC's sample rate, and the rate it is encoded at.
    pub fn rates(&self) -> (u32, u32) {
        self.encoder.rates()
    }

    /// Takes one AAC access unit whose first sample has `timestamp` (in samples at the AAC's
    /// rate) and was captured at `captured_at`, and appends the packets it completes to `out`.
    /// A damaged frame still gives its packets (of silence) before the error.
    pub fn push(&mut self, access_unit: &[u8], timestamp: i64, captured_at: SystemTime, out: &mut Vec<OpusPacket>) -> Result<(), TranscodeError> {
        let damage = self.decode(access_unit).err();
        self.encoder.push(&self.mono, timestamp, captured_at, out)?;
        match damage {
            Some(reason) => Err(TranscodeError::DamagedFrame { bytes: access_unit.len(), reason }),
            None => Ok(()),
        }
    }

    /// Decodes one frame into `mono`; a damaged one gives silence of a frame's length.
    fn decode(&mut self, access_unit: &[u8]) -> Result<(), DecodeError> {
        self.mono.clear();
        let packet = PacketRef::new(0, Timestamp::ZERO, Frames::from(FRAME_SAMPLES as u64), access_unit);
        // Symphonia is not hardened against every malformed frame; a panic in it must not end
        // the camera's session.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            let buffer = self.decoder.decode_ref(&packet).map_err(DecodeError::Refused)?;
            buffer.copy_to_vecs_planar::<f32>(&mut self.planes);
            Ok(())
        }));
        let outcome = decoded.unwrap_or_else(|_| {
            // Its state is unknown: start afresh (infallible, as the same config made it once).
            if let Ok(decoder) = new_decoder(&self.audio_specific_config) {
                self.decoder = decoder;
            }
            Err(DecodeError::Panicked)
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
}

fn new_decoder(audio_specific_config: &[u8]) -> Result<AacDecoder, TranscodeError> {
    let mut parameters = AudioCodecParameters::new();
    parameters.for_codec(CODEC_ID_AAC).with_extra_data(audio_specific_config.into());
    let made = catch_unwind(AssertUnwindSafe(|| AacDecoder::try_new(&parameters, &AudioDecoderOptions::default())));
    match made {
        Ok(Ok(decoder)) => Ok(decoder),
        Ok(Err(error)) => Err(TranscodeError::Unsupported(DecodeError::Refused(error))),
        Err(_) => Err(TranscodeError::Unsupported(DecodeError::Panicked)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus::OPUS_PACKET;
    use lookout_testkit::audio::{decode_opus, tone_share};
    use std::time::{Duration, UNIX_EPOCH};

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
            // Past the first 100 ms.
            let sound = decode_opus(packets.iter().map(|p| &p.data[..])).expect("decodes");
            let share = tone_share(&sound[4_800..], 48_000, TONE_HZ);
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
