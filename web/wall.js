// A wall of cameras on one WebRTC connection (PROTOCOL.md, "A wall of cameras"): one
// RTCPeerConnection whose video transceivers are the tiles, each showing a path the server
// switches with a `tile` message, without a new ICE or DTLS handshake. Tiles play a path's
// lower layer ("sub") when it has one; a tile made large plays its best.

import { PROTOCOL_VERSION } from './player.js';
import { startPlaying } from './autoplay.js';

// Tiles are filled one after another, this far apart, so that the cached GOPs of all the
// paths are not replayed at the same moment.
const TILE_STAGGER_MS = 100;
const RETRY_MS = 2000;

export class Wall extends EventTarget {
  // `server`: the Lookout's base URL, ending in '/'; `token`: a bearer token, if the server
  // needs one.
  constructor(grid, { server = new URL('/', location.href).href, token = null } = {}) {
    super();
    this.grid = grid;
    this.server = server;
    this.token = token;
    this.tiles = [];
    this.ws = null;
    this.pc = null;
    this.session = null;
    // Counts every RTCPeerConnection made: a wall that works makes one.
    this.connectionsMade = 0;
    this.errors = [];
  }

  // Shows `paths` (at most 16), a tile each.
  start(paths) {
    this.tiles = paths.map((path, index) => this.makeTile(index, path));
    this.grid.replaceChildren(...this.tiles.map((tile) => tile.element));
    this.connect();
  }

  makeTile(index, path) {
    const element = document.createElement('figure');
    element.className = 'tile';
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.autoplay = true;
    const caption = document.createElement('figcaption');
    caption.textContent = path;
    element.append(video, caption);
    const tile = { index, path, video, caption, element, layers: [], layer: null, large: false, shown: null };
    element.onclick = () => this.enlarge(index, !tile.large);
    return tile;
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    const url = new URL('ws', this.server);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (event) => this.onMessage(JSON.parse(event.data)).catch((error) => this.noteError(error.message));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closeConnection();
      setTimeout(() => this.connect(), RETRY_MS);
    };
  }

  // Ends the wall's connection and stops reconnecting.
  stop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.closeConnection();
  }

  closeConnection() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.session = null;
  }

  noteError(message) {
    this.errors.push(message);
    this.dispatchEvent(new CustomEvent('error', { detail: message }));
  }

  async onMessage(message) {
    switch (message.type) {
      case 'hello':
        if (message.protocol_version !== PROTOCOL_VERSION) {
          this.noteError(`the server speaks protocol ${message.protocol_version}, this page ${PROTOCOL_VERSION}`);
          return;
        }
        this.send({ type: 'auth', token: this.token });
        break;
      case 'welcome':
        this.iceServers = message.ice_servers || [];
        // Every tile starts empty and is given its path in turn.
        this.send({ type: 'wall', tiles: this.tiles.map(() => null) });
        break;
      case 'offer':
        await this.answer(message);
        this.tiles.forEach((tile, index) => setTimeout(() => this.show(index, tile.path), index * TILE_STAGGER_MS));
        break;
      case 'candidate':
        if (this.pc) await this.pc.addIceCandidate(message.candidate);
        break;
      case 'state':
        // The session failed or ended (its connection timed out, say): ask for the wall again.
        if (message.session === this.session && ['failed', 'closed'].includes(message.state)) {
          this.closeConnection();
          setTimeout(() => this.ws && this.send({ type: 'wall', tiles: this.tiles.map(() => null) }), RETRY_MS);
        }
        break;
      case 'tile': {
        const tile = this.tiles[message.tile];
        if (tile) tile.shown = message.path;
        this.dispatchEvent(new CustomEvent('tile', { detail: message }));
        break;
      }
      case 'layer':
        this.onLayer(message);
        break;
      case 'error':
        this.noteError(`${message.code}: ${message.message}`);
        break;
      default:
        break;
    }
  }

  async answer(offer) {
    this.closeConnection();
    this.session = offer.session;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.connectionsMade += 1;
    this.pc = pc;
    pc.onicecandidate = (event) => {
      if (event.candidate) this.send({ type: 'candidate', candidate: event.candidate.toJSON() });
    };
    // The tile of a track is its m-section's mid: "0" for the first.
    pc.ontrack = (event) => {
      const tile = this.tiles[Number(event.transceiver.mid)];
      if (!tile) return;
      tile.video.srcObject = new MediaStream([event.track]);
      startPlaying(tile.video);
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ type: 'answer', sdp: answer.sdp });
  }

  // Shows `path` on tile `index` (the server answers with `tile`).
  show(index, path) {
    const tile = this.tiles[index];
    if (!tile) return;
    tile.path = path;
    tile.caption.textContent = path;
    tile.layer = null;
    this.send({ type: 'tile', tile: index, path });
  }

  // The server says which layer a tile gets: a small tile asks for the path's lower layer.
  onLayer(message) {
    const tile = this.tiles[message.tile];
    if (!tile) return;
    tile.layers = message.layers;
    tile.layer = message.layer;
    // Asked once: the server keeps a pin across the tile's paths that have that layer.
    if ((this.wantedLayer(tile) !== null) !== (message.mode === 'pinned')) this.send({ type: 'layer', tile: tile.index, layer: this.wantedLayer(tile) });
    this.dispatchEvent(new CustomEvent('layer', { detail: message }));
  }

  // A large tile plays the path's best layer; a small one its "sub" where it has one.
  wantedLayer(tile) {
    if (tile.large) return tile.layers[0] ?? null;
    return tile.layers.includes('sub') ? 'sub' : null;
  }

  // Makes tile `index` large (the others stay, smaller) or small again; only the tiles whose
  // layer changes are told.
  enlarge(index, large) {
    const tile = this.tiles[index];
    if (!tile) return;
    this.tiles.forEach((other) => {
      const wanted = this.wantedLayer(other);
      other.large = other === tile && large;
      other.element.classList.toggle('large', other.large);
      if (this.wantedLayer(other) !== wanted) this.send({ type: 'layer', tile: other.index, layer: this.wantedLayer(other) });
    });
  }
}
