//! A camera's audio, from retina to the hub: which track Lookout takes, and how its frames
//! reach the hub, always as they came (the hub makes Opus from G.711 or AAC for the readers
//! that need it). G.711 and AAC come in the camera's main session; Opus over an RTSP session
//! of its own.
//!
//! Why a session of its own: retina 0.4 has no Opus depacketizer, and a session with a track
//! it cannot depacketize cannot be demuxed at all. A session that sets up only the Opus track
//! is read as plain RTP packets instead, and an Opus RTP payload is exactly one Opus packet
//! (RFC 7587), so there is nothing to depacketize. It costs the camera a second session.

use super::camera_clock::CameraClock;
use super::retina_session::{on_rtcp, retina_transport, session_options};
use crate::config::{RtspSource, RtspTransport};
use crate::media::aac_to_opus::AacToOpus;
use crate::media::opus::OPUS_CLOCK_RATE;
use crate::media::{AacConfig, AacFrame, AudioCodec, AudioFrame, SourceAudio};
use crate::stream::Stream;
use anyhow::{anyhow, Context};
use bytes::Bytes;
use futures::StreamExt;
use retina::client::{PacketItem, PlayOptions, Session, SetupOptions};
use retina::codec::ParametersRef;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long the Opus session's DESCRIBE, SETUP and PLAY may take.
const OPUS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An Opus session that sends nothing this long is dead.
const OPUS_SILENCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A lost Opus session is tried again this long after, for as long as the video plays.
const OPUS_RETRY: Duration = Duration::from_secs(2);

/// The camera's audio track Lookout takes.
pub struct CameraAudioTrack {
    /// Its place in the camera's SDP.
    pub index: usize,
    kind: TrackKind,
}

enum TrackKind {
    G711(AudioCodec),
    Aac(Arc<AacConfig>),
    Opus,
}

impl CameraAudioTrack {
    /// The first audio track of the camera's that viewers can be given.
    pub fn choose(streams: &[retina::client::Stream]) -> Option<Self> {
        streams.iter().enumerate().find_map(|(index, stream)| {
            let kind = match (stream.media(), stream.encoding_name().to_ascii_lowercase().as_str()) {
                ("audio", "pcmu") => TrackKind::G711(AudioCodec::Pcmu),
                ("audio", "pcma") => TrackKind::G711(AudioCodec::Pcma),
                ("audio", "opus") => TrackKind::Opus,
                ("audio", "mpeg4-generic") => match aac_track(stream) {
                    Ok(config) => TrackKind::Aac(Arc::new(config)),
                    Err(error) => {
                        tracing::info!("ignoring the camera's AAC track: {error:#}");
                        return None;
                    }
                },
                _ => return None,
            };
            Some(Self { index, kind })
        })
    }

    /// The audio the hub gets.
    pub fn source_audio(&self) -> SourceAudio {
        match &self.kind {
            TrackKind::G711(codec) => SourceAudio::Rtp(*codec),
            TrackKind::Opus => SourceAudio::Rtp(AudioCodec::Opus),
            TrackKind::Aac(config) => SourceAudio::Aac(config.clone()),
        }
    }

    /// Its index when the camera's main session sets it up (all but Opus).
    pub fn main_session_index(&self) -> Option<usize> {
        (!matches!(self.kind, TrackKind::Opus)).then_some(self.index)
    }
}

/// The config of an AAC track, from the AudioSpecificConfig in its SDP; only one that Opus
/// can be made from, as WebRTC viewers are offered Opus for it.
fn aac_track(stream: &retina::client::Stream) -> anyhow::Result<AacConfig> {
    let Some(ParametersRef::Audio(parameters)) = stream.parameters() else {
        return Err(anyhow!("retina took no AAC parameters from the SDP"));
    };
    let config = AacConfig::parse(parameters.extra_data()).context("the AudioSpecificConfig in the SDP")?;
    let transcoder = AacToOpus::new(parameters.extra_data())?;
    let (sample_rate, encoder_rate) = transcoder.rates();
    tracing::info!("the camera's AAC at {sample_rate} Hz goes to HLS as it came, and to WebRTC as Opus at {encoder_rate} Hz, made while a viewer listens");
    Ok(config)
}

/// A camera's Opus, taken over a session of its own (retina depacketizes no Opus), ended with
/// the main one. It is opened once the main session delivers video: a camera asked to set up
/// a second session while its first is still starting may stall the first (GStreamer's RTSP
/// server then builds a second pipeline, and the first one's video stopped for seconds).
enum OpusSession {
    Waiting { stream: Arc<Stream>, source: RtspSource, transport: RtspTransport },
    Running(tokio::task::JoinHandle<()>),
}

/// The audio of one camera session.
pub struct CameraAudio {
    track: Option<CameraAudioTrack>,
    opus_session: Option<OpusSession>,
}

impl CameraAudio {
    /// Starts taking the camera's audio, if it has some that viewers can be given.
    pub fn start(stream: &Arc<Stream>, source: &RtspSource, transport: RtspTransport, track: Option<CameraAudioTrack>) -> Self {
        let opus_session = matches!(track, Some(CameraAudioTrack { kind: TrackKind::Opus, .. }))
            .then(|| OpusSession::Waiting { stream: stream.clone(), source: source.clone(), transport });
        Self { track, opus_session }
    }

