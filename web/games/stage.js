// Stage rooms (kind `stage`): a host, up to `stage.max_on_stage` people on stage, and an audience that
// raises hands. The host's console brings people up and sends them back, and pages through the audience's
// cameras 16 at a time — the page shown is the `view` it sends, so the server forwards only those cameras.
// The TV view (/r/CODE/tv) shows the room code and QR large, the stage and the audience count. Wire:
// docs/PROTOCOL.md, "Stage rooms".

import { h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { send } from '../core/socket.js';
import { isHost, me, nameOf, S } from '../core/state.js';
import { ui } from '../core/ui.js';
import { badge, layoutGrid } from '../core/tiles.js';
import { inviteLink } from '../core/room.js';
import { M } from '../core/media.js';
import en from './stage/en.js';
import ko from './stage/ko.js';

/** Audience cameras on one page of the host's grid: the protocol's `view` limit. */
export const PAGE_SIZE = 16;
/** How long the console says "the stage is full" after a refused `stage`. */
const FULL_MS = 6000;
/** The TV view's names (app.js: "TV" and four letters): screens, not people, so not on the host's pages. */
const TV_NAME = /^TV [a-z0-9]{4}$/;
/** A `view` goes out this long after the last change of the page or the audience. */
const VIEW_DEBOUNCE_MS = 40;
/** A `bad_field` this soon after a `view` is taken for a view that crossed a change (see onError). */
const VIEW_RACE_MS = 3000;

/** This room's state (the call's is the core's S). */
const G = {
  page: 0,          // the host's audience page
  sentView: null,   // the ids of the last `view` this host sent, joined (null: none sent as this host)
  fullUntil: 0,     // performance.now() until which the console shows stage_full
  fullTimer: null,
  viewTimer: null,
  viewSentAt: -Infinity, // performance.now() of the last `view` sent
  quiet: false,          // the next `bad_field` was handled: no toast
};

/** This module's elements, made by mount(). */
const el = {};

const isTv = (p) => TV_NAME.test(String(p?.name ?? ''));
const onStage = (p) => Boolean(p?.on_stage) && p.id !== S.hostId;
const inAudience = (p) => p && p.id !== S.hostId && !p.on_stage;
const people = () => [...S.participants.values()];
/** Everyone in the audience who is a person (the TV screens left out), in order of arrival. */
const audience = () => people().filter((p) => inAudience(p) && !isTv(p));
const stagePeople = () => people().filter(onStage);
const hands = () => audience().filter((p) => p.hand);
const pageCount = () => Math.max(1, Math.ceil(audience().length / PAGE_SIZE));
/** The audience members on the host's current page. */
function pageIds() {
  G.page = Math.min(G.page, pageCount() - 1);
  return audience().slice(G.page * PAGE_SIZE, (G.page + 1) * PAGE_SIZE).map((p) => p.id);
}

function reset() {
  G.page = 0;
  G.sentView = null;
  G.fullUntil = 0;
}

// ================================================================ elements

function mount() {
  el.box = h('section', { id: 'stage-box', class: 'box stage-box' });
  el.tv = h('section', { id: 'tv-box', class: 'box tv-box', hidden: true });
  ui.invite.before(el.tv, el.box);
}

function unmount() {
  el.box?.remove();
  el.tv?.remove();
  clearTimeout(G.fullTimer);
  clearTimeout(G.viewTimer);
}

// ================================================================ the view the host sends

/** The host sends the page it shows as `view` whenever the page or the audience changes. */
function syncView() {
  if (!isHost() || S.tv) { G.sentView = null; return; }
  // A burst of changes (a crowd scanning the QR, several brought up at once) sends one view at its end.
  clearTimeout(G.viewTimer);
  G.viewTimer = setTimeout(sendView, VIEW_DEBOUNCE_MS);
}

function sendView() {
  if (!isHost() || S.tv) return;
  const ids = pageIds();
  const key = ids.join(',');
  if (key === G.sentView) return;
  G.sentView = key;
  G.viewSentAt = performance.now();
  send({ type: 'view', ids });
}

function turnPage(step) {
  G.page = Math.max(0, Math.min(pageCount() - 1, G.page + step));
  render();
}

// ================================================================ drawing

function render() {
  syncView();
  if (S.tv) renderTv(); else el.tv.hidden = true;
  el.box.hidden = S.tv;
  // replaceChildren would print a null child as the text "null".
  if (!S.tv) el.box.replaceChildren(...(isHost() ? hostConsole() : audiencePanel()).filter(Boolean));
  // Which tiles take a cell changed with the stage, the page or the host.
  for (const id of S.participants.keys()) applyTileClasses(id);
  layoutGrid();
}

function hostConsole() {
  const onStageNow = stagePeople();
  const raised = hands();
  const all = audience();
  const max = Number(S.limits?.max_on_stage) || null;
  const full = performance.now() < G.fullUntil;
  return [
    h('h2', { text: t('stage.console') }),
    full ? h('p', { id: 'stage-full', class: 'notice stage-full', role: 'alert', text: t('stage.full') }) : null,
    h('h3', { text: max ? t('stage.on_stage_max', { n: onStageNow.length, max }) : t('stage.on_stage_count', { n: onStageNow.length }) }),
    onStageNow.length === 0 ? h('p', { class: 'hint', text: t('stage.nobody_on_stage') }) : null,
    h('ul', { id: 'stage-list', class: 'stage-list' }, onStageNow.map((p) => h('li', { dataset: { id: p.id } },
      h('span', { class: 'who', text: p.name }),
      h('button', { type: 'button', class: 'small send-back', text: t('stage.send_back'), onclick: () => send({ type: 'stage', id: p.id, on: false }) })))),
    h('h3', { text: t('stage.hands', { n: raised.length }) }),
    raised.length === 0 ? h('p', { class: 'hint', text: t('stage.no_hands') }) : null,
    h('ul', { id: 'hand-queue', class: 'stage-list' }, raised.map((p) => h('li', { dataset: { id: p.id } },
      h('span', { class: 'who', text: p.name }),
      h('button', { type: 'button', class: 'small primary bring-up', text: t('stage.bring_up'), onclick: () => send({ type: 'stage', id: p.id, on: true }) })))),
    h('h3', { text: t('stage.audience_count', { n: all.length }) }),
    h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'small', id: 'page-prev', text: '‹', title: t('stage.page_prev'), disabled: G.page === 0, onclick: () => turnPage(-1) }),
      h('span', { id: 'page-label', class: 'hint', text: t('stage.page', { page: G.page + 1, pages: pageCount() }) }),
      h('button', { type: 'button', class: 'small', id: 'page-next', text: '›', title: t('stage.page_next'), disabled: G.page >= pageCount() - 1, onclick: () => turnPage(1) })),
    h('ul', { id: 'audience-list', class: 'audience-list' }, all.map((p, i) => h('li', {
      dataset: { id: p.id }, class: Math.floor(i / PAGE_SIZE) === G.page ? 'in-view' : '',
    }, h('span', { class: 'who', text: p.name }), p.hand ? badge(t('stage.badge_hand'), 'hand') : null,
    h('button', { type: 'button', class: 'small bring-up', text: t('stage.bring_up'), onclick: () => send({ type: 'stage', id: p.id, on: true }) })))),
    h('p', { class: 'hint' }, h('a', { id: 'tv-link', href: `/r/${encodeURIComponent(S.room)}/tv`, target: '_blank', rel: 'noopener', text: t('stage.open_tv') })),
  ];
}

