// The page: the list of paths with their state, and either the wall of every camera (at `/`)
// or the chosen path playing with its figures (`/?path=NAME`, so a link can be shared).

import './lookout-player.js';
import { Wall } from './wall.js';

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
// `&ice=relay` plays through the TURN servers only, to check that they work (over WebRTC only:
// a fallback would hide a TURN failure); `&transport=webrtc` or `&transport=hls` forces one
// transport (the default tries WebRTC first and falls back to LL-HLS).
const relayOnly = query.get('ice') === 'relay';
const forced = ['webrtc', 'hls'].includes(query.get('transport')) ? query.get('transport') : null;
const transport = forced || (relayOnly ? 'webrtc' : 'auto');
// A token for the server's access control comes in the URL's fragment (`#token=...`): a
// fragment is never sent to a server, so it stays out of their logs. It goes with every request.
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const authorization = token ? { Authorization: `Bearer ${token}` } : {};
// The page plays through its <lookout-player>, as any site can.
const element = $('player');
element.setAttribute('transport', transport);
if (token) element.setAttribute('token', token);
if (relayOnly) element.setAttribute('ice', 'relay');
// At most this many cameras on the wall: the tiles of a 4 × 4 grid.
const WALL_TILES = 16;
// Read by the end-to-end tests and handy in the console.
window.lookout = { element, get player() { return element.player; }, paths: [], wall: null };

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// The barcode of the test pattern (or a camera painting one) measures what the eye sees; the
// server's clock messages give the capture time of any camera whose clock agrees with this
// machine's.
function describeLatency(f) {
  const fromBarcode = median(f.latencyMs.slice(-30));
  if (fromBarcode != null) return `${fromBarcode} ms (barcode)`;
  if (f.reportedLatencyMs != null) return `${f.reportedLatencyMs} ms (camera clock)`;
  return '–';
}

// How far the picture plays ahead of the sound, by the browser's reckoning, and how long the
// page holds the picture back for it (only while the sound is on).
function describeLipSync(sync) {
  if (!sync || sync.offsetMs == null) return '–';
  const gap = sync.offsetMs >= 0 ? `picture ${sync.offsetMs} ms ahead of sound` : `sound ${-sync.offsetMs} ms ahead of picture`;
  return sync.videoTargetMs != null ? `${gap}; picture held ${sync.videoTargetMs} ms` : gap;
}

// The layer the server sends this viewer and why ("auto" when it chose from the link).
function showLayer(layer) {
  const choice = $('layer-choice');
  if (!layer) {
    $('fig-layer').textContent = '–';
    choice.disabled = true;
    return;
  }
  $('fig-layer').textContent = `${layer.name} (${layer.mode}: ${layer.reason})`;
  const options = ['', ...layer.layers];
  if (choice.options.length !== options.length) {
    choice.replaceChildren(...options.map((name) => new Option(name || 'auto', name)));
  }
  choice.disabled = layer.layers.length < 2;
}

$('layer-choice').onchange = (e) => {
  if (e.target.value) element.setAttribute('layer', e.target.value);
  else element.removeAttribute('layer');
};

// Browsers start video with sound only after a click: the page starts muted.
$('unmute').onclick = () => {
  element.muted = !element.muted;
  $('unmute').textContent = element.muted ? 'Unmute' : 'Mute';
};

function showFigures(f) {
  showLayer(f.layer);
  const hlsAudio = (a) => `${a.codec}` + (a.decodedBytes != null ? `, ${Math.round(a.decodedBytes / 1000)} kB decoded` : '');
  const rtpAudio = (a) => `${a.codec || 'audio'}, ${a.packetsReceived} packets, ${a.packetsLost} lost`
    + (a.jitterBufferMs != null ? `, buffer ${a.jitterBufferMs} ms` : '');
  $('fig-audio').textContent = !f.audio ? 'none' : f.audio.packetsReceived == null ? hlsAudio(f.audio) : rtpAudio(f.audio);
  $('fig-estimate').textContent = f.estimatedBitrateBps != null
    ? `${(f.estimatedBitrateBps / 1e6).toFixed(2)} Mbit/s (${f.estimateFrom})` : '–';
  $('fig-resolution').textContent = f.width ? `${f.width}×${f.height}` : '–';
  $('fig-fps').textContent = f.fps != null ? `${f.fps.toFixed(0)} fps` : '–';
  $('fig-bitrate').textContent = f.bitrateBps != null ? `${(f.bitrateBps / 1e6).toFixed(2)} Mbit/s` : '–';
  $('fig-loss').textContent = f.lossPercent != null ? `${f.lossPercent.toFixed(1)} % (${f.packetsLost} total)` : '–';
  $('fig-dropped').textContent = String(f.framesDropped);
  $('fig-freezes').textContent = String(f.freezeCount);
  $('fig-route').textContent = f.route || '–';
  $('fig-transport').textContent = f.transport === 'hls' ? `LL-HLS${f.fallbackReason ? ` (fallback: ${f.fallbackReason})` : ''}` : f.transport === 'webrtc' ? 'WebRTC' : '–';
  $('fig-first-frame').textContent = f.firstFrameMs != null ? `${f.firstFrameMs} ms` : '–';
  $('fig-nacks').textContent = f.transport === 'webrtc' ? String(f.nackCount) : '–';
  $('fig-latency').textContent = describeLatency(f);
  $('fig-lip-sync').textContent = describeLipSync(f.lipSync);
}

