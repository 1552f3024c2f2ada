//! What sees the viewer's RTCP as it arrives, each packet of a compound one in turn: what
//! Lookout notices (keyframe requests, receiver reports, that the viewer is there) and what it
//! answers (NACKs, with retransmissions that leave towards the viewer).

use rtc::interceptor::{StreamInfo, TaggedPacket};
use std::collections::VecDeque;
use std::time::Instant;

pub trait RtcpObserver: Send + Sync + 'static {
    /// One RTCP packet from the viewer, received at `now`. Packets pushed to `replies` leave
    /// towards the viewer.
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, now: Instant, replies: &mut VecDeque<TaggedPacket>);

    /// A stream Lookout sends on this connection (the video, the audio when there is some).
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
}

/// Two observers as one: each packet is shown to the first, then the second.
impl<A: RtcpObserver, B: RtcpObserver> RtcpObserver for (A, B) {
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, now: Instant, replies: &mut VecDeque<TaggedPacket>) {
        self.0.observe(packet, now, replies);
        self.1.observe(packet, now, replies);
    }
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.0.bind_local_stream(info);
        self.1.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_local_stream(info);
        self.1.unbind_local_stream(info);
    }
}

/// Several observers as one (a wall's video tracks each have theirs): each is shown every
/// packet in turn.
impl<T: RtcpObserver> RtcpObserver for Vec<T> {
    fn observe(&mut self, packet: &dyn rtc::rtcp::packet::Packet, now: Instant, replies: &mut VecDeque<TaggedPacket>) {
        self.iter_mut().for_each(|observer| observer.observe(packet, now, replies));
    }
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.iter_mut().for_each(|observer| observer.bind_local_stream(info));
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.iter_mut().for_each(|observer| observer.unbind_local_stream(info));
    }
}

/// Whether a stream bound on a connection is its video (an audio stream binds too).
pub fn is_video(info: &StreamInfo) -> bool {
    info.mime_type.to_ascii_lowercase().starts_with("video/")
}
