//! Notices the viewer's keyframe requests (RTCP PLI and FIR) and tells the forwarder.

use crate::egress::webrtc::rtcp::observer::RtcpObserver;
use rtc::interceptor::TaggedPacket;
use std::collections::VecDeque;
use std::time::Instant;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Shared between the interceptor (which signals) and the forwarder (which waits).
#[derive(Default)]
pub struct KeyframeRequests {
    notify: Notify,
    received: AtomicU64,
}

impl KeyframeRequests {
    /// Resolves at the next request (or at once if one came since the last wait).
    pub async fn next(&self) {
        self.notify.notified().await;
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Notes PLI and FIR as an `RtcpTap` shows them.
pub struct KeyframeRequestWatcher {
    requests: Arc<KeyframeRequests>,
}

impl KeyframeRequestWatcher {
    pub fn new(requests: Arc<KeyframeRequests>) -> Self {
        Self { requests }
    }
}

impl RtcpObserver for KeyframeRequestWatcher {
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, _now: Instant, _replies: &mut VecDeque<TaggedPacket>) {
        if packet.as_any().is::<PictureLossIndication>() || packet.as_any().is::<FullIntraRequest>() {
            self.requests.received.fetch_add(1, Ordering::Relaxed);
            self.requests.notify.notify_one();
        }
    }
}
