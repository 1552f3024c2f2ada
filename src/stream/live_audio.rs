//! A reader of a path's live audio in one codec, from the moment it subscribed.

use crate::media::AudioFrame;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

pub struct LiveAudio {
    receiver: Receiver<Arc<AudioFrame>>,
    subscribed: Instant,
}

impl LiveAudio {
    pub(super) fn new(receiver: Receiver<Arc<AudioFrame>>) -> Self {
        Self { receiver, subscribed: Instant::now() }
    }

    /// The next frame. Frames made from audio that arrived before the reader subscribed are
    /// skipped: a reader that starts the hub making Opus gets the Opus made from what the hub
    /// kept, which a live reader has no use for.
    pub async fn recv(&mut self) -> Result<Arc<AudioFrame>, RecvError> {
        loop {
            let frame = self.receiver.recv().await?;
            if frame.arrived_at >= self.subscribed {
                return Ok(frame);
            }
        }
    }
}
