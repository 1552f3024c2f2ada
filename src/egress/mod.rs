//! Ways frames leave Lookout.

pub mod webrtc;
