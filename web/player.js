// Plays one Lookout path in a <video> over WebRTC, with the WebSocket signalling of
// signaling/PROTOCOL.md, and keeps trying: when the server restarts, the path is not live yet,
// the connection fails, or frames stop coming.
//
// Where WebRTC cannot get through (ICE fails, or no frame comes within FALLBACK_MS of the
// offer) it falls back to LL-HLS by itself, says why, and tries WebRTC again in the background
// now and then, switching back once a connection is up. `transport` 'webrtc' or 'hls' forces one.

import { startPlaying } from './autoplay.js';
import { BarcodeReader } from './barcode.js';
import { LlHlsPlayer } from './llhls.js';
import { LipSync } from './lipsync.js';

export const PROTOCOL_VERSION = 2;

// Whether this browser decodes H.264 over WebRTC, the one codec Lookout sends: Firefox fetches
// its OpenH264 plugin at run time, and one that could not fetch it has none.
function decodesH264() {
  const codecs = globalThis.RTCRtpReceiver?.getCapabilities?.('video')?.codecs ?? [];
  return codecs.some((codec) => codec.mimeType.toLowerCase() === 'video/h264');
}
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 5000;
const STALL_MS = 6000;
const LATENCY_SAMPLES = 300;
const FALLBACK_MS = 4000;
const PROBE_FIRST_MS = 30000;
const PROBE_MAX_MS = 120000;
const PROBE_TIMEOUT_MS = 8000;
const CLOCK_LATENCY_SAMPLES = 30;
// Seconds between the page's reports of its playback to the server (`qoe`).
const QOE_REPORT_SECONDS = 5;

export class Player extends EventTarget {
  // `iceTransportPolicy` 'relay' uses TURN only: a way to check a TURN setup.
  // `transport`: 'auto' (WebRTC, LL-HLS where it cannot get through), 'webrtc' or 'hls'.
  // `token`: a bearer token the server's access control accepts, sent in the first WebSocket
  // message and as `Authorization` on LL-HLS requests.
  // `server`: the Lookout to play from (its base URL); by default the page's own.
  constructor(video, { iceTransportPolicy = 'all', transport = 'auto', token = null, server = `${location.origin}/` } = {}) {
    super();
    this.video = video;
    this.iceTransportPolicy = iceTransportPolicy;
    this.transport = transport;
    this.token = token;
    // Its base URL, ending in '/', so that a Lookout behind a path prefix keeps it.
    this.server = new URL(server.endsWith('/') ? server : `${server}/`, location.href);
    // The layer asked for ('main', 'sub', ...; null lets the server choose), for every session.
    this.wantedLayer = null;
    // Whether `playing` was told since the last watch or interruption.
    this.playingTold = false;
    // Set when the server refused this viewer: retrying would not change its answer.
    this.refusal = null;
    // Set when the server said it is stopping, and when it said the path was removed.
    this.serverStopping = false;
    this.pathRemoved = false;
    this.hls = new LlHlsPlayer(video, this.server, (error) => this.noteError(`LL-HLS ${error}`), token, (reason) => this.refuse(reason));
    this.fallbackTimer = null;
    this.probing = false;
    this.probeTimer = null;
    this.probeDelayMs = PROBE_FIRST_MS;
    this.remoteStream = null;
    this.framesAtOffer = 0;
    this.previousHlsBytes = null;
    this.path = null;
    this.ws = null;
    this.pc = null;
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
    this.barcode = new BarcodeReader();
    this.figures = this.freshFigures();
    this.previousStats = null;
    // The video element's count of presented frames at the last frame callback.
    this.lastPresentedFrames = null;
    // The session's clock message and the latencies it gave.
    this.clock = null;
    this.clockLatencyMs = [];
    this.lipSync = new LipSync();
    this.timers = [setInterval(() => this.sampleStats(), 1000), setInterval(() => this.checkStall(), 1000)];
    this.watchFrames();
  }

  // Stops playing and every timer: the player is not used again.
  dispose() {
    this.stop();
    this.timers.forEach(clearInterval);
    if (this.frameCallback !== undefined) this.video.cancelVideoFrameCallback(this.frameCallback);
    this.disposed = true;
  }

