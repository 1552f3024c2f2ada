//! A viewer's transport on Lookout's endpoint, built from the sans-I/O parts of the `rtc` crates
//! (STUN, ICE, TURN, DTLS, SRTP): ICE-lite, or full ICE when Lookout gathers through its own
//! servers; BUNDLE and rtcp-mux only; send-only media. Each viewer's RTP is encrypted by Lookout
//! and handed to its media port's batched sends, with no per-packet task hop in between.

pub(crate) mod announce;
pub mod connection;
pub mod connection_core;
pub mod connection_state;
pub mod dtls_srtp;
pub mod ice;
pub(crate) mod ice_servers;
pub(crate) mod mux;
pub mod network;
pub mod srtp_sender;
pub(crate) mod ports;
#[cfg(test)]
mod simulated_viewer;
pub mod viewer_transport;
