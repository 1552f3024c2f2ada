//! What the WebRTC viewers of one path were sent, added up over every session, ended ones
//! included, so that the metrics' counters only grow; and how long each waited for its first
//! frame, in the buckets of a histogram.

use super::viewer_session::SessionStats;

/// Upper bounds of the first-frame histogram's buckets, in seconds (`+Inf` follows).
pub const FIRST_FRAME_BUCKETS: [f64; 9] = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewerTotals {
    pub sessions: u64,
    pub frames_sent: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub nacks_received: u64,
    pub packets_resent: u64,
    pub keyframe_requests: u64,
    pub layer_switches: u64,
    pub first_frames: FirstFrames,
}

/// Sessions by how long they waited for their first frame: one count per bucket of
/// `FIRST_FRAME_BUCKETS`, and one past the last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirstFrames {
    pub counts: [u64; FIRST_FRAME_BUCKETS.len() + 1],
    pub sum_secs: f64,
    pub count: u64,
}

impl ViewerTotals {
    /// Adds one session's figures.
    pub fn add(&mut self, stats: &SessionStats) {
        self.sessions += 1;
        self.frames_sent += stats.frames_sent;
        self.packets_sent += stats.packets_sent;
        self.bytes_sent += stats.bytes_sent;
        self.nacks_received += stats.nack.nacks_received;
        self.packets_resent += stats.nack.packets_resent;
        self.keyframe_requests += stats.keyframe_requests;
        self.layer_switches += stats.layer_switches;
        if let Some(ms) = stats.first_frame_ms {
            let secs = ms as f64 / 1000.0;
            let bucket = FIRST_FRAME_BUCKETS.iter().position(|&bound| secs <= bound).unwrap_or(FIRST_FRAME_BUCKETS.len());
            self.first_frames.counts[bucket] += 1;
            self.first_frames.sum_secs += secs;
            self.first_frames.count += 1;
        }
    }
}
