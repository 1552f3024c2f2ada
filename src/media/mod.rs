//! Codec facts shared by sources and egress: the video `Frame`, `AudioFrame`, H.264 NAL
//! helpers, clocks, a camera's AAC as it came, G.711, Opus, the transcoders to Opus, and still
//! images of keyframes.

pub mod aac;
pub mod aac_to_opus;
pub mod audio;
pub mod frame;
pub mod g711;
pub mod g711_to_opus;
pub mod h264;
pub mod ntp;
pub mod opus;
pub mod pcm_to_opus;
mod resampler;
pub mod still;
pub mod to_opus;

pub use aac::{AacConfig, AacFrame};
pub use audio::{AudioCodec, AudioFrame, SourceAudio};
pub use frame::{Frame, VideoParameters};

/// RTP clock rate of video, in Hz (RFC 6184 §8.2.1).
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
