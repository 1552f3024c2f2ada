//! Feeds one viewer's audio track from its path's audio: G.711 and Opus as the source gives
//! them, Opus made by the hub from AAC (WebRTC carries no AAC); its own SSRC, sequence numbers
//! and timestamps, and the capture-clock pairing its sender reports carry, the same clock as
//! the video's, so the browser keeps the two in sync.

use crate::egress::webrtc::rtcp::sender_reports::AudioClock;
use crate::egress::webrtc::rtp::header::initial_sequence_number;
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use crate::egress::webrtc::feed::track_start;
use crate::media::{AudioCodec, SourceAudio};
use crate::stream::Stream;
use rtc::rtp::{header::Header, packet::Packet};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use crate::egress::webrtc::feed::media_sink::{MediaSink, SinkTrack};

pub struct AudioForwarder {
    pub sink: MediaSink,
    pub ssrc: u32,
    pub stream: Arc<Stream>,
    pub state: watch::Receiver<ConnectionState>,
    pub clock: Arc<AudioClock>,
}

impl AudioForwarder {
    pub async fn run(mut self) {
        if !track_start::connected(&mut self.state).await {
            return;
        }
        let Some(payload_type) = self.sink.payload_type() else { return };
        let SinkTrack::Audio(codec) = self.sink.track else { return };
        let mut audio = self.stream.subscribe_live_audio(codec);
        let mut other_codec_frames = 0u64;
        let mut sequence_number = initial_sequence_number();
        let timestamp_offset: u32 = rand::random();
        loop {
            let frame = tokio::select! {
                received = audio.recv() => match received {
                    Ok(frame) => frame,
                    // Behind: skip ahead; a gap in audio is a click, not a broken picture.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
                changed = self.state.changed() => {
                    if changed.is_err() || self.state.borrow().is_terminal() {
                        return;
                    }
                    continue;
                }
            };
            if frame.codec != codec {
                // The camera came back with other audio than this viewer negotiated.
                other_codec_frames += 1;
                if other_codec_frames == 1 {
                    tracing::debug!(path = self.stream.name(), "audio: the path's audio is {:?} now, this viewer's track {codec:?}; not sending it", frame.codec);
                }
                continue;
            }
            sequence_number = sequence_number.wrapping_add(1);
            let timestamp = (frame.timestamp as u32).wrapping_add(timestamp_offset);
            let header = Header { version: 2, payload_type, sequence_number, timestamp, ssrc: self.ssrc, ..Default::default() };
            self.clock.set(timestamp, frame.captured_at);
            if self.sink.write_rtp([Packet { header, payload: frame.data.clone() }]).is_err() {
                return;
            }
        }
    }
}

/// The codec a viewer is offered for the path's audio: G.711 and Opus as they come; Opus for
/// AAC, made by the hub while someone listens.
pub fn codec_for(audio: &SourceAudio) -> AudioCodec {
    match audio {
        SourceAudio::Rtp(codec) => *codec,
        SourceAudio::Aac(_) => AudioCodec::Opus,
    }
}
