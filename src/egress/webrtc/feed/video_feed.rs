//! What one viewer's video gets, decided without I/O: frames, keyframe requests, pins and the
//! link's state go in with the time; RTP packets come out with when each may leave, and the
//! next time the feed wants to be asked again. The forwarder (`forwarder.rs`) drives it with
//! the stream's readers and the viewer's connection; the tests drive it in simulated time.
//!
//! It decides: the cached GOP a new viewer starts with (replayed squeezed and fast), resyncing
//! at a cached keyframe when the viewer asks for one, which layer the viewer's link carries and
//! when to switch (at the new layer's keyframe), and the pacing of every packet.

use crate::egress::webrtc::feed::layer_choice::{LayerChooser, LayerInputs, LayerStep};
use crate::egress::webrtc::feed::layer_ladder::{rung, rung_bitrates, rung_names};
use crate::egress::webrtc::feed::forwarder_stats::{ForwarderStats, LayerStatus};
use crate::egress::webrtc::feed::pacer::{ViewerPacer, MAX_PACING_DELAY};
use crate::egress::webrtc::rtp::header::RtpHeaderState;
use crate::egress::webrtc::rtp::sent_frames::{RtpStreamId, SentFrames};
use crate::media::Frame;
use crate::stream::Stream;
use rtc::rtp::packet::Packet;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A new viewer gets the cached GOP at once (its keyframe is the only picture it can start
/// from) with its timestamps squeezed to this spacing, ending at the newest cached frame's:
/// a burst of frames stamped with their capture times, seconds apart, would be played at their
/// original pace and keep the viewer seconds behind live for good. Squeezed, the timestamps
/// agree with the way the frames arrive, the browser shows the GOP as a short fast-forward
/// and then plays live frames at live latency. 2 ms is a few times what a browser takes to
/// decode one frame.
const REPLAY_FRAME_SPACING_90K: u64 = 180;

/// The replayed GOP is paced at the rate that sends it within this window, or at the live
/// pacing rate when that is faster. At memory speed it would be hundreds of packets in one
/// burst; spread much longer, the live frames queued behind it arrive late for the timestamps
/// they carry (at 300 ms Chromium raised its playout delay and froze in two of four joins).
const REPLAY_WINDOW: Duration = Duration::from_millis(100);

/// Browsers repeat keyframe requests while they wait; one answer per interval is enough.
const MIN_RESYNC_INTERVAL: Duration = Duration::from_millis(300);

/// How often a viewer is checked against its link.
const LAYER_CHOICE_INTERVAL: Duration = Duration::from_millis(250);
/// The packets the queue keeps room for once it has drained: a live keyframe's. The replayed
/// GOP of a join fills it with hundreds, and a queue keeps its largest size: at 200 viewers
/// that was 60 KiB each, held for nothing.
const QUEUE_ROOM_KEPT: usize = 128;

/// The path's layers as the feed sees them, best first: the stream hub in the product.
pub trait Layers {
    fn count(&self) -> usize;
    /// What each rung costs now (see `layer_ladder::rung_bitrates`).
    fn rung_bitrates(&self) -> Vec<Option<f64>>;
    /// A layer's average bitrate, which its pacing follows.
    fn bitrate_bps(&self, layer: usize) -> f64;
    /// The layer's newest keyframe, to resync a viewer at.
    fn cached_keyframe(&self, layer: usize) -> Option<Arc<Frame>>;
    /// Asks the layer's source (the camera) for a fresh keyframe.
    fn request_source_keyframe(&self, layer: usize);
}

impl Layers for Vec<Arc<Stream>> {
    fn count(&self) -> usize {
        self.len()
    }

    fn rung_bitrates(&self) -> Vec<Option<f64>> {
        rung_bitrates(self)
    }

    fn bitrate_bps(&self, layer: usize) -> f64 {
        self.get(layer).map_or(0.0, |stream| stream.bitrate_bps())
    }

    fn cached_keyframe(&self, layer: usize) -> Option<Arc<Frame>> {
        self.get(layer).and_then(|stream| stream.cached_keyframe())
    }

    fn request_source_keyframe(&self, layer: usize) {
        if let Some(stream) = self.get(layer) {
            stream.request_source_keyframe();
        }
    }
}

/// What the link's observers say at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkReading {
    pub estimate_bps: Option<f64>,
    pub loss_fraction: Option<f64>,
    /// The rate the link took its last burst at.
    pub burst_bps: Option<f64>,
}

