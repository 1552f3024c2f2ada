// Holds the picture back to the sound while the sound is heard.
//
// Lookout's sender reports map audio and video to one capture clock, so the browser's
// `estimatedPlayoutTimestamp` of each track says which moment of capture it plays now. Chromium
// syncs the two itself but leaves a gap under 30 ms alone, and by its own estimates the picture
// ran 20-27 ms ahead of the sound on every run here (the test pattern's beeps came -12 to 55 ms
// after their pictures; 3-18 ms with this, once settled). The audio's delay cannot be cut from
// the page, the picture's can be raised: this sets the video receiver's `jitterBufferTarget` so
// the two estimates meet, and lets go of it while the page is muted, when the lowest video
// latency matters more than sync.

// Gaps smaller than this are left alone: both estimates move by a few ms from second to second.
const TOLERANCE_MS = 8;
// Never hold the picture back by more than this for the sake of the sound.
const MAX_TARGET_MS = 300;
// Each correction goes this far towards the gap measured: the estimates lag the change.
const GAIN = 0.7;

export class LipSync {
  constructor() {
    // The video jitter buffer target this sets, null while the browser's own applies.
    this.targetMs = null;
    // How far the picture plays ahead of the sound (ms of capture time), at the last sample.
    this.offsetMs = null;
    this.previousVideo = null;
  }

  // `report`: the connection's stats; `videoReceiver`: where the target is set; `heard`:
  // whether the sound plays (the element is not muted and the path has audio).
  update(report, videoReceiver, heard) {
    let audio = null;
    let video = null;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'audio') audio = s;
      else if (s.kind === 'video') video = s;
    });
    const previousVideo = this.previousVideo;
    this.previousVideo = video;
    if (!audio?.estimatedPlayoutTimestamp || !video?.estimatedPlayoutTimestamp) {
      this.offsetMs = null;
      return;
    }
    this.offsetMs = video.estimatedPlayoutTimestamp - audio.estimatedPlayoutTimestamp;
    if (!heard || !videoReceiver) {
      this.release(videoReceiver);
      return;
    }
    if (Math.abs(this.offsetMs) < TOLERANCE_MS) return;
    const base = this.targetMs ?? currentVideoTargetMs(video, previousVideo);
    if (base === null) return;
    const target = Math.round(Math.min(MAX_TARGET_MS, Math.max(0, base + GAIN * this.offsetMs)));
    if (target === this.targetMs) return;
    this.targetMs = target;
    videoReceiver.jitterBufferTarget = target;
  }

  release(videoReceiver) {
    if (this.targetMs === null) return;
    this.targetMs = null;
    if (videoReceiver) videoReceiver.jitterBufferTarget = null;
  }

  // What the page shows: the gap and how long the picture is held for it.
  get figures() {
    return { offsetMs: this.offsetMs, videoTargetMs: this.targetMs };
  }
}

// The browser's own video jitter buffer target over the last second, the point a first
// correction starts from.
function currentVideoTargetMs(video, previous) {
  if (!previous || video.jitterBufferEmittedCount <= previous.jitterBufferEmittedCount) return null;
  const emitted = video.jitterBufferEmittedCount - previous.jitterBufferEmittedCount;
  return (1000 * (video.jitterBufferTargetDelay - previous.jitterBufferTargetDelay)) / emitted;
}
