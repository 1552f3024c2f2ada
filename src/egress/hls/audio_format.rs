//! What an HLS muxer's initialization segment says of its audio track, whatever the codec: the
//! sample entry, the timescale, the codec's delay and the name CODECS gives it.

use crate::media::opus::OPUS_CLOCK_RATE;
use crate::media::AacConfig;
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{Audio, Codec, Dops, Esds, FixedPoint, Mp4a, Opus};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioFormat {
    /// A camera's AAC as it came.
    Aac(Arc<AacConfig>),
    Opus(OpusFormat),
}

/// What an Opus track's decoder is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusFormat {
    /// 1 or 2: channel mapping family 0, which needs no mapping table.
    pub channels: u8,
    /// Samples at 48 kHz the decoder drops at the start: the encoder's delay.
    pub pre_skip: u16,
}

/// MPEG-4 audio in the decoder configuration descriptor (ISO/IEC 14496-1 §7.2.6.6.2).
const MPEG4_AUDIO: u8 = 0x40;
const AUDIO_STREAM: u8 = 0x05;

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

    /// The track's sample entry: `mp4a` whose `esds` carries the AudioSpecificConfig as it
    /// came (ISO/IEC 14496-14), or `Opus` with its `dOps` (ISO/IEC 23003-5).
    pub(super) fn sample_entry(&self) -> Codec {
        match self {
            AudioFormat::Aac(config) => {
                let dec_specific = DecoderSpecific { raw: config.audio_specific_config.to_vec(), ..DecoderSpecific::default() };
                let dec_config = DecoderConfig { object_type_indication: MPEG4_AUDIO, stream_type: AUDIO_STREAM, dec_specific: Some(dec_specific), ..DecoderConfig::default() };
                let esds = Esds { es_desc: EsDescriptor { dec_config, ..EsDescriptor::default() } };
                Codec::Mp4a(Mp4a { audio: audio_fields(u16::from(config.channels.max(1)), config.sample_rate), esds, btrt: None, taic: None })
            }
            AudioFormat::Opus(format) => {
                let channels = format.channels.clamp(1, 2);
                let dops = Dops { output_channel_count: channels, pre_skip: format.pre_skip, input_sample_rate: OPUS_CLOCK_RATE, output_gain: 0, channel_mapping: None };
                Codec::Opus(Opus { audio: audio_fields(u16::from(channels), OPUS_CLOCK_RATE), dops, btrt: None })
            }
        }
    }
}

/// The fields every audio sample entry begins with (ISO/IEC 14496-12 §12.2.3).
fn audio_fields(channels: u16, sample_rate: u32) -> Audio {
    // 16.16 fixed point: rates above 65535 Hz do not fit; the codec's own box says the rate.
    let sample_rate = FixedPoint::new(u16::try_from(sample_rate).unwrap_or(0), 0);
    Audio { data_reference_index: 1, channel_count: channels, sample_size: 16, sample_rate }
}
