//! The built-in synthetic camera: a moving test pattern encoded in-process with openh264,
//! so Lookout and its tests need no external camera.
//!
//! Encoding is CPU-bound, so it runs on its own thread and never on the async runtime.

mod barcode;
mod painter;
mod tone;

use crate::config::TestPatternSettings;
use crate::media::h264::{self, NAL_PPS, NAL_SPS};
use crate::media::{Frame, VideoParameters, VIDEO_CLOCK_RATE};
use crate::stream::{PathState, Stream};
use bytes::Bytes;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, FrameType, RateControlMode, UsageType};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;
use painter::Painter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Stops the test-pattern threads when dropped.
pub struct TestPatternHandle {
    stop: Arc<AtomicBool>,
}

impl Drop for TestPatternHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn spawn(stream: Arc<Stream>, settings: TestPatternSettings) -> TestPatternHandle {
    let stop = Arc::new(AtomicBool::new(false));
    if settings.audio {
        let (stream, stop) = (stream.clone(), stop.clone());
        let spawned = std::thread::Builder::new().name(format!("tone-{}", stream.name())).spawn(move || tone::run(&stream, &stop));
        if let Err(error) = spawned {
            tracing::error!("cannot start the test tone thread: {error}");
        }
    }
    let thread_stop = stop.clone();
    let name = format!("testpattern-{}", stream.name());
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        if let Err(error) = run(&stream, &settings, &thread_stop) {
            tracing::error!(path = stream.name(), "test pattern stopped: {error:#}");
            stream.set_state(PathState::Retrying { error: format!("{error:#}"), retry_in_ms: 0, attempt: 1 });
        }
    });
    if let Err(error) = spawned {
        tracing::error!("cannot start the test pattern thread: {error}");
    }
    TestPatternHandle { stop }
}

fn run(stream: &Stream, settings: &TestPatternSettings, stop: &AtomicBool) -> anyhow::Result<()> {
    let config = EncoderConfig::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(settings.bitrate_kbps * 1000))
        .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
        .skip_frames(false)
        .scene_change_detect(false);
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| anyhow::anyhow!("cannot create the H.264 encoder: {e}"))?;
    let mut painter = Painter::new(settings.width, settings.height);
    let (width, height) = (settings.width as usize, settings.height as usize);
    let frame_period = Duration::from_secs_f64(1.0 / f64::from(settings.fps));
    let keyframe_every = (settings.keyframe_interval.as_secs_f64() * f64::from(settings.fps)).round().max(1.0) as u64;
    let mut parameters: Option<Arc<VideoParameters>> = None;
    stream.begin_source_session();
    tracing::info!(path = stream.name(), "test pattern {}x{} at {} fps, keyframe every {} frames", width, height, settings.fps, keyframe_every);

    let start = Instant::now();
    let mut frame_number: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + frame_period.mul_f64(frame_number as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > frame_period * 3 {
            // Too slow to keep up (a loaded machine): skip ahead rather than fall behind live.
            frame_number = ((now - start).as_secs_f64() / frame_period.as_secs_f64()) as u64;
        }
        let capture_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        painter.paint(frame_number, capture_ms);
        if frame_number.is_multiple_of(keyframe_every) {
            encoder.force_intra_frame();
        }
        let (luma, chroma) = painter.yuv.split_at(width * height);
        let (u, v) = chroma.split_at(width * height / 4);
        let picture = YUVSlices::new((luma, u, v), (width, height), (width, width / 2, width / 2));
        let encoded = encoder.encode(&picture).map_err(|e| anyhow::anyhow!("H.264 encoding failed: {e}"))?;
        let keyframe = matches!(encoded.frame_type(), FrameType::IDR);
        let annex_b = encoded.to_vec();
        let nals = h264::split_annex_b(&annex_b);
        if keyframe {
            parameters = parameters_from(&nals, settings).map(Arc::new).or(parameters);
        }
        let timestamp = frame_number * u64::from(VIDEO_CLOCK_RATE) / u64::from(settings.fps);
        frame_number += 1;
        let Some(parameters) = parameters.clone() else { continue };
        if nals.is_empty() {
            continue;
        }
        let mut frame = Frame::new(timestamp, keyframe, h264::join_length_prefixed(nals), parameters);
        frame.captured_at = UNIX_EPOCH + Duration::from_millis(capture_ms);
        stream.publish(frame);
    }
    Ok(())
}

fn parameters_from(nals: &[&[u8]], settings: &TestPatternSettings) -> Option<VideoParameters> {
    let find = |kind| nals.iter().find(|nal| h264::nal_type(nal) == kind).map(|nal| Bytes::copy_from_slice(nal));
    Some(VideoParameters { width: settings.width, height: settings.height, sps: find(NAL_SPS)?, pps: find(NAL_PPS)? })
}
