// A cluster in real Chromium (docs/SCALING.md): a redis-server and three parlor nodes of this script's own.
// The pages are opened at `z-front`, which stands for the load balancer's address (the id sorts last, so ties
// in placement go to the other nodes).
// - a room lives on n2; two pages open it at z-front (the wrong node): each follows the redirect and both end
//   in a working call at n2 (each decodes the other's video);
// - n2 is killed (SIGKILL) under the pages: they reconnect through z-front, their resume fails cleanly
//   (resume_expired: the room is gone), and each joins the room again by itself, placed anew on n1 — and the
//   call works again. The time from the kill to both decoding again is printed;
// - n1 gets SIGTERM with drain_seconds = 3: the call runs on there while it drains, then n1 leaves, the pages get
//   server_shutdown, reconnect, and join the room again on z-front, the one node left — the call works again.
// Then a second cluster in host_key mode: a page in a room made through the API on n2; n2 is killed; the page's
// one automatic rejoin fails (room_not_found: only the API creates rooms there) and the name prompt says so,
// with no second try.
//
//   bash tests/browser/run.sh cluster.mjs       (needs redis-server on PATH; .ci/run installs it)
//
// The server run.sh starts is not used: this script starts Redis (a free port, no persistence) and the two
// nodes (target/debug/parlor on ephemeral ports) itself and stops them by PID. DEBUG_PAGES=1 prints every
// console line of the pages (the client logs its reconnections, redirects and rejoins).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { check, log, repoRoot, runTest, screenshot, waitFor } from './lib.mjs';

const binary = process.env.PARLOR_BIN || path.join(repoRoot, 'target', 'debug', 'parlor');
const room = `cl-${randomBytes(5).toString('hex')}`;
const MEDIA = '&video=320x240&fps=10';
/** Short heartbeats, so a killed node's room is free within a few seconds (the default TTL is 6 s). */
const HEARTBEAT = '0.5';
const TTL = '2';

const children = [];

/** A TCP port nobody listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Start `cmd`; resolve with {child, match} once `pattern` shows up in its output (stdout or stderr). */
function startProcess(name, cmd, args, env, pattern) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let seen = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) { done = true; reject(new Error(`${name} did not start within 30 s:\n${seen.slice(-2000)}`)); }
    }, 30000);
    const onData = (chunk) => {
      seen += chunk.toString();
      if (seen.length > 100000) seen = seen.slice(-50000);
      const m = seen.match(pattern);
      if (m && !done) { done = true; clearTimeout(timer); resolve({ child, match: m, log: () => seen }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`${name} exited (${code ?? signal}):\n${seen.slice(-2000)}`)); }
    });
  });
}

async function startRedis() {
  const port = await freePort();
  await startProcess('redis-server', 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, /Ready to accept connections/);
  return `redis://127.0.0.1:${port}/`;
}

/** A parlor node of the cluster on `redis`: {child, url}. */
async function startNode(redis, id, drainSeconds = '0', extra = {}) {
  const env = {
    ...extra,
    PARLOR_CLUSTER__REDIS: redis,
    PARLOR_CLUSTER__NODE_ID: id,
    PARLOR_CLUSTER__HEARTBEAT_SECONDS: HEARTBEAT,
    PARLOR_CLUSTER__TTL_SECONDS: TTL,
    PARLOR_CLUSTER__DRAIN_SECONDS: drainSeconds,
    PARLOR_GAMES__LOG_DIR: '',
    PARLOR_LOG__LEVEL: 'info',
    NO_COLOR: '1',
  };
  // The cluster logs the node's URL (its bound port) as it joins.
  const { child, match, log: output } = await startProcess(`parlor ${id}`, binary,
    ['serve', '--listen', '127.0.0.1:0', '--udp-port', '0'], env, /cluster: joining.*?url=(http:\/\/127\.0\.0\.1:\d+)/);
  log(`node ${id} at ${match[1]} (pid ${child.pid})`);
  return { id, child, url: match[1], output };
}

function stopAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.length = 0;
}
process.on('exit', stopAll);