  freshFigures() {
    return {
      path: this.path, state: 'idle', watchRequestedAt: null, firstFrameMs: null, framesRendered: 0, framesReceived: 0,
      lastFrameAt: null, width: 0, height: 0, fps: null, bitrateBps: null, packetsLost: 0, packetsReceived: 0,
      lossPercent: null, framesDropped: 0, freezeCount: 0, freezeSeconds: 0, latencyMs: [], errors: [], route: null,
      nackCount: 0, reportedLatencyMs: null, videoJitterBufferMs: null,
      // From the server: the layer this viewer gets and why, and its link's bandwidth estimate.
      layer: null, estimatedBitrateBps: null, estimateFrom: null,
      // The audio track's inbound-rtp figures, when the path has audio.
      audio: null,
      transport: null, fallbackReason: null,
      // The path's camera as the server reports it, how often it was lost while this page
      // watched, and how many WebRTC sessions the page negotiated (a lost camera needs none).
      source: 'live', sourceInterruptions: 0, sessionsStarted: 0,
    };
  }

  watch(path) {
    this.stop();
    this.path = path;
    this.playingTold = false;
    this.refusal = null;
    this.figures = this.freshFigures();
    this.probeDelayMs = PROBE_FIRST_MS;
    if (this.transport === 'hls') {
      this.figures.watchRequestedAt = performance.now();
      this.playHls('LL-HLS (chosen with &transport=hls)');
    } else if (!decodesH264()) {
      this.cannotDecodeH264('this browser cannot decode H.264 over WebRTC');
    } else {
      this.connect();
    }
  }

  // WebRTC cannot play here (the browser said so, or the server found it in its SDP): LL-HLS
  // plays the same H.264 through the browser's media stack, with no background retries of
  // WebRTC, which would fail the same way.
  cannotDecodeH264(reason) {
    this.closeWebRtc();
    clearTimeout(this.fallbackTimer);
    clearTimeout(this.probeTimer);
    this.probing = false;
    if (this.transport === 'webrtc') {
      this.status(`WebRTC cannot play: ${reason}; LL-HLS can (&transport=hls)`, 'error');
      return;
    }
    this.figures.watchRequestedAt = performance.now();
    this.figures.fallbackReason = reason;
    this.playHls(`LL-HLS: ${reason}`);
  }

  stop() {
    this.closeWebRtc();
    clearTimeout(this.fallbackTimer);
    clearTimeout(this.probeTimer);
    this.probing = false;
    this.hls.stop();
    // The last picture goes too: what shows next is the next path's, or the same one's again.
    this.video.srcObject = null;
    this.path = null;
  }

