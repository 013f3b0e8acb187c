// Simulcast in Chromium. Three pages send their 640x480 camera as two layers (q 320x240, f 640x480); the
// server forwards one layer to each viewer, the one its tiles need (`layout`):
// - every page offers two encodings and the server's answer accepts them (a=simulcast:recv);
// - a page with large tiles decodes the others at 480 lines, a phone-size page at 240 lines, and both keep
//   decoding frames;
// - the phone-size page is made large: it climbs to 480 lines and frames keep coming.
//
//   bash tests/browser/run.sh simulcast.mjs        (from the repository root)

import { randomBytes } from 'node:crypto';
import { waitForHeight } from './layers_lib.mjs';
import { check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';

const room = `simulcast-${randomBytes(5).toString('hex')}`;
const LARGE = { width: 1280, height: 960 };
const PHONE = { width: 360, height: 640 };

await runTest('simulcast', async (browser) => {
  const pages = [];
  for (const [name, viewport] of [['Ana', LARGE], ['Ben', LARGE], ['Cho', PHONE]]) {
    pages.push(await openPage(browser, name, roomPath(room, name, '&video=640x480&fps=15'), { viewport }));
  }
  for (const p of pages) {
    p.id = await waitFor(`${p.name} in the room`, () => p.page.evaluate(() => window.parlor?.id));
  }
  const [ana, ben, cho] = pages;

  for (const p of pages) {
    const sent = await waitFor(`${p.name} sending its camera`, () => p.page.evaluate(() => {
      const pc = window.parlor.pc;
      const sender = pc?.getSenders().find((s) => s.track?.kind === 'video');
      const answer = pc?.remoteDescription?.sdp || '';
      if (!sender || !answer) return null;
      return { encodings: sender.getParameters().encodings.map((e) => e.rid ?? '-'), accepted: /a=simulcast:recv/.test(answer) };
    }));
    log(`${p.name}: sends encodings ${sent.encodings.join(', ')}; the server's answer accepts simulcast: ${sent.accepted}`);
    check(sent.encodings.length === 2 && sent.accepted, `${p.name} sends two simulcast layers, accepted`);
  }

  await waitForHeight(ana, [ben, cho], 480, 'Ana (large tiles) decoding Ben and Cho at 480 lines');
  await waitForHeight(cho, [ana, ben], 240, 'Cho (a phone) decoding Ana and Ben at 240 lines');
  const said = await cho.page.evaluate(() => window.parlor.layout);
  log(`Cho's layout: ${JSON.stringify(said)}; Ana and Ben at 240 lines there, Ben and Cho at 480 at Ana's`);
  await screenshot(cho.page, 'simulcast-phone.png', 'a phone-size page decoding the low layer');

  // Cho's screen grows: its tiles need the top layer, which comes on its keyframe.
  const grown = Date.now();
  await cho.page.setViewportSize(LARGE);
  await waitForHeight(cho, [ana, ben], 480, 'Cho, grown, decoding Ana and Ben at 480 lines');
  log(`Cho climbed to 480 lines ${Date.now() - grown} ms after growing (0.4 s of it the layout's settling)`);
  await waitForHeight(ben, [ana, cho], 480, 'Ben still decoding Ana and Cho at 480 lines');
});