/** A page of its own (own context: own storage, own camera) at the full URL `url`. */
async function openAt(browser, name, url) {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`  [${name} console.error] ${msg.text()}`);
    else if (process.env.DEBUG_PAGES) log(`  [${name} ${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.error(`  [${name} pageerror] ${err.message}`));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  return { name, page };
}

/** Where the page's socket is, its seat, and the video it decodes from each publisher. */
async function probe(p) {
  return p.page.evaluate(async () => {
    const pr = window.parlor;
    const inbound = pr && pr.pc ? await pr.inboundByPublisher() : {};
    return {
      id: pr ? pr.id : null,
      ws: pr && pr.ws ? pr.ws.url : null,
      open: pr && pr.ws ? pr.ws.readyState === 1 : false,
      frames: Object.fromEntries(Object.entries(inbound).map(([id, s]) => [id, s?.video?.framesDecoded ?? 0])),
      errors: pr ? pr.errors.map((e) => e.code) : [],
      chat: pr ? pr.chat.length : 0,
    };
  });
}

/** Both pages hold seats on `node` and each decodes more and more video from the other's current seat. */
async function callWorksAt(pages, node, what) {
  const host = new URL(node.url).host;
  const last = new Map();
  const rising = new Set();
  let states = [];
  const polled = waitFor(what, async () => {
    states = await Promise.all(pages.map(probe));
    for (const [i, s] of states.entries()) {
      const other = states[1 - i].id;
      const frames = other ? s.frames[other] ?? 0 : 0;
      const key = `${pages[i].name}:${other}`;
      if (last.has(key) && frames > last.get(key) && last.get(key) > 0) rising.add(key);
      last.set(key, frames);
    }
    return states.every((s, i) => s.open && s.ws === `ws://${host}/ws` && s.id && rising.has(`${pages[i].name}:${states[1 - i].id}`));
  }, { timeout: 30000, interval: 200 });
  try {
    await polled;
  } catch (err) {
    for (const [i, s] of states.entries()) log(`${pages[i].name} at the timeout: ${JSON.stringify(s)}`);
    throw err;
  }
  for (const [i, s] of states.entries()) log(`${pages[i].name}: seat ${s.id} at ${s.ws}, frames from the other: ${s.frames[states[1 - i].id]}`);
  return states;
}

/** The chat lines saying the page joined the room again. */
const rejoinLines = (p) => p.page.evaluate(() => [...document.querySelectorAll('#chat-log li')]
  .filter((li) => /joined again/.test(li.textContent)).length);

await runTest('cluster', async (browser) => {
  const redis = await startRedis();
  const front = await startNode(redis, 'z-front');
  const n1 = await startNode(redis, 'n1', '3');
  const n2 = await startNode(redis, 'n2');

  // The room is made on n2 (the API opens a room on the node it reaches).
  const made = await fetch(`${n2.url}/api/rooms`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: room }),
  });
  const body = await made.json();
  check(made.status === 201 && body.node_url === n2.url, `room ${room} made on n2: ${made.status} ${JSON.stringify(body)}`);
  const found = await (await fetch(`${front.url}/api/rooms/${room}`)).json();
  check(found.node_url === n2.url, `z-front points at n2 for the room: ${JSON.stringify(found)}`);

  // Both pages open the room at z-front, the wrong node.
  const pages = [];
  for (const name of ['Alice', 'Bob']) pages.push(await openAt(browser, name, `${front.url}/r/${room}?name=${name}${MEDIA}`));
  const first = await callWorksAt(pages, n2, 'both pages in a working call at n2, the owner, after opening the room at z-front');
  await screenshot(pages[0].page, 'cluster-redirected.png', 'Alice at n2 after opening the room at z-front');

  // n2 dies under the call.
  n2.child.kill('SIGKILL');
  const killed = Date.now();
  log(`SIGKILL n2 (pid ${n2.child.pid})`);
  const second = await callWorksAt(pages, n1, 'both pages back in a working call, now at n1, with no click');
  const took = Date.now() - killed;
  log(`call working again on n1 ${(took / 1000).toFixed(1)} s after SIGKILL of n2 (ttl_seconds = ${TTL}, heartbeat ${HEARTBEAT} s)`);
  for (const [i, s] of second.entries()) {
    check(s.id !== first[i].id, `${pages[i].name} has a new seat (${first[i].id} → ${s.id})`);
    check(s.errors.includes('resume_expired'), `${pages[i].name}'s resume failed cleanly first: ${JSON.stringify(s.errors)}`);
    check(await rejoinLines(pages[i]) === 1, `${pages[i].name}'s chat says it joined again`);
  }
  await screenshot(pages[0].page, 'cluster-rejoined.png', 'Alice back in the call on n1 after n2 was killed');
  const onN1 = await (await fetch(`${n1.url}/api/rooms/${room}`)).json();
  check(onN1.node_url === n1.url && onN1.participants?.length === 2, `the room lives on n1 with two people: ${JSON.stringify(onN1)}`);

  // n1 drains: the call runs on there until drain_seconds, then the pages move to z-front by themselves.
  n1.child.kill('SIGTERM');
  const termed = Date.now();
  log(`SIGTERM n1 (pid ${n1.child.pid}, drain_seconds = 3)`);
  const draining = await waitFor('n1 says it drains', async () => /parlor_cluster_draining 1/.test(await (await fetch(`${n1.url}/metrics`)).text()),
    { timeout: 2000, interval: 50 });
  check(draining, 'n1 drains');
  const during = await callWorksAt(pages, n1, 'the call still working on n1 while it drains');
  check(during.every((s, i) => s.id === second[i].id), 'the same seats while n1 drains');
  check(Date.now() - termed < 3000, `media seen flowing on n1 within its drain (${Date.now() - termed} ms after SIGTERM)`);
  const third = await callWorksAt(pages, front, 'both pages back in a working call at z-front after n1 left');
  log(`call working again on z-front ${((Date.now() - termed) / 1000).toFixed(1)} s after SIGTERM of n1 (drain_seconds = 3)`);
  const exit = n1.child.exitCode;
  check(exit === 0, `n1 exited cleanly after its drain: ${exit ?? n1.child.signalCode}`);
  for (const [i, s] of third.entries()) {
    check(s.id !== second[i].id, `${pages[i].name} has a new seat again (${second[i].id} → ${s.id})`);
    check(s.errors.includes('server_shutdown'), `${pages[i].name} was told n1 shut down: ${JSON.stringify(s.errors)}`);
    check(await rejoinLines(pages[i]) === 2, `${pages[i].name}'s chat says it joined again, twice now`);
  }
  await screenshot(pages[1].page, 'cluster-after-drain.png', 'Bob in the call on z-front after n1 drained');
  for (const p of pages) await p.page.context().close();
  stopAll();

  await rejoinThatFails(browser);
});

