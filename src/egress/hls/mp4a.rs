//! The AAC sample entry of an MP4 audio track: `mp4a` (ISO/IEC 14496-12 §12.2.3) with its `esds`
//! (ISO/IEC 14496-14 §5.6), whose MPEG-4 descriptors (ISO/IEC 14496-1 §7.2.6) carry the
//! AudioSpecificConfig.

use super::boxes::{audio_sample_entry, full_box};
use crate::media::AacConfig;
use bytes::{BufMut, BytesMut};

const ES_DESCRIPTOR: u8 = 0x03;
const DECODER_CONFIG_DESCRIPTOR: u8 = 0x04;
const DECODER_SPECIFIC_INFO: u8 = 0x05;
const SL_CONFIG_DESCRIPTOR: u8 = 0x06;
/// objectTypeIndication of MPEG-4 audio (ISO/IEC 14496-3).
const MPEG4_AUDIO: u8 = 0x40;
/// streamType 5 (audio) in the upper six bits, then upStream 0 and the reserved bit 1.
const AUDIO_STREAM: u8 = (0x05 << 2) | 1;

/// A descriptor: tag, then its body's size in the four-byte expandable form (7 bits a byte,
/// the top bit saying more follow), then the body.
fn descriptor(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let size_at = out.len();
    out.put_bytes(0, 4);
    body(out);
    let size = (out.len() - size_at - 4) as u32;
    for (i, shift) in [21, 14, 7, 0].into_iter().enumerate() {
        let more = if shift > 0 { 0x80 } else { 0 };
        out[size_at + i] = more | ((size >> shift) & 0x7f) as u8;
    }
}

/// The `mp4a` sample entry for `config`.
pub(super) fn sample_entry(out: &mut BytesMut, config: &AacConfig) {
    audio_sample_entry(out, b"mp4a", u16::from(config.channels.max(1)), config.sample_rate, |out| {
        full_box(out, b"esds", 0, 0, |out| {
            descriptor(out, ES_DESCRIPTOR, |out| {
                out.put_u16(0); // ES_ID
                out.put_u8(0); // no dependence, URL or OCR stream
                descriptor(out, DECODER_CONFIG_DESCRIPTOR, |out| {
                    out.put_u8(MPEG4_AUDIO);
                    out.put_u8(AUDIO_STREAM);
                    out.put_uint(0, 3); // bufferSizeDB: unknown
                    out.put_u32(0); // maxBitrate: unknown
                    out.put_u32(0); // avgBitrate: variable
                    descriptor(out, DECODER_SPECIFIC_INFO, |out| out.put_slice(&config.audio_specific_config));
                });
                descriptor(out, SL_CONFIG_DESCRIPTOR, |out| out.put_u8(0x02)); // predefined: MP4
            });
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esds_carries_the_audio_specific_config_in_nested_descriptors() {
        let config = AacConfig::parse(&[0x14, 0x08]).expect("config");
        let mut out = BytesMut::new();
        sample_entry(&mut out, &config);
        assert_eq!(u32::from_be_bytes(out[0..4].try_into().unwrap()) as usize, out.len(), "mp4a's size");
        assert_eq!(&out[4..8], b"mp4a");
        assert_eq!(u16::from_be_bytes([out[24], out[25]]), 1, "channels");
        assert_eq!(u32::from_be_bytes(out[32..36].try_into().unwrap()), 16_000 << 16, "sample rate");
        let esds = &out[36..];
        assert_eq!(u32::from_be_bytes(esds[0..4].try_into().unwrap()) as usize, esds.len(), "esds ends the entry");
        assert_eq!(&esds[4..12], b"esds\0\0\0\0");
        let es = &esds[12..];
        let size = |d: &[u8]| d[1..5].iter().fold(0usize, |n, b| (n << 7) | usize::from(b & 0x7f));
        assert_eq!((es[0], 5 + size(es)), (ES_DESCRIPTOR, es.len()), "the ES descriptor fills the esds");
        let decoder_config = &es[8..];
        assert_eq!((decoder_config[0], decoder_config[5], decoder_config[6]), (DECODER_CONFIG_DESCRIPTOR, MPEG4_AUDIO, 0x15));
        let specific = &decoder_config[5 + 13..];
        assert_eq!((specific[0], size(specific)), (DECODER_SPECIFIC_INFO, 2));
        assert_eq!(&specific[5..7], &[0x14, 0x08], "the AudioSpecificConfig as it came");
        assert_eq!(&specific[7..], &[SL_CONFIG_DESCRIPTOR, 0x80, 0x80, 0x80, 1, 2]);
    }
}
