//! One HLS muxer per path, shared by all its HLS players: it reads the stream's frames once,
//! cuts segments at keyframes and parts of about `part_target` within them (LL-HLS), and keeps
//! the latest few in memory. A segment is its parts one after the other: each part is one
//! `moof`+`mdat` fragment, holding the video frames of the part and, where the path has audio,
//! the audio units (AAC access units, Opus packets) that start within the part's time.

use super::audio_track::AudioTrack;
use super::fmp4::{self, Sample, TrackRun, VIDEO_TRACK};
use super::playlist::{PartInfo, SegmentInfo, PART_HOLD_BACK_PARTS};
use crate::media::{Frame, VIDEO_CLOCK_RATE};
use crate::stream::Stream;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Segments kept for players that are behind the live edge.
const KEPT_SEGMENTS: usize = 6;
/// The length of a muxer's first segment, one frame (a copy of its first keyframe), on the video
/// clock: 33 ms.
const FIRST_SEGMENT_TICKS: u64 = 2970;
/// How long a new muxer waits for the sound of the cached GOP before it muxes the GOP.
const AUDIO_CATCH_UP: Duration = Duration::from_millis(300);

pub struct Part {
    pub duration_secs: f64,
    /// Starts with a keyframe: a player can begin decoding here.
    pub independent: bool,
    pub data: Bytes,
}

pub struct Segment {
    pub sequence: u64,
    pub duration_secs: f64,
    /// When its first frame was captured.
    pub captured_at: SystemTime,
    pub parts: Vec<Part>,
    pub data: Bytes,
}

/// The segment being made: its parts so far.
pub struct Building {
    pub sequence: u64,
    pub parts: Vec<Part>,
    pub captured_at: SystemTime,
}

#[derive(Default)]
pub struct Output {
    pub init: Option<Bytes>,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub segments: VecDeque<Segment>,
    pub building: Option<Building>,
}

fn part_infos(parts: &[Part]) -> Vec<PartInfo> {
    parts.iter().map(|p| PartInfo { duration_secs: p.duration_secs, independent: p.independent }).collect()
}

impl Output {
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .map(|s| SegmentInfo { sequence: s.sequence, duration_secs: s.duration_secs, parts: part_infos(&s.parts), captured_at: s.captured_at })
            .collect()
    }

    /// The segment being made, as (its sequence number, its parts so far).
    pub fn building_info(&self) -> Option<(u64, Vec<PartInfo>)> {
        self.building.as_ref().map(|b| (b.sequence, part_infos(&b.parts)))
    }

    pub fn bandwidth_bps(&self) -> u64 {
        let (bytes, secs) = self.segments.iter().fold((0usize, 0f64), |(b, d), s| (b + s.data.len(), d + s.duration_secs));
        if secs > 0.0 { (bytes as f64 * 8.0 / secs) as u64 } else { 0 }
    }

    /// Whether part `part` of segment `sequence` exists (`None`: the whole segment).
    pub fn has(&self, sequence: u64, part: Option<usize>) -> bool {
        let in_segment = |parts: usize| part.is_some_and(|p| p < parts);
        if self.segments.iter().any(|s| s.sequence == sequence) {
            return part.is_none() || self.segments.iter().any(|s| s.sequence == sequence && in_segment(s.parts.len()));
        }
        self.building.as_ref().is_some_and(|b| b.sequence == sequence && in_segment(b.parts.len()))
    }

    pub fn part(&self, sequence: u64, index: usize) -> Option<Bytes> {
        let parts = match self.segments.iter().find(|s| s.sequence == sequence) {
            Some(segment) => &segment.parts,
            None => &self.building.as_ref().filter(|b| b.sequence == sequence)?.parts,
        };
        parts.get(index).map(|p| p.data.clone())
    }

    /// Whether players can be given the playlist: a finished segment (hls.js refuses a
    /// playlist without one) and, while it is the only one, enough parts of the next that the
    /// live edge less the part hold-back falls within the segment being made (a part more than
    /// the hold-back: at its very start, float sums put it in the segment before), where hls.js starts
    /// loading parts at its keyframe. Given the playlist when that point fell in a finished
    /// segment of many parts, hls.js loaded the whole segment, took only its last part for
    /// loaded, and asked for its first part again and again; when it fell in the one-frame
    /// segment a muxer starts with (see `Muxer::segment_of_copy`), it loaded no part until
    /// the next segment was finished, and held the first picture for 2 s.
    pub fn ready_for_players(&self) -> bool {
        let building_parts = self.building.as_ref().map_or(0, |b| b.parts.len());
        self.segments.len() > 1 || (self.segments.len() == 1 && building_parts > PART_HOLD_BACK_PARTS)
    }

    /// The sequence number the next finished segment will have.
    pub fn next_sequence(&self) -> u64 {
        self.building.as_ref().map(|b| b.sequence).or(self.segments.back().map(|s| s.sequence + 1)).unwrap_or(0)
    }
}