/** host_key mode: a lost API-made room cannot be recreated by a join, so the automatic rejoin fails once, plainly. */
async function rejoinThatFails(browser) {
  const key = 'cluster-test-key-0123456789';
  const auth = { PARLOR_AUTH__MODE: 'host_key', PARLOR_AUTH__HOST_KEYS: JSON.stringify([key]) };
  const redis = await startRedis();
  const front = await startNode(redis, 'z-front', '0', auth);
  const owner = await startNode(redis, 'n2', '0', auth);
  const code = `${room}-k`;
  const made = await fetch(`${owner.url}/api/rooms`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ code }),
  });
  check(made.status === 201, `host_key room made on n2: ${made.status} ${await made.text()}`);
  const cleo = await openAt(browser, 'Cleo', `${front.url}/r/${code}?name=Cleo${MEDIA}`);
  await waitFor('Cleo seated at n2', async () => {
    const s = await probe(cleo);
    return s.id && s.open && s.ws === `ws://${new URL(owner.url).host}/ws`;
  }, { timeout: 20000 });
  owner.child.kill('SIGKILL');
  log(`SIGKILL n2 (pid ${owner.child.pid}) under Cleo, host_key mode`);
  await waitFor('the name prompt, saying the room is gone', async () => cleo.page.evaluate(() => {
    const prompt = document.getElementById('prejoin');
    const error = document.getElementById('join-error');
    return prompt && !prompt.hidden && error && !error.hidden && /no room|not found|doesn't exist|does not exist/i.test(error.textContent);
  }), { timeout: 30000 });
  const { errors, text, name } = await cleo.page.evaluate(() => ({
    errors: window.parlor.errors.map((e) => e.code),
    text: document.getElementById('join-error').textContent,
    name: document.getElementById('name-input').value,
  }));
  log(`Cleo's prompt: "${text}" (errors ${JSON.stringify(errors)})`);
  check(errors.join(',') === 'resume_expired,room_not_found', `one resume, one rejoin, then the prompt: ${JSON.stringify(errors)}`);
  check(name === 'Cleo', `the prompt keeps her name: ${JSON.stringify(name)}`);
  // No second try behind the prompt's back.
  await new Promise((r) => setTimeout(r, 3000));
  const later = await cleo.page.evaluate(() => ({ errors: window.parlor.errors.length, ws: window.parlor.ws }));
  check(later.errors === 2 && later.ws === null, `nothing more after the prompt: ${JSON.stringify(later)}`);
  await screenshot(cleo.page, 'cluster-rejoin-failed.png', 'Cleo told the room is gone after its node died (host_key mode)');
  stopAll();
}
