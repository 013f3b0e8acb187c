// parlor — minimal browser client for signaling protocol v1 (see docs/PROTOCOL.md).
// Plain ES module, no build step, no dependencies.

const CODE_RE = /^[A-Za-z0-9-]{1,32}$/;
const CONTROL_RE = /\p{Cc}/u;
const NAME_MAX = 24;
const NAME_KEY = 'parlor.name';
const PING_INTERVAL_MS = 2000;
const CLOCK_SAMPLES = 10;
const TOAST_MS = 5000;

const $ = (id) => document.getElementById(id);
const ui = {
  form: $('join-form'),
  roomField: $('room-field'),
  roomInput: $('room-input'),
  randomRoom: $('random-room'),
  nameInput: $('name-input'),
  joinError: $('join-error'),
  joinButton: $('join-button'),
  roomLabel: $('room-label'),
  copyLink: $('copy-link'),
  status: $('status'),
  notice: $('notice'),
  grid: $('grid'),
  controls: $('controls'),
  mic: $('toggle-mic'),
  cam: $('toggle-cam'),
  sound: $('enable-sound'),
  leave: $('leave'),
  toasts: $('toasts'),
};

// ---------------------------------------------------------------- state

let ws = null;           // current WebSocket
let pc = null;           // the one RTCPeerConnection
let myId = null;         // own participant id, set by `welcome`
let roomCode = null;
let hostId = null;
let limits = {};
let localStream = null;  // own camera/microphone, or null when receive-only
let pingTimer = null;
let ended = false;       // left, or the connection is gone for good

/** id -> participant object as last sent by the server. */
const participants = {};
/** publisher id -> MediaStream combining that publisher's audio and video. */
const remoteStreams = new Map();

/** RTT and clock offset from ping/pong. serverNow() = Date.now() + offset. */
const clock = { rtt: null, minRtt: null, offset: 0, samples: [] };

// Negotiation state (see docs/PROTOCOL.md, "Negotiation").
let sdpChain = Promise.resolve(); // serializes every SDP/ICE operation
let needOffer = false;            // the client has changes the server has not seen yet
let expectedGlare = 0;            // client offers we rolled back that the server will answer with `glare`
const pendingCandidates = [];     // remote candidates that arrived before a remote description

window.parlor = {
  get pc() { return pc; },
  get id() { return myId; },
  get room() { return roomCode; },
  get host() { return hostId; },
  get ws() { return ws; },
  get localStream() { return localStream; },
  get limits() { return limits; },
  participants,
  remoteStreams,
  clock,
  serverNow: () => Date.now() + clock.offset,
};

// ---------------------------------------------------------------- helpers

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

