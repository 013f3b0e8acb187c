// Host access on the room page: a room created through the room API with a PIN. The creator's tab holds the host
// token and gets in without the PIN as the host; a player is asked for the PIN (a wrong one is refused with a plain
// message, the right one lets them in); the host locks the room and a newcomer is told so; the host opens it again
// and the newcomer gets in; closing the room through the API ends every page with a message and no reconnection.
//
//   bash tests/browser/run.sh access.mjs

import { base, check, log, openPage, runTest, screenshot, waitFor } from './lib.mjs';

const PIN = '4321';
const NOCAM = '&media=none';
const VIEW = { width: 900, height: 640 };

const joined = (p) => p.page.evaluate(() => window.parlor?.id ?? null);
const errorText = (p) => p.page.locator('#join-error').textContent();

await runTest('access', async (browser) => {
  const created = await fetch(`${base}/api/rooms`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ pin: PIN }),
  });
  check(created.status === 201, `POST /api/rooms → ${created.status}`);
  const room = await created.json();
  log(`room ${room.code} created through the API with a PIN (join_url ${room.join_url})`);

  // The creator's tab keeps the host token (as the home page does) and joins without the PIN.
  const seed = `sessionStorage.setItem('parlor.host', ${JSON.stringify(JSON.stringify({ room: room.code, token: room.host_token }))});`;
  const host = await openPage(browser, 'Hana', `/r/${room.code}?name=Hana${NOCAM}`, { viewport: VIEW, init: seed });
  host.id = await waitFor('the host welcomed without a PIN', () => joined(host));
  check(await host.page.evaluate(() => window.parlor.host === window.parlor.id), 'the token holder is the host');

  // A player without the PIN is asked for it.
  const ivo = await openPage(browser, 'Ivo', `/r/${room.code}?name=Ivo${NOCAM}`, { viewport: VIEW });
  await waitFor('Ivo asked for the PIN', () => ivo.page.locator('#pin-input').isVisible(), { timeout: 10000 });
  check(/PIN/.test(await errorText(ivo)), `the prompt says why: ${await errorText(ivo)}`);
  await ivo.page.fill('#name-input', 'Ivo');
  await ivo.page.fill('#pin-input', '0000');
  await ivo.page.click('#join-button');
  await waitFor('a wrong PIN refused', async () => (await ivo.page.locator('#pin-input').isVisible()) && !(await joined(ivo)) &&
    /not right/.test(await errorText(ivo)), { timeout: 10000 });
  await screenshot(ivo.page, 'pin-prompt.png', 'the join form asking for the room PIN after a wrong one');
  await ivo.page.fill('#pin-input', PIN);
  await ivo.page.click('#join-button');
  ivo.id = await waitFor('Ivo in with the right PIN', () => joined(ivo), { timeout: 10000 });
  log('PIN: refused without and with a wrong one, accepted with the right one; the token holder needed none');

  // The host locks the room.
  await host.page.click('#lock-toggle');
  await waitFor('both pages see the room locked', async () => (await Promise.all([host, ivo].map((p) =>
    p.page.evaluate(() => /Locked/.test(document.getElementById('lock-text').textContent))))).every(Boolean));
  const jo = await openPage(browser, 'Jo', `/r/${room.code}?name=Jo${NOCAM}`, { viewport: VIEW });
  await waitFor('Jo told the room is locked', async () => /locked/.test(await errorText(jo)) && !(await joined(jo)), { timeout: 10000 });
  await screenshot(host.page, 'lobby-locked.png', 'the host\'s lobby with the room locked');
  await host.page.click('#lock-toggle');
  await waitFor('the room open again', () => host.page.evaluate(() => /Open/.test(document.getElementById('lock-text').textContent)));
  await jo.page.fill('#name-input', 'Jo');
  await jo.page.click('#join-button');
  await waitFor('Jo asked for the PIN', () => jo.page.locator('#pin-input').isVisible(), { timeout: 10000 });
  await jo.page.fill('#pin-input', PIN);
  await jo.page.click('#join-button');
  jo.id = await waitFor('Jo in once the room is open', () => joined(jo), { timeout: 10000 });
  log('lock: a newcomer refused while locked, let in once opened');

  // The host closes the room through the API: every page ends, nobody reconnects.
  const closed = await fetch(`${base}/api/rooms/${room.code}`, { method: 'DELETE', headers: { Authorization: `Bearer ${room.host_token}` } });
  check(closed.status === 204 || closed.status === 200, `DELETE → ${closed.status}`);
  for (const p of [host, ivo, jo]) {
    await waitFor(`${p.name} told the room closed`, () => p.page.evaluate(() =>
      /closed this room/.test(document.querySelector('.card.ended h2')?.textContent ?? '')), { timeout: 10000 });
    check(!(await p.page.evaluate(() => window.parlor.reconnecting)), `${p.name} does not try to reconnect`);
  }
  log('DELETE: every page shows that the host closed the room, none reconnects');
});
