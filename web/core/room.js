// The room page around the video: the phase banner and its countdown, the invite box, the lobby (ready
// states, the host's kind, settings and start button), and the game settings kept per kind. What a game
// draws itself comes from its module (render, banner, lobbyLine, settings, tick).

import { $, formatClock, h, storageGet, storageSet } from './dom.js';
import { t } from './i18n.js';
import { serverNow } from './clock.js';
import { send } from './socket.js';
import { game, isHost, me, nameOf, phaseName, S } from './state.js';
import { toast, ui } from './ui.js';
import { renderChatForm } from './chat.js';
import { badge } from './tiles.js';
import { GAMES } from '../games/index.js';

const SETTINGS_KEY = 'parlor.settings'; // sessionStorage, + `.<kind>`: the settings chosen on the home page or in the lobby

// ---- settings, kept per kind

export function loadSettings(module) {
  const defaults = module?.settings?.defaults?.() ?? {};
  try {
    const s = JSON.parse(storageGet(sessionStorage, `${SETTINGS_KEY}.${module?.kind}`) || 'null');
    if (s && typeof s === 'object') return module.settings.normalize ? module.settings.normalize(s) : { ...defaults, ...s };
  } catch { /* fall through */ }
  return defaults;
}

export function saveSettings(module, settings) {
  if (module?.kind) storageSet(sessionStorage, `${SETTINGS_KEY}.${module.kind}`, JSON.stringify(settings));
}

/** The settings fields of `module` in `container` (ids `${prefix}-…`); empty for a game without settings. */
export function buildSettings(module, container, prefix, settings, options = {}) {
  if (module?.settings?.build) module.settings.build(container, prefix, settings, options);
  else container.replaceChildren();
}

export function readSettings(module, prefix) {
  return module?.settings?.read ? module.settings.read(prefix) : {};
}

export function settingsProblem(module, settings) {
  return module?.settings?.problem ? module.settings.problem(settings) : null;
}

export function settingsToWire(module, settings) {
  return module?.settings?.toWire ? module.settings.toWire(settings) : settings;
}

/** Build the fields again (a new language) with the values typed so far and the same sections open. */
export function rebuildSettings(module, container, prefix, options = {}) {
  if (!container.firstChild) return;
  const values = readSettings(module, prefix);
  const open = [...container.querySelectorAll('details')].map((d) => d.open);
  buildSettings(module, container, prefix, values, options);
  [...container.querySelectorAll('details')].forEach((d, i) => { if (open[i]) d.open = true; });
}

// ---- everything the room page shows

export function renderAll() {
  if (S.view !== 'room') return;
  document.body.dataset.phase = phaseName();
  document.body.dataset.kind = S.kind || '';
  renderBanner();
  game()?.render?.();
  renderInvite();
  renderLobby();
  renderChatForm();
}

function bannerText() {
  const fromGame = game()?.banner?.();
  if (fromGame) return fromGame;
  if (phaseName() === 'lobby') {
    return [t('phase.lobby'), isHost() ? t('banner.lobby_host') : t('banner.lobby_wait', { host: nameOf(S.hostId) })];
  }
  if (phaseName() === 'game_over') return [t('phase.game_over'), ''];
  return [phaseName(), ''];
}

function renderBanner() {
  const [title, sub] = bannerText();
  ui.bannerTitle.textContent = title;
  ui.bannerSub.textContent = sub;
  ui.banner.dataset.phase = phaseName();
  tickCountdown();
}