/// Something the driver must do with what only it holds: the stream's readers, the link's
/// estimator, the page's status.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedAction {
    /// Start reading layer `layer` at its next keyframe, and hand that keyframe to
    /// `VideoFeed::on_switch_keyframe`: the viewer switches there.
    AwaitKeyframeOf(usize),
    /// A keyframe was resent from the cache: the frames after it would reference pictures the
    /// viewer may not have, so its reader skips to the next live keyframe.
    SkipToNextKeyframe,
    /// The viewer moved to another layer: its link's estimate starts again from this bitrate
    /// (`LayerStep::restart_estimate_bps`).
    RestartEstimateFrom(f64),
    /// The layer the viewer gets, or why, changed.
    Status(LayerStatus),
}

/// One packet, and when it may leave.
#[derive(Debug)]
pub struct Outgoing {
    pub packet: Packet,
    pub release: Instant,
    /// The last packet of its frame.
    pub ends_frame: bool,
    /// For a live frame: its layer, when Lookout had it, and when it reached the pacer (what
    /// the send delays measure).
    pub live: Option<LiveTiming>,
}

#[derive(Debug, Clone, Copy)]
pub struct LiveTiming {
    pub layer: usize,
    pub arrived_at: Instant,
    pub handed_in: Instant,
}

/// How a frame goes out: a live frame at its own timestamp, by a deadline from its arrival;
/// a frame sent to catch up (the replayed GOP, a cached keyframe) at the timestamp and by the
/// deadline given.
#[derive(Clone, Copy)]
enum Delivery {
    Live { layer: usize },
    Catchup { timestamp: u64, deadline: Instant },
}

pub struct VideoFeed {
    header: RtpHeaderState,
    pacer: ViewerPacer,
    chooser: LayerChooser,
    names: Vec<String>,
    layer_count: usize,
    sent: Arc<SentFrames>,
    stats: Arc<ForwarderStats>,
    status: LayerStatus,
    /// A switch decided and waiting for its layer's keyframe.
    pending: Option<LayerStep>,
    last_resync: Option<Instant>,
    next_choice: Instant,
    queue: VecDeque<Outgoing>,
    actions: VecDeque<FeedAction>,
    /// The track was retargeted to a path with no cached GOP: its first frame is placed on the
    /// viewer's clock after the last one sent (`retarget`).
    continue_at_next_frame: bool,
}

impl VideoFeed {
    /// A viewer's feed starting at `now` with the path's cached GOP (`backlog`, oldest first).
    pub fn new(id: RtpStreamId, layers: &dyn Layers, backlog: Vec<Arc<Frame>>, sent: Arc<SentFrames>, stats: Arc<ForwarderStats>, now: Instant) -> Self {
        let layer_count = layers.count();
        let mut feed = Self {
            header: RtpHeaderState::new(id),
            pacer: ViewerPacer::default(),
            chooser: LayerChooser::new(0),
            names: rung_names(layer_count),
            layer_count,
            sent,
            stats,
            status: LayerStatus::initial(layer_count),
            pending: None,
            last_resync: None,
            next_choice: now + LAYER_CHOICE_INTERVAL,
            queue: VecDeque::new(),
            actions: VecDeque::new(),
            continue_at_next_frame: false,
        };
        feed.replay(backlog, layers, now);
        feed
    }

    /// The cached GOP, squeezed, paced to arrive within `REPLAY_WINDOW`; live pacing after it.
    fn replay(&mut self, backlog: Vec<Arc<Frame>>, layers: &dyn Layers, now: Instant) {
        let replay_bits: usize = backlog.iter().map(|frame| frame.data.len() * 8).sum();
        self.pacer.follow_stream_bitrate(layers.bitrate_bps(0));
        self.pacer.set_rate(self.pacer.rate().max(replay_bits as f64 / REPLAY_WINDOW.as_secs_f64()));
        let deadline = now + REPLAY_WINDOW;
        for (frame, timestamp) in squeezed_replay(backlog) {
            self.enqueue(&frame, Delivery::Catchup { timestamp, deadline }, now);
        }
        self.pacer.follow_stream_bitrate(layers.bitrate_bps(0));
    }

