//! Ways frames leave Lookout.

pub mod hls;
pub mod webrtc;
