//! The hub of one path: owns what the source produces and hands it to every reader.

mod catch_up;
mod demand;
mod gop;
mod live_audio;
mod opus_on_demand;
mod reader;
mod recent_feed;
pub mod registry;
pub mod state;
mod stats;
mod timeline;

pub use demand::ReaderHold;
pub use live_audio::LiveAudio;
pub use reader::Reader;
pub use registry::Registry;
pub use state::PathState;
pub use stats::StreamStatsSnapshot;

use crate::media::{AacFrame, AudioCodec, AudioFrame, Frame, SourceAudio, VIDEO_CLOCK_RATE};
use catch_up::{CatchUp, Verdict};
use gop::GopCache;
use opus_on_demand::{OpusOnDemand, SourceFeeds, SourceFrame};
use recent_feed::RecentFeed;
use stats::StreamStats;
use timeline::Timeline;
use std::sync::Arc;
use parking_lot::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// How many frames a reader may fall behind before it loses frames (about 8 s at 30 fps).
/// A reader that lags loses whole frames and resumes at the next keyframe.
const READER_QUEUE_FRAMES: usize = 256;

/// Audio frames a reader may fall behind by (about 2 s of 20 ms frames): audio is small and
/// never waits for a keyframe, so a lagging reader just skips ahead.
const AUDIO_QUEUE_FRAMES: usize = 100;
/// Audio frames kept for a reader that starts at the cached keyframe (an HLS muxer): about
/// 10 s of 20 ms frames, enough to reach back to it at any usual keyframe interval.
const RECENT_AUDIO_FRAMES: usize = 512;
/// AAC access units kept likewise: about 11 s at 48 kHz, more at lower rates.
const RECENT_AAC_FRAMES: usize = 512;
/// AAC access units a reader may fall behind by.
const AAC_QUEUE_FRAMES: usize = 256;
/// Audio captured this long before the cached keyframe is made into Opus too when a reader
/// starts the making: an encoder's first packet is its start, not yet the sound.
const OPUS_PREROLL: Duration = Duration::from_millis(100);

pub struct Stream {
    name: String,
    /// What feeds this path, for people: a camera URL without credentials, or "test pattern".
    /// Changes when the path is given another source at run time.
    source_description: Mutex<String>,
    state: watch::Sender<PathState>,
    hub: Mutex<Hub>,
    /// Streams of the same scene at lower quality (a camera's sub stream), best first.
    lower_layers: Vec<Arc<Stream>>,
    /// The source's audio as it came when it is G.711 or Opus, its timestamps continuous
    /// across source sessions as the video's are.
    audio: Mutex<RecentFeed<AudioFrame>>,
    /// The camera's AAC as it came.
    aac: Mutex<RecentFeed<AacFrame>>,
    /// What audio the source's session has, once it is known to have some.
    source_audio: Mutex<Option<SourceAudio>>,
    /// Opus made from G.711 or AAC while some reader needs it.
    opus: OpusOnDemand,
    /// Viewers asked for a keyframe: the source asks the camera, where it can.
    source_keyframe_wanted: tokio::sync::Notify,
    /// Who reads the path now, for a source that opens the camera on demand.
    readers: watch::Sender<usize>,
    /// How long a reader waits for the first frame of a camera opened on demand; `None` for a
    /// path whose source runs all the time.
    start_timeout: Mutex<Option<Duration>>,
}

/// What a layer is called in the API and on the page: its index among a path's layers.
pub fn layer_name(index: usize) -> String {
    match index {
        0 => "main".to_owned(),
        1 => "sub".to_owned(),
        n => format!("sub{n}"),
    }
}

/// Everything a publish changes, behind one lock so that a new reader sees the cached GOP
/// and then the live frames with neither a gap nor a repeat.
struct Hub {
    live: broadcast::Sender<Arc<Frame>>,
    gop: GopCache,
    stats: StreamStats,
    timeline: Timeline,
    catch_up: CatchUp,
}

impl Stream {
    pub fn new(name: impl Into<String>, source_description: impl Into<String>) -> Arc<Self> {
        Self::with_lower_layers(name, source_description, Vec::new())
    }

