//! One access unit of one track, as a source produced it and every egress reads it.

use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

/// Codec parameters of an H.264 video track, shared by all frames until they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParameters {
    pub width: u32,
    pub height: u32,
    /// Sequence parameter set NAL unit, without start code or length prefix.
    pub sps: Bytes,
    /// Picture parameter set NAL unit, likewise.
    pub pps: Bytes,
}

impl VideoParameters {
    /// RFC 6381 codec string such as `avc1.42e01f`, from the SPS's profile and level bytes.
    pub fn codec_string(&self) -> String {
        match self.sps.get(1..4) {
            Some(p) => format!("avc1.{:02x}{:02x}{:02x}", p[0], p[1], p[2]),
            None => "avc1".to_owned(),
        }
    }
}

/// An H.264 access unit.
#[derive(Debug)]
pub struct Frame {
    /// Presentation time in the 90 kHz video clock, monotonic within one source session.
    pub timestamp: u64,
    /// An IDR picture: decoding can start here.
    pub keyframe: bool,
    /// NAL units, each prefixed by its 4-byte big-endian length (the AVC/MP4 form).
    /// A keyframe carries SPS and PPS in front of its IDR slices.
    pub data: Bytes,
    pub parameters: Arc<VideoParameters>,
    /// When the frame was captured, on the wall clock: the camera's own, from its RTCP sender
    /// reports, when it sends usable ones (`source::camera_clock`); otherwise when Lookout
    /// received the frame. Viewers' sender reports are built from it.
    pub captured_at: SystemTime,
    /// When Lookout had the whole frame, on its monotonic clock: what bounds the delays
    /// Lookout adds (pacing) and what its added latency is measured from.
    pub arrived_at: Instant,
    /// RTP payloads of this frame, computed once by the first WebRTC reader so that every
    /// viewer session sends the same shared buffers (see `egress::webrtc::packetizer`).
    pub rtp_payloads: OnceLock<Vec<Bytes>>,
}

impl Frame {
    pub fn new(timestamp: u64, keyframe: bool, data: Bytes, parameters: Arc<VideoParameters>) -> Self {
        Self {
            timestamp,
            keyframe,
            data,
            parameters,
            captured_at: SystemTime::now(),
            arrived_at: Instant::now(),
            rtp_payloads: OnceLock::new(),
        }
    }
}
