//! WebRTC egress: one viewer session per connection of Lookout's endpoint, fed from the
//! stream's shared packets.

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
mod rtcp_observer;
mod rtp_header;
mod sender_reports;
mod send_delay;
mod sent_frames;
pub mod packetizer;
mod pacer;
mod peer;
pub mod session;
pub mod sessions;
mod track_start;
mod video_feed;
mod viewer_activity;

pub use mux::binding_request_ufrag;
pub use network::Network;
pub use session::{SessionError, ViewerSession};
pub use send_delay::{SendDelayFigures, SendDelayPercentiles, SendDelays};
pub use sessions::Sessions;
