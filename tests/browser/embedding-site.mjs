// A site of its own that embeds <lookout-player> elements from a Lookout, as any site would: a
// page served on another loopback port (another origin, in the same private address space,
// which Chromium requires of a page on plain http). Each element's events are recorded in
// `window.events[ID]`: playing (count, first and last time), stalled and error reasons, stats
// events.

import { createServer } from 'node:http';

// `elements`: [{ id, path, transport }] (transport optional).
export async function serveEmbeddingSite(server, elements) {
  const tags = elements
    .map(({ id, path, transport }) => `<lookout-player id="${id}" server="${server}" path="${path}"${transport ? ` transport="${transport}"` : ''} muted style="width: 320px"></lookout-player>`)
    .join('\n');
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>A site that embeds Lookout</title>
<script type="module" src="${server}/assets/lookout-player.js"></script></head>
<body>
${tags}
<script>
  window.events = {};
  for (const element of document.querySelectorAll('lookout-player')) {
    const seen = (window.events[element.id] = { playing: 0, stalled: [], error: [], stats: 0 });
    element.addEventListener('playing', () => {
      seen.playing += 1;
      seen.firstPlayingAt ??= performance.now();
      seen.lastPlayingAt = performance.now();
    });
    element.addEventListener('stalled', (e) => seen.stalled.push(e.detail.reason));
    element.addEventListener('error', (e) => seen.error.push(e.detail.reason));
    element.addEventListener('stats', () => { seen.stats += 1; });
  }
</script></body></html>`;
  const site = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html);
  });
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${site.address().port}/`, close: () => site.close() };
}
