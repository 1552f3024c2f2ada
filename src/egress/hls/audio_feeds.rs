//! The hub's audio feed an HLS muxer reads: a camera's AAC as it came, or Opus (a camera's own,
//! or made by the hub from G.711).

use crate::media::{AacFrame, AudioFrame};
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

/// A frame of the feed.
pub enum Incoming {
    Aac(Arc<AacFrame>),
    Opus(Arc<AudioFrame>),
}

pub enum AudioFeed {
    Aac(Receiver<Arc<AacFrame>>),
    Opus(Receiver<Arc<AudioFrame>>),
    /// Nothing chosen yet, or closed: nothing comes.
    Closed,
}

impl AudioFeed {
    /// The next frame; pending for ever once the feed closed. Frames a slow muxer lost are
    /// skipped.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            let received = match self {
                AudioFeed::Aac(receiver) => receiver.recv().await.map(Incoming::Aac),
                AudioFeed::Opus(receiver) => receiver.recv().await.map(Incoming::Opus),
                AudioFeed::Closed => std::future::pending().await,
            };
            match received {
                Ok(incoming) => return incoming,
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => *self = AudioFeed::Closed,
            }
        }
    }

    /// A frame that has arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        loop {
            let received = match self {
                AudioFeed::Aac(receiver) => receiver.try_recv().map(Incoming::Aac),
                AudioFeed::Opus(receiver) => receiver.try_recv().map(Incoming::Opus),
                AudioFeed::Closed => return None,
            };
            match received {
                Ok(incoming) => return Some(incoming),
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Closed) => *self = AudioFeed::Closed,
            }
        }
    }
}
