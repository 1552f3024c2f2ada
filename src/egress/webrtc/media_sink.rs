//! Where a forwarder's RTP goes: a track of a webrtc-rs PeerConnection, or a connection of
//! Lookout's own endpoint (see `endpoint`). Either way the forwarder makes the packets; the
//! sink encrypts and sends them.

use super::endpoint::peer::OwnPeer;
use crate::media::AudioCodec;
use super::track_start;
use rtc::rtp::packet::Packet;
use std::sync::Arc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::rtp_transceiver::RtpSender;

pub enum MediaSink {
    Track { track: Arc<TrackLocalStaticRTP>, sender: Arc<dyn RtpSender> },
    /// The video, or with `audio` the audio in that codec.
    Own { peer: Arc<OwnPeer>, audio: Option<AudioCodec> },
}

#[derive(Debug)]
pub struct SinkClosed;

impl MediaSink {
    /// The payload type negotiated for this sink; `None` (and a log line) without one.
    pub async fn payload_type(&self, path: &str, kind: &str) -> Option<u8> {
        match self {
            MediaSink::Track { sender, .. } => track_start::negotiated_payload_type(sender.as_ref(), path, kind).await,
            MediaSink::Own { peer, audio: None } => peer.video_payload_type(),
            MediaSink::Own { peer, audio: Some(codec) } => peer.audio_payload_type(*codec),
        }
    }

    pub async fn write_rtp(&self, packet: Packet) -> Result<(), SinkClosed> {
        match self {
            MediaSink::Track { track, .. } => track.write_rtp(packet).await.map_err(|error| {
                tracing::debug!(%error, "viewer track closed");
                SinkClosed
            }),
            MediaSink::Own { peer, .. } => peer.connection.send_rtp(packet).map_err(|_| SinkClosed),
        }
    }
}
