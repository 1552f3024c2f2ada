//! Ways frames leave Lookout.

pub mod hls;
pub mod snapshot;
pub mod webrtc;
