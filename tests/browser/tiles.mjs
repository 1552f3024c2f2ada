// Opens many cameras at once in Chromium, for scripts/bench --wall: either Lookout's wall at `/`
// (one RTCPeerConnection for every tile) or a page of `<lookout-player>` elements, one per
// tile (a connection each), and measures how long until every tile shows a picture, then plays
// for --seconds and, with --switch, times tile switches on the wall (message to new picture).
//
//   node tiles.mjs --server http://127.0.0.1:8080/ --mode wall --tiles a,b,c,d --seconds 10
//   node tiles.mjs --server http://127.0.0.1:8080/ --mode players --tiles a,b,c,d --seconds 10
//
// In wall mode the tiles are the server's paths in its order (the page shows them all); the
// elements are small enough to be all in view (an element out of view stops receiving). Prints
// one JSON line; the bench reads the browser's CPU from /proc meanwhile.

import { launch, openPage } from './chromium.mjs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    mode: { type: 'string' },
    tiles: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    switch: { type: 'boolean', default: false },
  },
});
if (!args.server || !['wall', 'players'].includes(args.mode) || !args.tiles) {
  console.error('usage: node tiles.mjs --server URL --mode wall|players --tiles P,P,... [--seconds S] [--switch]');
  process.exit(2);
}
const paths = args.tiles.split(',');
const TIMEOUT_MS = 30000;

const { context, close } = await launch();
const failures = [];
const result = { mode: args.mode, tiles: paths.length };
try {
  const page = await openPage(context);
  const started = Date.now();
  if (args.mode === 'wall') {
    await page.goto(args.server);
  } else {
    const players = paths.map((path) => `<lookout-player server="${args.server}" path="${path}" transport="webrtc" muted style="display:inline-block;width:150px"></lookout-player>`).join('');
    await page.goto(args.server);
    await page.setContent(`<!doctype html><script type="module" src="${args.server}assets/lookout-player.js"></script>${players}`);
  }
  const videos = args.mode === 'wall'
    ? () => page.evaluate(() => (window.lookout?.wall?.tiles ?? []).map((t) => ({ width: t.video.videoWidth, frames: t.video.getVideoPlaybackQuality().totalVideoFrames })))
    : () => page.evaluate(() => [...document.querySelectorAll('lookout-player')].map((e) => ({ width: e.video?.videoWidth ?? 0, frames: e.video?.getVideoPlaybackQuality().totalVideoFrames ?? 0 })));
  let now = [];
  while (Date.now() - started < TIMEOUT_MS) {
    now = await videos();
    if (now.length === paths.length && now.every((v) => v.width > 0 && v.frames > 0)) break;
    await page.waitForTimeout(20);
  }
  if (!(now.length === paths.length && now.every((v) => v.width > 0 && v.frames > 0))) throw new Error(`not every tile showed a picture: ${JSON.stringify(now)}`);
  result.everyTilePictureMs = Date.now() - started;
  console.log(JSON.stringify({ phase: 'playing' }));
  await page.waitForTimeout(Number(args.seconds) * 1000);
  const framesAtEnd = (await videos()).map((v) => v.frames);
  result.framesPerTile = framesAtEnd;
  if (args.switch && args.mode === 'wall') {
    // Each tile to the path of the tile after it, one at a time: message to the new picture.
    result.switchMs = [];
    for (let i = 0; i < Math.min(paths.length, 8); i += 1) {
      // The next tile's path, which has another picture size: the new size is the new picture.
      const [target, width] = await page.evaluate((i) => {
        const next = window.lookout.wall.tiles[(i + 1) % window.lookout.wall.tiles.length];
        return [next.path, next.video.videoWidth];
      }, i);
      const sent = Date.now();
      await page.evaluate(([i, path]) => window.lookout.wall.show(i, path), [i, target]);
      let seen = false;
      while (!seen && Date.now() - sent < 5000) {
        seen = (await videos())[i].width === width;
        if (!seen) await page.waitForTimeout(5);
      }
      result.switchMs.push(seen ? Date.now() - sent : null);
    }
  }
} catch (error) {
  failures.push(error.message);
} finally {
  await close();
}
console.log(JSON.stringify({ ...result, failures }));
process.exit(failures.length ? 1 : 0);
