//! HLS egress: fMP4 segments muxed once per path from the frames the hub already has: its
//! H.264 video and its audio: a camera's AAC as it came, Opus as it came, G.711 made into Opus.

mod audio_feeds;
mod audio_format;
mod audio_run;
mod audio_track;
mod fmp4;
mod muxer;
pub mod players;
pub mod playlist;

pub use muxer::{Muxer, Output};

use crate::stream::{PathState, Stream};
use std::collections::HashMap;
use std::sync::Arc;
use parking_lot::Mutex;
use std::time::Duration;

/// A muxer with no request for this long stops; the next request starts a fresh one.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const TARGET_SEGMENT_DURATION: Duration = Duration::from_secs(2);
pub const PART_TARGET: Duration = Duration::from_millis(200);
/// Requests (blocking playlist reloads, hinted parts) that may wait for media at once.
const MAX_WAITING_REQUESTS: usize = 4096;

/// The running muxers, started on demand by the first request for a path.
#[derive(Clone)]
pub struct Hls {
    muxers: Arc<Mutex<HashMap<String, Arc<Muxer>>>>,
    /// Bounds the requests waiting for media: past it they are answered 503 at once.
    pub waiting_slots: Arc<tokio::sync::Semaphore>,
    pub players: Arc<players::HlsPlayers>,
}

impl Default for Hls {
    fn default() -> Self {
        Self { muxers: Arc::default(), waiting_slots: Arc::new(tokio::sync::Semaphore::new(MAX_WAITING_REQUESTS)), players: Arc::default() }
    }
}

impl Hls {
    /// The muxer of `stream`, started now if none runs.
    pub fn muxer(&self, stream: &Arc<Stream>) -> Arc<Muxer> {
        let mut muxers = self.muxers.lock();
        if let Some(muxer) = muxers.get(stream.name()) {
            muxer.touch();
            return muxer.clone();
        }
        let muxer = Muxer::new(TARGET_SEGMENT_DURATION, PART_TARGET);
        muxers.insert(stream.name().to_owned(), muxer.clone());
        let (registry, name, running, stream) = (self.muxers.clone(), stream.name().to_owned(), muxer.clone(), stream.clone());
        tracing::info!(path = %name, "HLS muxer started");
        tokio::spawn(async move {
            // A reader of the path while it runs: a camera on demand opens for it.
            let _reading = stream.hold();
            running.clone().run(stream.clone(), |muxer| muxer.idle_for() > IDLE_TIMEOUT).await;
            // Idle, or its path went away: the next request starts a fresh muxer.
            let mut muxers = registry.lock();
            if muxers.get(&name).is_some_and(|current| Arc::ptr_eq(current, &running)) {
                muxers.remove(&name);
            }
            drop(muxers);
            match stream.state() {
                PathState::Removed { .. } => tracing::info!(path = %name, "HLS muxer stopped: the path was removed"),
                _ => tracing::info!(path = %name, "HLS muxer stopped: no request for {} s", IDLE_TIMEOUT.as_secs()),
            }
        });
        muxer
    }
}
