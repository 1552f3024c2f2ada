// Opens Lookout's page at `/`, the wall of every camera on one connection, and checks it:
//
//   node wall.mjs --server http://127.0.0.1:8080/ --sub-width 128 --switch-tile 3 --to e --enlarge-tile 0
//
// 1. every tile renders frames, a tile whose path has a sub layer at that layer's width
//    (--sub-width: the server says it switched before the browser shows it), and the page made
//    one RTCPeerConnection;
// 2. tile --switch-tile is switched to path --to (shown on another tile too): its picture takes
//    that path's size, on the same connection (no new RTCPeerConnection, its DTLS transport
//    still the one it connected with);
// 3. tile --enlarge-tile is clicked: it plays its path's best layer, as the server says;
// 4. the server's session list, read by the page meanwhile.
//
// Prints one JSON line with what it saw and how long each step took; exits 1 when a step fails.

import { launch, openPage } from './chromium.mjs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    'sub-width': { type: 'string' },
    'switch-tile': { type: 'string' },
    to: { type: 'string' },
    'enlarge-tile': { type: 'string' },
  },
});
if (!args.server || !args['sub-width'] || args['switch-tile'] == null || !args.to || args['enlarge-tile'] == null) {
  console.error('usage: node wall.mjs --server URL --sub-width W --switch-tile N --to PATH --enlarge-tile N');
  process.exit(2);
}

const STEP_TIMEOUT_MS = 20000;
const { context, close } = await launch();
const failures = [];
let result = {};
try {
  const page = await openPage(context);
  await page.goto(args.server);
  // What each tile shows now, and the wall's connection.
  const tiles = () => page.evaluate(() => (window.lookout.wall?.tiles ?? []).map((tile) => ({
    path: tile.path,
    shown: tile.shown,
    layer: tile.layer,
    layers: tile.layers,
    large: tile.large,
    width: tile.video.videoWidth,
    frames: tile.video.getVideoPlaybackQuality().totalVideoFrames,
  })));
  const transport = () => page.evaluate(async () => {
    const pc = window.lookout.wall?.pc;
    if (!pc) return null;
    const stats = [...(await pc.getStats()).values()].filter((s) => s.type === 'transport');
    return { transports: stats.length, dtlsState: stats[0]?.dtlsState, certificate: stats[0]?.localCertificateId };
  });
  // Waits for `ready` (of the tiles) within STEP_TIMEOUT_MS; gives the time it took.
  const waitFor = async (what, ready) => {
    const started = Date.now();
    while (Date.now() - started < STEP_TIMEOUT_MS) {
      const now = await tiles();
      if (ready(now)) return { ms: Date.now() - started, tiles: now };
      await page.waitForTimeout(20);
    }
    throw new Error(`${what} within ${STEP_TIMEOUT_MS / 1000} s: ${JSON.stringify(await tiles())}`);
  };

  const navigated = Date.now();
  // Each tile on the layer the wall asks for: "sub" where the path has one.
  const onItsLayer = (t) => !t.layers.includes('sub') || (t.layer === 'sub' && t.width === Number(args['sub-width']));
  const playing = await waitFor('every tile rendering frames', (now) => now.length > 0 && now.every((t) => t.width > 0 && t.frames >= 5 && onItsLayer(t)));
  result.tiles = playing.tiles;
  result.allTilesRenderingMs = Date.now() - navigated;
  const before = await transport();

  const index = Number(args['switch-tile']);
  const expected = playing.tiles.find((t) => t.path === args.to);
  if (!expected) throw new Error(`no tile shows ${args.to}: ${JSON.stringify(playing.tiles)}`);
  const from = playing.tiles[index];
  await page.evaluate(([i, path]) => window.lookout.wall.show(i, path), [index, args.to]);
  const switched = await waitFor(`tile ${index} showing ${args.to}`, (now) => now[index].shown === args.to && now[index].width === expected.width);
  const framesAtSwitch = switched.tiles[index].frames;
  const rendering = await waitFor(`tile ${index} rendering ${args.to}`, (now) => now[index].frames >= framesAtSwitch + 10);
  result.switch = { tile: index, from: from.path, to: args.to, widthBefore: from.width, widthAfter: switched.tiles[index].width, newSizeAfterMs: switched.ms, tenMoreFramesAfterMs: rendering.ms };

  const large = Number(args['enlarge-tile']);
  const small = (await tiles())[large];
  await page.click(`#tiles figure:nth-child(${large + 1})`);
  const enlarged = await waitFor(`tile ${large} large on its best layer`, (now) => now[large].large && now[large].layer === 'main' && now[large].width > small.width);
  result.enlarge = { tile: large, path: small.path, layerBefore: small.layer, widthBefore: small.width, layerAfter: enlarged.tiles[large].layer, widthAfter: enlarged.tiles[large].width, afterMs: enlarged.ms };

  const after = await transport();
  result.connection = {
    connectionsMade: await page.evaluate(() => window.lookout.wall.connectionsMade),
    session: await page.evaluate(() => window.lookout.wall.session),
    before,
    after,
  };
  result.errors = await page.evaluate(() => window.lookout.wall.errors);
  // The server's side, while the page is open: its sessions, and the paths of their tiles.
  result.serverSessions = await page.evaluate(async () => (await (await fetch('/api/sessions')).json()).map((s) => ({ id: s.id, path: s.path, tiles: s.tiles })));
} catch (error) {
  failures.push(error.message);
} finally {
  await close();
}
console.log(JSON.stringify({ ...result, failures }));
process.exit(failures.length ? 1 : 0);
