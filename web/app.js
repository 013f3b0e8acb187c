// parlor — the browser client's entry module: the session (WebSocket, join, resume, reconnection) and the
// dispatch of server messages. Plain ES modules, no build step, no dependencies; the binary embeds web/ as
// it is (build.rs). Protocol: docs/PROTOCOL.md. The modules:
//   core/   the call: socket, clock, media and negotiation, tiles, chat, room page (banner, lobby,
//           settings form), home page, strings (core/i18n.js with the tables in i18n/)
//   games/  one module per room kind, named in games/index.js; the core hands each game the messages it
//           does not know, and the game draws its own panel, overlays and settings.
//
// Views: `/` is the home page (create a room, or join one by code); `/r/CODE` (and `/?room=CODE[&name=NAME]`)
// is the room. URL flags for tests and odd devices: `&name=` skips the name prompt, `&video=WxH` and `&fps=N`
// set the camera constraints, `&media=none|audio|video` limits what is captured (none = receive only).
// `/r/CODE/tv` is the room's TV view: it joins receive-only under a name of its own ("TV" and a random
// suffix) and shows what a shared screen needs (the game module draws it; the core hides the controls).

import { $, addIcons, params, sentence, storageGet, storageSet } from './core/dom.js';
import { addStrings, applyStatic, language, mountSwitch, onLanguageChange, t } from './core/i18n.js';
import { clock, onPong, PONG_SILENCE_MS, serverNow, startPing, stopPing } from './core/clock.js';
import { link, send, wsUrl, redirectTarget, MAX_REDIRECTS } from './core/socket.js';
import { CODE_RE, current, game, inGame, nameOf, S } from './core/state.js';
import { setStatus, showView, toast, ui } from './core/ui.js';
import {
  acquireMedia, enqueue, startCamera, inboundByPublisher, M, onBadSdp, onGlare, onRemoteAnswer, onRemoteCandidate, onRemoteOffer,
  refreshStatus, remoteStreams, renderMediaNotice, resyncMedia, setupMedia, showSpeaking, startStats, stopMedia, timing,
} from './core/media.js';
import { attachStream, awaitFrame, createTile, lastLayout, refreshTile, refreshTiles, removeTile, resetLayout, tileFor } from './core/tiles.js';
import { onChat, redrawChat, systemLine } from './core/chat.js';
import { inviteLink, rebuildSettings, renderAll, resetLobbySettings } from './core/room.js';
import {
  cleanName, HOST_KEY, hostTokenFor, nameProblem, onJoinSubmit, redrawHome, redrawPrejoin, roomFromLocation,
  showHome, showPrejoin, takeIntent, tvFromLocation,
} from './core/home.js';
import { DEFAULT_KIND, GAMES } from './games/index.js';

const SEAT_KEY = 'parlor.seat'; // sessionStorage: {room, name, token} — this tab's seat, for resume after a reload
/** sessionStorage: {room, notice} while this tab's seat has no camera in a kind that joins without one. */
const NO_CAMERA_KEY = 'parlor.no_camera';
/** Reconnection back-off (ms) after the WebSocket drops; the last step repeats until the seat is resumed or gone. */
const RECONNECT_STEPS_MS = [250, 500, 1000, 2000, 4000, 5000];
/** Give up reconnecting after this long without a welcome (the server's grace period is 30 s by default). */
const RECONNECT_GIVE_UP_MS = 45000;

let reconnect = null; // {attempt, since, timer} while the WebSocket is being re-established
/** True from an automatic rejoin (the seat expired while the page was in the call) until its welcome. */
let rejoining = false;

/** Every server message is re-dispatched here after it was handled (type = message type; detail = message). */
const events = new EventTarget();

// Every game's strings and icons are known from the start (the home page lists the games).
for (const module of Object.values(GAMES)) {
  addStrings(module.strings);
  addIcons(module.icons);
}

// ================================================================ the room's kind: which game module draws it

/** A kind this client has no module for still gets the call, the lobby and the chat. */
const generic = new Map();

