// The drawing game (kind `draw`): one draws, everyone else guesses on their phones. The drawer's page is a
// canvas with colours, widths, undo and clear; its points go out batched every 50 ms as `stroke` messages.
// A guesser's page shows the same drawing scaled to the screen, the hint, a guess box and the scores; the TV
// view (/r/CODE/tv) shows the drawing large with the scoreboard. The drawing is kept as the server's stroke
// log has it (batches of one stroke joined, undo and clear applied) and redrawn whole on every change, so a
// page that joins late or reloads (welcome.board) shows exactly what the others show. Wire: docs/PROTOCOL.md,
// "Drawing rooms".

import { $, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { send } from '../core/socket.js';
import { isHost, nameOf, phaseName, S } from '../core/state.js';
import { ui } from '../core/ui.js';
import { badge } from '../core/tiles.js';
import en from './draw/en.js';
import ko from './draw/ko.js';

/** The board's coordinates run 0..BOARD on both axes (the protocol's). */
export const BOARD = 10000;
/** How often the drawer's points go out while the pen is down. */
export const BATCH_MS = 50;
/** The protocol's most points a message. */
const MAX_POINTS = 256;
const COLORS = ['#111111', '#e53935', '#1e88e5', '#43a047', '#fdd835', '#8e24aa', '#ffffff'];
/** Line widths in board units: thin, medium, thick, and the eraser-like white brush uses these too. */
const WIDTHS = [25, 60, 150];
/** How long "close!" stays up. */
const CLOSE_MS = 4000;

/** This game's state (the call's is the core's S). */
const G = {
  strokes: [],        // the drawing: [{id, color, width, points: [[x, y], …]}]
  word: null,         // the drawer's word (only the drawer's page ever has it before the reveal)
  choices: [],        // the drawer's word choices
  hint: '',
  scores: {},         // id -> points
  guessed: new Map(), // id -> {rank, points}, this turn
  reveal: null,       // the last `reveal`
  over: null,         // the `game_over`
  closeUntil: 0,
  color: COLORS[0],
  width: WIDTHS[1],
  nextId: 1,
  pen: null,          // the stroke being drawn: {id, color, width, pending: [[x, y]…]}
  flushTimer: null,
  dirty: false,
};

const el = {};

const drawer = () => S.phase.drawer || null;
const amDrawer = () => Boolean(S.myId) && drawer() === S.myId;
const drawing = () => phaseName() === 'drawing';
const inTurn = () => ['choosing', 'drawing', 'reveal'].includes(phaseName());
const knowsWord = () => amDrawer() || G.guessed.has(S.myId);

function reset() {
  G.strokes = [];
  G.word = null;
  G.choices = [];
  G.hint = '';
  G.scores = {};
  G.guessed = new Map();
  G.reveal = null;
  G.over = null;
  endPen();
  redraw();
}

// ================================================================ elements

const CSS = `
.draw-box { display: grid; gap: 10px; }
.draw-top p { margin: 0; }
.draw-board { position: relative; width: min(100%, 72vh); aspect-ratio: 1 / 1; margin: 0 auto; background: #fff;
  border-radius: 8px; box-shadow: 0 1px 6px rgba(0,0,0,.35); touch-action: none; }
.draw-board canvas { width: 100%; height: 100%; display: block; border-radius: 8px; }
body[data-tv="true"] .draw-board { width: min(100%, 78vh); }
.draw-tools { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; justify-content: center; }
.draw-tools .swatch { width: 32px; height: 32px; border-radius: 50%; border: 2px solid #888; padding: 0; }
.draw-tools .swatch.on, .draw-tools .width.on { outline: 3px solid #ffb300; }
.draw-word { font-size: 1.5rem; text-align: center; font-weight: 700; }
.draw-hint { font-size: 1.6rem; letter-spacing: .1em; text-align: center; font-family: monospace; white-space: pre; }
.draw-close { text-align: center; color: #ffb300; font-weight: 700; }
.draw-guess { display: flex; gap: 6px; }
.draw-guess input { flex: 1; min-width: 0; font-size: 1.1rem; }
.draw-choices { display: flex; flex-wrap: wrap; gap: 8px; justify-content: center; }
.draw-scores { list-style: none; padding: 0; margin: 0; display: grid; gap: 2px; }
.draw-scores li { display: flex; justify-content: space-between; gap: 8px; }
.draw-scores li.guessed { color: #43a047; font-weight: 600; }
/* A wide screen in a turn: the drawing gets the room (the videos keep the rest). */
@media (min-width: 701px) {
  body[data-kind="draw"]:is([data-phase="choosing"], [data-phase="drawing"], [data-phase="reveal"]) {
    --panel-w: min(52vw, 620px); }
  body[data-kind="draw"][data-tv="true"]:is([data-phase="choosing"], [data-phase="drawing"], [data-phase="reveal"]) {
    --panel-w: min(60vw, 900px); }
  body[data-kind="draw"]:not([data-tv="true"]) .draw-board { width: min(100%, calc(100dvh - 390px)); min-width: 260px; }
  body[data-kind="draw"][data-tv="true"] .draw-board { width: min(100%, calc(100dvh - 290px)); min-width: 260px; }
}
/* A phone in a turn: the drawing is what matters, so the video strip above it stays short. */
@media (max-width: 700px) {
  body[data-kind="draw"]:is([data-phase="choosing"], [data-phase="drawing"], [data-phase="reveal"]) .stage {
    flex: 0 0 auto; height: min(21vh, 170px); min-height: 110px; }
  body[data-kind="draw"]:is([data-phase="choosing"], [data-phase="drawing"], [data-phase="reveal"]) .panel { flex: 1 1 auto; }
  .draw-box { gap: 6px; }
  .draw-hint { font-size: 1.3rem; }
  /* Small enough that the guess box under it is on screen too. */
  .draw-board { width: min(100%, 72vh, calc(100dvh - 500px)); min-width: 220px; }
}
`;

function mount() {
  el.style = h('style', { id: 'draw-style' });
  el.style.textContent = CSS;
  document.head.append(el.style);
  el.canvas = h('canvas', { id: 'draw-canvas', width: 600, height: 600 });
  el.board = h('div', { id: 'draw-board', class: 'draw-board' }, el.canvas);
  el.top = h('div', { id: 'draw-top', class: 'draw-top' });
  el.tools = h('div', { id: 'draw-tools', class: 'draw-tools' });
  el.bottom = h('div', { id: 'draw-bottom', class: 'draw-bottom' });
  el.box = h('section', { id: 'draw-box', class: 'box draw-box', hidden: true }, el.top, el.board, el.tools, el.bottom);
  ui.invite.before(el.box);
  el.canvas.addEventListener('pointerdown', penDown);
  el.canvas.addEventListener('pointermove', penMove);
  el.canvas.addEventListener('pointerup', penUp);
  el.canvas.addEventListener('pointercancel', penUp);
  el.resize = new ResizeObserver(() => fitCanvas());
  el.resize.observe(el.board);
}

function unmount() {
  endPen();
  el.resize?.disconnect();
  el.box?.remove();
  el.style?.remove();
}

// ================================================================ the picture

/** The canvas's pixels follow its size on screen (and the device's pixel ratio). */
function fitCanvas() {
  const r = el.board.getBoundingClientRect();
  const px = Math.max(1, Math.round(r.width * (window.devicePixelRatio || 1)));
  if (el.canvas.width !== px) {
    el.canvas.width = px;
    el.canvas.height = px;
  }
  paint();
}

function redraw() {
  if (G.dirty) return;
  G.dirty = true;
  requestAnimationFrame(() => { G.dirty = false; paint(); });
}

/** Draw every stroke, oldest first, onto a white board. */
function paint() {
  const c = el.canvas;
  if (!c) return;
  const ctx = c.getContext('2d');
  const k = c.width / BOARD;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const s of G.strokes) {
    const pts = s.points;
    if (!pts.length) continue;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = Math.max(1, s.width * k);
    if (pts.length === 1) {
      ctx.beginPath();
      ctx.arc(pts[0][0] * k, pts[0][1] * k, ctx.lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(pts[0][0] * k, pts[0][1] * k);
    for (let i = 1; i < pts.length; i += 1) ctx.lineTo(pts[i][0] * k, pts[i][1] * k);
    ctx.stroke();
  }
}

/** A batch joins its stroke if it continues the last one, as the server's log does. */
function addBatch(batch) {
  const last = G.strokes[G.strokes.length - 1];
  if (last && last.id === batch.id) last.points.push(...batch.points);
  else G.strokes.push({ id: batch.id, color: batch.color, width: batch.width, points: [...batch.points] });
  redraw();
}

// ================================================================ the drawer's pen

function boardPoint(ev) {
  const r = el.canvas.getBoundingClientRect();
  const clamp = (v) => Math.max(0, Math.min(BOARD, Math.round(v)));
  return [clamp(((ev.clientX - r.left) / r.width) * BOARD), clamp(((ev.clientY - r.top) / r.height) * BOARD)];
}

function penDown(ev) {
  if (!amDrawer() || !drawing()) return;
  ev.preventDefault();
  el.canvas.setPointerCapture?.(ev.pointerId);
  endPen();
  G.pen = { id: G.nextId, color: G.color, width: G.width, pending: [] };
  G.nextId += 1;
  penPoint(boardPoint(ev));
  G.flushTimer = setInterval(flush, BATCH_MS);
}

function penMove(ev) {
  if (!G.pen) return;
  ev.preventDefault();
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of (events.length ? events : [ev])) penPoint(boardPoint(e));
}

function penPoint(p) {
  const pen = G.pen;
  const last = pen.pending[pen.pending.length - 1];
  if (last && last[0] === p[0] && last[1] === p[1]) return;
  pen.pending.push(p);
  addBatch({ id: pen.id, color: pen.color, width: pen.width, points: [p] });
  if (pen.pending.length >= MAX_POINTS) flush();
}

/** Send what the pen drew since the last batch. */
function flush() {
  const pen = G.pen;
  if (!pen || pen.pending.length === 0) return;
  send({ type: 'stroke', id: pen.id, color: pen.color, width: pen.width, points: pen.pending });
  pen.pending = [];
}

function penUp() {
  if (!G.pen) return;
  flush();
  endPen();
}

function endPen() {
  clearInterval(G.flushTimer);
  G.flushTimer = null;
  G.pen = null;
}

function undo() {
  penUp();
  if (G.strokes.length) G.strokes.pop();
  redraw();
  send({ type: 'undo' });
}

function clearBoard() {
  penUp();
  G.strokes = [];
  redraw();
  send({ type: 'clear' });
}

// ================================================================ messages

function onMessage(msg) {
  switch (msg.type) {
    case 'word_choices': G.choices = Array.isArray(msg.words) ? msg.words : []; break;
    case 'word': G.word = String(msg.word ?? ''); break;
    case 'hint': G.hint = String(msg.pattern ?? ''); break;
    case 'stroke': if (Array.isArray(msg.points)) addBatch(msg); return;
    case 'undo': G.strokes.pop(); redraw(); return;
    case 'clear': G.strokes = []; redraw(); return;
    case 'guessed':
      G.guessed.set(msg.id, { rank: msg.rank, points: msg.points });
      G.scores[msg.id] = (G.scores[msg.id] || 0) + (Number(msg.points) || 0);
      break;
    case 'close': G.closeUntil = performance.now() + CLOSE_MS; setTimeout(render, CLOSE_MS + 50); break;
    case 'reveal': G.reveal = msg; G.scores = { ...(msg.scores || {}) }; break;
    case 'game_over': G.over = msg; G.scores = { ...(msg.scores || {}) }; break;
    default: break;
  }
}

function onWelcome(w) {
  if (w.scores) G.scores = { ...w.scores };
  if (w.board && Array.isArray(w.board.strokes)) {
    G.strokes = w.board.strokes.map((s) => ({ id: s.id, color: s.color, width: s.width, points: [...s.points] }));
    redraw();
  }
  G.guessed = new Map((w.guessed || []).map((g) => [g.id, { rank: g.rank, points: g.points }]));
  if (w.hint) G.hint = String(w.hint.pattern ?? '');
  if (w.word) G.word = String(w.word.word ?? '');
  if (w.word_choices) G.choices = w.word_choices.words || [];
  if (w.reveal) G.reveal = w.reveal;
}

function onPhase(phase, previous) {
  if (phase.phase === 'choosing') {
    G.word = null;
    G.hint = '';
    G.reveal = null;
    G.over = null;
    if (previous !== 'choosing') G.choices = [];
    G.guessed = new Map();
  }
  if (phase.phase === 'drawing' && previous !== 'drawing') {
    G.strokes = [];
    G.guessed = new Map();
    G.choices = [];
    redraw();
  }
  if (phase.phase !== 'drawing') endPen();
  if (phase.phase === 'lobby') reset();
}

// ================================================================ the panel

function render() {
  const show = inTurn() || phaseName() === 'game_over';
  el.box.hidden = !show;
  if (!show) return;
  const mine = amDrawer() && drawing();
  el.board.classList.toggle('mine', mine);
  el.top.replaceChildren(...topLine().filter(Boolean));
  el.tools.hidden = !mine;
  if (mine) el.tools.replaceChildren(...tools());
  el.bottom.replaceChildren(...bottomPart().filter(Boolean));
  if (el.canvas.width !== Math.round(el.board.getBoundingClientRect().width * (window.devicePixelRatio || 1))) fitCanvas();
}

function topLine() {
  const phase = phaseName();
  const who = drawer() ? nameOf(drawer()) : '';
  if (phase === 'choosing') {
    if (!amDrawer()) return [h('p', { id: 'draw-status', class: 'status-line', text: t('draw.choosing_other', { name: who }) })];
    return [
      h('p', { id: 'draw-status', class: 'status-line', text: t('draw.choose') }),
      h('div', { id: 'draw-choices', class: 'draw-choices' }, G.choices.map((w, i) => h('button', {
        type: 'button', class: 'primary', dataset: { index: i }, text: w, onclick: () => send({ type: 'choose_word', index: i }),
      }))),
    ];
  }
  if (phase === 'drawing') {
    if (amDrawer()) return [h('p', { id: 'draw-word', class: 'draw-word', text: t('draw.your_word', { word: G.word ?? '' }) })];
    return [
      h('p', { id: 'draw-status', class: 'status-line', text: G.guessed.has(S.myId) ? t('draw.you_guessed') : t('draw.drawing_other', { name: who }) }),
      h('p', { id: 'draw-hint', class: 'draw-hint', text: G.hint }),
    ];
  }
  if (phase === 'reveal' && G.reveal) return [h('p', { id: 'draw-reveal', class: 'draw-word', text: t('draw.the_word_was', { word: G.reveal.word }) })];
  if (phase === 'game_over') return [h('p', { id: 'draw-over', class: 'draw-word', text: t('draw.game_over', { name: winnerName() }) })];
  return [];
}

function tools() {
  return [
    ...COLORS.map((c) => h('button', {
      type: 'button', class: `swatch${c === G.color ? ' on' : ''}`, style: `background:${c}`, title: c, dataset: { color: c },
      'aria-label': t('draw.colour', { colour: c }), onclick: () => { G.color = c; render(); },
    })),
    ...WIDTHS.map((w, i) => h('button', {
      type: 'button', class: `small width${w === G.width ? ' on' : ''}`, dataset: { width: w },
      text: t(`draw.width_${i}`), onclick: () => { G.width = w; render(); },
    })),
    h('button', { type: 'button', id: 'draw-undo', class: 'small', text: t('draw.undo'), onclick: undo }),
    h('button', { type: 'button', id: 'draw-clear', class: 'small', text: t('draw.clear'), onclick: clearBoard }),
  ];
}

function bottomPart() {
  const guessing = drawing() && !knowsWord() && !S.tv;
  const close = performance.now() < G.closeUntil;
  let form = null;
  if (guessing) {
    const keep = $('draw-guess-input');
    const input = keep || h('input', { id: 'draw-guess-input', maxlength: 64, autocomplete: 'off', placeholder: t('draw.guess_placeholder') });
    form = h('form', {
      id: 'draw-guess', class: 'draw-guess',
      onsubmit: (ev) => {
        ev.preventDefault();
        const text = input.value.trim();
        if (text) send({ type: 'guess', text });
        input.value = '';
      },
    }, input, h('button', { type: 'submit', class: 'primary', id: 'draw-guess-button', text: t('draw.guess') }));
  }
  return [
    close ? h('p', { id: 'draw-close', class: 'draw-close', role: 'status', text: t('draw.close') }) : null,
    form,
    h('h3', { text: t('draw.scores') }),
    h('ol', { id: 'draw-scores', class: 'draw-scores' }, ranking().map(([id, points]) => h('li', {
      dataset: { id, points }, class: G.guessed.has(id) ? 'guessed' : '',
    }, h('span', { class: 'who', text: nameOf(id) }), h('span', { class: 'points', text: String(points) })))),
  ];
}

/** Everyone's points, highest first (ties in the order of arrival). */
function ranking() {
  const order = [...S.participants.keys()];
  return Object.entries(G.scores).sort((a, b) => b[1] - a[1] || order.indexOf(a[0]) - order.indexOf(b[0]));
}

function winnerName() {
  const top = ranking()[0];
  return top ? nameOf(top[0]) : t('nobody');
}

function banner() {
  const phase = phaseName();
  const round = t('draw.round', { round: S.phase.round, rounds: S.phase.rounds });
  const who = drawer() ? nameOf(drawer()) : '';
  if (phase === 'choosing') return [t('draw.phase.choosing'), `${who} · ${round}`];
  if (phase === 'drawing') return [t('draw.phase.drawing'), `${who} · ${round}`];
  if (phase === 'reveal') return [t('draw.phase.reveal'), round];
  if (phase === 'game_over') return [t('draw.phase.game_over'), t('draw.game_over', { name: winnerName() })];
  return null;
}

/** During the drawing only those who know the word chat (among themselves); the drawer not while choosing. */
function chatChannels() {
  if (drawing() && !knowsWord()) return [];
  if (phaseName() === 'choosing' && amDrawer()) return [];
  return ['all'];
}

function chatClosed() {
  return drawing() ? t('draw.chat_closed') : t('draw.chat_choosing');
}

function tileClasses(id) {
  const p = S.participants.get(id);
  const up = inTurn() ? id === drawer() : (id === S.hostId || Boolean(p?.on_stage));
  const self = id === S.myId;
  return { 'stage-tile': up, 'audience-tile': !up, 'self-preview': self && !up && !S.tv, 'off-grid': !up && (!self || S.tv) };
}

function tileBadges(id) {
  const extra = [];
  if (inTurn() && id === drawer()) extra.push(badge(t('draw.badge_drawing'), 'on-stage'));
  if (G.guessed.has(id)) extra.push(badge(t('draw.badge_guessed'), 'ready'));
  return { extra };
}

// ================================================================ settings

function defaults() {
  return { drawer: 'rotate', rounds: null, words: 'en', custom: '', drawing: null };
}

function normalize(s) {
  return { ...defaults(), ...s };
}

function build(container, prefix, s) {
  const radio = (value, label) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: `${prefix}-drawer`, id: `${prefix}-drawer-${value}`, value, checked: s.drawer === value }),
    h('span', { text: label }));
  container.replaceChildren(
    h('fieldset', {}, h('legend', { text: t('draw.settings.drawer') }), radio('rotate', t('draw.settings.rotate')), radio('host', t('draw.settings.host'))),
    h('div', { class: 'num-row' },
      h('label', { class: 'num' }, h('span', { text: t('draw.settings.rounds') }),
        h('input', { id: `${prefix}-rounds`, type: 'number', min: 1, max: 20, step: 1, placeholder: s.drawer === 'host' ? '5' : '2', value: s.rounds ?? '' })),
      h('label', { class: 'num' }, h('span', { text: t('draw.settings.seconds') }),
        h('input', { id: `${prefix}-drawing`, type: 'number', min: 10, max: 600, step: 1, placeholder: '80', value: s.drawing ?? '' }))),
    h('label', {}, h('span', { text: t('draw.settings.words') }),
      h('select', { id: `${prefix}-words` },
        ['en', 'ko', 'list'].map((w) => h('option', { value: w, selected: s.words === w, text: t(`draw.settings.words_${w}`) })))),
    h('label', {}, h('span', { text: t('draw.settings.custom') }),
      h('textarea', { id: `${prefix}-custom`, rows: 2, placeholder: t('draw.settings.custom_placeholder') }, s.custom || '')),
  );
}

