//! One reader of a stream: the cached GOP first, then live frames; whole frames lost on lag.

use crate::media::Frame;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

pub struct Reader {
    backlog: VecDeque<Arc<Frame>>,
    live: broadcast::Receiver<Arc<Frame>>,
    /// Set after losing frames: P frames are useless until the next keyframe.
    waiting_for_keyframe: bool,
    frames_lost: u64,
}

impl Reader {
    pub(super) fn new((backlog, truncated): (Vec<Arc<Frame>>, bool), live: broadcast::Receiver<Arc<Frame>>) -> Self {
        Self { backlog: backlog.into(), live, waiting_for_keyframe: truncated, frames_lost: 0 }
    }

    /// Takes the frames of the cached GOP this reader has not taken yet; `next` then gives
    /// live frames.
    pub fn take_backlog(&mut self) -> Vec<Arc<Frame>> {
        std::mem::take(&mut self.backlog).into()
    }

    /// Drops the rest of the cached GOP and every live frame up to the next keyframe.
    pub fn skip_to_next_keyframe(&mut self) {
        self.backlog.clear();
        self.waiting_for_keyframe = true;
    }

    pub fn frames_lost(&self) -> u64 {
        self.frames_lost
    }

    /// The next frame, or `None` when the stream is gone.
    pub async fn next(&mut self) -> Option<Arc<Frame>> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        loop {
            let received = self.live.recv().await;
            match self.accept(received.map_err(|e| match e {
                RecvError::Lagged(n) => Lost::Lagged(n),
                RecvError::Closed => Lost::Closed,
            })) {
                Step::Frame(frame) => return Some(frame),
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    /// Like `next`, without waiting: `None` when no frame is ready now.
    pub fn try_next(&mut self) -> Option<Arc<Frame>> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        loop {
            let received = self.live.try_recv().map_err(|e| match e {
                TryRecvError::Lagged(n) => Lost::Lagged(n),
                TryRecvError::Closed | TryRecvError::Empty => Lost::Closed,
            });
            match self.accept(received) {
                Step::Frame(frame) => return Some(frame),
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    fn accept(&mut self, received: Result<Arc<Frame>, Lost>) -> Step {
        match received {
            Ok(frame) if self.waiting_for_keyframe && !frame.keyframe => {
                self.frames_lost += 1;
                Step::Skip
            }
            Ok(frame) => {
                self.waiting_for_keyframe = false;
                Step::Frame(frame)
            }
            Err(Lost::Lagged(n)) => {
                self.frames_lost += n;
                self.waiting_for_keyframe = true;
                Step::Skip
            }
            Err(Lost::Closed) => Step::End,
        }
    }
}

enum Lost {
    Lagged(u64),
    Closed,
}

enum Step {
    Frame(Arc<Frame>),
    Skip,
    End,
}