function moduleFor(kind) {
  if (GAMES[kind]) return GAMES[kind];
  if (!generic.has(kind)) generic.set(kind, { kind, nameKey: kind });
  return generic.get(kind);
}

/** Make `kind`'s module the current one: the old one takes its elements away, the new one adds its own. */
function useKind(kind) {
  const next = moduleFor(kind);
  S.kind = kind;
  if (current.game === next) return;
  current.game?.unmount?.();
  current.game = next;
  next.mount?.();
  next.reset?.();
  resetLobbySettings();
  // Tests and debugging read the game's state on window.parlor too (e.g. `parlor.role` in Mafia).
  for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(next.surface || {}))) {
    Object.defineProperty(parlor, key, { ...descriptor, configurable: true, enumerable: true });
  }
}

// ================================================================ WebSocket

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
  link.ended = false;
  link.join = { room, name, resume };
  S.room = room;
  S.name = name;
  setStatus(reconnect ? t('status.reconnecting') : t('status.connecting'));
  const sock = new WebSocket(wsUrl());
  link.ws = sock;
  sock.addEventListener('open', () => {
    if (sock !== link.ws) return;
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
    if (sock !== link.ws || typeof ev.data !== 'string') return;
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
    if (sock !== link.ws) return;
    onSocketClosed(ev);
  });
}

/** Messages that do not change what the room page shows. */
// Messages whose handlers draw what they change themselves: no full redraw (a `speaking` every 250 ms
// would rebuild the game's buttons under the user's finger).
const QUIET = new Set(['offer', 'answer', 'candidate', 'pong', 'chat', 'error', 'speaking']);

function handleMessage(msg) {
  switch (msg.type) {
    case 'welcome': onWelcome(msg); break;
    case 'participant_joined': onParticipantJoined(msg.participant); break;
    case 'participant_updated': if (msg.participant) upsertParticipant(msg.participant); break;
    case 'participant_left': onParticipantLeft(msg.id, msg.reason); break;
    case 'host_changed': onHostChanged(msg.host); break;
    case 'kind_changed': onKindChanged(msg.kind, msg.limits); break;
    case 'locked': onLocked(msg.locked === true); break;
    case 'offer': if (typeof msg.sdp === 'string') enqueue(() => onRemoteOffer(msg.sdp)); break;
    case 'answer': if (typeof msg.sdp === 'string') enqueue(() => onRemoteAnswer(msg.sdp)); break;
    case 'candidate': enqueue(() => onRemoteCandidate(msg)); break;
    case 'pong': onPong(msg); refreshStatus(); break;
    case 'phase': onPhase(msg); break;
    case 'media_state': onMediaState(msg.receive); break;
    case 'speaking': onSpeaking(msg.ids); break;
    case 'chat': onChat(msg); break;
    case 'error': onError(msg); break;
    case 'redirect': onRedirect(msg.url); break;
    // Everything else belongs to the room's game (role, vote_update, … in Mafia); newer servers may add types.
    default: game()?.onMessage?.(msg); break;
  }
  if (S.view === 'room' && !QUIET.has(msg.type) && !game()?.quietTypes?.includes(msg.type)) renderAll();
}

const JOIN_ERRORS = new Set([
  'name_taken', 'room_full', 'room_not_found', 'room_locked', 'bad_pin', 'bad_token', 'room_closed', 'server_full',
  'too_many_rooms', 'bad_field',
]);

/** An `error` in plain words. */
function errorText(code, message) {
  // A game's own words for an error it knows; '' when it handled the error without a word.
  const fromGame = game()?.errorText?.(code);
  if (typeof fromGame === 'string') return fromGame;
  switch (code) {
    case 'not_host': case 'rate_limited': case 'kicked': case 'replaced': case 'server_shutdown': case 'too_large':
      return t(`error.${code}`);
    case 'wrong_phase': return t('error.wrong_phase', { message });
    case 'not_allowed': return t('error.not_allowed', { message: sentence(message) });
    case 'bad_field': return t('error.bad_field_action', { message });
    default: return JOIN_ERRORS.has(code) ? t(`error.${code}`) : sentence(message || code);
  }
}