/** The countdown runs on the server's clock: ends_at (unix ms) against Date.now() + offset from ping/pong. */
export function tickCountdown() {
  const ends = S.phase.ends_at;
  if (S.view !== 'room' || typeof ends !== 'number') {
    ui.countdown.textContent = '';
    ui.countdown.hidden = true;
    ui.progress.style.width = '0';
    return;
  }
  const now = serverNow();
  const left = Math.max(0, ends - now);
  ui.countdown.hidden = false;
  ui.countdown.dataset.at = String(Math.round(now));
  ui.countdown.textContent = formatClock(left);
  ui.countdown.dataset.remainingMs = String(Math.max(0, ends - Math.round(now)));
  const total = Math.max(1, ends - S.phaseArrival.server);
  ui.progress.style.width = `${Math.min(100, (left / total) * 100).toFixed(1)}%`;
  ui.countdown.classList.toggle('urgent', left < 5000);
  game()?.tick?.(left);
}

setInterval(tickCountdown, 250);

// ---- invite

function renderInvite() {
  // Shown by itself to a host still waiting for players, unless toggled either way.
  const enough = game()?.minPlayers ?? 2;
  const show = !S.tv && (S.inviteOpen ?? (phaseName() === 'lobby' && isHost() && S.participants.size < enough));
  ui.invite.hidden = !show;
  ui.inviteToggle.setAttribute('aria-expanded', String(show));
}

export function inviteLink(code) {
  return `${location.origin}/r/${encodeURIComponent(code)}`;
}

ui.inviteToggle.addEventListener('click', () => {
  S.inviteOpen = ui.invite.hidden;
  renderInvite();
  if (S.inviteOpen) ui.invite.scrollIntoView({ block: 'nearest' });
});

ui.copyLink.addEventListener('click', async () => {
  const link = inviteLink(S.room);
  try {
    await navigator.clipboard.writeText(link);
    toast(t('invite.copied'), 'info');
  } catch {
    ui.inviteLink.select();
    const ok = document.execCommand && document.execCommand('copy');
    toast(ok ? t('invite.copied') : t('invite.copy_this', { link }), 'info');
  }
});

// ---- lobby: ready states, the host's kind, settings and start button

/** The lobby's settings form is built again for the current kind (after welcome, kind_changed, a new language). */
export function resetLobbySettings() {
  ui.settingsForm.hidden = true;
  ui.lobbySettings.replaceChildren();
}

function lobbySettings() {
  return ui.settingsForm.hidden ? loadSettings(game()) : readSettings(game(), 'lobby');
}

