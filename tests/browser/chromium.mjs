// Launches Debian's Chromium headless with the flags WebRTC on loopback needs
// (see ../shared/TESTING-NOTES.md): no downloaded browser, a fresh profile per run.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// CHROMIUM_TRUST_SPKI: the base64 SHA-256 of one server key's SubjectPublicKeyInfo, whose
// certificate Chromium then accepts (a test's own HTTPS certificate, and nothing else).
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'lookout-chromium-'));
  const trust = process.env.CHROMIUM_TRUST_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.CHROMIUM_TRUST_SPKI}`] : [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      ...trust,
    ],
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

// A new page whose console errors go to this script's stderr (the test prints them).
export async function openPage(context) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`page: ${m.text()}`); });
  return page;
}
