//! What every retina session Lookout opens with a camera shares, for its video and for its
//! separate audio session alike: how it introduces itself, its transport, and the camera's
//! clock read from the sender reports that arrive on it.

use super::camera_clock::CameraClock;
use crate::config::{RtspSource, RtspTransport};
use crate::stream::Stream;
use retina::client::{Credentials, SessionOptions, TcpTransportOptions, UdpTransportOptions};
use std::time::SystemTime;

/// What every RTSP session Lookout opens with a camera says of itself: its credentials and
/// user agent.
pub fn session_options(source: &RtspSource) -> SessionOptions {
    let credentials = source.credentials.as_ref().map(|c| Credentials { username: c.username.clone(), password: c.password.clone() });
    SessionOptions::default().creds(credentials).user_agent(format!("Lookout/{}", env!("CARGO_PKG_VERSION")))
}

/// retina's transport for the one configured (or fallen back to).
pub fn retina_transport(transport: RtspTransport) -> retina::client::Transport {
    match transport {
        RtspTransport::Tcp => retina::client::Transport::Tcp(TcpTransportOptions::default()),
        RtspTransport::Udp => retina::client::Transport::Udp(UdpTransportOptions::default()),
    }
}

/// Takes the camera's clock from its sender reports.
pub fn on_rtcp(stream: &Stream, track: &str, rtcp: &retina::rtcp::ReceivedCompoundPacket, clock: &mut CameraClock) {
    let Some(rtp_timestamp) = rtcp.rtp_timestamp() else { return };
    let Some(Ok(Some(report))) = rtcp.pkts().next().map(|packet| packet.as_sender_report()) else { return };
    match clock.on_sender_report(rtp_timestamp.timestamp(), report.ntp_timestamp().0, SystemTime::now()) {
        Some(true) => tracing::info!(path = stream.name(), track, "capture times from the camera's clock (its RTCP sender reports)"),
        Some(false) => tracing::info!(
            path = stream.name(),
            track,
            camera_clock = %report.ntp_timestamp(),
            "the camera's clock is more than a few seconds off; capture times are Lookout's receive times instead"
        ),
        None => {}
    }
}
