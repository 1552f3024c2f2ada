//! Real peers for Lookout's tests and benchmarks.
//!
//! * [`viewer`]: a WebRTC viewer built on webrtc 0.21 that watches through `/ws` or WHEP and
//!   records what it receives.
//! * [`signaling`]: a bare WebSocket signalling client, for sending Lookout anything at all.
//! * [`camera`]: GStreamer's RTSP server (tests/camera/rtsp_camera.py) as a camera.
//! * [`loss`]: chosen packet loss at a viewer, to check that Lookout resends.
//! * [`h264`]: depacketizes what a viewer received and decodes it with openh264.
//! * [`audio`]: decodes the Opus a viewer received and finds a tone in it.
//! * [`load`]: the command line the load generators share.
//! * [`swarm`]: light viewers (WHEP, ICE, DTLS-SRTP and counting, nothing more) for loads of
//!   hundreds.

pub mod audio;
pub mod browser;
pub mod camera;
pub mod h264;
pub mod http;
pub mod load;
pub mod loss;
pub mod netns;
pub mod signaling;
pub mod swarm;
pub mod turn;
pub mod viewer;

/// A free TCP port on loopback (bound, read, released: fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}
