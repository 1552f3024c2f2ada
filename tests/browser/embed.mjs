// A page on another origin embeds <lookout-player> elements from a Lookout, as any site would:
//
//   node embed.mjs --server http://127.0.0.1:8080 --path demo
//
// The page (served by this script on another loopback port: an origin of its own, in the same
// private address space, which Chromium requires of a page on plain http) loads
// /assets/lookout-player.js from the server and shows three elements: `webrtc` (transport
// auto), `hls` (transport="hls") and `unknown` (a path the server does not have). Once the first
// two play, it prints {"phase":"hidden", ...} with `webrtc` hidden (display: none) for 3 s,
// waits for a line on stdin (the test looks at the server's sessions meanwhile), shows it again
// and prints one JSON line: each element's events, its stats(), and how long `webrtc` took to
// play again once shown. Exits 0 when all of that happened, 1 otherwise (with `failures`).

import { launch, openPage } from './chromium.mjs';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { createServer } from 'node:http';

const { values: args } = parseArgs({ options: { server: { type: 'string' }, path: { type: 'string', default: 'demo' } } });
if (!args.server) {
  console.error('usage: node embed.mjs --server URL [--path NAME]');
  process.exit(2);
}
const server = args.server.replace(/\/$/, '');
const page_html = `<!doctype html>
<html><head><meta charset="utf-8"><title>A site that embeds Lookout</title>
<script type="module" src="${server}/assets/lookout-player.js"></script></head>
<body>
<lookout-player id="webrtc" server="${server}" path="${args.path}" muted style="width: 320px"></lookout-player>
<lookout-player id="hls" server="${server}" path="${args.path}" transport="hls" muted style="width: 320px"></lookout-player>
<lookout-player id="unknown" server="${server}" path="nowhere" muted style="width: 320px"></lookout-player>
<script>
  window.events = {};
  for (const element of document.querySelectorAll('lookout-player')) {
    const seen = (window.events[element.id] = { playing: 0, stalled: [], error: [], stats: 0 });
    element.addEventListener('playing', () => { seen.playing += 1; seen.lastPlayingAt = performance.now(); });
    element.addEventListener('stalled', (e) => seen.stalled.push(e.detail.reason));
    element.addEventListener('error', (e) => seen.error.push(e.detail.reason));
    element.addEventListener('stats', () => { seen.stats += 1; });
  }
</script></body></html>`;

// The embedding site.
const site = createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end(page_html);
});
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
const EMBEDDER = `http://127.0.0.1:${site.address().port}/`;

const failures = [];
const { context, close } = await launch();
let result = {};
try {
  const page = await openPage(context);
  await page.goto(EMBEDDER);
  const events = () => page.evaluate(() => JSON.parse(JSON.stringify(window.events)));
  const stats = (id) => page.evaluate((id) => document.getElementById(id).stats(), id);
  const waitFor = async (what, ok, seconds) => {
    const deadline = Date.now() + seconds * 1000;
    while (!ok(await events()) && Date.now() < deadline) await page.waitForTimeout(100);
    if (!ok(await events())) failures.push(`${what} within ${seconds} s`);
  };
  await waitFor('both players playing', (e) => e.webrtc.playing > 0 && e.hls.playing > 0, 20);
  await waitFor('stats events and a stalled unknown path', (e) => e.webrtc.stats >= 2 && e.hls.stats >= 2 && e.unknown.stalled.length > 0, 10);
  result.before = { webrtc: await stats('webrtc'), hls: await stats('hls') };
  // The element's <video> is reachable from outside, for embedders and tests alike.
  result.videoReachable = await page.evaluate(() => document.getElementById('webrtc').shadowRoot.querySelector('video') === document.getElementById('webrtc').video);

  await page.evaluate(() => { document.getElementById('webrtc').style.display = 'none'; });
  await page.waitForTimeout(3000);
  const hidden = await stats('webrtc');
  console.log(JSON.stringify({ phase: 'hidden', framesRendered: hidden?.framesRendered }));
  await new Promise((resolve) => createInterface({ input: process.stdin }).once('line', resolve));
  const renderedWhileHidden = (await stats('webrtc'))?.framesRendered;

  // Counted before it is shown: it may play again before this script looks.
  const playingBefore = (await events()).webrtc.playing;
  const shownAt = await page.evaluate(() => { document.getElementById('webrtc').style.display = ''; return performance.now(); });
  await waitFor('webrtc playing again once shown', (e) => e.webrtc.playing > playingBefore, 15);
  const again = await events();
  result.resumedAfterMs = again.webrtc.lastPlayingAt ? Math.round(again.webrtc.lastPlayingAt - shownAt) : null;
  result.framesRenderedWhileHidden = renderedWhileHidden - hidden?.framesRendered;
  result.after = await stats('webrtc');
  result.events = again;
} catch (error) {
  failures.push(String(error));
} finally {
  await close();
  site.close();
}
result.failures = failures;
console.log(JSON.stringify(result));
process.exit(failures.length ? 1 : 0);
