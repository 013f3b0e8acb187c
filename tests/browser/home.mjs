// The home page and the ways into a room, in headless Chromium:
// - create a room on the home page through the room API (POST /api/rooms: a server-made code, the host token kept
//   for the join, settings carried to the lobby), invite link + QR + copy; a server that refuses is explained;
// - open the invite link: the name prompt with a camera preview; a taken name is explained in plain words;
// - join by code from the home page, without camera (receive only), and still see the others;
// - chat, ready states, an `error` as a toast, kick and leave.
//
//   bash tests/browser/run.sh home.mjs

import { chromium } from 'playwright-core';
import { base, CHROMIUM_ARGS, check, executablePath, log, openPage, runTest, screenshot, waitFor } from './lib.mjs';

const DESKTOP = { width: 1100, height: 700 };
const PHONE = { width: 390, height: 844 };
const FLAGS = 'video=320x240&fps=15';

const text = (p, selector) => p.page.locator(selector).first().textContent();
const visible = (p, selector) => p.page.locator(selector).first().isVisible();

async function toastSeen(p, pattern, what) {
  await waitFor(what, async () => {
    const toasts = await p.page.locator('.toast').allTextContents();
    return toasts.some((t) => pattern.test(t));
  }, { timeout: 10000 });
}

await runTest('home', async (browser) => {
  log(`server ${base}`);

  // ---- create a room on the home page
  const ana = await openPage(browser, 'Ana', `/?${FLAGS}`, { viewport: DESKTOP, permissions: ['clipboard-read', 'clipboard-write'] });
  check(await visible(ana, '#create-form') && await visible(ana, '#code-form'), 'the home page offers create and join');
  await screenshot(ana.page, 'home.png', 'the home page: create a room (name, roles, host mode, phase lengths) or join by code');
  await ana.page.fill('#create-name', 'Ana');
  await ana.page.fill('#home-mafia', '1');
  await ana.page.check('#home-moderates');
  await ana.page.click('#create-settings details summary');
  await ana.page.fill('#home-len-night', '30');
  await Promise.all([ana.page.waitForURL(/\/r\/[a-z]+-[a-z]+-\d\d\?/), ana.page.click('#create-button')]);
  await waitFor('Ana welcomed', () => ana.page.evaluate(() => window.parlor.id));
  const room = await ana.page.evaluate(() => window.parlor.room);
  check(/^[a-hj-km-np-z]{4}-[a-hj-km-np-z]{4}-[2-9]{2}$/.test(room), `a room code made by the server: ${room}`);
  check(await ana.page.evaluate(() => window.parlor.host === window.parlor.id), 'the creator is the host');
  const kept = await ana.page.evaluate(() => JSON.parse(sessionStorage.getItem('parlor.host') || 'null'));
  check(kept && kept.room === room && kept.token.split('.').length === 3, 'the host token from POST /api/rooms is kept for the join');
  const state = await ana.page.evaluate(async (code) => (await fetch(`/api/rooms/${code}`)).json(), room);
  check(state.code === room && state.participants.length === 1 && state.host === await ana.page.evaluate(() => window.parlor.id),
    `the room API shows the room with Ana as host: ${JSON.stringify(state)}`);
  log(`Ana created room ${room} through the room API`);

  // Invite link, QR code, copy button.
  const link = `${base}/r/${room}`;
  check(await visible(ana, '#invite'), 'the host sees the invite box');
  check((await ana.page.inputValue('#invite-link')) === link, 'the invite link is origin/r/CODE');
  const qr = await waitFor('the QR code image loaded', () => ana.page.evaluate(() => {
    const img = document.getElementById('invite-qr');
    return img.complete && img.naturalWidth > 0 ? img.getAttribute('src') : null;
  }), { timeout: 10000 });
  check(qr === `/qr.svg?text=${encodeURIComponent(link)}`, `QR source ${qr}`);
  await ana.page.click('#copy-link');
  await toastSeen(ana, /copied/i, 'the "copied" toast');
  check((await ana.page.evaluate(() => navigator.clipboard.readText())) === link, 'the clipboard holds the invite link');
  const carried = await ana.page.evaluate(() => ({
    mafia: document.getElementById('lobby-mafia').value,
    moderates: document.getElementById('lobby-moderates').checked,
    night: document.getElementById('lobby-len-night').value,
  }));
  check(carried.mafia === '1' && carried.moderates && carried.night === '30', `lobby settings carried from the home page: ${JSON.stringify(carried)}`);
  await screenshot(ana.page, 'invite.png', 'the new room: the host alone, invite link with QR code and copy button');

  // ---- open the invite link on a phone: name prompt with camera preview
  const ben = await openPage(browser, 'Ben', `/r/${room}?${FLAGS}`, { viewport: PHONE });
  check(await visible(ben, '#join-form'), 'the invite link asks for a name');
  check((await text(ben, '#join-title')).includes(room), 'the prompt names the room');
  await waitFor('the camera preview playing', () => ben.page.evaluate(() => document.getElementById('preview-video').videoWidth > 0), { timeout: 10000 });
  await ben.page.fill('#name-input', 'ana');
  await ben.page.click('#join-button');
  await waitFor('the taken name explained', async () => /already uses that name/.test(await text(ben, '#join-error')), { timeout: 10000 });
  await screenshot(ben.page, 'prejoin-phone.png', 'the invite link on a phone: camera preview, and a taken name explained');
  await ben.page.fill('#name-input', 'Ben');
  await ben.page.click('#join-button');
  await waitFor('Ben welcomed', () => ben.page.evaluate(() => window.parlor.id));
  const benId = await ben.page.evaluate(() => window.parlor.id);
  log('Ben joined through the invite link after a name clash');

  // ---- join by code from the home page, without camera
  const cleo = await openPage(browser, 'Cleo', '/?media=none', { viewport: DESKTOP });
  await cleo.page.fill('#code-input', link); // a pasted link works as well as a code
  await cleo.page.fill('#code-name', 'Cleo');
  await Promise.all([cleo.page.waitForURL(new RegExp(`/r/${room}`)), cleo.page.click('#code-button')]);
  await waitFor('Cleo welcomed', () => cleo.page.evaluate(() => window.parlor.id));
  const cleoId = await cleo.page.evaluate(() => window.parlor.id);
  check(/without camera/.test(await text(cleo, '#notice')), 'joining without camera is explained');
  const anaId = await ana.page.evaluate(() => window.parlor.id);
  await waitFor('Cleo (receive only) decodes Ana and Ben', () => cleo.page.evaluate(async ({ anaId, benId }) => {
    const s = await window.parlor.inboundByPublisher();
    return (s[anaId]?.video?.framesDecoded ?? 0) > 0 && (s[benId]?.video?.framesDecoded ?? 0) > 0;
  }, { anaId, benId }), { timeout: 20000 });
  await waitFor('Ana sees Cleo as a tile without video', async () =>
    (await ana.page.locator(`.tile[data-participant-id="${cleoId}"]`).getAttribute('data-state')) === 'novideo');
  log('Cleo joined by code without camera and receives the others');

  // ---- chat and ready in the lobby
  check(!(await visible(ben, '#chat-channel')), 'only one channel in the lobby: no channel picker');
  await ben.page.fill('#chat-input', 'hello from the phone');
  await ben.page.press('#chat-input', 'Enter');
  await waitFor('Ana and Cleo read Ben\'s message', async () => {
    const seen = await Promise.all([ana, cleo].map((p) => p.page.evaluate(() =>
      window.parlor.chat.some((m) => m.channel === 'all' && m.text === 'hello from the phone'))));
    return seen.every(Boolean);
  });
  await ben.page.click('#ready-toggle');
  await waitFor('Ana sees Ben ready', async () =>
    (await ana.page.locator(`#roster li[data-id="${benId}"]`).getAttribute('data-ready')) === 'true');

  // ---- an error as a toast: starting with too few players (the host moderates: 2 players)
  await ana.page.click('#start-game');
  await toastSeen(ana, /need 4 to 16 players/i, 'the "too few players" toast');
  await screenshot(ana.page, 'lobby-error.png', 'the host\'s lobby: chat, Ben ready, and the refused start shown as a toast');
  await screenshot(ben.page, 'lobby-phone.png', 'the lobby on the phone with three people');

  // ---- kick and leave
  ana.page.on('dialog', (d) => d.accept());
  await ana.page.click(`#roster li[data-id="${cleoId}"] .kick`);
  await waitFor('Cleo told she was removed', async () => /removed you/.test((await cleo.page.locator('.ended').textContent().catch(() => '')) || ''), { timeout: 10000 });
  await waitFor('Cleo\'s tile gone for Ana', async () => (await ana.page.locator(`.tile[data-participant-id="${cleoId}"]`).count()) === 0);
  await ben.page.click('#leave');
  await waitFor('Ben\'s tile gone for Ana', async () => (await ana.page.locator(`.tile[data-participant-id="${benId}"]`).count()) === 0);
  check(/left the room/.test(await text(ben, '.ended')), 'Ben sees that he left');
  log('kick and leave work');

  // ---- camera and microphone refused: explained in plain words, and joining still works (receive only)
  const denying = await chromium.launch({
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== '--use-fake-ui-for-media-stream'), '--deny-permission-prompts'],
  });
  try {
    const dan = await openPage(denying, 'Dan', `/r/${room}`, { viewport: PHONE });
    await waitFor('the refusal explained', async () => /did not allow/.test(await text(dan, '#preview-status')), { timeout: 10000 });
    await screenshot(dan.page, 'prejoin-denied-phone.png', 'camera and microphone refused: the prompt explains it, joining still works');
    await dan.page.fill('#name-input', 'Dan');
    await dan.page.click('#join-button');
    await waitFor('Dan welcomed without media', () => dan.page.evaluate(() => window.parlor.id !== null && window.parlor.pc !== null));
    check(/did not allow/.test(await text(dan, '#notice')), 'the room page keeps the explanation');
    await waitFor('Dan (receive only) decodes Ana', () => dan.page.evaluate(async (id) =>
      ((await window.parlor.inboundByPublisher())[id]?.video?.framesDecoded ?? 0) > 0, anaId), { timeout: 20000 });
    log('a refused camera is explained, and the page still receives');
  } finally {
    await denying.close();
  }

  // ---- a server where only organisers create rooms (host-key mode): the home page says so
  const eve = await openPage(browser, 'Eve', '/', { viewport: DESKTOP });
  await eve.page.route('**/api/rooms', (route) => route.fulfill({
    status: 401, contentType: 'application/json', headers: { 'WWW-Authenticate': 'Bearer' },
    body: JSON.stringify({ error: 'unauthorized', message: 'this server creates rooms for host keys only' }),
  }));
  await eve.page.fill('#create-name', 'Eve');
  await eve.page.click('#create-button');
  await waitFor('the refusal explained', async () => /created by its organisers/.test(await text(eve, '#create-error')));
  check(new URL(eve.page.url()).pathname === '/', 'Eve stays on the home page');
  log('a server that creates rooms only for host keys is explained on the home page');

  // ---- a bad code is explained
  const bad = await openPage(browser, 'Bad', '/?room=no%20spaces!', { viewport: DESKTOP });
  check(/not a room code/.test(await text(bad, '#code-error')), 'an invalid room code is explained on the home page');
});