function read(prefix) {
  const num = (id) => { const v = $(id)?.value.trim() ?? ''; return v === '' ? null : Number(v); };
  return {
    drawer: $(`${prefix}-drawer-host`)?.checked ? 'host' : 'rotate',
    rounds: num(`${prefix}-rounds`),
    drawing: num(`${prefix}-drawing`),
    words: $(`${prefix}-words`)?.value || 'en',
    custom: $(`${prefix}-custom`)?.value || '',
  };
}

const customWords = (s) => String(s.custom || '').split(/[,\n]/).map((w) => w.trim()).filter(Boolean);

function problem(s) {
  if (s.rounds !== null && !(Number.isInteger(s.rounds) && s.rounds >= 1 && s.rounds <= 20)) return t('draw.settings.bad_rounds');
  if (s.drawing !== null && !(Number.isFinite(s.drawing) && s.drawing > 0 && s.drawing <= 3600)) return t('draw.settings.bad_seconds');
  if (s.words === 'list' && customWords(s).length === 0) return t('draw.settings.bad_list');
  return null;
}

function toWire(s) {
  const wire = { drawer: s.drawer === 'host' ? 'host' : 'rotate', words: s.words === 'list' ? customWords(s) : s.words };
  if (s.rounds !== null) wire.rounds = s.rounds;
  if (s.drawing !== null) wire.phase_seconds = { drawing: s.drawing };
  return wire;
}

