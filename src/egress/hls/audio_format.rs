//! What an HLS muxer's initialization segment says of its audio track, whatever the codec: the
//! sample entry, the timescale, the codec's delay and the name CODECS gives it.

use super::opus_sample_entry::{self, OpusFormat};
use super::mp4a;
use crate::media::opus::OPUS_CLOCK_RATE;
use crate::media::AacConfig;
use bytes::BytesMut;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioFormat {
    /// A camera's AAC as it came.
    Aac(Arc<AacConfig>),
    Opus(OpusFormat),
}

impl AudioFormat {
    /// Ticks per second of the track: AAC's sample rate, Opus's 48 kHz.
    pub fn timescale(&self) -> u32 {
        match self {
            AudioFormat::Aac(config) => config.sample_rate,
            AudioFormat::Opus(_) => OPUS_CLOCK_RATE,
        }
    }

    /// How far decoded sound lags what the encoder took in, in ticks: Opus's pre-skip. AAC's
    /// priming is not signalled (no edit list), so its samples go where they were captured.
    pub fn delay(&self) -> u32 {
        match self {
            AudioFormat::Aac(_) => 0,
            AudioFormat::Opus(format) => u32::from(format.pre_skip),
        }
    }

    /// The RFC 6381 name in CODECS: `mp4a.40.2` for AAC-LC, `opus`.
    pub fn codec_string(&self) -> String {
        match self {
            AudioFormat::Aac(config) => config.codec_string(),
            AudioFormat::Opus(_) => "opus".to_owned(),
        }
    }

    pub(super) fn sample_entry(&self, out: &mut BytesMut) {
        match self {
            AudioFormat::Aac(config) => mp4a::sample_entry(out, config),
            AudioFormat::Opus(format) => opus_sample_entry::sample_entry(out, format),
        }
    }
}