function onError(msg) {
  const code = String(msg.code ?? 'error');
  const message = msg.message ? String(msg.message) : code;
  console.warn(`parlor: server error ${code}: ${message}`);
  S.errors.push({ code, message, at: Date.now() });
  if (code === 'resume_expired') {
    // The seat is gone: the node that held the room died or restarted (the room has no seats
    // now), or the page was away longer than the grace period.
    forgetSeat();
    stopReconnecting();
    if (S.myId) {
      rejoinFresh();
      return;
    }
  }
  if (reconnect && S.myId && JOIN_ERRORS.has(code)) {
    // The seat could not be taken back (for example the room is locked or full now).
    forgetSeat();
    endCall(`error.${code}`);
    return;
  }
  // A stale host token (expired, or the server restarted): forget it, so the next join goes in as a player.
  if (code === 'bad_token') storageSet(sessionStorage, HOST_KEY, null);
  if (!S.myId) {
    // The join failed (an automatic rejoin too: its one try is spent): nothing was created on the
    // server. Start over with a fresh socket.
    rejoining = false;
    const sock = link.ws;
    link.ws = null;
    if (sock) sock.close(1000);
    setStatus('');
    if (code === 'bad_pin') {
      S.pin = null;
      S.needPin = true;
    }
    showPrejoin(S.room, code === 'resume_expired' ? { key: 'join.seat_expired' }
      : JOIN_ERRORS.has(code) ? { key: `error.${code}` } : sentence(message));
    return;
  }
  if (code === 'room_closed') {
    forgetSeat();
    endCall('error.room_closed');
    return;
  }
  if (code === 'server_shutdown') {
    // The server (or a cluster node at the end of its drain) is going away: the close that
    // follows starts the usual reconnection, whose resume fails cleanly once the room lives
    // elsewhere, and the page joins again (rejoinFresh).
    toast(t('error.server_shutdown'));
    return;
  }
  if (['kicked', 'replaced'].includes(code)) {
    // The server closes the socket after these: say why, rather than "connection lost".
    forgetSeat();
    endCall(`error.${code}`);
    return;
  }
  if (code === 'glare') { enqueue(onGlare); return; }
  if (code === 'bad_sdp') enqueue(onBadSdp);
  // A refused vote or action: the game lets the player choose again.
  if (game()?.onError?.(code)) renderAll();
  const text = errorText(code, message);
  if (text) toast(text);
}

/**
 * The seat expired while this page was still in the call — its node died or the server restarted
 * (or the page was away longer than the grace period): join the room again at once under the same
 * name, as a new participant, without asking. One try: if that join fails the name prompt says why
 * (the `!S.myId` path of onError and onSocketClosed), so a page never loops.
 */
function rejoinFresh() {
  const sock = link.ws;
  link.ws = null;
  if (sock && sock.readyState <= WebSocket.OPEN) sock.close(1000);
  stopPing();
  // The new seat gets a new peer connection (the old one's DTLS session was with the old room) and a
  // fresh roster; the camera stays on and is sent again.
  if (M.pc) M.pc.close();
  M.pc = null;
  for (const id of [...S.participants.keys()]) removeParticipant(id);
  game()?.reset?.();
  S.phase = { phase: 'lobby', round: 0, ends_at: null };
  S.receive = {};
  S.myId = null;
  S.hostId = null;
  ui.inviteToggle.hidden = true; // shown again by the welcome
  rejoining = true;
  link.redirects = 0;
  console.info('parlor: seat expired; joining', S.room, 'again');
  connect(S.room, S.name);
}

