//! Counters and rates of one stream, updated on every publish.

use crate::media::Frame;
use serde::Serialize;
use std::time::{Duration, Instant};

const RATE_WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct StreamStats {
    frames: u64,
    keyframes: u64,
    bytes: u64,
    unusable: u64,
    dropped_after_loss: u64,
    late_backlogs: u64,
    withheld_late: u64,
    /// Ingest damage of the source sessions before the current one, and of the current one
    /// (its relay counts from zero).
    damage_before: Damage,
    damage: Damage,
    source_sessions: u64,
    width: u32,
    height: u32,
    codec: String,
    last_frame_at: Option<Instant>,
    window: Option<Window>,
    fps: f64,
    bitrate_bps: f64,
    last_keyframe_at: Option<Instant>,
    keyframe_bitrate_bps: Option<f64>,
}

#[derive(Default, Clone, Copy)]
struct Damage {
    resyncs: u64,
    bytes_lost: u64,
}

struct Window {
    started: Instant,
    frames: u64,
    bytes: u64,
}

/// What `/api/paths` shows of a stream.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamStatsSnapshot {
    pub frames: u64,
    pub keyframes: u64,
    pub bytes: u64,
    /// Frames dropped because no keyframe preceded them in the source session.
    pub frames_unusable: u64,
    /// Frames dropped because packets were lost before them (they would decode to smears),
    /// up to the next keyframe.
    pub frames_dropped_after_loss: u64,
    /// Times the camera delivered a backlog of late frames at once (its connection stalled),
    /// and the frames withheld from viewers until a keyframe on time (see `catch_up`).
    pub late_backlogs: u64,
    pub frames_withheld_late: u64,
    /// Times the camera's TCP stream was resynchronised after lost bytes, and the bytes dropped.
    pub resyncs: u64,
    pub bytes_lost: u64,
    /// Camera sessions started after the first: reconnects.
    pub reconnects: u64,
    pub width: u32,
    pub height: u32,
    pub codec: String,
    pub fps: f64,
    pub bitrate_bps: f64,
    /// What the keyframes alone take (each one's bits over the time since the one before):
    /// the rate of a viewer on keyframes only. `None` before the second keyframe.
    pub keyframe_bitrate_bps: Option<f64>,
    /// Milliseconds since the last frame, `None` before the first.
    pub last_frame_age_ms: Option<u64>,
}

impl StreamStats {
    pub fn record(&mut self, frame: &Frame) {
        let now = Instant::now();
        self.frames += 1;
        self.keyframes += u64::from(frame.keyframe);
        self.bytes += frame.data.len() as u64;
        self.last_frame_at = Some(now);
        if frame.keyframe {
            self.width = frame.parameters.width;
            self.height = frame.parameters.height;
            self.codec = frame.parameters.codec_string();
            self.record_keyframe_rate(frame.data.len(), now);
        }
        let window = self.window.get_or_insert(Window { started: now, frames: 0, bytes: 0 });
        window.frames += 1;
        window.bytes += frame.data.len() as u64;
        let elapsed = now - window.started;
        if elapsed >= RATE_WINDOW {
            self.fps = window.frames as f64 / elapsed.as_secs_f64();
            self.bitrate_bps = window.bytes as f64 * 8.0 / elapsed.as_secs_f64();
            self.window = None;
        }
    }

    pub fn bitrate_bps(&self) -> f64 {
        self.bitrate_bps
    }

    fn record_keyframe_rate(&mut self, bytes: usize, now: Instant) {
        if let Some(interval) = self.last_keyframe_at.map(|at| now - at).filter(|interval| !interval.is_zero()) {
            let rate = bytes as f64 * 8.0 / interval.as_secs_f64();
            // Smoothed, as keyframe sizes and intervals vary (a scene change, a requested keyframe).
            self.keyframe_bitrate_bps = Some(self.keyframe_bitrate_bps.map_or(rate, |old| (old + rate) / 2.0));
        }
        self.last_keyframe_at = Some(now);
    }

    pub fn keyframe_bitrate_bps(&self) -> Option<f64> {
        self.keyframe_bitrate_bps
    }

    pub fn record_unusable(&mut self) {
        self.unusable += 1;
    }

    pub fn record_dropped_after_loss(&mut self) {
        self.dropped_after_loss += 1;
    }

    pub fn record_withheld_late(&mut self, began_backlog: bool) {
        self.withheld_late += 1;
        self.late_backlogs += u64::from(began_backlog);
    }

    /// The current source session's damage so far.
    pub fn set_damage(&mut self, resyncs: u64, bytes_lost: u64) {
        self.damage = Damage { resyncs, bytes_lost };
    }

    pub fn begin_source_session(&mut self) {
        self.source_sessions += 1;
        self.damage_before.resyncs += self.damage.resyncs;
        self.damage_before.bytes_lost += self.damage.bytes_lost;
        self.damage = Damage::default();
    }

    pub fn snapshot(&self) -> StreamStatsSnapshot {
        StreamStatsSnapshot {
            frames: self.frames,
            keyframes: self.keyframes,
            bytes: self.bytes,
            frames_unusable: self.unusable,
            frames_dropped_after_loss: self.dropped_after_loss,
            late_backlogs: self.late_backlogs,
            frames_withheld_late: self.withheld_late,
            resyncs: self.damage_before.resyncs + self.damage.resyncs,
            bytes_lost: self.damage_before.bytes_lost + self.damage.bytes_lost,
            reconnects: self.source_sessions.saturating_sub(1),
            width: self.width,
            height: self.height,
            codec: self.codec.clone(),
            fps: (self.fps * 10.0).round() / 10.0,
            bitrate_bps: self.bitrate_bps.round(),
            keyframe_bitrate_bps: self.keyframe_bitrate_bps.map(f64::round),
            last_frame_age_ms: self.last_frame_at.map(|at| at.elapsed().as_millis() as u64),
        }
    }
}
