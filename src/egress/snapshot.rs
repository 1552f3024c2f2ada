//! Still images of paths, for dashboards: the latest keyframe as a JPEG. Each is made once per
//! keyframe and width, however many ask, and only a few are made at a time, so that a flood of
//! requests cannot take the CPU from the viewers.

use crate::media::still::{jpeg_of_keyframe, StillError};
use crate::stream::{PathState, Stream};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Stills made at once: one per core of a small machine.
const AT_ONCE: usize = 2;
/// How long a request waits for its turn before it is told to come back.
const TURN_WAIT: Duration = Duration::from_secs(5);
/// Stills kept, of every path and width; past it the oldest keyframes' go first.
const KEPT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("path {path:?} has no picture now: {state}")]
    NotLive { path: String, state: PathState },
    #[error("too many snapshots are being made; retry in a moment")]
    Busy,
    #[error("cannot make the snapshot: {0}")]
    Still(#[from] StillError),
    #[error("the snapshot's work stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

/// A still kept for the keyframe it was made of.
struct Kept {
    keyframe_arrived_at: Instant,
    jpeg: Bytes,
}

pub struct Snapshots {
    kept: Mutex<HashMap<(String, Option<u32>), Kept>>,
    turns: Arc<Semaphore>,
}

impl Default for Snapshots {
    fn default() -> Self {
        Self { kept: Mutex::default(), turns: Arc::new(Semaphore::new(AT_ONCE)) }
    }
}

impl Snapshots {
    /// The path's latest keyframe as a JPEG, `width` pixels wide at most. A path on demand
    /// opens its camera for it and waits for the first frame.
    pub async fn jpeg(&self, stream: &Stream, width: Option<u32>) -> Result<Bytes, SnapshotError> {
        let _reading = stream.hold();
        let state = stream.until_live().await;
        let not_live = || SnapshotError::NotLive { path: stream.name().to_owned(), state: state.clone() };
        if !state.is_live() {
            return Err(not_live());
        }
        let keyframe = stream.cached_keyframe().ok_or_else(not_live)?;
        let key = (stream.name().to_owned(), width);
        let kept_for = |key: &(String, Option<u32>)| self.kept.lock().get(key).filter(|kept| kept.keyframe_arrived_at == keyframe.arrived_at).map(|kept| kept.jpeg.clone());
        if let Some(jpeg) = kept_for(&key) {
            return Ok(jpeg);
        }
        let _turn = tokio::time::timeout(TURN_WAIT, self.turns.clone().acquire_owned()).await.map_err(|_| SnapshotError::Busy)?.map_err(|_| SnapshotError::Busy)?;
        // Made by a request that had its turn first?
        if let Some(jpeg) = kept_for(&key) {
            return Ok(jpeg);
        }
        let arrived_at = keyframe.arrived_at;
        let jpeg = Bytes::from(tokio::task::spawn_blocking(move || jpeg_of_keyframe(&keyframe, width)).await??);
        let mut kept = self.kept.lock();
        if kept.len() >= KEPT {
            let oldest = kept.iter().min_by_key(|(_, kept)| kept.keyframe_arrived_at).map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                kept.remove(&oldest);
            }
        }
        kept.insert(key, Kept { keyframe_arrived_at: arrived_at, jpeg: jpeg.clone() });
        Ok(jpeg)
    }
}
