//! What the WebRTC viewers of one path were sent, added up over every session, ended ones
//! included, so that the metrics' counters only grow; how long each waited for its first
//! frame, and the round trip and loss of every receiver report, in the buckets of histograms.

use super::experience::FIRST_FRAME_BUCKETS;
use super::video_track::TrackStats;
use crate::egress::webrtc::rtcp::link_quality::ReportedLink;
use crate::histogram::Histogram;

#[derive(Debug, Clone, PartialEq)]
pub struct ViewerTotals {
    pub sessions: u64,
    pub frames_sent: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub nacks_received: u64,
    pub packets_resent: u64,
    pub keyframe_requests: u64,
    pub layer_switches: u64,
    /// Sessions by how long they waited for their first frame, in seconds.
    pub first_frames: Histogram,
    pub link: ReportedLink,
}

impl Default for ViewerTotals {
    fn default() -> Self {
        Self {
            sessions: 0,
            frames_sent: 0,
            packets_sent: 0,
            bytes_sent: 0,
            nacks_received: 0,
            packets_resent: 0,
            keyframe_requests: 0,
            layer_switches: 0,
            first_frames: Histogram::new(FIRST_FRAME_BUCKETS),
            link: ReportedLink::default(),
        }
    }
}

impl ViewerTotals {
    /// Adds what one track of a session sent of the path and, when they go with this path, the
    /// connection's own figures (`link`: its receiver reports; and the NACKs it answered).
    pub fn add(&mut self, stats: &TrackStats, link: Option<&ReportedLink>) {
        self.sessions += 1;
        self.frames_sent += stats.frames_sent;
        self.packets_sent += stats.packets_sent;
        self.bytes_sent += stats.bytes_sent;
        if link.is_some() {
            self.nacks_received += stats.nack.nacks_received;
            self.packets_resent += stats.nack.packets_resent;
        }
        self.keyframe_requests += stats.keyframe_requests;
        self.layer_switches += stats.layer_switches;
        if let Some(ms) = stats.first_frame_ms {
            self.first_frames.observe(ms as f64 / 1000.0);
        }
        if let Some(link) = link {
            self.link.add(link);
        }
    }

    /// Adds totals made elsewhere (a wall's tiles that showed the path before).
    pub fn merge(&mut self, other: &ViewerTotals) {
        self.sessions += other.sessions;
        self.frames_sent += other.frames_sent;
        self.packets_sent += other.packets_sent;
        self.bytes_sent += other.bytes_sent;
        self.nacks_received += other.nacks_received;
        self.packets_resent += other.packets_resent;
        self.keyframe_requests += other.keyframe_requests;
        self.layer_switches += other.layer_switches;
        self.first_frames.add(&other.first_frames);
        self.link.add(&other.link);
    }
}