function summary(s) {
  return [s.drawer === 'host' ? t('draw.settings.host') : t('draw.settings.rotate'), t(`draw.settings.words_${s.words}`)].join(' · ');
}

export default {
  kind: 'draw',
  nameKey: 'draw.name',
  strings: { en, ko },
  cameraLater: true,
  cameraLaterNotice: 'draw.camera_later',
  minPlayers: 2,
  mount,
  unmount,
  reset,
  onPhase,
  onMessage,
  quietTypes: ['stroke', 'undo', 'clear'], // 20 a second while drawing: onMessage draws them on the canvas
  onWelcome,
  render,
  banner,
  tileClasses,
  tileBadges,
  chatChannels,
  chatClosed,
  lobbyLine: ({ people }) => (people.length < 2 ? t('draw.lobby_more') : t('draw.lobby_ready', { n: people.length })),
  settings: { defaults, normalize, build, read, problem, summary, toWire },
  onLanguage: render,
  surface: {
    get drawStrokes() { return G.strokes; },
    get drawScores() { return G.scores; },
    get drawWord() { return G.word; },
    get drawHint() { return G.hint; },
    drawCanvasHash() {
      // A hash of the canvas's pixels: pages of one size that show the same drawing agree.
      const c = el.canvas;
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let hash = 2166136261;
      for (let i = 0; i < data.length; i += 1) hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
      return `${c.width}x${c.height}:${hash.toString(16)}`;
    },
    drawInk() {
      // How many pixels are not white: a drawing is on the board.
      const c = el.canvas;
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250) n += 1;
      return n;
    },
  },
};
