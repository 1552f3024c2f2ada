//! Opus made from a path's G.711 or AAC for the readers that cannot take those as they come
//! (WebRTC carries no AAC, LL-HLS no G.711): made once per path whatever the number of readers,
//! started by the first of them and stopped when the last has left.
//!
//! A reader that starts it gets the Opus made from what the hub kept since its cached keyframe,
//! then the live frames: an HLS muxer begins its track at that keyframe.

use super::recent_feed::RecentFeed;
use crate::media::to_opus::ToOpus;
use crate::media::{AacFrame, AudioCodec, AudioFrame};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

/// Opus frames kept for a reader that starts at the cached keyframe (about 10 s), and how far a
/// reader may fall behind: as many, as a reader that starts the making gets what was kept
/// before the keyframe in one burst.
const KEPT_FRAMES: usize = 512;

pub(super) struct OpusOnDemand {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    made: RecentFeed<AudioFrame>,
    running: bool,
}

/// What the Opus is made from: the source's frames kept since the cached keyframe, oldest
/// first, then its two live feeds.
pub(super) struct SourceFeeds {
    pub kept: Vec<SourceFrame>,
    pub audio: Receiver<Arc<AudioFrame>>,
    pub aac: Receiver<Arc<AacFrame>>,
}

pub(super) enum SourceFrame {
    /// G.711, or Opus already (a camera that came back with Opus): passed on.
    Rtp(Arc<AudioFrame>),
    Aac(Arc<AacFrame>),
}

impl SourceFrame {
    pub fn captured_at(&self) -> std::time::SystemTime {
        match self {
            SourceFrame::Rtp(frame) => frame.captured_at,
            SourceFrame::Aac(frame) => frame.captured_at,
        }
    }
}

impl OpusOnDemand {
    pub fn new() -> Self {
        let made = RecentFeed::new(KEPT_FRAMES, KEPT_FRAMES, AudioCodec::Opus.clock_rate());
        Self { shared: Arc::new(Mutex::new(Shared { made, running: false })) }
    }

    /// A reader: the recent frames made, then the live ones. Starts the making when it is not
    /// running, from the feeds `source` gives (called only then).
    pub fn subscribe(&self, path: &str, source: impl FnOnce() -> SourceFeeds) -> (Vec<Arc<AudioFrame>>, Receiver<Arc<AudioFrame>>) {
        let mut shared = self.shared.lock();
        let subscription = shared.made.subscribe();
        if !shared.running {
            shared.running = true;
            tokio::spawn(make_opus(self.shared.clone(), path.to_owned(), source()));
        }
        subscription
    }

    /// Whether Opus is being made now.
    pub fn is_running(&self) -> bool {
        self.shared.lock().running
    }
}

/// Makes Opus from `source` until nobody reads it, or the source's feeds close.
async fn make_opus(shared: Arc<Mutex<Shared>>, path: String, mut source: SourceFeeds) {
    tracing::info!(path, "audio: making Opus from the source's audio for the readers that need it");
    let mut making = Making { to_opus: ToOpus::default(), made: Vec::new(), failures: 0 };
    for frame in std::mem::take(&mut source.kept) {
        making.push(&frame, &path);
    }
    making.publish(&mut shared.lock());
    loop {
        let received = tokio::select! {
            frame = source.audio.recv() => frame.map(SourceFrame::Rtp),
            frame = source.aac.recv() => frame.map(SourceFrame::Aac),
        };
        match received {
            Ok(frame) => making.push(&frame, &path),
            // Behind: skip ahead; a gap in audio is a click.
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => {
                shared.lock().running = false;
                return;
            }
        }
        // Under one lock with `subscribe`, so that a reader arriving now either is counted
        // here or finds the making stopped and starts it again.
        let mut shared_now = shared.lock();
        making.publish(&mut shared_now);
        if shared_now.made.reader_count() == 0 {
            shared_now.running = false;
            shared_now.made.forget_recent();
            drop(shared_now);
            tracing::info!(path, "audio: stopped making Opus, as no reader is left");
            if making.failures > 1 {
                tracing::info!(path, "audio: {} source frames could not be made into Opus", making.failures);
            }
            return;
        }
    }
}

struct Making {
    to_opus: ToOpus,
    made: Vec<AudioFrame>,
    /// Source frames that failed: the first is logged, the others counted.
    failures: u64,
}

impl Making {
    fn publish(&mut self, shared: &mut Shared) {
        let now = Instant::now();
        for frame in self.made.drain(..) {
            shared.made.publish(frame, now);
        }
    }

    fn push(&mut self, frame: &SourceFrame, path: &str) {
        let outcome = match frame {
            SourceFrame::Rtp(frame) if frame.codec == AudioCodec::Opus => {
                self.made.push(AudioFrame { data: frame.data.clone(), ..**frame });
                Ok(())
            }
            SourceFrame::Rtp(frame) => self.to_opus.push_g711(frame, &mut self.made),
            SourceFrame::Aac(frame) => self.to_opus.push_aac(frame, &mut self.made),
        };
        if let Err(error) = outcome {
            self.failures += 1;
            if self.failures == 1 {
                tracing::warn!(path, "audio: making Opus: {error}; further failures are counted, not logged");
            }
        }
    }
}
