// parlor — the browser client (signaling protocol v1, DESIGN.md §3; wire types in signaling/src/protocol.rs).
// One plain ES module: no build step, no dependencies. The binary embeds it (src/web.rs).
//
// Views: `/` is the home page (create a room, or join one by code); `/r/CODE` (and `/?room=CODE[&name=NAME]`)
// is the room. URL flags for tests and odd devices: `&name=` skips the name prompt, `&video=WxH` and `&fps=N`
// set the camera constraints, `&media=none|audio|video` limits what is captured (none = receive only).

// ================================================================ constants

const CODE_RE = /^[A-Za-z0-9-]{1,32}$/;
const CONTROL_RE = /\p{Cc}/u;
const NAME_MAX = 24;
const CHAT_MAX = 500;
const NAME_KEY = 'parlor.name';         // localStorage: the name last used
const INTENT_KEY = 'parlor.intent';     // sessionStorage: {room, name, create} from the home page
const SETTINGS_KEY = 'parlor.settings'; // sessionStorage: the game settings chosen on the home page or in the lobby
const HOST_KEY = 'parlor.host';         // sessionStorage: {room, token} — the host token of a room this tab created
const SEAT_KEY = 'parlor.seat';         // sessionStorage: {room, name, token} — this tab's seat, for resume after a reload
/** Reconnection back-off (ms) after the WebSocket drops; the last step repeats until the seat is resumed or gone. */
const RECONNECT_STEPS_MS = [250, 500, 1000, 2000, 4000, 5000];
/** Give up reconnecting after this long without a welcome (the server's grace period is 30 s by default). */
const RECONNECT_GIVE_UP_MS = 45000;
/** A media path `disconnected` this long gets an ICE restart (`failed` gets one at once). */
const ICE_DISCONNECTED_MS = 2000;
/** No `pong` for this long while the socket looks open: it is dead, reconnect. */
const PONG_SILENCE_MS = 12000;
const PING_INTERVAL_MS = 2000;
const CLOCK_SAMPLES = 10;
const TOAST_MS = 5000;
const ANNOUNCE_MS = 4500;
const STATS_INTERVAL_MS = 400;
const SPEAKING_LEVEL = 0.02;
const SPEAKING_HOLD_MS = 700;
const CHAT_KEEP = 300;
const MIN_PLAYERS = 4;
const MAX_PLAYERS = 16;

/** Timed phases and their default lengths (seconds), as the server's rules have them. */
const TIMED_PHASES = ['role_reveal', 'night', 'dawn', 'day', 'nomination', 'defense', 'judgment', 'game_over'];
const DEFAULT_SECONDS = {
  role_reveal: 10, night: 45, dawn: 6, day: 120, nomination: 45, defense: 30, judgment: 20, game_over: 30,
};
const PHASE_NAME = {
  lobby: 'Lobby', role_reveal: 'Role reveal', night: 'Night', dawn: 'Dawn', day: 'Day',
  nomination: 'Nomination', defense: 'Defense', judgment: 'Judgment', game_over: 'Game over',
};
const ROLE_INFO = {
  mafia: { name: 'Mafia', text: 'Each night, agree with the other mafia on someone to eliminate. By day, blend in.' },
  doctor: { name: 'Doctor', text: 'Each night, save one living player (yourself too), but not the same one two nights running.' },
  detective: { name: 'Detective', text: 'Each night, learn whether one living player is mafia.' },
  citizen: { name: 'Citizen', text: 'Sleep through the night. By day, find the mafia and vote them out.' },
  moderator: { name: 'Moderator', text: 'You run the game: you know every role, see and hear everyone, and may speak to all at any time.' },
};
const CHANNEL_NAME = { all: 'Everyone', mafia: 'Mafia', dead: 'Ghosts' };
const CAUSE_TEXT = { killed: 'was killed in the night', executed: 'was executed by the town', left: 'left the game' };


// Small line icons (no icon fonts, no emoji: they may be missing on the device).
const ICONS = {
  moon: '<path d="M15.5 3.5a8.5 8.5 0 1 0 5 14.6A7 7 0 0 1 15.5 3.5z" fill="currentColor" stroke="none"/>',
  micOff: '<path d="M9 9V6a3 3 0 0 1 6 0v5m-.6 2.4A3 3 0 0 1 9 12M5 11a7 7 0 0 0 11.3 5.5M19 11a7 7 0 0 1-.5 2.6M12 18v3M3 3l18 18"/>',
  camOff: '<path d="M3 7h9a2 2 0 0 1 2 2v6m-1 2H5a2 2 0 0 1-2-2V7m12 4 6-3v8l-6-3M3 3l18 18"/>',
  grave: '<path d="M6 21V10a6 6 0 0 1 12 0v11zM4 21h16M12 8v7m-2.5-4.5h5"/>',
  eye: '<path d="M2 12s3.6-6.5 10-6.5S22 12 22 12s-3.6 6.5-10 6.5S2 12 2 12z"/><circle cx="12" cy="12" r="3"/>',
  eyeOff: '<path d="M4 4l16 16M10.6 6.1A9.6 9.6 0 0 1 12 6c6.4 0 10 6 10 6a17 17 0 0 1-3 3.6M6.6 7.6C3.8 9.4 2 12 2 12s3.6 6 10 6a9 9 0 0 0 4.2-1"/>',
};

// ================================================================ small helpers

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/** Build an element: h('button', {class: 'x', text: 'Hi', onclick: fn, dataset: {a: 1}}, ...children). */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function icon(name, cls = 'icon') {
  const span = document.createElement('span');
  span.className = cls;
  span.setAttribute('aria-hidden', 'true');
  span.innerHTML = `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name]}</svg>`;
  return span;
}

function cleanName(raw) {
  return String(raw ?? '').trim();
}

function nameProblem(name) {
  const length = [...name].length;
  if (length < 1) return 'Please enter a name.';
  if (length > NAME_MAX) return `Names can be at most ${NAME_MAX} characters.`;
  if (CONTROL_RE.test(name)) return 'Names cannot contain control characters.';
  return null;
}

