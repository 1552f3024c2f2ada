//! Opus from whatever audio a source gives that is not Opus already (G.711 payloads, AAC access
//! units): the transcoder that fits each frame, made again when the source's codec or AAC
//! configuration changes (a camera that came back with other audio). Sans I/O: frames in,
//! Opus `AudioFrame`s out.

use super::aac_to_opus::{AacToOpus, TranscodeError};
use super::g711_to_opus::{G711Error, G711ToOpus};
use super::pcm_to_opus::OpusPacket;
use super::{AacConfig, AacFrame, AudioCodec, AudioFrame};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum ToOpusError {
    #[error(transparent)]
    Aac(#[from] TranscodeError),
    #[error(transparent)]
    G711(#[from] G711Error),
}

/// The transcoder of the frames coming now: one of the two, the other `None`.
#[derive(Default)]
pub struct ToOpus {
    /// Boxed, as the other: the Opus encoder's state is large.
    g711: Option<Box<G711ToOpus>>,
    aac: Option<(Arc<AacConfig>, Box<AacToOpus>)>,
    packets: Vec<OpusPacket>,
}

impl ToOpus {
    /// Takes one G.711 payload (an Opus one is not this function's: it is refused) and
    /// appends the Opus frames it completes to `out`.
    pub fn push_g711(&mut self, frame: &AudioFrame, out: &mut Vec<AudioFrame>) -> Result<(), ToOpusError> {
        self.aac = None;
        let transcoder = match &mut self.g711 {
            Some(transcoder) if transcoder.codec() == frame.codec => transcoder,
            slot => slot.insert(Box::new(G711ToOpus::new(frame.codec)?)),
        };
        let outcome = transcoder.push(&frame.data, frame.timestamp, frame.captured_at, &mut self.packets);
        self.hand_out(frame.arrived_at, out);
        Ok(outcome?)
    }

    /// Takes one AAC access unit and appends the Opus frames it completes to `out`; a damaged
    /// one still gives its frames (of silence) before the error.
    pub fn push_aac(&mut self, frame: &AacFrame, out: &mut Vec<AudioFrame>) -> Result<(), ToOpusError> {
        self.g711 = None;
        let (_, transcoder) = match &mut self.aac {
            Some(current) if current.0 == frame.config => current,
            slot => slot.insert((frame.config.clone(), Box::new(AacToOpus::new(&frame.config.audio_specific_config)?))),
        };
        let timestamp = i64::try_from(frame.timestamp).unwrap_or(i64::MAX);
        let outcome = transcoder.push(&frame.data, timestamp, frame.captured_at, &mut self.packets);
        self.hand_out(frame.arrived_at, out);
        Ok(outcome?)
    }

    /// The packets made, as frames that arrived when their source frame did.
    fn hand_out(&mut self, arrived_at: Instant, out: &mut Vec<AudioFrame>) {
        out.extend(self.packets.drain(..).map(|packet| AudioFrame {
            timestamp: packet.timestamp,
            codec: AudioCodec::Opus,
            data: packet.data,
            captured_at: packet.captured_at,
            arrived_at,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::linear_to_ulaw;
    use bytes::Bytes;
    use std::time::{Duration, SystemTime};

    fn g711(codec: AudioCodec, timestamp: u64, captured_at: SystemTime) -> AudioFrame {
        AudioFrame { timestamp, codec, data: Bytes::from(vec![linear_to_ulaw(1_000); 160]), captured_at, arrived_at: Instant::now() }
    }

    #[test]
    fn g711_becomes_20ms_opus_frames_on_the_48khz_clock() {
        let mut to_opus = ToOpus::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut out = Vec::new();
        for i in 0..50u32 {
            to_opus.push_g711(&g711(AudioCodec::Pcmu, u64::from(i) * 160, start + Duration::from_millis(20) * i), &mut out).expect("µ-law");
        }
        assert!((48..=50).contains(&out.len()), "{} frames from 1 s", out.len());
        assert!(out.iter().all(|frame| frame.codec == AudioCodec::Opus));
        assert!(out.windows(2).all(|pair| pair[1].timestamp - pair[0].timestamp == 960));
    }

    #[test]
    fn another_codec_gets_a_transcoder_of_its_own_and_opus_is_refused() {
        let mut to_opus = ToOpus::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut out = Vec::new();
        to_opus.push_g711(&g711(AudioCodec::Pcmu, 0, start), &mut out).expect("µ-law");
        to_opus.push_g711(&g711(AudioCodec::Pcma, 160, start), &mut out).expect("A-law after µ-law");
        assert_eq!(to_opus.g711.as_ref().map(|t| t.codec()), Some(AudioCodec::Pcma));
        let error = to_opus.push_g711(&g711(AudioCodec::Opus, 320, start), &mut out).expect_err("Opus is not G.711");
        assert!(matches!(error, ToOpusError::G711(G711Error::NotG711(AudioCodec::Opus))), "{error}");
    }

    #[test]
    fn an_aac_config_that_cannot_be_decoded_is_an_error_not_a_panic() {
        let mut to_opus = ToOpus::default();
        let config = Arc::new(AacConfig::parse(&[0x2c, 0x08]).expect("AAC-LTP 16 kHz parses"));
        let frame = AacFrame { timestamp: 0, data: Bytes::from_static(&[0]), config, captured_at: SystemTime::now(), arrived_at: Instant::now() };
        let error = to_opus.push_aac(&frame, &mut Vec::new()).expect_err("symphonia decodes AAC-LC only");
        assert!(matches!(error, ToOpusError::Aac(TranscodeError::Unsupported(_))), "{error}");
    }
}
