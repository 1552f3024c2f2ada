//! WebRTC egress, in layers that import only downward (each folder is one):
//!
//! - `rtp`: a frame made into RTP packets, the per-viewer header, what was sent;
//! - `rtcp`: what the viewer reports (keyframe requests, NACKs, receiver reports, transport-wide
//!   feedback) and what Lookout reports to it (sender reports);
//! - `transport`: a viewer's ICE, DTLS-SRTP and connection on the media ports;
//! - `negotiation`: the offer/answer exchange that sets a connection up;
//! - `feed`: what a viewer is sent of a stream, when (forwarding, layer choice, pacing);
//! - `session`: a viewer's session as signalling sees it, and the set of them.

pub mod feed;
pub mod negotiation;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod transport;

pub use feed::send_delay::SendDelayFigures;
pub use session::sessions::Sessions;
pub use session::viewer_session::{SessionError, ViewerSession};
pub use transport::mux::binding_request_ufrag;
pub use transport::network::Network;
