//! G.711 to Opus, for egress that cannot carry G.711 (HLS): each payload is decoded to linear
//! samples and handed to the encoder the AAC transcoder uses (`PcmToOpus`), which makes 20 ms
//! packets on Opus's 48 kHz clock with their capture times, filling short gaps with silence.

use super::g711;
use super::pcm_to_opus::{EncodeError, OpusPacket, PcmToOpus};
use super::AudioCodec;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum G711Error {
    #[error("{0:?} is not G.711")]
    NotG711(AudioCodec),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

pub struct G711ToOpus {
    codec: AudioCodec,
    encoder: PcmToOpus,
    /// Scratch space for the decoded samples.
    samples: Vec<f32>,
}

impl G711ToOpus {
    pub fn new(codec: AudioCodec) -> Result<Self, G711Error> {
        if !matches!(codec, AudioCodec::Pcmu | AudioCodec::Pcma) {
            return Err(G711Error::NotG711(codec));
        }
        Ok(Self { codec, encoder: PcmToOpus::new(codec.clock_rate())?, samples: Vec::new() })
    }

    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    /// Takes one payload whose first sample has `timestamp` (on G.711's 8 kHz clock) and was
    /// captured at `captured_at`, and appends the packets it completes to `out`.
    pub fn push(&mut self, payload: &[u8], timestamp: u64, captured_at: SystemTime, out: &mut Vec<OpusPacket>) -> Result<(), G711Error> {
        self.samples.clear();
        g711::decode(self.codec, payload, &mut self.samples).ok_or(G711Error::NotG711(self.codec))?;
        let timestamp = i64::try_from(timestamp).unwrap_or(i64::MAX);
        Ok(self.encoder.push(&self.samples, timestamp, captured_at, out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::linear_to_ulaw;
    use crate::media::opus::OPUS_PACKET;
    use lookout_testkit::audio::{decode_opus, rms, tone_share};
    use std::f64::consts::PI;
    use std::time::{Duration, UNIX_EPOCH};

    /// `seconds` of µ-law at 8 kHz in 20 ms payloads: a 1 kHz beep in the first 100 ms of
    /// each second, silence after it, as the synthetic camera sends.
    fn beeping(seconds: usize) -> Vec<Vec<u8>> {
        let samples: Vec<u8> = (0..seconds * 8_000)
            .map(|n| {
                let beep = n % 8_000 < 800;
                let value = if beep { 8_000.0 * (2.0 * PI * 1_000.0 * n as f64 / 8_000.0).sin() } else { 0.0 };
                linear_to_ulaw(value as i16)
            })
            .collect();
        samples.chunks(160).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn a_beeping_tone_becomes_continuous_opus_that_beeps_where_it_did() {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut transcoder = G711ToOpus::new(AudioCodec::Pcmu).expect("µ-law");
        let mut packets = Vec::new();
        for (i, payload) in beeping(2).iter().enumerate() {
            let captured_at = start + OPUS_PACKET * i as u32;
            transcoder.push(payload, 80_000 + 160 * i as u64, captured_at, &mut packets).expect("encodes");
        }
        assert_eq!(packets.len(), 100, "8 kHz goes to the encoder as it is: no look-ahead held back");
        for (i, packet) in packets.iter().enumerate() {
            assert_eq!(packet.timestamp, 480_000 + 960 * i as u64, "10 s into the 8 kHz clock, then 20 ms apart");
            assert_eq!(packet.captured_at, start + OPUS_PACKET * i as u32);
        }
        let sound = decode_opus(packets.iter().map(|p| &p.data[..])).expect("decodes");
        let (beep, rest) = sound[48_000..].split_at(4_800);
        assert!(tone_share(&beep[480..], 48_000, 1_000.0) > 0.9, "the beep is a 1 kHz tone");
        assert!(rms(beep) > 0.1 && rms(&rest[480..]) < 0.01, "beep {} then silence {}", rms(beep), rms(&rest[480..]));
    }

    #[test]
    fn only_g711_is_taken() {
        assert!(matches!(G711ToOpus::new(AudioCodec::Opus), Err(G711Error::NotG711(AudioCodec::Opus))));
        assert!(G711ToOpus::new(AudioCodec::Pcma).is_ok());
    }
}