pub struct Muxer {
    pub target_duration: Duration,
    pub part_target: Duration,
    output: Mutex<Output>,
    /// Counts every new part and segment, for requests that wait for one.
    changes: watch::Sender<u64>,
    last_request: Mutex<Instant>,
}

/// The frames of the part being made, and where its segment began.
struct Cutter {
    segment_start: Option<u64>,
    part: Vec<Arc<Frame>>,
    /// The first keyframe muxed: the timestamp and capture time of the tracks' zero.
    base_timestamp: Option<u64>,
    base_captured_at: Option<SystemTime>,
    fragments: u32,
    audio: AudioTrack,
    /// Keyframes at which the initialization segment could not be written.
    init_failures: u64,
}

impl Cutter {
    fn new(audio: AudioTrack) -> Self {
        Self { segment_start: None, part: Vec::new(), base_timestamp: None, base_captured_at: None, fragments: 0, audio, init_failures: 0 }
    }

    /// Seconds from the tracks' zero to `timestamp` on the video clock.
    fn video_secs(&self, timestamp: u64) -> f64 {
        timestamp.saturating_sub(self.base_timestamp.unwrap_or(timestamp)) as f64 / f64::from(VIDEO_CLOCK_RATE)
    }
}

impl Muxer {
    pub fn new(target_duration: Duration, part_target: Duration) -> Arc<Self> {
        Arc::new(Self {
            target_duration,
            part_target,
            output: Mutex::new(Output::default()),
            changes: watch::channel(0).0,
            last_request: Mutex::new(Instant::now()),
        })
    }