    /// A stream with lower-quality layers of the same scene, best first.
    pub fn with_lower_layers(name: impl Into<String>, source_description: impl Into<String>, lower_layers: Vec<Arc<Stream>>) -> Arc<Self> {
        let (live, _) = broadcast::channel(READER_QUEUE_FRAMES);
        Arc::new(Self {
            name: name.into(),
            source_description: Mutex::new(source_description.into()),
            state: watch::channel(PathState::Connecting).0,
            hub: Mutex::new(Hub {
                live,
                gop: GopCache::default(),
                stats: StreamStats::default(),
                timeline: Timeline::new(VIDEO_CLOCK_RATE),
                catch_up: CatchUp::new(VIDEO_CLOCK_RATE, Instant::now()),
            }),
            lower_layers,
            audio: Mutex::new(RecentFeed::new(RECENT_AUDIO_FRAMES, AUDIO_QUEUE_FRAMES, AudioCodec::Pcmu.clock_rate())),
            aac: Mutex::new(RecentFeed::new(RECENT_AAC_FRAMES, AAC_QUEUE_FRAMES, 48_000)),
            source_audio: Mutex::new(None),
            opus: OpusOnDemand::new(),
            source_keyframe_wanted: tokio::sync::Notify::new(),
            readers: watch::channel(0).0,
            start_timeout: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn source_description(&self) -> String {
        self.source_description.lock().clone()
    }

    pub fn set_source_description(&self, description: String) {
        *self.source_description.lock() = description;
    }

    /// This stream and its lower layers, best first (index 0 is this stream).
    pub fn layers(self: &Arc<Self>) -> Vec<Arc<Stream>> {
        std::iter::once(self.clone()).chain(self.lower_layers.iter().cloned()).collect()
    }

    pub fn lower_layers(&self) -> &[Arc<Stream>] {
        &self.lower_layers
    }

    pub fn state(&self) -> PathState {
        self.state.borrow().clone()
    }

    pub fn watch_state(&self) -> watch::Receiver<PathState> {
        self.state.subscribe()
    }

    /// Sets the state the page and the API show; a removed stream stays removed (its source
    /// may publish once more while it stops).
    pub fn set_state(&self, state: PathState) {
        self.state.send_if_modified(|current| {
            if *current == state || matches!(current, PathState::Removed { .. }) {
                return false;
            }
            *current = state;
            true
        });
    }

    /// Counts a reader of the path until the hold is dropped: a source on demand opens the
    /// camera for the first and closes it a while after the last.
    pub fn hold(&self) -> ReaderHold {
        ReaderHold::new(&self.readers)
    }

    /// The number of readers now, and each time it changes.
    pub fn watch_readers(&self) -> watch::Receiver<usize> {
        self.readers.subscribe()
    }

    /// Makes the path one whose camera opens on demand (readers wait up to `start_timeout` for
    /// its first frame), or, with `None`, one whose source always runs.
    pub fn set_start_timeout(&self, start_timeout: Option<Duration>) {
        *self.start_timeout.lock() = start_timeout;
    }

    /// Waits until frames flow, when the camera opens on demand (for up to its start timeout);
    /// a path whose source always runs is live now or not at all. The state it ends in.
    pub async fn until_live(&self) -> PathState {
        let Some(start_timeout) = *self.start_timeout.lock() else { return self.state() };
        let mut state = self.state.subscribe();
        let waited = tokio::time::timeout(start_timeout, state.wait_for(|state| matches!(state, PathState::Live | PathState::Removed { .. }))).await;
        match waited {
            Ok(Ok(state)) => state.clone(),
            _ => self.state(),
        }
    }

    /// Whether a reader would wait for the camera to open now.
    pub fn is_starting(&self) -> bool {
        self.start_timeout.lock().is_some() && !matches!(self.state(), PathState::Live | PathState::Removed { .. })
    }

    /// Ends every reader of this stream and its layers (viewers, muxers): they get what was
    /// published before, then the end; the state says why. Its source must be stopped first.
    pub fn remove(&self, reason: &str) {
        for layer in std::iter::once(self).chain(self.lower_layers.iter().map(|layer| &**layer)) {
            layer.set_state(PathState::Removed { reason: reason.to_owned() });
            let mut hub = layer.hub.lock();
            hub.live = broadcast::channel(READER_QUEUE_FRAMES).0;
            hub.gop.clear();
            drop(hub);
            layer.audio.lock().close();
            layer.aac.lock().close();
        }
    }

    /// A source calls this when it starts a new session with the camera: the next frames
    /// may not continue the previous ones, so readers resume at the session's first keyframe.
    pub fn begin_source_session(&self) {
        let mut hub = self.hub.lock();
        hub.timeline.begin_session();
        hub.catch_up.begin_session();
        hub.stats.begin_source_session();
        hub.gop.clear();
        drop(hub);
        self.audio.lock().begin_session();
        self.aac.lock().begin_session();
    }

    /// Hands a frame to every reader without waiting for any of them.
    pub fn publish(&self, mut frame: Frame) {
        let mut hub = self.hub.lock();
        if !frame.keyframe && hub.gop.is_empty() {
            // Nothing decodable precedes this frame in this session.
            hub.stats.record_unusable();
            return;
        }
        frame.timestamp = hub.timeline.place(frame.timestamp, Instant::now());
        match hub.catch_up.judge(frame.timestamp, frame.keyframe, frame.arrived_at) {
            Verdict::Forward => {}
            Verdict::Withhold { began, behind } => {
                hub.stats.record_withheld_late(began);
                drop(hub);
                if began {
                    tracing::warn!(path = %self.name, behind_ms = behind.as_millis() as u64, "the camera delivered frames late (its connection stalled): withholding them up to a keyframe on time");
                    // Cameras that honour keyframe requests shorten the wait.
                    self.request_source_keyframe();
                }
                return;
            }
            Verdict::Resumed { withheld } => tracing::info!(path = %self.name, withheld, "back to live at a keyframe on time"),
        }
        let frame = Arc::new(frame);
        hub.stats.record(&frame);
        hub.gop.push(frame.clone());
        // An error only means that nobody is reading now.
        let _ = hub.live.send(frame);
        drop(hub);
        // From the states a running source is in: a frame that comes after its source was
        // closed (idle) or its path removed does not make the path live.
        if matches!(*self.state.borrow(), PathState::Connecting | PathState::Retrying { .. }) {
            self.set_state(PathState::Live);
        }
    }

    /// The source dropped a frame that packets lost before it would have damaged.
    pub fn record_frame_dropped_after_loss(&self) {
        self.hub.lock().stats.record_dropped_after_loss();
    }

    /// How often the camera's stream was resynchronised so far, and the bytes dropped.
    pub fn set_ingest_damage(&self, resyncs: u64, bytes_lost: u64) {
        self.hub.lock().stats.set_damage(resyncs, bytes_lost);
    }

    /// A viewer lost its picture: the source should ask the camera for a keyframe.
    pub fn request_source_keyframe(&self) {
        self.source_keyframe_wanted.notify_one();
    }

    /// Resolves at the next keyframe request from viewers.
    pub async fn source_keyframe_wanted(&self) {
        self.source_keyframe_wanted.notified().await;
    }

    /// A source says whether its session has audio, and which.
    pub fn set_source_audio(&self, audio: Option<SourceAudio>) {
        *self.source_audio.lock() = audio;
    }

    pub fn source_audio(&self) -> Option<SourceAudio> {
        self.source_audio.lock().clone()
    }

    /// Hands a G.711 or Opus frame to every audio reader without waiting for any of them.
    pub fn publish_audio(&self, frame: AudioFrame) {
        self.audio.lock().publish(frame, Instant::now());
    }

    /// The live G.711 or Opus frames, as the source gives them.
    pub fn subscribe_audio(&self) -> broadcast::Receiver<Arc<AudioFrame>> {
        self.audio.lock().subscribe_live()
    }

    /// The last few seconds of audio frames, then a receiver of the live ones.
    pub fn subscribe_recent_audio(&self) -> (Vec<Arc<AudioFrame>>, broadcast::Receiver<Arc<AudioFrame>>) {
        self.audio.lock().subscribe()
    }

    /// Hands an AAC access unit to every AAC reader without waiting for any of them.
    pub fn publish_aac(&self, frame: AacFrame) {
        self.aac.lock().publish(frame, Instant::now());
    }

    /// The last few seconds of AAC access units, then a receiver of the live ones.
    pub fn subscribe_aac(&self) -> (Vec<Arc<AacFrame>>, broadcast::Receiver<Arc<AacFrame>>) {
        self.aac.lock().subscribe()
    }

    /// The path's audio as Opus: the source's own, or Opus made from its G.711 or AAC for as
    /// long as anyone reads it (once for all readers). The recent frames reach back to the
    /// cached keyframe: a reader that starts the making gets them through its receiver, as
    /// they are made (`subscribe_live_audio` skips them).
    pub fn subscribe_opus(&self) -> (Vec<Arc<AudioFrame>>, broadcast::Receiver<Arc<AudioFrame>>) {
        if self.source_audio() == Some(SourceAudio::Rtp(AudioCodec::Opus)) {
            return self.subscribe_recent_audio();
        }
        self.opus.subscribe(&self.name, || self.opus_source())
    }

    /// The live audio in `codec`: G.711 as the source gives it, Opus as `subscribe_opus`.
    pub fn subscribe_live_audio(&self, codec: AudioCodec) -> LiveAudio {
        LiveAudio::new(match codec {
            AudioCodec::Opus => self.subscribe_opus().1,
            AudioCodec::Pcmu | AudioCodec::Pcma => self.subscribe_audio(),
        })
    }

    /// Whether Opus is being made from the source's audio now.
    pub fn making_opus(&self) -> bool {
        self.opus.is_running()
    }

    /// What Opus is made from: the audio kept since shortly before the cached keyframe, then
    /// the live audio.
    fn opus_source(&self) -> SourceFeeds {
        let since = self.cached_keyframe().and_then(|keyframe| keyframe.captured_at.checked_sub(OPUS_PREROLL));
        let kept_since = |captured_at| since.is_some_and(|since| captured_at >= since);
        let (kept_audio, audio) = self.subscribe_recent_audio();
        let (kept_aac, aac) = self.subscribe_aac();
        let mut kept: Vec<SourceFrame> = kept_audio
            .into_iter()
            .filter(|frame| kept_since(frame.captured_at))
            .map(SourceFrame::Rtp)
            .chain(kept_aac.into_iter().filter(|frame| kept_since(frame.captured_at)).map(SourceFrame::Aac))
            .collect();
        kept.sort_by_key(SourceFrame::captured_at);
        SourceFeeds { kept, audio, aac }
    }

    /// A new reader: it first gets the cached GOP (starting at a keyframe), then live frames.
    pub fn subscribe(&self) -> Reader {
        if matches!(*self.state.borrow(), PathState::Removed { .. }) {
            // A reader that came as its path went (a viewer still connecting): it ends at once.
            let (closed, receiver) = broadcast::channel(1);
            drop(closed);
            return Reader::new((Vec::new(), false), receiver);
        }
        let hub = self.hub.lock();
        Reader::new(hub.gop.frames(), hub.live.subscribe())
    }

    /// The keyframe that starts the cached GOP, to resynchronise a viewer that lost its picture.
    pub fn cached_keyframe(&self) -> Option<Arc<Frame>> {
        self.hub.lock().gop.keyframe()
    }

    pub fn stats(&self) -> StreamStatsSnapshot {
        self.hub.lock().stats.snapshot()
    }

    /// The video bitrate over the last second; 0 before the first second.
    pub fn bitrate_bps(&self) -> f64 {
        self.hub.lock().stats.bitrate_bps()
    }

    /// The bitrate of the keyframes alone (see `StreamStatsSnapshot::keyframe_bitrate_bps`).
    pub fn keyframe_bitrate_bps(&self) -> Option<f64> {
        self.hub.lock().stats.keyframe_bitrate_bps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoParameters;
    use bytes::Bytes;

    fn frame(timestamp: u64, keyframe: bool) -> Frame {
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        Frame::new(timestamp, keyframe, Bytes::from_static(&[0, 0, 0, 1, 0x41]), parameters)
    }

    #[tokio::test]
    async fn new_reader_starts_at_the_cached_keyframe_then_gets_live_frames() {
        let stream = Stream::new("t", "test");
        stream.publish(frame(0, false)); // before any keyframe: unusable
        stream.publish(frame(3000, true));
        stream.publish(frame(6000, false));
        let mut reader = stream.subscribe();
        stream.publish(frame(9000, false));
        let got: Vec<(u64, bool)> = [reader.next().await, reader.next().await, reader.next().await]
            .into_iter()
            .map(|f| f.map(|f| (f.timestamp, f.keyframe)).expect("a frame"))
            .collect();
        assert_eq!(got, vec![(3000, true), (6000, false), (9000, false)]);
        assert_eq!(stream.stats().frames_unusable, 1);
        assert_eq!(stream.state(), PathState::Live);
    }

    #[tokio::test]
    async fn a_reader_that_lags_skips_to_the_next_keyframe() {
        let stream = Stream::new("t", "test");
        stream.publish(frame(0, true));
        let mut reader = stream.subscribe();
        assert_eq!(reader.next().await.map(|f| f.timestamp), Some(0), "the cached keyframe first");
        for i in 1..=(READER_QUEUE_FRAMES as u64 + 10) {
            stream.publish(frame(i * 3000, false));
        }
        stream.publish(frame(999_000, true));
        let first = reader.next().await.expect("frame");
        assert!(first.keyframe, "first frame after lagging is a keyframe");
        assert_eq!(first.timestamp, 999_000);
        assert!(reader.frames_lost() > 0);
    }

    #[tokio::test]
    async fn a_removed_stream_stays_removed_and_its_late_readers_end_at_once() {
        let stream = Stream::new("t", "test");
        stream.publish(frame(0, true));
        let mut early = stream.subscribe();
        assert!(early.next().await.is_some(), "the cached keyframe");
        stream.remove("deleted");
        stream.set_state(PathState::Live); // a source stopping late
        stream.publish(frame(3000, true));
        assert_eq!(stream.state(), PathState::Removed { reason: "deleted".into() });
        assert!(early.next().await.is_none(), "a reader from before ends");
        let mut late = stream.subscribe();
        assert!(late.next().await.is_none(), "a reader that comes after ends at once");
    }

    #[test]
    fn a_new_source_session_continues_the_timeline() {
        let stream = Stream::new("t", "test");
        stream.publish(frame(1_000_000, true));
        stream.begin_source_session();
        stream.publish(frame(0, true));
        let mut reader = stream.subscribe();
        let last = reader.try_next().expect("cached keyframe");
        assert!(last.timestamp > 1_000_000, "timestamps continue across sessions: {}", last.timestamp);
    }

    fn g711(timestamp: u64) -> AudioFrame {
        let data = Bytes::from(vec![crate::media::g711::linear_to_ulaw(1_000); 160]);
        AudioFrame { timestamp, codec: AudioCodec::Pcmu, data, captured_at: std::time::SystemTime::now(), arrived_at: Instant::now() }
    }

    /// Publishes G.711 frames in real time until `receiver` has a frame or 2 s have passed.
    async fn publish_until_received(stream: &Stream, next_timestamp: &mut u64, receiver: &mut broadcast::Receiver<Arc<AudioFrame>>) -> Option<Arc<AudioFrame>> {
        for _ in 0..100 {
            stream.publish_audio(g711(*next_timestamp));
            *next_timestamp += 160;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(frame) = receiver.try_recv() {
                return Some(frame);
            }
        }
        None
    }

    #[tokio::test]
    async fn opus_is_made_once_for_all_its_readers_and_stops_after_the_last() {
        let stream = Stream::new("t", "test");
        stream.set_source_audio(Some(SourceAudio::Rtp(AudioCodec::Pcmu)));
        assert!(!stream.making_opus(), "nothing is made before a reader asks");
        let mut timestamp = 0;
        let (_, mut first) = stream.subscribe_opus();
        let (_, mut second) = stream.subscribe_opus();
        let frame = publish_until_received(&stream, &mut timestamp, &mut first).await.expect("Opus for the first reader");
        assert_eq!((frame.codec, frame.data.len() < 160), (AudioCodec::Opus, true), "Opus, smaller than the G.711 it came from");
        assert!(second.try_recv().is_ok_and(|other| Arc::ptr_eq(&other, &frame)), "the second reader gets the same frame: made once");
        drop((first, second));
        stream.publish_audio(g711(timestamp));
        timestamp += 160;
        for _ in 0..50 {
            if !stream.making_opus() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!stream.making_opus(), "stopped after the last reader left");
        let (kept, mut again) = stream.subscribe_opus();
        assert!(kept.is_empty(), "what was made before does not continue what comes now");
        assert!(publish_until_received(&stream, &mut timestamp, &mut again).await.is_some(), "a new reader starts it again");
    }

    #[test]
    fn a_sources_opus_is_read_as_it_came() {
        let stream = Stream::new("t", "test");
        stream.set_source_audio(Some(SourceAudio::Rtp(AudioCodec::Opus)));
        let (_, mut opus) = stream.subscribe_opus();
        stream.publish_audio(AudioFrame { codec: AudioCodec::Opus, data: Bytes::from_static(&[0xf8]), ..g711(0) });
        assert_eq!(opus.try_recv().map(|frame| frame.codec).ok(), Some(AudioCodec::Opus));
        assert!(!stream.making_opus());
    }

    #[test]
    fn ingest_damage_adds_up_across_source_sessions() {
        let stream = Stream::new("t", "test");
        stream.begin_source_session();
        stream.set_ingest_damage(2, 300);
        stream.set_ingest_damage(3, 500); // the relay's running totals
        stream.begin_source_session();
        stream.set_ingest_damage(1, 100); // a new relay counts from zero
        let stats = stream.stats();
        assert_eq!((stats.resyncs, stats.bytes_lost, stats.reconnects), (4, 600, 1));
    }
}
