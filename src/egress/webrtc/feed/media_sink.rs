//! Where a forwarder's RTP goes: one of the viewer's tracks on its connection, which encrypts
//! and sends what the forwarder made.

use crate::egress::webrtc::negotiation::peer::Peer;
use crate::media::AudioCodec;
use rtc::rtp::packet::Packet;
use std::sync::Arc;

pub struct MediaSink {
    pub peer: Arc<Peer>,
    pub track: SinkTrack,
}

/// Which of the viewer's tracks a sink writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTrack {
    /// The video track of this index (one for a path, one per tile of a wall).
    Video(usize),
    /// The audio, in this codec.
    Audio(AudioCodec),
}

#[derive(Debug)]
pub struct SinkClosed;

impl MediaSink {
    /// The payload type negotiated for this track; `None` (and a log line) when the viewer
    /// took none (a WHEP player's offer without audio).
    pub fn payload_type(&self) -> Option<u8> {
        let payload_type = match self.track {
            SinkTrack::Video(index) => self.peer.video_payload_type(index),
            SinkTrack::Audio(codec) => self.peer.audio_payload_type(codec),
        };
        if payload_type.is_none() {
            let kind = if matches!(self.track, SinkTrack::Audio(_)) { "audio" } else { "video" };
            tracing::debug!("no {kind} codec negotiated; not sending {kind}");
        }
        payload_type
    }

    /// Hands packets to the viewer's connection, all at once.
    pub fn write_rtp(&self, packets: impl IntoIterator<Item = Packet>) -> Result<(), SinkClosed> {
        self.peer.connection.send_rtp(packets).map_err(|_| SinkClosed)
    }
}
