// Opens Lookout's page on one path and checks that video is rendered.
//
//   node play.mjs --url http://127.0.0.1:8080/?path=demo --width 1280 --height 720 --seconds 5
//
// With --resume, after that first check it prints {"phase":"playing"}, waits for a line on
// stdin (the test restarts the server or the camera meanwhile) and then checks that frames
// are rendered again, by the page's own reconnection.
//
// Passes (exit 0) when the page renders frames of the expected size and keeps rendering them
// (the count still rises over the last seconds). Prints one JSON line with what it measured:
// time to first frame, frames rendered, fps, and glass-to-glass latency when the picture
// carries Lookout's barcode.

import { launch } from './chromium.mjs';
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
  },
});
if (!args.url) {
  console.error('usage: node play.mjs --url URL [--width W --height H] [--seconds S]');
  process.exit(2);
}

const failures = [];
const { context, close } = await launch();
let result = {};
try {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`page: ${m.text()}`); });
  await page.goto(args.url);
  const figures = () => page.evaluate(() => {
    const f = window.lookout.player.figures;
    return { ...f, latencyMs: [...f.latencyMs], errors: [...f.errors] };
  });
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
    await page.waitForTimeout(seconds * 1000);
    f = await figures();
    const rendered = f.framesRendered - before;
    result.fpsRendered = rendered / seconds;
    if (rendered < seconds * 5) failures.push(`only ${rendered} frames rendered in ${seconds} s`);
    if (args.width && f.width !== Number(args.width)) failures.push(`width ${f.width}, expected ${args.width}`);
    if (args.height && f.height !== Number(args.height)) failures.push(`height ${f.height}, expected ${args.height}`);
  }
  if (args.resume && !failures.length) {
    console.log(JSON.stringify({ phase: 'playing' }));
    await nextStdinLine();
    const resumedFrom = (await figures()).framesRendered;
    const resumeDeadline = Date.now() + Number(args['first-frame-timeout']) * 1000;
    const startedWaiting = Date.now();
    while ((await figures()).framesRendered < resumedFrom + 30 && Date.now() < resumeDeadline) {
      await page.waitForTimeout(100);
    }
    f = await figures();
    if (f.framesRendered < resumedFrom + 30) failures.push(`playback did not resume within ${args['first-frame-timeout']} s`);
    else result.resumedAfterMs = Date.now() - startedWaiting;
  }
  const sorted = [...f.latencyMs].sort((a, b) => a - b);
  const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
  result = {
    ...result,
    url: args.url,
    firstFrameMs: f.firstFrameMs,
    framesRendered: f.framesRendered,
    width: f.width,
    height: f.height,
    framesDropped: f.framesDropped,
    freezeCount: f.freezeCount,
    packetsLost: f.packetsLost,
    latencySamples: sorted.length,
    latencyP50Ms: pick(0.5),
    latencyP95Ms: pick(0.95),
    reportedLatencyMs: f.reportedLatencyMs,
    nackCount: f.nackCount,
    route: f.route,
    transport: f.transport,
    fallbackReason: f.fallbackReason,
    status: await page.textContent('#status'),
    errors: f.errors,
  };
} catch (error) {
  failures.push(`browser: ${error.message}`);
} finally {
  await close();
}
console.log(JSON.stringify({ ...result, failures }));
process.exit(failures.length ? 1 : 0);