    pub fn output(&self) -> MutexGuard<'_, Output> {
        self.output.lock()
    }

    /// Notes a player's request; the muxer stops after a while without any.
    pub fn touch(&self) {
        *self.last_request.lock() = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_request.lock().elapsed()
    }

    /// Waits until `ready` holds for the output, at most `timeout`; true if it does.
    pub async fn wait_until(&self, timeout: Duration, ready: impl Fn(&Output) -> bool) -> bool {
        let mut changes = self.changes.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if ready(&self.output()) {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        });
        waited.await.is_ok() && ready(&self.output())
    }

    /// Reads the stream until `stop` says so.
    pub async fn run(self: Arc<Self>, stream: Arc<Stream>, stop: impl Fn(&Muxer) -> bool) {
        let mut cutter = Cutter::new(AudioTrack::new(stream.name()));
        let mut reader = stream.subscribe();
        let cached = self.squeezed(reader.take_backlog());
        if let (Some(first), Some(newest)) = (cached.first(), cached.last()) {
            // The sound of the cached GOP comes from the hub a moment later when it makes Opus
            // for this muxer: parts cut before it came would have none, and a player waits
            // for sound and picture together.
            if self.ensure_init(&mut cutter, first, &stream) {
                cutter.audio.receive_until(newest.captured_at, AUDIO_CATCH_UP).await;
            }
        }
        for frame in cached {
            self.accept(&mut cutter, frame, &stream);
        }
        let mut lost = reader.frames_lost();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let frame = tokio::select! {
                frame = reader.next() => match frame {
                    Some(frame) => frame,
                    None => return,
                },
                () = cutter.audio.receive() => continue,
                _ = tick.tick() => {
                    if stop(&self) {
                        return;
                    }
                    continue;
                }
            };
            if reader.frames_lost() != lost {
                // Frames are missing: the segment being made cannot be decoded; drop it.
                lost = reader.frames_lost();
                cutter.segment_start = None;
                cutter.part.clear();
                self.output().building = None;
            }
            cutter.audio.drain();
            self.accept(&mut cutter, frame, &stream);
        }
    }

    /// The cached GOP a muxer starts with (from the last keyframe to the newest frame), its
    /// timestamps squeezed to span the part hold-back at most and to end at the newest frame's.
    /// A first player starts the part hold-back behind the live edge, so it starts at the
    /// keyframe and plays the GOP as a short fast-forward into live frames. At their own pace
    /// (seconds, with a keyframe every 4 s) it seeked from the keyframe to the live edge and
    /// held the first picture while it decoded the GOP, 3 s in one run of three.
    fn squeezed(&self, backlog: Vec<Arc<Frame>>) -> Vec<Arc<Frame>> {
        let (Some(oldest), Some(newest)) = (backlog.first(), backlog.last()) else { return backlog };
        let count = backlog.len() as u64;
        let hold_back = PART_HOLD_BACK_PARTS as f64 * self.part_target.as_secs_f64() * f64::from(VIDEO_CLOCK_RATE);
        let own_spacing = newest.timestamp.saturating_sub(oldest.timestamp) / count.saturating_sub(1).max(1);
        let spacing = ((hold_back as u64) / count).min(own_spacing).max(1);
        let newest_timestamp = newest.timestamp;
        backlog.iter().enumerate().map(|(i, frame)| retimed(frame, newest_timestamp.saturating_sub((count - 1 - i as u64) * spacing))).collect()
    }

    fn accept(&self, cutter: &mut Cutter, frame: Arc<Frame>, stream: &Stream) {
        let Some(segment_start) = cutter.segment_start else {
            if frame.keyframe && self.ensure_init(cutter, &frame, stream) {
                // A stream whose clock starts at this keyframe (a camera that just opened) has no
                // room before it for the copy: its first segment waits for its next keyframe.
                if self.output().segments.is_empty() && frame.timestamp >= FIRST_SEGMENT_TICKS {
                    self.segment_of_copy(cutter, &frame, stream.name());
                }
                self.begin_segment(cutter, &frame);
                cutter.part.push(frame);
            }
            return;
        };
        let to_90k = |d: Duration| d.as_secs_f64() * f64::from(VIDEO_CLOCK_RATE);
        let segment_span = frame.timestamp.saturating_sub(segment_start) as f64;
        if frame.keyframe && segment_span >= to_90k(self.target_duration) {
            self.close_part(cutter, frame.timestamp, stream.name());
            self.finish_segment();
            self.begin_segment(cutter, &frame);
        } else if let (Some(first), Some(last)) = (cutter.part.first(), cutter.part.last()) {
            // Close the part now if one more frame would take it past the part target.
            let interval = frame.timestamp.saturating_sub(last.timestamp);
            let with_next = (frame.timestamp + interval).saturating_sub(first.timestamp) as f64;
            if with_next > to_90k(self.part_target) {
                self.close_part(cutter, frame.timestamp, stream.name());
            }
        }
        cutter.part.push(frame);
    }

    /// Writes the initialization segment at the first keyframe muxed; false when it cannot be
    /// written (a camera's SPS that makes no sense): then no segment begins, and the next
    /// keyframe tries again.
    fn ensure_init(&self, cutter: &mut Cutter, keyframe: &Frame, stream: &Stream) -> bool {
        let mut output = self.output();
        if output.init.is_some() {
            return true;
        }
        let audio = cutter.audio.start(stream);
        match fmp4::init_segment(&keyframe.parameters, audio.as_ref()) {
            Ok(init) => output.init = Some(init),
            Err(error) => {
                cutter.init_failures += 1;
                if cutter.init_failures == 1 {
                    tracing::warn!(path = stream.name(), "HLS: no initialization segment: {error}; trying again at each keyframe");
                }
                return false;
            }
        }
        output.codec = keyframe.parameters.codec_string();
        if let Some(audio) = audio {
            output.codec = format!("{},{}", output.codec, audio.codec_string());
        }
        output.width = keyframe.parameters.width;
        output.height = keyframe.parameters.height;
        true
    }

    /// A muxer's first segment: one frame, a copy of its first keyframe one frame interval
    /// before it; the keyframe itself then begins the next segment, with the rest of the cached
    /// GOP. So the first player gets a playlist at once (hls.js wants a finished segment), whose
    /// every segment begins with a keyframe, and starts in the segment being made, from that
    /// keyframe, whatever the camera's keyframe interval: the cached GOP is seconds long with
    /// a keyframe every 4 s, and waiting for the next keyframe to finish it cost seconds.
    fn segment_of_copy(&self, cutter: &mut Cutter, keyframe: &Arc<Frame>, path: &str) {
        let copy = retimed(keyframe, keyframe.timestamp - FIRST_SEGMENT_TICKS);
        self.begin_segment(cutter, &copy);
        cutter.part.push(copy);
        self.close_part(cutter, keyframe.timestamp, path);
        self.finish_segment();
    }

    fn begin_segment(&self, cutter: &mut Cutter, keyframe: &Frame) {
        cutter.segment_start = Some(keyframe.timestamp);
        cutter.base_timestamp.get_or_insert(keyframe.timestamp);
        cutter.base_captured_at.get_or_insert(keyframe.captured_at);
        cutter.audio.drop_before(cutter.video_secs(keyframe.timestamp));
        let mut output = self.output();
        let sequence = output.next_sequence();
        output.building = Some(Building { sequence, parts: Vec::new(), captured_at: keyframe.captured_at });
    }

    /// Makes the pending frames a part ending at `end` (the next frame's timestamp).
    fn close_part(&self, cutter: &mut Cutter, end: u64, path: &str) {
        let frames = std::mem::take(&mut cutter.part);
        let Some(first) = frames.first() else { return };
        let samples: Vec<Sample<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, frame)| {
                let next = frames.get(i + 1).map_or(end, |f| f.timestamp);
                Sample { data: &frame.data, duration: next.saturating_sub(frame.timestamp) as u32, keyframe: frame.keyframe }
            })
            .collect();
        cutter.fragments += 1;
        let decode_time = first.timestamp - cutter.base_timestamp.unwrap_or(first.timestamp);
        let end_secs = cutter.video_secs(end);
        let audio = cutter.base_captured_at.and_then(|origin| cutter.audio.take_until(origin, end_secs));
        let mut runs = vec![TrackRun { track_id: VIDEO_TRACK, decode_time, samples }];
        runs.extend(audio.as_ref().map(|audio| audio.track_run()));
        let data = match fmp4::fragment(cutter.fragments, &runs) {
            Ok(data) => data,
            Err(error) => {
                // Players cannot skip a part: the segment goes, and the next begins at a keyframe.
                tracing::warn!(path, "HLS: a part could not be written: {error}; its segment is left out");
                cutter.segment_start = None;
                self.output().building = None;
                return;
            }
        };
        let part = Part { duration_secs: (end - first.timestamp) as f64 / f64::from(VIDEO_CLOCK_RATE), independent: first.keyframe, data };
        if let Some(building) = self.output().building.as_mut() {
            building.parts.push(part);
        }
        self.changes.send_modify(|n| *n += 1);
    }

    fn finish_segment(&self) {
        let mut output = self.output();
        let Some(building) = output.building.take() else { return };
        let mut data = BytesMut::with_capacity(building.parts.iter().map(|p| p.data.len()).sum());
        for part in &building.parts {
            data.extend_from_slice(&part.data);
        }
        let duration_secs = building.parts.iter().map(|p| p.duration_secs).sum();
        output.segments.push_back(Segment { sequence: building.sequence, duration_secs, captured_at: building.captured_at, parts: building.parts, data: data.freeze() });
        while output.segments.len() > KEPT_SEGMENTS {
            output.segments.pop_front();
        }
        drop(output);
        self.changes.send_modify(|n| *n += 1);
    }
}

