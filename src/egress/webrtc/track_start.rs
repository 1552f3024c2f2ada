//! What every track of a session waits for before it sends: the connection up, and the payload
//! type the viewer agreed to (in WHEP its own choice).

use std::time::Duration;
use tokio::sync::watch;
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RtpSender;

/// A viewer that has not connected by then will not: ICE gives up well before.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a connection state means the session is over for good.
pub fn is_terminal(state: RTCPeerConnectionState) -> bool {
    matches!(state, RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed)
}

/// Whether the connection came up (not failed, closed, or silent for `CONNECT_TIMEOUT`).
pub async fn connected(state: &mut watch::Receiver<RTCPeerConnectionState>) -> bool {
    tokio::time::timeout(CONNECT_TIMEOUT, state.wait_for(|s| *s == RTCPeerConnectionState::Connected || is_terminal(*s)))
        .await
        .is_ok_and(|reached| reached.is_ok_and(|s| *s == RTCPeerConnectionState::Connected))
}

/// The payload type negotiated for `sender`'s track; `None` (and a log line) without one.
pub async fn negotiated_payload_type(sender: &dyn RtpSender, path: &str, kind: &str) -> Option<u8> {
    match sender.get_parameters().await {
        Ok(parameters) => {
            let payload_type = parameters.rtp_parameters.codecs.first().map(|codec| codec.payload_type);
            if payload_type.is_none() {
                tracing::debug!(path, "no {kind} codec negotiated; not sending {kind}");
            }
            payload_type
        }
        Err(error) => {
            tracing::warn!(path, %error, "cannot read the negotiated {kind} codec");
            None
        }
    }
}
