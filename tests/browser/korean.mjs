// The client in Korean, in headless Chromium:
// - the string tables: Korean has every English key (core and Mafia), with the same placeholders, in Hangul;
// - an English page switches to Korean with the language switch; the home page and, after creating a room,
//   the lobby are in Korean (no English left in the checked elements), and the choice survives the page change;
// - a page whose browser speaks Korean (locale ko-KR) is Korean from the start (its name prompt, then the lobby);
//   pages without it stay English;
// - four pages (no cameras) play a whole Mafia game started from the Korean page: role cards, phase banners,
//   the night's choice, the call for a vote, the nomination, the verdict and the game-over screen are in each
//   page's language, and every button the game needs is there and works.
//
//   bash tests/browser/run.sh korean.mjs

import { check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';
import en from '../../web/i18n/en.js';
import ko from '../../web/i18n/ko.js';
import mafiaEn from '../../web/games/mafia/en.js';
import mafiaKo from '../../web/games/mafia/ko.js';

const NOCAM = '&media=none';
const VIEW = { width: 1000, height: 700 };
const HANGUL = /[\uac00-\ud7a3]/;
const LATIN = /[A-Za-z]/;
// The Korean pages' players have Korean names, so that no Latin letter on their screens is a name.
// Short phases: the night, the day and the votes end early once everyone has acted.
const LENGTHS = { role_reveal: 2, night: 60, dawn: 2, day: 60, nomination: 60, defense: 1.5, judgment: 60, game_over: 30 };

/** The placeholders of a table value (a function's are not visible: none). */
const holes = (v) => (typeof v === 'string' ? [...v.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',') : '');

function checkTables(name, english, korean) {
  const missing = Object.keys(english).filter((k) => !(k in korean));
  const extra = Object.keys(korean).filter((k) => !(k in english));
  check(missing.length === 0, `${name}: Korean lacks ${missing.join(', ')}`);
  check(extra.length === 0, `${name}: Korean has keys English does not: ${extra.join(', ')}`);
  for (const [key, value] of Object.entries(korean)) {
    if (typeof value === 'string' && typeof english[key] === 'string') {
      check(holes(value) === holes(english[key]), `${name}: ${key} has placeholders {${holes(value)}}, English {${holes(english[key])}}`);
    }
    const sample = typeof value === 'function' ? value({ n: 2, ready: 1, min: 4, max: 16, verdict: '유죄', channel: '전체' }) : value;
    // Separators and brand names may be without Hangul.
    if (!['list.sep'].includes(key)) check(HANGUL.test(sample), `${name}: ${key} is not Korean: ${JSON.stringify(sample)}`);
  }
  log(`${name}: ${Object.keys(korean).length} Korean strings, the same keys and placeholders as English`);
}

/** The text of each selector, and which contain Latin letters (English left over). */
async function texts(p, selectors) {
  return p.page.evaluate((selectors) => Object.fromEntries(selectors.map((s) => {
    const el = document.querySelector(s);
    return [s, el ? (el.textContent || el.getAttribute('placeholder') || '').trim() : null];
  })), selectors);
}

async function expectKorean(p, selectors, what) {
  const got = await texts(p, selectors);
  for (const [selector, text] of Object.entries(got)) {
    check(text !== null && text !== '', `${p.name} (${what}): ${selector} is missing or empty`);
    check(HANGUL.test(text), `${p.name} (${what}): ${selector} is not Korean: ${JSON.stringify(text)}`);
    check(!LATIN.test(text.replace(/parlor/g, '')), `${p.name} (${what}): ${selector} has English left: ${JSON.stringify(text)}`);
  }
  log(`${p.name} ${what} in Korean: ${Object.values(got).map((v) => `“${v}”`).join(' ')}`);
}

const phaseOf = (p) => p.page.evaluate(() => `${window.parlor.phase.phase}:${window.parlor.phase.round}`);
const textOf = (p, selector) => p.page.locator(selector).first().textContent();

async function allIn(pages, key, timeout = 20000) {
  await waitFor(`every page in ${key}`, async () => (await Promise.all(pages.map(phaseOf))).every((k) => k === key), { timeout });
}

await runTest('korean', async (browser) => {
  checkTables('core', en, ko);
  checkTables('mafia', mafiaEn, mafiaKo);

  // ---- an English page switches to Korean on the home page
  const ana = await openPage(browser, '하나', `/?${NOCAM.slice(1)}`, { viewport: VIEW });
  await waitFor('the home page', () => ana.page.locator('#create-form').isVisible());
  check((await ana.page.evaluate(() => navigator.language)).startsWith('en'), 'the default browser language is English');
  check((await textOf(ana, '#create-button')) === en['home.create_button'], 'the home page starts in English');
  await ana.page.selectOption('#lang-select', 'ko');
  await waitFor('the page in Korean', () => ana.page.evaluate(() => document.documentElement.lang === 'ko'));
  await expectKorean(ana, ['#create-form h2', 'label[for="create-name"]', '#create-button', '#code-form h2', 'label[for="code-input"]',
    '#code-button', '.intro h1', '#create-settings .counts legend', '#create-settings .host-mode legend', '#create-settings details summary'], 'home page');
  check(await ana.page.getAttribute('#create-name', 'placeholder') === ko['home.name_placeholder'], 'the name field\'s placeholder is Korean');
  check(await ana.page.evaluate(() => localStorage.getItem('parlor.lang')) === 'ko', 'the choice is kept in localStorage');
  await screenshot(ana.page, 'korean-home.png', 'the home page after switching to Korean');

  await ana.page.fill('#create-name', '하나');
  await ana.page.fill('#home-mafia', '1');
  await ana.page.fill('#home-doctor', '0');
  await ana.page.fill('#home-detective', '0');
  await ana.page.click('#create-settings details summary');
  for (const [phase, seconds] of Object.entries(LENGTHS)) await ana.page.fill(`#home-len-${phase}`, String(seconds));
  await Promise.all([ana.page.waitForURL(/\/r\/[a-z]+-[a-z]+-\d\d/), ana.page.click('#create-button')]);
  ana.id = await waitFor('Ana welcomed', () => ana.page.evaluate(() => window.parlor.id));
  const room = await ana.page.evaluate(() => window.parlor.room);
  log(`Ana created room ${room} from the Korean home page`);

  // ---- the lobby, in Korean after the page change
  await waitFor('the lobby shown', () => ana.page.locator('#lobby-box').isVisible());
  check(await ana.page.evaluate(() => document.documentElement.lang) === 'ko', 'the room page keeps Korean');
  await expectKorean(ana, ['#lobby-title', '#ready-toggle', '#start-game', '#banner-title', '#banner-sub', '#chat h2', '#chat-send', '#leave',
    '#toggle-mic', '#lobby-wait', '#settings-details summary', '#invite h2', '#copy-link', '#lock-text', '#lock-toggle', '#notice'], 'lobby');
  check((await textOf(ana, '#lobby-title')) === ko['phase.lobby'] && (await textOf(ana, '#start-game')) === ko['lobby.start'],
    'the lobby title and the start button are the Korean table\'s');
  const placeholder = await ana.page.getAttribute('#chat-input', 'placeholder');
  check(placeholder === ko['chat.placeholder_to'].replace('{channel}', ko['chat.channel.all']), `the chat placeholder is Korean: ${placeholder}`);
  check((await ana.page.inputValue('#lobby-mafia')) === '1', 'the settings chosen on the Korean home page reach the lobby');

  // ---- a browser that speaks Korean gets Korean by default; the others stay English
  // Bora follows the invite link: the name prompt is Korean too.
  const bora = await openPage(browser, '보라', `/r/${room}?${NOCAM.slice(1)}`, { viewport: VIEW, locale: 'ko-KR' });
  await waitFor('Bora\'s name prompt', () => bora.page.locator('#join-form').isVisible());
  await waitFor('Bora\'s preview status', async () => (await textOf(bora, '#preview-status')) === ko['media.none']);
  await expectKorean(bora, ['#join-button', 'label[for="name-input"]', '#preview-status'], 'name prompt (ko-KR browser)');
  check((await textOf(bora, '#join-title')) === ko['join.title'].replace('{room}', room), 'the prompt names the room in Korean');
  await bora.page.fill('#name-input', '보라');
  await bora.page.click('#join-button');
  const cy = await openPage(browser, 'Cy', roomPath(room, 'Cy', NOCAM), { viewport: VIEW });
  const dan = await openPage(browser, 'Dan', roomPath(room, 'Dan', NOCAM), { viewport: VIEW });
  const pages = [ana, bora, cy, dan];
  for (const p of pages.slice(1)) p.id = await waitFor(`${p.name} welcomed`, () => p.page.evaluate(() => window.parlor.id));
  for (const p of pages) p.korean = p === ana || p === bora;
  check(await bora.page.evaluate(() => navigator.language) === 'ko-KR', 'Bora\'s browser speaks Korean');
  check(await bora.page.evaluate(() => document.documentElement.lang === 'ko' && localStorage.getItem('parlor.lang') === null),
    'Bora gets Korean from the browser\'s language, not from a stored choice');
  check(await bora.page.inputValue('#lang-select') === 'ko', 'Bora\'s switch shows Korean');
  await expectKorean(bora, ['#lobby-title', '#ready-toggle', '#banner-title', '#banner-sub', '#chat h2', '#leave', '#lobby-wait'], 'lobby (ko-KR browser)');
  for (const p of [cy, dan]) {
    check((await textOf(p, '#ready-toggle')) === en['lobby.ready_off'] && (await textOf(p, '#lobby-title')) === en['phase.lobby'],
      `${p.name} (an English browser) sees the lobby in English`);
  }
  log('Bora (ko-KR) is Korean by default; Cy and Dan (English browsers) are English');

  // ---- ready, then the host starts from the Korean page
  for (const p of pages.slice(1)) await p.page.click('#ready-toggle');
  await waitFor('Ana sees three ready', async () => (await ana.page.locator('#roster li[data-ready="true"]').count()) === 3, { timeout: 10000 });
  check((await textOf(bora, '#ready-toggle')) === ko['lobby.ready_on'], 'Bora\'s ready button says so in Korean');
  check((await ana.page.locator('#roster li[data-ready="true"] .ready-text').first().textContent()) === ko['lobby.is_ready'], 'the roster says ready in Korean');
  await screenshot(ana.page, 'korean-lobby.png', 'the lobby in Korean, three players ready');
  await ana.page.click('#start-game');
  log('Ana starts the game from the Korean page');

  // ---- role reveal: each card in its page's language
  await waitFor('a role on every page', async () => (await Promise.all(pages.map((p) => p.page.evaluate(() => window.parlor.role)))).every(Boolean), { timeout: 20000 });
  for (const p of pages) {
    p.role = (await p.page.evaluate(() => window.parlor.role)).role;
    const card = await waitFor(`${p.name}'s role card`, () => p.page.evaluate(() => {
      const c = document.querySelector('#role-box .role-card');
      return c ? { role: c.dataset.role, name: c.querySelector('.role-name').textContent, kicker: c.querySelector('.role-kicker').textContent } : null;
    }), { timeout: 10000 });
    const table = p.korean ? mafiaKo : mafiaEn;
    check(card.role === p.role && card.name === table[`mafia.role.${p.role}`] && card.kicker === table['mafia.card.your_role'],
      `${p.name}'s card shows ${JSON.stringify(card)} for ${p.role} (${p.korean ? 'Korean' : 'English'})`);
  }
  log(`roles: ${pages.map((p) => `${p.name}=${p.role}`).join(', ')}; Ana and Bora read theirs in Korean (${mafiaKo[`mafia.role.${ana.role}`]}, ${mafiaKo[`mafia.role.${bora.role}`]})`);
  const mafioso = pages.find((p) => p.role === 'mafia');
  const citizens = pages.filter((p) => p.role === 'citizen');
  check(mafioso && citizens.length === 3, 'one mafioso and three citizens');

  // ---- night 1: the banner in Korean; the mafioso picks a victim through the buttons
  await allIn(pages, 'night:1');
  for (const p of [ana, bora]) {
    check((await textOf(p, '#banner-title')) === mafiaKo['mafia.banner.night'].replace('{round}', '1'), `${p.name}'s banner says the night in Korean`);
  }
  const sleeper = citizens.find((p) => p.korean);
  if (sleeper) {
    await expectKorean(sleeper, ['#night-title', '#night-text', '#chat-closed'], 'night overlay');
  }
  const askTitle = (mafioso.korean ? mafiaKo : mafiaEn)['mafia.night.ask_mafia'];
  check((await textOf(mafioso, '#action-box h2')) === askTitle, `${mafioso.name} is asked whom to kill in its language`);
  await screenshot((sleeper || ana).page, 'korean-night.png', 'night 1 on a Korean page');
  const victim = citizens.find((p) => !p.korean) || citizens[0];
  await mafioso.page.click(`#action-box button[data-target="${victim.id}"]`);
  log(`${mafioso.name} (mafia) kills ${victim.name}`);

  // ---- day 1: call the vote
  await allIn(pages, 'day:1', 30000);
  const living = pages.filter((p) => p !== victim);
  for (const p of living.filter((q) => q.korean)) {
    check((await textOf(p, '#banner-title')) === mafiaKo['mafia.banner.day'].replace('{round}', '1'), `${p.name}'s banner says the day in Korean`);
    check((await textOf(p, '#call-vote')) === mafiaKo['mafia.day.call'], `${p.name}'s call-the-vote button is Korean`);
  }
  for (const p of living.slice(0, 2)) await p.page.click('#call-vote:not([disabled])');

  // ---- nomination: the two citizens put the mafioso on trial, the mafioso votes for a citizen
  await allIn(pages, 'nomination:1', 15000);
  const town = living.filter((p) => p !== mafioso);
  for (const p of living.filter((q) => q.korean)) {
    check((await textOf(p, '#action-box h2')) === mafiaKo['mafia.nomination.ask'], `${p.name} is asked whom to put on trial, in Korean`);
  }
  for (const p of town) await p.page.click(`#action-box button[data-vote-target="${mafioso.id}"]`);
  await mafioso.page.click(`#action-box button[data-vote-target="${town[0].id}"]`);

  // ---- judgment: guilty
  await allIn(pages, 'judgment:1', 15000);
  for (const p of living.filter((q) => q.korean && q !== mafioso)) {
    check((await textOf(p, '#verdict-guilty')) === mafiaKo['mafia.verdict.guilty'], `${p.name}'s guilty button is Korean`);
    check((await textOf(p, '#banner-title')) === mafiaKo['mafia.phase.judgment'], `${p.name}'s banner names the judgment in Korean`);
  }
  await screenshot(ana.page, 'korean-judgment.png', 'the judgment on the Korean host\'s page');
  for (const p of town) await p.page.click('#verdict-guilty');

  // ---- game over: the town wins; the screen in each page's language
  await waitFor('game over on every page', async () => (await Promise.all(pages.map((p) => p.page.evaluate(() => window.parlor.gameOver?.winner ?? null)))).every((w) => w === 'town'), { timeout: 15000 });
  for (const p of pages) {
    const title = await waitFor(`${p.name}'s game-over screen`, () => p.page.evaluate(() => document.querySelector('#gameover h2')?.textContent ?? null), { timeout: 10000 });
    const table = p.korean ? mafiaKo : mafiaEn;
    check(title === table['mafia.over.town_wins_title'], `${p.name}'s game-over title: ${JSON.stringify(title)}`);
    const words = await p.page.evaluate(() => document.body.innerText);
    check(!/\b(null|undefined|NaN)\b/.test(words), `${p.name}'s screen shows no placeholder value`);
    check(!/\{\w+\}/.test(words), `${p.name}'s screen shows no unfilled {placeholder}`);
  }
  await expectKorean(ana, ['#gameover h2', '#gameover .gameover-why', '#gameover .role-kicker', '#banner-title', '#lobby-title', '#start-game'], 'game over');
  const fates = await ana.page.$$eval('#gameover .reveal-list .fate', (els) => els.map((e) => e.textContent));
  check(fates.every((f) => HANGUL.test(f)), `the reveal's fates are Korean: ${fates}`);
  await screenshot(ana.page, 'korean-game-over.png', 'the game-over screen in Korean');
  log('a whole Mafia game played from Korean pages: the town wins');

  // ---- switching back to English on the room page redraws it
  await ana.page.selectOption('#lang-select', 'en');
  await waitFor('Ana\'s page in English again', async () => (await textOf(ana, '#gameover h2')) === mafiaEn['mafia.over.town_wins_title'] &&
    (await textOf(ana, '#start-game')) === en['lobby.start_next'] && (await textOf(ana, '#chat h2')) === en['chat.title']);
  log('switching back to English redraws the room page');
});
