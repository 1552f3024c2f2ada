// Starts a video. Where the browser lets only muted video start by itself (most do, until the
// viewer has interacted with the page), it starts it muted rather than not at all.
export function startPlaying(video) {
  video.play().catch((error) => {
    if (error.name !== 'NotAllowedError' || video.muted) return;
    video.muted = true;
    video.play().catch(() => {});
  });
}
