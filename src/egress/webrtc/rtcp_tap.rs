//! An interceptor that shows the viewer's RTCP to an observer on its way in and passes every
//! packet on unchanged: for what Lookout notices (keyframe requests, receiver reports) and
//! what it answers (NACKs, with retransmissions that leave towards the viewer). Read inside the chain rather than from the track's RTCP events: those reach the
//! application only when an interceptor marks them, and compound RTCP is routed by its first
//! sub-packet's SSRC, so a packet behind a receiver report could be lost on the way.

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
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

/// Two observers in one stage of the chain. Every stage moves every packet, media included,
/// through its queues (a sixth of the viewers' CPU went to that chain at 100 viewers), so the
/// observers that only watch share one.
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

/// Whether a stream bound on a connection is its video (an audio stream binds too).
pub fn is_video(info: &StreamInfo) -> bool {
    info.mime_type.to_ascii_lowercase().starts_with("video/")
}

pub struct RtcpTap<O> {
    observer: O,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<O: RtcpObserver> RtcpTap<O> {
    pub fn new(observer: O) -> Self {
        Self { observer, read_queue: VecDeque::new(), write_queue: VecDeque::new() }
    }
}

impl<O: RtcpObserver> Protocol<TaggedPacket, TaggedPacket, ()> for RtcpTap<O> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                self.observer.observe(packet.as_ref(), msg.now, &mut self.write_queue);
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

impl<O: RtcpObserver> Interceptor for RtcpTap<O> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.observer.bind_local_stream(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.observer.unbind_local_stream(info);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