function capitalize(text) {
  const s = String(text ?? '');
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function sentence(text) {
  const s = capitalize(text).trim();
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

function roomFromLocation() {
  const fromQuery = params.get('room');
  if (fromQuery !== null) return fromQuery.trim();
  const m = location.pathname.match(/^\/r\/([^/]+)\/?$/);
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

function inviteLink(code) {
  return `${location.origin}/r/${encodeURIComponent(code)}`;
}

function storageGet(store, key) {
  try { return store.getItem(key); } catch { return null; }
}

function storageSet(store, key, value) {
  try {
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch { /* storage may be disabled */ }
}

function loadName() {
  return storageGet(localStorage, NAME_KEY) || '';
}

function saveName(name) {
  storageSet(localStorage, NAME_KEY, name);
}

/** The home page's hand-over to the room page, once, for this room. */
function takeIntent(room) {
  let intent = null;
  try { intent = JSON.parse(storageGet(sessionStorage, INTENT_KEY) || 'null'); } catch { intent = null; }
  if (!intent || intent.room !== room) return null;
  storageSet(sessionStorage, INTENT_KEY, null);
  return intent;
}

function formatClock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}

function timeOfDay(unixMs) {
  const d = new Date(unixMs - clock.offset);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

// ================================================================ settings (home page and lobby)

function defaultSettings() {
  return { mafia: null, doctor: null, detective: null, host_plays: true, phase_seconds: {} };
}

function loadSettings() {
  try {
    const s = JSON.parse(storageGet(sessionStorage, SETTINGS_KEY) || 'null');
    if (s && typeof s === 'object') {
      return { ...defaultSettings(), ...s, phase_seconds: { ...(s.phase_seconds || {}) } };
    }
  } catch { /* fall through */ }
  return defaultSettings();
}

function saveSettings(settings) {
  storageSet(sessionStorage, SETTINGS_KEY, JSON.stringify(settings));
}

/** The settings inputs, with ids `${prefix}-mafia`, `${prefix}-len-night`, … */
function buildSettingsFields(container, prefix, settings, { foldLengths = true } = {}) {
  const count = (key, min, label) => h('label', { class: 'num' },
    h('span', { text: label }),
    h('input', {
      id: `${prefix}-${key}`, type: 'number', min, max: 15, step: 1, inputmode: 'numeric',
      placeholder: 'auto', value: settings[key] ?? '',
    }));
  const length = (phase) => h('label', { class: 'num' },
    h('span', { text: PHASE_NAME[phase] }),
    h('input', {
      id: `${prefix}-len-${phase}`, type: 'number', min: 1, max: 3600, step: 'any', inputmode: 'decimal',
      placeholder: String(DEFAULT_SECONDS[phase]), value: settings.phase_seconds?.[phase] ?? '',
    }));
  const plays = settings.host_plays !== false;
  container.replaceChildren(
    h('fieldset', { class: 'counts' },
      h('legend', { text: 'Roles' }),
      h('div', { class: 'num-row' },
        count('mafia', 1, 'Mafia'), count('doctor', 0, 'Doctors'), count('detective', 0, 'Detectives')),
      h('p', { class: 'hint', text: '“auto”: 1 mafia for 4–5 players, 2 for 6–8, 3 for 9–11, 4 beyond; a doctor from 5 players, a detective from 6.' })),
    h('fieldset', { class: 'host-mode' },
      h('legend', { text: 'The host' }),
      h('label', { class: 'radio' },
        h('input', { type: 'radio', name: `${prefix}-host`, id: `${prefix}-plays`, value: 'play', checked: plays }),
        h('span', { text: 'plays like everyone else' })),
      h('label', { class: 'radio' },
        h('input', { type: 'radio', name: `${prefix}-host`, id: `${prefix}-moderates`, value: 'moderate', checked: !plays }),
        h('span', { text: 'moderates: sees every role, does not play' }))),
    foldLengths
      ? h('details', { class: 'lengths' },
        h('summary', { text: 'Phase lengths (seconds)' }),
        h('div', { class: 'num-grid' }, TIMED_PHASES.map(length)))
      : h('fieldset', { class: 'lengths' },
        h('legend', { text: 'Phase lengths (seconds)' }),
        h('div', { class: 'num-grid' }, TIMED_PHASES.map(length))),
  );
}

/** One line: "2 mafia · 1 doctor · auto detectives · host plays · custom phase lengths". */
function settingsSummary(s) {
  const n = (v, one, many) => (v === null || v === undefined ? `auto ${many}` : `${v} ${v === 1 ? one : many}`);
  const custom = Object.keys(s.phase_seconds || {}).length;
  return [
    n(s.mafia, 'mafioso', 'mafia'),
    n(s.doctor, 'doctor', 'doctors'),
    n(s.detective, 'detective', 'detectives'),
    s.host_plays === false ? 'host moderates' : 'host plays',
    custom ? `${custom} custom phase length${custom === 1 ? '' : 's'}` : 'usual phase lengths',
  ].join(' · ');
}

function readSettings(prefix) {
  const number = (id) => {
    const el = $(id);
    const raw = el ? el.value.trim() : '';
    return raw === '' ? null : Number(raw);
  };
  const settings = {
    mafia: number(`${prefix}-mafia`),
    doctor: number(`${prefix}-doctor`),
    detective: number(`${prefix}-detective`),
    host_plays: !$(`${prefix}-moderates`)?.checked,
    phase_seconds: {},
  };
  for (const phase of TIMED_PHASES) {
    const v = number(`${prefix}-len-${phase}`);
    if (v !== null) settings.phase_seconds[phase] = v;
  }
  return settings;
}

function settingsProblem(s) {
  const int = (v, min) => v === null || (Number.isInteger(v) && v >= min && v <= 15);
  if (!int(s.mafia, 1)) return 'Mafia must be a whole number from 1 (or empty for auto).';
  if (!int(s.doctor, 0)) return 'Doctors must be a whole number from 0 (or empty for auto).';
  if (!int(s.detective, 0)) return 'Detectives must be a whole number from 0 (or empty for auto).';
  for (const [phase, v] of Object.entries(s.phase_seconds)) {
    if (!(Number.isFinite(v) && v > 0 && v <= 3600)) return `${PHASE_NAME[phase]} must last more than 0 and at most 3600 seconds.`;
  }
  return null;
}

/** `start_game.settings` on the wire: only what was chosen. */
function settingsToWire(s) {
  const wire = { host_plays: s.host_plays !== false };
  for (const key of ['mafia', 'doctor', 'detective']) if (s[key] !== null && s[key] !== undefined) wire[key] = s[key];
  if (Object.keys(s.phase_seconds || {}).length > 0) wire.phase_seconds = { ...s.phase_seconds };
  return wire;
}

// ================================================================ state

let ws = null;           // current WebSocket
let pc = null;           // the one RTCPeerConnection
let localStream = null;  // own camera/microphone, or null when receive-only
let mediaPromise = null; // getUserMedia, started as soon as the room page opens
let pingTimer = null;
let ended = false;       // left, or the connection is gone for good
let reconnect = null;    // {attempt, since, timer} while the WebSocket is being re-established
let iceTimer = null;     // pending ICE restart after `disconnected`
let lastPongAt = 0;      // performance.now() of the last pong
/** Timings of the latest (re)connection, performance.now() ms: socket open, welcome, first remote video frame. */
const timing = { socketOpen: null, welcome: null, offer: null, answer: null, mediaConnected: null, firstTrack: null, firstFrame: null, resumed: false };

const S = {
  view: 'loading',
  room: null,
  name: null,
  locked: false,          // the host locked the room against newcomers
  iceServers: [],         // welcome.ice_servers: STUN/TURN for the peer connection
  pin: null,              // the room PIN typed on the join form, sent with every join of this page
  needPin: false,         // the server asked for a PIN (bad_pin)
  myId: null,
  hostId: null,
  limits: {},
  /** id -> participant object as last sent by the server (insertion order = order of arrival). */
  participants: new Map(),
  /** id -> name, kept after people leave (chat history, game-over reveal). */
  names: new Map(),
  phase: { phase: 'lobby', round: 0, ends_at: null, alive: [], accused: null },
  phaseArrival: { perf: 0, server: 0 },
  phaseLog: [],
  role: null,             // the `role` message of this game
  receive: {},            // the last `media_state.receive`
  tally: null,            // the last `vote_update` of this phase
  investigations: [],     // {target, is_mafia, round}
  causes: {},             // id -> elimination cause, this game
  nightDeaths: [],        // eliminated during the current night
  sent: {},               // `${phase}:${round}` -> what this client sent (vote, action), until refused
  saves: {},              // round -> whom this doctor saved
  gameOver: null,         // the `game_over` message
  gameOverOpen: true,     // the game-over overlay has not been closed
  revealOpen: true,       // the role-reveal overlay has not been closed
  inviteOpen: null,       // null: automatic; true/false: the Invite button was used
  chat: [],
  errors: [],
};

/** publisher id -> MediaStream combining that publisher's audio and video. */
const remoteStreams = new Map();
/** receiver track id -> publisher id (from ontrack's stream id, the publisher's participant id). */
const trackPublisher = new Map();
/** publisher id -> {token, frames}: the video of this publisher is shown only once a fresh frame arrives. */
const awaitingFrame = new Map();
/** publisher id -> performance.now() until which the tile counts as speaking. */
const speakingUntil = new Map();
let lastInbound = {};
let firstRemoteFrameAt = null;
let selfSpeakingUntil = 0;

/** RTT and clock offset from ping/pong. serverNow() = Date.now() + offset. */
const clock = { rtt: null, minRtt: null, offset: 0, samples: [] };
const serverNow = () => Date.now() + clock.offset;

// Negotiation state.
let sdpChain = Promise.resolve(); // serializes every SDP/ICE operation
let needOffer = false;            // the client has changes the server has not seen yet
let expectedGlare = 0;            // client offers we rolled back that the server will answer with `glare`
const pendingCandidates = [];     // remote candidates that arrived before a remote description

/** Every server message is re-dispatched here after it was handled (type = message type; detail = message). */
const events = new EventTarget();

// ================================================================ derived state

const me = () => S.participants.get(S.myId) || null;
const isHost = () => Boolean(S.myId) && S.hostId === S.myId;
const phaseName = () => S.phase.phase;
/** A game is running (neither lobby nor game over). */
const inGame = () => !['lobby', 'game_over'].includes(phaseName());
/** A game's table exists (running or just ended). */
const hasTable = () => phaseName() !== 'lobby';
const isModerator = () => S.role?.role === 'moderator';
const myRole = () => S.role?.role || null;
const amLiving = () => Boolean(me()?.playing && me()?.alive);
const amDead = () => hasTable() && Boolean(me()?.playing) && !me()?.alive;
const amSpectator = () => inGame() && !me()?.playing && !isModerator();

function nameOf(id) {
  if (id === null || id === undefined) return 'nobody';
  return S.participants.get(id)?.name ?? S.names.get(id) ?? 'someone';
}

function living() {
  return [...S.participants.values()].filter((p) => p.playing && p.alive).map((p) => p.id);
}

/** The role this client knows for `id`, if any. */
function knownRole(id) {
  if (S.gameOver?.roles?.[id]) return S.gameOver.roles[id];
  if (!S.role || !hasTable()) return null;
  if (id === S.myId) return S.role.role;
  if (S.role.roles?.[id]) return S.role.roles[id];
  if (S.role.role === 'mafia' && (S.role.teammates || []).includes(id)) return 'mafia';
  return null;
}

/** A participant who is not playing while a game runs: the moderator (the host) or a spectator. */
function sideline(id) {
  const p = S.participants.get(id);
  if (!p || !inGame() || p.playing) return null;
  if (id === S.myId) return isModerator() ? 'moderator' : 'spectator';
  return id === S.hostId ? 'moderator' : 'spectator';
}

function phaseKey() {
  return `${S.phase.phase}:${S.phase.round}`;
}

// ================================================================ UI references

const ui = {
  banner: $('banner'),
  bannerTitle: $('banner-title'),
  bannerSub: $('banner-sub'),
  countdown: $('countdown'),
  progress: $('progress-bar'),
  roomLabel: $('room-label'),
  inviteToggle: $('invite-toggle'),
  status: $('status'),
  notice: $('notice'),
  stage: $('stage'),
  grid: $('grid'),
  nightOverlay: $('night-overlay'),
  nightTitle: $('night-title'),
  nightText: $('night-text'),
  reveal: $('reveal'),
  announce: $('announce'),
  gameover: $('gameover'),
  soundBanner: $('sound-banner'),
  invite: $('invite'),
  inviteLink: $('invite-link'),
  inviteQr: $('invite-qr'),
  copyLink: $('copy-link'),
  roleBox: $('role-box'),
  actionBox: $('action-box'),
  lobbyBox: $('lobby-box'),
  lobbyTitle: $('lobby-title'),
  readyToggle: $('ready-toggle'),
  lockLine: $('lock-line'),
  lockText: $('lock-text'),
  lockToggle: $('lock-toggle'),
  roster: $('roster'),
  lobbyWait: $('lobby-wait'),
  settingsForm: $('settings-form'),
  lobbySettings: $('lobby-settings'),
  startGame: $('start-game'),
  chatLog: $('chat-log'),
  chatForm: $('chat-form'),
  chatChannel: $('chat-channel'),
  chatInput: $('chat-input'),
  chatClosed: $('chat-closed'),
  controls: $('controls'),
  mic: $('toggle-mic'),
  cam: $('toggle-cam'),
  sound: $('enable-sound'),
  leave: $('leave'),
  toasts: $('toasts'),
};

function showView(view) {
  S.view = view;
  document.body.dataset.view = view;
  for (const id of ['home', 'prejoin', 'room']) $(id).hidden = id !== view;
  ui.banner.hidden = view !== 'room';
  ui.controls.hidden = view !== 'room';
}

function toast(text, kind = 'error') {
  const el = h('div', { class: `toast ${kind}`, text });
  ui.toasts.append(el);
  while (ui.toasts.children.length > 4) ui.toasts.firstElementChild.remove();
  setTimeout(() => el.remove(), TOAST_MS);
}

function showNotice(text) {
  ui.notice.textContent = text || '';
  ui.notice.hidden = !text;
}

function setStatus(text) {
  ui.status.textContent = text;
}

function refreshStatus() {
  if (ended) return;
  if (reconnect) { setStatus('reconnecting…'); return; }
  if (!S.myId) { setStatus('connecting…'); return; }
  const state = pc ? pc.connectionState : 'starting';
  const media = state === 'connected' ? 'live' : state;
  const rtt = clock.rtt === null ? '' : ` · ${Math.round(clock.rtt)} ms`;
  setStatus(`${media}${rtt}`);
}

// ================================================================ home page

function showHome(error) {
  showView('home');
  document.title = 'parlor';
  buildSettingsFields($('create-settings'), 'home', loadSettings());
  const name = loadName();
  $('create-name').value = name;
  $('code-name').value = name;
  if (error) {
    $('code-error').textContent = error;
    $('code-error').hidden = false;
  }
  $('create-name').focus();
}

function formError(id, text) {
  $(id).textContent = text || '';
  $(id).hidden = !text;
}

$('create-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = cleanName($('create-name').value);
  const settings = readSettings('home');
  const problem = nameProblem(name) || settingsProblem(settings);
  if (problem) { formError('create-error', problem); return; }
  formError('create-error', '');
  saveName(name);
  saveSettings(settings);
  createRoom(name, settings);
});

/** This tab's host token for `room`, kept from the room API for the room page's `join` (`token`). */
function hostTokenFor(room) {
  try {
    const host = JSON.parse(storageGet(sessionStorage, HOST_KEY) || 'null');
    if (host && host.room === room && typeof host.token === 'string') return host.token;
  } catch { /* a damaged entry is no token */ }
  return null;
}

/** Create the room through the room API (docs/API.md), keep its host token, and open it. */
async function createRoom(name, settings) {
  const button = $('create-button');
  button.disabled = true;
  let reply = null;
  let body = null;
  try {
    reply = await fetch('/api/rooms', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ settings: settingsToWire(settings) }),
    });
    body = await reply.json().catch(() => null);
  } catch {
    reply = null;
  }
  button.disabled = false;
  if (!reply) { formError('create-error', 'The server cannot be reached. Check your connection and try again.'); return; }
  if (reply.status === 401 || reply.status === 403) {
    formError('create-error', 'On this server, rooms are created by its organisers. Ask them for an invite link.');
    return;
  }
  if (reply.status === 503) { formError('create-error', 'The server is full right now. Try again in a few minutes.'); return; }
  if (!reply.ok || !body || typeof body.code !== 'string' || !CODE_RE.test(body.code)) {
    formError('create-error', `The room could not be created${body && body.message ? `: ${body.message}` : '.'}`);
    return;
  }
  const room = body.code;
  if (typeof body.host_token === 'string') storageSet(sessionStorage, HOST_KEY, JSON.stringify({ room, token: body.host_token }));
  storageSet(sessionStorage, INTENT_KEY, JSON.stringify({ room, name, create: true }));
  location.assign(`/r/${room}${deviceFlags()}`);
}

$('code-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = codeFromInput($('code-input').value);
  const name = cleanName($('code-name').value);
  if (!CODE_RE.test(room)) { formError('code-error', 'Room codes are 1–32 letters, digits or dashes.'); return; }
  if (name && nameProblem(name)) { formError('code-error', nameProblem(name)); return; }
  formError('code-error', '');
  if (name) {
    saveName(name);
    storageSet(sessionStorage, INTENT_KEY, JSON.stringify({ room, name, create: false }));
  }
  location.assign(`/r/${encodeURIComponent(room)}${deviceFlags()}`);
});

/** The camera flags of this page's URL (`video`, `fps`, `media`), carried to the room page. */
function deviceFlags() {
  const keep = new URLSearchParams();
  for (const key of ['video', 'fps', 'media']) if (params.has(key)) keep.set(key, params.get(key));
  const query = keep.toString();
  return query ? `?${query}` : '';
}

// ================================================================ name prompt with camera preview

