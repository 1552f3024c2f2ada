//! A viewer's peer on Lookout's own endpoint: the offer/answer exchange (either side may offer)
//! and the connection it sets up.

use crate::egress::webrtc::rtp::playout_delay::{PlayoutDelay, PlayoutDelayStamp};
use crate::egress::webrtc::transport::connection::Connection;
use crate::egress::webrtc::transport::dtls_srtp::DtlsRole;
use crate::egress::webrtc::negotiation::sdp::{self, DtlsSetup, LocalParameters, RemoteDescription, RemoteKind, SdpError};
use crate::egress::webrtc::transport::viewer_transport::{RemoteTransport, TransportError};
use crate::media::AudioCodec;
use rtc::interceptor::StreamInfo;
use std::sync::Arc;
use parking_lot::Mutex;

pub struct Peer {
    pub connection: Arc<Connection>,
    local: LocalParameters,
    /// The limits put on the video for the viewer's jitter buffer, where it takes them.
    playout_delay: Option<PlayoutDelay>,
    /// The viewer's description, once it arrived.
    remote: Mutex<Option<RemoteDescription>>,
}

#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error("the viewer's description was already applied")]
    AlreadyNegotiated,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl Peer {
    pub fn new(connection: Arc<Connection>, local: LocalParameters, playout_delay: Option<PlayoutDelay>) -> Self {
        Self { connection, local, playout_delay, remote: Mutex::new(None) }
    }

    /// The SSRCs of the video tracks Lookout sends, in order.
    pub fn video_ssrcs(&self) -> Vec<u32> {
        self.local.videos.iter().map(|video| video.ssrc).collect()
    }

    /// The SSRC of the audio Lookout sends, when the path has sound.
    pub fn audio_ssrc(&self) -> Option<u32> {
        self.local.audio.as_ref().map(|audio| audio.ssrc)
    }

    /// Lookout's offer (the /ws flow).
    pub fn create_offer(&self) -> String {
        sdp::write_offer(&self.local)
    }

    /// The viewer's answer to `create_offer`.
    pub fn accept_answer(&self, answer: &str) -> Result<(), NegotiationError> {
        self.apply(sdp::parse_remote(answer, RemoteKind::Answer)?)
    }

    /// Answers the viewer's offer (the WHEP flow).
    pub fn answer_offer(&self, offer: &str) -> Result<String, NegotiationError> {
        let offer = sdp::parse_remote(offer, RemoteKind::Offer)?;
        let answer = sdp::write_answer(&offer, &self.local)?;
        self.apply(offer)?;
        Ok(answer)
    }

    /// The payload type the viewer takes video track `track` in, once negotiated.
    pub fn video_payload_type(&self, track: usize) -> Option<u8> {
        self.remote.lock().as_ref().and_then(|remote| remote.videos().nth(track)).map(|video| video.h264.payload_type)
    }

    /// The payload type the viewer takes audio in `codec` in, if it does.
    pub fn audio_payload_type(&self, codec: AudioCodec) -> Option<u8> {
        self.remote.lock().as_ref().and_then(|remote| remote.audio(codec)).map(|audio| audio.payload_type)
    }

    fn apply(&self, remote: RemoteDescription) -> Result<(), NegotiationError> {
        let mut stored = self.remote.lock();
        if stored.is_some() {
            return Err(NegotiationError::AlreadyNegotiated);
        }
        let answered = remote.videos().count();
        if remote.kind == RemoteKind::Answer && answered != self.local.videos.len() {
            return Err(NegotiationError::Sdp(SdpError::VideoTracksAnswered { offered: self.local.videos.len(), answered }));
        }
        // The viewer's setup says which side it takes; Lookout takes the other.
        let dtls_role = match remote.setup {
            DtlsSetup::Passive => DtlsRole::Client,
            DtlsSetup::Active | DtlsSetup::ActPass => DtlsRole::Server,
        };
        let transport = RemoteTransport {
            ufrag: remote.ufrag.clone(),
            password: remote.password.clone(),
            candidates: remote.candidates.clone(),
            fingerprint: remote.fingerprint.clone(),
            dtls_role,
        };
        // Lookout offered (the viewer answers): with full ICE it is the controlling agent.
        self.connection.set_remote(&transport, remote.kind == RemoteKind::Answer)?;
        let first = &remote.video;
        // One sequence space for the whole transport: stamped on audio too if it takes them.
        if let (true, Some(id)) = (first.h264.feedback.transport_cc, first.extensions.transport_cc) {
            self.connection.enable_twcc(id);
        }
        if let (Some(delay), Some(id)) = (self.playout_delay, first.extensions.playout_delay) {
            self.connection.enable_playout_delay(PlayoutDelayStamp::new(delay, id, self.video_ssrcs()));
        }
        // The retransmitter answers NACKs on these streams, over RTX when the viewer took it.
        for (local, video) in self.local.videos.iter().zip(remote.videos()) {
            let h264 = &video.h264;
            self.connection.bind_local_stream(&StreamInfo {
                ssrc: local.ssrc,
                ssrc_rtx: h264.rtx_payload_type.map(|_| local.rtx_ssrc),
                payload_type: h264.payload_type,
                payload_type_rtx: h264.rtx_payload_type,
                mime_type: "video/H264".to_owned(),
                clock_rate: crate::media::VIDEO_CLOCK_RATE,
                ..Default::default()
            });
        }
        let audio = self.local.audio.as_ref().and_then(|local| Some((local, remote.audio(local.codec)?)));
        if let Some((local, audio)) = audio {
            // Sender reports map the audio to the same capture clock as the video.
            self.connection.bind_local_stream(&StreamInfo {
                ssrc: local.ssrc,
                payload_type: audio.payload_type,
                mime_type: local.codec.mime_type().to_owned(),
                clock_rate: local.codec.clock_rate(),
                ..Default::default()
            });
        }
        *stored = Some(remote);
        Ok(())
    }
}