  // Ends the WebRTC session and its signalling without retrying.
  closeWebRtc() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closeSession();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
  }

  // ── LL-HLS fallback ──────────────────────────────────────────────────────────────────────

  // Gives a WebRTC attempt that got an offer FALLBACK_MS to show a frame.
  armFallback() {
    if (this.transport !== 'auto' || this.hls.active) return;
    clearTimeout(this.fallbackTimer);
    this.framesAtOffer = this.figures.framesRendered;
    this.fallbackTimer = setTimeout(() => {
      if (this.figures.framesRendered > this.framesAtOffer || !this.path) return;
      const ice = this.pc ? this.pc.iceConnectionState : 'new';
      this.fallBack(['connected', 'completed'].includes(ice) ? 'no frames over WebRTC' : 'UDP unreachable');
    }, FALLBACK_MS);
  }

  fallBack(reason) {
    if (this.transport !== 'auto' || this.hls.active || !this.path || this.refusal) return;
    clearTimeout(this.fallbackTimer);
    this.closeWebRtc();
    this.figures.fallbackReason = reason;
    this.playHls(`LL-HLS fallback: ${reason}`);
    this.scheduleProbe();
  }

  playHls(statusText) {
    this.figures.transport = 'hls';
    this.figures.route = 'LL-HLS over HTTP';
    this.previousHlsBytes = null;
    this.status(`${statusText}; starting…`, 'connecting');
    this.hls.start(this.path).then(
      (started) => started && this.status(statusText, 'live'),
      (error) => {
        this.noteError(`LL-HLS: ${error.message}`);
        this.status(`${statusText}, but LL-HLS is unavailable: ${error.message}`, 'error');
      },
    );
  }

  // Tries WebRTC again in the background while LL-HLS plays.
  scheduleProbe() {
    if (this.transport !== 'auto') return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (!this.path || !this.hls.active) return;
      this.probing = true;
      this.connect();
      this.probeTimer = setTimeout(() => this.probeFailed(), PROBE_TIMEOUT_MS);
    }, this.probeDelayMs);
    this.probeDelayMs = Math.min(this.probeDelayMs * 2, PROBE_MAX_MS);
  }

  probeFailed() {
    this.probing = false;
    this.closeWebRtc();
    this.scheduleProbe();
  }

  switchToWebRtc() {
    this.probing = false;
    clearTimeout(this.probeTimer);
    this.hls.stop();
    this.figures.fallbackReason = null;
    this.probeDelayMs = PROBE_FIRST_MS;
    this.showWebRtc();
    this.status('WebRTC connected again (was LL-HLS)', 'live');
    this.armFallback();
  }

  // Tells what the player is doing: `kind` is '', 'connecting', 'live', 'retrying' or 'error'.
  status(text, kind = '') {
    this.figures.state = kind || this.figures.state;
    if (kind === 'retrying' || kind === 'error') this.playingTold = false;
    this.dispatchEvent(new CustomEvent('status', { detail: { text, kind } }));
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    const path = this.path;
    const url = new URL('ws', this.server);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.ws = ws;
    this.serverStopping = false;
    this.status(`Connecting to the server for ${path}…`, 'connecting');
    ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closeSession();
      this.retry(this.serverStopping ? 'Server stopping' : 'Server unreachable');
    };
  }

  // The server will not show this path to this viewer (no token, a bad one, or one for other
  // paths): say so and stop, rather than retry or fall back to LL-HLS, which would refuse too.
  refuse(reason) {
    this.refusal = reason;
    clearTimeout(this.fallbackTimer);
    clearTimeout(this.probeTimer);
    this.closeWebRtc();
    this.hls.stop();
    this.status(`Not allowed: ${reason}`, 'error');
  }

  retry(reason) {
    if (!this.path || this.refusal) return;
    if (this.hls.active) {
      // A background attempt failed; LL-HLS plays on.
      clearTimeout(this.probeTimer);
      this.probeFailed();
      return;
    }
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.status(`${reason}; retrying in ${(delay / 1000).toFixed(0)} s`, 'retrying');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.path) return;
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.requestWatch();
      else this.connect();
    }, delay);
  }

  // Pins a layer by name ('main', 'sub', ...), or with null lets the server choose again; kept
  // for the sessions that follow.
  pinLayer(layer) {
    this.wantedLayer = layer;
    this.send({ type: 'layer', layer });
  }

  requestWatch() {
    this.pathRemoved = false;
    if (!this.hls.active) {
      this.figures.watchRequestedAt = performance.now();
      this.figures.firstFrameMs = null;
    }
    this.send({ type: 'watch', path: this.path });
  }

  async onMessage(message) {
    switch (message.type) {
      case 'hello':
        if (message.protocol_version !== PROTOCOL_VERSION) {
          this.status(`Server speaks protocol ${message.protocol_version}, this page ${PROTOCOL_VERSION}`, 'error');
          return;
        }
        // The first message of the client is its credential, even when it has none.
        this.send({ type: 'auth', token: this.token });
        break;
      case 'welcome':
        this.iceServers = message.ice_servers || [];
        this.requestWatch();
        break;
      case 'offer':
        await this.answer(message);
        break;
      case 'candidate':
        if (this.pc) await this.pc.addIceCandidate(message.candidate).catch((e) => this.noteError(`candidate: ${e}`));
        break;
      case 'state':
        // The session of a removed path closes: the page keeps saying why.
        if (this.pathRemoved) break;
        if (!this.hls.active) this.status(`WebRTC ${message.state}`, message.state === 'connected' ? 'live' : 'connecting');
        if (message.state === 'failed') {
          if (this.transport === 'auto' && !this.hls.active) {
            this.fallBack('ICE failed: UDP unreachable');
            return;
          }
          this.closeSession();
          this.retry('Connection failed');
        }
        break;
      case 'clock':
        // When the frame of one RTP timestamp was captured (see PROTOCOL.md): the capture time
        // of every frame shown follows, and with it latency for any camera whose clock agrees
        // with this machine's. Chromium's estimatedPlayoutTimestamp would need a round-trip
        // time, which a receive-only connection never gets.
        this.clock = { rtpTimestamp: message.rtp_timestamp, captureMs: message.capture_time_ms };
        break;
      case 'layer':
        this.figures.layer = { name: message.layer, layers: message.layers, mode: message.mode, reason: message.reason };
        break;
      case 'link':
        this.figures.estimatedBitrateBps = message.estimated_bitrate_bps;
        this.figures.estimateFrom = message.estimate_from;
        break;
      case 'source':
        this.onSourceState(message);
        break;
      case 'going_away':
        // The socket closes next; the page reconnects after the usual wait.
        this.serverStopping = true;
        break;
      case 'error':
        this.noteError(`${message.code}: ${message.message}`);
        if (message.code === 'codec_unsupported') {
          this.cannotDecodeH264(message.message);
          break;
        }
        // A refused layer leaves the session as it was.
        if (message.code === 'unknown_layer') break;
        if (message.code === 'unauthorized' || message.code === 'not_allowed') {
          this.refuse(message.message.replace(/^not allowed: /, ''));
          break;
        }
        this.closeSession();
        this.retry(message.code === 'path_not_live' ? `${this.path} is not live yet` : `Error: ${message.message}`);
        break;
      default:
        // Newer servers may send more; the protocol says to ignore what is not known.
        break;
    }
  }

  // The camera behind the path was lost or is back. The server keeps this session and its
  // track; the frames resume on it by themselves, so the page waits instead of renegotiating.
  // A camera on demand is said to be starting; a removed path ends the session.
  onSourceState(message) {
    const f = this.figures;
    if (message.state === 'starting') {
      // A camera opened on demand for this viewer: the offer comes with its first frame.
      this.status('Starting camera…', 'connecting');
      return;
    }
    if (message.state === 'removed') {
      // The session ends next; nothing more will come for this path.
      this.pathRemoved = true;
      f.source = 'removed';
      clearTimeout(this.fallbackTimer);
      this.closeSession();
      this.status(`${this.path} was removed: ${message.error || 'no reason given'}`, 'error');
      return;
    }
    const wasLive = f.source === 'live';
    f.source = message.state;
    if (message.error) this.sourceError = message.error;
    if (message.state === 'live') {
      f.lastFrameAt = performance.now(); // frames are due again from now
      this.sourceError = null;
      if (!wasLive && !this.hls.active) this.status('WebRTC connected; the camera is back', 'live');
      return;
    }
    if (wasLive) f.sourceInterruptions += 1;
    if (!this.hls.active) this.status(`Camera reconnecting${this.sourceError ? `: ${this.sourceError}` : '…'}`, 'retrying');
  }

  noteError(text) {
    this.figures.errors.push(text);
    if (this.figures.errors.length > 20) this.figures.errors.shift();
  }

  async answer(offer) {
    this.closeSession();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    this.pc = pc;
    this.figures.sessionsStarted += 1;
    pc.ontrack = (event) => {
      this.remoteStream = event.streams[0] || new MediaStream([event.track]);
      if (this.hls.active) return; // a background attempt: shown once connected
      this.showWebRtc();
    };
    pc.onconnectionstatechange = () => {
      if (this.probing && pc === this.pc && pc.connectionState === 'connected') this.switchToWebRtc();
    };
    pc.onicecandidate = (event) => {
      this.send({ type: 'candidate', candidate: event.candidate ? event.candidate.toJSON() : { candidate: '' } });
    };
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.send({ type: 'answer', sdp: answer.sdp });
      if (this.wantedLayer) this.send({ type: 'layer', layer: this.wantedLayer });
      this.armFallback();
    } catch (error) {
      this.noteError(`negotiation: ${error}`);
      this.retry(`Negotiation failed: ${error}`);
    }
  }

  showWebRtc() {
    this.figures.transport = 'webrtc';
    this.video.srcObject = this.remoteStream;
    startPlaying(this.video);
  }

  closeSession() {
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.previousStats = null;
    this.lastPresentedFrames = null;
    this.clock = null;
    this.clockLatencyMs = [];
    this.lipSync = new LipSync();
  }

  // Counts presented frames and, for the test pattern, reads the glass-to-glass latency.
  watchFrames() {
    const onFrame = (now, metadata) => {
      if (this.disposed) return;
      const f = this.figures;
      // Frames presented since the last callback: a main thread busy elsewhere gets one
      // callback for several frames, and counting callbacks would undercount what was shown.
      const presented = metadata.presentedFrames;
      const since = this.lastPresentedFrames === null || presented === undefined ? 1 : presented - this.lastPresentedFrames;
      f.framesRendered += since > 0 ? since : 1;
      this.lastPresentedFrames = presented ?? null;
      f.lastFrameAt = now;
      if (!this.playingTold) {
        this.playingTold = true;
        this.dispatchEvent(new CustomEvent('playing', { detail: { transport: f.transport } }));
      }
      f.width = metadata.width;
      f.height = metadata.height;
      if (f.firstFrameMs === null && f.watchRequestedAt !== null) {
        f.firstFrameMs = Math.round(now - f.watchRequestedAt);
      }
      this.retryMs = RETRY_MIN_MS;
      const displayedAtMs = performance.timeOrigin + (metadata.expectedDisplayTime || now);
      const code = this.barcode.read(this.video, displayedAtMs);
      if (code) {
        f.latencyMs.push(Math.round(displayedAtMs - code.captureMs));
        if (f.latencyMs.length > LATENCY_SAMPLES) f.latencyMs.shift();
      }
      if (this.clock && metadata.rtpTimestamp !== undefined) {
        const ticks = (metadata.rtpTimestamp - this.clock.rtpTimestamp) | 0;
        const captureMs = this.clock.captureMs + ticks / 90;
        this.clockLatencyMs.push(displayedAtMs - captureMs);
        if (this.clockLatencyMs.length > CLOCK_LATENCY_SAMPLES) this.clockLatencyMs.shift();
        const sorted = [...this.clockLatencyMs].sort((a, b) => a - b);
        f.reportedLatencyMs = Math.round(sorted[Math.floor(sorted.length / 2)]);
      }
      this.dispatchEvent(new CustomEvent('figures', { detail: f }));
      this.frameCallback = this.video.requestVideoFrameCallback(onFrame);
    };
    this.frameCallback = this.video.requestVideoFrameCallback(onFrame);
  }

  // A session that stops delivering frames (camera gone, network changed) is started again.
  checkStall() {
    const f = this.figures;
    if (!this.pc || this.pc.connectionState !== 'connected' || f.lastFrameAt === null || f.source !== 'live') return;
    if (performance.now() - f.lastFrameAt > STALL_MS) {
      f.lastFrameAt = null;
      this.closeSession();
      this.retry('No frames for a while');
    }
  }

  sampleHlsStats() {
    const f = this.figures;
    const now = performance.now();
    const bytes = this.hls.bytesLoaded;
    if (this.previousHlsBytes) {
      const seconds = (now - this.previousHlsBytes.at) / 1000;
      f.bitrateBps = seconds > 0 ? Math.round((8 * (bytes - this.previousHlsBytes.bytes)) / seconds) : null;
    }
    this.previousHlsBytes = { at: now, bytes };
    const quality = this.video.getVideoPlaybackQuality();
    f.framesDropped = quality.droppedVideoFrames;
    f.fps = null;
    f.lossPercent = null;
    // The audio the stream carries (a camera's AAC), and how much of it Chromium decoded.
    f.audio = this.hls.audioCodec
      ? { codec: this.hls.audioCodec, decodedBytes: this.video.webkitAudioDecodedByteCount ?? null }
      : null;
    this.dispatchEvent(new CustomEvent('figures', { detail: f }));
  }

  // Tells the server this session's playback so far, every QOE_REPORT_SECONDS samples (see
  // `qoe` in PROTOCOL.md): it counts them in its metrics.
  reportExperience() {
    this.samplesSinceReport = (this.samplesSinceReport ?? 0) + 1;
    const f = this.figures;
    if (this.samplesSinceReport < QOE_REPORT_SECONDS || f.framesRendered === 0) return;
    this.samplesSinceReport = 0;
    // Clocks that disagree a little can make a latency negative: the server takes none of those.
    const time = (ms) => (Number.isFinite(ms) && ms >= 0 && ms < 3600000 ? ms : null);
    const glassToGlass = f.latencyMs.length ? f.latencyMs[f.latencyMs.length - 1] : f.reportedLatencyMs;
    this.send({
      type: 'qoe', first_frame_ms: time(f.firstFrameMs), freezes: f.freezeCount, freeze_seconds: Math.max(0, f.freezeSeconds),
      frames_dropped: f.framesDropped, glass_to_glass_ms: time(glassToGlass), jitter_buffer_ms: time(f.videoJitterBufferMs),
    });
  }

  async sampleStats() {
    if (this.hls.active) {
      this.sampleHlsStats();
      return;
    }
    if (!this.pc) return;
    const report = await this.pc.getStats().catch(() => null);
    if (!report) return;
    const transport = [...report.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = transport && report.get(transport.selectedCandidatePairId);
    const local = pair && report.get(pair.localCandidateId);
    if (local) this.figures.route = `${local.candidateType} ${local.protocol}`;
    // The session may have closed while its stats were read.
    if (this.pc) {
      const receivers = this.pc.getReceivers();
      const videoReceiver = receivers.find((r) => r.track.kind === 'video');
      const audible = !this.video.muted && receivers.some((r) => r.track.kind === 'audio');
      this.lipSync.update(report, videoReceiver, audible);
      this.figures.lipSync = this.lipSync.figures;
    }
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        const codec = report.get(s.codecId);
        this.figures.audio = {
          codec: codec ? codec.mimeType.replace('audio/', '') : null,
          packetsReceived: s.packetsReceived,
          packetsLost: s.packetsLost,
          totalSamplesReceived: s.totalSamplesReceived ?? 0,
          totalAudioEnergy: s.totalAudioEnergy ?? 0,
          // The receiver's jitter buffer, on average: most of what audio adds to latency.
          jitterBufferMs: s.jitterBufferEmittedCount ? Math.round((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount) : null,
        };
      }
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const f = this.figures;
      const previous = this.previousStats;
      if (previous) {
        const seconds = (s.timestamp - previous.timestamp) / 1000;
        f.bitrateBps = seconds > 0 ? Math.round((8 * (s.bytesReceived - previous.bytesReceived)) / seconds) : null;
        const lost = s.packetsLost - previous.packetsLost;
        const received = s.packetsReceived - previous.packetsReceived;
        f.lossPercent = lost + received > 0 ? (100 * lost) / (lost + received) : 0;
      }
      f.fps = s.framesPerSecond ?? null;
      f.packetsLost = s.packetsLost;
      f.packetsReceived = s.packetsReceived;
      f.framesReceived = s.framesReceived ?? 0;
      f.framesDropped = s.framesDropped ?? 0;
      f.freezeCount = s.freezeCount ?? 0;
      f.freezeSeconds = s.totalFreezesDuration ?? 0;
      f.nackCount = s.nackCount ?? 0;
      // What the video's jitter buffer held each frame, over the last second.
      const emitted = previous ? s.jitterBufferEmittedCount - previous.jitterBufferEmittedCount : 0;
      f.videoJitterBufferMs = emitted > 0 ? Math.round((1000 * (s.jitterBufferDelay - previous.jitterBufferDelay)) / emitted) : f.videoJitterBufferMs;
      this.previousStats = s;
      this.dispatchEvent(new CustomEvent('figures', { detail: f }));
      this.reportExperience();
    });
  }
}
