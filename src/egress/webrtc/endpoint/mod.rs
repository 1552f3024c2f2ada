//! Lookout's WebRTC media endpoint, built from the sans-I/O parts of the `rtc` crates (STUN,
//! ICE, TURN, DTLS, SRTP) rather than a PeerConnection per viewer: ICE-lite (full ICE when
//! Lookout gathers through its own servers), BUNDLE and rtcp-mux only, send-only media. Each
//! viewer's RTP is encrypted by Lookout and handed to the shared socket's batched sends, with no
//! per-packet task hop or interceptor chain in between.

pub mod connection;
pub mod connection_state;
pub mod dtls_srtp;
pub mod full_ice;
pub mod gatherer;
pub mod ice_lite;
pub mod ice_path;
pub mod peer;
pub mod sdp;
pub mod transport;
pub mod twcc;