function onSocketClosed(ev) {
  stopPing();
  link.ws = null;
  if (link.ended) return;
  if (ev.code === 4002 && link.node && link.join) {
    // The room lives on another node of the cluster: the same join, there, at once.
    connect(link.join.room, link.join.name, link.join.resume);
    return;
  }
  // Any other close: the next try goes through this page's server again, which redirects to the
  // room's node if it lives, or places the room anew if that node died (the resume then fails
  // cleanly and the page joins again). It starts a new row of redirects: the tries that met a
  // dead node's lock before it expired do not count against it.
  link.node = null;
  link.redirects = 0;
  if (!S.myId && !reconnect) {
    rejoining = false;
    setStatus('');
    showPrejoin(S.room, { key: 'join.unreachable' });
    return;
  }
  if (ev.code === 1000 && ev.reason === 'room_closed') {
    forgetSeat();
    endCall('error.room_closed');
    return;
  }
  const byCode = { 4000: 'kicked', 4001: 'replaced', 1008: 'rate_limited', 1009: 'too_large' };
  if (byCode[ev.code]) {
    if (ev.code === 4000 || ev.code === 4001) forgetSeat();
    endCall(`error.${byCode[ev.code]}`);
    return;
  }
  // Anything else — a network drop, a proxy timeout, a server restart — is worth another try with the token.
  scheduleReconnect();
}

/** Try the WebSocket again after a back-off step, resuming this tab's seat. */
function scheduleReconnect() {
  const seat = loadSeat(S.room);
  if (!seat) {
    endCall('ended.connection_lost');
    return;
  }
  const now = performance.now();
  if (!reconnect) reconnect = { attempt: 0, since: now, timer: null };
  link.reconnecting = true;
  if (now - reconnect.since > RECONNECT_GIVE_UP_MS) {
    stopReconnecting();
    endCall('ended.reconnect_failed');
    return;
  }
  const step = RECONNECT_STEPS_MS[Math.min(reconnect.attempt, RECONNECT_STEPS_MS.length - 1)];
  reconnect.attempt += 1;
  const delay = Math.round(step * (0.8 + Math.random() * 0.4)); // jitter: a room's phones do not all retry at once
  setStatus(t('status.reconnecting'));
  showReconnecting(true);
  clearTimeout(reconnect.timer);
  reconnect.timer = setTimeout(() => {
    if (link.ended || !reconnect) return;
    connect(seat.room, seat.name, seat.token);
  }, delay);
}

function stopReconnecting() {
  if (reconnect) clearTimeout(reconnect.timer);
  reconnect = null;
  link.reconnecting = false;
  showReconnecting(false);
}

/** The "reconnecting" strip over the room page. */
function showReconnecting(on) {
  const bar = $('reconnecting');
  if (bar) bar.hidden = !on;
}

/** Close a socket that stopped answering and go through the usual reconnection. */
function dropDeadSocket() {
  const sock = link.ws;
  if (!sock) return;
  console.warn('parlor: no pong for', PONG_SILENCE_MS, 'ms; reconnecting');
  link.ws = null;
  try { sock.close(4100); } catch { /* already closing */ }
  onSocketClosed({ code: 1006 });
}

// ================================================================ the room's messages

/** `redirect`: the room lives on another node; the socket closes with 4002 and we join there. */
function onRedirect(url) {
  const target = redirectTarget(url);
  link.redirects += 1;
  if (!target || link.redirects > MAX_REDIRECTS) {
    link.node = null;
    console.warn('parlor: not following redirect', url);
    return;
  }
  link.node = target;
}

