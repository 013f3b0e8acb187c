// Red light, green light (kind `rlgl`), played on a stage: the host leads (seen by everyone), the players run
// from their phones, and whoever moves on red is spotlighted for everyone to see. Wire: docs/PROTOCOL.md,
// "Red light, green light rooms".
//
// - A phone (a player) shows a huge light filling the screen, its own distance, a "hold to run" button
//   (each press is a step, and holding keeps stepping) and shake-to-run from `devicemotion` (iOS asks for
//   permission first; tapping always works). Steps go out as `move` at most 10 times a second. The phone
//   does not stop a player on red: the server judges by when each move arrived and its own measurement of
//   the phone's latency.
// - The host and the TV view (/r/CODE/tv) show the track with every player's dot, the light and the
//   spotlight; the host switches the light when it is not automatic.

import { h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { send } from '../core/socket.js';
import { isHost, nameOf, S } from '../core/state.js';
import { ui } from '../core/ui.js';
import { badge, layoutGrid } from '../core/tiles.js';
import { systemLine } from '../core/chat.js';
import { inviteLink } from '../core/room.js';
import { remoteStreams } from '../core/media.js';
import en from './rlgl/en.js';
import ko from './rlgl/ko.js';

/** At most this many `move` a second (the protocol's limit). */
const SEND_INTERVAL_MS = 100;
/** Holding the button steps this often (a brisk run; the server caps at settings.max_steps_per_second). */
const HOLD_STEP_MS = 160;
/** A shake: this change of acceleration (m/s²) between two readings, at most one step per SHAKE_GAP_MS. */
const SHAKE_DELTA = 9;
const SHAKE_GAP_MS = 180;
/** The reference client's TV views (app.js): screens, not players (the server makes them watch too). */
const TV_NAME = /^TV [a-z0-9]{4}$/;

const G = {
  distances: {},       // id -> steps, from progress (and welcome.distances)
  out: new Map(),      // id -> eliminated message
  finished: new Map(), // id -> rank
  ranking: null,       // game_over.ranking
  pending: 0,          // steps counted and not sent yet
  holding: false,
  holdTimer: null,
  sendTimer: null,
  shake: 'off',        // off | on | denied
  lastShake: 0,
  lastAccel: null,
  sent: 0,             // moves sent (tests)
};

const el = {};

const people = () => [...S.participants.values()];
const isTv = (p) => TV_NAME.test(String(p?.name ?? ''));
const light = () => S.phase.phase;
const running = () => ['countdown', 'green', 'red'].includes(light());
const goal = () => Number(S.phase.distance) || 100;
/** Players of the current game, in order of arrival (the server's `playing`). */
const players = () => people().filter((p) => p.playing && p.id !== S.hostId && !isTv(p));
const amPlayer = () => running() && Boolean(S.participants.get(S.myId)?.playing) && !isHost() && !S.tv;
const myStatus = () => (G.out.has(S.myId) ? 'out' : G.finished.has(S.myId) ? 'finished' : 'running');

function reset() {
  G.distances = {};
  G.out = new Map();
  G.finished = new Map();
  G.ranking = null;
  G.pending = 0;
  stopHolding();
}

// ================================================================ elements

const STYLE = `
body[data-kind="rlgl"] .tile.is-host { order: -2; }
.rlgl-light { position: fixed; inset: 0; z-index: 12; display: flex; flex-direction: column; align-items: center;
  justify-content: space-between; padding: 16px 16px 24px; gap: 10px; color: #fff; text-align: center;
  transition: background-color 0.08s; touch-action: manipulation; user-select: none; -webkit-user-select: none; }
.rlgl-light[hidden] { display: none; }
.rlgl-light[data-light="green"] { background: #0d9f4f; }
.rlgl-light[data-light="red"] { background: #d0202e; }
.rlgl-light[data-light="countdown"], .rlgl-light[data-light="game_over"] { background: #2b2f3a; }
.rlgl-light[data-status="out"] { background: #3a1115; }
.rlgl-word { font-size: clamp(48px, 18vw, 120px); font-weight: 800; margin: 0; line-height: 1; }
.rlgl-lamp { width: min(60vw, 34vh); aspect-ratio: 1; border-radius: 50%; background: rgba(255,255,255,0.92);
  box-shadow: 0 0 60px rgba(255,255,255,0.6); }
.rlgl-light[data-status="out"] .rlgl-lamp { background: #555; box-shadow: none; }
.rlgl-mine { font-size: 22px; font-weight: 700; margin: 0; }
.rlgl-bar { width: 100%; height: 14px; border-radius: 7px; background: rgba(0,0,0,0.3); overflow: hidden; }
.rlgl-bar span { display: block; height: 100%; background: #fff; }
.rlgl-run { width: 100%; min-height: 96px; font-size: 28px; font-weight: 800; border-radius: 18px; border: 4px solid #fff;
  background: rgba(0,0,0,0.25); color: #fff; touch-action: none; }
.rlgl-run.held { background: rgba(255,255,255,0.35); }
.rlgl-shake { background: transparent; color: #fff; border: 2px solid rgba(255,255,255,0.7); }
.rlgl-spot { display: flex; gap: 8px; justify-content: center; flex-wrap: wrap; min-height: 0; }
.rlgl-spot video { width: min(40vw, 160px); aspect-ratio: 4 / 3; object-fit: cover; border-radius: 10px; border: 3px solid #fff; background: #000; }
.rlgl-note { margin: 0; font-size: 16px; }
.rlgl-track { position: relative; height: 240px; border-radius: 10px; background: #1c2b1f; margin: 8px 0; overflow: hidden;
  border-left: 4px solid #fff; }
.rlgl-track .finish { position: absolute; right: 0; top: 0; bottom: 0; width: 6px;
  background: repeating-linear-gradient(#fff 0 6px, #000 6px 12px); }
.rlgl-dot { position: absolute; width: 14px; height: 14px; margin: -7px 0 0 -7px; border-radius: 50%; background: #7dd3fc;
  transition: left 0.2s linear; }
.rlgl-dot.out { background: #d0202e; opacity: 0.6; }
.rlgl-dot.finished { background: #facc15; }
.rlgl-dot .who { position: absolute; left: 16px; top: -3px; font-size: 11px; white-space: nowrap; color: #fff; }
.rlgl-dot.near .who { left: auto; right: 16px; }
.rlgl-lampline { display: flex; align-items: center; gap: 10px; }
.rlgl-small-lamp { width: 44px; height: 44px; border-radius: 50%; background: #555; flex: none; }
.rlgl-small-lamp[data-light="green"] { background: #16c266; box-shadow: 0 0 18px #16c266; }
.rlgl-small-lamp[data-light="red"] { background: #ef3340; box-shadow: 0 0 18px #ef3340; }
.rlgl-buttons { display: flex; gap: 8px; }
.rlgl-buttons button { flex: 1; min-height: 48px; font-size: 18px; }
.rlgl-ranking { margin: 6px 0; padding-left: 0; list-style: none; }
.rlgl-box [hidden], .rlgl-light [hidden] { display: none !important; }
body[data-tv="true"][data-kind="rlgl"] .rlgl-track { height: 360px; }
`;

function mount() {
  el.style = h('style', { id: 'rlgl-style' });
  el.style.textContent = STYLE;
  document.head.append(el.style);
  // Built once and updated in place: a button replaced between a press and its release loses the release.
  el.lamp = h('div', { id: 'rlgl-small-lamp', class: 'rlgl-small-lamp' });
  el.lampText = h('strong');
  el.green = h('button', { type: 'button', id: 'rlgl-green', class: 'primary', onclick: () => send({ type: 'light', color: 'green' }) });
  el.red = h('button', { type: 'button', id: 'rlgl-red', class: 'danger', onclick: () => send({ type: 'light', color: 'red' }) });
  el.controls = h('div', { class: 'rlgl-buttons' }, el.green, el.red);
  el.auto = h('p', { class: 'hint' });
  el.lobby = h('p', { class: 'hint' });
  el.track = h('div', { id: 'rlgl-track', class: 'rlgl-track' });
  el.ranking = h('div');
  el.tvText = h('p', { class: 'hint' });
  el.tvLink = h('a', { id: 'rlgl-tv-link', target: '_blank', rel: 'noopener' });
  el.box = h('section', { id: 'rlgl-box', class: 'box rlgl-box' },
    h('div', { class: 'rlgl-lampline' }, el.lamp, el.lampText), el.lobby, el.controls, el.auto, el.track, el.ranking,
    el.tvText, h('p', { class: 'hint' }, el.tvLink));
  ui.invite.before(el.box);

  el.word = h('p', { id: 'rlgl-word' });
  el.spot = h('div', { id: 'rlgl-spot', class: 'rlgl-spot' });
  el.mine = h('p', { id: 'rlgl-mine', class: 'rlgl-mine' });
  el.barFill = h('span');
  el.run = h('button', {
    type: 'button', id: 'rlgl-run', class: 'rlgl-run', onpointerdown: startHolding, onpointerup: stopHolding,
    onpointercancel: stopHolding, onpointerleave: stopHolding, oncontextmenu: (e) => e.preventDefault(),
  });
  el.shake = h('button', { type: 'button', id: 'rlgl-shake', class: 'small rlgl-shake', onclick: enableShake });
  el.shakeNote = h('p', { class: 'rlgl-note' });
  el.light = h('div', { id: 'rlgl-light', class: 'rlgl-light', hidden: true },
    el.word, h('div', { class: 'rlgl-lamp', id: 'rlgl-lamp' }), el.spot, el.mine,
    h('div', { class: 'rlgl-bar' }, el.barFill), el.run, el.shake, el.shakeNote);
  document.body.append(el.light);
  G.sendTimer = setInterval(flush, SEND_INTERVAL_MS);
  window.addEventListener('devicemotion', onMotion);
  window.addEventListener('pointerup', stopHolding);
}

function unmount() {
  el.style?.remove();
  el.box?.remove();
  el.light?.remove();
  clearInterval(G.sendTimer);
  stopHolding();
  window.removeEventListener('devicemotion', onMotion);
  window.removeEventListener('pointerup', stopHolding);
}

// ================================================================ running: steps in, `move` out

function step(n = 1) {
  if (!amPlayer() || myStatus() !== 'running' || light() === 'countdown') return;
  G.pending += n;
}

/** Send what was counted: one `move` per SEND_INTERVAL_MS at most. */
function flush() {
  if (G.pending <= 0) return;
  if (!amPlayer() || myStatus() !== 'running') { G.pending = 0; return; }
  send({ type: 'move', steps: G.pending });
  G.pending = 0;
  G.sent += 1;
}

function startHolding(ev) {
  ev?.preventDefault?.();
  if (G.holding) return;
  G.holding = true;
  step();
  G.holdTimer = setInterval(() => step(), HOLD_STEP_MS);
  el.run?.classList.add('held');
}

function stopHolding() {
  G.holding = false;
  clearInterval(G.holdTimer);
  G.holdTimer = null;
  el.run?.classList.remove('held');
}

/** Shake-to-run: iOS asks first (on this tap); elsewhere motion events simply arrive. */
async function enableShake() {
  const Motion = window.DeviceMotionEvent;
  if (!Motion) { G.shake = 'denied'; render(); return; }
  if (typeof Motion.requestPermission === 'function') {
    try {
      G.shake = (await Motion.requestPermission()) === 'granted' ? 'on' : 'denied';
    } catch {
      G.shake = 'denied';
    }
  } else {
    G.shake = 'on';
  }
  render();
}

function onMotion(ev) {
  if (G.shake !== 'on') return;
  const a = ev.accelerationIncludingGravity || ev.acceleration;
  if (!a || a.x === null) return;
  const now = performance.now();
  const prev = G.lastAccel;
  G.lastAccel = { x: a.x, y: a.y, z: a.z };
  if (!prev) return;
  const delta = Math.abs(a.x - prev.x) + Math.abs(a.y - prev.y) + Math.abs(a.z - prev.z);
  if (delta > SHAKE_DELTA && now - G.lastShake > SHAKE_GAP_MS) {
    G.lastShake = now;
    step();
  }
}

// ================================================================ messages

function onPhase(phase, previous) {
  if (phase.phase === 'countdown' && previous !== 'countdown') reset();
  if (!running()) stopHolding();
}

function onMessage(msg) {
  switch (msg.type) {
    case 'progress':
      if (msg.distances && typeof msg.distances === 'object') G.distances = { ...msg.distances };
      break;
    case 'eliminated': {
      G.out.set(msg.id, msg);
      const j = msg.judgment;
      const late = j && typeof j.arrived_at === 'number' ? j.arrived_at - j.deadline : null;
      if (msg.cause === 'left') systemLine('rlgl.left_line', { name: nameOf(msg.id) });
      else systemLine('rlgl.out_line', { name: nameOf(msg.id), late });
      if (msg.id === S.myId) stopHolding();
      break;
    }
    case 'finished':
      G.finished.set(msg.id, Number(msg.rank));
      systemLine('rlgl.finished_line', { name: nameOf(msg.id), rank: msg.rank });
      if (msg.id === S.myId) stopHolding();
      break;
    case 'game_over':
      G.ranking = Array.isArray(msg.ranking) ? msg.ranking : [];
      for (const place of G.ranking) G.distances[place.id] = place.distance;
      break;
    default:
      break;
  }
}

function onWelcome(welcome) {
  if (welcome.distances && typeof welcome.distances === 'object') G.distances = { ...welcome.distances };
  if (Array.isArray(welcome.ranking)) G.ranking = welcome.ranking;
  // A resumed seat learns who is out from the participants' `alive`.
  for (const p of people()) if (p.playing && !p.alive && !G.out.has(p.id)) G.out.set(p.id, { id: p.id, cause: 'moved' });
}

// ================================================================ drawing

function render() {
  renderLight();
  renderPanel();
  for (const id of S.participants.keys()) applyTileClasses(id);
  layoutGrid();
}

/** The phone's screen during a game: the light, one's distance, the spotlight, the run button. */
function renderLight() {
  const seated = Boolean(S.participants.get(S.myId)?.playing) && !isHost() && !S.tv;
  const show = amPlayer() || (seated && light() === 'game_over');
  el.light.hidden = !show;
  if (!show) { syncSpot([]); return; }
  const status = myStatus();
  const mine = Number(G.distances[S.myId]) || 0;
  el.light.dataset.light = light();
  el.light.dataset.status = status;
  el.word.className = status === 'running' && light() !== 'game_over' ? 'rlgl-word' : 'rlgl-note';
  const spotlit = Boolean(S.participants.get(S.myId)?.on_stage);
  el.word.textContent = status === 'out' ? `${t('rlgl.you_out')}${spotlit ? ` ${t('rlgl.you_spotlit')}` : ''}`
    : status === 'finished' ? t('rlgl.you_finished', { rank: G.finished.get(S.myId) })
      : light() === 'game_over' ? t('rlgl.phase.game_over') : t(`rlgl.light.${light()}`);
  syncSpot(people().filter((p) => p.on_stage && p.id !== S.hostId && p.id !== S.myId));
  el.mine.dataset.distance = String(mine);
  el.mine.textContent = t('rlgl.distance', { n: mine, goal: goal() });
  el.barFill.style.width = `${Math.min(100, (mine / goal()) * 100).toFixed(1)}%`;
  const canRun = status === 'running' && light() !== 'game_over';
  el.run.textContent = t('rlgl.run');
  el.run.hidden = !canRun;
  if (!canRun) stopHolding();
  el.shake.textContent = t('rlgl.shake');
  el.shake.hidden = !canRun || G.shake === 'on';
  el.shakeNote.hidden = !(G.shake === 'denied' || (G.shake === 'on' && canRun));
  el.shakeNote.textContent = G.shake === 'denied' ? t('rlgl.shake_denied') : t('rlgl.shake_on');
}

/** The spotlighted players' cameras on the phone's screen (the same streams as their tiles). */
function syncSpot(spot) {
  const want = new Set(spot.map((p) => p.id));
  for (const video of [...el.spot.children]) if (!want.has(video.dataset.id)) video.remove();
  for (const p of spot) {
    let video = el.spot.querySelector(`video[data-id="${CSS.escape(p.id)}"]`);
    if (!video) {
      video = h('video', { autoplay: true, playsinline: true, dataset: { id: p.id }, title: p.name });
      video.muted = true; // its sound plays from the tile
      el.spot.append(video);
    }
    const stream = remoteStreams.get(p.id);
    if (stream && video.srcObject !== stream) video.srcObject = stream;
  }
}

function renderPanel() {
  const lobby = light() === 'lobby';
  el.lamp.dataset.light = light();
  el.lampText.textContent = lobby ? t('rlgl.title') : t(`rlgl.phase.${light()}`);
  el.lobby.hidden = !(lobby && isHost());
  el.lobby.textContent = t('rlgl.players', { n: people().filter((p) => p.id !== S.hostId && !isTv(p)).length });
  const hostRunning = isHost() && running() && light() !== 'countdown';
  el.controls.hidden = !(hostRunning && S.phase.auto === false);
  el.green.textContent = t('rlgl.to_green');
  el.red.textContent = t('rlgl.to_red');
  el.green.disabled = light() === 'green';
  el.red.disabled = light() === 'red';
  el.auto.hidden = !(hostRunning && S.phase.auto !== false);
  el.auto.textContent = t('rlgl.auto_light');
  const showTrack = !lobby && (isHost() || S.tv || !amPlayer());
  el.track.hidden = !showTrack;
  if (showTrack) drawTrack();
  el.ranking.hidden = !(light() === 'game_over' && G.ranking);
  if (!el.ranking.hidden) el.ranking.replaceChildren(...ranking());
  el.tvText.hidden = !S.tv;
  el.tvText.textContent = inviteLink(S.room || '');
  el.tvLink.parentElement.hidden = !isHost() || S.tv;
  el.tvLink.href = `/r/${encodeURIComponent(S.room || '')}/tv`;
  el.tvLink.textContent = t('rlgl.open_tv');
}

/** The track: one dot per player, left to right by distance, spread top to bottom in order of arrival. */
function drawTrack() {
  const all = players();
  const named = all.length <= 24;
  el.track.dataset.players = String(all.length);
  const dots = new Map([...el.track.querySelectorAll('.rlgl-dot')].map((d) => [d.dataset.id, d]));
  if (!el.track.querySelector('.finish')) el.track.append(h('div', { class: 'finish' }));
  all.forEach((p, i) => {
    let dot = dots.get(p.id);
    dots.delete(p.id);
    if (!dot) {
      dot = h('div', { class: 'rlgl-dot', dataset: { id: p.id } });
      el.track.append(dot);
    }
    const d = Number(G.distances[p.id]) || 0;
    const x = Math.min(1, d / goal());
    dot.className = G.out.has(p.id) ? 'rlgl-dot out' : G.finished.has(p.id) ? 'rlgl-dot finished' : 'rlgl-dot';
    dot.classList.toggle('near', x > 0.8); // the name to the left, inside the track
    dot.dataset.distance = String(d);
    dot.title = `${p.name}: ${d}`;
    dot.style.left = `calc(${(x * 100).toFixed(2)}% - ${(x * 14).toFixed(1)}px + 7px)`;
    dot.style.top = `${(((i + 1) / (all.length + 1)) * 100).toFixed(2)}%`;
    const label = dot.querySelector('.who');
    if (named && !label) dot.append(h('span', { class: 'who', text: p.name }));
    if (!named && label) label.remove();
  });
  for (const gone of dots.values()) gone.remove();
}

function ranking() {
  return [
    h('h3', { text: t('rlgl.ranking') }),
    h('ol', { id: 'rlgl-ranking', class: 'rlgl-ranking' }, G.ranking.map((place) => h('li', { dataset: { id: place.id, rank: place.rank } },
      `${place.rank}. ${nameOf(place.id)} — ${place.distance} · ${t(`rlgl.status.${place.status}`)}`))),
  ];
}

/** Tiles: the host and the spotlight on the grid, one's own camera as a small preview, the rest off it. */
function tileClasses(id) {
  const p = S.participants.get(id);
  const stage = id === S.hostId || Boolean(p?.on_stage);
  return {
    'stage-tile': stage,
    'audience-tile': !stage,
    'self-preview': id === S.myId && !stage && !S.tv,
    'off-grid': !stage && (id !== S.myId || S.tv),
  };
}

function applyTileClasses(id) {
  const tile = ui.grid.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`);
  if (!tile) return;
  for (const [cls, on] of Object.entries(tileClasses(id))) tile.classList.toggle(cls, on);
}

function tileBadges(id) {
  const extra = [];
  if (G.out.has(id)) extra.push(badge(t('rlgl.badge_out'), 'out'));
  else if (G.finished.has(id)) extra.push(badge(t('rlgl.badge_done'), 'on-stage'));
  return { extra };
}

function banner() {
  if (light() === 'lobby') return null;
  const all = players();
  const out = all.filter((p) => G.out.has(p.id)).length;
  const done = all.filter((p) => G.finished.has(p.id)).length;
  return [t(`rlgl.phase.${light()}`), t('rlgl.banner_running', { n: all.length - out - done, out, done })];
}

// ================================================================ settings (start_game.settings)

const NUMBERS = [
  ['seconds', 'rlgl.settings.seconds', 60, 5, 3600, 'any'],
  ['distance', 'rlgl.settings.distance', 100, 1, 100000, 1],
  ['max_steps_per_second', 'rlgl.settings.speed', 10, 1, 100, 1],
  ['spotlight_seconds', 'rlgl.settings.spotlight', 3, 0, 60, 'any'],
];
const FAIRNESS = [
  ['grace_ms', 'rlgl.settings.grace', 200, 0, 5000, 1],
  ['max_allowance_ms', 'rlgl.settings.allowance', 500, 0, 5000, 1],
];

function defaults() {
  return { auto: true };
}

function build(container, prefix, settings) {
  const field = ([key, label, placeholder, min, max, stepSize]) => h('label', { class: 'num' },
    h('span', { text: t(label) }),
    h('input', { id: `${prefix}-rlgl-${key}`, type: 'number', min, max, step: stepSize, inputmode: 'decimal', placeholder: String(placeholder), value: settings[key] ?? '' }));
  container.replaceChildren(
    h('fieldset', {},
      h('legend', { text: t('rlgl.settings.light') }),
      h('label', { class: 'check' },
        h('input', { type: 'checkbox', id: `${prefix}-rlgl-auto`, checked: settings.auto !== false }),
        h('span', { text: t('rlgl.settings.auto') }))),
    h('div', { class: 'num-grid' }, NUMBERS.map(field)),
    h('details', {}, h('summary', { text: t('rlgl.settings.fairness') }), h('div', { class: 'num-grid' }, FAIRNESS.map(field))),
  );
}

function read(prefix) {
  const settings = { auto: document.getElementById(`${prefix}-rlgl-auto`)?.checked !== false };
  for (const [key] of [...NUMBERS, ...FAIRNESS]) {
    const raw = document.getElementById(`${prefix}-rlgl-${key}`)?.value?.trim() ?? '';
    if (raw !== '') settings[key] = Number(raw);
  }
  return settings;
}

function problem(s) {
  for (const [key, , , min, max] of [...NUMBERS, ...FAIRNESS]) {
    const v = s[key];
    if (v !== undefined && v !== null && !(Number.isFinite(v) && v >= min && v <= max)) return t('rlgl.settings.problem');
  }
  return null;
}

function summary(s) {
  return t('rlgl.summary', { auto: s.auto !== false, seconds: s.seconds ?? 60, distance: s.distance ?? 100 });
}

function toWire(s) {
  const wire = { auto: s.auto !== false };
  for (const [key] of [...NUMBERS, ...FAIRNESS]) if (typeof s[key] === 'number') wire[key] = s[key];
  return wire;
}

function lobbyLine({ people: all }) {
  return t('rlgl.players', { n: all.filter((p) => p.id !== S.hostId && !isTv(p)).length });
}

export default {
  kind: 'rlgl',
  nameKey: 'rlgl.name',
  strings: { en, ko },
  minPlayers: 2,
  mount,
  unmount,
  reset,
  render,
  banner,
  onPhase,
  onMessage,
  onWelcome,
  tileClasses,
  tileBadges,
  lobbyLine,
  onLanguage: render,
  settings: { defaults, normalize: (s) => ({ ...defaults(), ...s }), build, read, problem, summary, toWire },
  surface: {
    get rlgl() {
      return {
        distances: { ...G.distances },
        out: [...G.out.keys()],
        eliminated: [...G.out.values()],
        finished: Object.fromEntries(G.finished),
        ranking: G.ranking,
        moves: G.sent,
        holding: G.holding,
        shake: G.shake,
      };
    },
  },
};
