//! A frame made into RTP: packetized once per stream and shared by every viewer, given each
//! viewer's own header, and remembered for retransmissions and sender reports.

pub(crate) mod header;
pub mod packetizer;
pub mod playout_delay;
pub(crate) mod sent_frames;