function audiencePanel() {
  const self = me();
  const up = Boolean(self?.on_stage);
  const raised = Boolean(self?.hand);
  const line = up ? t('stage.you_on_stage') : raised ? t('stage.you_hand_up') : t('stage.you_audience', { host: S.hostId ? nameOf(S.hostId) : t('stage.no_host') });
  return [
    h('p', { id: 'stage-status', class: `status-line ${up ? 'done' : ''}`, text: line }),
    up && !M.localStream ? h('p', { class: 'hint', text: t('stage.camera_hint') }) : null,
    up ? null : h('button', {
      type: 'button', id: 'raise-hand', class: raised ? 'raise-hand on' : 'primary raise-hand', 'aria-pressed': String(raised),
      text: raised ? t('stage.lower_hand') : t('stage.raise_hand'), onclick: () => send({ type: 'raise_hand', raised: !raised }),
    }),
  ];
}

function renderTv() {
  el.tv.hidden = false;
  const link = inviteLink(S.room);
  const qrSrc = `/qr.svg?text=${encodeURIComponent(link)}`;
  let qr = el.tv.querySelector('img.tv-qr');
  if (!qr || qr.dataset.src !== qrSrc) {
    qr = h('img', { class: 'tv-qr', src: qrSrc, alt: t('invite.qr_alt'), dataset: { src: qrSrc } });
  }
  el.tv.replaceChildren(
    h('p', { class: 'tv-join', text: t('stage.tv_join') }),
    h('p', { id: 'tv-code', class: 'tv-code', text: S.room }),
    qr,
    h('p', { id: 'tv-link-text', class: 'tv-link', text: link }),
    h('p', { id: 'tv-count', class: 'tv-count', dataset: { count: audience().length }, text: t('stage.audience_count', { n: audience().length }) }),
  );
}

