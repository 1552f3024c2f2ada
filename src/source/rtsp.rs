//! RTSP cameras through retina: one session at a time per path, retried forever.

use super::backoff::Backoff;
use crate::config::{RtspSource, RtspTransport};
use crate::media::h264::{self, NAL_PPS, NAL_SPS};
use crate::media::{Frame, VideoParameters, VIDEO_CLOCK_RATE};
use crate::stream::{PathState, Stream};
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use futures::StreamExt;
use retina::client::{PlayOptions, Session, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use std::sync::Arc;
use super::camera_audio::{CameraAudioTrack, CameraAudio};
use super::camera_clock::CameraClock;
use super::retina_session::{on_rtcp, retina_transport, session_options};
use super::rtsp_relay::{self, KeyframeRequester};
use std::time::{Duration, Instant};

/// How long DESCRIBE, SETUP and PLAY may take together before the camera counts as dead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the TCP connection to the camera may take: a camera that is switched off answers
/// nothing, and a viewer waiting for it should not wait for the whole `CONNECT_TIMEOUT` per try.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A playing camera that sends no video for this long is dead; reconnect.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Over UDP, no video this long after PLAY means the packets cannot reach Lookout (a firewall
/// or NAT on the way): use TCP, which goes wherever the RTSP connection goes.
const UDP_SILENCE_TIMEOUT: Duration = Duration::from_secs(3);
/// Keyframe requests go to the camera at most this often, however many viewers ask.
const MIN_KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// For this long after a live camera is lost, it is retried at least every `QUICK_RETRY`: most
/// outages are a reboot or a network blip, and its viewers, still connected, should get the
/// picture back within a second of its return. Then the backoff grows as for any camera.
const QUICK_RETRY_WINDOW: Duration = Duration::from_secs(60);
const QUICK_RETRY: Duration = Duration::from_millis(500);

/// Why a session ended without an error of the camera's own.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("no video over UDP within {} s of PLAY; using TCP from now on", UDP_SILENCE_TIMEOUT.as_secs())]
    NoUdpMedia,
}

/// Runs the camera of one path until the task is aborted.
pub async fn run(stream: Arc<Stream>, source: RtspSource) {
    let mut backoff = Backoff::default();
    let mut transport = source.transport;
    let mut lost_live_at: Option<Instant> = None;
    loop {
        stream.set_state(PathState::Connecting);
        let outcome = play(&stream, &source, transport).await;
        let error = match outcome {
            Ok(()) => "the camera ended the stream".to_owned(),
            Err(error) => {
                tracing::debug!(path = stream.name(), "camera session error: {error:#}");
                if matches!(error.downcast_ref(), Some(SessionEnd::NoUdpMedia)) {
                    transport = RtspTransport::Tcp;
                    backoff.reset();
                }
                describe_error(&error)
            }
        };
        if stream.state().is_live() {
            lost_live_at = Some(Instant::now());
            backoff.reset();
        }
        let delay = match lost_live_at {
            Some(at) if at.elapsed() < QUICK_RETRY_WINDOW => backoff.next_delay_at_most(QUICK_RETRY),
            _ => backoff.next_delay(),
        };
        tracing::warn!(path = stream.name(), url = %source.url, "camera lost: {error}; retrying in {:.1} s", delay.as_secs_f64());
        stream.set_state(PathState::Retrying { error, retry_in_ms: delay.as_millis() as u64, attempt: backoff.attempt() });
        tokio::time::sleep(delay).await;
    }
}