element.addEventListener('stats', (e) => showFigures(e.detail));
element.addEventListener('status', (e) => {
  $('status').textContent = e.detail.text;
});

function describeState(p) {
  if (p.state === 'retrying') return `retrying in ${(p.retry_in_ms / 1000).toFixed(0)} s: ${p.error}`;
  return p.state;
}

function select(name) {
  if (window.lookout.wall) {
    window.lookout.wall.stop();
    window.lookout.wall = null;
    $('wall').hidden = true;
  }
  $('viewer').hidden = false;
  const url = new URL(location.href);
  url.searchParams.set('path', name);
  history.replaceState(null, '', url);
  $('path-name').textContent = name;
  // Choosing the path that plays plays it again from the start (after an error, say).
  if (element.getAttribute('path') === name) element.restart();
  else element.setAttribute('path', name);
  renderPaths(window.lookout.paths);
}

function renderPaths(paths) {
  const list = $('paths');
  list.replaceChildren(
    ...paths.map((p) => {
      const item = document.createElement('li');
      item.dataset.path = p.name;
      item.className = p.name === element.getAttribute('path') ? 'selected' : '';
      const badge = document.createElement('span');
      badge.className = `badge ${p.state}`;
      badge.textContent = p.state;
      const detail = document.createElement('small');
      const s = p.stats;
      const damage = (s && (s.resyncs || s.reconnects || s.frames_dropped_after_loss || s.late_backlogs)
        ? ` · ${s.reconnects} reconnects, ${s.resyncs} resyncs, ${s.bytes_lost} bytes lost, ${s.frames_dropped_after_loss} frames dropped, ` +
          `${s.late_backlogs} stalls (${s.frames_withheld_late} late frames withheld)` : '');
      detail.textContent = `${p.source} · ${p.viewers} viewer${p.viewers === 1 ? '' : 's'}` +
        (p.state === 'retrying' ? ` · ${p.error}` : '') + damage;
      item.append(`${p.name} `, badge, detail);
      item.onclick = () => select(p.name);
      return item;
    }),
  );
  const current = paths.find((p) => p.name === element.getAttribute('path'));
  const badge = $('path-state');
  badge.textContent = current ? describeState(current) : '';
  badge.className = `badge ${current ? current.state : ''}`;
}

async function refreshPaths() {
  try {
    const response = await fetch('/api/paths', { cache: 'no-store', headers: authorization });
    if (response.status === 401 || response.status === 403) {
      // The server says why in words (an expired token, a wrong password...).
      throw new Error(`not allowed: ${(await response.text()).trim().replace(/^not allowed: /, '')}`);
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    window.lookout.paths = await response.json();
    renderPaths(window.lookout.paths);
    if (!requested && !window.lookout.wall && $('viewer').hidden && window.lookout.paths.length) startWall(window.lookout.paths);
    $('server-status').textContent = 'server up';
    $('server-status').className = 'badge live';
    $('paths-error').hidden = true;
  } catch (error) {
    const refused = error.message.startsWith('not allowed');
    $('server-status').textContent = refused ? 'not allowed' : 'server unreachable';
    $('server-status').className = 'badge error';
    $('paths-error').textContent = `Cannot read the paths: ${error.message}`;
    $('paths-error').hidden = false;
  }
}

// The wall: every path this viewer may read, each on its lower layer until clicked.
function startWall(paths) {
  const wall = new Wall($('tiles'), { token });
  window.lookout.wall = wall;
  $('wall').hidden = false;
  wall.start(paths.slice(0, WALL_TILES).map((p) => p.name));
}

const requested = query.get('path');
if (requested) select(requested);
else $('viewer').hidden = true;
refreshPaths();
setInterval(refreshPaths, 2000);