    /// A live frame of the layer the viewer is on.
    pub fn on_frame(&mut self, frame: &Arc<Frame>, layers: &dyn Layers, now: Instant) {
        let current = rung(self.chooser.current(), self.layer_count);
        if current.keyframes_only && !frame.keyframe {
            self.stats.frames_withheld.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if frame.keyframe {
            self.pacer.follow_stream_bitrate(layers.bitrate_bps(current.layer));
        }
        if std::mem::take(&mut self.continue_at_next_frame) {
            self.header.continue_with(frame, 0);
        }
        self.enqueue(frame, Delivery::Live { layer: current.layer }, now);
    }

    /// The keyframe the pending switch waited for (`FeedAction::AwaitKeyframeOf`); `None` when
    /// that layer's stream ended. From here the driver reads the new layer.
    pub fn on_switch_keyframe(&mut self, keyframe: Option<&Arc<Frame>>, layers: &dyn Layers, now: Instant) {
        let Some(step) = self.pending.take() else { return };
        let Some(keyframe) = keyframe else {
            self.chooser.switch_abandoned();
            return;
        };
        self.header.continue_with(keyframe, 0);
        self.sent.forget_sent();
        self.chooser.switched_to(step.layer, now);
        if let Some(bits_per_second) = step.restart_estimate_bps {
            self.actions.push_back(FeedAction::RestartEstimateFrom(bits_per_second));
        }
        let layer = rung(step.layer, self.layer_count).layer;
        self.pacer.follow_stream_bitrate(layers.bitrate_bps(layer));
        self.stats.layer_switches.fetch_add(1, Ordering::Relaxed);
        self.status.layer = self.names[step.layer].clone();
        self.status.mode = self.chooser.mode();
        self.status.reason = step.reason;
        self.actions.push_back(FeedAction::Status(self.status.clone()));
        self.enqueue(keyframe, Delivery::Live { layer }, now);
    }

    /// The track now shows another path (a tile of a wall switched camera): that path's layers
    /// replace the old one's, and the viewer starts on it from its cached GOP (`backlog`, oldest
    /// first) as a new viewer does, its timestamps and sequence numbers running on from the old
    /// path's. What was queued of the old path leaves first.
    /// What it sends of the new path is counted in `stats`.
    pub fn retarget(&mut self, layers: &dyn Layers, backlog: Vec<Arc<Frame>>, stats: Arc<ForwarderStats>, now: Instant) {
        self.stats = stats;
        // What is still queued of the old path leaves, but is not the new path's to time.
        self.queue.iter_mut().for_each(|outgoing| outgoing.live = None);
        self.layer_count = layers.count();
        self.names = rung_names(self.layer_count);
        self.chooser = LayerChooser::new(0);
        self.status = LayerStatus::initial(self.layer_count);
        self.pending = None;
        self.last_resync = None;
        self.next_choice = now + LAYER_CHOICE_INTERVAL;
        // The decoder starts again at the new path's keyframe: nothing before it is worth resending.
        self.sent.forget_sent();
        match backlog.last() {
            Some(newest) => self.header.continue_with(newest, (backlog.len() as u64 - 1) * REPLAY_FRAME_SPACING_90K),
            // A path with nothing cached yet (a camera opening): its first live frame follows.
            None => self.continue_at_next_frame = true,
        }
        self.replay(backlog, layers, now);
    }

    /// The viewer asked for a keyframe (PLI or FIR).
    pub fn on_keyframe_request(&mut self, layers: &dyn Layers, now: Instant) {
        if self.last_resync.is_some_and(|at| now.saturating_duration_since(at) < MIN_RESYNC_INTERVAL) {
            return;
        }
        self.last_resync = Some(now);
        // A camera that honours the request sends a fresh keyframe, where this viewer
        // resumes sooner than at the camera's next periodic one.
        let layer = rung(self.chooser.current(), self.layer_count).layer;
        layers.request_source_keyframe(layer);
        let Some(keyframe) = layers.cached_keyframe(layer) else { return };
        self.actions.push_back(FeedAction::SkipToNextKeyframe);
        self.sent.forget_sent();
        self.stats.keyframes_resent.fetch_add(1, Ordering::Relaxed);
        let resend = Delivery::Catchup { timestamp: keyframe.timestamp, deadline: now + MAX_PACING_DELAY };
        self.enqueue(&keyframe, resend, now);
    }

    /// The viewer pinned a layer through signalling (by index), or let Lookout choose again.
    pub fn on_pin(&mut self, pinned: Option<usize>, now: Instant) {
        self.chooser.pin(pinned.filter(|&layer| layer < self.names.len()));
        self.status.mode = self.chooser.mode();
        self.actions.push_back(FeedAction::Status(self.status.clone()));
        self.next_choice = now;
    }

    /// The next time `handle_timeout` has work: a packet to release or a layer to choose.
    pub fn poll_timeout(&self) -> Instant {
        self.queue.front().map_or(self.next_choice, |next| next.release.min(self.next_choice))
    }

    /// Chooses the layer when it is time to.
    pub fn handle_timeout(&mut self, link: LinkReading, layers: &dyn Layers, now: Instant) {
        self.pacer.allow_link_rate(link.burst_bps);
        if now < self.next_choice {
            return;
        }
        self.next_choice = now + LAYER_CHOICE_INTERVAL;
        let bitrates = layers.rung_bitrates();
        let inputs = LayerInputs { bitrates: &bitrates, names: &self.names, estimate_bps: link.estimate_bps, loss_fraction: link.loss_fraction, now };
        let Some(step) = self.chooser.decide(&inputs) else { return };
        if self.pending.as_ref().is_some_and(|pending| pending.layer == step.layer) {
            return;
        }
        let layer = rung(step.layer, self.layer_count).layer;
        // The switch waits for that layer's keyframe: ask its camera for one.
        layers.request_source_keyframe(layer);
        self.actions.push_back(FeedAction::AwaitKeyframeOf(layer));
        self.pending = Some(step);
    }

    /// The next packet whose time has come, in the order they were made.
    pub fn poll_packet(&mut self, now: Instant) -> Option<Outgoing> {
        if self.queue.front()?.release > now {
            return None;
        }
        let packet = self.queue.pop_front();
        if self.queue.is_empty() && self.queue.capacity() > QUEUE_ROOM_KEPT {
            self.queue.shrink_to(QUEUE_ROOM_KEPT);
        }
        packet
    }

    /// The layer the viewer gets, and why.
    pub fn status(&self) -> &LayerStatus {
        &self.status
    }

    pub fn poll_action(&mut self) -> Option<FeedAction> {
        self.actions.pop_front()
    }

    fn enqueue(&mut self, frame: &Arc<Frame>, delivery: Delivery, now: Instant) {
        let (timestamp, deadline, live) = match delivery {
            Delivery::Live { layer } => (frame.timestamp, frame.arrived_at + MAX_PACING_DELAY, Some(LiveTiming { layer, arrived_at: frame.arrived_at, handed_in: now })),
            Delivery::Catchup { timestamp, deadline } => (timestamp, deadline, None),
        };
        // Packets leave in the order they were made, whatever their frames' deadlines.
        let mut not_before = self.queue.back().map_or(now, |last| last.release);
        let packets: Vec<Packet> = self.header.packets(frame, timestamp, &self.sent).collect();
        let count = packets.len();
        for (index, packet) in packets.into_iter().enumerate() {
            let release = self.pacer.release_time(packet.payload.len(), now, deadline).max(not_before);
            not_before = release;
            self.queue.push_back(Outgoing { packet, release, ends_frame: index + 1 == count, live });
        }
    }
}

/// The cached GOP with the timestamps it is replayed at (see `REPLAY_FRAME_SPACING_90K`).
fn squeezed_replay(backlog: Vec<Arc<Frame>>) -> impl Iterator<Item = (Arc<Frame>, u64)> {
    let newest = backlog.last().map_or(0, |frame| frame.timestamp);
    let count = backlog.len() as u64;
    backlog.into_iter().zip(1..).map(move |(frame, position)| {
        let timestamp = newest.saturating_sub((count - position) * REPLAY_FRAME_SPACING_90K);
        (frame, timestamp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoParameters;
    use bytes::Bytes;
    use std::cell::RefCell;

    const LIVE_BITRATE: f64 = 2_000_000.0;

    /// A path's layers as a table, best first; records what the feed asked of their sources.
    struct TableLayers {
        bitrates: Vec<f64>,
        cached: RefCell<Vec<Option<Arc<Frame>>>>,
        source_requests: RefCell<Vec<usize>>,
    }

    impl TableLayers {
        fn new(bitrates: &[f64]) -> Self {
            Self { bitrates: bitrates.to_vec(), cached: RefCell::new(vec![None; bitrates.len()]), source_requests: RefCell::new(Vec::new()) }
        }
    }

    impl Layers for TableLayers {
        fn count(&self) -> usize {
            self.bitrates.len()
        }
        fn rung_bitrates(&self) -> Vec<Option<f64>> {
            // The keyframes-only rung costs a tenth of the lowest layer.
            self.bitrates.iter().map(|&b| Some(b)).chain(self.bitrates.last().map(|&b| Some(b / 10.0))).collect()
        }
        fn bitrate_bps(&self, layer: usize) -> f64 {
            self.bitrates[layer]
        }
        fn cached_keyframe(&self, layer: usize) -> Option<Arc<Frame>> {
            self.cached.borrow()[layer].clone()
        }
        fn request_source_keyframe(&self, layer: usize) {
            self.source_requests.borrow_mut().push(layer);
        }
    }

    /// An H.264 frame of one NAL unit of `size` bytes, whole at Lookout at `arrived_at`.
    fn frame(timestamp: u64, keyframe: bool, size: usize, arrived_at: Instant) -> Arc<Frame> {
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        let mut data = (size as u32).to_be_bytes().to_vec();
        data.push(if keyframe { 0x65 } else { 0x41 });
        data.resize(4 + size, 0xAB);
        Arc::new(Frame { arrived_at, ..Frame::new(timestamp, keyframe, Bytes::from(data), parameters) })
    }

    fn feed(layers: &TableLayers, backlog: Vec<Arc<Frame>>, now: Instant) -> VideoFeed {
        let id = RtpStreamId { ssrc: 7, payload_type: 102 };
        VideoFeed::new(id, layers, backlog, Arc::new(SentFrames::default()), Arc::new(ForwarderStats::default()), now)
    }

    /// Runs the feed in simulated time for `duration`, as the forwarder does: releases what is
    /// due, sleeps to the next timeout. Returns what left and when.
    fn run_for(feed: &mut VideoFeed, layers: &TableLayers, link: LinkReading, now: &mut Instant, duration: Duration) -> Vec<Outgoing> {
        let until = *now + duration;
        let mut sent = Vec::new();
        loop {
            while let Some(outgoing) = feed.poll_packet(*now) {
                assert!(outgoing.release <= *now, "never released early");
                sent.push(outgoing);
            }
            let next = feed.poll_timeout();
            if next > until {
                *now = until;
                return sent;
            }
            *now = next.max(*now);
            feed.handle_timeout(link, layers, *now);
        }
    }

    fn sequence_numbers(sent: &[Outgoing]) -> Vec<u16> {
        sent.iter().map(|outgoing| outgoing.packet.header.sequence_number).collect()
    }

    fn assert_consecutive(sent: &[Outgoing]) {
        let numbers = sequence_numbers(sent);
        assert!(numbers.windows(2).all(|pair| pair[1] == pair[0].wrapping_add(1)), "sequence numbers run on: {numbers:?}");
    }

    #[test]
    fn a_new_viewer_gets_the_cached_gop_squeezed_within_the_replay_window() {
        let start = Instant::now();
        let layers = TableLayers::new(&[LIVE_BITRATE]);
        // A second-long GOP: a 60 KB keyframe, then 29 frames of 8 KB, 3000 ticks apart.
        let gop: Vec<Arc<Frame>> = (0..30u64).map(|i| frame(90_000 + i * 3000, i == 0, if i == 0 { 60_000 } else { 8_000 }, start - Duration::from_millis(1000 - i * 33))).collect();
        let mut now = start;
        let mut feed = feed(&layers, gop, now);
        let sent = run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_secs(1));
        assert_consecutive(&sent);
        assert_eq!(sent.iter().filter(|o| o.ends_frame).count(), 30, "every frame of the GOP");
        let last = sent.last().expect("packets").release;
        assert!(last <= start + REPLAY_WINDOW, "the replay ends within its window: {:?}", last - start);
        assert!(last >= start + REPLAY_WINDOW / 2, "and is spread over it, not one burst: {:?}", last - start);
        let timestamps: Vec<u32> = sent.iter().filter(|o| o.ends_frame).map(|o| o.packet.header.timestamp).collect();
        assert!(timestamps.windows(2).all(|pair| pair[1].wrapping_sub(pair[0]) == REPLAY_FRAME_SPACING_90K as u32), "squeezed: {timestamps:?}");
        assert!(sent.iter().all(|o| o.live.is_none()), "catch-up frames do not count as live send delays");
        assert!(sent.len() > QUEUE_ROOM_KEPT, "the replay needed more room than a drained queue keeps");
        assert!(feed.queue.capacity() <= QUEUE_ROOM_KEPT, "and gave it back once sent: {}", feed.queue.capacity());
    }

    #[test]
    fn a_large_keyframe_is_paced_but_never_past_its_deadline_and_late_frames_go_at_once() {
        let start = Instant::now();
        let layers = TableLayers::new(&[LIVE_BITRATE]);
        let mut now = start;
        let mut feed = feed(&layers, Vec::new(), now);
        // 200 KB at 2.5 × 2 Mbit/s would take 320 ms: the deadline (150 ms after arrival) cuts it.
        feed.on_frame(&frame(0, true, 200_000, now), &layers, now);
        let sent = run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_secs(1));
        let releases: Vec<Duration> = sent.iter().map(|o| o.release - start).collect();
        assert!(releases.windows(2).all(|pair| pair[0] <= pair[1]), "in order");
        assert!(releases[releases.len() / 4] > Duration::from_millis(20), "spread out: {releases:?}");
        assert_eq!(*releases.last().expect("packets"), MAX_PACING_DELAY, "the rest goes at the deadline");

        // A frame that reaches Lookout already later than its deadline (a stalled camera link)
        // leaves whole at once.
        let arrived_long_ago = now - Duration::from_millis(400);
        feed.on_frame(&frame(3000, false, 30_000, arrived_long_ago), &layers, now);
        let late = run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_millis(1));
        assert!(late.len() > 20 && late.iter().all(|o| o.release <= now), "all {} packets at once", late.len());
        let mut all = sent;
        all.extend(late);
        assert_consecutive(&all);
    }

    #[test]
    fn keyframe_requests_resend_the_cached_keyframe_once_per_interval() {
        let start = Instant::now();
        let layers = TableLayers::new(&[LIVE_BITRATE]);
        let mut now = start;
        let mut feed = feed(&layers, Vec::new(), now);
        feed.on_keyframe_request(&layers, now);
        assert_eq!(feed.poll_action(), None, "nothing cached yet: nothing resent");
        assert_eq!(*layers.source_requests.borrow(), [0], "but the camera is asked");

        layers.cached.borrow_mut()[0] = Some(frame(9000, true, 20_000, start));
        now += MIN_RESYNC_INTERVAL;
        // A browser repeats its PLI every few tens of ms while it waits.
        for _ in 0..5 {
            feed.on_keyframe_request(&layers, now);
            now += Duration::from_millis(40);
        }
        assert_eq!(feed.poll_action(), Some(FeedAction::SkipToNextKeyframe));
        assert_eq!(feed.poll_action(), None, "one resend for the burst of requests");
        let sent = run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_secs(1));
        assert_eq!(sent.iter().filter(|o| o.ends_frame).count(), 1);
        assert_eq!(layers.source_requests.borrow().len(), 2);
        now = start + Duration::from_secs(2);
        feed.on_keyframe_request(&layers, now);
        assert_eq!(feed.poll_action(), Some(FeedAction::SkipToNextKeyframe), "a later request is answered again");
    }

