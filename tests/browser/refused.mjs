// Opens Lookout's page with a URL the server should refuse (no token, an expired or tampered
// one, one for other paths) and checks that the page says it is not allowed and shows no
// picture.
//
//   node refused.mjs --url 'http://127.0.0.1:8080/?path=demo#token=...' [--timeout 10]
//
// Passes (exit 0) when the status line says "Not allowed" and no frame was rendered. Prints
// one JSON line: the status, the path list's error, the paths the page listed, frames
// rendered and WebRTC sessions started.

import { launch } from './chromium.mjs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { url: { type: 'string' }, timeout: { type: 'string', default: '10' } },
});
if (!args.url) {
  console.error('usage: node refused.mjs --url URL [--timeout S]');
  process.exit(2);
}

// After the refusal shows, media that slipped through would have rendered within this.
const SETTLE_MS = 1500;
const failures = [];
const { context, close } = await launch();
let result = {};
try {
  const page = await context.newPage();
  await page.goto(args.url);
  // The page's <lookout-player> makes its player once it knows it is on screen.
  await page.waitForFunction(() => window.lookout?.player, null, { timeout: 10000 }).catch(() => {});
  const deadline = Date.now() + Number(args.timeout) * 1000;
  let status = '';
  while (!status.startsWith('Not allowed') && Date.now() < deadline) {
    await page.waitForTimeout(100);
    status = (await page.textContent('#status')) || '';
  }
  await page.waitForTimeout(SETTLE_MS);
  result = await page.evaluate(() => ({
    framesRendered: window.lookout.player.figures.framesRendered,
    sessionsStarted: window.lookout.player.figures.sessionsStarted,
    transport: window.lookout.player.figures.transport,
    pathsListed: window.lookout.paths.map((p) => p.name),
    pathsError: document.getElementById('paths-error').hidden ? null : document.getElementById('paths-error').textContent,
  }));
  result.status = (await page.textContent('#status')) || '';
  if (!result.status.startsWith('Not allowed')) failures.push(`the page does not say it is not allowed: ${JSON.stringify(result.status)}`);
  if (result.framesRendered) failures.push(`${result.framesRendered} frames rendered although refused`);
  if (result.sessionsStarted) failures.push(`${result.sessionsStarted} WebRTC sessions negotiated although refused`);
} catch (error) {
  failures.push(`browser: ${error.message}`);
} finally {
  await close();
}
console.log(JSON.stringify({ ...result, failures }));
process.exit(failures.length ? 1 : 0);
