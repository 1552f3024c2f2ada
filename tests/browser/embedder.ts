// What an embedder writes in TypeScript against web/lookout-player.d.ts; `tsc --noEmit --strict`
// must accept it (tests/browser.rs).
import type { LookoutPlayer, LookoutPlayerStats } from '../../web/lookout-player';

const player = document.querySelector('lookout-player');
if (player) {
  const element: LookoutPlayer = player;
  element.addEventListener('playing', (event) => console.log(`playing over ${event.detail.transport}`));
  element.addEventListener('stalled', (event) => console.log(`stalled: ${event.detail.reason}`));
  element.addEventListener('error', (event) => console.log(`cannot play: ${event.detail.reason}`));
  element.addEventListener('stats', (event) => console.log(`${event.detail.framesRendered} frames`));
  const stats: LookoutPlayerStats | null = element.stats();
  const video: HTMLVideoElement = element.video;
  element.muted = !element.muted;
  element.restart();
  console.log(stats?.firstFrameMs, video.videoWidth);
}
