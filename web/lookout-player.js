// <lookout-player>: one Lookout path in any page.
//
//   <script type="module" src="https://lookout.example:8080/assets/lookout-player.js"></script>
//   <lookout-player server="https://lookout.example:8080" path="garage/door" controls></lookout-player>
//
// Attributes: `server` (the Lookout's base URL; by default the one this module came from),
// `path`, `token` (a bearer token for the server's access control), `transport` (`auto`: WebRTC,
// LL-HLS where it cannot get through; `webrtc`; `hls`), `muted`, `controls`, `layer` (`main`,
// `sub`, ...; by default the server chooses from the viewer's link), `ice` (`relay` plays
// through the TURN servers only: a way to check them).
//
// Events: `playing` (pictures are shown, at the start and after an interruption), `stalled`
// (they stopped: `detail.reason` says why, and the player is trying again), `error` (it cannot
// play and will not retry by itself: `detail.reason`), `stats` (at most once a second while it
// plays: the figures `stats()` returns). `restart()` plays again from the start. The <video> is
// `element.video`, in an open shadow root (part `video`).
//
// Load it from a Lookout's /assets/: hls.js, for LL-HLS, is served beside it.
//
// It plays inline, muted where the browser lets only muted video start by itself, and receives
// nothing while it is hidden or scrolled out of view.

import { Player } from './player.js';

// The Lookout that serves this module (from its /assets/), unless `server` names another.
const OWN_SERVER = new URL('../', import.meta.url).href;

const TEMPLATE = `
<style>
  :host { display: block; position: relative; background: #000; aspect-ratio: 16 / 9; }
  video { display: block; width: 100%; height: 100%; object-fit: contain; }
  .status { position: absolute; left: 0; right: 0; bottom: 0; padding: 0.3em 0.6em; font: 12px sans-serif;
            color: #fff; background: rgba(0, 0, 0, 0.55); pointer-events: none; }
  .status:empty, :host([data-playing]) .status { display: none; }
</style>
<video part="video" autoplay playsinline></video>
<div part="status" class="status"></div>`;

export class LookoutPlayer extends HTMLElement {
  static observedAttributes = ['server', 'path', 'token', 'transport', 'muted', 'controls', 'layer', 'ice'];

  constructor() {
    super();
    this.attachShadow({ mode: 'open' }).innerHTML = TEMPLATE;
    this.video = this.shadowRoot.querySelector('video');
    this.statusLine = this.shadowRoot.querySelector('.status');
    this.player = null;
    this.onScreen = false;
    // Seen: not scrolled out of view, and its page not hidden.
    this.visibility = new IntersectionObserver((entries) => {
      this.onScreen = entries.at(-1).isIntersecting;
      this.followVisibility();
    });
    this.onPageVisibility = () => this.followVisibility();
  }

  connectedCallback() {
    this.video.controls = this.hasAttribute('controls');
    this.video.muted = this.hasAttribute('muted');
    this.visibility.observe(this);
    document.addEventListener('visibilitychange', this.onPageVisibility);
  }

  disconnectedCallback() {
    this.visibility.disconnect();
    document.removeEventListener('visibilitychange', this.onPageVisibility);
    this.player?.dispose();
    this.player = null;
  }

  attributeChangedCallback(name, before, after) {
    if (before === after || !this.isConnected) return;
    if (name === 'muted') this.video.muted = after !== null;
    else if (name === 'controls') this.video.controls = after !== null;
    else if (name === 'layer') this.player?.pinLayer(after || null);
    // server, token, transport, ice or path: a player for the new settings.
    else this.restart();
  }

  // Plays again from the start, with a new player (after an error, say).
  restart() {
    this.player?.dispose();
    this.player = null;
    this.toggleAttribute('data-playing', false);
    this.followVisibility();
  }

  // The figures the player keeps: frames, bitrate, loss, first frame, latency, transport...
  stats() {
    return this.player ? structuredClone({ ...this.player.figures, path: this.player.path }) : null;
  }

  get muted() {
    return this.video.muted;
  }

  // The sound, whatever the attribute said (the browser may have muted it to start playing).
  set muted(muted) {
    this.toggleAttribute('muted', Boolean(muted));
    this.video.muted = Boolean(muted);
  }

  // Plays while the element is seen and names a path; receives nothing otherwise.
  followVisibility() {
    const path = this.getAttribute('path');
    const wanted = Boolean(path) && this.onScreen && document.visibilityState === 'visible';
    if (!wanted) {
      if (this.player?.path) {
        this.player.stop();
        this.toggleAttribute('data-playing', false);
        this.setStatus('Paused while out of view');
      }
      return;
    }
    this.player ??= this.makePlayer();
    if (this.player.path !== path) this.player.watch(path);
  }

  makePlayer() {
    const transport = ['webrtc', 'hls'].includes(this.getAttribute('transport')) ? this.getAttribute('transport') : 'auto';
    const player = new Player(this.video, {
      server: this.getAttribute('server') || OWN_SERVER,
      token: this.getAttribute('token'),
      transport,
      iceTransportPolicy: this.getAttribute('ice') === 'relay' ? 'relay' : 'all',
    });
    if (this.getAttribute('layer')) player.pinLayer(this.getAttribute('layer'));
    // A player given up (for new settings) may still finish something it began: not heard.
    const current = () => player === this.player;
    player.addEventListener('status', (event) => current() && this.onStatus(event.detail));
    player.addEventListener('playing', () => {
      if (!current()) return;
      this.toggleAttribute('data-playing', true);
      this.dispatchEvent(new CustomEvent('playing', { detail: { transport: player.figures.transport } }));
    });
    // The player's figures change with every frame; listeners hear them once a second.
    let toldAt = -Infinity;
    player.addEventListener('figures', () => {
      if (!current() || performance.now() - toldAt < 1000) return;
      toldAt = performance.now();
      this.dispatchEvent(new CustomEvent('stats', { detail: this.stats() }));
    });
    return player;
  }

  onStatus({ text, kind }) {
    this.setStatus(text);
    if (kind === 'retrying' || kind === 'error') {
      this.toggleAttribute('data-playing', false);
      this.dispatchEvent(new CustomEvent(kind === 'error' ? 'error' : 'stalled', { detail: { reason: text } }));
    }
    this.dispatchEvent(new CustomEvent('status', { detail: { text, kind } }));
  }

  setStatus(text) {
    this.statusLine.textContent = text;
  }
}

if (!customElements.get('lookout-player')) customElements.define('lookout-player', LookoutPlayer);
