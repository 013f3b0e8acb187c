// Red light, green light in headless Chromium: a host page, a TV view and three phone-size pages (390×844).
// - the host creates an rlgl room on the home page, turns the automatic light off and starts;
// - the phones show the light filling the screen and hold "hold to run" (real pointer presses);
// - two let go before the host turns the light red, one keeps running through it: that one alone is out,
//   and is on stage on every page — every other page decodes its camera;
// - the light goes green again, the other two run to the finish: the game is over with the ranking;
// - screenshots of a phone at red (the spotlight on its screen), the phone that is out, the host, and the TV view.
//
//   bash tests/browser/run.sh rlgl.mjs

import { base, check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';
import en from '../../web/games/rlgl/en.js';
import ko from '../../web/games/rlgl/ko.js';

const DESKTOP = { width: 1100, height: 700 };
const TV = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
const CAM = '&video=320x240&fps=15';
const HANGUL = /[\uac00-\ud7a3]/;

const idOf = (p) => p.page.evaluate(() => window.parlor?.id ?? null);
const game = (p) => p.page.evaluate(() => window.parlor.rlgl);
const phaseOf = (p) => p.page.evaluate(() => window.parlor.phase.phase);

/** Frames decoded from `publisher` on page `p`. */
const framesOf = (p, publisher) => p.page.evaluate(async (id) => {
  const inbound = window.parlor?.pc ? await window.parlor.inboundByPublisher() : {};
  return inbound[id]?.video?.framesDecoded || 0;
}, publisher);

/** Every page of `pages` decodes `publisher`: its frame count rises. */
async function allDecode(pages, publisher, what) {
  const before = await Promise.all(pages.map((p) => framesOf(p, publisher)));
  await waitFor(what, async () => {
    const now = await Promise.all(pages.map((p) => framesOf(p, publisher)));
    return now.every((n, i) => n > before[i] + 5);
  }, { timeout: 25000 });
  const after = await Promise.all(pages.map((p) => framesOf(p, publisher)));
  log(`${what}: ${pages.map((p, i) => `${p.name} ${before[i]}→${after[i]}`).join(', ')}`);
}

/** Press and hold the phone's run button with the mouse (pointerdown … pointerup). */
async function hold(p) {
  const box = await p.page.locator('#rlgl-run').boundingBox();
  await p.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await p.page.mouse.down();
}
const release = (p) => p.page.mouse.up();

await runTest('rlgl', async (browser) => {
  const missing = Object.keys(en).filter((k) => !(k in ko));
  const extra = Object.keys(ko).filter((k) => !(k in en));
  check(missing.length === 0 && extra.length === 0, `rlgl strings: Korean lacks ${missing} / has extra ${extra}`);
  for (const [k, v] of Object.entries(ko)) {
    const text = typeof v === 'function' ? v({ n: 3, rank: 1, name: '하나', late: 12, auto: true, seconds: 60, distance: 100, out: 1, done: 1 }) : v;
    check(HANGUL.test(text), `rlgl strings: ${k} is not Korean: ${text}`);
  }

  // ---- the host creates an rlgl room on the home page
  const host = await openPage(browser, 'Hana', `/?${CAM.slice(1)}`, { viewport: DESKTOP });
  await host.page.fill('#create-name', 'Hana');
  await host.page.selectOption('#create-kind', 'rlgl');
  await Promise.all([host.page.waitForURL(/\/r\/[a-z0-9-]+/), host.page.click('#create-button')]);
  host.id = await waitFor('the host welcomed', () => idOf(host));
  const room = await host.page.evaluate(() => window.parlor.room);
  check(await host.page.evaluate(() => window.parlor.kind === 'rlgl'), 'an rlgl room');
  log(`room ${room} (rlgl) at ${base}, host ${host.id}`);

  const tv = await openPage(browser, 'TV', `/r/${room}/tv`, { viewport: TV });
  tv.id = await waitFor('the TV welcomed', () => idOf(tv));
  const phones = [];
  for (const name of ['Mina', 'Joon', 'Sora']) {
    const p = await openPage(browser, name, roomPath(room, name, CAM), { viewport: PHONE });
    p.id = await waitFor(`${name} welcomed`, () => idOf(p));
    phones.push(p);
  }
  const [mina, joon, sora] = phones;
  for (const p of phones) {
    await waitFor(`${p.name}'s camera and media up`, () => p.page.evaluate(() => window.parlor.pc?.connectionState === 'connected' && window.parlor.localStream?.getVideoTracks().length === 1));
  }
  await allDecode([tv, ...phones], host.id, 'every page decoding the host');

  // ---- the host's light, a short track, a long spotlight (time to check every page)
  await waitFor('the settings form', () => host.page.locator('#settings-details > summary').isVisible());
  if (!(await host.page.locator('#lobby-rlgl-auto').isVisible())) await host.page.click('#settings-details > summary');
  await host.page.uncheck('#lobby-rlgl-auto');
  await host.page.fill('#lobby-rlgl-distance', '40');
  await host.page.fill('#lobby-rlgl-spotlight_seconds', '30');
  await host.page.click('#start-game');
  for (const p of phones) {
    await waitFor(`${p.name}: the light fills the screen, green`, () => p.page.evaluate(() => {
      const light = document.getElementById('rlgl-light');
      const r = light?.getBoundingClientRect();
      return !light.hidden && light.dataset.light === 'green' && r.width >= 390 && r.height >= 844;
    }), { timeout: 15000 });
  }
  check(await host.page.locator('#rlgl-red').isVisible(), 'the host has the light buttons');
  check(!(await tv.page.locator('#rlgl-light').isVisible()), 'the TV has no run screen');

  // ---- everyone runs; two stop, one keeps running through red
  for (const p of phones) await hold(p);
  await waitFor('every dot moving on the host\'s track', async () => {
    const d = (await game(host)).distances;
    return phones.every((p) => (d[p.id] || 0) >= 4);
  });
  await release(mina);
  await release(joon);
  // Their last counted steps have gone out (the client sends every 100 ms) before the light turns.
  await waitFor('Mina and Joon stopped', async () => {
    const [a, b] = await Promise.all([game(mina), game(joon)]);
    return !a.holding && !b.holding;
  });
  await host.page.waitForTimeout(400); // the scenario: they stand still for a moment before red
  const redAt = Date.now();
  await host.page.click('#rlgl-red');
  await waitFor('Sora out on every page', async () => (await Promise.all([host, tv, ...phones].map(game))).every((g) => g.out.includes(sora.id) && g.out.length === 1));
  const judged = (await game(host)).eliminated[0].judgment;
  check(judged.arrived_at > judged.deadline, `judged late: ${JSON.stringify(judged)}`);
  log(`Sora out (seen ${Date.now() - redAt} ms after the host's click): her move arrived ${judged.arrived_at - judged.red_at} ms after red, `
    + `deadline ${judged.deadline - judged.red_at} ms (rtt ${judged.rtt_ms}); Mina and Joon still running`);
  await release(sora);
  await waitFor('Sora on stage on every page', async () => (await Promise.all([host, tv, mina, joon].map((p) => p.page.evaluate((id) => window.parlor.participants[id]?.on_stage === true, sora.id)))).every(Boolean));
  await allDecode([host, tv, mina, joon], sora.id, 'every other page decoding Sora in the spotlight');
  await waitFor('Sora on Mina\'s light screen', () => mina.page.evaluate((id) => {
    const v = document.querySelector(`#rlgl-spot video[data-id="${id}"]`);
    return v && v.videoWidth > 0;
  }, sora.id));
  await waitFor('Sora\'s phone says she is out, in the spotlight', async () => (await sora.page.textContent('#rlgl-word')) === `${en['rlgl.you_out']} ${en['rlgl.you_spotlit']}`);
  check(!(await sora.page.locator('#rlgl-run').isVisible()), 'no run button for the out');
  await screenshot(mina.page, 'rlgl-phone-red.png', 'a phone at red: the light, Sora in the spotlight, own distance');
  await screenshot(sora.page, 'rlgl-phone-out.png', 'the phone that ran through red');
  await screenshot(tv.page, 'rlgl-tv.png', 'the TV view: the light, the track with every dot, Sora in the spotlight');
  await screenshot(host.page, 'rlgl-host.png', 'the host: the light buttons, the track');
  const elim = await host.page.evaluate((id) => window.parlor.errors, sora.id);
  check(elim.length === 0, `no errors on the host's page: ${JSON.stringify(elim)}`);

  // ---- green again: Mina and Joon run to the finish
  await host.page.click('#rlgl-green');
  await waitFor('green on the phones', async () => (await phaseOf(mina)) === 'green' && (await phaseOf(joon)) === 'green');
  await hold(mina);
  await hold(joon);
  await waitFor('game over', async () => (await phaseOf(host)) === 'game_over', { timeout: 30000 });
  await release(mina);
  await release(joon);
  const g = await game(host);
  const ranking = g.ranking.map((r) => `${r.rank}:${r.status}`);
  check(g.ranking.length === 3 && g.ranking[2].id === sora.id && g.ranking[2].status === 'out'
    && g.ranking.slice(0, 2).every((r) => r.status === 'finished' && r.distance === 40), `the ranking: ${JSON.stringify(g.ranking)}`);
  const winner = g.ranking[0].id;
  await waitFor('the winner on stage everywhere', async () => (await Promise.all([host, tv, ...phones].filter((p) => p.id !== winner).map((p) => p.page.evaluate((id) => window.parlor.participants[id]?.on_stage === true, winner)))).every(Boolean));
  await waitFor('the ranking on the TV', () => tv.page.locator('#rlgl-ranking li').count().then((n) => n === 3));
  log(`game over: ${ranking.join(', ')}; moves sent: ${JSON.stringify(await Promise.all(phones.map(async (p) => (await game(p)).moves)))}`);
  await screenshot(tv.page, 'rlgl-tv-over.png', 'the TV view at game over: the ranking, the winner on stage');
  await screenshot(mina.page, 'rlgl-phone-over.png', 'a phone at game over');
  await mina.page.selectOption('#lang-select', 'ko');
  await waitFor('Mina\'s phone in Korean', async () => (await mina.page.textContent('#rlgl-word')) === ko['rlgl.you_finished']({ rank: g.ranking.find((r) => r.id === mina.id).rank }));
  await screenshot(mina.page, 'rlgl-phone-over-ko.png', 'a phone at game over, in Korean');
});
