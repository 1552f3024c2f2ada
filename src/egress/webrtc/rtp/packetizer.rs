//! H.264 RTP packetization (RFC 6184, packetization-mode=1), done once per frame per stream.
//!
//! The output is payloads only: the RTP header (sequence number, SSRC, payload type) is
//! per viewer and written by the session; the timestamp is the frame's; the marker bit goes
//! on the last payload of the frame.

use crate::media::h264::{self, NAL_AUD, NAL_FILLER, NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SPS};
use crate::media::Frame;
use bytes::{BufMut, Bytes, BytesMut};

/// Largest RTP payload: leaves room for RTP, SRTP and header extensions within a 1280-byte
/// IPv6 minimum MTU path, after TURN or VPN encapsulation.
pub const MAX_PAYLOAD_SIZE: usize = 1200;

/// The frame's payloads, computed on first use and shared by every viewer of the stream.
pub fn payloads_of(frame: &Frame) -> &[Bytes] {
    frame.rtp_payloads.get_or_init(|| packetize(frame))
}

/// Splits one access unit into RTP payloads. SPS and PPS are put in front of every IDR that
/// does not already carry them, so any viewer can start decoding at any keyframe.
pub fn packetize(frame: &Frame) -> Vec<Bytes> {
    let nals = match h264::split_length_prefixed(&frame.data) {
        Ok(nals) => nals,
        Err(error) => {
            tracing::warn!(%error, "dropping a frame that cannot be packetized");
            return Vec::new();
        }
    };
    let has = |wanted: u8| nals.iter().any(|nal| h264::nal_type(nal) == wanted);
    let mut payloads = Vec::with_capacity(nals.len() + frame.data.len() / MAX_PAYLOAD_SIZE + 2);
    if has(NAL_IDR) && !(has(NAL_SPS) && has(NAL_PPS)) {
        payloads.push(frame.parameters.sps.clone());
        payloads.push(frame.parameters.pps.clone());
    }
    for nal in nals {
        match h264::nal_type(&nal) {
            // Access unit delimiters and filler carry nothing a WebRTC decoder needs.
            NAL_AUD | NAL_FILLER => {}
            _ if nal.len() <= MAX_PAYLOAD_SIZE => payloads.push(nal),
            _ => fragment(&nal, &mut payloads),
        }
    }
    payloads
}

