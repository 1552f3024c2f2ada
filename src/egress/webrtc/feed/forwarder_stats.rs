//! What a viewer's video session counts, and the layer it gets: in its session's stats and
//! told to the page.

use crate::egress::webrtc::feed::layer_choice::LayerMode;
use crate::egress::webrtc::feed::layer_ladder::rung_names;
use crate::egress::webrtc::rtcp::link_quality::{LinkQuality, LinkQualitySnapshot};
use crate::egress::webrtc::rtcp::retransmitter::{NackStats, NackStatsSnapshot};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Default, Debug)]
pub struct ForwarderStats {
    pub frames_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub frames_skipped: AtomicU64,
    /// Frames left out on purpose: the viewer is on keyframes only.
    pub frames_withheld: AtomicU64,
    pub keyframes_resent: AtomicU64,
    pub layer_switches: AtomicU64,
    /// From the session's start to its first frame sent.
    pub first_frame_after: OnceLock<Duration>,
}

#[derive(Serialize, Clone)]
pub struct ForwarderStatsSnapshot {
    pub frames_sent: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub frames_skipped: u64,
    pub frames_withheld: u64,
    pub keyframe_requests: u64,
    pub keyframes_resent: u64,
    pub layer_switches: u64,
    /// Milliseconds from the session's start to its first frame sent; none before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_frame_ms: Option<u64>,
    #[serde(flatten)]
    pub nack: NackStatsSnapshot,
    #[serde(flatten)]
    pub link: LinkQualitySnapshot,
    pub layer: LayerStatus,
}

impl ForwarderStats {
    /// `keyframe_requests`: those the viewer sent for what these stats count.
    pub fn snapshot(&self, keyframe_requests: u64, nack: &NackStats, link: &LinkQuality, layer: LayerStatus) -> ForwarderStatsSnapshot {
        ForwarderStatsSnapshot {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            frames_skipped: self.frames_skipped.load(Ordering::Relaxed),
            frames_withheld: self.frames_withheld.load(Ordering::Relaxed),
            keyframe_requests,
            keyframes_resent: self.keyframes_resent.load(Ordering::Relaxed),
            layer_switches: self.layer_switches.load(Ordering::Relaxed),
            first_frame_ms: self.first_frame_after.get().map(|after| after.as_millis() as u64),
            nack: nack.snapshot(),
            link: link.snapshot(),
            layer,
        }
    }
}

/// The layer a viewer gets and why: in its session's stats and told to the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerStatus {
    pub layer: String,
    /// The path's layers, best first, and last `keyframes` (the lowest layer's keyframes alone).
    pub layers: Vec<String>,
    pub mode: LayerMode,
    pub reason: String,
}

impl LayerStatus {
    pub fn initial(layer_count: usize) -> Self {
        let reason = if layer_count > 1 { "the best layer, to start" } else { "the path's only layer" };
        let layers = rung_names(layer_count);
        Self { layer: layers[0].clone(), layers, mode: LayerMode::Auto, reason: reason.to_owned() }
    }
}
