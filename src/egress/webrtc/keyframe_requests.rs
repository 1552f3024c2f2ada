//! Notices the viewer's keyframe requests (RTCP PLI and FIR) inside the PeerConnection's
//! interceptor chain and tells the forwarder, passing every packet on unchanged.
//!
//! Read here rather than from the track's RTCP events: those reach the application only when
//! an interceptor marks them, and compound RTCP is routed by its first sub-packet's SSRC, so a
//! PLI behind a receiver report could be lost on the way.

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
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

pub struct KeyframeRequestWatcher {
    requests: Arc<KeyframeRequests>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl KeyframeRequestWatcher {
    pub fn new(requests: Arc<KeyframeRequests>) -> Self {
        Self { requests, read_queue: VecDeque::new(), write_queue: VecDeque::new() }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestWatcher {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests = packets
                .iter()
                .filter(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
                .count();
            if requests > 0 {
                self.requests.received.fetch_add(requests as u64, Ordering::Relaxed);
                self.requests.notify.notify_one();
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestWatcher {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
