// A stage room in headless Chromium: a host page, a TV page and four phone-size audience pages.
// - the host creates a stage room on the home page (the kind choice) and gets the host console;
// - the TV view (/r/CODE/tv) joins receive-only under a name of its own, shows the code, a QR of the
//   invite link and the audience count;
// - one phone opens the invite link: the name prompt comes first and asks for no camera; it joins
//   receive-only and turns the camera on later (a renegotiation); three more phones join receive-only;
// - every page decodes the host's video; the phone's camera reaches the host only (it is in the host's view);
// - the phone raises a hand, the host brings it up from the queue: every page decodes it; sent back, only
//   the host's page still does (judged by frames decoded while the host's count rises);
// - 14 camera-less sockets fill the audience past one page (16): the host's second page is its `view`, and
//   the phone's camera, now off the page, stops at the host too;
// - the stage filled past `stage.max_on_stage` shows `stage_full`;
// - screenshots of the phone view, the host console and the TV view, in English and in Korean.
//
//   bash tests/browser/run.sh stage.mjs

import { base, check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';
import en from '../../web/games/stage/en.js';
import ko from '../../web/games/stage/ko.js';

const DESKTOP = { width: 1100, height: 700 };
const TV = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
const SMALL_PHONE = { width: 360, height: 640 };
const CAM = '&video=320x240&fps=15';
const BOTS = 14;
const HANGUL = /[\uac00-\ud7a3]/;

/** Frames decoded from each publisher, and which remote tiles show a picture, on one page. */
async function probe(p) {
  return p.page.evaluate(async () => {
    const parlor = window.parlor;
    const inbound = parlor?.pc ? await parlor.inboundByPublisher() : {};
    const frames = {};
    for (const [id, entry] of Object.entries(inbound)) frames[id] = entry.video?.framesDecoded || 0;
    const width = {};
    for (const video of document.querySelectorAll('.tile video.remote')) {
      const tile = video.closest('.tile');
      if (getComputedStyle(tile).display !== 'none') width[tile.dataset.participantId] = video.videoWidth;
    }
    return { frames, width, receive: parlor.receive };
  });
}

/** Wait until every page of `pages` decodes `publisher`: frames rising and a picture on a visible tile. */
async function allDecode(pages, publisher, what, timeout = 25000) {
  const before = new Map();
  let last = '';
  await waitFor(what, async () => {
    let ok = true;
    const lines = [];
    for (const p of pages) {
      const s = await probe(p);
      const frames = s.frames[publisher] || 0;
      if (!before.has(p.name) && frames > 0) before.set(p.name, frames);
      const rising = before.has(p.name) && frames > before.get(p.name);
      const picture = (s.width[publisher] || 0) > 0;
      lines.push(`${p.name}:${frames}${picture ? '' : '(no picture)'}`);
      ok = ok && rising && picture;
    }
    last = lines.join(' ');
    return ok;
  }, { timeout });
  log(`${what}: ${last}`);
}

/**
 * While `ref` decodes `count` more frames of `refPublisher`, no page of `others` decodes a frame of `publisher`
 * (by default the same publisher). The baseline is taken once `ref` has decoded 10 frames after the change, so
 * that what was in flight and in the jitter buffers is out.
 */
async function decodesAloneAt(ref, others, refPublisher, count, what, publisher = refPublisher) {
  const framesOf = async (p, id) => (await probe(p)).frames[id] || 0;
  const r0 = await framesOf(ref, refPublisher);
  await waitFor(`${what}: ${ref.name} decoding on`, async () => (await framesOf(ref, refPublisher)) >= r0 + 10);
  const before = await Promise.all(others.map((p) => framesOf(p, publisher)));
  const r1 = await framesOf(ref, refPublisher);
  await waitFor(`${what}: ${ref.name} decoding ${count} more frames`, async () => (await framesOf(ref, refPublisher)) >= r1 + count);
  const after = await Promise.all(others.map((p) => framesOf(p, publisher)));
  others.forEach((p, i) => check(after[i] === before[i], `${what}: ${p.name} decoded ${after[i] - before[i]} frames while ${ref.name} decoded ${count}`));
  log(`${what}: ${ref.name} decoded ${count} more frames; ${others.map((p, i) => `${p.name} ${before[i]}→${after[i]}`).join(', ')}`);
}

const idOf = (p) => p.page.evaluate(() => window.parlor?.id ?? null);
const stageView = (p) => p.page.evaluate(() => window.parlor.stageView);

async function korean(p) {
  await p.page.selectOption('#lang-select', 'ko');
  await waitFor(`${p.name} in Korean`, () => p.page.evaluate(() => document.documentElement.lang === 'ko'));
}

await runTest('stage', async (browser) => {
  // The string tables: Korean has every English key, in Hangul.
  const missing = Object.keys(en).filter((k) => !(k in ko));
  const extra = Object.keys(ko).filter((k) => !(k in en));
  check(missing.length === 0 && extra.length === 0, `stage strings: Korean lacks ${missing} / has extra ${extra}`);
  for (const [k, v] of Object.entries(ko)) {
    const text = typeof v === 'function' ? v({ n: 3, host: '하나', max: 4 }) : v;
    check(HANGUL.test(text), `stage strings: ${k} is not Korean: ${text}`);
  }

  // ---- the host creates a stage room on the home page
  const host = await openPage(browser, 'Hana', `/?${CAM.slice(1)}`, { viewport: DESKTOP });
  check(await host.page.locator('#create-kind').isVisible(), 'the home page offers a choice of kind');
  await host.page.fill('#create-name', 'Hana');
  await host.page.selectOption('#create-kind', 'stage');
  await Promise.all([host.page.waitForURL(/\/r\/[a-z0-9-]+/), host.page.click('#create-button')]);
  host.id = await waitFor('the host welcomed', () => idOf(host));
  const room = await host.page.evaluate(() => window.parlor.room);
  check(await host.page.evaluate(() => window.parlor.kind === 'stage' && window.parlor.host === window.parlor.id), 'a stage room, Hana its host');
  await waitFor('the host console', () => host.page.locator('#stage-box h2').isVisible());
  // No game to start, but the host's powers over the room stay: lock, remove, the kind.
  await waitFor('the host\'s room box', () => host.page.locator('#lobby-box').isVisible());
  check(await host.page.locator('#lock-toggle').isVisible() && await host.page.locator('#kind-select').isVisible(),
    'the host can lock the room and change its kind');
  check(!(await host.page.locator('#ready-toggle').isVisible()) && !(await host.page.locator('#start-game').isVisible()),
    'no ready button and no start button in a stage room');
  log(`room ${room} (stage) at ${base}, host ${host.id}`);

  // ---- the TV view
  const tv = await openPage(browser, 'TV', `/r/${room}/tv`, { viewport: TV });
  tv.id = await waitFor('the TV welcomed', () => idOf(tv));
  const tvState = await tv.page.evaluate(() => ({ name: window.parlor.participants[window.parlor.id].name, stream: window.parlor.localStream, tv: window.parlor.tv }));
  check(tvState.tv && /^TV [a-z0-9]{4}$/.test(tvState.name) && tvState.stream === null, `the TV joins receive-only as "TV xxxx": ${JSON.stringify(tvState)}`);
  check((await tv.page.textContent('#tv-code')) === room, 'the TV shows the room code');
  check(!(await tv.page.locator('#lobby-box').isVisible()), 'the TV shows no room powers');
  const qr = await waitFor('the TV\'s QR code loaded', () => tv.page.evaluate(() => {
    const img = document.querySelector('#tv-box img.tv-qr');
    return img && img.complete && img.naturalWidth > 0 ? img.getAttribute('src') : null;
  }), { timeout: 10000 });
  check(qr === `/qr.svg?text=${encodeURIComponent(`${base}/r/${room}`)}`, `the TV's QR encodes the invite link: ${qr}`);
  check(!(await tv.page.locator('#chat-form').isVisible()) && !(await tv.page.locator('#toggle-cam').isVisible()), 'the TV is read-only');

  // ---- a phone opens the invite link: the name first, no camera asked
  const mina = await openPage(browser, 'Mina', `/r/${room}?${CAM.slice(1)}`, { viewport: PHONE });
  await mina.page.waitForSelector('#name-input', { state: 'visible' });
  await waitFor('the prompt says the camera stays off', async () => (await mina.page.textContent('#preview-status')) === en['stage.camera_later']);
  check(await mina.page.evaluate(() => !document.getElementById('preview-video').srcObject), 'no camera at the name prompt');
  await mina.page.fill('#name-input', 'Mina');
  await mina.page.click('#join-button');
  mina.id = await waitFor('Mina welcomed', () => idOf(mina));
  await waitFor('Mina\'s media up, receive-only', () => mina.page.evaluate(() => window.parlor.pc?.connectionState === 'connected' && window.parlor.localStream === null));
  check(await mina.page.locator('#raise-hand').isVisible(), 'the phone has a raise-hand button');

  const phones = [mina];
  check(!(await mina.page.locator('#lobby-box').isVisible()), 'the audience sees no room powers');
  for (const name of ['Joon', 'Sora', 'Yuna']) {
    const p = await openPage(browser, name, roomPath(room, name, '&media=none'), { viewport: PHONE });
    phones.push(p);
  }
  for (const p of phones.slice(1)) p.id = await waitFor(`${p.name} welcomed`, () => idOf(p));
  const viewers = [tv, ...phones];
  // On the smallest phone the layout is for (360×640: Yuna's page, shrunk for this check) the
  // raise-hand button is on screen without scrolling, above the controls.
  const yuna = phones[3];
  await yuna.page.setViewportSize(SMALL_PHONE);
  await waitFor('Yuna\'s raise-hand button', () => yuna.page.locator('#raise-hand').isVisible());
  const fit = await yuna.page.evaluate(() => {
    const button = document.getElementById('raise-hand').getBoundingClientRect();
    const controls = document.getElementById('controls').getBoundingClientRect();
    const stage = document.getElementById('stage').getBoundingClientRect();
    return { bottom: button.bottom, controlsTop: controls.top, stageHeight: stage.height };
  });
  check(fit.bottom <= fit.controlsTop && fit.stageHeight >= 200, `360×640: the raise-hand button above the controls, the stage ≥ 200 px: ${JSON.stringify(fit)}`);
  await yuna.page.setViewportSize(PHONE);

  // ---- everyone sees the host
  await allDecode(viewers, host.id, 'every page decoding the host');
  await waitFor('the host\'s view: the four phones', async () => {
    const v = await stageView(host);
    return v && v.length === 4 && phones.every((p) => v.includes(p.id));
  });

  // ---- a reload takes Mina's seat back, still without a camera (her URL asks for none: the seat remembers)
  await mina.page.reload({ waitUntil: 'domcontentloaded' });
  await waitFor('Mina back in her seat', async () => (await idOf(mina)) === mina.id && mina.page.evaluate(() => window.parlor.pc?.connectionState === 'connected'));
  check(await mina.page.evaluate(() => window.parlor.localStream === null), 'Mina resumed receive-only');
  await allDecode([mina], host.id, 'Mina decoding the host after a reload');

  // ---- Mina turns her camera on later: only the host gets it
  check((await mina.page.textContent('#toggle-cam')) === 'Start camera', 'the phone offers to start its camera');
  await mina.page.click('#toggle-cam');
  await waitFor('Mina\'s camera on', () => mina.page.evaluate(() => window.parlor.localStream?.getVideoTracks().length === 1));
  await allDecode([host], mina.id, 'the host decoding Mina\'s camera (renegotiated, in the host\'s view)');
  await decodesAloneAt(host, viewers.filter((p) => p !== mina), mina.id, 30, 'Mina in the audience');
  await screenshot(mina.page, 'stage-phone.png', 'a phone in the audience: the host large, own preview small, raise hand, chat');

  // ---- hand raised, brought up: everyone decodes Mina
  await mina.page.click('#raise-hand');
  const bring = host.page.locator(`#hand-queue li[data-id="${mina.id}"] button.bring-up`);
  await waitFor('Mina in the host\'s queue', () => bring.isVisible());
  check(!/\bnull\b/.test(await host.page.textContent('#stage-box')) && !/\bnull\b/.test(await mina.page.textContent('#stage-box')), 'no "null" on the console or the phone');
  await screenshot(host.page, 'stage-host.png', 'the host console: stage, a raised hand in the queue, the audience page');
  await bring.click();
  await waitFor('Mina on stage on every page', async () => (await Promise.all([host, ...viewers].map((p) => p.page.evaluate((id) => window.parlor.participants[id]?.on_stage === true, mina.id)))).every(Boolean));
  await allDecode([host, ...viewers.filter((p) => p !== mina)], mina.id, 'every page decoding Mina on stage');
  await screenshot(tv.page, 'stage-tv.png', 'the TV view: code, QR, audience count, the host and Mina on stage');
  check((await tv.page.getAttribute('#tv-count', 'data-count')) === '3', 'the TV counts 3 in the audience (Mina on stage, the TV itself not counted)');

  // ---- sent back: only the host's page still decodes her
  await host.page.locator(`#stage-list li[data-id="${mina.id}"] button.send-back`).click();
  await waitFor('Mina back in the audience everywhere', async () => (await Promise.all(viewers.map((p) => p.page.evaluate((id) => window.parlor.participants[id]?.on_stage === false && window.parlor.receive[id]?.video !== true, mina.id)))).every(Boolean));
  await decodesAloneAt(host, viewers.filter((p) => p !== mina), mina.id, 30, 'Mina sent back');

  // ---- more audience than one page: the host's second page is its view
  const bots = await openPage(browser, 'bots', '/healthz', { viewport: { width: 320, height: 240 } });
  const botIds = await bots.page.evaluate(async ({ room, n }) => {
    window.botSockets = [];
    const joinOne = (i) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      window.botSockets.push(ws);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room, name: `Guest ${i}` }));
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === 'welcome') resolve(msg.id);
        if (msg.type === 'error') reject(new Error(msg.code));
      };
    });
    const ids = [];
    for (let i = 1; i <= n; i += 1) ids.push(await joinOne(i));
    return ids;
  }, { room, n: BOTS });
  await waitFor('the host sees 18 in the audience over 2 pages', async () => (await host.page.textContent('#page-label')) === 'Page 1 of 2');
  const page1 = await waitFor('the host\'s view: the first 16', async () => { const v = await stageView(host); return v?.length === 16 ? v : null; });
  check(page1.includes(mina.id) && page1.includes(botIds[11]) && !page1.includes(botIds[12]), 'page 1: the four phones and the first 12 guests');
  await host.page.click('#page-next');
  await waitFor('the host\'s view: page 2', async () => JSON.stringify(await stageView(host)) === JSON.stringify(botIds.slice(12)));
  await waitFor('the host no longer receives Mina\'s video', () => host.page.evaluate((id) => window.parlor.receive[id]?.video === false, mina.id));
  // Judged while Mina decodes 30 frames of the host, after 10 to let the jitter buffers empty.
  await decodesAloneAt(mina, [host], host.id, 30, 'Mina off the host\'s page', mina.id);
  await host.page.click('#page-prev');
  await allDecode([host], mina.id, 'back on page 1: the host decoding Mina again');

  // ---- the stage filled past its places
  const errorsBefore = await host.page.evaluate(() => window.parlor.errors.length);
  for (const p of [...phones, tv]) {
    await host.page.evaluate((id) => window.parlor.ws.send(JSON.stringify({ type: 'stage', id, on: true })), p.id);
  }
  await waitFor('stage_full shown on the console', () => host.page.locator('#stage-full').isVisible());
  const errs = await host.page.evaluate((n) => window.parlor.errors.slice(n).map((e) => e.code), errorsBefore);
  // A view the console sent while the stage changed under it may be refused (bad_field) and is sent again.
  check(errs.filter((c) => c === 'stage_full').length === 1 && errs.every((c) => c === 'stage_full' || c === 'bad_field'),
    `one stage_full for the fifth: ${errs}`);
  const page = await waitFor('the console\'s view in force: the 14 guests, each camera allowed to the host', async () => {
    const v = await stageView(host);
    const receive = await host.page.evaluate(() => window.parlor.receive);
    return v && v.length === BOTS && v.every((id) => botIds.includes(id) && receive[id]?.video === true) ? v : null;
  });
  log(`stage full: errors ${errs.join(', ')}; the view in force: ${page.length} guests`);
  check((await host.page.textContent('#stage-full')) === en['stage.full'], 'stage_full in plain words');
  for (const p of phones) await host.page.locator(`#stage-list li[data-id="${p.id}"] button.send-back`).click();
  await waitFor('the stage empty again', () => host.page.evaluate(() => Object.values(window.parlor.participants).every((p) => !p.on_stage)));

  // ---- in Korean
  await mina.page.click('#raise-hand');
  await waitFor('Mina in the queue again', () => bring.isVisible());
  for (const p of [host, tv, mina]) await korean(p);
  await waitFor('the console in Korean', async () => (await host.page.textContent('#stage-box h2')) === ko['stage.console']);
  check((await mina.page.textContent('#raise-hand')) === ko['stage.lower_hand'], 'the phone\'s hand button in Korean');
  await screenshot(host.page, 'stage-host-ko.png', 'the host console in Korean');
  await screenshot(mina.page, 'stage-phone-ko.png', 'a phone in the audience, in Korean');
  await screenshot(tv.page, 'stage-tv-ko.png', 'the TV view in Korean');
  await bots.page.evaluate(() => { for (const ws of window.botSockets) ws.close(); });
});
