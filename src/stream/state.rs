//! The visible state of a path, as the page and the API show it.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PathState {
    /// The camera is closed until someone reads the path (an on-demand path).
    Idle,
    /// Opening the camera session (DESCRIBE/SETUP/PLAY) or starting the test pattern.
    Connecting,
    /// Frames are arriving.
    Live,
    /// The last attempt failed; the next one starts after `retry_in_ms`.
    Retrying {
        /// The failure in words: "401 Unauthorized", "connection refused", "timed out …".
        error: String,
        retry_in_ms: u64,
        attempt: u32,
    },
    /// The path was taken away (deleted through the API, or gone from the file); its viewers
    /// were ended with this reason.
    Removed { reason: String },
}

impl PathState {
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Live)
    }

    /// The state's name, as in the API: `idle`, `connecting`, `live`, `retrying` or `removed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Retrying { .. } => "retrying",
            Self::Removed { .. } => "removed",
        }
    }

    /// Why the last attempt failed, while retrying; why the path went, once removed.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Retrying { error, .. } => Some(error),
            Self::Removed { reason } => Some(reason),
            _ => None,
        }
    }
}

impl std::fmt::Display for PathState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Idle | Self::Connecting | Self::Live => f.write_str(self.name()),
            Self::Retrying { error, retry_in_ms, attempt } => {
                write!(f, "retrying in {:.1} s (attempt {attempt}): {error}", *retry_in_ms as f64 / 1000.0)
            }
            Self::Removed { reason } => write!(f, "removed: {reason}"),
        }
    }
}
