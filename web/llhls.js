// Plays one Lookout path over Low-Latency HLS with hls.js, for where WebRTC cannot get through.
// hls.js is installed from npm by Lookout's build and served beside this file, as
// /assets/hls.mjs; a build made without npm has none, and start() then says so.

import { startPlaying } from './autoplay.js';

let hlsModule = null;

async function loadHls() {
  // Beside this module, wherever the page that uses it comes from.
  hlsModule ??= import('./hls.mjs')
    .then((module) => module.default)
    .catch((error) => {
      hlsModule = null;
      throw new Error(`this Lookout was built without hls.js (${error.message})`);
    });
  return hlsModule;
}

// A fatal error is retried after this long; hls.js retries smaller ones by itself.
const RECOVER_MS = 1000;

export class LlHlsPlayer {
  // `server`: the Lookout's base URL (ending in '/'); `token` goes with every request as `Authorization:
  // Bearer`; `onRefused` hears when the server answers 401 or 403.
  constructor(video, server, onError, token = null, onRefused = () => {}) {
    this.video = video;
    this.server = server;
    this.onError = onError;
    this.token = token;
    this.onRefused = onRefused;
    this.hls = null;
    // Counts stops: a start that was waiting for hls.js when one came gives up.
    this.stops = 0;
    this.loadedBytes = 0;
    // The audio codec hls.js found in the stream (mp4a.40.2 for a camera's AAC), if any.
    this.audioCodec = null;
  }

  // Plays `path`; false when a stop came while hls.js was loading.
  async start(path) {
    const stopsBefore = this.stops;
    const Hls = await loadHls();
    if (this.stops !== stopsBefore) return false;
    if (!Hls.isSupported()) throw new Error('this browser has no Media Source Extensions for hls.js');
    this.stop();
    const token = this.token;
    const hls = new Hls({
      lowLatencyMode: true,
      xhrSetup: (xhr) => {
        if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      },
      // Catch up on the live edge by playing faster rather than by jumping.
      maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 10,
    });
    this.hls = hls;
    this.audioCodec = null;
    hls.on(Hls.Events.BUFFER_CODECS, (_, data) => {
      // Audio and video of one fMP4 go into one SourceBuffer ('audiovideo') in hls.js.
      const codecs = [data.audio?.codec, data.audiovideo?.codec].filter(Boolean).join(',').split(',');
      this.audioCodec = codecs.find((codec) => codec && !/^(avc|hvc|hev)/.test(codec)) ?? null;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
      this.loadedBytes += data.frag.stats.loaded;
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      const status = data.response?.code;
      if ((status === 401 || status === 403) && this.hls === hls) {
        this.stop();
        this.onRefused(`the server answered ${status} for LL-HLS`);
        return;
      }
      if (!data.fatal || this.hls !== hls) return;
      this.onError(`${data.type}: ${data.details}`);
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else {
        setTimeout(() => this.hls === hls && hls.startLoad(), RECOVER_MS);
      }
    });
    this.video.srcObject = null;
    hls.loadSource(new URL(`hls/${encodeURIComponent(path)}/index.m3u8`, this.server).href);
    hls.attachMedia(this.video);
    startPlaying(this.video);
    return true;
  }

  stop() {
    this.stops += 1;
    if (!this.hls) return;
    this.hls.destroy();
    this.hls = null;
    this.video.removeAttribute('src');
  }

  get active() {
    return this.hls !== null;
  }

  // Bytes loaded so far (parts and segments), for the bitrate figure.
  get bytesLoaded() {
    return this.loadedBytes;
  }
}
