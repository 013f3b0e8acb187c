// The home page (create a room through the room API, or join one by code) and the name prompt with a
// camera preview before joining a room by link.

import { $, params, storageGet, storageSet } from './dom.js';
import { t } from './i18n.js';
import { CODE_RE, S } from './state.js';
import { formError, showView } from './ui.js';
import { M } from './media.js';
import { buildSettings, fillKindSelect, loadSettings, readSettings, saveSettings, settingsProblem, settingsToWire } from './room.js';
import { DEFAULT_KIND, GAMES } from '../games/index.js';

const CONTROL_RE = /\p{Cc}/u;
const NAME_MAX = 24;
const NAME_KEY = 'parlor.name';         // localStorage: the name last used
const INTENT_KEY = 'parlor.intent';     // sessionStorage: {room, name, create} from the home page
export const HOST_KEY = 'parlor.host';  // sessionStorage: {room, token} — the host token of a room this tab created

export function cleanName(raw) {
  return String(raw ?? '').trim();
}

/** What is wrong with a name, in words (null: nothing). */
export function nameProblem(name) {
  const length = [...name].length;
  if (length < 1) return t('name.empty');
  if (length > NAME_MAX) return t('name.too_long', { max: NAME_MAX });
  if (CONTROL_RE.test(name)) return t('name.control');
  return null;
}

export function loadName() {
  return storageGet(localStorage, NAME_KEY) || '';
}

export function saveName(name) {
  storageSet(localStorage, NAME_KEY, name);
}

/** Whether this page is a room's TV view (`/r/CODE/tv`). */
export function tvFromLocation() {
  return /^\/r\/[^/]+\/tv\/?$/.test(location.pathname);
}

export function roomFromLocation() {
  const fromQuery = params.get('room');
  if (fromQuery !== null) return fromQuery.trim();
  const m = location.pathname.match(/^\/r\/([^/]+?)(?:\/tv)?\/?$/);
  if (m) {
    try { return decodeURIComponent(m[1]); } catch { return m[1]; }
  }
  return null;
}

/** A room code from what someone typed or pasted: a code, or an invite link. */
function codeFromInput(raw) {
  const text = String(raw ?? '').trim();
  const m = text.match(/\/r\/([A-Za-z0-9-]{1,32})\/?(?:[?#].*)?$/) || text.match(/[?&]room=([A-Za-z0-9-]{1,32})/);
  return m ? m[1] : text;
}

/** The home page's hand-over to the room page, once, for this room. */
export function takeIntent(room) {
  let intent = null;
  try { intent = JSON.parse(storageGet(sessionStorage, INTENT_KEY) || 'null'); } catch { intent = null; }
  if (!intent || intent.room !== room) return null;
  storageSet(sessionStorage, INTENT_KEY, null);
  return intent;
}

/** This tab's host token for `room`, kept from the room API for the room page's `join` (`token`). */
export function hostTokenFor(room) {
  try {
    const host = JSON.parse(storageGet(sessionStorage, HOST_KEY) || 'null');
    if (host && host.room === room && typeof host.token === 'string') return host.token;
  } catch { /* a damaged entry is no token */ }
  return null;
}

/** The camera flags of this page's URL (`video`, `fps`, `media`), carried to the room page. */
function deviceFlags() {
  const keep = new URLSearchParams();
  for (const key of ['video', 'fps', 'media']) if (params.has(key)) keep.set(key, params.get(key));
  const query = keep.toString();
  return query ? `?${query}` : '';
}

// ---- home page

const home = { error: null };
const createKind = () => GAMES[$('create-kind').value] || GAMES[DEFAULT_KIND];

export function showHome(error) {
  showView('home');
  document.title = 'parlor';
  home.error = error || null;
  const kinds = Object.keys(GAMES);
  $('create-kind-field').hidden = kinds.length < 2;
  fillKindSelect($('create-kind'), $('create-kind').value || DEFAULT_KIND);
  buildSettings(createKind(), $('create-settings'), 'home', loadSettings(createKind()));
  const name = loadName();
  $('create-name').value = name;
  $('code-name').value = name;
  if (error) formError('code-error', t(error.key, error.params));
  $('create-name').focus();
}

/** The home page in the current language (the fields keep what was typed). */
export function redrawHome() {
  fillKindSelect($('create-kind'), $('create-kind').value);
  if (home.error) formError('code-error', t(home.error.key, home.error.params));
}

$('create-kind').addEventListener('change', () => {
  buildSettings(createKind(), $('create-settings'), 'home', loadSettings(createKind()));
});

$('create-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = cleanName($('create-name').value);
  const module = createKind();
  const settings = readSettings(module, 'home');
  const problem = nameProblem(name) || settingsProblem(module, settings);
  if (problem) { formError('create-error', problem); return; }
  formError('create-error', '');
  saveName(name);
  saveSettings(module, settings);
  createRoom(name, module, settings);
});

/** Create the room through the room API (docs/API.md), keep its host token, and open it. */
async function createRoom(name, module, settings) {
  const button = $('create-button');
  button.disabled = true;
  let reply = null;
  let body = null;
  try {
    reply = await fetch('/api/rooms', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: module.kind, settings: settingsToWire(module, settings) }),
    });
    body = await reply.json().catch(() => null);
  } catch {
    reply = null;
  }
  button.disabled = false;
  if (!reply) { formError('create-error', t('create.unreachable')); return; }
  if (reply.status === 401 || reply.status === 403) { formError('create-error', t('create.organisers_only')); return; }
  if (reply.status === 503) { formError('create-error', t('create.server_full')); return; }
  if (!reply.ok || !body || typeof body.code !== 'string' || !CODE_RE.test(body.code)) {
    formError('create-error', body && body.message ? t('create.failed_because', { message: body.message }) : t('create.failed'));
    return;
  }
  const room = body.code;
  if (typeof body.host_token === 'string') storageSet(sessionStorage, HOST_KEY, JSON.stringify({ room, token: body.host_token }));
  storageSet(sessionStorage, INTENT_KEY, JSON.stringify({ room, name, create: true }));
  location.assign(`/r/${room}${deviceFlags()}`);
}