/// FU-A fragmentation (RFC 6184 §5.8): the NAL header's F and NRI bits go in the FU indicator,
/// its type in the FU header with the start and end flags.
fn fragment(nal: &Bytes, payloads: &mut Vec<Bytes>) {
    const FU_HEADER_SIZE: usize = 2;
    let header = nal[0];
    let indicator = (header & 0xe0) | NAL_FU_A;
    let body = &nal[1..];
    let chunk_size = MAX_PAYLOAD_SIZE - FU_HEADER_SIZE;
    let chunks = body.len().div_ceil(chunk_size);
    for (i, chunk) in body.chunks(chunk_size).enumerate() {
        let start = if i == 0 { 0x80 } else { 0 };
        let end = if i + 1 == chunks { 0x40 } else { 0 };
        let mut payload = BytesMut::with_capacity(FU_HEADER_SIZE + chunk.len());
        payload.put_u8(indicator);
        payload.put_u8(start | end | (header & 0x1f));
        payload.put_slice(chunk);
        payloads.push(payload.freeze());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::{join_length_prefixed, nal_type, NAL_SLICE};
    use crate::media::VideoParameters;
    use std::sync::Arc;

    const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f, 0xaa];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn parameters() -> Arc<VideoParameters> {
        Arc::new(VideoParameters { width: 64, height: 64, sps: Bytes::from_static(SPS), pps: Bytes::from_static(PPS) })
    }

    fn nal(header: u8, len: usize) -> Vec<u8> {
        let mut nal = vec![header];
        nal.extend((1..len).map(|i| (i % 251) as u8));
        nal
    }

    fn frame(nals: &[&[u8]], keyframe: bool) -> Frame {
        Frame::new(0, keyframe, join_length_prefixed(nals.iter().copied()), parameters())
    }

    /// Reassembles FU-A fragments, checking the start/end flags as a depacketizer must.
    fn depacketize(payloads: &[Bytes]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut partial: Option<Vec<u8>> = None;
        for p in payloads {
            assert!(p.len() <= MAX_PAYLOAD_SIZE, "payload of {} bytes", p.len());
            if nal_type(p) == NAL_FU_A {
                let (start, end) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
                assert!(!(start && end), "a NAL that fits must not be fragmented");
                if start {
                    assert!(partial.is_none(), "start flag inside a fragmented NAL");
                    partial = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                }
                let buffer = partial.as_mut().expect("fragment without a start");
                buffer.extend_from_slice(&p[2..]);
                if end {
                    nals.push(partial.take().expect("present"));
                }
            } else {
                assert!(partial.is_none(), "single NAL inside a fragmented NAL");
                nals.push(p.to_vec());
            }
        }
        assert!(partial.is_none(), "fragmented NAL without an end");
        nals
    }

    #[test]
    fn small_nals_travel_alone_and_aud_is_dropped() {
        let slice = nal(0x41, 300);
        let payloads = packetize(&frame(&[&[0x09, 0xf0], &slice], false));
        assert_eq!(payloads.len(), 1);
        assert_eq!(&payloads[0][..], &slice[..]);
    }

    #[test]
    fn fu_a_boundaries_at_and_around_the_limit() {
        for len in [MAX_PAYLOAD_SIZE, MAX_PAYLOAD_SIZE + 1, 2 * (MAX_PAYLOAD_SIZE - 2) + 1, 50_000] {
            let big = nal(0x65, len);
            let payloads = packetize(&frame(&[SPS, PPS, &big], true));
            let expected_fragments = if len <= MAX_PAYLOAD_SIZE { 1 } else { (len - 1).div_ceil(MAX_PAYLOAD_SIZE - 2) };
            assert_eq!(payloads.len(), 2 + expected_fragments, "len {len}");
            if len > MAX_PAYLOAD_SIZE {
                assert_eq!(payloads[2][0], 0x60 | NAL_FU_A, "indicator keeps NRI of the IDR");
                assert_eq!(payloads[2][1], 0x80 | NAL_IDR);
                assert_eq!(*payloads.last().unwrap().get(1).unwrap(), 0x40 | NAL_IDR);
            }
            assert_eq!(depacketize(&payloads), vec![SPS.to_vec(), PPS.to_vec(), big], "len {len}");
        }
    }

    #[test]
    fn sps_and_pps_are_inserted_before_an_idr_that_lacks_them() {
        let idr = nal(0x65, 2000);
        let nals = depacketize(&packetize(&frame(&[&idr], true)));
        let types: Vec<u8> = nals.iter().map(|n| nal_type(n)).collect();
        assert_eq!(types, vec![NAL_SPS, NAL_PPS, NAL_IDR]);
        assert_eq!(nals[0], SPS);
    }

    #[test]
    fn non_idr_frames_get_no_parameter_sets() {
        let types: Vec<u8> = depacketize(&packetize(&frame(&[&nal(0x41, 5000)], false)))
            .iter()
            .map(|n| nal_type(n))
            .collect();
        assert_eq!(types, vec![NAL_SLICE]);
    }

    #[test]
    fn payloads_are_computed_once_and_shared() {
        let f = frame(&[&nal(0x41, 3000)], false);
        let first = payloads_of(&f).as_ptr();
        assert_eq!(first, payloads_of(&f).as_ptr());
    }

    #[test]
    fn malformed_frame_yields_nothing() {
        let bad = Frame::new(0, false, Bytes::from_static(&[0, 0, 0, 9, 1]), parameters());
        assert!(packetize(&bad).is_empty());
    }
}
