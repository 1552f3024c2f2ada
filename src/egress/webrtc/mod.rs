//! WebRTC egress: one viewer session per PeerConnection, fed from the stream's shared packets.

mod announce;
mod audio_forwarder;
pub mod endpoint;
mod forwarder;
mod forwarder_stats;
mod gather_servers;
pub mod ice_servers;
mod keyframe_requests;
mod layer_choice;
mod layer_ladder;
mod link_quality;
mod media_sink;
mod mux;
pub mod network;
mod ports;
mod retransmitter;
mod rtcp_tap;
mod rtp_header;
mod sender_reports;
mod send_delay;
mod sent_frames;
pub mod packetizer;
mod pacer;
mod peer;
mod peer_event;
pub mod session;
pub mod sessions;
mod track_start;
mod video_feed;
mod viewer_activity;

pub use mux::binding_request_ufrag;
pub use network::Network;
pub use session::{SessionError, SessionEvent, ViewerSession};
pub use send_delay::{SendDelayFigures, SendDelayPercentiles, SendDelays};
pub use sessions::Sessions;
pub use track_start::is_terminal;