// The TV view of a room (a shared screen): no name, no camera.
$('code-tv').addEventListener('click', () => {
  const room = codeFromInput($('code-input').value);
  if (!CODE_RE.test(room)) { home.error = null; formError('code-error', t('code.bad')); return; }
  location.assign(`/r/${encodeURIComponent(room)}/tv`);
});

$('code-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = codeFromInput($('code-input').value);
  const name = cleanName($('code-name').value);
  if (!CODE_RE.test(room)) { home.error = null; formError('code-error', t('code.bad')); return; }
  if (name && nameProblem(name)) { formError('code-error', nameProblem(name)); return; }
  formError('code-error', '');
  if (name) {
    saveName(name);
    storageSet(sessionStorage, INTENT_KEY, JSON.stringify({ room, name, create: false }));
  }
  location.assign(`/r/${encodeURIComponent(room)}${deviceFlags()}`);
});

// ---- name prompt with camera preview

const prejoin = { error: null, connect: null };

/** The name prompt for `room`; `error`: {key, params} or a plain text from the server. */
export function showPrejoin(room, error) {
  showView('prejoin');
  document.title = `${room} · parlor`;
  prejoin.error = error || null;
  const input = $('name-input');
  if (!input.value) input.value = S.name || loadName();
  $('pin-field').hidden = !S.needPin;
  $('join-button').disabled = false;
  redrawPrejoin();
  input.focus();
  const video = $('preview-video');
  M.mediaPromise.then(({ stream }) => {
    if (S.view !== 'prejoin') return;
    if (stream && stream.getVideoTracks().length > 0) {
      if (video.srcObject !== stream) video.srcObject = stream; // assigning again would reload it
      video.play().catch(() => {});
      video.hidden = false;
    } else {
      video.hidden = true;
    }
    redrawPrejoin();
  });
}

/** The prompt's texts in the current language. */
export function redrawPrejoin() {
  $('join-title').textContent = t('join.title', { room: S.room });
  const e = prejoin.error;
  formError('join-error', !e ? '' : typeof e === 'string' ? e : t(e.key, e.params));
  const status = $('preview-status');
  M.mediaPromise?.then(({ stream, notice }) => {
    if (S.view !== 'prejoin') return;
    status.textContent = notice ? t(notice) : stream ? t('preview.ready') : '';
    status.classList.toggle('problem', Boolean(notice));
  });
}

/** The join button: `connect(room, name)` opens the socket. */
export function onJoinSubmit(connect) {
  prejoin.connect = connect;
}

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = cleanName($('name-input').value);
  const problem = nameProblem(name);
  if (problem) { prejoin.error = problem; formError('join-error', problem); return; }
  saveName(name);
  if (S.needPin) {
    const pin = $('pin-input').value.trim();
    if (!pin) { prejoin.error = { key: 'join.pin_needed' }; redrawPrejoin(); return; }
    S.pin = pin;
  }
  $('join-button').disabled = true;
  prejoin.connect(S.room, name);
});
