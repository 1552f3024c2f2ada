//! A path's AAC as the camera sent it, for HLS only (WebRTC gets Opus made from it): the
//! track's config, the last few seconds of access units for a muxer that starts at the cached
//! keyframe, and the live ones.

use super::timeline::Timeline;
use crate::media::{AacConfig, AacFrame};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast;

/// Access units kept for a new reader: about 11 s at 48 kHz, more at lower rates; enough to
/// reach back to the cached keyframe of any usual keyframe interval.
const RECENT_FRAMES: usize = 512;
/// Access units a reader may fall behind by before it loses some.
const QUEUE_FRAMES: usize = 256;

pub(super) struct AacFeed {
    config: Option<Arc<AacConfig>>,
    recent: VecDeque<Arc<AacFrame>>,
    live: broadcast::Sender<Arc<AacFrame>>,
    timeline: Timeline,
}

impl Default for AacFeed {
    fn default() -> Self {
        Self { config: None, recent: VecDeque::new(), live: broadcast::channel(QUEUE_FRAMES).0, timeline: Timeline::new(48_000) }
    }
}

impl AacFeed {
    pub fn begin_session(&mut self) {
        self.timeline.begin_session();
    }

    pub fn set_config(&mut self, config: Option<Arc<AacConfig>>) {
        if let Some(config) = &config {
            self.timeline.set_clock_rate(config.sample_rate);
        }
        self.config = config;
    }

    pub fn config(&self) -> Option<Arc<AacConfig>> {
        self.config.clone()
    }

    pub fn publish(&mut self, mut frame: AacFrame, now: Instant) {
        self.timeline.set_clock_rate(frame.config.sample_rate);
        frame.timestamp = self.timeline.place(frame.timestamp, now);
        let frame = Arc::new(frame);
        if self.recent.len() == RECENT_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back(frame.clone());
        // An error only means that nobody is reading now.
        let _ = self.live.send(frame);
    }

    /// The recent access units, then the live ones, with neither a gap nor a repeat.
    pub fn subscribe(&self) -> (Vec<Arc<AacFrame>>, broadcast::Receiver<Arc<AacFrame>>) {
        (self.recent.iter().cloned().collect(), self.live.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::SystemTime;

    #[test]
    fn a_reader_gets_recent_frames_then_live_ones() {
        let config = Arc::new(AacConfig::parse(&[0x14, 0x08]).expect("config"));
        let frame = |timestamp| AacFrame { timestamp, data: Bytes::from_static(&[1]), config: config.clone(), captured_at: SystemTime::now() };
        let mut feed = AacFeed::default();
        feed.set_config(Some(config.clone()));
        let now = Instant::now();
        for i in 0..(RECENT_FRAMES as u64 + 2) {
            feed.publish(frame(i * 1024), now);
        }
        let (recent, mut live) = feed.subscribe();
        assert_eq!(recent.len(), RECENT_FRAMES, "bounded");
        assert_eq!(recent[0].timestamp, 2 * 1024, "the oldest went first");
        feed.publish(frame(9_999_999), now);
        assert_eq!(live.try_recv().map(|f| f.timestamp).ok(), Some(9_999_999));
    }
}