/// One camera session: connect, then publish frames until it fails.
async fn play(stream: &Arc<Stream>, source: &RtspSource, transport: RtspTransport) -> anyhow::Result<()> {
    let (mut session, tracks) = tokio::time::timeout(CONNECT_TIMEOUT, connect(source, transport))
        .await
        .map_err(|_| anyhow!("timed out after {} s waiting for the camera to answer", CONNECT_TIMEOUT.as_secs()))??;
    let video_index = tracks.video;
    let audio_index = tracks.audio.as_ref().and_then(CameraAudioTrack::main_session_index);
    let source_audio = tracks.audio.as_ref().map(CameraAudioTrack::source_audio);
    let audio_description = source_audio.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string);
    tracing::info!(path = stream.name(), url = %source.url, ?transport, audio = %audio_description, "camera playing");
    stream.begin_source_session();
    stream.set_source_audio(source_audio);
    let mut audio = CameraAudio::start(stream, source, transport, tracks.audio);
    let mut parameters: Option<Arc<VideoParameters>> = None;
    let mut clock = CameraClock::default();
    // The audio's own clock: its sender reports map its RTP timestamps.
    let mut audio_clock = CameraClock::default();
    let mut last_keyframe_request: Option<Instant> = None;
    let mut waiting_for_keyframe = false;
    let mut got_video = false;
    let first_frame_timeout = if transport == RtspTransport::Udp { UDP_SILENCE_TIMEOUT } else { FRAME_TIMEOUT };
    let mut frame_deadline = tokio::time::Instant::now() + first_frame_timeout;
    loop {
        let item = tokio::select! {
            item = tokio::time::timeout_at(frame_deadline, session.next()) => match item {
                Ok(item) => item,
                Err(_) if transport == RtspTransport::Udp && !got_video => return Err(SessionEnd::NoUdpMedia.into()),
                Err(_) => bail!("timed out: no video for {} s", FRAME_TIMEOUT.as_secs()),
            },
            _ = stream.source_keyframe_wanted(), if tracks.keyframes.is_some() => {
                // Viewers' requests, at most one a second to the camera.
                if last_keyframe_request.is_none_or(|at| at.elapsed() >= MIN_KEYFRAME_REQUEST_INTERVAL) {
                    last_keyframe_request = Some(Instant::now());
                    if let Some(keyframes) = &tracks.keyframes {
                        keyframes.request();
                    }
                }
                continue;
            }
        };
        let frame = match item {
            None => return Ok(()),
            Some(Err(error)) => return Err(error).context("reading from the camera"),
            Some(Ok(CodecItem::VideoFrame(frame))) if frame.stream_id() == video_index => frame,
            Some(Ok(CodecItem::Rtcp(rtcp))) if rtcp.stream_id() == video_index => {
                on_rtcp(stream, "video", &rtcp, &mut clock);
                continue;
            }
            Some(Ok(CodecItem::Rtcp(rtcp))) if Some(rtcp.stream_id()) == audio_index => {
                on_rtcp(stream, "audio", &rtcp, &mut audio_clock);
                continue;
            }
            Some(Ok(CodecItem::AudioFrame(frame))) => {
                audio.on_frame(stream, &frame, &mut audio_clock);
                continue;
            }
            Some(Ok(_)) => continue,
        };
        frame_deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        if !got_video {
            got_video = true;
            audio.on_video();
        }
        let keyframe = frame.is_random_access_point();
        if let Some(relay) = &tracks.keyframes {
            let (resyncs, bytes_lost) = relay.damage();
            stream.set_ingest_damage(resyncs, bytes_lost);
        }
        // Packets lost before this frame: it and what follows up to the next keyframe would
        // reference a picture the decoder never got. Drop them, and ask for a keyframe.
        if frame.loss() > 0 && !keyframe && !waiting_for_keyframe {
            tracing::info!(path = stream.name(), lost_packets = frame.loss(), "packets lost: dropping frames until the next keyframe");
            waiting_for_keyframe = true;
            stream.request_source_keyframe();
        }
        if waiting_for_keyframe && !keyframe {
            stream.record_frame_dropped_after_loss();
            continue;
        }
        waiting_for_keyframe = false;
        let captured_at = clock.capture_time(frame.timestamp().timestamp(), frame.timestamp().clock_rate().get());
        let timestamp = frame.timestamp().elapsed().max(0) as u64;
        let clock_rate = frame.timestamp().clock_rate().get();
        let timestamp = timestamp * u64::from(VIDEO_CLOCK_RATE) / u64::from(clock_rate);
        let data = Bytes::from(frame.into_data());
        if keyframe || parameters.is_none() {
            let dimensions = session.streams()[video_index].parameters().and_then(|p| match p {
                ParametersRef::Video(video) => Some(video.pixel_dimensions()),
                _ => None,
            });
            if let Some(found) = parameters_from(&data, dimensions.unwrap_or((0, 0))) {
                if parameters.as_deref() != Some(&found) {
                    tracing::info!(path = stream.name(), "video {}x{} {}", found.width, found.height, found.codec_string());
                }
                parameters = Some(Arc::new(found));
            }
        }
        let Some(parameters) = parameters.clone() else { continue };
        let mut frame = Frame::new(timestamp, keyframe, data, parameters);
        if let Some(captured_at) = captured_at {
            frame.captured_at = captured_at;
        }
        stream.publish(frame);
    }
}

/// The tracks Lookout takes from a camera: its H.264 video, and its audio when viewers can be
/// given it.
struct Tracks {
    video: usize,
    audio: Option<CameraAudioTrack>,
    /// Over TCP, through the relay that can ask the camera for keyframes.
    keyframes: Option<KeyframeRequester>,
}

