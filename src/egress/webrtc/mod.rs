//! WebRTC egress: one viewer session per PeerConnection, fed from the stream's shared packets.

mod forwarder;
mod keyframe_requests;
pub mod packetizer;
mod peer;
pub mod session;
pub mod sessions;

pub use peer::WebRtcSettings;
pub use session::{SessionError, SessionEvent, ViewerSession};
pub use sessions::Sessions;
