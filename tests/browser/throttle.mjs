// One viewer's downlink throttled (run by netns.sh throttle): three Chromium pages in the client namespace send
// their 640x480 camera as two simulcast layers to parlor in the other namespace. All watch at 480 lines; then
// the server side of the veth shapes what goes to one page (Cho: its ICE port) to THROTTLE_KBIT (htb, with a
// short queue that drops the excess; this machine's kernel has no policer).
// The server's estimate for Cho falls with the loss Cho reports: Cho is moved to the 240-line layer of both
// others and keeps decoding frames, while Ana and Ben keep 480 lines. The policer lifted, Cho climbs back.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { decoding, waitForHeight } from './layers_lib.mjs';
import { base, check, log, openPage, roomPath, runTest, waitFor } from './lib.mjs';

const DEV = process.env.THROTTLE_DEV;
const NS = process.env.THROTTLE_NS;
const KBIT = Number(process.env.THROTTLE_KBIT || 600);
const room = `throttle-${randomBytes(5).toString('hex')}`;
const LARGE = { width: 1280, height: 960 };

/** `tc` in the server's namespace. */
function tc(...args) {
  execFileSync('ip', ['netns', 'exec', NS, 'tc', ...args], { stdio: 'inherit' });
}

await runTest('throttle', async (browser) => {
  check(DEV && NS, 'THROTTLE_DEV and THROTTLE_NS name the server side of the veth pair');
  const pages = [];
  for (const name of ['Ana', 'Ben', 'Cho']) {
    pages.push(await openPage(browser, name, roomPath(room, name, '&video=640x480&fps=15'), { viewport: LARGE }));
  }
  for (const p of pages) p.id = await waitFor(`${p.name} in the room`, () => p.page.evaluate(() => window.parlor?.id));
  const [ana, ben, cho] = pages;
  for (const p of pages) {
    await waitForHeight(p, pages.filter((o) => o !== p), 480, `${p.name} decoding the others at 480 lines`, 40000);
  }
  const { port } = await decoding(cho.page);
  check(port, 'Cho has a selected candidate pair');

  // Shape what goes to Cho's port; every other page's traffic passes at full speed.
  tc('qdisc', 'add', 'dev', DEV, 'root', 'handle', '1:', 'htb', 'default', '20');
  tc('class', 'add', 'dev', DEV, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', `${KBIT}kbit`, 'ceil', `${KBIT}kbit`);
  tc('class', 'add', 'dev', DEV, 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '1000mbit');
  tc('qdisc', 'add', 'dev', DEV, 'parent', '1:10', 'handle', '10:', 'pfifo', 'limit', '20');
  tc('filter', 'add', 'dev', DEV, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
    'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', String(port), '0xffff', 'flowid', '1:10');
  log(`Cho's downlink (port ${port}) shaped to ${KBIT} kbit/s`);
  const down = await waitForHeight(cho, [ana, ben], 240, 'Cho, throttled, moved to 240 lines and decoding', 60000);
  log(`Cho settled on 240 lines ${down} ms after the throttle`);
  for (const p of [ana, ben]) {
    await waitForHeight(p, pages.filter((o) => o !== p), 480, `${p.name} still at 480 lines`, 20000);
  }

  tc('qdisc', 'del', 'dev', DEV, 'root');
  const up = await waitForHeight(cho, [ana, ben], 480, 'Cho, the throttle lifted, back at 480 lines', 120000);
  log(`Cho climbed back to 480 lines ${up} ms after the throttle was lifted`);
}, { extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${base}`] }); // a camera on a plain-HTTP address