    #[test]
    fn a_lossy_link_steps_down_at_the_lower_layers_keyframe_and_timestamps_run_on() {
        let start = Instant::now();
        let layers = TableLayers::new(&[LIVE_BITRATE, 300_000.0]);
        let mut now = start;
        let mut feed = feed(&layers, Vec::new(), now);
        let lossy = LinkReading { estimate_bps: Some(3_000_000.0), loss_fraction: Some(0.3), burst_bps: None };
        // Live frames of the best layer keep coming while the link reports heavy loss.
        let mut sent = Vec::new();
        for i in 0..10u64 {
            feed.on_frame(&frame(i * 3000, i == 0, 5_000, now), &layers, now);
            sent.extend(run_for(&mut feed, &layers, lossy, &mut now, Duration::from_millis(33)));
        }
        let mut actions = std::iter::from_fn(|| feed.poll_action());
        assert_eq!(actions.next(), Some(FeedAction::AwaitKeyframeOf(1)), "the switch waits for the lower layer's keyframe");
        assert!(layers.source_requests.borrow().contains(&1), "whose camera is asked for one");
        assert_eq!(feed.status().layer, LayerStatus::initial(2).layer, "still on the best layer until then");

        let id = RtpStreamId { ssrc: 7, payload_type: 102 };
        let last_of_main = sent.last().map(|o| o.packet.header.sequence_number).expect("main was sent");
        assert!(feed.sent.packet(id, last_of_main).is_some(), "resent on a NACK while on main");

        // The lower layer's keyframe, on a clock of its own.
        let keyframe = frame(5_000_000, true, 4_000, now);
        feed.on_switch_keyframe(Some(&keyframe), &layers, now);
        assert!(feed.sent.packet(id, last_of_main).is_none(), "but no longer once the decoder starts again on sub");
        let restart = LIVE_BITRATE.min(3_000_000.0);
        assert_eq!(feed.poll_action(), Some(FeedAction::RestartEstimateFrom(restart)), "judged again by the new layer's packets");
        assert!(matches!(feed.poll_action(), Some(FeedAction::Status(status)) if status.layer != LayerStatus::initial(2).layer));
        sent.extend(run_for(&mut feed, &layers, lossy, &mut now, Duration::from_millis(50)));
        assert_consecutive(&sent);
        let timestamps: Vec<u32> = sent.iter().filter(|o| o.ends_frame).map(|o| o.packet.header.timestamp).collect();
        let step = timestamps[timestamps.len() - 1].wrapping_sub(timestamps[timestamps.len() - 2]);
        assert!((1..=6000).contains(&step), "the new layer's timestamps follow the old ones by the time between them: {step}");
        assert_eq!(sent.last().and_then(|o| o.live).map(|live| live.layer), Some(1));
    }