function onWelcome(msg) {
  link.redirects = 0;
  const rejoined = rejoining;
  rejoining = false;
  const again = S.myId !== null && String(msg.id) === S.myId; // this page resumed its own seat
  timing.welcome = performance.now();
  stopReconnecting();
  S.room = String(msg.room ?? S.room);
  useKind(typeof msg.kind === 'string' && msg.kind ? msg.kind : DEFAULT_KIND);
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
    if (!msg.game) {
      game()?.reset?.();
      S.phase = { phase: 'lobby', round: 0, ends_at: null };
      S.receive = {};
    }
    S.speaking = [];
  }
  const self = list.find((p) => p.id === S.myId);
  if (self) upsertParticipant(self);
  for (const p of list) if (p.id !== S.myId) upsertParticipant(p);
  if (msg.game && typeof msg.game === 'object') {
    onPhase({ ...msg.game, type: 'phase' });
    // A resumed seat also gets what the game adds to catch up (Mafia: its role and the current tally).
    game()?.onWelcome?.(msg);
    if (msg.media_state?.receive) onMediaState(msg.media_state.receive);
  } else {
    S.phaseArrival = { perf: performance.now(), server: serverNow() };
  }
  if (rejoined) systemLine('room.rejoined');
  refreshStatus();
  resetLayout();
  startPing(dropDeadSocket);
  // Same page, new socket: the server sends nothing until we offer, so offer now — with an ICE
  // restart if the media path died too. (A peer connection still being built offers by itself.)
  enqueue(async () => {
    await (again && M.pc ? resyncMedia() : setupMedia());
    renderControls();
    rememberCamera();
  });
}

function onKindChanged(kind, limits) {
  if (typeof kind !== 'string' || !kind || kind === S.kind) return;
  if (limits && typeof limits === 'object') S.limits = limits; // e.g. a stage room's max_on_stage
  useKind(kind);
  systemLine('room.kind_changed', { kind: t(moduleFor(kind).nameKey || kind) });
  refreshTiles();
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
  if (p.id !== S.myId) systemLine(inGame() ? 'room.joined_to_watch' : 'room.joined', { name: p.name });
}

function onParticipantLeft(id, reason) {
  if (typeof id !== 'string') return;
  if (id === S.myId) {
    endCall(reason === 'kicked' ? 'error.kicked' : 'ended.left');
    return;
  }
  const name = nameOf(id);
  removeParticipant(id);
  const how = reason === 'kicked' ? 'room.left_kicked' : reason === 'disconnected' ? 'room.left_disconnected' : 'room.left';
  systemLine(how, { name });
}

/** Take `id` off the roster and the grid. */
function removeParticipant(id) {
  S.participants.delete(id);
  remoteStreams.delete(id);
  removeTile(id);
}

function onLocked(locked) {
  const was = S.locked;
  S.locked = locked;
  if (was !== locked) systemLine(locked ? 'room.locked' : 'room.unlocked');
}

function onHostChanged(host) {
  const before = S.hostId;
  S.hostId = host || null;
  if (S.hostId === S.myId && before !== S.myId) toast(t('room.you_are_host'), 'info');
  refreshTiles();
}

function onPhase(msg) {
  const previous = S.phase.phase;
  const { type: _type, ...fields } = msg;
  S.phase = {
    ...fields,
    phase: String(msg.phase),
    round: Number(msg.round) || 0,
    ends_at: typeof msg.ends_at === 'number' ? msg.ends_at : null,
  };
  S.phaseArrival = { perf: performance.now(), server: serverNow() };
  if (S.phase.phase === 'lobby' && previous === 'game_over') systemLine('room.back_in_lobby');
  game()?.onPhase?.(S.phase, previous);
  S.phaseLog.push({ ...S.phase, at: S.phaseArrival.perf, wall: Date.now() });
  if (S.phaseLog.length > 200) S.phaseLog.shift();
}

function onSpeaking(ids) {
  S.speaking = Array.isArray(ids) ? ids.map(String) : [];
  showSpeaking();
  refreshTiles(); // a game may feature the speaker (the stage TV view)
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
  refreshTiles();
}

// ================================================================ controls

/** A reload takes the seat back without a camera if it had none (a stage room's audience asks for none). */
function rememberCamera() {
  const none = cameraLater() ? JSON.stringify({ room: S.room, notice: game().cameraLaterNotice || 'media.none' }) : null;
  storageSet(sessionStorage, NO_CAMERA_KEY, none);
}

function cameraAtResume(room) {
  try {
    const entry = JSON.parse(storageGet(sessionStorage, NO_CAMERA_KEY) || 'null');
    if (entry && entry.room === room) return Promise.resolve({ stream: null, notice: String(entry.notice) });
  } catch { /* a damaged entry: ask for the camera */ }
  return null;
}

