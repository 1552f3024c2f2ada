// Types of <lookout-player> (lookout-player.js).

/** What the player measured so far, as `stats()` returns it and the `stats` event carries it. */
export interface LookoutPlayerStats {
  path: string | null;
  /** 'webrtc' or 'hls' once playing; null before. */
  transport: 'webrtc' | 'hls' | null;
  /** Why it plays LL-HLS when it was not asked to, in words. */
  fallbackReason: string | null;
  /** From the watch request to the first picture shown, in milliseconds. */
  firstFrameMs: number | null;
  framesRendered: number;
  framesReceived: number;
  framesDropped: number;
  freezeCount: number;
  freezeSeconds: number;
  width: number;
  height: number;
  fps: number | null;
  bitrateBps: number | null;
  packetsReceived: number;
  packetsLost: number;
  lossPercent: number | null;
  nackCount: number;
  /** Glass-to-glass latencies read from Lookout's barcode, in milliseconds, newest last. */
  latencyMs: number[];
  /** From the camera's clock, where it agrees with this machine's. */
  reportedLatencyMs: number | null;
  /** The layer the server sends and why. */
  layer: { name: string; layers: string[]; mode: 'auto' | 'pinned'; reason: string } | null;
  estimatedBitrateBps: number | null;
  route: string | null;
  /** WebRTC sessions negotiated: one while a camera reconnects; more after a failure. */
  sessionsStarted: number;
  errors: string[];
  [figure: string]: unknown;
}

// `error` carries the reason in words, not an ErrorEvent.
export interface LookoutPlayerEventMap extends Omit<HTMLElementEventMap, 'error'> {
  /** Pictures are shown: at the start and after an interruption. */
  playing: CustomEvent<{ transport: 'webrtc' | 'hls' | null }>;
  /** Pictures stopped; the player is trying again. */
  stalled: CustomEvent<{ reason: string }>;
  /** It cannot play and will not retry by itself (refused, say). */
  error: CustomEvent<{ reason: string }>;
  /** At most once a second while it plays. */
  stats: CustomEvent<LookoutPlayerStats>;
  /** Every change of what the player says it is doing. */
  status: CustomEvent<{ text: string; kind: '' | 'connecting' | 'live' | 'retrying' | 'error' }>;
}

export declare class LookoutPlayer extends HTMLElement {
  /** The element's <video>, in its open shadow root (part "video"). */
  readonly video: HTMLVideoElement;
  /** Mirrors the `muted` attribute. */
  muted: boolean;
  /** What the player measured so far; null before it has a path to play. */
  stats(): LookoutPlayerStats | null;
  /** Plays again from the start, with a new session (after an error, say). */
  restart(): void;
  addEventListener<K extends keyof LookoutPlayerEventMap>(type: K, listener: (this: LookoutPlayer, event: LookoutPlayerEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof LookoutPlayerEventMap>(type: K, listener: (this: LookoutPlayer, event: LookoutPlayerEventMap[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'lookout-player': LookoutPlayer;
  }
}
