//! An audio feed of the hub that keeps its recent frames: a muxer that starts at the cached
//! keyframe (HLS) reads the frames from there, then the live ones. Used for a path's audio as
//! the source gives it (G.711 or Opus; a camera's AAC) and for the Opus made from it.

use super::timeline::Timeline;
use crate::media::{AacFrame, AudioFrame};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast;

/// A frame the feed carries: it has a timestamp on a clock of some rate, which the feed keeps
/// continuous across source sessions.
pub(super) trait TimedFrame {
    fn clock_rate(&self) -> u32;
    fn timestamp_mut(&mut self) -> &mut u64;
}

impl TimedFrame for AacFrame {
    fn clock_rate(&self) -> u32 {
        self.config.sample_rate
    }

    fn timestamp_mut(&mut self) -> &mut u64 {
        &mut self.timestamp
    }
}

impl TimedFrame for AudioFrame {
    fn clock_rate(&self) -> u32 {
        self.codec.clock_rate()
    }

    fn timestamp_mut(&mut self) -> &mut u64 {
        &mut self.timestamp
    }
}

pub(super) struct RecentFeed<F> {
    recent: VecDeque<Arc<F>>,
    /// How many frames `recent` keeps.
    keep: usize,
    live: broadcast::Sender<Arc<F>>,
    /// How many frames a reader may fall behind.
    queue: usize,
    timeline: Timeline,
}

impl<F: TimedFrame> RecentFeed<F> {
    /// Keeps the last `keep` frames; a reader may fall `queue` frames behind before it loses
    /// some.
    pub fn new(keep: usize, queue: usize, clock_rate: u32) -> Self {
        Self { recent: VecDeque::with_capacity(keep), keep, live: broadcast::channel(queue).0, queue, timeline: Timeline::new(clock_rate) }
    }

    pub fn begin_session(&mut self) {
        self.timeline.begin_session();
    }

    /// Places the frame on the continuous timeline, keeps it and hands it to every reader
    /// without waiting for any of them.
    pub fn publish(&mut self, mut frame: F, now: Instant) {
        self.timeline.set_clock_rate(frame.clock_rate());
        let placed = self.timeline.place(*frame.timestamp_mut(), now);
        *frame.timestamp_mut() = placed;
        let frame = Arc::new(frame);
        if self.recent.len() == self.keep {
            self.recent.pop_front();
        }
        self.recent.push_back(frame.clone());
        // An error only means that nobody is reading now.
        let _ = self.live.send(frame);
    }

    /// The recent frames, then the live ones, with neither a gap nor a repeat.
    pub fn subscribe(&self) -> (Vec<Arc<F>>, broadcast::Receiver<Arc<F>>) {
        (self.recent.iter().cloned().collect(), self.live.subscribe())
    }

    /// How many readers there are now.
    pub fn reader_count(&self) -> usize {
        self.live.receiver_count()
    }

    /// Drops the recent frames: what comes next does not continue them.
    pub fn forget_recent(&mut self) {
        self.recent.clear();
    }

    /// Ends every reader: each gets what was sent before, then the end.
    pub fn close(&mut self) {
        self.live = broadcast::channel(self.queue).0;
    }

    /// The live frames only.
    pub fn subscribe_live(&self) -> broadcast::Receiver<Arc<F>> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::AacConfig;
    use bytes::Bytes;
    use std::time::SystemTime;

    #[test]
    fn a_reader_gets_recent_frames_then_live_ones() {
        let config = Arc::new(AacConfig::parse(&[0x14, 0x08]).expect("config"));
        let frame = |timestamp| AacFrame { timestamp, data: Bytes::from_static(&[1]), config: config.clone(), captured_at: SystemTime::now(), arrived_at: Instant::now() };
        let mut feed = RecentFeed::new(16, 8, 16_000);
        let now = Instant::now();
        for i in 0..18 {
            feed.publish(frame(i * 1024), now);
        }
        let (recent, mut live) = feed.subscribe();
        assert_eq!(recent.len(), 16, "bounded");
        assert_eq!(recent[0].timestamp, 2 * 1024, "the oldest went first");
        feed.publish(frame(9_999_999), now);
        assert_eq!(live.try_recv().map(|f| f.timestamp).ok(), Some(9_999_999));
    }
}
