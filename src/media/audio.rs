//! Audio frames as sources produce them and egress reads them.

use super::AacConfig;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The audio codecs Lookout sends over RTP: a camera's G.711 or Opus as it comes, and Opus
/// made from a camera's AAC or G.711.
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

/// The audio a source's session has, as it comes: the hub carries it so, and makes Opus from
/// it only for the readers that need Opus (see `Stream::subscribe_opus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAudio {
    /// G.711 or Opus, one RTP payload per `AudioFrame` of the hub's audio feed.
    Rtp(AudioCodec),
    /// AAC access units in the hub's AAC feed.
    Aac(Arc<AacConfig>),
}

impl std::fmt::Display for SourceAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceAudio::Rtp(AudioCodec::Pcmu) => f.write_str("G.711 µ-law"),
            SourceAudio::Rtp(AudioCodec::Pcma) => f.write_str("G.711 A-law"),
            SourceAudio::Rtp(AudioCodec::Opus) => f.write_str("Opus"),
            SourceAudio::Aac(config) => write!(f, "AAC at {} Hz", config.sample_rate),
        }
    }
}