    #[test]
    fn a_switch_to_a_layer_that_ends_is_abandoned_and_a_pin_is_obeyed() {
        let start = Instant::now();
        let layers = TableLayers::new(&[LIVE_BITRATE, 300_000.0]);
        let mut now = start;
        let mut feed = feed(&layers, Vec::new(), now);
        feed.on_pin(Some(1), now);
        run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_millis(1));
        let actions: Vec<FeedAction> = std::iter::from_fn(|| feed.poll_action()).collect();
        assert!(actions.contains(&FeedAction::AwaitKeyframeOf(1)), "the pinned layer is asked for at once: {actions:?}");
        feed.on_switch_keyframe(None, &layers, now);
        assert_eq!(feed.poll_action(), None, "that layer's stream ended: no switch");
        assert_eq!(feed.status().layer, LayerStatus::initial(2).layer);
    }

    #[test]
    fn on_keyframes_only_the_frames_between_are_withheld() {
        let start = Instant::now();
        let layers = TableLayers::new(&[LIVE_BITRATE]);
        let mut now = start;
        let mut feed = feed(&layers, Vec::new(), now);
        feed.on_pin(Some(1), now); // rung 1 of a one-layer path: its keyframes alone
        run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_millis(1));
        let _ = std::iter::from_fn(|| feed.poll_action()).count();
        feed.on_switch_keyframe(Some(&frame(0, true, 3_000, now)), &layers, now);
        for i in 1..30u64 {
            feed.on_frame(&frame(i * 3000, i % 15 == 0, 3_000, now), &layers, now);
        }
        let sent = run_for(&mut feed, &layers, LinkReading::default(), &mut now, Duration::from_secs(1));
        assert_eq!(sent.iter().filter(|o| o.ends_frame).count(), 2, "the switch's keyframe and the one live keyframe");
        assert_eq!(feed.stats.frames_withheld.load(Ordering::Relaxed), 28);
    }

    #[test]
    fn a_retargeted_track_replays_the_new_paths_gop_right_after_the_old_paths_frames() {
        let start = Instant::now();
        let old_path = TableLayers::new(&[LIVE_BITRATE, 300_000.0]);
        let mut now = start;
        let mut feed = feed(&old_path, Vec::new(), now);
        let mut sent = Vec::new();
        for i in 0..5u64 {
            feed.on_frame(&frame(1_000_000 + i * 3000, i == 0, 5_000, now), &old_path, now);
            sent.extend(run_for(&mut feed, &old_path, LinkReading::default(), &mut now, Duration::from_millis(33)));
        }
        let _ = std::iter::from_fn(|| feed.poll_action()).count();
        let id = RtpStreamId { ssrc: 7, payload_type: 102 };
        let last_old = sent.last().map(|o| o.packet.header.sequence_number).expect("the old path was sent");

        // Another camera, on a clock of its own, with a GOP of 10 frames cached, the newest
        // just in.
        let new_path = TableLayers::new(&[1_000_000.0]);
        let gop: Vec<Arc<Frame>> = (0..10u64).map(|i| frame(7_000_000 + i * 3000, i == 0, 4_000, now - Duration::from_millis(330 - i * 33))).collect();
        feed.retarget(&new_path, gop, Arc::new(ForwarderStats::default()), now);
        assert!(feed.sent.packet(id, last_old).is_none(), "the old path's packets are not resent to a decoder that starts again");
        assert_eq!(feed.status(), &LayerStatus::initial(1), "the new path's one layer");
        let replayed = run_for(&mut feed, &new_path, LinkReading::default(), &mut now, REPLAY_WINDOW);
        assert_eq!(replayed.iter().filter(|o| o.ends_frame).count(), 10, "the whole GOP within the replay window");
        sent.extend(replayed);
        feed.on_frame(&frame(7_000_000 + 10 * 3000, false, 4_000, now), &new_path, now);
        sent.extend(run_for(&mut feed, &new_path, LinkReading::default(), &mut now, Duration::from_millis(50)));
        assert_consecutive(&sent);
        let timestamps: Vec<u32> = sent.iter().filter(|o| o.ends_frame).map(|o| o.packet.header.timestamp).collect();
        assert!(timestamps.windows(2).all(|pair| (1..=6000).contains(&pair[1].wrapping_sub(pair[0]))), "timestamps keep rising, by little: {timestamps:?}");
        let replay_steps: Vec<u32> = timestamps[5..15].windows(2).map(|pair| pair[1].wrapping_sub(pair[0])).collect();
        assert!(replay_steps.iter().all(|&step| step == REPLAY_FRAME_SPACING_90K as u32), "the GOP squeezed as for a new viewer: {replay_steps:?}");
    }

    #[test]
    fn a_replayed_gop_ends_at_the_newest_frame_squeezed_behind_it() {
        let at = Instant::now();
        let gop: Vec<Arc<Frame>> = [90_000, 93_000, 96_000, 450_000].iter().enumerate().map(|(i, &t)| frame(t, i == 0, 10, at)).collect();
        let replayed: Vec<u64> = squeezed_replay(gop).map(|(_, t)| t).collect();
        let spacing = REPLAY_FRAME_SPACING_90K;
        assert_eq!(replayed, vec![450_000 - 3 * spacing, 450_000 - 2 * spacing, 450_000 - spacing, 450_000]);
    }

    #[test]
    fn replay_of_nothing_or_of_an_early_gop() {
        let at = Instant::now();
        assert_eq!(squeezed_replay(Vec::new()).count(), 0);
        let replayed: Vec<u64> = squeezed_replay(vec![frame(0, true, 10, at), frame(100, false, 10, at)]).map(|(_, t)| t).collect();
        assert_eq!(replayed, vec![0, 100], "saturates at zero; the sender keeps timestamps rising");
    }
}
