//! The frames since the latest keyframe, so a new reader can start decoding at once.

use crate::media::Frame;
use std::sync::Arc;

/// Bounds the cache when a camera sends keyframes rarely or never: beyond this a new reader
/// gets only the keyframe and waits for the next one, rather than the hub growing unbounded.
const MAX_CACHED_FRAMES: usize = 600;
const MAX_CACHED_BYTES: usize = 32 * 1024 * 1024;

#[derive(Default)]
pub(super) struct GopCache {
    frames: Vec<Arc<Frame>>,
    bytes: usize,
    /// True when frames after the keyframe were left out to respect the bounds.
    truncated: bool,
}

impl GopCache {
    pub fn push(&mut self, frame: Arc<Frame>) {
        if frame.keyframe {
            self.clear();
        } else if self.truncated || self.frames.len() >= MAX_CACHED_FRAMES || self.bytes + frame.data.len() > MAX_CACHED_BYTES {
            // Keep the keyframe alone: later frames would reference the ones left out.
            self.frames.truncate(1);
            self.bytes = self.frames.first().map_or(0, |f| f.data.len());
            self.truncated = true;
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push(frame);
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.truncated = false;
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn keyframe(&self) -> Option<Arc<Frame>> {
        self.frames.first().cloned()
    }

    /// The cached frames, starting at a keyframe; empty before the first keyframe.
    /// When truncated, only the keyframe: the reader must then wait for the next keyframe.
    pub fn frames(&self) -> (Vec<Arc<Frame>>, bool) {
        (self.frames.clone(), self.truncated)
    }
}
