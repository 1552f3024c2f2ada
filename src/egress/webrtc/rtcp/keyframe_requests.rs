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

/// Notes PLI and FIR for one video stream.
pub struct KeyframeRequestWatcher {
    ssrc: u32,
    requests: Arc<KeyframeRequests>,
}

impl KeyframeRequestWatcher {
    /// Watches for requests of a keyframe of the video stream `ssrc`.
    pub fn new(ssrc: u32, requests: Arc<KeyframeRequests>) -> Self {
        Self { ssrc, requests }
    }

    fn asks_for_this_stream(&self, packet: &dyn rtc::rtcp::packet::Packet) -> bool {
        if let Some(pli) = packet.as_any().downcast_ref::<PictureLossIndication>() {
            return pli.media_ssrc == self.ssrc;
        }
        packet.as_any().downcast_ref::<FullIntraRequest>().is_some_and(|fir| fir.fir.iter().any(|entry| entry.ssrc == self.ssrc))
    }
}

impl RtcpObserver for KeyframeRequestWatcher {
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, _now: Instant, _replies: &mut VecDeque<TaggedPacket>) {
        if self.asks_for_this_stream(packet) {
            self.requests.received.fetch_add(1, Ordering::Relaxed);
            self.requests.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry;

    #[test]
    fn only_requests_for_its_own_stream_count() {
        let requests = Arc::new(KeyframeRequests::default());
        let mut watcher = KeyframeRequestWatcher::new(7, requests.clone());
        let mut replies = VecDeque::new();
        let now = Instant::now();
        watcher.observe(&PictureLossIndication { sender_ssrc: 1, media_ssrc: 8 }, now, &mut replies);
        assert_eq!(requests.received(), 0, "another tile's picture");
        watcher.observe(&PictureLossIndication { sender_ssrc: 1, media_ssrc: 7 }, now, &mut replies);
        let fir = FullIntraRequest { sender_ssrc: 1, media_ssrc: 0, fir: vec![FirEntry { ssrc: 9, sequence_number: 1 }, FirEntry { ssrc: 7, sequence_number: 1 }] };
        watcher.observe(&fir, now, &mut replies);
        assert_eq!(requests.received(), 2);
    }
}