async fn connect(source: &RtspSource, transport: RtspTransport) -> anyhow::Result<(retina::client::Demuxed, Tracks)> {
    let options = session_options(source);
    // Over TCP, retina talks to the camera through a relay on loopback that can also send the
    // camera RTCP (keyframe requests), which retina cannot.
    let (url, keyframes) = match transport {
        RtspTransport::Tcp if source.url.scheme() == "rtsp" => {
            let camera = camera_address(&source.url).await?;
            let (relay, requester) = tokio::time::timeout(TCP_CONNECT_TIMEOUT, rtsp_relay::start(camera))
                .await
                .map_err(|_| anyhow!("no answer from {camera} within {} s", TCP_CONNECT_TIMEOUT.as_secs()))??;
            let mut url = source.url.clone();
            // Infallible for an rtsp:// URL with a host, which the configuration ensures.
            let _ = url.set_ip_host(relay.ip());
            let _ = url.set_port(Some(relay.port()));
            (url, Some(requester))
        }
        _ => (source.url.clone(), None),
    };
    let mut session = Session::describe(url, options).await?;
    let video_index = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"));
    let audio = CameraAudioTrack::choose(session.streams());
    for (i, s) in session.streams().iter().enumerate() {
        if Some(i) != video_index && Some(i) != audio.as_ref().map(|track| track.index) {
            tracing::info!(url = %source.url, "ignoring {} track {} (not supported yet)", s.media(), s.encoding_name());
        }
    }
    let Some(video_index) = video_index else {
        let found: Vec<String> = session.streams().iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
        bail!("the camera offers no H.264 video (tracks: {})", found.join(", "));
    };
    let transport = retina_transport(transport);
    // Four-byte lengths and SPS/PPS in front of every keyframe: what Frame promises.
    let format = FrameFormat::MP4;
    let format = FrameFormat { parameter_set_insertion: retina::codec::ParameterSetInsertion::EachKeyFrame, ..format };
    session.setup(video_index, SetupOptions::default().transport(transport.clone()).frame_format(format)).await?;
    if let Some(audio_index) = audio.as_ref().and_then(CameraAudioTrack::main_session_index) {
        session.setup(audio_index, SetupOptions::default().transport(transport)).await?;
    }
    let playing = session.play(PlayOptions::default()).await?;
    Ok((playing.demuxed()?, Tracks { video: video_index, audio, keyframes }))
}

/// The camera's address from its URL (RTSP's port 554 when none is given).
async fn camera_address(url: &url::Url) -> anyhow::Result<std::net::SocketAddr> {
    let host = url.host_str().context("the camera URL has no host")?;
    let port = url.port().unwrap_or(554);
    tokio::net::lookup_host((host, port)).await?.next().with_context(|| format!("no address for {host}"))
}

fn parameters_from(data: &Bytes, (width, height): (u32, u32)) -> Option<VideoParameters> {
    let nals = h264::split_length_prefixed(data).ok()?;
    let find = |kind| nals.iter().find(|nal| h264::nal_type(nal) == kind).cloned();
    Some(VideoParameters { width, height, sps: find(NAL_SPS)?, pps: find(NAL_PPS)? })
}

/// The failure as a person wants to read it on the page; the full chain goes to the log.
pub fn describe_error(error: &anyhow::Error) -> String {
    // The camera's answer, by its status code.
    let status = error.chain().find_map(|e| e.downcast_ref::<retina::Error>()?.status_code());
    match status {
        Some(401) => return "401 Unauthorized: check the username and password".to_owned(),
        Some(403) => return "403 Forbidden: the camera refuses this user".to_owned(),
        Some(404) => return "404 Not Found: check the path in the camera URL".to_owned(),
        _ => {}
    }
    // Failures of Lookout's own I/O, by kind.
    let io_kind = error.chain().find_map(|e| e.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    if let Some(summary) = io_kind.and_then(describe_io) {
        return summary.to_owned();
    }
    // Retina puts its connection's I/O errors into words only: those are known by their words.
    let text = format!("{error:#}");
    let known: [(&str, &str); 7] = [
        ("onnection refused", "connection refused: nothing listens on that host and port"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("failed to lookup address", "unknown host name"),
        ("Connection reset", "connection reset by the camera"),
        ("Unable to parse SDP", "the camera sent a malformed SDP"),
        ("RTSP framing error", "the camera's answer is not valid RTSP"),
    ];
    if let Some((_, summary)) = known.iter().find(|(needle, _)| text.contains(needle)) {
        return (*summary).to_owned();
    }
    // Otherwise the first line (retina appends hex dumps of what it received).
    const MAX_LEN: usize = 300;
    let line = text.lines().next().unwrap_or_default().trim_end_matches([';', ':', ' ']);
    match line.char_indices().nth(MAX_LEN) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

fn describe_io(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection refused: nothing listens on that host and port",
        HostUnreachable => "no route to host",
        NetworkUnreachable => "network unreachable",
        ConnectionReset => "connection reset by the camera",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_failures_are_put_in_words() {
        let cases = [
            ("DESCRIBE failed: 401 Unauthorized", "DESCRIBE failed: 401 Unauthorized"),
            ("Unable to connect: Connection refused (os error 111)", "connection refused: nothing listens on that host and port"),
            ("timed out after 10 s waiting for the camera to answer", "timed out after 10 s waiting for the camera to answer"),
            ("bad response at byte 403 of 1234", "bad response at byte 403 of 1234"),
            ("RTSP framing error: Invalid RTSP message; buffered:\n0000: 48 45", "the camera's answer is not valid RTSP"),
        ];
        for (raw, expected) in cases {
            assert_eq!(describe_error(&anyhow!(raw.to_owned())), expected);
        }
    }
}
