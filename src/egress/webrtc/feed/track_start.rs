//! What every track of a session waits for before it sends: the connection up.

use crate::egress::webrtc::transport::connection_state::ConnectionState;
use std::time::Duration;
use tokio::sync::watch;

/// A viewer that has not connected by then will not: ICE gives up well before.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the connection came up (not failed, closed, or silent for `CONNECT_TIMEOUT`).
pub async fn connected(state: &mut watch::Receiver<ConnectionState>) -> bool {
    tokio::time::timeout(CONNECT_TIMEOUT, state.wait_for(|s| *s == ConnectionState::Connected || s.is_terminal()))
        .await
        .is_ok_and(|reached| reached.is_ok_and(|s| *s == ConnectionState::Connected))
}