function renderLobby() {
  const phase = phaseName();
  // A kind without games to start (a stage room) keeps only the host's powers over the room: lock, remove,
  // the kind (`lobbyBox: 'host'`); `false` draws no box at all.
  const mode = game()?.lobbyBox;
  const powersOnly = mode === 'host';
  const show = (phase === 'lobby' || phase === 'game_over') && mode !== false && (!powersOnly || (isHost() && !S.tv));
  ui.lobbyBox.hidden = !show;
  if (!show) return;
  ui.lobbyBox.classList.toggle('powers-only', powersOnly);
  ui.readyToggle.hidden = powersOnly;
  ui.lobbyWait.hidden = powersOnly;
  ui.lobbyTitle.textContent = powersOnly ? t('lobby.room') : phase === 'lobby' ? t('phase.lobby') : t('lobby.next_game');
  const self = me();
  const ready = Boolean(self?.ready);
  ui.readyToggle.textContent = ready ? t('lobby.ready_on') : t('lobby.ready_off');
  ui.readyToggle.setAttribute('aria-pressed', String(ready));
  ui.readyToggle.classList.toggle('on', ready);

  const people = [...S.participants.values()];
  ui.roster.replaceChildren(...people.map((p) => h('li', { dataset: { id: p.id, ready: Boolean(p.ready) }, class: p.ready ? 'is-ready' : '' },
    h('span', { class: 'tick', 'aria-hidden': 'true', text: p.ready ? '✓' : '·' }),
    h('span', { class: 'who', text: p.name }),
    p.id === S.myId ? badge(t('badge.you'), 'you') : null,
    p.id === S.hostId ? badge(t('badge.host'), 'host') : null,
    h('span', { class: 'ready-text hint', text: p.ready ? t('lobby.is_ready') : t('lobby.not_ready') }),
    isHost() && p.id !== S.myId ? h('button', {
      type: 'button', class: 'small kick', title: t('lobby.remove_title', { name: p.name }), text: t('lobby.remove'),
      onclick: () => { if (confirm(t('lobby.remove_confirm', { name: p.name }))) send({ type: 'kick', id: p.id }); },
    }) : null)));

  ui.lockLine.hidden = !(isHost() || S.locked);
  ui.lockText.textContent = S.locked ? t('lobby.locked') : t('lobby.open');
  ui.lockToggle.hidden = !isHost();
  ui.lockToggle.textContent = S.locked ? t('lobby.unlock') : t('lobby.lock');
  ui.lockToggle.setAttribute('aria-pressed', String(S.locked));

  const readyCount = people.filter((p) => p.ready).length;
  const kinds = Object.keys(GAMES);
  ui.kindLine.hidden = !isHost() || kinds.length < 2 || phase !== 'lobby';
  if (!ui.kindLine.hidden) fillKindSelect(ui.kindSelect, S.kind);
  if (powersOnly) {
    ui.settingsForm.hidden = true;
  } else if (isHost()) {
    const settings = lobbySettings();
    const line = game()?.lobbyLine?.({ settings, people, ready: readyCount });
    ui.lobbyWait.textContent = line ?? t('lobby.ready_count', { ready: readyCount, total: people.length });
    if (ui.settingsForm.hidden) {
      buildSettings(game(), ui.lobbySettings, 'lobby', settings, { foldLengths: false });
      ui.settingsForm.hidden = false;
    }
    $('settings-details').hidden = !ui.lobbySettings.firstChild;
    const problem = settingsProblem(game(), settings);
    const summary = game()?.settings?.summary?.(settings) ?? '';
    ui.settingsSummary.textContent = problem ? `— ${problem}` : summary ? `— ${summary}` : '';
    ui.startGame.textContent = phase === 'game_over' ? t('lobby.start_next') : t('lobby.start');
  } else {
    ui.settingsForm.hidden = true;
    const who = S.hostId ? nameOf(S.hostId) : t('lobby.host_absent');
    ui.lobbyWait.textContent = phase === 'game_over'
      ? t('lobby.waiting_next', { ready: readyCount, total: people.length, host: who })
      : t('lobby.waiting', { ready: readyCount, total: people.length, host: who });
  }
}

/** The kinds this client has a module for, as options (games/index.js). */
export function fillKindSelect(select, value) {
  const want = Object.keys(GAMES).join(',');
  if (select.dataset.kinds !== want || select.dataset.lang !== document.documentElement.lang) {
    select.replaceChildren(...Object.entries(GAMES).map(([kind, module]) => h('option', { value: kind, text: t(module.nameKey || kind) })));
    select.dataset.kinds = want;
    select.dataset.lang = document.documentElement.lang;
  }
  if (value && select.value !== value) select.value = value;
}

ui.kindSelect.addEventListener('change', () => {
  if (ui.kindSelect.value !== S.kind) send({ type: 'set_kind', kind: ui.kindSelect.value });
});

ui.lockToggle.addEventListener('click', () => {
  send({ type: 'lock', locked: !S.locked });
});

ui.readyToggle.addEventListener('click', () => {
  send({ type: 'ready', ready: !me()?.ready });
});

ui.lobbySettings.addEventListener('change', () => {
  const s = readSettings(game(), 'lobby');
  if (!settingsProblem(game(), s)) saveSettings(game(), s);
  renderLobby();
});

/** The host starts a game with the lobby's settings (also the game-over screen's "Play again"). */
export function startGameFromUi() {
  const g = game();
  const settings = lobbySettings();
  const problem = settingsProblem(g, settings);
  if (problem) { toast(problem); return; }
  saveSettings(g, settings);
  send({ type: 'start_game', settings: settingsToWire(g, settings) });
}

ui.settingsForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  startGameFromUi();
});