/** Run `fn` after every SDP/ICE operation queued before it. Errors are reported, never fatal. */
function enqueue(fn) {
  sdpChain = sdpChain.then(fn).catch((err) => {
    console.error('parlor: negotiation step failed', err);
    toast(`Media negotiation problem: ${err && err.message ? err.message : err}`);
  });
  return sdpChain;
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

function roomFromLocation() {
  const fromQuery = new URLSearchParams(location.search).get('room');
  if (fromQuery !== null) return fromQuery.trim();
  const m = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  if (m) {
    try { return decodeURIComponent(m[1]); } catch { return m[1]; }
  }
  return null;
}

function randomCode() {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  const chars = [...bytes].map((b) => alphabet[b % alphabet.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

function inviteLink(code) {
  return `${location.origin}/?room=${encodeURIComponent(code)}`;
}

function loadName() {
  try { return localStorage.getItem(NAME_KEY) || ''; } catch { return ''; }
}

function saveName(name) {
  try { localStorage.setItem(NAME_KEY, name); } catch { /* storage may be disabled */ }
}

function toast(text, kind = 'error') {
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.textContent = text;
  ui.toasts.append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

function setStatus(text) {
  ui.status.textContent = text;
}

function refreshStatus() {
  if (ended) return;
  if (!myId) { setStatus('connecting…'); return; }
  const media = pc ? pc.connectionState : 'starting';
  const rtt = clock.rtt === null ? '' : ` · ${Math.round(clock.rtt)} ms`;
  setStatus(`${media}${rtt}`);
}

// ---------------------------------------------------------------- join form

function showJoinForm(room, name, error) {
  ui.roomField.hidden = Boolean(room && CODE_RE.test(room));
  ui.roomInput.value = room || '';
  ui.nameInput.value = name || loadName();
  ui.joinError.textContent = error || '';
  ui.joinError.hidden = !error;
  ui.joinButton.disabled = false;
  ui.form.hidden = false;
  ui.grid.hidden = true;
  ui.controls.hidden = true;
  (ui.roomField.hidden || ui.roomInput.value ? ui.nameInput : ui.roomInput).focus();
}

ui.randomRoom.addEventListener('click', () => {
  ui.roomInput.value = randomCode();
  ui.nameInput.focus();
});

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = ui.roomField.hidden ? roomFromLocation() : ui.roomInput.value.trim();
  const name = cleanName(ui.nameInput.value);
  let problem = null;
  if (!room || !CODE_RE.test(room)) {
    problem = 'Room codes are 1–32 letters, digits or dashes.';
  } else {
    problem = nameProblem(name);
  }
  if (problem) {
    ui.joinError.textContent = problem;
    ui.joinError.hidden = false;
    return;
  }
  saveName(name);
  if (roomFromLocation() !== room) {
    const url = new URL(location.href);
    url.pathname = '/';
    url.searchParams.set('room', room);
    history.replaceState(null, '', url);
  }
  ui.joinButton.disabled = true;
  connect(room, name);
});

// ---------------------------------------------------------------- WebSocket

function connect(room, name) {
  ended = false;
  roomCode = room;
  ui.joinError.hidden = true;
  showNotice('');
  setStatus('connecting…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${scheme}//${location.host}/ws`);
  ws = sock;
  sock.addEventListener('open', () => send({ type: 'join', room, name }));
  sock.addEventListener('message', (ev) => {
    if (sock !== ws || typeof ev.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(ev.data); } catch { console.warn('parlor: non-JSON message', ev.data); return; }
    if (!msg || typeof msg.type !== 'string') return;
    handleMessage(msg, room, name);
  });
  sock.addEventListener('close', (ev) => {
    if (sock !== ws) return;
    onSocketClosed(ev, room, name);
  });
}

function handleMessage(msg, room, name) {
  switch (msg.type) {
    case 'welcome': onWelcome(msg); break;
    case 'participant_joined':
    case 'participant_updated': if (msg.participant) upsertParticipant(msg.participant); break;
    case 'participant_left': removeParticipant(msg.id, msg.reason); break;
    case 'host_changed': hostId = msg.host; refreshAllTiles(); break;
    case 'offer': if (typeof msg.sdp === 'string') enqueue(() => onRemoteOffer(msg.sdp)); break;
    case 'answer': if (typeof msg.sdp === 'string') enqueue(() => onRemoteAnswer(msg.sdp)); break;
    case 'candidate': enqueue(() => onRemoteCandidate(msg)); break;
    case 'pong': onPong(msg); break;
    case 'error': onError(msg, room, name); break;
    default: break; // later protocol versions add types (phase, role, chat, …); ignore them here
  }
}

const JOIN_ERRORS = {
  name_taken: 'Someone in this room already uses that name. Please pick another.',
  room_full: 'This room is full.',
  room_not_found: 'There is no room with that code.',
  server_full: 'The server is full right now. Please try again later.',
  too_many_rooms: 'The server cannot open more rooms right now.',
  bad_field: 'The server did not accept that room code or name.',
};

function onError(msg, room, name) {
  const code = String(msg.code ?? 'error');
  const message = msg.message ? String(msg.message) : code;
  console.warn(`parlor: server error ${code}: ${message}`);
  if (!myId) {
    // The join failed: nothing was created on the server. Start over with a fresh socket.
    const sock = ws;
    ws = null;
    if (sock) sock.close(1000);
    setStatus('');
    showJoinForm(room, name, JOIN_ERRORS[code] ? `${JOIN_ERRORS[code]} (${message})` : message);
    return;
  }
  if (code === 'glare') { enqueue(onGlare); return; }
  if (code === 'bad_sdp') enqueue(onBadSdp);
  toast(`${message} (${code})`);
}

function onSocketClosed(ev, room, name) {
  stopPing();
  ws = null;
  if (ended) return;
  if (!myId) {
    setStatus('');
    showJoinForm(room, name, 'Could not reach the server. Please try again.');
    return;
  }
  const why = ev.code === 1009 ? ' (a message was too large)' : ev.reason ? ` (${ev.reason})` : '';
  endCall(`The connection to the server was lost${why}. Reload the page to join again.`);
}

function onWelcome(msg) {
  myId = String(msg.id);
  roomCode = String(msg.room ?? roomCode);
  hostId = msg.host ?? null;
  limits = msg.limits && typeof msg.limits === 'object' ? msg.limits : {};
  ui.form.hidden = true;
  ui.grid.hidden = false;
  ui.controls.hidden = false;
  ui.roomLabel.textContent = `Room ${roomCode}`;
  ui.roomLabel.hidden = false;
  ui.copyLink.hidden = false;
  const list = Array.isArray(msg.participants) ? msg.participants : [];
  const self = list.find((p) => p && p.id === myId);
  if (self) upsertParticipant(self);
  for (const p of list) if (p && p.id !== myId) upsertParticipant(p);
  refreshStatus();
  startPing();
  enqueue(setupMedia);
}

// ---------------------------------------------------------------- clock

function startPing() {
  stopPing();
  const ping = () => send({ type: 'ping', t: Date.now() });
  ping();
  pingTimer = setInterval(ping, PING_INTERVAL_MS);
}

function stopPing() {
  if (pingTimer !== null) clearInterval(pingTimer);
  pingTimer = null;
}

function onPong(msg) {
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

// ---------------------------------------------------------------- local media

const MEDIA_HELP = {
  NotAllowedError: 'You did not allow this page to use your camera and microphone, so the others cannot see or hear you. ' +
    'You can still watch and listen. To take part, allow camera and microphone for this site in your browser and reload.',
  NotFoundError: 'No camera or microphone was found, so the others cannot see or hear you. You can still watch and listen.',
  NotReadableError: 'Your camera or microphone is busy (another app or tab may be using it), so the others cannot see or hear you. ' +
    'You can still watch and listen. Close the other app and reload to take part.',
  insecure: 'This browser only allows cameras and microphones on secure (https) pages, so the others cannot see or hear you. ' +
    'You can still watch and listen. Ask whoever runs this server to enable https.',
};

async function getLocalMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showNotice(MEDIA_HELP.insecure);
    return null;
  }
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (err) {
    console.warn('parlor: getUserMedia(audio+video) failed', err);
    if (err && err.name === 'NotAllowedError') {
      showNotice(MEDIA_HELP.NotAllowedError);
      return null;
    }
    // No usable camera: a microphone alone still lets the others hear you.
    try {
      const audioOnly = await navigator.mediaDevices.getUserMedia({ audio: true });
      showNotice('No usable camera was found, so the others can hear you but not see you.');
      return audioOnly;
    } catch (err2) {
      console.warn('parlor: getUserMedia(audio) failed', err2);
      showNotice(MEDIA_HELP[err && err.name] || MEDIA_HELP.NotFoundError);
      return null;
    }
  }
}

async function setupMedia() {
  if (ended) return;
  const stream = await getLocalMedia();
  if (ended) {
    if (stream) for (const t of stream.getTracks()) t.stop();
    return;
  }
  localStream = stream;

  pc = new RTCPeerConnection();
  pc.addEventListener('icecandidate', (ev) => {
    const c = ev.candidate;
    if (c) {
      send({ type: 'candidate', candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex });
    } else {
      send({ type: 'candidate', candidate: '', sdp_mid: null, sdp_mline_index: null });
    }
  });
  pc.addEventListener('track', onTrack);
  pc.addEventListener('negotiationneeded', () => {
    needOffer = true;
    enqueue(maybeOffer);
  });
  pc.addEventListener('connectionstatechange', () => {
    refreshStatus();
    if (pc && pc.connectionState === 'failed') toast('The media connection failed. Reload the page to try again.');
  });

  // One transceiver per kind: send what we have, otherwise receive only.
  for (const kind of ['audio', 'video']) {
    const track = localStream ? localStream.getTracks().find((t) => t.kind === kind) : null;
    if (track) pc.addTrack(track, localStream);
    else pc.addTransceiver(kind, { direction: 'recvonly' });
  }
  await capVideoBitrate();

  ui.mic.disabled = !localStream || localStream.getAudioTracks().length === 0;
  ui.cam.disabled = !localStream || localStream.getVideoTracks().length === 0;
  attachStream(myId);
  refreshStatus();
  // The first offer goes out from the `negotiationneeded` event the transceivers above trigger.
}

/** Cap the outgoing video to limits.max_video_kbps. Idempotent; retried after every negotiation. */
async function capVideoBitrate() {
  const kbps = Number(limits.max_video_kbps);
  if (!pc || !(kbps > 0)) return;
  const bps = Math.round(kbps * 1000);
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) continue; // not negotiated yet
    if (params.encodings[0].maxBitrate === bps) continue;
    params.encodings[0].maxBitrate = bps;
    try {
      await sender.setParameters(params);
    } catch (err) {
      console.warn('parlor: could not cap the video bitrate', err);
    }
  }
}

// ---------------------------------------------------------------- negotiation

/** Send an offer if the client has unsent changes and no offer/answer exchange is in progress. */
async function maybeOffer() {
  if (!pc || ended || !needOffer || pc.signalingState !== 'stable') return;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  needOffer = false;
  await pc.setLocalDescription(await pc.createOffer());
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
    // candidate "" is the end of candidates.
    await pc.addIceCandidate(init);
  } catch (err) {
    console.warn('parlor: addIceCandidate failed', init, err);
  }
}