function showPrejoin(room, error) {
  showView('prejoin');
  document.title = `${room} · parlor`;
  $('join-title').textContent = `Join room ${room}`;
  const input = $('name-input');
  if (!input.value) input.value = S.name || loadName();
  $('pin-field').hidden = !S.needPin;
  formError('join-error', error || '');
  $('join-button').disabled = false;
  input.focus();
  const status = $('preview-status');
  const video = $('preview-video');
  mediaPromise.then(({ stream, notice }) => {
    if (S.view !== 'prejoin') return;
    if (stream && stream.getVideoTracks().length > 0) {
      if (video.srcObject !== stream) video.srcObject = stream; // assigning again would reload it
      video.play().catch(() => {});
      video.hidden = false;
    } else {
      video.hidden = true;
    }
    status.textContent = notice || (stream ? 'Your camera and microphone are ready.' : '');
    status.classList.toggle('problem', Boolean(notice));
  });
}

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = cleanName($('name-input').value);
  const problem = nameProblem(name);
  if (problem) { formError('join-error', problem); return; }
  saveName(name);
  if (S.needPin) {
    const pin = $('pin-input').value.trim();
    if (!pin) { formError('join-error', 'Please type the room PIN.'); return; }
    S.pin = pin;
  }
  $('join-button').disabled = true;
  connect(S.room, name);
});

// ================================================================ WebSocket

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

/** This tab's seat in `room`, if it holds one (kept for a reload or a dropped connection). */
function loadSeat(room) {
  try {
    const seat = JSON.parse(storageGet(sessionStorage, SEAT_KEY) || 'null');
    if (seat && seat.room === room && typeof seat.token === 'string' && typeof seat.name === 'string') return seat;
  } catch { /* a damaged entry is no seat */ }
  return null;
}

function saveSeat(token) {
  storageSet(sessionStorage, SEAT_KEY, JSON.stringify({ room: S.room, name: S.name, token }));
}

function forgetSeat() {
  storageSet(sessionStorage, SEAT_KEY, null);
}

