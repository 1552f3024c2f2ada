//! Audio frames as sources produce them and egress reads them.

use bytes::Bytes;
use std::time::{Instant, SystemTime};

/// The audio codecs Lookout sends viewers: a camera's G.711 or Opus as it comes, and Opus
/// made from a camera's AAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 µ-law, 8 kHz mono (RTP payload type 0).
    Pcmu,
    /// G.711 A-law, 8 kHz mono (RTP payload type 8).
    Pcma,
    /// Opus, on its 48 kHz RTP clock whatever its sample rate (RFC 7587).
    Opus,
}

impl AudioCodec {
    pub const fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
            AudioCodec::Opus => 48_000,
        }
    }

    /// The MIME type WebRTC negotiates it under.
    pub const fn mime_type(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "audio/PCMU",
            AudioCodec::Pcma => "audio/PCMA",
            AudioCodec::Opus => "audio/opus",
        }
    }

    /// The RTP payload type Lookout offers it under: G.711's static ones (RFC 3551), and for
    /// Opus the dynamic one browsers use.
    pub const fn payload_type(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            AudioCodec::Opus => 111,
        }
    }
}

/// One RTP payload's worth of audio.
#[derive(Debug)]
pub struct AudioFrame {
    /// In the codec's clock rate, monotonic within one source session.
    pub timestamp: u64,
    pub codec: AudioCodec,
    pub data: Bytes,
    /// When its first sample was captured, on the same clock as the video's `captured_at`.
    pub captured_at: SystemTime,
    pub arrived_at: Instant,
}
