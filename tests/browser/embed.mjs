// A page on another origin embeds <lookout-player> elements from a Lookout, as any site would:
//
//   node embed.mjs --server http://127.0.0.1:8080 --path demo
//
// The page (embedding-site.mjs) loads /assets/lookout-player.js from the server and shows three
// elements: `webrtc` (transport auto), `hls` (transport="hls") and `unknown` (a path the server
// does not have). Once the first two play, it prints {"phase":"hidden", ...} with `webrtc` hidden (display: none) for 3 s,
// waits for a line on stdin (the test looks at the server's sessions meanwhile), shows it again
// and prints one JSON line: each element's events, its stats(), and how long `webrtc` took to
// play again once shown. Exits 0 when all of that happened, 1 otherwise (with `failures`).

import { launch, openPage } from './chromium.mjs';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { serveEmbeddingSite } from './embedding-site.mjs';

const { values: args } = parseArgs({ options: { server: { type: 'string' }, path: { type: 'string', default: 'demo' } } });
if (!args.server) {
  console.error('usage: node embed.mjs --server URL [--path NAME]');
  process.exit(2);
}
const server = args.server.replace(/\/$/, '');
const site = await serveEmbeddingSite(server, [
  { id: 'webrtc', path: args.path },
  { id: 'hls', path: args.path, transport: 'hls' },
  { id: 'unknown', path: 'nowhere' },
]);

const failures = [];
const { context, close } = await launch();
let result = {};
try {
  const page = await openPage(context);
  await page.goto(site.url);
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
