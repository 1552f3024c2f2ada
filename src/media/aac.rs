//! A camera's AAC as it came, for egress that can carry it (HLS): the AudioSpecificConfig and
//! what it says, and one access unit per `AacFrame`.

use anyhow::{bail, Context};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The sampling frequencies an AudioSpecificConfig indexes (ISO/IEC 14496-3 §1.6.3.4).
const SAMPLE_RATES: [u32; 13] = [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350];

/// An AAC track's decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), as the camera's SDP gave it.
    pub audio_specific_config: Bytes,
    /// Audio object type: 2 is AAC-LC.
    pub object_type: u8,
    pub sample_rate: u32,
    /// 0 means the channels are described elsewhere (a program config element).
    pub channels: u8,
    /// Samples per access unit: 1024, or 960 where the config says so.
    pub frame_length: u32,
}

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, count: usize) -> anyhow::Result<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = self.data.get(self.at / 8).context("the AudioSpecificConfig is cut short")?;
            value = (value << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Ok(value)
    }
}

impl AacConfig {
    /// Reads the AudioSpecificConfig's object type, sample rate, channels and frame length.
    pub fn parse(audio_specific_config: &[u8]) -> anyhow::Result<Self> {
        let mut bits = Bits { data: audio_specific_config, at: 0 };
        let mut object_type = bits.read(5)?;
        if object_type == 31 {
            object_type = 32 + bits.read(6)?;
        }
        let index = bits.read(4)? as usize;
        let sample_rate = match index {
            15 => bits.read(24)?,
            index => *SAMPLE_RATES.get(index).with_context(|| format!("reserved sampling frequency index {index}"))?,
        };
        if sample_rate == 0 {
            bail!("a sample rate of 0");
        }
        let channels = bits.read(4)? as u8;
        // GASpecificConfig's frameLengthFlag, for the object types that have one (AAC-LC among them).
        let frame_length = match object_type {
            1..=4 | 6 | 7 | 17 | 19..=23 if bits.read(1)? == 1 => 960,
            _ => 1024,
        };
        Ok(Self { audio_specific_config: Bytes::copy_from_slice(audio_specific_config), object_type: object_type as u8, sample_rate, channels, frame_length })
    }

    /// RFC 6381 codec string: `mp4a.40.2` for AAC-LC.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// One AAC access unit (raw, no ADTS header).
#[derive(Debug)]
pub struct AacFrame {
    /// In samples at the config's sample rate, continuous across source sessions.
    pub timestamp: u64,
    pub data: Bytes,
    pub config: Arc<AacConfig>,
    /// When its first sample was captured, on the same clock as the video's `captured_at`.
    pub captured_at: SystemTime,
    /// When it reached Lookout.
    pub arrived_at: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aac_lc_configs() {
        // AAC-LC, 16 kHz (index 8), mono: what the test camera's avenc_aac sends.
        let config = AacConfig::parse(&[0x14, 0x08]).expect("valid");
        assert_eq!((config.object_type, config.sample_rate, config.channels, config.frame_length), (2, 16_000, 1, 1024));
        assert_eq!(config.codec_string(), "mp4a.40.2");
        // 44.1 kHz stereo with 960-sample frames.
        let config = AacConfig::parse(&[0x12, 0x14]).expect("valid");
        assert_eq!((config.sample_rate, config.channels, config.frame_length), (44_100, 2, 960));
    }

    #[test]
    fn rejects_short_and_reserved_configs() {
        assert!(AacConfig::parse(&[0x14]).is_err(), "cut short");
        assert!(AacConfig::parse(&[0x16, 0x88]).is_err(), "index 13 is reserved");
        assert!(AacConfig::parse(&[]).is_err());
    }
}
