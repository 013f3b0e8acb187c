// Server time from ping/pong: RTT and clock offset. serverNow() = Date.now() + offset; the countdowns
// run on it, so every phone shows the same second.

import { send } from './socket.js';

const PING_INTERVAL_MS = 2000;
const CLOCK_SAMPLES = 10;
/** No `pong` for this long while the socket looks open: it is dead, reconnect. */
export const PONG_SILENCE_MS = 12000;

export const clock = { rtt: null, minRtt: null, offset: 0, samples: [], serverRtt: null };
export const serverNow = () => Date.now() + clock.offset;

let pingTimer = null;
let lastPongAt = 0;

/** Ping every 2 s; `onSilence` when no pong came for PONG_SILENCE_MS. */
export function startPing(onSilence) {
  stopPing();
  lastPongAt = performance.now();
  const ping = () => {
    if (performance.now() - lastPongAt > PONG_SILENCE_MS) { onSilence(); return; }
    send({ type: 'ping', t: Date.now() });
  };
  ping();
  pingTimer = setInterval(ping, PING_INTERVAL_MS);
}

export function stopPing() {
  if (pingTimer !== null) clearInterval(pingTimer);
  pingTimer = null;
}

export function onPong(msg) {
  lastPongAt = performance.now();
  const now = Date.now();
  if (typeof msg.rtt_ms === 'number') clock.serverRtt = msg.rtt_ms;
  if (typeof msg.t !== 'number' || typeof msg.server_time !== 'number') return;
  const rtt = Math.max(0, now - msg.t);
  // The server read its clock about halfway through the round trip.
  const offset = msg.server_time - (msg.t + rtt / 2);
  clock.samples.push({ rtt, offset });
  if (clock.samples.length > CLOCK_SAMPLES) clock.samples.shift();
  // The sample with the shortest round trip has the smallest error bound.
  const best = clock.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
  clock.rtt = rtt;
  clock.minRtt = best.rtt;
  clock.offset = best.offset;
}

export function timeOfDay(unixMs) {
  const d = new Date(unixMs - clock.offset);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}
