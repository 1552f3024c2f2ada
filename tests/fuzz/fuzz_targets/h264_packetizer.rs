//! A camera's access unit through the WebRTC packetizer (RFC 6184, packetization-mode 1), which
//! parses it into NAL units first: no panic, every payload non-empty and at most
//! `MAX_PAYLOAD_SIZE` bytes, and a depacketizer gets back the access unit's NAL units (less
//! access unit delimiters and filler; SPS and PPS in front of an IDR that lacks them). An access
//! unit that does not parse gives no payload at all.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lookout::egress::webrtc::rtp::packetizer::{packetize, MAX_PAYLOAD_SIZE};
use lookout::media::frame::{Frame, VideoParameters};
use lookout::media::h264::{nal_type, split_length_prefixed, NAL_AUD, NAL_FILLER, NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SPS};
use std::sync::Arc;

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, access_unit)) = data.split_first() else { return };
    let parameters = Arc::new(VideoParameters { width: 640, height: 360, sps: Bytes::from_static(SPS), pps: Bytes::from_static(PPS) });
    let frame = Frame::new(0, flags & 1 != 0, Bytes::copy_from_slice(access_unit), parameters);
    let payloads = packetize(&frame);
    for payload in &payloads {
        assert!(!payload.is_empty() && payload.len() <= MAX_PAYLOAD_SIZE, "a payload of {} bytes", payload.len());
    }
    let Ok(nals) = split_length_prefixed(&frame.data) else {
        assert!(payloads.is_empty(), "payloads from an access unit that does not parse");
        return;
    };
    // NAL types 24-29 exist only in RTP (aggregation and fragmentation units): in an access unit
    // they are the camera's nonsense, passed on as it is and not reassembled here.
    if nals.iter().any(|nal| (24..=29).contains(&nal_type(nal))) {
        return;
    }
    let has = |kind| nals.iter().any(|nal| nal_type(nal) == kind);
    let mut expected: Vec<&[u8]> = Vec::new();
    if has(NAL_IDR) && !(has(NAL_SPS) && has(NAL_PPS)) {
        expected.extend([SPS, PPS]);
    }
    expected.extend(nals.iter().filter(|nal| !matches!(nal_type(nal), NAL_AUD | NAL_FILLER)).map(|nal| &nal[..]));
    assert_eq!(depacketize(&payloads), expected);
});

/// Reassembles single NAL unit and FU-A payloads (RFC 6184 §5.6, §5.8) as a receiver does,
/// checking the start and end flags.
fn depacketize(payloads: &[Bytes]) -> Vec<Vec<u8>> {
    let mut nals = Vec::new();
    let mut fragmented: Option<Vec<u8>> = None;
    for payload in payloads {
        if nal_type(payload) != NAL_FU_A {
            assert!(fragmented.is_none(), "a NAL unit inside a fragmented one");
            nals.push(payload.to_vec());
            continue;
        }
        assert!(payload.len() > 2, "a fragment with no data");
        let (indicator, header) = (payload[0], payload[1]);
        let (start, end) = (header & 0x80 != 0, header & 0x40 != 0);
        assert!(!(start && end), "a NAL unit that fits one payload was fragmented");
        if start {
            assert!(fragmented.is_none(), "a start inside a fragmented NAL unit");
            fragmented = Some(vec![(indicator & 0xe0) | (header & 0x1f)]);
        }
        fragmented.as_mut().expect("a fragment after its start").extend_from_slice(&payload[2..]);
        if end {
            nals.extend(fragmented.take());
        }
    }
    assert!(fragmented.is_none(), "a fragmented NAL unit without its end");
    nals
}
