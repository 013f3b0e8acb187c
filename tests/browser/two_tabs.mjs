// Browser smoke test: two headless Chromium pages join one room and must each decode the other's video.
//
//   cd tests/browser && npm install && node two_tabs.mjs
//
// Environment: PARLOR_URL (default http://127.0.0.1:8080), CHROMIUM (default /usr/bin/chromium),
// PARLOR_DEADLINE_MS (default 20000). Screenshots go to <repo>/test-output/. Exit code 0 = pass.

import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, '..', '..', 'test-output');
const base = (process.env.PARLOR_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const deadlineMs = Number(process.env.PARLOR_DEADLINE_MS || 20000);
const POLL_MS = 100;

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--autoplay-policy=no-user-gesture-required',
];

const room = `smoke-${randomBytes(6).toString('hex')}`;
const names = ['Alice', 'Bob'];

/** What a page receives, read in the page: decoded video frames and the remote tiles that show a picture. */
async function probe(page) {
  return page.evaluate(async () => {
    const p = window.parlor;
    const out = { id: p ? p.id : null, framesDecoded: 0, packetsReceived: 0, inbound: 0, tiles: {} };
    if (!p || !p.pc) return out;
    const stats = await p.pc.getStats();
    for (const r of stats.values()) {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.inbound += 1;
        out.framesDecoded += r.framesDecoded || 0;
        out.packetsReceived += r.packetsReceived || 0;
      }
    }
    for (const video of document.querySelectorAll('.tile video.remote')) {
      const id = video.closest('.tile').dataset.participantId;
      out.tiles[id] = { width: video.videoWidth, height: video.videoHeight };
    }
    return out;
  });
}

async function main() {
  await mkdir(outDir, { recursive: true });
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  let ok = false;
  let failure = `no rising remote video on both pages within ${deadlineMs} ms`;
  const pages = [];
  try {
    for (const name of names) {
      const context = await browser.newContext({ viewport: { width: 960, height: 640 } });
      const page = await context.newPage();
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') console.error(`[${name} console.${msg.type()}] ${msg.text()}`);
      });
      page.on('pageerror', (err) => console.error(`[${name} pageerror] ${err.message}`));
      const url = `${base}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`;
      const opened = Date.now();
      await page.goto(url, { waitUntil: 'domcontentloaded' });
      pages.push({ name, page, opened, first: null, last: null, rising: false });
    }
    console.log(`room ${room} at ${base}`);

    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline) {
      const ids = await Promise.all(pages.map((p) => p.page.evaluate(() => (window.parlor ? window.parlor.id : null))));
      for (const [i, p] of pages.entries()) {
        const s = await probe(p.page);
        if (s.framesDecoded > 0 && p.first === null) p.first = Date.now() - p.opened;
        if (p.last && s.framesDecoded > p.last.framesDecoded && p.last.framesDecoded > 0) p.rising = true;
        p.last = s;
        const other = ids[1 - i];
        const tile = other ? s.tiles[other] : undefined;
        p.tileOk = Boolean(tile && tile.width > 0 && tile.height > 0);
      }
      if (pages.every((p) => p.rising && p.tileOk)) { ok = true; break; }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }

    for (const p of pages) {
      const s = p.last || {};
      const first = p.first === null ? 'never' : `${p.first} ms`;
      console.log(
        `${p.name}: id=${s.id} framesDecoded=${s.framesDecoded ?? 0} packetsReceived=${s.packetsReceived ?? 0} ` +
        `inbound_video=${s.inbound ?? 0} first_remote_frame=${first} rising=${p.rising} remote_tile_has_picture=${Boolean(p.tileOk)}`,
      );
    }
  } catch (err) {
    console.error(`two_tabs: ${err && err.stack ? err.stack : err}`);
    failure = String(err && err.message ? err.message : err).split('\n')[0];
    ok = false;
  } finally {
    for (const p of pages) {
      const file = path.join(outDir, `two_tabs-${p.name.toLowerCase()}.png`);
      try {
        await p.page.screenshot({ path: file });
        console.log(`screenshot ${path.relative(process.cwd(), file)}`);
      } catch (err) {
        console.error(`screenshot of ${p.name} failed: ${err.message}`);
      }
    }
    await browser.close();
  }
  console.log(ok ? 'two_tabs: PASS' : `two_tabs: FAIL (${failure})`);
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
