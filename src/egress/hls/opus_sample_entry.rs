//! The Opus sample entry of an MP4 audio track: `Opus` with its `dOps` box ("Encapsulation of
//! Opus in ISO Base Media File Format", ISO/IEC 23003-5 §4.3). Unlike Ogg's OpusHead, whose
//! fields it carries, `dOps` is big-endian.

use super::boxes::{audio_sample_entry, mp4_box};
use crate::media::opus::OPUS_CLOCK_RATE;
use bytes::{BufMut, BytesMut};

/// What an Opus track's decoder is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusFormat {
    /// 1 or 2: channel mapping family 0, which needs no mapping table.
    pub channels: u8,
    /// Samples at 48 kHz a decoder starting at the track's first packet drops: the encoder's
    /// delay.
    pub pre_skip: u16,
}

/// The `Opus` sample entry for `format`.
pub(super) fn sample_entry(out: &mut BytesMut, format: &OpusFormat) {
    let channels = format.channels.clamp(1, 2);
    // The entry's rate is always 48 kHz, whatever the input's (§4.3.1).
    audio_sample_entry(out, b"Opus", u16::from(channels), OPUS_CLOCK_RATE, |out| {
        mp4_box(out, b"dOps", |out| {
            out.put_u8(0); // version
            out.put_u8(channels);
            out.put_u16(format.pre_skip);
            // InputSampleRate is for information only, but Chromium refuses a track whose
            // dOps gives another rate than its sample entry ("Opus AudioSampleEntry sample
            // rate mismatches OpusSpecificBox"): 48 kHz whatever the source's.
            out.put_u32(OPUS_CLOCK_RATE);
            out.put_i16(0); // output gain
            out.put_u8(0); // channel mapping family 0: mono or stereo
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_says_48_khz_and_dops_carries_the_decoder_setup() {
        let mut out = BytesMut::new();
        sample_entry(&mut out, &OpusFormat { channels: 1, pre_skip: 120 });
        assert_eq!(u32::from_be_bytes(out[0..4].try_into().unwrap()) as usize, out.len(), "Opus's size");
        assert_eq!(&out[4..8], b"Opus");
        assert_eq!(u16::from_be_bytes([out[14], out[15]]), 1, "data reference index");
        assert_eq!(u16::from_be_bytes([out[24], out[25]]), 1, "channels");
        assert_eq!(u16::from_be_bytes([out[26], out[27]]), 16, "sample size");
        assert_eq!(u32::from_be_bytes(out[32..36].try_into().unwrap()), 48_000 << 16, "sample rate");
        let dops = &out[36..];
        assert_eq!(u32::from_be_bytes(dops[0..4].try_into().unwrap()), 19, "dOps is 8 + 11 bytes and ends the entry");
        assert_eq!(&dops[4..8], b"dOps");
        assert_eq!(&dops[8..], &[0, 1, 0, 120, 0, 0, 0xbb, 0x80, 0, 0, 0], "version, channels, pre-skip, input rate, gain, family");
    }

    #[test]
    fn channels_stay_within_mapping_family_0() {
        let mut out = BytesMut::new();
        sample_entry(&mut out, &OpusFormat { channels: 6, pre_skip: 312 });
        assert_eq!(u16::from_be_bytes([out[24], out[25]]), 2);
        assert_eq!(out[36 + 9], 2, "OutputChannelCount");
    }
}