/** A kind whose members may join without a camera (`cameraLater`) offers to turn it on from the room. */
const cameraLater = () => !M.localStream && Boolean(M.pc) && Boolean(game()?.cameraLater) && !S.tv;

function renderControls() {
  if (cameraLater()) {
    ui.cam.textContent = t('controls.camera_on');
    ui.cam.disabled = false;
    ui.cam.dataset.later = 'true';
    ui.cam.setAttribute('aria-pressed', 'true');
    ui.mic.textContent = t('controls.mute');
    return;
  }
  delete ui.cam.dataset.later;
  const off = (kind) => Boolean(M.localStream) && (kind === 'audio' ? M.localStream.getAudioTracks() : M.localStream.getVideoTracks()).some((tr) => !tr.enabled);
  ui.mic.textContent = off('audio') ? t('controls.unmute') : t('controls.mute');
  ui.mic.setAttribute('aria-pressed', String(off('audio')));
  ui.cam.textContent = off('video') ? t('controls.camera_on') : t('controls.camera_off');
  ui.cam.setAttribute('aria-pressed', String(off('video')));
}

function toggleTrack(kind) {
  if (!M.localStream) return;
  const tracks = kind === 'audio' ? M.localStream.getAudioTracks() : M.localStream.getVideoTracks();
  if (tracks.length === 0) return;
  const enable = !tracks[0].enabled;
  for (const tr of tracks) tr.enabled = enable;
  renderControls();
  refreshTile(S.myId);
}

ui.mic.addEventListener('click', () => toggleTrack('audio'));
ui.cam.addEventListener('click', async () => {
  if (!cameraLater()) { toggleTrack('video'); return; }
  ui.cam.disabled = true;
  const notice = await startCamera();
  if (notice) toast(t(notice));
  ui.cam.disabled = !M.localStream || M.localStream.getVideoTracks().length === 0;
  renderControls();
  rememberCamera();
  refreshTile(S.myId);
  renderAll();
});

ui.leave.addEventListener('click', () => {
  forgetSeat();
  send({ type: 'leave' });
  endCall('ended.left');
});

// A reload or a closed tab is not a departure: the seat waits for the server's grace period, and a
// reload resumes it with the token in sessionStorage. Only the Leave button leaves.

let endedKey = null;

function endCall(key) {
  link.ended = true;
  endedKey = key;
  stopReconnecting();
  stopPing();
  const sock = link.ws;
  link.ws = null;
  if (sock && sock.readyState <= WebSocket.OPEN) sock.close(1000);
  stopMedia();
  for (const video of ui.grid.querySelectorAll('video')) video.srcObject = null;
  ui.controls.hidden = true;
  ui.banner.hidden = true;
  setStatus(t('status.disconnected'));
  renderEnded();
  $('panel').hidden = true;
}

function renderEnded() {
  const card = ui.stage.querySelector('.card.ended');
  const body = [
    Object.assign(document.createElement('h2'), { textContent: t(endedKey) }),
  ];
  const row = document.createElement('div');
  row.className = 'row';
  const again = Object.assign(document.createElement('button'), { type: 'button', className: 'primary', textContent: t('ended.join_again') });
  again.addEventListener('click', () => location.reload());
  const homeLink = Object.assign(document.createElement('a'), { className: 'button', href: '/', textContent: t('ended.home') });
  row.append(again, homeLink);
  body.push(row);
  if (card) card.replaceChildren(...body);
  else {
    const fresh = document.createElement('div');
    fresh.className = 'card ended';
    fresh.append(...body);
    ui.stage.replaceChildren(fresh);
  }
}

// ================================================================ a new language

