// The drawing game in headless Chromium: a drawer on a desktop page, two phones (390x844) and the TV view.
// - the host creates a `draw` room on the home page; two phones open the room link; the host starts a game in
//   which the host draws (English words);
// - the host picks a word and draws a square and a diagonal with mouse events on the canvas; every other page
//   gets the same strokes, and the two phones show the same pixels (canvas hashes);
// - a phone reloaded mid-drawing shows the drawing again (welcome.board), pixel for pixel;
// - the word is on the drawer's page only; one phone comes close, then guesses it, then the other; at the reveal the
//   scores match on every page;
// - then the pages turn Korean and a second game plays with the Korean words, to the same checks;
// - screenshots of the drawer, a phone and the TV view, in English and in Korean.
//
//   bash tests/browser/run.sh draw.mjs

import { check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';
import en from '../../web/games/draw/en.js';
import ko from '../../web/games/draw/ko.js';

const DESKTOP = { width: 1100, height: 800 };
const TV = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
const CAM = '&video=320x240&fps=15';
const HANGUL = /[\uac00-\ud7a3]/;
const DRAWING_SECONDS = 90;

const idOf = (p) => p.page.evaluate(() => window.parlor?.id ?? null);
const surface = (p, what) => p.page.evaluate((w) => {
  const s = window.parlor?.game?.surface;
  if (!s) return null;
  const v = typeof s[w] === 'function' ? s[w]() : s[w];
  return JSON.parse(JSON.stringify(v ?? null));
}, what);
const phaseOf = (p) => p.page.evaluate(() => window.parlor?.phase?.phase ?? null);

/** Draw a square and its diagonal on the drawer's canvas with the mouse (as a person would: press, move, release). */
async function drawShape(p) {
  const box = await p.page.locator('#draw-canvas').boundingBox();
  const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
  const line = async (points) => {
    await p.page.mouse.move(...at(...points[0]));
    await p.page.mouse.down();
    for (const pt of points.slice(1)) await p.page.mouse.move(...at(...pt), { steps: 12 });
    await p.page.mouse.up();
  };
  await line([[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8], [0.2, 0.2]]);
  await line([[0.2, 0.2], [0.8, 0.8]]);
}

/** Every page of `pages` holds the drawer's strokes; returns them. */
async function sameStrokes(drawer, pages, what) {
  const want = JSON.stringify(await surface(drawer, 'drawStrokes'));
  check(want !== '[]' && want !== 'null', `${what}: the drawer drew something`);
  for (const p of pages) {
    await waitFor(`${what}: ${p.name} has the drawer's strokes`, async () => JSON.stringify(await surface(p, 'drawStrokes')) === want);
  }
  return JSON.parse(want);
}

/** Both phones show the same pixels, with ink on them. */
async function samePixels(a, b, what) {
  await waitFor(`${what}: ${a.name} and ${b.name} show the same pixels`, async () => {
    const [ha, hb] = [await surface(a, 'drawCanvasHash'), await surface(b, 'drawCanvasHash')];
    return ha === hb && ha;
  });
  const ink = await surface(a, 'drawInk');
  check(ink > 500, `${what}: the drawing is on the phone's canvas (${ink} inked pixels)`);
  log(`${what}: same pixels (${await surface(a, 'drawCanvasHash')}), ${ink} inked`);
}

async function guess(p, text) {
  await p.page.fill('#draw-guess-input', text);
  await p.page.click('#draw-guess-button');
}

/** One game: the host picks, draws, a phone reloads, both phones guess; the scores agree everywhere. */
async function playGame(host, phones, tv, lang) {
  await waitFor(`${lang}: the lobby's settings`, () => host.page.locator('#lobby-rounds').count());
  await host.page.evaluate(() => { document.getElementById('settings-details').open = true; });
  await host.page.fill('#lobby-rounds', '1');
  // Long: the drawing must end early, when both phones have guessed (the TV view is a screen, not a guesser).
  await host.page.fill('#lobby-drawing', String(DRAWING_SECONDS));
  await host.page.check('#lobby-drawer-host');
  await host.page.selectOption('#lobby-words', lang);
  await host.page.click('#start-game');
  await waitFor(`${lang}: the word choices`, () => host.page.locator('#draw-choices button').count().then((n) => n === 3));
  await host.page.click('#draw-choices button >> nth=1');
  await waitFor(`${lang}: every page drawing`, async () => {
    for (const p of [host, ...phones, tv]) if ((await phaseOf(p)) !== 'drawing') return false;
    return true;
  });
  const word = await surface(host, 'drawWord');
  check(typeof word === 'string' && word.length > 0, `${lang}: the drawer has the word`);
  if (lang === 'ko') check(HANGUL.test(word), `a Korean word: ${word}`);
  check((await host.page.locator('#draw-word').textContent()).includes(word), `${lang}: the drawer's page shows the word`);
  for (const p of [...phones, tv]) {
    check(!(await p.page.content()).includes(word), `${lang}: ${p.name}'s page does not hold the word`);
    check((await surface(p, 'drawWord')) === null, `${lang}: ${p.name} was not sent the word`);
  }
  const hint = await surface(phones[0], 'drawHint');
  check(hint.replace(/ /g, '').length === [...word].length, `${lang}: the hint has the word's shape: "${hint}"`);

  await drawShape(host);
  const strokes = await sameStrokes(host, [...phones, tv], `${lang}: drawn`);
  check(strokes.length === 2, `${lang}: two strokes (${strokes.length})`);
  await samePixels(phones[0], phones[1], `${lang}: drawn`);

  // A phone reloads mid-drawing: welcome.board brings the drawing back.
  await phones[1].page.reload({ waitUntil: 'domcontentloaded' });
  await waitFor(`${lang}: ${phones[1].name} back`, async () => (await idOf(phones[1])) === phones[1].id && (await phaseOf(phones[1])) === 'drawing');
  await sameStrokes(host, [phones[1]], `${lang}: after the reload`);
  await samePixels(phones[0], phones[1], `${lang}: after the reload`);

  await screenshot(host.page, `draw-drawer${lang === 'ko' ? '-ko' : ''}.png`, `the drawer's page (${lang}): word, canvas, tools`);
  await screenshot(phones[0].page, `draw-phone${lang === 'ko' ? '-ko' : ''}.png`, `a guesser's phone (${lang}): drawing, hint, guess box, scores`);
  await screenshot(tv.page, `draw-tv${lang === 'ko' ? '-ko' : ''}.png`, `the TV view (${lang}): the drawing large, the scoreboard`);

  // A near miss is "close", then the right word; then the other phone.
  await guess(phones[0], `${word}x`);
  await waitFor(`${lang}: "close" on ${phones[0].name}`, () => phones[0].page.locator('#draw-close').isVisible());
  await guess(phones[0], ` ${word.toUpperCase()} `);
  await waitFor(`${lang}: ${phones[0].name} guessed`, () => phones[0].page.locator('#draw-guess').count().then((n) => n === 0));
  await guess(phones[1], word);
  await waitFor(`${lang}: ${phones[1].name} guessed`, () => phones[1].page.locator('#draw-guess').count().then((n) => n === 0));
  await waitFor(`${lang}: the reveal everywhere, early: every person guessed (the TV view does not count)`, async () => {
    for (const p of [host, ...phones, tv]) if ((await phaseOf(p)) !== 'reveal') return false;
    return true;
  }, { timeout: 15000 });
  const scores = await surface(host, 'drawScores');
  check(scores[phones[0].id] > scores[phones[1].id], `${lang}: the first to guess scores more: ${JSON.stringify(scores)}`);
  check(scores[host.id] > 0, `${lang}: the drawer scores: ${JSON.stringify(scores)}`);
  for (const p of [...phones, tv]) {
    await waitFor(`${lang}: ${p.name} has the same scores`, async () => JSON.stringify(await surface(p, 'drawScores')) === JSON.stringify(scores));
    const shown = await p.page.locator('#draw-scores li').evaluateAll((lis) => lis.map((li) => [li.dataset.id, Number(li.dataset.points)]));
    check(shown.length === Object.keys(scores).length && shown.length === 4 && shown.every(([id, n]) => scores[id] === n), `${lang}: ${p.name}'s scoreboard shows them: ${JSON.stringify(shown)}`);
  }
  check((await phones[0].page.locator('#draw-reveal').textContent()).includes(word), `${lang}: the word is revealed on the phones`);
  log(`${lang}: "${word}" drawn, guessed; scores ${JSON.stringify(scores)}`);
  await waitFor(`${lang}: game over`, async () => (await phaseOf(host)) === 'game_over', { timeout: 15000 });
}

await runTest('draw', async (browser) => {
  const missing = Object.keys(en).filter((k) => !(k in ko));
  const extra = Object.keys(ko).filter((k) => !(k in en));
  check(missing.length === 0 && extra.length === 0, `draw strings: Korean lacks ${missing} / has extra ${extra}`);
  for (const [k, v] of Object.entries(ko)) {
    const text = typeof v === 'function' ? v({ n: 3 }) : v;
    check(HANGUL.test(text), `draw strings: ${k} is not Korean: ${text}`);
  }

  const host = await openPage(browser, 'Hana', `/?${CAM.slice(1)}`, { viewport: DESKTOP });
  await host.page.fill('#create-name', 'Hana');
  await host.page.selectOption('#create-kind', 'draw');
  await Promise.all([host.page.waitForURL(/\/r\/[a-z0-9-]+/), host.page.click('#create-button')]);
  host.id = await waitFor('the host welcomed', () => idOf(host));
  const room = await host.page.evaluate(() => window.parlor.room);
  check((await host.page.evaluate(() => window.parlor.kind)) === 'draw', 'a draw room');
  const phones = [];
  for (const name of ['Bo', 'Cy']) {
    const p = await openPage(browser, name, roomPath(room, name), { viewport: PHONE });
    p.id = await waitFor(`${name} welcomed`, () => idOf(p));
    phones.push(p);
  }
  const tv = await openPage(browser, 'TV', `/r/${encodeURIComponent(room)}/tv`, { viewport: TV });
  tv.id = await waitFor('the TV welcomed', () => idOf(tv));
  await waitFor('everyone in the host\'s lobby', async () => Object.keys(await host.page.evaluate(() => window.parlor.participants)).length === 4);

  await playGame(host, phones, tv, 'en');

  for (const p of [host, ...phones, tv]) await p.page.selectOption('#lang-select', 'ko');
  await playGame(host, phones, tv, 'ko');
});
