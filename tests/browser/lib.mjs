// Shared helpers for the browser tests: Chromium launch, pages, deadline polling, screenshots.

import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const outDir = path.join(repoRoot, 'test-output');
export const base = (process.env.PARLOR_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
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

const started = Date.now();

/** A log line with the time since the script started. */
export function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${t}s]`, ...args);
}

export class TestFailure extends Error {}

export function check(condition, message) {
  if (!condition) throw new TestFailure(message);
}

export async function launch(extraArgs = []) {
  await mkdir(outDir, { recursive: true });
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * A page of its own (own context: own storage, own camera) at `urlPath` on the server.
 * Console errors and page errors are printed with the page's name.
 */
export async function openPage(browser, name, urlPath, { viewport = { width: 1100, height: 700 }, permissions = [], init = null, locale } = {}) {
  // `locale` (e.g. 'ko-KR') sets navigator.language and Accept-Language; the default is the browser's own.
  const context = await browser.newContext({ viewport, permissions, ...(locale ? { locale } : {}) });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`  [${name} console.error] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.error(`  [${name} pageerror] ${err.message}`));
  const opened = Date.now();
  await page.goto(`${base}${urlPath}`, { waitUntil: 'domcontentloaded' });
  return { name, page, context, opened };
}

/**
 * An init script that calls `install(window.parlor)` the moment the client defines `window.parlor`, before
 * any server message can arrive (for hooks on `parlor.events`).
 */
export function onParlor(install) {
  const wrapper = (fn) => {
    let value;
    Object.defineProperty(window, 'parlor', {
      configurable: true,
      get() { return value; },
      set(v) { value = v; fn(v); },
    });
  };
  return `(${wrapper})(${install});`;
}

/** The room URL path that joins without the name prompt. */
export function roomPath(room, name, extra = '') {
  return `/r/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}${extra}`;
}

/**
 * Poll `fn` until it returns a truthy value or the deadline passes; returns that value.
 * On timeout throws with `what` and the last value or error seen.
 */
export async function waitFor(what, fn, { timeout = 20000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastErr ? ` (last error: ${lastErr.message.split('\n')[0]})` : last !== undefined ? ` (last: ${JSON.stringify(last)})` : '';
      throw new TestFailure(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export async function screenshot(page, file, what) {
  const full = path.join(outDir, file);
  await page.screenshot({ path: full });
  log(`screenshot ${path.relative(repoRoot, full)} — ${what}`);
  return full;
}

/** Run a whole test script: prints PASS/FAIL and sets the exit code. */
export async function runTest(name, body, { extraArgs = [] } = {}) {
  let browser;
  const t0 = Date.now();
  try {
    browser = await launch(extraArgs);
    await body(browser);
    log(`${name}: PASS (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    process.exitCode = 0;
  } catch (err) {
    console.error(err && err.stack ? err.stack : err);
    log(`${name}: FAIL (${err && err.message ? err.message.split('\n')[0] : err})`);
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

/** The server's Prometheus counters (GET /metrics), as {name{labels}: value}; {} when unavailable. */
export async function metrics() {
  try {
    const text = await (await fetch(`${base}/metrics`)).text();
    const out = {};
    for (const line of text.split('\n')) {
      const m = line.match(/^([a-z_]+(?:\{[^}]*\})?)\s+([-\d.eE+]+)$/);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  } catch {
    return {};
  }
}

/** What changed between two `metrics()` readings, for the log: dropped packets by reason, keyframe requests. */
export function metricsDelta(before, after) {
  const parts = [];
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0);
    if (!d) continue;
    const drop = key.match(/^parlor_dropped_packets_total\{reason="([a-z_]+)"\}$/);
    if (drop) parts.push(`dropped ${drop[1]} ${d}`);
    else if (key === 'parlor_keyframe_requests_total') parts.push(`keyframe requests ${d}`);
    else if (key.startsWith('parlor_forwarded_packets_total')) parts.push(`forwarded ${key.match(/kind="(\w+)"/)?.[1]} ${d}`);
  }
  return parts.join(', ') || 'no change';
}