onLanguageChange(() => {
  if (S.view === 'home') {
    redrawHome();
    rebuildSettings(GAMES[$('create-kind').value] || GAMES[DEFAULT_KIND], $('create-settings'), 'home');
  }
  if (S.view === 'prejoin') redrawPrejoin();
  renderControls();
  if (link.ended && endedKey) { renderEnded(); setStatus(t('status.disconnected')); return; }
  if (S.view !== 'room') return;
  rebuildSettings(game(), ui.lobbySettings, 'lobby', { foldLengths: false });
  renderMediaNotice();
  redrawChat();
  game()?.onLanguage?.();
  refreshTiles();
  refreshStatus();
  renderAll();
});

// ================================================================ test and debugging surface

const parlor = {
  get pc() { return M.pc; },
  get id() { return S.myId; },
  get room() { return S.room; },
  get kind() { return S.kind; },
  get host() { return S.hostId; },
  get ws() { return link.ws; },
  get localStream() { return M.localStream; },
  get limits() { return S.limits; },
  get phase() { return S.phase; },
  get phaseArrival() { return S.phaseArrival; },
  get receive() { return S.receive; },
  get speaking() { return S.speaking; },
  get layout() { return lastLayout(); },
  get chat() { return S.chat; },
  get errors() { return S.errors; },
  get participants() { return Object.fromEntries(S.participants); },
  get firstRemoteFrameAt() { return M.firstRemoteFrameAt; },
  get reconnecting() { return reconnect !== null; },
  get rejoining() { return rejoining; },
  get language() { return language(); },
  get tv() { return S.tv; },
  get game() { return current.game; },
  timing,
  phaseLog: S.phaseLog,
  remoteStreams,
  clock,
  events,
  serverNow,
  inboundByPublisher,
};
window.parlor = parlor;

// ================================================================ start

function start() {
  applyStatic();
  mountSwitch(ui.langSelect);
  renderControls();
  onJoinSubmit(connect);
  const room = roomFromLocation();
  if (room === null) { showHome(); return; }
  if (!CODE_RE.test(room)) {
    showHome({ key: 'code.not_a_code', params: { code: room.slice(0, 40) } });
    return;
  }
  S.room = room;
  // The default kind until the server's welcome names the room's.
  useKind(DEFAULT_KIND);
  startStats();
  if (tvFromLocation()) {
    // The TV view: no camera, no prompt; a seat of its own after a reload.
    S.tv = true;
    document.body.dataset.tv = 'true';
    M.mediaPromise = Promise.resolve({ stream: null, notice: null });
    const seat = loadSeat(room);
    showView('room');
    ui.banner.hidden = true;
    connect(room, seat ? seat.name : tvName(), seat?.token);
    return;
  }
  const intent = takeIntent(room);
  const urlName = cleanName(params.get('name'));
  const name = urlName && !nameProblem(urlName) ? urlName : intent?.name && !nameProblem(intent.name) ? intent.name : null;
  const seat = loadSeat(room);
  if (!seat && !name) {
    // The name prompt comes first. A room whose kind joins without a camera (a stage room's audience)
    // asks for none; any other starts the preview. The room's public state says its kind.
    M.mediaPromise = roomKind(room).then((kind) => (GAMES[kind]?.cameraLater
      ? { stream: null, notice: GAMES[kind].cameraLaterNotice || 'media.none' }
      : acquireMedia()));
    showPrejoin(room);
    return;
  }
  const resuming = seat && (!intent || intent.name === seat.name);
  M.mediaPromise = (resuming && cameraAtResume(room)) || acquireMedia();
  if (resuming) {
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

/** A TV view's name: "TV" and four random letters, so that several screens can watch one room. */
function tvName() {
  const letters = 'abcdefghjkmnpqrstuvwxyz23456789';
  const pick = crypto.getRandomValues(new Uint8Array(4));
  return `TV ${[...pick].map((b) => letters[b % letters.length]).join('')}`;
}

/** The kind of an existing room (GET /api/rooms/CODE), or null: no such room yet, or no answer in time. */
async function roomKind(room) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 1500);
  try {
    const reply = await fetch(`/api/rooms/${encodeURIComponent(room)}`, { signal: abort.signal });
    if (!reply.ok) return null;
    const body = await reply.json();
    return typeof body?.kind === 'string' ? body.kind : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

start();

