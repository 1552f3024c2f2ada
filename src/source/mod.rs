//! Sources turn one camera (or the built-in test pattern) into `Frame`s on a `Stream`.

pub mod backoff;
mod camera_audio;
pub mod camera_framing;
mod camera_clock;
mod retina_session;
mod rtsp_relay;
pub mod rtsp;
pub mod testpattern;

use crate::config::PathConfig;
use crate::stream::Stream;
use std::sync::Arc;

/// Keeps a source running; dropping it stops the source.
pub enum SourceHandle {
    Task(tokio::task::JoinHandle<()>),
    Thread(testpattern::TestPatternHandle),
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        if let Self::Task(task) = self {
            task.abort();
        }
    }
}

/// What the page shows as a path's source (never with credentials).
pub fn describe(config: &PathConfig) -> String {
    match config {
        PathConfig::Rtsp(rtsp) => format!("{} ({:?})", rtsp.url, rtsp.transport).replace("(Tcp)", "(tcp)").replace("(Udp)", "(udp)"),
        PathConfig::TestPattern(t) => format!("test pattern {}x{} @ {} fps", t.width, t.height, t.fps),
    }
}

/// Starts the source of one path. Must be called within a Tokio runtime.
pub fn spawn(config: &PathConfig, stream: Arc<Stream>) -> SourceHandle {
    match config {
        PathConfig::Rtsp(rtsp) => SourceHandle::Task(tokio::spawn(rtsp::run(stream, rtsp.clone()))),
        PathConfig::TestPattern(settings) => SourceHandle::Thread(testpattern::spawn(stream, settings.clone())),
    }
}
