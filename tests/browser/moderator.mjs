// A host who moderates (host_plays: false) and four players without camera (cheap: only the moderator
// publishes). Checked: the moderator's card lists every role as the server sent it; at night the moderator
// sees everyone (no night overlay), may write to everyone and reads the mafia channel; the players still see
// the moderator at night, so their screen shows the moderator live and the others asleep. A sixth page without
// camera joins mid-game: a spectator, who receives what a living citizen receives and may not chat.
//
//   bash tests/browser/run.sh moderator.mjs

import { randomBytes } from 'node:crypto';
import { base, check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';

const room = `mod-${randomBytes(5).toString('hex')}`;
const DESKTOP = { width: 1100, height: 700 };

const phaseOf = (p) => p.page.evaluate(() => `${window.parlor.phase.phase}:${window.parlor.phase.round}`);
const visible = (p, selector) => p.page.locator(selector).first().isVisible();

await runTest('moderator', async (browser) => {
  log(`room ${room} at ${base}`);
  const mod = await openPage(browser, 'Mo', roomPath(room, 'Mo', '&video=320x240&fps=15'), { viewport: DESKTOP });
  await waitFor('the moderator welcomed', () => mod.page.evaluate(() => window.parlor.id));
  const players = await Promise.all(['Pia', 'Quinn', 'Rex', 'Sol'].map((name) =>
    openPage(browser, name, roomPath(room, name, '&media=none'), { viewport: DESKTOP })));
  for (const p of [mod, ...players]) p.id = await waitFor(`${p.name} welcomed`, () => p.page.evaluate(() => window.parlor.id));
  await waitFor('the players decode the moderator', async () => (await Promise.all(players.map((p) => p.page.evaluate(async (id) =>
    ((await window.parlor.inboundByPublisher())[id]?.video?.framesDecoded ?? 0) > 0, mod.id)))).every(Boolean), { timeout: 30000 });

  // The host moderates: one mafioso, a doctor, a detective, one citizen.
  await mod.page.click('#settings-details summary');
  await mod.page.check('#lobby-moderates');
  await mod.page.fill('#lobby-mafia', '1');
  await mod.page.fill('#lobby-doctor', '1');
  await mod.page.fill('#lobby-detective', '1');
  await mod.page.fill('#lobby-len-role_reveal', '1');
  await mod.page.fill('#lobby-len-night', '60');
  check(/you moderate/.test(await mod.page.locator('#lobby-wait').textContent()), 'the lobby counts the players without the moderator');
  await mod.page.click('#start-game');
  log('Mo starts a game as moderator');

  await waitFor('night 1 everywhere', async () => (await Promise.all([mod, ...players].map(phaseOf))).every((k) => k === 'night:1'), { timeout: 20000 });
  const modRole = await mod.page.evaluate(() => window.parlor.role);
  check(modRole.role === 'moderator' && Object.keys(modRole.roles).length === 4, `the moderator's role message: ${JSON.stringify(modRole)}`);
  const listed = await mod.page.$$eval('#role-box .all-roles li', (lis) => lis.map((li) => [li.dataset.id, li.dataset.role]));
  check(JSON.stringify(listed.sort()) === JSON.stringify(Object.entries(modRole.roles).sort()), `the moderator's card lists every role: ${JSON.stringify(listed)}`);
  for (const p of players) {
    p.role = (await p.page.evaluate(() => window.parlor.role)).role;
    check(p.role === modRole.roles[p.id], `${p.name}'s role matches the moderator's list`);
    const badge = await mod.page.locator(`.tile[data-participant-id="${p.id}"] .badge.role`).textContent();
    check(badge.toLowerCase() === p.role, `the moderator's tile of ${p.name} says ${badge}`);
  }
  log(`roles: ${players.map((p) => `${p.name}=${p.role}`).join(', ')}`);

  // The moderator at night: no overlay, writes to everyone, reads the mafia.
  check(!(await visible(mod, '#night-overlay')), 'the moderator sees the grid at night');
  check((await mod.page.getAttribute('#chat-form', 'data-channels')) === 'all', 'the moderator writes to everyone at night');
  const mafioso = players.find((p) => p.role === 'mafia');
  const citizen = players.find((p) => p.role === 'citizen');
  await mafioso.page.fill('#chat-input', 'the moderator can read this');
  await mafioso.page.press('#chat-input', 'Enter');
  await waitFor('the moderator reads the mafia channel', () => mod.page.evaluate(() =>
    window.parlor.chat.some((m) => m.channel === 'mafia' && m.text === 'the moderator can read this')));
  await mod.page.fill('#chat-input', 'Night falls. Mafia, choose.');
  await mod.page.press('#chat-input', 'Enter');
  await waitFor('every player reads the moderator', async () => (await Promise.all(players.map((p) => p.page.evaluate(() =>
    window.parlor.chat.some((m) => m.channel === 'all' && m.text.startsWith('Night falls')))))).every(Boolean));

  // A citizen at night receives only the moderator.
  const receive = await citizen.page.evaluate(() => window.parlor.receive);
  for (const [id, r] of Object.entries(receive)) {
    const want = id === mod.id;
    check(r.video === want && r.audio === want, `${citizen.name} at night receives ${id === mod.id ? 'the moderator' : 'no player'}: ${JSON.stringify(r)}`);
  }
  check(!(await visible(citizen, '#night-overlay')), 'a citizen who still sees the moderator gets the grid, not the overlay');
  await waitFor(`${citizen.name} sees the moderator live`, async () =>
    (await citizen.page.locator(`.tile[data-participant-id="${mod.id}"]`).getAttribute('data-state')) === 'live', { timeout: 10000 });
  const badge = await citizen.page.locator(`.tile[data-participant-id="${mod.id}"] .badge.host`).textContent();
  check(badge === 'moderator', `players see the host as the moderator (${badge})`);
  for (const p of players.filter((q) => q !== citizen)) {
    const state = await citizen.page.locator(`.tile[data-participant-id="${p.id}"]`).getAttribute('data-state');
    check(state === 'asleep', `${citizen.name} sees ${p.name} asleep, not ${state}`);
  }
  // Someone joins during the game: a spectator until the next one.
  const spec = await openPage(browser, 'Tia', roomPath(room, 'Tia', '&media=none'), { viewport: { width: 390, height: 844 } });
  spec.id = await waitFor('the spectator welcomed', () => spec.page.evaluate(() => window.parlor.id));
  const joined = await spec.page.evaluate(() => ({ game: window.parlor.phase, me: window.parlor.participants[window.parlor.id] }));
  check(joined.game.phase === 'night' && joined.me.playing === false && joined.me.alive === false, `the spectator's welcome: ${JSON.stringify(joined)}`);
  check(await visible(spec, '.spectator-line'), 'the spectator is told they are watching');
  check(/watching/.test(await spec.page.locator('#banner-sub').textContent()), 'the banner says so too');
  check(!(await visible(spec, '#chat-form')) && await visible(spec, '#chat-closed'), 'a spectator may not chat during a game, and is told why');
  await waitFor('the spectator receives what a citizen receives', async () => {
    const [a, b] = await Promise.all([spec, citizen].map((p) => p.page.evaluate(() => window.parlor.receive)));
    const strip = (r, without) => JSON.stringify(Object.entries(r).filter(([id]) => !without.includes(id)).sort());
    return strip(a, [citizen.id, spec.id]) === strip(b, [citizen.id, spec.id]);
  });
  await waitFor('the spectator sees the moderator live', async () =>
    (await spec.page.locator(`.tile[data-participant-id="${mod.id}"]`).getAttribute('data-state')) === 'live', { timeout: 15000 });
  await waitFor('the others mark the spectator as watching', async () =>
    (await mod.page.locator(`.tile[data-participant-id="${spec.id}"] .badge.watching`).count()) === 1);
  await screenshot(spec.page, 'spectator-phone.png', 'a spectator who joined mid-game, on a phone: the moderator live, the players asleep, no chat');
  log('spectator view checked');

  await screenshot(mod.page, 'moderator-night.png', 'night as the moderator sees it: every role on the tiles and the card, chat to everyone, mafia chat readable');
  await screenshot(citizen.page, 'citizen-with-moderator-night.png', `night as ${citizen.name} (citizen) sees it with a moderator: the moderator live, the players asleep`);
  log('moderator view checked');
});
