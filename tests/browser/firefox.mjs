// Lookout's page and <lookout-player> in Debian's Firefox ESR, a second browser engine, driven by
// puppeteer-core over WebDriver BiDi:
//
//   node firefox.mjs --server http://127.0.0.1:8080 --path demo
//
// This Firefox has no H.264 for WebRTC (its OpenH264 plugin is fetched at run time, which this
// machine cannot), so both should go to LL-HLS at once and say why. It opens the page on the
// path, then a page of another origin (served by this script) with two elements, one left to
// choose and one told transport="hls", and prints one JSON line: for the page, when its first
// picture showed after navigation, the transport and why, the frames it rendered; for the
// elements, their `playing` events and stats(). Exits 0 when both pages played, 1 otherwise.

import puppeteer from 'puppeteer-core';
import { serveEmbeddingSite } from './embedding-site.mjs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { server: { type: 'string' }, path: { type: 'string', default: 'demo' } } });
if (!args.server) {
  console.error('usage: node firefox.mjs --server URL [--path NAME]');
  process.exit(2);
}
const server = args.server.replace(/\/$/, '');
const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const site = await serveEmbeddingSite(server, [{ id: 'auto', path: args.path }, { id: 'hls', path: args.path, transport: 'hls' }]);

const failures = [];
const result = {};
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: FIREFOX,
  headless: true,
  extraPrefsFirefox: { 'media.autoplay.default': 0 },
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`page: ${m.text()}`); });
  await page.goto(`${server}/?path=${encodeURIComponent(args.path)}`);
  const deadline = Date.now() + 20000;
  const figures = () => page.evaluate(() => {
    const f = window.lookout?.player?.figures;
    return f ? { ...f, latencyMs: [...f.latencyMs], errors: [...f.errors], status: document.getElementById('status').textContent } : null;
  });
  let f = await figures();
  while (!(f?.framesRendered >= 30) && Date.now() < deadline) {
    await sleep(100);
    f = await figures();
  }
  if (!(f?.framesRendered >= 30)) failures.push(`the page rendered ${f?.framesRendered ?? 0} frames in 20 s (status: ${f?.status})`);
  result.page = f && {
    transport: f.transport, fallbackReason: f.fallbackReason, status: f.status, framesRendered: f.framesRendered,
    width: f.width, height: f.height, errors: f.errors, sessionsStarted: f.sessionsStarted,
    // From navigation (the page's time origin) to its first picture.
    firstPictureAfterNavigationMs: f.firstFrameMs != null ? Math.round(f.watchRequestedAt + f.firstFrameMs) : null,
  };

  const embedded = await browser.newPage();
  embedded.on('console', (m) => { if (m.type() === 'error') console.error(`embedding page: ${m.text()}`); });
  await embedded.goto(site.url);
  const events = () => embedded.evaluate(() => JSON.parse(JSON.stringify(window.events)));
  const playingBy = Date.now() + 20000;
  let e = await events();
  while (!(e.auto.playing > 0 && e.hls.playing > 0) && Date.now() < playingBy) {
    await sleep(100);
    e = await events();
  }
  if (!(e.auto.playing > 0 && e.hls.playing > 0)) failures.push(`the elements did not both play within 20 s: ${JSON.stringify(e)}`);
  await sleep(1000);
  result.elements = {
    events: await events(),
    auto: await embedded.evaluate(() => document.getElementById('auto').stats()),
    hls: await embedded.evaluate(() => document.getElementById('hls').stats()),
  };
} catch (error) {
  failures.push(String(error));
} finally {
  await browser.close().catch(() => {});
  site.close();
}
result.failures = failures;
console.log(JSON.stringify(result));
process.exit(failures.length ? 1 : 0);
