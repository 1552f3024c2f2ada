//! Where a viewer's connection is, as its session, its forwarders and the signalling see it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionState {
    /// Waiting for the viewer's description.
    #[default]
    New,
    /// ICE and DTLS under way.
    Connecting,
    /// DTLS done: media flows.
    Connected,
    /// The viewer never connected, or went silent.
    Failed,
    Closed,
}

impl ConnectionState {
    /// Whether the session is over for good.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Closed)
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        })
    }
}
