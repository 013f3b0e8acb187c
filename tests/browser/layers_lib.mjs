// Shared by the simulcast browser checks (simulcast.mjs, throttle.mjs): which layer of each other publisher
// a page decodes, judged by the decoded picture's height.

import { waitFor } from './lib.mjs';

/** What a page decodes of each other publisher (frames, picture height), and its selected pair's local port. */
export async function decoding(page) {
  return page.evaluate(async () => {
    const p = window.parlor;
    const by = p && p.pc ? await p.inboundByPublisher() : {};
    const out = {};
    for (const [id, entry] of Object.entries(by)) {
      if (id !== p.id && entry.video) out[id] = { frames: entry.video.framesDecoded || 0, height: entry.video.frameHeight || 0 };
    }
    let port = null;
    if (p?.pc) {
      const stats = await p.pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          port = stats.get(pair?.localCandidateId)?.port ?? null;
        }
      });
    }
    return { by: out, port };
  });
}

/** Wait until `viewer` decodes every one of `others` at `height` lines with frames rising; returns the wait (ms). */
export async function waitForHeight(viewer, others, height, what, timeout = 40000) {
  const t0 = Date.now();
  let before = null;
  await waitFor(what, async () => {
    const { by } = await decoding(viewer.page);
    const ok = others.every((o) => by[o.id]?.height === height && before && by[o.id].frames > (before[o.id]?.frames ?? 0));
    before = by;
    return ok;
  }, { timeout, interval: 700 });
  return Date.now() - t0;
}
