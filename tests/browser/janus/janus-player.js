// Watches one mountpoint of Janus's streaming plugin over its HTTP API and keeps the figures
// Lookout's page keeps (web/player.js) in window.lookout.player.figures: first frame, frames
// rendered and dropped, and glass-to-glass latency from the barcode the benchmark's camera
// paints (web/barcode.js, served beside this file).
import { BarcodeReader } from './barcode.js';

const LATENCY_SAMPLES = 600;
const query = new URLSearchParams(location.search);
const janusUrl = query.get('janus');
const mountpoint = Number(query.get('mountpoint') || 1);
const video = document.getElementById('video');
const status = document.getElementById('status');

const player = new EventTarget();
player.figures = {
  state: 'idle', watchRequestedAt: null, firstFrameMs: null, framesRendered: 0, width: 0, height: 0,
  framesDropped: 0, packetsLost: null, freezeCount: 0, freezeSeconds: 0, latencyMs: [], errors: [],
  transport: 'webrtc',
};
window.lookout = { player };

function say(text) {
  status.textContent = text;
  player.dispatchEvent(new CustomEvent('status', { detail: { text } }));
}

const transaction = () => Math.random().toString(36).slice(2);

async function post(path, body) {
  const response = await fetch(`${janusUrl}${path}`, { method: 'POST', body: JSON.stringify({ ...body, transaction: transaction() }) });
  const reply = await response.json();
  if (reply.janus === 'error') throw new Error(`Janus: ${reply.error.reason}`);
  return reply;
}

// Long-polls the session for the plugin's events; `onEvent` gets each.
async function poll(session, onEvent) {
  for (;;) {
    const response = await fetch(`${janusUrl}/${session}?maxev=5&rid=${Date.now()}`);
    const events = [].concat(await response.json());
    events.forEach(onEvent);
  }
}

function watchFrames(barcode) {
  const onFrame = (now, metadata) => {
    const f = player.figures;
    f.framesRendered += 1;
    f.width = metadata.width;
    f.height = metadata.height;
    if (f.firstFrameMs === null) f.firstFrameMs = Math.round(now - f.watchRequestedAt);
    const displayedAtMs = performance.timeOrigin + (metadata.expectedDisplayTime || now);
    const code = barcode.read(video, displayedAtMs);
    if (code) {
      f.latencyMs.push(Math.round(displayedAtMs - code.captureMs));
      if (f.latencyMs.length > LATENCY_SAMPLES) f.latencyMs.shift();
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function watchStats(pc) {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    (await pc.getStats()).forEach((report) => {
      if (report.type === 'inbound-rtp' && report.kind === 'video') {
        player.figures.framesDropped = report.framesDropped ?? 0;
        player.figures.packetsLost = report.packetsLost ?? null;
        player.figures.freezeCount = report.freezeCount ?? 0;
        player.figures.freezeSeconds = report.totalFreezesDuration ?? 0;
      }
    });
  }
}

async function watch() {
  player.figures.watchRequestedAt = performance.now();
  say('connecting to Janus');
  const session = (await post('', { janus: 'create' })).data.id;
  const handle = (await post(`/${session}`, { janus: 'attach', plugin: 'janus.plugin.streaming' })).data.id;
  const pc = new RTCPeerConnection();
  // The browser's candidates go to Janus as they are found (trickle ICE).
  pc.onicecandidate = ({ candidate }) => {
    const trickle = candidate ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex } : { completed: true };
    post(`/${session}/${handle}`, { janus: 'trickle', candidate: trickle }).catch(() => {});
  };
  pc.ontrack = (event) => {
    if (event.track.kind === 'video') video.srcObject = new MediaStream([event.track]);
  };
  const answered = new Promise((resolve, reject) => {
    poll(session, async (event) => {
      if (event.sender !== handle || !event.jsep || event.jsep.type !== 'offer') return;
      try {
        await pc.setRemoteDescription(event.jsep);
        await pc.setLocalDescription(await pc.createAnswer());
        const jsep = { type: 'answer', sdp: pc.localDescription.sdp };
        await post(`/${session}/${handle}`, { janus: 'message', body: { request: 'start' }, jsep });
        resolve();
      } catch (error) {
        reject(error);
      }
    }).catch(reject);
  });
  await post(`/${session}/${handle}`, { janus: 'message', body: { request: 'watch', id: mountpoint } });
  await answered;
  say('playing');
  watchFrames(new BarcodeReader());
  watchStats(pc);
}

watch().catch((error) => {
  player.figures.errors.push(String(error.message || error));
  say(`error: ${error.message || error}`);
});
