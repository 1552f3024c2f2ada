//! The hub's two audio feeds as an HLS muxer reads them: a camera's AAC as it came, and the
//! audio viewers get (G.711 or Opus). Both are read until the initialization segment says
//! which one the track carries; then only that one.

use crate::media::{AacFrame, AudioFrame};
use crate::stream::Stream;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

/// A frame of either feed.
pub enum Incoming {
    Aac(Arc<AacFrame>),
    Hub(Arc<AudioFrame>),
}

impl Incoming {
    pub fn captured_at(&self) -> SystemTime {
        match self {
            Incoming::Aac(frame) => frame.captured_at,
            Incoming::Hub(frame) => frame.captured_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Aac,
    Hub,
}

#[derive(Default)]
pub struct AudioFeeds {
    aac: Option<Receiver<Arc<AacFrame>>>,
    hub: Option<Receiver<Arc<AudioFrame>>>,
}

impl AudioFeeds {
    /// Both feeds: the frames they keep (the last few seconds, reaching back to the cached
    /// keyframe), then the live ones.
    pub fn subscribe(stream: &Stream) -> (Vec<Incoming>, Self) {
        let (recent_aac, aac) = stream.subscribe_aac();
        let (recent_hub, hub) = stream.subscribe_recent_audio();
        let recent = recent_aac.into_iter().map(Incoming::Aac).chain(recent_hub.into_iter().map(Incoming::Hub)).collect();
        (recent, Self { aac: Some(aac), hub: Some(hub) })
    }

    /// Reads only `feed` from now on (`None`: neither).
    pub fn keep(&mut self, feed: Option<Feed>) {
        if feed != Some(Feed::Aac) {
            self.aac = None;
        }
        if feed != Some(Feed::Hub) {
            self.hub = None;
        }
    }

    /// The next frame of either feed; pending for ever once neither is read. Frames a slow
    /// muxer lost are skipped.
    pub async fn recv(&mut self) -> Incoming {
        loop {
            let received = tokio::select! {
                frame = recv(&mut self.aac) => frame.map(Incoming::Aac),
                frame = recv(&mut self.hub) => frame.map(Incoming::Hub),
            };
            if let Some(incoming) = received {
                return incoming;
            }
        }
    }

    /// A frame that has arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        try_recv(&mut self.aac).map(Incoming::Aac).or_else(|| try_recv(&mut self.hub).map(Incoming::Hub))
    }
}

/// The next frame of `feed`; `None` when it lagged (what it lost is skipped) or closed (then it
/// is read no more).
async fn recv<T: Clone>(feed: &mut Option<Receiver<T>>) -> Option<T> {
    let Some(receiver) = feed else { return std::future::pending().await };
    match receiver.recv().await {
        Ok(frame) => Some(frame),
        Err(RecvError::Lagged(_)) => None,
        Err(RecvError::Closed) => {
            *feed = None;
            None
        }
    }
}

fn try_recv<T: Clone>(feed: &mut Option<Receiver<T>>) -> Option<T> {
    let receiver = feed.as_mut()?;
    loop {
        match receiver.try_recv() {
            Ok(frame) => return Some(frame),
            Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Closed) => {
                *feed = None;
                return None;
            }
        }
    }
}
