//! H.264 NAL unit helpers (ITU-T H.264 §7.3.1, Annex B; ISO 14496-15 length-prefixed form).

use bytes::{BufMut, Bytes, BytesMut};

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;
pub const NAL_FILLER: u8 = 12;
/// RFC 6184 aggregation and fragmentation packet types.
pub const NAL_STAP_A: u8 = 24;
pub const NAL_FU_A: u8 = 28;

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed length-prefixed H.264 at byte {offset}: {problem}")]
pub struct MalformedAccessUnit {
    pub offset: usize,
    pub problem: &'static str,
}

/// Splits a 4-byte length-prefixed access unit into its NAL units (zero-copy slices).
pub fn split_length_prefixed(data: &Bytes) -> Result<Vec<Bytes>, MalformedAccessUnit> {
    let mut nals = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let Some(prefix) = data.get(offset..offset + 4) else {
            return Err(MalformedAccessUnit { offset, problem: "truncated length prefix" });
        };
        let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let start = offset + 4;
        if length == 0 || start + length > data.len() {
            return Err(MalformedAccessUnit { offset, problem: "NAL length runs past the end" });
        }
        nals.push(data.slice(start..start + length));
        offset = start + length;
    }
    Ok(nals)
}

/// Splits an Annex B byte stream (start codes 00 00 01 or 00 00 00 01) into NAL units.
pub fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            if let Some(s) = start {
                nals.push(trim_trailing_zeros(&stream[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(&stream[s..]);
    }
    nals.retain(|nal| !nal.is_empty());
    nals
}

// The zero before a 4-byte start code belongs to the start code, not to the NAL before it.
fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    &nal[..end]
}

/// Joins NAL units into the 4-byte length-prefixed form.
pub fn join_length_prefixed<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    for nal in nals {
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_with_both_start_code_lengths() {
        let stream = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5];
        let nals = split_annex_b(&stream);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]);
        assert_eq!(nals.iter().map(|n| nal_type(n)).collect::<Vec<_>>(), vec![NAL_SPS, NAL_PPS, NAL_IDR]);
    }

    #[test]
    fn length_prefixed_round_trip_and_truncation() {
        let joined = join_length_prefixed([&[0x67u8, 1][..], &[0x65, 2, 3][..]]);
        let nals = split_length_prefixed(&joined).expect("well formed");
        assert_eq!(nals, vec![Bytes::from_static(&[0x67, 1]), Bytes::from_static(&[0x65, 2, 3])]);
        let truncated = joined.slice(..joined.len() - 1);
        assert_eq!(split_length_prefixed(&truncated).unwrap_err().offset, 6);
    }
}
