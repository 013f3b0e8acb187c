// Shared by the network-namespace browser tests (nat.mjs, tcp.mjs; run by netns.sh): two pages join one room,
// each must decode the other's video, and each page's selected ICE candidate pair (getStats) must match.

import { randomBytes } from 'node:crypto';
import { base, check, log, openPage, roomPath, runTest, screenshot, waitFor } from './lib.mjs';

const deadlineMs = Number(process.env.BROWSER_DEADLINE_MS || 30000);

/** Video decoded from the other page, and the selected candidate pair with both candidates. */
async function probe(page) {
  return page.evaluate(async () => {
    const p = window.parlor;
    if (!p || !p.pc) return { id: p ? p.id : null, inbound: {}, pair: null };
    const inbound = await p.inboundByPublisher();
    const stats = await p.pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    const cand = (id) => {
      const c = id && stats.get(id);
      return c ? { type: c.candidateType, protocol: c.protocol, address: c.address, port: c.port, tcpType: c.tcpType } : null;
    };
    return {
      id: p.id,
      inbound,
      pair: pair ? { state: pair.state, local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId) } : null,
    };
  });
}

const show = (c) => (c ? `${c.type} ${c.protocol}${c.tcpType ? `/${c.tcpType}` : ''} ${c.address}:${c.port}` : 'none');

/**
 * Run the two-page check. `expectPair(pair)` returns a list of complaints about a page's selected pair
 * (empty: as expected).
 */
export async function twoPagesOverThisPath(name, expectPair) {
  // The pages come from a plain-HTTP address that is not localhost: let the camera work there anyway.
  const extraArgs = [`--unsafely-treat-insecure-origin-as-secure=${base}`];
  await runTest(name, async (browser) => {
    const room = `${name}-${randomBytes(5).toString('hex')}`;
    log(`room ${room} at ${base}`);
    const pages = [];
    for (const who of ['Alice', 'Bob']) {
      pages.push(await openPage(browser, who, roomPath(room, who, '&video=320x240'), { viewport: { width: 960, height: 640 } }));
    }
    const last = new Map();
    let probes = [];
    await waitFor('both pages decoding each other\'s video (rising)', async () => {
      probes = await Promise.all(pages.map((p) => probe(p.page)));
      let ok = true;
      for (const [i, p] of pages.entries()) {
        const other = probes[1 - i].id;
        const v = other && probes[i].inbound[other] && probes[i].inbound[other].video;
        const frames = v ? v.framesDecoded : 0;
        const before = last.get(p.name);
        p.rising = p.rising || (before !== undefined && before > 0 && frames > before);
        last.set(p.name, frames);
        p.frames = frames;
        ok = ok && p.rising;
      }
      return ok;
    }, { timeout: deadlineMs, interval: 200 });
    for (const [i, p] of pages.entries()) {
      const pair = probes[i].pair;
      log(`${p.name}: framesDecoded=${p.frames}; selected pair ${pair ? pair.state : '-'}: local ${show(pair && pair.local)} -> remote ${show(pair && pair.remote)}`);
      check(pair && pair.local && pair.remote, `${p.name} has no selected candidate pair`);
      const complaints = expectPair(pair);
      check(complaints.length === 0, `${p.name}: ${complaints.join('; ')}`);
    }
    for (const p of pages) await screenshot(p.page, `${name}-${p.name.toLowerCase()}.png`, `${p.name}'s view`);
  }, { extraArgs });
}

/** Complaints when `actual` differs from `expected` in any of the expected fields. */
export function differences(what, actual, expected) {
  const out = [];
  for (const [k, v] of Object.entries(expected)) {
    if (!actual || actual[k] !== v) out.push(`${what}.${k} is ${actual ? JSON.stringify(actual[k]) : 'missing'}, want ${JSON.stringify(v)}`);
  }
  return out;
}