    /// The main session delivered video: the camera is ready for the Opus session.
    pub fn on_video(&mut self) {
        if let Some(OpusSession::Waiting { stream, source, transport }) = self.opus_session.take() {
            self.opus_session = Some(OpusSession::Running(tokio::spawn(run_opus_session(stream, source, transport))));
        }
    }

    /// Hands on one audio frame of the main session.
    pub fn on_frame(&self, stream: &Stream, frame: &retina::codec::AudioFrame, clock: &mut CameraClock) {
        let Some(track) = &self.track else { return };
        if Some(frame.stream_id()) != track.main_session_index() {
            return;
        }
        let timestamp = frame.timestamp();
        let clock_rate = timestamp.clock_rate().get();
        let captured_at = clock.capture_time_or_arrival(timestamp.timestamp(), clock_rate, SystemTime::now());
        let config = match &track.kind {
            TrackKind::G711(codec) => {
                let timestamp = timestamp.elapsed().max(0) as u64;
                stream.publish_audio(audio_frame(*codec, timestamp, Bytes::copy_from_slice(frame.data()), captured_at));
                return;
            }
            TrackKind::Aac(config) => config,
            TrackKind::Opus => return,
        };
        // The RTP clock may be a multiple of the sample rate (RFC 3640 §3.2.1).
        let samples = i128::from(timestamp.elapsed()) * i128::from(config.sample_rate) / i128::from(clock_rate);
        let timestamp = u64::try_from(samples.max(0)).unwrap_or(u64::MAX);
        stream.publish_aac(AacFrame { timestamp, data: Bytes::copy_from_slice(frame.data()), config: config.clone(), captured_at, arrived_at: Instant::now() });
    }
}

impl Drop for CameraAudio {
    fn drop(&mut self) {
        if let Some(OpusSession::Running(task)) = &self.opus_session {
            task.abort();
        }
    }
}

fn audio_frame(codec: AudioCodec, timestamp: u64, data: Bytes, captured_at: SystemTime) -> AudioFrame {
    AudioFrame { timestamp, codec, data, captured_at, arrived_at: Instant::now() }
}

/// Keeps the camera's Opus coming over a session of its own until aborted; failures are
/// logged when they change.
async fn run_opus_session(stream: Arc<Stream>, source: RtspSource, transport: RtspTransport) {
    let mut last_error = None;
    loop {
        let error = match play_opus(&stream, &source, transport).await {
            Ok(()) => "the camera ended the Opus session".to_owned(),
            Err(error) => format!("{error:#}"),
        };
        if last_error.as_ref() != Some(&error) {
            tracing::warn!(path = stream.name(), "camera audio (Opus, own session): {error}; retrying every {} s", OPUS_RETRY.as_secs());
            last_error = Some(error);
        }
        tokio::time::sleep(OPUS_RETRY).await;
    }
}

async fn play_opus(stream: &Stream, source: &RtspSource, transport: RtspTransport) -> anyhow::Result<()> {
    let options = session_options(source);
    let connect = async {
        let mut session = Session::describe(source.url.clone(), options).await?;
        let index = session
            .streams()
            .iter()
            .position(|s| s.media() == "audio" && s.encoding_name().eq_ignore_ascii_case("opus"))
            .context("the camera's SDP has no Opus track this time")?;
        let clock_rate = session.streams()[index].clock_rate_hz();
        anyhow::ensure!(clock_rate > 0, "the camera's Opus track has a clock rate of 0");
        session.setup(index, SetupOptions::default().transport(retina_transport(transport))).await?;
        anyhow::Ok((session.play(PlayOptions::default()).await?, clock_rate))
    };
    let (mut session, clock_rate) = tokio::time::timeout(OPUS_CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| anyhow!("no answer within {} s", OPUS_CONNECT_TIMEOUT.as_secs()))??;
    tracing::info!(path = stream.name(), "camera audio: Opus over its own session");
    let mut clock = CameraClock::default();
    loop {
        let item = tokio::time::timeout(OPUS_SILENCE_TIMEOUT, session.next())
            .await
            .map_err(|_| anyhow!("no audio for {} s", OPUS_SILENCE_TIMEOUT.as_secs()))?;
        match item {
            None => return Ok(()),
            Some(Err(error)) => return Err(error).context("reading the Opus session"),
            Some(Ok(PacketItem::Rtcp(rtcp))) => on_rtcp(stream, "audio", &rtcp, &mut clock),
            Some(Ok(PacketItem::Rtp(packet))) => {
                let timestamp = packet.timestamp();
                let captured_at = clock.capture_time_or_arrival(timestamp.timestamp(), clock_rate, SystemTime::now());
                // Opus's RTP clock is 48 kHz (RFC 7587); a camera that says otherwise is believed.
                let timestamp = (i128::from(timestamp.elapsed().max(0)) * i128::from(OPUS_CLOCK_RATE) / i128::from(clock_rate)) as u64;
                stream.publish_audio(audio_frame(AudioCodec::Opus, timestamp, Bytes::copy_from_slice(packet.payload()), captured_at));
            }
            Some(Ok(_)) => {}
        }
    }
}
