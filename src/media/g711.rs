//! G.711 (ITU-T G.711): µ-law encoding for the synthetic camera, and µ-law and A-law decoding
//! for egress that cannot carry G.711 (HLS, which gets Opus made from it).

use super::AudioCodec;

/// µ-law's bias, added to the magnitude before the segment is found.
const ULAW_BIAS: i32 = 0x84;

/// One 16-bit linear sample as G.711 µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const CLIP: i32 = 32_635;
    let sign = if sample < 0 { 0x80 } else { 0 };
    let magnitude = (i32::from(sample).abs().min(CLIP)) + ULAW_BIAS;
    let exponent = (7 - (magnitude as u32).leading_zeros().saturating_sub(17)).min(7) as i32;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// One µ-law byte as a 16-bit linear sample (the middle of its step).
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let exponent = (code >> 4) & 0x07;
    let magnitude = (((i32::from(code & 0x0f) << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if code & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// One A-law byte as a 16-bit linear sample (the middle of its step).
pub fn alaw_to_linear(code: u8) -> i16 {
    // Even bits are inverted on the line.
    let code = code ^ 0x55;
    let segment = (code >> 4) & 0x07;
    let step = i32::from(code & 0x0f) << 4;
    let magnitude = match segment {
        0 => step + 8,
        segment => (step + 0x108) << (segment - 1),
    };
    (if code & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// Decodes a G.711 payload of `codec` into samples of full scale ±1.0, appended to `out`;
/// `None` for a codec that is not G.711.
pub fn decode(codec: AudioCodec, payload: &[u8], out: &mut Vec<f32>) -> Option<()> {
    let expand = match codec {
        AudioCodec::Pcmu => ulaw_to_linear,
        AudioCodec::Pcma => alaw_to_linear,
        AudioCodec::Opus => return None,
    };
    out.extend(payload.iter().map(|&code| f32::from(expand(code)) / 32_768.0));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_encoding_matches_known_values() {
        // Reference points of the G.711 µ-law table (the same from Python's audioop).
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(32_767), 0x80);
        assert_eq!(linear_to_ulaw(-32_768), 0x00);
        assert_eq!(linear_to_ulaw(1_000), 0xce);
        assert_eq!(linear_to_ulaw(-1_000), 0x4e);
    }

    #[test]
    fn ulaw_decodes_to_the_value_that_encodes_back_to_it() {
        assert_eq!((ulaw_to_linear(0xff), ulaw_to_linear(0x80), ulaw_to_linear(0x00)), (0, 32_124, -32_124));
        assert_eq!(ulaw_to_linear(0xce), 988, "the step 1000 falls in");
        for code in (0..=255u8).filter(|&c| c != 0x7f) {
            // 0x7f is "negative zero", which encodes back as 0xff.
            assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_decodes_to_the_table_and_in_order() {
        assert_eq!((alaw_to_linear(0xd5), alaw_to_linear(0x55)), (8, -8), "the smallest steps");
        assert_eq!((alaw_to_linear(0xaa), alaw_to_linear(0x2a)), (32_256, -32_256), "the largest");
        // Positive codes, ascending once the inverted bits are undone, decode ascending.
        let values: Vec<i16> = (0x80..=0xffu8).map(|c| alaw_to_linear(c ^ 0x55)).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    }

    #[test]
    fn payloads_decode_to_full_scale_samples() {
        let mut out = Vec::new();
        assert!(decode(AudioCodec::Pcmu, &[0xff, 0x80], &mut out).is_some());
        assert!(decode(AudioCodec::Pcma, &[0xaa], &mut out).is_some());
        assert_eq!(out, vec![0.0, 32_124.0 / 32_768.0, 32_256.0 / 32_768.0]);
        assert!(decode(AudioCodec::Opus, &[1], &mut out).is_none());
    }
}
