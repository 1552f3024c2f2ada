// Opens Lookout's page on one path and checks that video is rendered.
//
//   node play.mjs --url http://127.0.0.1:8080/?path=demo --width 1280 --height 720 --seconds 5
//
// With --resume, after that first check it prints {"phase":"playing"}, waits for a line on
// stdin (the test restarts the server or the camera meanwhile) and then checks that frames
// are rendered again, by the page's own reconnection. It reports the WebRTC sessions the page
// negotiated (sessionsStarted) and the status lines it showed (statusesSeen).
//
// With --layers sub,main,..., it then picks each layer in turn in the page's layer menu and
// records, for each, the layer the server reports, the picture's width and the frames rendered
// over the 2 s that follow the switch.
//
// With --lip-sync, it also listens to the sound for the test pattern's beeps
// (one at the start of every second of capture time) and reports when each was heard after
// its capture (audioLatencyMs, the median) beside the picture's latency from the barcode: their
// difference is how far apart the browser plays sound and picture (lipSyncMs, positive when the
// sound comes late). It unmutes the page first, as sync matters, and the page keeps it, only
// while the sound is heard; beeps of the first SETTLE_MS, while the page and the browser's
// own sync still move the picture, are left out (all are in beepLatenciesMs).
//
// With --unmute, it clicks the page's Unmute button once the first frame is rendered, so that
// the audio figures carry the sound's level (totalAudioEnergy).
//
// With --without-h264, the browser says it has no H.264 for WebRTC (RTCRtpReceiver's
// capabilities leave it out, as Firefox's do without its OpenH264 plugin).
//
// Passes (exit 0) when the page renders frames of the expected size and keeps rendering them
// (the count still rises over the last seconds). Prints one JSON line with what it measured:
// time to first frame, frames rendered, fps, and glass-to-glass latency when the picture
// carries Lookout's barcode.

import { launch, openPage } from './chromium.mjs';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';

function nextStdinLine() {
  const lines = createInterface({ input: process.stdin });
  return new Promise((resolve) => lines.once('line', (line) => { lines.close(); resolve(line); }));
}

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    'first-frame-timeout': { type: 'string', default: '15' },
    resume: { type: 'boolean', default: false },
    layers: { type: 'string' },
    'lip-sync': { type: 'boolean', default: false },
    unmute: { type: 'boolean', default: false },
    'without-h264': { type: 'boolean', default: false },
  },
});
if (!args.url) {
  console.error('usage: node play.mjs --url URL [--width W --height H] [--seconds S]');
  process.exit(2);
}

