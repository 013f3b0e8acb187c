// Video tiles: one per participant, laid out for the largest 4:3 tiles. The current game decides what a
// tile without video says (its veil), its badges and its classes (games/index.js: tileState, tileBadges,
// tileClasses, veils).

import { h, icon } from './dom.js';
import { t } from './i18n.js';
import { game, hasTable, phaseName, S } from './state.js';
import { ui } from './ui.js';
import { M, remoteStreams, timing } from './media.js';
import { send } from './socket.js';

/** publisher id -> {token, frames}: the video of this publisher is shown only once a fresh frame arrives. */
const awaitingFrame = new Map();

/** What a tile without video shows, by state: [icon, string key]. Games add theirs (`veils`). */
const VEIL = {
  hidden: ['eyeOff', 'veil.hidden'],
  novideo: ['camOff', ''],
};

export function tileFor(id) {
  if (id === null || id === undefined) return null;
  return ui.grid.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`);
}

export function createTile(id) {
  const video = h('video', { autoplay: true, playsinline: true, class: id === S.myId ? 'local' : 'remote' });
  video.playsInline = true;
  if (id === S.myId) video.muted = true; // never play one's own microphone back
  const tile = h('div', { class: 'tile', dataset: { participantId: id, state: 'novideo' } },
    h('div', { class: 'avatar', 'aria-hidden': 'true' }),
    video,
    h('div', { class: 'veil' }, h('span', { class: 'veil-icon' }), h('span', { class: 'veil-text' })),
    h('div', { class: 'label' }, h('span', { class: 'name' }), h('span', { class: 'badges' })),
  );
  if (id === S.myId) ui.grid.prepend(tile);
  else ui.grid.append(tile);
  // The picture's own size is known (or changes: another simulcast layer) only once it plays.
  if (id !== S.myId) video.addEventListener('resize', () => reportLayout());
  layoutGrid();
  if (id !== S.myId && 'requestVideoFrameCallback' in video) {
    // The very first picture from anyone: the join time the tests print.
    video.requestVideoFrameCallback(() => noteFirstRemoteFrame());
  }
  return tile;
}

/** Take a tile off the grid. */
export function removeTile(id) {
  awaitingFrame.delete(id);
  const tile = tileFor(id);
  if (tile) {
    tile.querySelector('video').srcObject = null;
    tile.remove();
  }
  layoutGrid();
}

/** Columns × rows that give the largest 4:3 tiles in the stage (the CSS by tile count is the fallback). */
export function layoutGrid() {
  // A game may keep tiles off the grid (class `off-grid`: a stage room's audience); they take no cell.
  const shown = [...ui.grid.children].filter((tile) => !tile.classList.contains('off-grid'));
  const n = shown.length;
  ui.grid.dataset.count = String(n);
  const width = ui.grid.clientWidth;
  const height = ui.grid.clientHeight;
  if (!n || !width || !height) return;
  // A featured tile (the TV view's speaker, when it is not alone) spans 2 × 2 cells.
  const featured = n > 1 && getComputedStyle(shown.find((tile) => tile.classList.contains('featured')) || ui.grid).gridColumnEnd === 'span 2';
  const cells = featured ? n + 3 : n;
  const gap = parseFloat(getComputedStyle(ui.grid).columnGap) || 0;
  const fewest = featured ? 2 : 1;
  let best = { cols: fewest, rows: Math.ceil(cells / fewest), size: 0 };
  for (let cols = fewest; cols <= cells; cols += 1) {
    const rows = Math.max(Math.ceil(cells / cols), featured ? 2 : 1);
    const w = (width - gap * (cols - 1)) / cols;
    const hgt = (height - gap * (rows - 1)) / rows;
    const size = Math.min(w, (hgt * 4) / 3);
    if (size > best.size + 0.5) best = { cols, rows, size };
  }
  ui.grid.style.setProperty('--cols', String(best.cols));
  ui.grid.style.setProperty('--rows', String(best.rows));
  reportLayout();
}

if ('ResizeObserver' in window) new ResizeObserver(() => layoutGrid()).observe(ui.stage);

// ---- layout: how tall each video is shown, so a simulcast publisher's layer fits its tile

/** The last `layout` sent, as text ('' after a new welcome: a new seat or peer has none). */
let sentLayout = '';
let layoutTimer = null;

/** Tell the server soon (once the tiles have settled) how tall each remote video is shown. */
export function reportLayout() {
  clearTimeout(layoutTimer);
  layoutTimer = setTimeout(sendLayout, 400);
}

/** The last `layout` this page sent (tests and debugging). */
export function lastLayout() {
  return sentLayout ? JSON.parse(sentLayout) : null;
}

/** The server forgot this page's layout (a new welcome): send it again. */
export function resetLayout() {
  sentLayout = '';
  reportLayout();
}

function sendLayout() {
  if (!S.myId) return;
  const tiles = {};
  for (const tile of ui.grid.children) {
    const id = tile.dataset.participantId;
    if (!id || id === S.myId) continue;
    const video = tile.querySelector('video');
    const box = video.getBoundingClientRect();
    // Tiles crop the picture to fill them (object-fit: cover): it must be as tall as the tile,
    // and as wide, which for a 4:3 picture in a wide tile means taller still.
    const aspect = video.videoWidth && video.videoHeight ? video.videoHeight / video.videoWidth : 3 / 4;
    const shown = box.width > 0 && box.height > 0 && getComputedStyle(tile).display !== 'none';
    const height = shown ? Math.max(box.height, box.width * aspect) * (window.devicePixelRatio || 1) : 0;
    tiles[id] = { height: Math.min(4320, Math.round(height)) };
  }
  const text = JSON.stringify(tiles);
  if (text === sentLayout) return;
  if (send({ type: 'layout', tiles })) sentLayout = text;
}

function localVideoLive() {
  return Boolean(M.localStream?.getVideoTracks().some((tr) => tr.readyState === 'live' && tr.enabled));
}

function remoteVideoLive(id) {
  const stream = remoteStreams.get(id);
  return Boolean(stream?.getVideoTracks().some((tr) => tr.readyState === 'live'));
}

export function badge(text, cls) {
  return h('span', { class: `badge ${cls}`, text });
}

export function refreshTile(id) {
  const p = S.participants.get(id);
  const tile = tileFor(id);
  if (!p || !tile) return;
  const g = game();
  const self = id === S.myId;
  const r = S.receive[id];
  let state;
  if (self) {
    state = localVideoLive() ? 'live' : 'novideo';
  } else if (r && !r.video) {
    // The game may say why (asleep, out, watching); otherwise: not visible now.
    state = g?.tileState?.(id) || 'hidden';
  } else if (!remoteVideoLive(id) || awaitingFrame.has(id)) {
    state = 'novideo';
  } else {
    state = 'live';
  }
  tile.dataset.state = state;
  const routeMuted = !self && r && !r.audio && r.video; // e.g. during a Mafia defense
  tile.dataset.audio = self ? 'self' : r && !r.audio ? 'blocked' : 'allowed';

  const name = String(p.name ?? '');
  tile.querySelector('.name').textContent = name;
  tile.querySelector('.avatar').textContent = [...name][0] ? [...name][0].toUpperCase() : '?';
  const [iconName, textKey] = VEIL[state] || g?.veils?.[state] || ['camOff', ''];
  const veilIcon = tile.querySelector('.veil-icon');
  if (veilIcon.dataset.icon !== iconName) {
    veilIcon.replaceChildren(icon(iconName));
    veilIcon.dataset.icon = iconName;
  }
  let veilText = textKey ? t(textKey) : '';
  if (state === 'novideo') veilText = self ? t(M.localStream ? 'veil.camera_off' : 'veil.no_camera') : '';
  tile.querySelector('.veil-text').textContent = veilText;

  const seat = g?.tileBadges?.(id) || {};
  const badges = [];
  if (self) badges.push(badge(t('badge.you'), 'you'));
  if (seat.host !== undefined) { if (seat.host) badges.push(seat.host); } else if (id === S.hostId) badges.push(badge(t('badge.host'), 'host'));
  badges.push(...(seat.extra || []));
  if (!hasTable() || phaseName() === 'game_over') if (p.ready) badges.push(badge(t('badge.ready'), 'ready'));
  if (p.connected === false) badges.push(badge(t('badge.reconnecting'), 'reconnecting'));
  if (routeMuted) badges.push(h('span', { class: 'badge muted', title: t('badge.cannot_hear') }, icon('micOff', 'icon small')));
  if (self && M.localStream?.getAudioTracks().some((tr) => !tr.enabled)) badges.push(h('span', { class: 'badge muted', title: t('badge.mic_off') }, icon('micOff', 'icon small')));
  tile.querySelector('.badges').replaceChildren(...badges);

  for (const [cls, on] of Object.entries(g?.tileClasses?.(id) || {})) tile.classList.toggle(cls, Boolean(on));
  tile.classList.toggle('disconnected', p.connected === false);
  tile.classList.toggle('is-host', id === S.hostId);
  const video = tile.querySelector('video');
  const stream = self ? M.localStream : remoteStreams.get(id);
  if (stream && video.srcObject === stream && video.paused) playVideo(video);
}

export function refreshTiles() {
  for (const id of S.participants.keys()) refreshTile(id);
  layoutGrid();
}

/** Put the right stream on a participant's <video>: the local preview for oneself, the combined remote stream otherwise. */
export function attachStream(id) {
  const tile = tileFor(id);
  if (!tile) return;
  const video = tile.querySelector('video');
  const stream = id === S.myId ? M.localStream : remoteStreams.get(id);
  if (stream && video.srcObject !== stream) {
    video.srcObject = stream;
    // A new stream may come with a new media peer or track, which knows no layout yet.
    if (id !== S.myId) resetLayout();
  }
  if (stream) playVideo(video);
  refreshTile(id);
}

export function noteFirstRemoteFrame() {
  const now = performance.now();
  if (M.firstRemoteFrameAt === null) M.firstRemoteFrameAt = now;
  if (timing.firstFrame === null && timing.welcome !== null) timing.firstFrame = now;
}

/** Hide `id`'s video until a frame newer than now has been decoded. */
export function awaitFrame(id) {
  const token = {};
  awaitingFrame.set(id, { token, frames: M.lastInbound[id]?.video?.framesDecoded || 0 });
  const video = tileFor(id)?.querySelector('video');
  if (video && typeof video.requestVideoFrameCallback === 'function') {
    video.requestVideoFrameCallback(() => frameArrived(id, token));
  }
  refreshTile(id);
}

/** A new frame of `id`: from the video element (`token`), or from the stats (`frames` decoded so far). */
export function frameArrived(id, token, frames) {
  const waiting = awaitingFrame.get(id);
  if (token === null) {
    if (!waiting || !(frames > waiting.frames)) return;
    token = waiting.token;
  }
  noteFirstRemoteFrame();
  if (waiting?.token !== token) return;
  awaitingFrame.delete(id);
  refreshTile(id);
}

/** Mark the tiles whose publisher is speaking (`speaking(id)`). */
export function setSpeaking(speaking) {
  for (const tile of ui.grid.children) tile.classList.toggle('speaking', speaking(tile.dataset.participantId));
}

function playVideo(video) {
  const p = video.play();
  if (!p) return;
  p.catch((err) => {
    if (err && err.name === 'NotAllowedError' && !video.muted) {
      // Autoplay with sound was blocked: play muted and offer a tap to turn the sound on.
      video.muted = true;
      video.dataset.autoMuted = 'true';
      ui.sound.hidden = false;
      ui.soundBanner.hidden = false;
      video.play().catch(() => {});
    }
  });
}

function enableSound() {
  for (const video of ui.grid.querySelectorAll('video.remote[data-auto-muted]')) {
    video.muted = false;
    delete video.dataset.autoMuted;
    video.play().catch(() => {});
  }
  ui.sound.hidden = true;
  ui.soundBanner.hidden = true;
}

ui.sound.addEventListener('click', enableSound);
ui.soundBanner.addEventListener('click', enableSound);
// Any tap is a user gesture that allows sound.
document.addEventListener('pointerdown', () => { if (!ui.sound.hidden) enableSound(); }, { capture: true });
