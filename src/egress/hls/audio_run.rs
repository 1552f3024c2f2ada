//! The AAC track of an HLS muxer: access units wait here until the part whose time they fall in
//! is cut, and are placed on the track's timeline by their capture time against the video's.
//!
//! The audio track starts at its first access unit captured at or after the first keyframe
//! muxed (the video's time zero), at that unit's capture time past the keyframe's, in samples;
//! from there it follows the camera's audio clock, so gaps stay gaps and the two tracks keep the
//! sync the camera gave them.

use super::fmp4::{Sample, TrackRun, AUDIO_TRACK};
use crate::media::{AacConfig, AacFrame};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

/// Access units waiting beyond this many are dropped, oldest first (video stopped coming).
const MAX_PENDING: usize = 1024;

pub struct AudioRun {
    /// The config in the initialization segment; units of another config are dropped.
    config: Arc<AacConfig>,
    /// The first unit placed: (its timestamp, its decode time on the track).
    anchor: Option<(u64, u64)>,
    pending: VecDeque<Arc<AacFrame>>,
    mismatched: u64,
}

/// The access units of one part, in order, with their decode time.
pub struct AudioPart {
    decode_time: u64,
    frames: Vec<Arc<AacFrame>>,
    frame_length: u32,
}

impl AudioPart {
    pub fn track_run(&self) -> TrackRun<'_> {
        let samples = self
            .frames
            .iter()
            .enumerate()
            .map(|(i, frame)| {
                let duration = self.frames.get(i + 1).map_or(self.frame_length, |next| next.timestamp.saturating_sub(frame.timestamp) as u32);
                Sample { data: &frame.data, duration, keyframe: true }
            })
            .collect();
        TrackRun { track_id: AUDIO_TRACK, decode_time: self.decode_time, samples }
    }
}

impl AudioRun {
    pub fn new(config: Arc<AacConfig>) -> Self {
        Self { config, anchor: None, pending: VecDeque::new(), mismatched: 0 }
    }

    pub fn push(&mut self, frame: Arc<AacFrame>) {
        if *frame.config != *self.config {
            self.mismatched += 1;
            if self.mismatched == 1 {
                tracing::warn!("HLS: the camera's AAC changed to {:?} after the initialization segment ({:?}); its audio is left out", frame.config, self.config);
            }
            return;
        }
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(frame);
    }

    fn decode_time(&self, frame: &AacFrame) -> Option<u64> {
        let (timestamp, decode_time) = self.anchor?;
        frame.timestamp.checked_sub(timestamp).map(|since| decode_time + since)
    }

    /// Takes the units that start before `end_secs` on the video's timeline, whose zero is
    /// the keyframe captured at `origin`; units before zero, or before the anchor, are dropped.
    pub fn take_until(&mut self, origin: SystemTime, end_secs: f64) -> Option<AudioPart> {
        let rate = f64::from(self.config.sample_rate);
        if self.anchor.is_none() {
            while let Some(first) = self.pending.front() {
                match first.captured_at.duration_since(origin) {
                    Ok(after) => {
                        self.anchor = Some((first.timestamp, (after.as_secs_f64() * rate).round() as u64));
                        break;
                    }
                    Err(_) => {
                        self.pending.pop_front();
                    }
                }
            }
        }
        let mut frames = Vec::new();
        while let Some(first) = self.pending.front() {
            match self.decode_time(first) {
                None => {
                    self.pending.pop_front();
                }
                Some(time) if (time as f64) < end_secs * rate => frames.extend(self.pending.pop_front()),
                Some(_) => break,
            }
        }
        let decode_time = self.decode_time(frames.first()?)?;
        Some(AudioPart { decode_time, frames, frame_length: self.config.frame_length })
    }

    /// Drops the units before `secs` on the video's timeline: the video they went with is gone.
    pub fn drop_before(&mut self, secs: f64) {
        if self.anchor.is_none() {
            return; // placing the first unit drops those before the video's zero anyway
        }
        let rate = f64::from(self.config.sample_rate);
        while self.pending.front().is_some_and(|f| self.decode_time(f).is_none_or(|time| (time as f64) < secs * rate)) {
            self.pending.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn config() -> Arc<AacConfig> {
        Arc::new(AacConfig::parse(&[0x14, 0x08]).expect("AAC-LC 16 kHz mono"))
    }

    /// 16 kHz units of 1024 samples (64 ms), the first captured at `start`.
    fn units(config: &Arc<AacConfig>, start: SystemTime, count: u64) -> Vec<Arc<AacFrame>> {
        (0..count)
            .map(|i| {
                let captured_at = start + Duration::from_millis(64 * i);
                Arc::new(AacFrame { timestamp: 5_000 + 1024 * i, data: Bytes::from(vec![i as u8]), config: config.clone(), captured_at })
            })
            .collect()
    }

    #[test]
    fn audio_starts_at_its_capture_time_after_the_keyframe_and_follows_its_clock() {
        let config = config();
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut run = AudioRun::new(config.clone());
        // Two units captured before the keyframe, then 30 ms after it, and so on.
        for unit in units(&config, origin - Duration::from_millis(98), 10) {
            run.push(unit);
        }
        let part = run.take_until(origin, 0.2).expect("audio in the first 200 ms");
        assert_eq!(part.decode_time, 480, "30 ms at 16 kHz: the first unit at or after the keyframe");
        let track = part.track_run();
        assert_eq!(track.samples.len(), 3, "units starting at 30, 94 and 158 ms");
        assert_eq!(track.samples.iter().map(|s| s.duration).collect::<Vec<_>>(), vec![1024; 3]);
        let next = run.take_until(origin, 0.4).expect("the next part's audio");
        assert_eq!(next.decode_time, 480 + 3 * 1024, "continuous");
        assert!(run.take_until(origin, 0.4).is_none(), "nothing left before 400 ms");
    }

    #[test]
    fn units_of_dropped_video_are_dropped_and_other_configs_left_out() {
        let config = config();
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut run = AudioRun::new(config.clone());
        let units = units(&config, origin, 20);
        run.push(units[0].clone());
        assert!(run.take_until(origin, 0.01).is_some(), "anchored");
        for unit in &units[1..] {
            run.push(unit.clone());
        }
        run.drop_before(0.5);
        let part = run.take_until(origin, 10.0).expect("audio after 500 ms");
        assert_eq!(part.decode_time, 8 * 1024, "the first unit at or after 500 ms");
        let other = Arc::new(AacConfig::parse(&[0x11, 0x90]).expect("48 kHz"));
        run.push(Arc::new(AacFrame { timestamp: 0, data: Bytes::new(), config: other, captured_at: origin }));
        assert!(run.take_until(origin, 100.0).is_none(), "a unit of another config is left out");
    }
}
