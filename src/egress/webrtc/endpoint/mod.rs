//! Lookout's own WebRTC media endpoint, built from the sans-I/O parts of `rtc` (STUN, DTLS,
//! SRTP, SDP) rather than a PeerConnection per viewer: ICE-lite, Lookout always the DTLS
//! server, BUNDLE and rtcp-mux only, send-only media. Each viewer's RTP is encrypted by Lookout
//! and handed to the shared socket's batched sends, with no per-packet task hop or interceptor
//! chain in between.

pub mod connection;
pub mod dtls_srtp;
pub mod full_ice;
pub mod gatherer;
pub mod ice_lite;
pub mod ice_path;
pub mod peer;
pub mod sdp;
pub mod transport;
pub mod twcc;
