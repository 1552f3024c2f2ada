//! One HLS muxer per path, shared by all its HLS viewers: it reads the stream's frames once,
//! cuts segments at keyframes and keeps the latest few in memory.

use super::fmp4::{self, Sample};
use super::playlist::SegmentInfo;
use crate::media::{Frame, VIDEO_CLOCK_RATE};
use crate::stream::Stream;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Segments kept for players that are behind the live edge.
const KEPT_SEGMENTS: usize = 6;

pub struct Segment {
    pub sequence: u64,
    pub duration_secs: f64,
    pub data: Bytes,
}

#[derive(Default)]
pub struct Output {
    pub init: Option<Bytes>,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub segments: VecDeque<Segment>,
}

impl Output {
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        self.segments.iter().map(|s| SegmentInfo { sequence: s.sequence, duration_secs: s.duration_secs }).collect()
    }

    pub fn bandwidth_bps(&self) -> u64 {
        let (bytes, secs) = self.segments.iter().fold((0usize, 0f64), |(b, d), s| (b + s.data.len(), d + s.duration_secs));
        if secs > 0.0 { (bytes as f64 * 8.0 / secs) as u64 } else { 0 }
    }
}

pub struct Muxer {
    pub target_duration: Duration,
    output: Mutex<Output>,
    /// Counts finished segments, so a request can wait for the first one.
    segments_made: watch::Sender<u64>,
    last_request: Mutex<Instant>,
}

impl Muxer {
    pub fn new(target_duration: Duration) -> Arc<Self> {
        Arc::new(Self {
            target_duration,
            output: Mutex::new(Output::default()),
            segments_made: watch::channel(0).0,
            last_request: Mutex::new(Instant::now()),
        })
    }

    pub fn output(&self) -> MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes a player's request; the muxer stops after a while without any.
    pub fn touch(&self) {
        *self.last_request.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_request.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// Waits until at least one segment exists, at most `timeout`; true if one does.
    pub async fn wait_for_first_segment(&self, timeout: Duration) -> bool {
        let mut made = self.segments_made.subscribe();
        tokio::time::timeout(timeout, made.wait_for(|n| *n > 0)).await.is_ok_and(|r| r.is_ok())
    }

    /// Reads the stream until `stop` says so, cutting segments at keyframes.
    pub async fn run(self: Arc<Self>, stream: Arc<Stream>, stop: impl Fn(&Muxer) -> bool) {
        let mut reader = stream.subscribe();
        let mut pending: Vec<Arc<Frame>> = Vec::new();
        let mut base_timestamp: Option<u64> = None;
        let mut sequence: u64 = 0;
        let mut lost = reader.frames_lost();
        let target_90k = self.target_duration.as_secs_f64() * f64::from(VIDEO_CLOCK_RATE);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let frame = tokio::select! {
                frame = reader.next() => match frame {
                    Some(frame) => frame,
                    None => return,
                },
                _ = tick.tick() => {
                    if stop(&self) {
                        return;
                    }
                    continue;
                }
            };
            if reader.frames_lost() != lost {
                // Frames are missing: what is pending cannot be decoded; start again here.
                lost = reader.frames_lost();
                pending.clear();
            }
            if pending.is_empty() && !frame.keyframe {
                continue;
            }
            let base = *base_timestamp.get_or_insert(frame.timestamp);
            let span = pending.first().map_or(0.0, |first| frame.timestamp.saturating_sub(first.timestamp) as f64);
            if frame.keyframe && !pending.is_empty() && span >= target_90k {
                let segment = self.finish_segment(&pending, frame.timestamp, base, sequence);
                self.publish(segment);
                sequence += 1;
                pending.clear();
            }
            if pending.is_empty() {
                self.update_init(&frame);
            }
            pending.push(frame);
        }
    }

    fn update_init(&self, keyframe: &Frame) {
        let mut output = self.output();
        if output.init.is_none() {
            output.init = Some(fmp4::init_segment(&keyframe.parameters));
            output.codec = keyframe.parameters.codec_string();
            output.width = keyframe.parameters.width;
            output.height = keyframe.parameters.height;
        }
    }

    /// One fragment of the frames from a keyframe up to (not including) the next one, at `end`.
    fn finish_segment(&self, frames: &[Arc<Frame>], end: u64, base: u64, sequence: u64) -> Segment {
        let samples: Vec<Sample<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, frame)| {
                let next = frames.get(i + 1).map_or(end, |f| f.timestamp);
                Sample { data: &frame.data, duration: next.saturating_sub(frame.timestamp) as u32, keyframe: frame.keyframe }
            })
            .collect();
        let start = frames[0].timestamp;
        let data = fmp4::fragment(sequence as u32 + 1, start - base, &samples);
        Segment { sequence, duration_secs: (end - start) as f64 / f64::from(VIDEO_CLOCK_RATE), data }
    }

    fn publish(&self, segment: Segment) {
        let mut output = self.output();
        output.segments.push_back(segment);
        while output.segments.len() > KEPT_SEGMENTS {
            output.segments.pop_front();
        }
        drop(output);
        self.segments_made.send_modify(|n| *n += 1);
    }
}