const SETTLE_MS = 5000;
const failures = [];
const { context, close } = await launch();
let result = {};
try {
  const page = await openPage(context);
  // Every status line the page shows, in order, without repeats: watched from before the
  // page's own scripts run, so that the first ones are not missed.
  await page.addInitScript(() => {
    window.statusesSeen = [];
    new MutationObserver(() => {
      const text = document.getElementById('status')?.textContent;
      if (text && window.statusesSeen.at(-1) !== text) window.statusesSeen.push(text);
    }).observe(document, { childList: true, characterData: true, subtree: true });
  });
  if (args['without-h264']) {
    await page.addInitScript(() => {
      const capabilities = RTCRtpReceiver.getCapabilities.bind(RTCRtpReceiver);
      RTCRtpReceiver.getCapabilities = (kind) => {
        const found = capabilities(kind);
        if (kind !== 'video' || !found) return found;
        return { ...found, codecs: found.codecs.filter((codec) => codec.mimeType.toLowerCase() !== 'video/h264') };
      };
    });
  }
  await page.goto(args.url);
  // The page's <lookout-player> makes its player once it knows it is on screen.
  await page.waitForFunction(() => window.lookout?.player, null, { timeout: 10000 }).catch(() => {});
  const figures = () => page.evaluate(() => {
    const f = window.lookout.player.figures;
    return { ...f, latencyMs: [...f.latencyMs], errors: [...f.errors] };
  });
  // Sampled while playing, so that a dropped frame can be matched with the server's log.
  result.framesDroppedAt = [];
  let droppedSoFar = 0;
  const noteDrops = async () => {
    const f = await figures();
    if (f.framesDropped !== droppedSoFar) {
      result.framesDroppedAt.push({ at: new Date().toISOString(), framesDropped: f.framesDropped, framesRendered: f.framesRendered });
    }
    droppedSoFar = f.framesDropped;
    return f;
  };
  // Every frame presented, as the video element tells it (when, and which frame by its
  // media time), so that a layer step or a resume that shows fewer frames than arrived says
  // how: one long hold (waiting for a frame it can decode) or frames skipped all along (a
  // starved browser).
  await page.evaluate(() => {
    window.presented = [];
    const video = window.lookout.element.video;
    const onFrame = (now, metadata) => {
      window.presented.push([now, metadata.mediaTime * 1000]);
      if (window.presented.length > 5000) window.presented.shift();
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
  const timeline = (from) => page.evaluate((from) => {
    const frames = window.presented.filter(([at]) => at >= from);
    let longestHoldMs = 0, holdAfterMs = null, mediaSkippedMs = 0;
    for (let i = 1; i < frames.length; i += 1) {
      const hold = frames[i][0] - frames[i - 1][0];
      if (hold > longestHoldMs) [longestHoldMs, holdAfterMs] = [hold, frames[i - 1][0] - from];
      // Media time that moved more than two frames at 30 fps: frames not shown.
      const step = frames[i][1] - frames[i - 1][1];
      if (step > 70) mediaSkippedMs += step - 33;
    }
    return { longestHoldMs: Math.round(longestHoldMs), holdAfterMs: holdAfterMs && Math.round(holdAfterMs), mediaSkippedMs: Math.round(mediaSkippedMs) };
  }, from);
  const deadline = Date.now() + Number(args['first-frame-timeout']) * 1000;
  let f = await figures();
  while (f.framesRendered === 0 && Date.now() < deadline) {
    await page.waitForTimeout(100);
    f = await figures();
  }
  if (f.framesRendered === 0) {
    failures.push(`no frame rendered within ${args['first-frame-timeout']} s (errors: ${f.errors.join('; ') || 'none'})`);
  } else {
    const seconds = Number(args.seconds);
    const before = f.framesRendered;
    if (args['lip-sync']) await page.evaluate(listenForBeeps);
    // The page starts muted, and Chromium reports no audio level for a muted element.
    if (args.unmute || args['lip-sync']) await page.click('#unmute');
    droppedSoFar = f.framesDropped;
    const playUntil = Date.now() + seconds * 1000;
    while (Date.now() < playUntil) {
      await page.waitForTimeout(Math.min(250, Math.max(0, playUntil - Date.now())));
      await noteDrops();
    }
    f = await figures();
    const rendered = f.framesRendered - before;
    result.fpsRendered = rendered / seconds;
    if (rendered < seconds * 5) failures.push(`only ${rendered} frames rendered in ${seconds} s`);
    if (args.width && f.width !== Number(args.width)) failures.push(`width ${f.width}, expected ${args.width}`);
    if (args.height && f.height !== Number(args.height)) failures.push(`height ${f.height}, expected ${args.height}`);
  }
  if (args.resume && !failures.length) {
    console.log(JSON.stringify({ phase: 'playing', framesDropped: f.framesDropped }));
    // Sampled meanwhile too: the frames dropped as the source went away are told apart
    // from those dropped as it came back.
    let told = false;
    const continued = nextStdinLine().then(() => { told = true; });
    while (!told) {
      await Promise.race([continued, page.waitForTimeout(250)]);
      await noteDrops();
    }
    const resumedFrom = (await figures()).framesRendered;
    const resumeToldAt = await page.evaluate(() => performance.now());
    const resumeDeadline = Date.now() + Number(args['first-frame-timeout']) * 1000;
    const startedWaiting = Date.now();
    while ((await noteDrops()).framesRendered < resumedFrom + 30 && Date.now() < resumeDeadline) {
      await page.waitForTimeout(100);
    }
    f = await figures();
    if (f.framesRendered < resumedFrom + 30) failures.push(`playback did not resume within ${args['first-frame-timeout']} s`);
    else result.resumedAfterMs = Date.now() - startedWaiting;
    // How the picture came back: the longest hold after it did, and media time skipped.
    result.afterResume = await timeline(resumeToldAt + Math.max(0, (result.resumedAfterMs ?? 0) - 1000));
  }
  if (args.layers && !failures.length) {
    result.layerSteps = [];
    for (const layer of args.layers.split(',')) {
      const atRequest = await figures();
      const requestedAt = await page.evaluate(() => performance.now());
      await page.selectOption('#layer-choice', layer === 'auto' ? '' : layer);
      // 'auto' hands the choice back to the server, which says so in the layer's mode.
      const switched = (f) => (layer === 'auto' ? f.layer?.mode === 'auto' : f.layer?.name === layer);
      const switchDeadline = Date.now() + 5000;
      while (!switched(await figures()) && Date.now() < switchDeadline) await page.waitForTimeout(50);
      const before = await figures();
      if (!switched(before)) {
        failures.push(`the server did not switch to ${layer} within 5 s (it says ${JSON.stringify(before.layer)})`);
        break;
      }
      await page.waitForTimeout(2000);
      const after = await figures();
      result.layerSteps.push({
        layer, mode: after.layer.mode, width: after.width, height: after.height,
        framesRendered: after.framesRendered - before.framesRendered,
        // What arrived over the same 2 s: a source slowed down by a busy machine sends fewer.
        framesReceived: after.framesReceived - before.framesReceived,
        // From the request to switch until 2 s after it took effect.
        framesDropped: after.framesDropped - atRequest.framesDropped,
        freezes: after.freezeCount - atRequest.freezeCount,
        // From the request: the longest time one picture stayed, when it began, and media
        // time skipped over (frames decoded but never shown).
        ...(await timeline(requestedAt)),
      });
      if (after.framesRendered - before.framesRendered < 10) failures.push(`only ${after.framesRendered - before.framesRendered} frames in 2 s on ${layer}`);
    }
    f = await figures();
  }
  if (args['lip-sync'] && !failures.length) {
    const { onsets, since } = await page.evaluate(() => ({ onsets: window.beepOnsetsMs, since: window.listeningSinceMs }));
    // A beep starts at a whole second of capture time: its latency is how far past one it was heard.
    const latency = (ms) => Math.round(ms % 1000);
    const heard = onsets.filter((ms) => ms - since >= SETTLE_MS).map(latency).sort((a, b) => a - b);
    const videoLatencies = [...f.latencyMs.slice(-90)].sort((a, b) => a - b);
    if (heard.length < 2 || !videoLatencies.length) {
      failures.push(`lip sync: ${heard.length} beeps heard, ${videoLatencies.length} frames read`);
    } else {
      result.audioLatencyMs = heard[Math.floor(heard.length / 2)];
      result.lipSyncMs = result.audioLatencyMs - videoLatencies[Math.floor(videoLatencies.length / 2)];
      result.beepLatenciesMs = onsets.map(latency);
    }
  }
  const sorted = [...f.latencyMs].sort((a, b) => a - b);
  const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
  result = {
    ...result,
    url: args.url,
    firstFrameMs: f.firstFrameMs,
    framesRendered: f.framesRendered,
    // From the first picture on: the longest any picture stayed, and media time not shown.
    playback: await timeline(0).catch(() => null),
    width: f.width,
    height: f.height,
    framesDropped: f.framesDropped,
    freezeCount: f.freezeCount,
    freezeSeconds: f.freezeSeconds,
    packetsLost: f.packetsLost,
    latencySamples: sorted.length,
    latencyP50Ms: pick(0.5),
    latencyP95Ms: pick(0.95),
    // Over the last 30 frames, the same the page's figure from reported capture times covers.
    latencyRecentP50Ms: median(f.latencyMs.slice(-30)),
    reportedLatencyMs: f.reportedLatencyMs,
    nackCount: f.nackCount,
    audio: f.audio,
    lipSync: f.lipSync,
    route: f.route,
    transport: f.transport,
    fallbackReason: f.fallbackReason,
    status: await page.textContent('#status'),
    statusesSeen: (await page.evaluate(() => window.statusesSeen)).slice(-20),
    sessionsStarted: f.sessionsStarted,
    sourceInterruptions: f.sourceInterruptions,
    errors: f.errors,
  };
} catch (error) {
  failures.push(`browser: ${error.message}`);
} finally {
  await close();
}
console.log(JSON.stringify({ ...result, failures }));

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Runs in the page: notes the wall-clock time at which each beep's first sound leaves the
// audio output (window.beepOnsetsMs). The audio track's samples reach a MediaStreamTrackProcessor
// as the output device pulls them from the jitter buffer, 10 ms at a time; the output's own delay
// after that is the browser's `media-playout` estimate. (Web Audio was tried first: its path from
// a MediaStream to a ScriptProcessor added 40-190 ms of its own, different on each run.)
async function listenForBeeps() {
  const player = window.lookout.player;
  const track = player.video.srcObject.getAudioTracks()[0];
  const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  window.beepOnsetsMs = [];
  window.listeningSinceMs = performance.timeOrigin + performance.now();
  let quietSamples = 0;
  let outputDelayMs = 0;
  let previousPlayout = null;
  // The output device's delay, from the stats of the last second.
  const sampleOutputDelay = async () => {
    const report = await player.pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'media-playout') return;
      if (previousPlayout && s.totalSamplesCount > previousPlayout.totalSamplesCount) {
        outputDelayMs = (1000 * (s.totalPlayoutDelay - previousPlayout.totalPlayoutDelay)) / (s.totalSamplesCount - previousPlayout.totalSamplesCount);
      }
      previousPlayout = s;
    });
  };
  await sampleOutputDelay();
  setInterval(sampleOutputDelay, 1000);
  (async () => {
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) return;
      const pulledAt = performance.timeOrigin + performance.now();
      const samples = new Float32Array(chunk.numberOfFrames);
      chunk.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
      for (let i = 0; i < samples.length; i++) {
        const loud = Math.abs(samples[i]) > 0.05;
        // A beep after at least 0.5 s of quiet.
        if (loud && quietSamples > chunk.sampleRate / 2) {
          window.beepOnsetsMs.push(pulledAt + (1000 * i) / chunk.sampleRate + outputDelayMs);
        }
        quietSamples = loud ? 0 : quietSamples + 1;
      }
      chunk.close();
    }
  })();
}
process.exit(failures.length ? 1 : 0);