/** The tile classes of `id`: on the stage, in the audience, on the host's page, one's own small preview. */
/** The TV view follows the speaker: the loudest on stage (the host included) whom the server says speaks. */
function featuredId() {
  return S.speaking.find((id) => id === S.hostId || onStage(S.participants.get(id))) ?? null;
}

function tileClasses(id) {
  const p = S.participants.get(id);
  const self = id === S.myId;
  const stage = id === S.hostId || onStage(p);
  const shownToHost = isHost() && !S.tv && !stage && pageIds().includes(id);
  return {
    'stage-tile': stage,
    'audience-tile': !stage,
    'self-preview': self && !stage && !S.tv,
    'off-grid': !stage && !shownToHost,
    featured: S.tv && stage && id === featuredId(),
  };
}

function applyTileClasses(id) {
  const tile = ui.grid.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`);
  if (!tile) return;
  for (const [cls, on] of Object.entries(tileClasses(id))) tile.classList.toggle(cls, on);
}

function tileBadges(id) {
  const p = S.participants.get(id);
  const extra = [];
  if (onStage(p)) extra.push(badge(t('stage.badge_on_stage'), 'on-stage'));
  if (p?.hand && inAudience(p)) extra.push(badge(t('stage.badge_hand'), 'hand'));
  return { extra };
}

function banner() {
  const n = audience().length;
  if (S.tv) return [t('stage.title'), t('stage.tv_banner', { n })];
  if (isHost()) return [t('stage.title'), t('stage.banner_host', { n })];
  return [t('stage.title'), t('stage.banner_audience', { host: S.hostId ? nameOf(S.hostId) : t('stage.no_host'), n })];
}

function onError(code) {
  if (code === 'bad_field' && isHost() && performance.now() - G.viewSentAt < VIEW_RACE_MS) {
    // A view that crossed a change on its way (someone brought up or gone meanwhile) is refused whole:
    // send the page again as it is now. Nothing to tell the host.
    G.sentView = null;
    G.quiet = true;
    syncView();
    return false;
  }
  if (code !== 'stage_full') return false;
  G.fullUntil = performance.now() + FULL_MS;
  clearTimeout(G.fullTimer);
  G.fullTimer = setTimeout(render, FULL_MS + 50);
  return true;
}

function errorText(code) {
  if (code === 'bad_field' && G.quiet) { G.quiet = false; return ''; }
  return code === 'stage_full' ? t('stage.full') : null;
}

export default {
  kind: 'stage',
  nameKey: 'stage.name',
  strings: { en, ko },
  /** The audience joins without a camera and turns it on from the room (app.js). */
  cameraLater: true,
  cameraLaterNotice: 'stage.camera_later',
  /** No game to start: the console replaces the lobby box. */
  lobbyBox: 'host',
  minPlayers: 2,
  mount,
  unmount,
  reset,
  render,
  banner,
  onError,
  errorText,
  tileClasses,
  tileBadges,
  onLanguage: render,
  surface: {
    get stagePage() { return G.page; },
    get stageView() { return G.sentView === null ? null : G.sentView.split(',').filter(Boolean); },
    stageTurnPage: turnPage,
  },
};
