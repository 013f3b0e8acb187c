// Two headless Chromium pages join one room and must each decode the other's video.
// Prints the join time: page open → first remote video frame decoded.
//
//   bash tests/browser/run.sh two_tabs.mjs        (from the repository root)
//
// Environment: PARLOR_URL (default http://127.0.0.1:8080), CHROMIUM (default /usr/bin/chromium),
// BROWSER_DEADLINE_MS (default 20000). Screenshots go to <repo>/test-output/. Exit code 0 = pass.

import { randomBytes } from 'node:crypto';
import { check, log, openPage, roomPath, runTest, screenshot, waitFor, base } from './lib.mjs';

const deadlineMs = Number(process.env.BROWSER_DEADLINE_MS || 20000);
const room = `smoke-${randomBytes(6).toString('hex')}`;
const names = ['Alice', 'Bob'];

/** What a page receives from each publisher, and which remote tiles show a picture. */
async function probe(page) {
  return page.evaluate(async () => {
    const p = window.parlor;
    const inbound = p && p.pc ? await p.inboundByPublisher() : {};
    const tiles = {};
    for (const video of document.querySelectorAll('.tile video.remote')) {
      const tile = video.closest('.tile');
      tiles[tile.dataset.participantId] = {
        width: video.videoWidth, height: video.videoHeight, state: tile.dataset.state,
        name: tile.querySelector('.name')?.textContent ?? null,
      };
    }
    return {
      id: p ? p.id : null,
      inbound,
      tiles,
      firstFrameWall: p && p.firstRemoteFrameAt !== null ? performance.timeOrigin + p.firstRemoteFrameAt : null,
    };
  });
}

await runTest('two_tabs', async (browser) => {
  log(`room ${room} at ${base}`);
  const pages = [];
  // Alice follows a link that carries her name; Bob opens the README's /?room=CODE and types his
  // name into the prompt, as a newcomer does.
  pages.push(await openPage(browser, names[0], roomPath(room, names[0], '&video=320x240'), { viewport: { width: 960, height: 640 } }));
  const bob = await openPage(browser, names[1], `/?room=${encodeURIComponent(room)}&video=320x240`, { viewport: { width: 960, height: 640 } });
  await bob.page.waitForSelector('#name-input', { state: 'visible', timeout: deadlineMs });
  const title = await bob.page.textContent('#join-title');
  check(title.includes(room), `the name prompt names the room: ${JSON.stringify(title)}`);
  await bob.page.fill('#name-input', names[1]);
  await bob.page.click('#join-button');
  pages.push(bob);

  const firstSeen = new Map();
  const last = new Map();
  await waitFor('both pages decoding each other\'s video, rising, with a picture on the tile', async () => {
    const probes = await Promise.all(pages.map((p) => probe(p.page)));
    let ok = true;
    for (const [i, p] of pages.entries()) {
      const s = probes[i];
      const other = probes[1 - i].id;
      const v = other && s.inbound[other] && s.inbound[other].video;
      const frames = v ? v.framesDecoded : 0;
      if (frames > 0 && !firstSeen.has(p.name)) firstSeen.set(p.name, Date.now());
      const before = last.get(p.name);
      p.rising = p.rising || (before !== undefined && before > 0 && frames > before);
      last.set(p.name, frames);
      const tile = other ? s.tiles[other] : undefined;
      // The tile shows the other's picture under the other's name.
      p.tileOk = Boolean(tile && tile.width > 0 && tile.height > 0 && tile.state === 'live' && tile.name === names[1 - i]);
      p.summary = `id=${s.id} framesDecoded(from ${other})=${frames} bytes=${v ? v.bytesReceived : 0} ` +
        `size=${v ? `${v.frameWidth}x${v.frameHeight}` : '-'} tile=${tile ? `${tile.state} "${tile.name}"` : 'none'}`;
      p.firstFrameWall = s.firstFrameWall;
      ok = ok && p.rising && p.tileOk;
    }
    return ok;
  }, { timeout: deadlineMs, interval: 100 });

  for (const p of pages) {
    const byUi = p.firstFrameWall ? Math.round(p.firstFrameWall - p.opened) : null;
    const byStats = firstSeen.has(p.name) ? firstSeen.get(p.name) - p.opened : null;
    log(`${p.name}: ${p.summary}`);
    log(`${p.name}: join time (page open → first remote frame decoded) = ${byUi ?? '?'} ms in the page; ${byStats ?? '?'} ms seen by the test's stats poll`);
    check(byUi !== null || byStats !== null, `${p.name} never reported a first remote frame`);
  }
  // Chromium's fake microphone beeps: the server hears each page's audio level and tells the other
  // who speaks (\`speaking\`), and that page marks the tile.
  await waitFor('each page told that the other speaks, its tile marked', async () => {
    const seen = await Promise.all(pages.map((p) => p.page.evaluate(() => {
      const p = window.parlor;
      const other = Object.keys(p.participants).find((id) => id !== p.id);
      const tile = document.querySelector(`.tile[data-participant-id="${CSS.escape(other)}"]`);
      if (p.speaking.includes(other) && tile?.classList.contains('speaking')) window.__heardSpeaking = true;
      return Boolean(window.__heardSpeaking);
    })));
    return seen.every(Boolean);
  }, { timeout: deadlineMs, interval: 50 });

  // Each page told the server how tall it shows the other's video (`layout`: the simulcast layer it needs).
  for (const p of pages) {
    const said = await p.page.evaluate(() => {
      const p = window.parlor;
      const other = Object.keys(p.participants).find((id) => id !== p.id);
      const tile = document.querySelector(`.tile[data-participant-id="${CSS.escape(other)}"] video`);
      return { height: p.layout?.[other]?.height ?? null, shown: tile ? Math.round(tile.getBoundingClientRect().height * devicePixelRatio) : 0 };
    });
    log(`${p.name}: layout says the other's tile needs ${said.height} px (tile ${said.shown} px tall)`);
    check(said.height !== null && said.height >= said.shown && said.shown > 0, `${p.name} sent a layout naming the other's tile`);
  }
  for (const p of pages) await screenshot(p.page, `two_tabs-${p.name.toLowerCase()}.png`, `${p.name}'s view of the two-person room`);
});