/** Open the WebSocket and join `room` — resuming the seat `resume` names, if given. */
function connect(room, name, resume) {
  ended = false;
  S.room = room;
  S.name = name;
  setStatus(reconnect ? 'reconnecting…' : 'connecting…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${scheme}//${location.host}/ws`);
  ws = sock;
  sock.addEventListener('open', () => {
    if (sock !== ws) return;
    timing.socketOpen = performance.now();
    for (const key of ['welcome', 'offer', 'answer', 'mediaConnected', 'firstTrack', 'firstFrame']) timing[key] = null;
    timing.resumed = Boolean(resume);
    const join = { type: 'join', room, name };
    if (resume) join.resume = resume;
    const token = hostTokenFor(room);
    if (token) join.token = token; // the room API made this tab the room's host
    if (S.pin) join.pin = S.pin;
    send(join);
  });
  sock.addEventListener('message', (ev) => {
    if (sock !== ws || typeof ev.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch { console.warn('parlor: non-JSON message', ev.data); return; }
    if (!msg || typeof msg.type !== 'string') return;
    try {
      handleMessage(msg);
    } catch (err) {
      console.error('parlor: handling', msg.type, 'failed', err);
    }
    events.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  });
  sock.addEventListener('close', (ev) => {
    if (sock !== ws) return;
    onSocketClosed(ev);
  });
}

/** Messages that change what the room page shows. */
const RENDERING = new Set([
  'welcome', 'participant_joined', 'participant_updated', 'participant_left', 'host_changed', 'locked', 'phase', 'role',
  'media_state', 'vote_update', 'investigation', 'eliminated', 'game_over',
]);

function handleMessage(msg) {
  switch (msg.type) {
    case 'welcome': onWelcome(msg); break;
    case 'participant_joined': onParticipantJoined(msg.participant); break;
    case 'participant_updated': if (msg.participant) upsertParticipant(msg.participant); break;
    case 'participant_left': onParticipantLeft(msg.id, msg.reason); break;
    case 'host_changed': onHostChanged(msg.host); break;
    case 'locked': onLocked(msg.locked === true); break;
    case 'offer': if (typeof msg.sdp === 'string') enqueue(() => onRemoteOffer(msg.sdp)); break;
    case 'answer': if (typeof msg.sdp === 'string') enqueue(() => onRemoteAnswer(msg.sdp)); break;
    case 'candidate': enqueue(() => onRemoteCandidate(msg)); break;
    case 'pong': onPong(msg); break;
    case 'phase': onPhase(msg); break;
    case 'role': onRole(msg); break;
    case 'media_state': onMediaState(msg.receive); break;
    case 'vote_update': S.tally = msg; break;
    case 'investigation': onInvestigation(msg); break;
    case 'eliminated': onEliminated(msg.id, msg.cause); break;
    case 'chat': onChat(msg); break;
    case 'game_over': onGameOver(msg); break;
    case 'error': onError(msg); break;
    default: break; // newer servers may add types
  }
  if (RENDERING.has(msg.type) && S.view === 'room') renderAll();
}

const JOIN_ERRORS = {
  name_taken: 'Someone in this room already uses that name. Please pick another.',
  room_full: 'This room is full.',
  room_not_found: 'There is no room with that code.',
  room_locked: 'The host has locked this room: nobody new can join right now.',
  bad_pin: 'This room needs the PIN the host gave you, and that one is not right.',
  bad_token: 'The host link of this room is no longer valid (it expired, or the server restarted). You can still join as a player.',
  room_closed: 'The host closed this room.',
  server_full: 'The server is full right now. Please try again later.',
  too_many_rooms: 'The server cannot open more rooms right now.',
  bad_field: 'The server did not accept that room code or name.',
};

/** An `error` in plain words. */
function errorText(code, message) {
  switch (code) {
    case 'not_host': return 'Only the host can do that.';
    case 'wrong_phase': return `Not now: ${message}.`;
    case 'not_allowed': return sentence(message);
    case 'bad_field': return `That was not accepted: ${message}.`;
    case 'rate_limited': return 'You are sending too fast, so the server stopped listening for a moment. Please slow down.';
    case 'kicked': return 'The host removed you from the room.';
    case 'replaced': return 'You joined this room from another tab or device, so this one stopped.';
    case 'server_shutdown': return 'The server is shutting down.';
    case 'too_large': return 'That message was too large.';
    default: return JOIN_ERRORS[code] || sentence(message || code);
  }
}

function onError(msg) {
  const code = String(msg.code ?? 'error');
  const message = msg.message ? String(msg.message) : code;
  console.warn(`parlor: server error ${code}: ${message}`);
  S.errors.push({ code, message, at: Date.now() });
  if (code === 'resume_expired') {
    // The seat is gone (away longer than the grace period, or the server restarted).
    forgetSeat();
    stopReconnecting();
    if (S.myId) {
      endCall('You were away too long, so your seat was given up. Join again to watch or to play the next game.');
      return;
    }
  }
  if (reconnect && S.myId && JOIN_ERRORS[code]) {
    // The seat could not be taken back (for example the room is locked or full now).
    forgetSeat();
    endCall(JOIN_ERRORS[code]);
    return;
  }
  // A stale host token (expired, or the server restarted): forget it, so the next join goes in as a player.
  if (code === 'bad_token') storageSet(sessionStorage, HOST_KEY, null);
  if (!S.myId) {
    // The join failed: nothing was created on the server. Start over with a fresh socket.
    const sock = ws;
    ws = null;
    if (sock) sock.close(1000);
    setStatus('');
    if (code === 'bad_pin') {
      S.pin = null;
      S.needPin = true;
    }
    showPrejoin(S.room, code === 'resume_expired'
      ? 'Your earlier seat in this room has expired. Join again to watch or to play the next game.'
      : JOIN_ERRORS[code] || sentence(message));
    return;
  }
  if (code === 'room_closed') {
    forgetSeat();
    endCall(JOIN_ERRORS.room_closed);
    return;
  }
  if (['kicked', 'replaced', 'server_shutdown'].includes(code)) {
    // The server closes the socket after these: say why, rather than "connection lost".
    if (code !== 'server_shutdown') forgetSeat();
    endCall(errorText(code, message));
    return;
  }
  if (code === 'glare') { enqueue(onGlare); return; }
  if (code === 'bad_sdp') enqueue(onBadSdp);
  if (['not_allowed', 'wrong_phase', 'bad_field'].includes(code) && S.sent[phaseKey()] !== undefined) {
    // The vote or action just sent was refused: let the player choose again.
    delete S.sent[phaseKey()];
    if (phaseName() === 'night') delete S.saves[S.phase.round];
    renderAll();
  }
  toast(errorText(code, message));
}

function onSocketClosed(ev) {
  stopPing();
  ws = null;
  if (ended) return;
  if (!S.myId && !reconnect) {
    setStatus('');
    showPrejoin(S.room, 'Could not reach the server. Please try again.');
    return;
  }
  if (ev.code === 1000 && ev.reason === 'room_closed') {
    forgetSeat();
    endCall(JOIN_ERRORS.room_closed);
    return;
  }
  const byCode = { 4000: 'kicked', 4001: 'replaced', 1008: 'rate_limited', 1009: 'too_large' };
  if (byCode[ev.code]) {
    if (ev.code === 4000 || ev.code === 4001) forgetSeat();
    endCall(errorText(byCode[ev.code]));
    return;
  }
  // Anything else — a network drop, a proxy timeout, a server restart — is worth another try with the token.
  scheduleReconnect();
}

/** Try the WebSocket again after a back-off step, resuming this tab's seat. */
function scheduleReconnect() {
  const seat = loadSeat(S.room);
  if (!seat) {
    endCall('The connection to the server was lost.');
    return;
  }
  const now = performance.now();
  if (!reconnect) reconnect = { attempt: 0, since: now, timer: null };
  if (now - reconnect.since > RECONNECT_GIVE_UP_MS) {
    stopReconnecting();
    endCall('The connection to the server was lost, and reconnecting did not work.');
    return;
  }
  const step = RECONNECT_STEPS_MS[Math.min(reconnect.attempt, RECONNECT_STEPS_MS.length - 1)];
  reconnect.attempt += 1;
  const delay = Math.round(step * (0.8 + Math.random() * 0.4)); // jitter: a room's phones do not all retry at once
  setStatus('reconnecting…');
  showReconnecting(true);
  clearTimeout(reconnect.timer);
  reconnect.timer = setTimeout(() => {
    if (ended || !reconnect) return;
    connect(seat.room, seat.name, seat.token);
  }, delay);
}

function stopReconnecting() {
  if (reconnect) clearTimeout(reconnect.timer);
  reconnect = null;
  showReconnecting(false);
}

/** The "reconnecting" strip over the room page. */
function showReconnecting(on) {
  const bar = $('reconnecting');
  if (bar) bar.hidden = !on;
}

/** Close a socket that stopped answering and go through the usual reconnection. */
function dropDeadSocket() {
  const sock = ws;
  if (!sock) return;
  console.warn('parlor: no pong for', PONG_SILENCE_MS, 'ms; reconnecting');
  ws = null;
  try { sock.close(4100); } catch { /* already closing */ }
  onSocketClosed({ code: 1006 });
}

function onWelcome(msg) {
  const again = S.myId !== null && String(msg.id) === S.myId; // this page resumed its own seat
  timing.welcome = performance.now();
  stopReconnecting();
  S.room = String(msg.room ?? S.room);
  S.hostId = msg.host || null; // "" while nobody holds the host's powers (an API room before its host joins)
  S.limits = msg.limits && typeof msg.limits === 'object' ? msg.limits : {};
  const list = Array.isArray(msg.participants) ? msg.participants.filter((p) => p && typeof p.id === 'string') : [];
  S.locked = msg.locked === true;
  S.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers.filter((s) => s && Array.isArray(s.urls)) : [];
  S.myId = String(msg.id);
  if (typeof msg.resume_token === 'string') saveSeat(msg.resume_token);
  showView('room');
  document.title = `${S.room} · parlor`;
  ui.roomLabel.textContent = S.room;
  ui.roomLabel.hidden = false;
  ui.inviteToggle.hidden = false;
  ui.inviteLink.value = inviteLink(S.room);
  ui.inviteQr.src = `/qr.svg?text=${encodeURIComponent(inviteLink(S.room))}`;
  if (again) {
    // Whoever left while we were away is gone from the roster.
    const present = new Set(list.map((p) => p.id));
    for (const id of [...S.participants.keys()]) if (!present.has(id)) removeParticipant(id);
    if (!msg.game) { resetGame(); S.phase = { phase: 'lobby', round: 0, ends_at: null, alive: [], accused: null }; S.receive = {}; }
  }
  const self = list.find((p) => p.id === S.myId);
  if (self) upsertParticipant(self);
  for (const p of list) if (p.id !== S.myId) upsertParticipant(p);
  if (msg.game && typeof msg.game === 'object') {
    onPhase({ ...msg.game, type: 'phase' });
    // A resumed seat also gets its role, view and the current tally.
    if (msg.role) onRole(msg.role);
    if (msg.media_state?.receive) onMediaState(msg.media_state.receive);
    if (msg.vote_update) S.tally = msg.vote_update;
    if (amSpectator()) toast('A game is running: you are watching, and will play in the next one.', 'info');
  } else {
    S.phaseArrival = { perf: performance.now(), server: serverNow() };
  }
  refreshStatus();
  startPing();
  // Same page, new socket: the server sends nothing until we offer, so offer now — with an ICE
  // restart if the media path died too. (A peer connection still being built offers by itself.)
  enqueue(() => (again && pc ? resyncMedia() : setupMedia()));
}

/** After a resume on the same page: roll back a half-done exchange and offer again. */
async function resyncMedia() {
  if (!pc || ended) return;
  if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
  if (pc.signalingState !== 'stable') return; // a server offer is being answered; our offer follows it
  if (['failed', 'disconnected'].includes(pc.connectionState)) pc.restartIce();
  needOffer = true;
  await maybeOffer();
}

/** The media path failed or stayed disconnected: new ICE credentials, new checks. */
function restartMedia() {
  clearTimeout(iceTimer);
  iceTimer = null;
  if (!pc || ended || pc.connectionState === 'connected') return;
  console.info('parlor: restarting ICE from state', pc.connectionState);
  pc.restartIce(); // fires negotiationneeded → an offer with new credentials once the socket is up
}

function upsertParticipant(p) {
  if (!p || typeof p.id !== 'string') return;
  S.participants.set(p.id, p);
  S.names.set(p.id, String(p.name ?? ''));
  if (!tileFor(p.id)) {
    createTile(p.id);
    attachStream(p.id);
  }
  refreshTile(p.id);
}

function onParticipantJoined(p) {
  if (!p || typeof p.id !== 'string') return;
  upsertParticipant(p);
  if (p.id !== S.myId) systemLine(inGame() ? `${p.name} joined to watch.` : `${p.name} joined.`);
}

function onParticipantLeft(id, reason) {
  if (typeof id !== 'string') return;
  if (id === S.myId) {
    endCall(reason === 'kicked' ? 'The host removed you from the room.' : 'You left the room.');
    return;
  }
  const name = nameOf(id);
  removeParticipant(id);
  const how = reason === 'kicked' ? 'was removed by the host' : reason === 'disconnected' ? 'lost the connection' : 'left';
  systemLine(`${name} ${how}.`);
}

/** Take `id` off the roster and the grid. */
function removeParticipant(id) {
  S.participants.delete(id);
  remoteStreams.delete(id);
  awaitingFrame.delete(id);
  const tile = tileFor(id);
  if (tile) {
    tile.querySelector('video').srcObject = null;
    tile.remove();
  }
  ui.grid.dataset.count = String(ui.grid.children.length);
  layoutGrid();
}

function onLocked(locked) {
  const was = S.locked;
  S.locked = locked;
  if (was !== locked) systemLine(locked ? 'The host locked the room: nobody new can join.' : 'The host opened the room again.');
}

function onHostChanged(host) {
  const before = S.hostId;
  S.hostId = host || null;
  if (S.hostId === S.myId && before !== S.myId) toast('You are now the host: you can start the game and change its settings.', 'info');
  for (const id of S.participants.keys()) refreshTile(id);
}

// ================================================================ game messages

function resetGame() {
  S.role = null;
  S.tally = null;
  S.investigations = [];
  S.causes = {};
  S.nightDeaths = [];
  S.sent = {};
  S.saves = {};
  S.gameOver = null;
  S.gameOverOpen = true;
  S.revealOpen = true;
}

function onPhase(msg) {
  const previous = S.phase.phase;
  S.phase = {
    phase: String(msg.phase),
    round: Number(msg.round) || 0,
    ends_at: typeof msg.ends_at === 'number' ? msg.ends_at : null,
    alive: Array.isArray(msg.alive) ? msg.alive : [],
    accused: typeof msg.accused === 'string' ? msg.accused : null,
  };
  S.phaseArrival = { perf: performance.now(), server: serverNow() };
  S.phaseLog.push({ ...S.phase, at: S.phaseArrival.perf, wall: Date.now() });
  if (S.phaseLog.length > 200) S.phaseLog.shift();
  S.tally = null;
  switch (S.phase.phase) {
    case 'lobby':
      resetGame();
      if (previous === 'game_over') systemLine('Back in the lobby.');
      break;
    case 'role_reveal':
      resetGame();
      systemLine('A new game begins.');
      break;
    case 'night':
      S.nightDeaths = [];
      break;
    case 'dawn':
      if (previous === 'night' && S.nightDeaths.length === 0) {
        announce('Nobody died tonight.', 'The town wakes up.');
        systemLine('Nobody died tonight.');
      }
      break;
    case 'defense':
      if (S.phase.accused === S.myId) announce('You are on trial.', 'Make your case: only you can be heard now.');
      else announce(`${nameOf(S.phase.accused)} is on trial.`, 'Only the accused can be heard now.');
      break;
    default:
      break;
  }
}

function onRole(msg) {
  S.role = {
    role: String(msg.role),
    teammates: Array.isArray(msg.teammates) ? msg.teammates : [],
    roles: msg.roles && typeof msg.roles === 'object' ? msg.roles : null,
  };
  S.revealOpen = true;
  for (const id of S.participants.keys()) refreshTile(id);
}

function onMediaState(receive) {
  if (!receive || typeof receive !== 'object') return;
  const before = S.receive;
  S.receive = receive;
  for (const id of Object.keys(receive)) {
    const was = before[id];
    // Video that comes back is shown only from its first fresh frame: never a frozen picture.
    if (receive[id]?.video && was && !was.video) awaitFrame(id);
  }
  for (const id of S.participants.keys()) refreshTile(id);
}

function onInvestigation(msg) {
  const entry = { target: String(msg.target), is_mafia: Boolean(msg.is_mafia), round: S.phase.round };
  S.investigations.push(entry);
  toast(`${nameOf(entry.target)} ${entry.is_mafia ? 'IS mafia' : 'is not mafia'}.`, 'info');
}

function onEliminated(id, cause) {
  if (typeof id !== 'string') return;
  S.causes[id] = cause;
  if (phaseName() === 'night') S.nightDeaths.push(id);
  const text = `${nameOf(id)} ${CAUSE_TEXT[cause] || 'is out'}.`;
  systemLine(text);
  if (id === S.myId) {
    const how = cause === 'killed' ? 'You were killed in the night.' : cause === 'executed' ? 'The town executed you.' : 'You left the game.';
    announce(how, 'You are a ghost now: you can watch everyone and talk with the other dead.', 'death');
  } else {
    announce(text, cause === 'killed' ? 'The town wakes up one fewer.' : '', 'death');
  }
}

function onGameOver(msg) {
  S.gameOver = { winner: String(msg.winner), roles: msg.roles && typeof msg.roles === 'object' ? msg.roles : {} };
  S.gameOverOpen = true;
  systemLine(S.gameOver.winner === 'town' ? 'Game over: the town wins.' : 'Game over: the mafia win.');
  for (const id of S.participants.keys()) refreshTile(id);
}

// ================================================================ clock

function startPing() {
  stopPing();
  lastPongAt = performance.now();
  const ping = () => {
    if (performance.now() - lastPongAt > PONG_SILENCE_MS) { dropDeadSocket(); return; }
    send({ type: 'ping', t: Date.now() });
  };
  ping();
  pingTimer = setInterval(ping, PING_INTERVAL_MS);
}

function stopPing() {
  if (pingTimer !== null) clearInterval(pingTimer);
  pingTimer = null;
}

function onPong(msg) {
  lastPongAt = performance.now();
  const now = Date.now();
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
  refreshStatus();
}

// ================================================================ local media

const MEDIA_HELP = {
  NotAllowedError: 'You did not allow this page to use your camera and microphone, so the others cannot see or hear you. ' +
    'You can still watch and listen. To take part, allow the camera and microphone for this site in your browser, then reload.',
  NotFoundError: 'No camera or microphone was found, so the others cannot see or hear you. You can still watch and listen.',
  NotReadableError: 'Your camera or microphone is busy (another app or tab may be using it), so the others cannot see or hear you. ' +
    'You can still watch and listen. Close the other app, then reload to take part.',
  insecure: 'This browser allows cameras and microphones only on secure (https) pages, so the others cannot see or hear you. ' +
    'You can still watch and listen. Ask whoever runs this server to turn on https.',
  none: 'You joined without camera and microphone: you can watch and listen.',
};

function videoConstraints() {
  const size = /^(\d{2,4})x(\d{2,4})$/.exec(params.get('video') || '');
  const fps = Number(params.get('fps'));
  return {
    width: { ideal: size ? Number(size[1]) : 640 },
    height: { ideal: size ? Number(size[2]) : 480 },
    frameRate: { ideal: fps > 0 && fps <= 60 ? fps : 24, max: 30 },
  };
}

/** Camera and microphone: {stream (or null), notice (plain words, or null)}. Never throws. */
async function acquireMedia() {
  const mode = params.get('media');
  if (mode === 'none') return { stream: null, notice: MEDIA_HELP.none };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return { stream: null, notice: MEDIA_HELP.insecure };
  const wantAudio = mode !== 'video';
  const wantVideo = mode !== 'audio';
  const gum = (audio, video) => navigator.mediaDevices.getUserMedia({ audio, video });
  try {
    return { stream: await gum(wantAudio, wantVideo && videoConstraints()), notice: null };
  } catch (err) {
    console.warn('parlor: getUserMedia failed', err);
    const name = err && err.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') return { stream: null, notice: MEDIA_HELP.NotAllowedError };
    if (name === 'OverconstrainedError' && wantVideo) {
      try { return { stream: await gum(wantAudio, true), notice: null }; } catch { /* fall through */ }
    }
    if (wantAudio && wantVideo) {
      try {
        return { stream: await gum(true, false), notice: 'No usable camera was found, so the others can hear you but not see you.' };
      } catch { /* no microphone either */ }
      try {
        return { stream: await gum(false, videoConstraints()), notice: 'No usable microphone was found, so the others can see you but not hear you.' };
      } catch { /* nothing */ }
    }
    return { stream: null, notice: MEDIA_HELP[name] || MEDIA_HELP.NotFoundError };
  }
}

function videoBitrateCap() {
  const kbps = Number(S.limits.max_video_kbps);
  return kbps > 0 ? Math.round(kbps * 1000) : null;
}

async function setupMedia() {
  if (ended || pc) return;
  const { stream, notice } = await mediaPromise;
  if (ended || pc) {
    if (stream) for (const t of stream.getTracks()) t.stop();
    return;
  }
  localStream = stream;
  showNotice(notice);

  // TURN/STUN servers from the server's configuration (none on an open network).
  pc = new RTCPeerConnection({ iceServers: S.iceServers });
  pc.addEventListener('icecandidate', (ev) => {
    const c = ev.candidate;
    if (c) send({ type: 'candidate', candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex });
    else send({ type: 'candidate', candidate: '', sdp_mid: null, sdp_mline_index: null });
  });
  pc.addEventListener('track', onTrack);
  pc.addEventListener('negotiationneeded', () => {
    needOffer = true;
    enqueue(maybeOffer);
  });
  pc.addEventListener('connectionstatechange', () => {
    refreshStatus();
    if (!pc) return;
    const state = pc.connectionState;
    if (state === 'failed') restartMedia();
    else if (state === 'disconnected') { clearTimeout(iceTimer); iceTimer = setTimeout(restartMedia, ICE_DISCONNECTED_MS); }
    else if (state === 'connected') {
      clearTimeout(iceTimer);
      iceTimer = null;
      if (timing.mediaConnected === null) timing.mediaConnected = performance.now();
    }
  });

  // One transceiver per kind: send what we have, otherwise receive only.
  const bps = videoBitrateCap();
  for (const kind of ['audio', 'video']) {
    const track = localStream ? localStream.getTracks().find((t) => t.kind === kind) : null;
    if (!track) {
      pc.addTransceiver(kind, { direction: 'recvonly' });
      continue;
    }
    if (kind === 'video' && 'contentHint' in track) track.contentHint = 'motion';
    const init = { direction: 'sendrecv', streams: [localStream] };
    if (kind === 'video' && bps) init.sendEncodings = [{ maxBitrate: bps, maxFramerate: 24 }];
    pc.addTransceiver(track, init);
  }
  await capVideoBitrate();

  ui.mic.disabled = !localStream || localStream.getAudioTracks().length === 0;
  ui.cam.disabled = !localStream || localStream.getVideoTracks().length === 0;
  attachStream(S.myId);
  refreshStatus();
  // The first offer goes out from the `negotiationneeded` event the transceivers above trigger.
}

/** Cap the outgoing video to limits.max_video_kbps. Idempotent; repeated after every negotiation. */
async function capVideoBitrate() {
  const bps = videoBitrateCap();
  if (!pc || !bps) return;
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const p = sender.getParameters();
    if (!p.encodings || p.encodings.length === 0) continue; // not negotiated yet
    if (p.encodings[0].maxBitrate === bps) continue;
    p.encodings[0].maxBitrate = bps;
    try {
      await sender.setParameters(p);
    } catch (err) {
      console.warn('parlor: could not cap the video bitrate', err);
    }
  }
}

// ================================================================ negotiation (the server is the impolite peer)

/** Run `fn` after every SDP/ICE operation queued before it. Errors are reported, never fatal. */
function enqueue(fn) {
  sdpChain = sdpChain.then(fn).catch((err) => {
    console.error('parlor: negotiation step failed', err);
    toast(`Media negotiation problem: ${err && err.message ? err.message : err}`);
  });
  return sdpChain;
}

/** Send an offer if the client has unsent changes and no offer/answer exchange is in progress. */
async function maybeOffer() {
  if (!pc || ended || !needOffer || pc.signalingState !== 'stable') return;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  needOffer = false;
  await pc.setLocalDescription(await pc.createOffer());
  if (timing.offer === null) timing.offer = performance.now();
  send({ type: 'offer', sdp: pc.localDescription.sdp });
}

async function onRemoteOffer(sdp) {
  if (!pc || ended) return;
  if (pc.signalingState === 'have-local-offer') {
    // Glare. The server is the impolite peer: it will reject our offer with `glare`.
    await pc.setLocalDescription({ type: 'rollback' });
    expectedGlare += 1;
    needOffer = true;
  }
  await pc.setRemoteDescription({ type: 'offer', sdp });
  await flushCandidates();
  await pc.setLocalDescription(await pc.createAnswer());
  send({ type: 'answer', sdp: pc.localDescription.sdp });
  await capVideoBitrate();
  await maybeOffer();
}

async function onRemoteAnswer(sdp) {
  if (!pc || ended) return;
  if (pc.signalingState !== 'have-local-offer') {
    console.warn('parlor: ignoring an answer in state', pc.signalingState);
    return;
  }
  await pc.setRemoteDescription({ type: 'answer', sdp });
  if (timing.answer === null) timing.answer = performance.now();
  await flushCandidates();
  await capVideoBitrate();
  await maybeOffer();
}

async function onGlare() {
  if (expectedGlare > 0) {
    // Already rolled back when the server's offer arrived; the re-offer follows (or went out) after our answer.
    expectedGlare -= 1;
    return;
  }
  if (pc && pc.signalingState === 'have-local-offer') {
    await pc.setLocalDescription({ type: 'rollback' });
    needOffer = true; // offered again once the server's offer has been answered
  }
}

async function onBadSdp() {
  // The server rejected our offer; leave it so that the server's next offer can be answered.
  if (pc && pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
}

function candidateInit(msg) {
  return {
    candidate: typeof msg.candidate === 'string' ? msg.candidate : '',
    sdpMid: typeof msg.sdp_mid === 'string' ? msg.sdp_mid : null,
    sdpMLineIndex: Number.isInteger(msg.sdp_mline_index) ? msg.sdp_mline_index : null,
  };
}

async function onRemoteCandidate(msg) {
  const init = candidateInit(msg);
  if (!pc || !pc.remoteDescription) {
    pendingCandidates.push(init);
    return;
  }
  await addCandidate(init);
}

async function flushCandidates() {
  while (pc && pc.remoteDescription && pendingCandidates.length > 0) {
    await addCandidate(pendingCandidates.shift());
  }
}

async function addCandidate(init) {
  try {
    await pc.addIceCandidate(init); // candidate "" ends the candidates
  } catch (err) {
    console.warn('parlor: addIceCandidate failed', init, err);
  }
}

// ================================================================ remote tracks and stats

function onTrack(ev) {
  const stream = ev.streams[0];
  if (!stream) {
    console.warn('parlor: a remote track without a stream (no msid) was ignored');
    return;
  }
  const publisher = stream.id; // the server sets a=msid:<publisher id> <track id>
  const track = ev.track;
  trackPublisher.set(track.id, publisher);
  let combined = remoteStreams.get(publisher);
  if (!combined) {
    combined = new MediaStream();
    remoteStreams.set(publisher, combined);
  }
  // A receiver the server reuses for another publisher moves its track over.
  for (const [other, s] of remoteStreams) {
    if (other !== publisher && s.getTracks().includes(track)) {
      s.removeTrack(track);
      refreshTile(other);
    }
  }
  for (const old of combined.getTracks()) {
    if (old.kind === track.kind && old !== track) combined.removeTrack(old);
  }
  if (!combined.getTracks().includes(track)) combined.addTrack(track);

  const refresh = () => refreshTile(publisher);
  track.addEventListener('mute', refresh);
  track.addEventListener('unmute', refresh);
  track.addEventListener('ended', () => {
    const s = remoteStreams.get(publisher);
    if (s) s.removeTrack(track);
    refresh();
  });
  stream.addEventListener('removetrack', (e) => {
    if (e.track !== track) return;
    const s = remoteStreams.get(publisher);
    if (s) s.removeTrack(track);
    refresh();
  });
  if (track.kind === 'video') awaitFrame(publisher);
  if (timing.firstTrack === null && track.kind === 'video') timing.firstTrack = performance.now();
  attachStream(publisher);
}

function publisherOfStat(report, midToTrack) {
  if (report.trackIdentifier && trackPublisher.has(report.trackIdentifier)) return trackPublisher.get(report.trackIdentifier);
  const trackId = report.mid !== undefined ? midToTrack.get(report.mid) : undefined;
  return trackId ? trackPublisher.get(trackId) : undefined;
}

/** Inbound RTP statistics by publisher: {id: {audio: {bytesReceived, …}, video: {bytesReceived, framesDecoded, …}}}. */
function collectInbound(stats) {
  const midToTrack = new Map();
  if (pc) for (const t of pc.getTransceivers()) if (t.mid !== null && t.receiver.track) midToTrack.set(t.mid, t.receiver.track.id);
  const out = {};
  for (const r of stats.values()) {
    if (r.type !== 'inbound-rtp') continue;
    const kind = r.kind || r.mediaType;
    const publisher = publisherOfStat(r, midToTrack);
    if (!publisher || (kind !== 'audio' && kind !== 'video')) continue;
    const entry = (out[publisher] ??= {});
    const slot = (entry[kind] ??= { bytesReceived: 0, packetsReceived: 0, packetsLost: 0, streams: 0 });
    slot.streams += 1;
    slot.bytesReceived += r.bytesReceived || 0;
    slot.packetsReceived += r.packetsReceived || 0;
    slot.packetsLost += r.packetsLost || 0;
    if (r.lastPacketReceivedTimestamp) slot.lastPacketReceivedTimestamp = Math.max(slot.lastPacketReceivedTimestamp || 0, r.lastPacketReceivedTimestamp);
    if (kind === 'video') {
      slot.framesDecoded = (slot.framesDecoded || 0) + (r.framesDecoded || 0);
      slot.framesReceived = (slot.framesReceived || 0) + (r.framesReceived || 0);
      slot.keyFramesDecoded = (slot.keyFramesDecoded || 0) + (r.keyFramesDecoded || 0);
      if (r.frameWidth) { slot.frameWidth = r.frameWidth; slot.frameHeight = r.frameHeight; }
    } else {
      slot.audioLevel = Math.max(slot.audioLevel || 0, r.audioLevel || 0);
      slot.totalAudioEnergy = (slot.totalAudioEnergy || 0) + (r.totalAudioEnergy || 0);
    }
  }
  return out;
}

async function inboundByPublisher() {
  if (!pc) return {};
  return collectInbound(await pc.getStats());
}

/** Periodic stats: speaking indicators, and video that may be shown again. */
async function statsTick() {
  if (!pc || ended || S.view !== 'room') return;
  let stats;
  try { stats = await pc.getStats(); } catch { return; }
  const now = performance.now();
  const by = collectInbound(stats);
  lastInbound = by;
  for (const [id, entry] of Object.entries(by)) {
    if ((entry.audio?.audioLevel || 0) > SPEAKING_LEVEL) speakingUntil.set(id, now + SPEAKING_HOLD_MS);
    const waiting = awaitingFrame.get(id);
    const frames = entry.video?.framesDecoded || 0;
    if (waiting && frames > waiting.frames) frameArrived(id, waiting.token);
    if (frames > 0) noteFirstRemoteFrame();
  }
  const micOn = localStream?.getAudioTracks().some((t) => t.enabled && t.readyState === 'live');
  for (const r of stats.values()) {
    if (r.type === 'media-source' && r.kind === 'audio' && micOn && (r.audioLevel || 0) > SPEAKING_LEVEL) {
      selfSpeakingUntil = now + SPEAKING_HOLD_MS;
    }
  }
  for (const tile of ui.grid.children) {
    const id = tile.dataset.participantId;
    const speaking = id === S.myId
      ? selfSpeakingUntil > now
      : (speakingUntil.get(id) || 0) > now && S.receive[id]?.audio !== false;
    tile.classList.toggle('speaking', speaking);
  }
}

function noteFirstRemoteFrame() {
  const now = performance.now();
  if (firstRemoteFrameAt === null) firstRemoteFrameAt = now;
  if (timing.firstFrame === null && timing.welcome !== null) timing.firstFrame = now;
}

/** Hide `id`'s video until a frame newer than now has been decoded. */
function awaitFrame(id) {
  const token = {};
  awaitingFrame.set(id, { token, frames: lastInbound[id]?.video?.framesDecoded || 0 });
  const video = tileFor(id)?.querySelector('video');
  if (video && typeof video.requestVideoFrameCallback === 'function') {
    video.requestVideoFrameCallback(() => frameArrived(id, token));
  }
  refreshTile(id);
}

function frameArrived(id, token) {
  noteFirstRemoteFrame();
  if (awaitingFrame.get(id)?.token !== token) return;
  awaitingFrame.delete(id);
  refreshTile(id);
}

// ================================================================ tiles

function tileFor(id) {
  if (id === null || id === undefined) return null;
  return ui.grid.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`);
}

function createTile(id) {
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
  ui.grid.dataset.count = String(ui.grid.children.length);
  layoutGrid();
  if (id !== S.myId && 'requestVideoFrameCallback' in video) {
    // The very first picture from anyone: the join time the tests print.
    const first = () => noteFirstRemoteFrame();
    video.requestVideoFrameCallback(first);
  }
  return tile;
}

/** Columns × rows that give the largest 4:3 tiles in the stage (the CSS by tile count is the fallback). */
function layoutGrid() {
  const n = ui.grid.children.length;
  const width = ui.grid.clientWidth;
  const height = ui.grid.clientHeight;
  if (!n || !width || !height) return;
  const gap = parseFloat(getComputedStyle(ui.grid).columnGap) || 0;
  let best = { cols: 1, rows: n, size: 0 };
  for (let cols = 1; cols <= n; cols += 1) {
    const rows = Math.ceil(n / cols);
    const w = (width - gap * (cols - 1)) / cols;
    const hgt = (height - gap * (rows - 1)) / rows;
    const size = Math.min(w, (hgt * 4) / 3);
    if (size > best.size + 0.5) best = { cols, rows, size };
  }
  ui.grid.style.setProperty('--cols', String(best.cols));
  ui.grid.style.setProperty('--rows', String(best.rows));
}

if ('ResizeObserver' in window) new ResizeObserver(() => layoutGrid()).observe(ui.stage);

function localVideoLive() {
  return Boolean(localStream?.getVideoTracks().some((t) => t.readyState === 'live' && t.enabled));
}

function remoteVideoLive(id) {
  const stream = remoteStreams.get(id);
  return Boolean(stream?.getVideoTracks().some((t) => t.readyState === 'live'));
}

const VEIL = {
  asleep: ['moon', 'Asleep'],
  dead: ['grave', 'Dead'],
  watching: ['eye', 'Watching'],
  hidden: ['eyeOff', 'Not visible now'],
  novideo: ['camOff', ''],
};

function badge(text, cls) {
  return h('span', { class: `badge ${cls}`, text });
}

function refreshTile(id) {
  const p = S.participants.get(id);
  const tile = tileFor(id);
  if (!p || !tile) return;
  const self = id === S.myId;
  const r = S.receive[id];
  const dead = hasTable() && p.playing && !p.alive;
  const side = sideline(id);
  let state;
  if (self) {
    state = localVideoLive() ? 'live' : 'novideo';
  } else if (r && !r.video) {
    if (side === 'spectator') state = 'watching';
    else if (dead) state = 'dead';
    else if (phaseName() === 'night') state = 'asleep';
    else state = 'hidden';
  } else if (!remoteVideoLive(id) || awaitingFrame.has(id)) {
    state = 'novideo';
  } else {
    state = 'live';
  }
  tile.dataset.state = state;
  const gameMuted = !self && r && !r.audio && r.video; // e.g. during a defense
  tile.dataset.audio = self ? 'self' : r && !r.audio ? 'blocked' : 'allowed';

  const name = String(p.name ?? '');
  tile.querySelector('.name').textContent = name;
  tile.querySelector('.avatar').textContent = [...name][0] ? [...name][0].toUpperCase() : '?';
  const [iconName, text] = VEIL[state] || ['camOff', ''];
  const veilIcon = tile.querySelector('.veil-icon');
  if (veilIcon.dataset.icon !== iconName) {
    veilIcon.replaceChildren(icon(iconName));
    veilIcon.dataset.icon = iconName;
  }
  let veilText = text;
  if (state === 'novideo') veilText = self ? (localStream ? 'Camera off' : 'No camera') : '';
  tile.querySelector('.veil-text').textContent = veilText;

  const role = knownRole(id);
  const badges = [];
  if (self) badges.push(badge('you', 'you'));
  if (side === 'moderator') badges.push(badge('moderator', 'host'));
  else if (id === S.hostId) badges.push(badge('host', 'host'));
  if (role && role !== 'moderator' && (hasTable())) badges.push(badge(ROLE_INFO[role]?.name || role, `role role-${role}`));
  if (dead) badges.push(badge('dead', 'dead'));
  if (side === 'spectator') badges.push(badge('watching', 'watching'));
  if (!hasTable() || phaseName() === 'game_over') if (p.ready) badges.push(badge('ready', 'ready'));
  if (p.connected === false) badges.push(badge('reconnecting…', 'reconnecting'));
  if (gameMuted) badges.push(h('span', { class: 'badge muted', title: 'You cannot hear them now' }, icon('micOff', 'icon small')));
  if (self && localStream?.getAudioTracks().some((t) => !t.enabled)) badges.push(h('span', { class: 'badge muted', title: 'Your microphone is off' }, icon('micOff', 'icon small')));
  tile.querySelector('.badges').replaceChildren(...badges);

  tile.classList.toggle('dead', dead);
  tile.classList.toggle('accused', Boolean(S.phase.accused) && id === S.phase.accused && inGame());
  tile.classList.toggle('disconnected', p.connected === false);
  tile.classList.toggle('is-host', id === S.hostId);
  tile.classList.toggle('teammate', !self && role === 'mafia' && myRole() === 'mafia' && inGame());
  const video = tile.querySelector('video');
  const stream = self ? localStream : remoteStreams.get(id);
  if (stream && video.srcObject === stream && video.paused) playVideo(video);
}

/** Put the right stream on a participant's <video>: the local preview for oneself, the combined remote stream otherwise. */
function attachStream(id) {
  const tile = tileFor(id);
  if (!tile) return;
  const video = tile.querySelector('video');
  const stream = id === S.myId ? localStream : remoteStreams.get(id);
  if (stream && video.srcObject !== stream) video.srcObject = stream;
  if (stream) playVideo(video);
  refreshTile(id);
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

// ================================================================ rendering: banner, overlays, panel

function renderAll() {
  if (S.view !== 'room') return;
  document.body.dataset.phase = phaseName();
  renderBanner();
  renderNight();
  renderReveal();
  renderGameOver();
  renderInvite();
  renderRoleBox();
  renderActions();
  renderLobby();
  renderChatForm();
}

function bannerText() {
  const { phase, round, accused } = S.phase;
  const role = myRole();
  switch (phase) {
    case 'lobby':
      return ['Lobby', isHost() ? 'Start the game when everyone is here.' : `Waiting for ${nameOf(S.hostId)} to start the game.`];
    case 'role_reveal':
      return ['Roles are dealt', 'Look at your card. The first night falls soon.'];
    case 'night': {
      let sub = 'The town sleeps.';
      if (amLiving() && role === 'mafia') sub = 'Mafia: choose your victim together.';
      else if (amLiving() && role === 'doctor') sub = 'Doctor: choose someone to save.';
      else if (amLiving() && role === 'detective') sub = 'Detective: choose someone to investigate.';
      else if (isModerator()) sub = 'The night roles are choosing.';
      else if (amDead()) sub = 'You watch the night as a ghost.';
      return [`Night ${round}`, sub];
    }
    case 'dawn':
      return [`Dawn ${round}`, S.nightDeaths.length ? `${S.nightDeaths.map(nameOf).join(', ')} did not survive the night.` : 'Nobody died tonight.'];
    case 'day':
      return [`Day ${round}`, 'Talk it over. Call the vote when you are ready.'];
    case 'nomination':
      return ['Nomination', 'Vote to put someone on trial, or abstain.'];
    case 'defense':
      return ['Defense', accused === S.myId ? 'You are on trial: make your case.' : `${nameOf(accused)} is on trial and speaks alone.`];
    case 'judgment':
      return ['Judgment', `Is ${nameOf(accused)} guilty?`];
    case 'game_over':
      return ['Game over', S.gameOver ? (S.gameOver.winner === 'town' ? 'The town wins.' : 'The mafia win.') : ''];
    default:
      return [PHASE_NAME[phase] || phase, ''];
  }
}

function renderBanner() {
  let [title, sub] = bannerText();
  if (amSpectator()) sub = `You are watching this game. ${sub}`;
  ui.bannerTitle.textContent = title;
  ui.bannerSub.textContent = sub;
  ui.banner.dataset.phase = phaseName();
  tickCountdown();
}

/** The countdown runs on the server's clock: ends_at (unix ms) against Date.now() + offset from ping/pong. */
function tickCountdown() {
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
  const gameoverClock = ui.gameover.querySelector('.back-in');
  if (gameoverClock) gameoverClock.textContent = `Back to the lobby in ${formatClock(left)}`;
}

setInterval(tickCountdown, 250);

/** Night overlay: for whoever receives nobody at night. */
function renderNight() {
  const others = [...S.participants.keys()].filter((id) => id !== S.myId);
  const receivesNobody = others.every((id) => {
    const r = S.receive[id];
    return r && !r.audio && !r.video;
  });
  const show = phaseName() === 'night' && receivesNobody && !isModerator();
  ui.nightOverlay.hidden = !show;
  ui.stage.classList.toggle('covered', show);
  if (!show) return;
  ui.nightTitle.textContent = `Night ${S.phase.round}`;
  const role = myRole();
  let text = 'The town sleeps. You cannot see or hear anyone until dawn, and nobody in the town can see or hear you.';
  if (amSpectator()) text = 'The town sleeps. Spectators see and hear nobody until dawn.';
  else if (amLiving() && (role === 'doctor' || role === 'detective')) {
    const act = role === 'doctor' ? 'save' : 'investigate';
    text = S.sent[phaseKey()] !== undefined
      ? 'The town sleeps. Your choice is made; wait for dawn.'
      : `The town sleeps, but you are awake: choose whom to ${act} in the panel.`;
  }
  ui.nightText.textContent = text;
}

function roleCard(info, big = false) {
  const role = info.role;
  const about = ROLE_INFO[role] || { name: role, text: '' };
  const card = h('div', { class: `role-card role-${role}${big ? ' big' : ''}`, dataset: { role, testid: 'role-card' } },
    h('div', { class: 'role-kicker', text: 'Your role' }),
    h('div', { class: 'role-name', text: about.name }),
    h('p', { class: 'role-text', text: about.text }));
  if (role === 'mafia') {
    const mates = info.teammates || [];
    card.append(h('p', { class: 'teammates', dataset: { teammates: mates.join(' ') } },
      mates.length ? `Your fellow mafia: ${mates.map(nameOf).join(', ')}.` : 'You are the only mafioso.'));
  }
  if (role === 'moderator' && info.roles) {
    card.append(h('ul', { class: 'all-roles' },
      Object.entries(info.roles).map(([id, r]) => h('li', { dataset: { id, role: r } },
        h('span', { class: 'who', text: nameOf(id) }),
        h('span', { class: `role-tag role-${r}`, text: ROLE_INFO[r]?.name || r })))));
  }
  if (role === 'detective' && S.investigations.length > 0) {
    card.append(h('ul', { class: 'findings' },
      S.investigations.map((f) => h('li', { class: f.is_mafia ? 'found-mafia' : 'found-clean', dataset: { target: f.target, mafia: f.is_mafia } },
        `Night ${f.round}: ${nameOf(f.target)} ${f.is_mafia ? 'is mafia' : 'is not mafia'}.`))));
  }
  return card;
}

function renderReveal() {
  const show = phaseName() === 'role_reveal' && S.role && S.revealOpen;
  ui.reveal.hidden = !show;
  if (!show) return;
  ui.reveal.replaceChildren(h('div', { class: 'reveal-wrap' },
    roleCard(S.role, true),
    h('button', { type: 'button', class: 'small', text: 'Hide', onclick: () => { S.revealOpen = false; renderReveal(); } })));
}

function renderRoleBox() {
  const show = hasTable() && Boolean(S.role);
  ui.roleBox.hidden = !show;
  if (!show) return;
  const parts = [roleCard(S.role)];
  if (amDead() && inGame()) parts.push(h('p', { class: 'status-line dead-line', text: 'You are dead. You can watch everyone and talk in the Ghosts chat.' }));
  ui.roleBox.replaceChildren(...parts);
}

function renderInvite() {
  // Shown by itself to a host still waiting for players, unless toggled either way.
  const show = S.inviteOpen ?? (phaseName() === 'lobby' && isHost() && S.participants.size < MIN_PLAYERS);
  ui.invite.hidden = !show;
  ui.inviteToggle.setAttribute('aria-expanded', String(show));
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
    toast('Invite link copied.', 'info');
  } catch {
    ui.inviteLink.select();
    const ok = document.execCommand && document.execCommand('copy');
    toast(ok ? 'Invite link copied.' : `Copy this link: ${link}`, 'info');
  }
});

// ---- actions: votes and night actions, only when and for whom they are valid

function targetButtons(ids, attr, onPick, chosen) {
  return h('div', { class: 'targets' }, ids.map((id) => h('button', {
    type: 'button',
    class: `target${chosen === id ? ' chosen' : ''}`,
    [`data-${attr}`]: id,
    disabled: chosen !== undefined,
    text: nameOf(id),
    onclick: () => onPick(id),
  })));
}

function sendOnce(msg, remember) {
  if (S.sent[phaseKey()] !== undefined) return;
  if (!send(msg)) { toast('Not connected.'); return; }
  S.sent[phaseKey()] = remember;
  renderAll();
}

function tallyView() {
  const t = S.tally;
  if (!t) return null;
  const votes = t.votes && typeof t.votes === 'object' ? t.votes : {};
  if (t.kind === 'call_vote') {
    const callers = Object.keys(votes);
    return h('div', { class: 'tally', dataset: { kind: t.kind } },
      h('p', { class: 'tally-head', text: `${callers.length} of ${t.needed ?? '?'} needed called the vote` }),
      callers.length ? h('p', { class: 'hint', text: callers.map(nameOf).join(', ') }) : null);
  }
  if (t.kind === 'nomination') {
    const counts = new Map();
    let abstain = 0;
    for (const target of Object.values(votes)) {
      if (target === null) abstain += 1;
      else counts.set(target, (counts.get(target) || 0) + 1);
    }
    const missing = Math.max(0, living().length - Object.keys(votes).length);
    const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    return h('div', { class: 'tally', dataset: { kind: t.kind } },
      h('p', { class: 'tally-head', text: `${Object.keys(votes).length} of ${living().length} voted` }),
      h('ul', { class: 'tally-rows' },
        rows.map(([target, n]) => h('li', { dataset: { target, count: n } },
          h('span', { class: 'who', text: nameOf(target) }),
          h('span', { class: 'bar', style: `--n:${n}` }),
          h('span', { class: 'count', text: String(n) }),
          h('span', { class: 'voters hint', text: Object.entries(votes).filter(([, v]) => v === target).map(([voter]) => nameOf(voter)).join(', ') }))),
        h('li', { class: 'no-trial', dataset: { target: '', count: abstain + missing } },
          h('span', { class: 'who', text: 'No trial' }),
          h('span', { class: 'bar', style: `--n:${abstain + missing}` }),
          h('span', { class: 'count', text: String(abstain + missing) }),
          h('span', { class: 'voters hint', text: `${abstain} abstained, ${missing} not voted` }))));
  }
  if (t.kind === 'judgment') {
    const guilty = Object.entries(votes).filter(([, v]) => v === 'guilty').map(([id]) => id);
    const innocent = Object.entries(votes).filter(([, v]) => v === 'innocent').map(([id]) => id);
    return h('div', { class: 'tally', dataset: { kind: t.kind } },
      h('ul', { class: 'tally-rows' },
        h('li', { class: 'guilty', dataset: { count: guilty.length } },
          h('span', { class: 'who', text: 'Guilty' }), h('span', { class: 'bar', style: `--n:${guilty.length}` }),
          h('span', { class: 'count', text: String(guilty.length) }), h('span', { class: 'voters hint', text: guilty.map(nameOf).join(', ') })),
        h('li', { class: 'innocent', dataset: { count: innocent.length } },
          h('span', { class: 'who', text: 'Innocent' }), h('span', { class: 'bar', style: `--n:${innocent.length}` }),
          h('span', { class: 'count', text: String(innocent.length) }), h('span', { class: 'voters hint', text: innocent.map(nameOf).join(', ') }))));
  }
  return null;
}

function nightActionView() {
  const role = myRole();
  const round = S.phase.round;
  const chosen = S.sent[phaseKey()];
  const pick = (id) => {
    if (role === 'doctor') S.saves[round] = id;
    sendOnce({ type: 'night_action', target: id }, id);
  };
  const alive = living();
  let title;
  let ids;
  if (role === 'mafia') {
    const mates = new Set([S.myId, ...(S.role.teammates || [])]);
    title = 'Whom do the mafia kill tonight?';
    ids = alive.filter((id) => !mates.has(id));
  } else if (role === 'doctor') {
    title = 'Whom do you save tonight?';
    const last = S.saves[round - 1];
    ids = alive.filter((id) => id !== last);
  } else if (role === 'detective') {
    title = 'Whom do you investigate tonight?';
    ids = alive.filter((id) => id !== S.myId);
  } else {
    return [h('p', { class: 'status-line', text: 'You are asleep. Nothing to do until dawn.' })];
  }
  const parts = [h('h2', { text: title }), targetButtons(ids, 'target', pick, chosen)];
  if (role === 'doctor' && S.saves[round - 1] && alive.includes(S.saves[round - 1])) {
    parts.push(h('p', { class: 'hint', text: `You saved ${nameOf(S.saves[round - 1])} last night, so not again tonight.` }));
  }
  if (chosen !== undefined) {
    const verb = role === 'mafia' ? 'You chose' : role === 'doctor' ? 'You protect' : 'You investigate';
    parts.push(h('p', { class: 'status-line done', text: `${verb} ${nameOf(chosen)}. One action per night: it is final.` }));
    if (role === 'detective') {
      const found = S.investigations.find((f) => f.round === round && f.target === chosen);
      if (found) parts.push(h('p', { class: `finding ${found.is_mafia ? 'found-mafia' : 'found-clean'}`, text: `${nameOf(found.target)} ${found.is_mafia ? 'IS mafia.' : 'is not mafia.'}` }));
    }
  }
  return parts;
}

function renderActions() {
  const phase = phaseName();
  if (!inGame()) { ui.actionBox.hidden = true; return; }
  const living_ = amLiving();
  const chosen = S.sent[phaseKey()];
  const votes = S.tally?.votes || {};
  let parts = [];
  switch (phase) {
    case 'role_reveal':
      parts = [h('p', { class: 'status-line', text: 'Get ready: the first night falls soon.' })];
      break;
    case 'night':
      if (living_) parts = nightActionView();
      else if (isModerator()) parts = [h('p', { class: 'status-line', text: 'The mafia, the doctor and the detective are choosing.' })];
      else if (amDead()) parts = [h('p', { class: 'status-line', text: 'You watch the night as a ghost.' })];
      else parts = [h('p', { class: 'status-line', text: 'The town sleeps. You will see everyone again at dawn.' })];
      break;
    case 'dawn':
      parts = [h('p', { class: 'status-line', text: bannerText()[1] })];
      break;
    case 'day': {
      if (living_) {
        const called = Boolean(votes[S.myId]) || chosen !== undefined;
        parts.push(h('button', {
          type: 'button', id: 'call-vote', class: 'primary', disabled: called,
          text: called ? 'You called the vote' : 'Call the vote',
          onclick: () => sendOnce({ type: 'call_vote' }, true),
        }));
      }
      parts.push(tallyView() || h('p', { class: 'hint', text: 'When a majority of the living call the vote, the nomination starts.' }));
      break;
    }
    case 'nomination': {
      if (living_) {
        const mine = S.myId in votes ? votes[S.myId] : chosen;
        const voted = mine !== undefined;
        parts.push(h('h2', { text: 'Whom do you put on trial?' }));
        parts.push(h('div', { class: 'targets' },
          living().filter((id) => id !== S.myId).map((id) => h('button', {
            type: 'button', class: `target${mine === id ? ' chosen' : ''}`, dataset: { voteTarget: id }, disabled: voted,
            text: nameOf(id), onclick: () => sendOnce({ type: 'vote', target: id }, id),
          })),
          h('button', {
            type: 'button', class: `target abstain${voted && mine === null ? ' chosen' : ''}`, dataset: { voteTarget: '' }, disabled: voted,
            text: 'No trial (abstain)', onclick: () => sendOnce({ type: 'vote', target: null }, null),
          })));
        if (voted) parts.push(h('p', { class: 'status-line done', text: mine === null ? 'You abstained.' : `You voted for ${nameOf(mine)}.` }));
      }
      parts.push(tallyView());
      break;
    }
    case 'defense':
      parts = [h('p', { class: 'status-line', text: S.phase.accused === S.myId ? 'You are on trial. Everyone is listening: make your case.' : `${nameOf(S.phase.accused)} is on trial. Only they can be heard now.` })];
      break;
    case 'judgment': {
      const juror = living_ && S.phase.accused !== S.myId;
      parts.push(h('h2', { text: `Is ${nameOf(S.phase.accused)} guilty?` }));
      if (juror) {
        const mine = votes[S.myId] ?? chosen;
        const voted = mine !== undefined;
        parts.push(h('div', { class: 'verdicts' },
          h('button', { type: 'button', id: 'verdict-guilty', class: `verdict guilty${mine === 'guilty' ? ' chosen' : ''}`, disabled: voted, text: 'Guilty', onclick: () => sendOnce({ type: 'vote', verdict: 'guilty' }, 'guilty') }),
          h('button', { type: 'button', id: 'verdict-innocent', class: `verdict innocent${mine === 'innocent' ? ' chosen' : ''}`, disabled: voted, text: 'Innocent', onclick: () => sendOnce({ type: 'vote', verdict: 'innocent' }, 'innocent') })));
        if (voted) parts.push(h('p', { class: 'status-line done', text: `You voted ${mine}.` }));
      } else if (S.phase.accused === S.myId) {
        parts.push(h('p', { class: 'status-line', text: 'The town decides your fate.' }));
      }
      parts.push(tallyView());
      break;
    }
    default:
      break;
  }
  if (amSpectator()) parts.unshift(h('p', { class: 'status-line spectator-line', text: 'You joined during a game, so you are watching. You will play in the next one.' }));
  ui.actionBox.dataset.phase = phase;
  ui.actionBox.replaceChildren(...parts.filter(Boolean));
  ui.actionBox.hidden = ui.actionBox.childElementCount === 0;
}

// ---- game over

function renderGameOver() {
  const show = phaseName() === 'game_over' && Boolean(S.gameOver) && S.gameOverOpen;
  ui.gameover.hidden = !show;
  if (!show) return;
  const { winner, roles } = S.gameOver;
  const order = [...new Set([...S.participants.keys(), ...Object.keys(roles)])].filter((id) => roles[id]);
  const mine = roles[S.myId];
  let verdict = '';
  if (mine && mine !== 'moderator') verdict = (mine === 'mafia') === (winner === 'mafia') ? 'You won!' : 'You lost.';
  const fate = (id) => {
    if (!S.participants.has(id)) return 'left';
    const p = S.participants.get(id);
    if (p.alive) return 'survived';
    return S.causes[id] === 'executed' ? 'executed' : S.causes[id] === 'killed' ? 'killed' : S.causes[id] === 'left' ? 'left' : 'dead';
  };
  const actions = [h('button', { type: 'button', class: 'small', text: 'Close', onclick: () => { S.gameOverOpen = false; renderGameOver(); } })];
  if (isHost()) actions.unshift(h('button', { type: 'button', id: 'play-again', class: 'primary', text: 'Play again', onclick: startGameFromUi }));
  ui.gameover.replaceChildren(h('div', { class: `gameover-card winner-${winner}`, dataset: { winner } },
    h('div', { class: 'role-kicker', text: 'Game over' }),
    h('h2', { text: winner === 'town' ? 'The town wins' : 'The mafia win' }),
    h('p', { class: 'gameover-why', text: winner === 'town' ? 'Every mafioso has been eliminated.' : 'The mafia now match the rest of the town.' }),
    verdict ? h('p', { class: 'gameover-you', text: verdict }) : null,
    h('ul', { class: 'reveal-list' }, order.map((id) => h('li', { dataset: { id, role: roles[id], fate: fate(id) } },
      h('span', { class: 'who', text: nameOf(id) + (id === S.myId ? ' (you)' : '') }),
      h('span', { class: `role-tag role-${roles[id]}`, text: ROLE_INFO[roles[id]]?.name || roles[id] }),
      h('span', { class: 'fate', text: fate(id) })))),
    h('p', { class: 'back-in hint' }),
    h('div', { class: 'row end' }, actions)));
  tickCountdown();
}

// ---- lobby: ready states, the host's settings and start button

function renderLobby() {
  const phase = phaseName();
  const show = phase === 'lobby' || phase === 'game_over';
  ui.lobbyBox.hidden = !show;
  if (!show) return;
  ui.lobbyTitle.textContent = phase === 'lobby' ? 'Lobby' : 'Next game';
  const self = me();
  const ready = Boolean(self?.ready);
  ui.readyToggle.textContent = ready ? 'Ready ✓' : "I'm ready";
  ui.readyToggle.setAttribute('aria-pressed', String(ready));
  ui.readyToggle.classList.toggle('on', ready);

  const people = [...S.participants.values()];
  ui.roster.replaceChildren(...people.map((p) => h('li', { dataset: { id: p.id, ready: Boolean(p.ready) }, class: p.ready ? 'is-ready' : '' },
    h('span', { class: 'tick', 'aria-hidden': 'true', text: p.ready ? '✓' : '·' }),
    h('span', { class: 'who', text: p.name }),
    p.id === S.myId ? badge('you', 'you') : null,
    p.id === S.hostId ? badge('host', 'host') : null,
    h('span', { class: 'ready-text hint', text: p.ready ? 'ready' : 'not ready' }),
    isHost() && p.id !== S.myId ? h('button', {
      type: 'button', class: 'small kick', title: `Remove ${p.name} from the room`, text: 'Remove',
      onclick: () => { if (confirm(`Remove ${p.name} from the room?`)) send({ type: 'kick', id: p.id }); },
    }) : null)));

  ui.lockLine.hidden = !(isHost() || S.locked);
  ui.lockText.textContent = S.locked ? 'Locked: nobody new can join.' : 'Open: anyone with the link can join.';
  ui.lockToggle.hidden = !isHost();
  ui.lockToggle.textContent = S.locked ? 'Open the room' : 'Lock the room';
  ui.lockToggle.setAttribute('aria-pressed', String(S.locked));

  const readyCount = people.filter((p) => p.ready).length;
  if (isHost()) {
    const settings = ui.settingsForm.hidden ? loadSettings() : readSettings('lobby');
    const players = people.length - (settings.host_plays === false ? 1 : 0);
    const mode = settings.host_plays === false ? ' (you moderate)' : '';
    let wait = `${players} player${players === 1 ? '' : 's'}${mode}, ${readyCount} ready. A game needs ${MIN_PLAYERS} to ${MAX_PLAYERS} players.`;
    if (players < MIN_PLAYERS) wait += ` Invite ${MIN_PLAYERS - players} more.`;
    ui.lobbyWait.textContent = wait;
    if (ui.settingsForm.hidden) {
      buildSettingsFields(ui.lobbySettings, 'lobby', settings, { foldLengths: false });
      ui.settingsForm.hidden = false;
    }
    const problem = settingsProblem(settings);
    $('settings-summary').textContent = problem ? `— ${problem}` : `— ${settingsSummary(settings)}`;
    ui.startGame.textContent = phase === 'game_over' ? 'Start the next game' : 'Start game';
  } else {
    ui.settingsForm.hidden = true;
    const who = S.hostId ? nameOf(S.hostId) : 'the host (who has not joined yet)';
    ui.lobbyWait.textContent = `${readyCount} of ${people.length} ready. Waiting for ${who} to start${phase === 'game_over' ? ' the next game' : ''}.`;
  }
}

ui.lockToggle.addEventListener('click', () => {
  send({ type: 'lock', locked: !S.locked });
});

ui.readyToggle.addEventListener('click', () => {
  send({ type: 'ready', ready: !me()?.ready });
});

ui.settingsForm.addEventListener('change', () => {
  const s = readSettings('lobby');
  if (!settingsProblem(s)) saveSettings(s);
  renderLobby();
});

function startGameFromUi() {
  const settings = ui.settingsForm.hidden ? loadSettings() : readSettings('lobby');
  const problem = settingsProblem(settings);
  if (problem) { toast(problem); return; }
  saveSettings(settings);
  send({ type: 'start_game', settings: settingsToWire(settings) });
}

ui.settingsForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  startGameFromUi();
});

// ================================================================ chat

/** The channels this client may write now (DESIGN.md §4, Chat). */
function writableChannels() {
  if (!inGame()) return ['all'];
  if (isModerator()) return ['all'];
  const self = me();
  if (!self || !self.playing) return [];
  if (!self.alive) return ['dead'];
  const out = [];
  if (phaseName() !== 'night') out.push('all');
  if (myRole() === 'mafia') out.push('mafia');
  return out;
}

function renderChatForm() {
  const channels = writableChannels();
  const current = ui.chatChannel.value;
  const have = [...ui.chatChannel.options].map((o) => o.value).join(',');
  if (have !== channels.join(',')) {
    ui.chatChannel.replaceChildren(...channels.map((c) => h('option', { value: c, text: CHANNEL_NAME[c] })));
    // At night the mafia talk among themselves; otherwise keep what was chosen.
    if (channels.includes(current)) ui.chatChannel.value = current;
    else if (channels.length) ui.chatChannel.value = channels[0];
  }
  ui.chatChannel.hidden = channels.length <= 1 && channels[0] === 'all';
  ui.chatForm.hidden = channels.length === 0;
  ui.chatForm.dataset.channels = channels.join(' ');
  ui.chatInput.placeholder = channels.length === 1 ? `Message ${CHANNEL_NAME[channels[0]].toLowerCase()}` : 'Say something';
  let closed = '';
  if (channels.length === 0) {
    if (amSpectator()) closed = 'Spectators can read the public chat but not write during a game.';
    else if (phaseName() === 'night') closed = 'No talking at night: the chat opens again at dawn.';
    else closed = 'You cannot write right now.';
  }
  ui.chatClosed.textContent = closed;
  ui.chatClosed.hidden = !closed;
}

function appendChatItem(item) {
  S.chat.push(item);
  if (S.chat.length > CHAT_KEEP) S.chat.shift();
  const atBottom = ui.chatLog.scrollHeight - ui.chatLog.scrollTop - ui.chatLog.clientHeight < 40;
  let li;
  if (item.system) {
    li = h('li', { class: 'sys', text: item.text });
  } else {
    li = h('li', { class: `msg ch-${item.channel}${item.from === S.myId ? ' mine' : ''}`, dataset: { channel: item.channel, from: item.from } },
      h('span', { class: `ch ch-${item.channel}`, text: CHANNEL_NAME[item.channel] || item.channel }),
      h('span', { class: 'from', text: nameOf(item.from) }),
      h('span', { class: 'time hint', text: item.at ? timeOfDay(item.at) : '' }),
      h('span', { class: 'text', text: item.text }));
  }
  ui.chatLog.append(li);
  while (ui.chatLog.children.length > CHAT_KEEP) ui.chatLog.firstElementChild.remove();
  if (atBottom) ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function systemLine(text) {
  appendChatItem({ system: true, text, at: serverNow() });
}

function onChat(msg) {
  appendChatItem({ from: String(msg.from), channel: String(msg.channel), text: String(msg.text ?? ''), at: Number(msg.at) || null });
}

ui.chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text) return;
  if ([...text].length > CHAT_MAX) { toast(`Messages can be at most ${CHAT_MAX} characters.`); return; }
  const channel = ui.chatChannel.value || writableChannels()[0];
  if (!channel) return;
  if (send({ type: 'chat', channel, text })) ui.chatInput.value = '';
});

// ================================================================ announcements

let announceTimer = null;

function announce(title, text, kind = '') {
  // replaceChildren would print a null child as the text "null".
  ui.announce.replaceChildren(...[h('strong', { text: title }), text ? h('span', { text }) : null].filter(Boolean));
  ui.announce.className = `announce ${kind}`;
  ui.announce.hidden = false;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { ui.announce.hidden = true; }, ANNOUNCE_MS);
}

ui.announce.addEventListener('click', () => { ui.announce.hidden = true; });

// ================================================================ controls

function toggleTrack(kind, button, onText, offText) {
  if (!localStream) return;
  const tracks = kind === 'audio' ? localStream.getAudioTracks() : localStream.getVideoTracks();
  if (tracks.length === 0) return;
  const enable = !tracks[0].enabled;
  for (const t of tracks) t.enabled = enable;
  button.textContent = enable ? onText : offText;
  button.setAttribute('aria-pressed', String(!enable));
  refreshTile(S.myId);
}

ui.mic.addEventListener('click', () => toggleTrack('audio', ui.mic, 'Mute mic', 'Unmute mic'));
ui.cam.addEventListener('click', () => toggleTrack('video', ui.cam, 'Stop camera', 'Start camera'));

ui.leave.addEventListener('click', () => {
  forgetSeat();
  send({ type: 'leave' });
  endCall('You left the room.');
});

// A reload or a closed tab is not a departure: the seat waits for the server's grace period, and a
// reload resumes it with the token in sessionStorage. Only the Leave button leaves.

function endCall(text) {
  ended = true;
  stopReconnecting();
  clearTimeout(iceTimer);
  stopPing();
  const sock = ws;
  ws = null;
  if (sock && sock.readyState <= WebSocket.OPEN) sock.close(1000);
  if (pc) pc.close();
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  for (const video of ui.grid.querySelectorAll('video')) video.srcObject = null;
  ui.controls.hidden = true;
  ui.banner.hidden = true;
  setStatus('disconnected');
  const card = h('div', { class: 'card ended' },
    h('h2', { text }),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'primary', text: 'Join again', onclick: () => location.reload() }),
      h('a', { class: 'button', href: '/', text: 'Home' })));
  ui.stage.replaceChildren(card);
  $('panel').hidden = true;
}

// ================================================================ test and debugging surface

window.parlor = {
  get pc() { return pc; },
  get id() { return S.myId; },
  get room() { return S.room; },
  get host() { return S.hostId; },
  get ws() { return ws; },
  get localStream() { return localStream; },
  get limits() { return S.limits; },
  get phase() { return S.phase; },
  get phaseArrival() { return S.phaseArrival; },
  get role() { return S.role; },
  get receive() { return S.receive; },
  get tally() { return S.tally; },
  get gameOver() { return S.gameOver; },
  get investigations() { return S.investigations; },
  get chat() { return S.chat; },
  get errors() { return S.errors; },
  get participants() { return Object.fromEntries(S.participants); },
  get firstRemoteFrameAt() { return firstRemoteFrameAt; },
  get reconnecting() { return reconnect !== null; },
  timing,
  phaseLog: S.phaseLog,
  remoteStreams,
  clock,
  events,
  serverNow,
  inboundByPublisher,
};

// ================================================================ start

function start() {
  const room = roomFromLocation();
  if (room === null) { showHome(); return; }
  if (!CODE_RE.test(room)) {
    showHome(`“${room.slice(0, 40)}” is not a room code: use 1–32 letters, digits or dashes.`);
    return;
  }
  S.room = room;
  const intent = takeIntent(room);
  const urlName = cleanName(params.get('name'));
  const name = urlName && !nameProblem(urlName) ? urlName : intent?.name && !nameProblem(intent.name) ? intent.name : null;
  mediaPromise = acquireMedia();
  setInterval(statsTick, STATS_INTERVAL_MS);
  const seat = loadSeat(room);
  if (seat && (!intent || intent.name === seat.name)) {
    // A reload: take the seat back.
    showView('room');
    ui.banner.hidden = true;
    connect(room, seat.name, seat.token);
    return;
  }
  if (name) {
    // Straight in: the room page shows up as soon as the server welcomes us.
    showView('room');
    ui.banner.hidden = true;
    connect(room, name);
    return;
  }
  showPrejoin(room);
}

start();