// ---------------------------------------------------------------- remote tracks

function onTrack(ev) {
  const stream = ev.streams[0];
  if (!stream) {
    console.warn('parlor: a remote track without a stream (no msid) was ignored');
    return;
  }
  const publisher = stream.id; // the server sets a=msid:<publisher id> <track id>
  const track = ev.track;
  let combined = remoteStreams.get(publisher);
  if (!combined) {
    combined = new MediaStream();
    remoteStreams.set(publisher, combined);
  }
  // A receiver the server reuses for another publisher moves its track over.
  for (const [other, s] of remoteStreams) {
    if (other !== publisher && s.getTracks().includes(track)) {
      s.removeTrack(track);
      refreshMedia(other);
    }
  }
  for (const old of combined.getTracks()) {
    if (old.kind === track.kind && old !== track) combined.removeTrack(old);
  }
  if (!combined.getTracks().includes(track)) combined.addTrack(track);

  const refresh = () => refreshMedia(publisher);
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
  attachStream(publisher);
}

// ---------------------------------------------------------------- tiles

function tileFor(id) {
  return ui.grid.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`);
}

function createTile(id) {
  const tile = document.createElement('div');
  tile.className = 'tile no-video';
  tile.dataset.participantId = id;

  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.setAttribute('aria-hidden', 'true');

  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute('playsinline', '');
  if (id === myId) {
    video.muted = true; // never play one's own microphone back
    video.classList.add('local');
  } else {
    video.classList.add('remote');
  }

  const label = document.createElement('div');
  label.className = 'label';
  const name = document.createElement('span');
  name.className = 'name';
  label.append(name);
  for (const [cls, text] of [['you', 'you'], ['host', 'host'], ['reconnecting', 'reconnecting…']]) {
    const badge = document.createElement('span');
    badge.className = `badge ${cls}`;
    badge.textContent = text;
    badge.hidden = true;
    label.append(badge);
  }

  tile.append(avatar, video, label);
  if (id === myId) ui.grid.prepend(tile);
  else ui.grid.append(tile);
  ui.grid.dataset.count = String(ui.grid.children.length);
  return tile;
}

function refreshTile(id) {
  const p = participants[id];
  const tile = tileFor(id);
  if (!p || !tile) return;
  const name = String(p.name ?? '');
  tile.querySelector('.name').textContent = name;
  tile.querySelector('.avatar').textContent = [...name][0] ? [...name][0].toUpperCase() : '?';
  tile.querySelector('.badge.you').hidden = id !== myId;
  tile.querySelector('.badge.host').hidden = id !== hostId;
  tile.querySelector('.badge.reconnecting').hidden = p.connected !== false;
  tile.classList.toggle('disconnected', p.connected === false);
  tile.classList.toggle('is-host', id === hostId);
}

function refreshAllTiles() {
  for (const id of Object.keys(participants)) refreshTile(id);
}

function upsertParticipant(p) {
  if (!p || typeof p.id !== 'string') return;
  participants[p.id] = p;
  if (!tileFor(p.id)) {
    createTile(p.id);
    attachStream(p.id);
  }
  refreshTile(p.id);
}

function removeParticipant(id, reason) {
  if (typeof id !== 'string') return;
  if (id === myId) {
    endCall(reason === 'kicked' ? 'The host removed you from the room.' : 'You left the room.');
    return;
  }
  delete participants[id];
  remoteStreams.delete(id);
  const tile = tileFor(id);
  if (tile) {
    const video = tile.querySelector('video');
    video.srcObject = null;
    tile.remove();
  }
  ui.grid.dataset.count = String(ui.grid.children.length);
}

/** Put the right stream on a participant's <video>: the local preview for oneself, the combined remote stream otherwise. */
function attachStream(id) {
  if (id === null) return;
  const tile = tileFor(id);
  if (!tile) return;
  const video = tile.querySelector('video');
  const stream = id === myId ? localStream : remoteStreams.get(id);
  if (stream && video.srcObject !== stream) {
    video.srcObject = stream;
  }
  if (stream) playVideo(video);
  refreshMedia(id);
}

/** Re-attach (tracks may have changed) and show the avatar when no picture is coming. */
function refreshMedia(id) {
  const tile = tileFor(id);
  if (!tile) return;
  const video = tile.querySelector('video');
  const stream = id === myId ? localStream : remoteStreams.get(id);
  const tracks = stream ? stream.getVideoTracks() : [];
  const live = tracks.some((t) => t.readyState === 'live' && t.enabled && !t.muted);
  tile.classList.toggle('no-video', !live);
  if (stream && video.srcObject === stream && video.paused) playVideo(video);
}

function playVideo(video) {
  const p = video.play();
  if (!p) return;
  p.catch((err) => {
    if (err && err.name === 'NotAllowedError' && !video.muted) {
      // Autoplay with sound was blocked: play muted and offer a button to turn the sound on.
      video.muted = true;
      video.dataset.autoMuted = 'true';
      ui.sound.hidden = false;
      video.play().catch(() => {});
    }
  });
}

ui.sound.addEventListener('click', () => {
  for (const video of ui.grid.querySelectorAll('video.remote[data-auto-muted]')) {
    video.muted = false;
    delete video.dataset.autoMuted;
    video.play().catch(() => {});
  }
  ui.sound.hidden = true;
});

// ---------------------------------------------------------------- controls

function toggleTrack(kind, button, onText, offText) {
  if (!localStream) return;
  const tracks = kind === 'audio' ? localStream.getAudioTracks() : localStream.getVideoTracks();
  if (tracks.length === 0) return;
  const enable = !tracks[0].enabled;
  for (const t of tracks) t.enabled = enable;
  button.textContent = enable ? onText : offText;
  button.setAttribute('aria-pressed', String(!enable));
  refreshMedia(myId);
}

ui.mic.addEventListener('click', () => toggleTrack('audio', ui.mic, 'Mute mic', 'Unmute mic'));
ui.cam.addEventListener('click', () => toggleTrack('video', ui.cam, 'Stop camera', 'Start camera'));

ui.copyLink.addEventListener('click', async () => {
  const link = inviteLink(roomCode);
  try {
    await navigator.clipboard.writeText(link);
    toast('Invite link copied.', 'info');
  } catch {
    toast(`Invite link: ${link}`, 'info');
  }
});

ui.leave.addEventListener('click', () => {
  send({ type: 'leave' });
  endCall('You left the room.');
});

window.addEventListener('pagehide', () => {
  if (myId && !ended) send({ type: 'leave' });
});

function endCall(text) {
  ended = true;
  stopPing();
  const sock = ws;
  ws = null;
  if (sock && sock.readyState <= WebSocket.OPEN) sock.close(1000);
  if (pc) pc.close();
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  for (const video of ui.grid.querySelectorAll('video')) video.srcObject = null;
  ui.controls.hidden = true;
  ui.grid.hidden = true;
  setStatus('disconnected');
  showNotice(text);
}

// ---------------------------------------------------------------- start

function start() {
  const room = roomFromLocation();
  const urlName = cleanName(new URLSearchParams(location.search).get('name'));
  if (room && CODE_RE.test(room) && urlName && !nameProblem(urlName)) {
    // `?room=CODE&name=NAME` joins without asking (handy for links and tests).
    ui.form.hidden = true;
    connect(room, urlName);
    return;
  }
  const error = room && !CODE_RE.test(room) ? 'That room code is not valid: use 1–32 letters, digits or dashes.' : null;
  showJoinForm(room && CODE_RE.test(room) ? room : '', urlName, error);
  if (error) ui.roomField.hidden = false;
}

start();