/// `frame` at another timestamp, its capture time moved by as much.
fn retimed(frame: &Arc<Frame>, timestamp: u64) -> Arc<Frame> {
    if timestamp == frame.timestamp {
        return frame.clone();
    }
    let moved = |from: u64, to: u64| Duration::from_secs_f64(to.saturating_sub(from) as f64 / f64::from(VIDEO_CLOCK_RATE));
    let captured_at = match timestamp > frame.timestamp {
        true => frame.captured_at.checked_add(moved(frame.timestamp, timestamp)),
        false => frame.captured_at.checked_sub(moved(timestamp, frame.timestamp)),
    };
    Arc::new(Frame {
        timestamp,
        keyframe: frame.keyframe,
        data: frame.data.clone(),
        parameters: frame.parameters.clone(),
        captured_at: captured_at.unwrap_or(frame.captured_at),
        arrived_at: frame.arrived_at,
        rtp_payloads: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(count: usize, independent_first: bool) -> Vec<Part> {
        (0..count).map(|i| Part { duration_secs: 0.2, independent: i == 0 && independent_first, data: Bytes::new() }).collect()
    }

    fn output(finished: &[(usize, bool)], building: Option<(usize, bool)>) -> Output {
        let segments = finished
            .iter()
            .enumerate()
            .map(|(i, &(count, independent))| Segment { sequence: i as u64, duration_secs: 0.2 * count as f64, captured_at: SystemTime::UNIX_EPOCH, parts: parts(count, independent), data: Bytes::new() })
            .collect();
        let building = building.map(|(count, independent)| Building { sequence: finished.len() as u64, parts: parts(count, independent), captured_at: SystemTime::UNIX_EPOCH });
        Output { segments, building, ..Default::default() }
    }

    #[test]
    fn players_wait_for_a_finished_segment() {
        assert!(!output(&[], Some((9, true))).ready_for_players());
    }

    #[test]
    fn the_first_player_waits_for_four_parts_after_the_one_frame_segment() {
        assert!(!output(&[(1, true)], Some((3, true))).ready_for_players());
        assert!(output(&[(1, true)], Some((4, true))).ready_for_players());
    }

    #[test]
    fn after_a_longer_first_segment_players_wait_until_the_start_falls_in_the_next() {
        assert!(!output(&[(10, true)], Some((3, true))).ready_for_players());
        assert!(output(&[(10, true)], Some((4, true))).ready_for_players());
        assert!(output(&[(10, true), (10, true)], Some((0, true))).ready_for_players());
    }
}
