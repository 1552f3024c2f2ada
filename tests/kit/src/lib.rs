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

/// Where `free_port` looks: below the kernel's ephemeral ports (32768 and up on Linux), so that
/// no socket bound to port 0 meanwhile (a server under test, a client's connection) takes the
/// port before its user binds it. A port of the ephemeral range, free when asked, was taken so
/// once in a full run of the suite, and the camera meant for it could not listen.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port free now for both TCP and UDP, picked at random from `TEST_PORTS` so that
/// tests running side by side rarely pick the same one.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = rand::random_range(TEST_PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}")
}
