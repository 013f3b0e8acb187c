// Camera and microphone, the one RTCPeerConnection and its negotiation (the server is the impolite peer),
// remote tracks by publisher, and inbound statistics.

import { params } from './dom.js';
import { t } from './i18n.js';
import { clock } from './clock.js';
import { link, send } from './socket.js';
import { S } from './state.js';
import { setStatus, showNotice, toast, ui } from './ui.js';
import { attachStream, awaitFrame, frameArrived, noteFirstRemoteFrame, refreshTile, setSpeaking } from './tiles.js';

/** A media path `disconnected` this long gets an ICE restart (`failed` gets one at once). */
const ICE_DISCONNECTED_MS = 2000;
const STATS_INTERVAL_MS = 400;
const SPEAKING_LEVEL = 0.02;
const SPEAKING_HOLD_MS = 700;

export const M = {
  pc: null,           // the one RTCPeerConnection
  localStream: null,  // own camera/microphone, or null when receive-only
  mediaPromise: null, // getUserMedia, started as soon as the room page opens
  lastInbound: {},
  firstRemoteFrameAt: null,
};

/** Timings of the latest (re)connection, performance.now() ms: socket open, welcome, first remote video frame. */
export const timing = { socketOpen: null, welcome: null, offer: null, answer: null, mediaConnected: null, firstTrack: null, firstFrame: null, resumed: false };

/** publisher id -> MediaStream combining that publisher's audio and video. */
export const remoteStreams = new Map();
/** receiver track id -> publisher id (from ontrack's stream id, the publisher's participant id). */
const trackPublisher = new Map();
let selfSpeakingUntil = 0;
let iceTimer = null;

// Negotiation state.
let sdpChain = Promise.resolve(); // serializes every SDP/ICE operation
let needOffer = false;            // the client has changes the server has not seen yet
let expectedGlare = 0;            // client offers we rolled back that the server will answer with `glare`
const pendingCandidates = [];     // remote candidates that arrived before a remote description

/** The top bar's line: connection state and round trip. */
export function refreshStatus() {
  if (link.ended) return;
  if (link.reconnecting) { setStatus(t('status.reconnecting')); return; }
  if (!S.myId) { setStatus(t('status.connecting')); return; }
  const state = M.pc ? M.pc.connectionState : 'starting';
  const media = state === 'connected' ? t('status.live') : t(`status.${state}`);
  const rtt = clock.rtt === null ? '' : ` · ${Math.round(clock.rtt)} ms`;
  setStatus(`${media}${rtt}`);
}

// ---- local media

function videoConstraints() {
  const size = /^(\d{2,4})x(\d{2,4})$/.exec(params.get('video') || '');
  const fps = Number(params.get('fps'));
  return {
    width: { ideal: size ? Number(size[1]) : 640 },
    height: { ideal: size ? Number(size[2]) : 480 },
    frameRate: { ideal: fps > 0 && fps <= 60 ? fps : 24, max: 30 },
  };
}

/**
 * Camera and microphone: {stream (or null), notice (a string key and its meaning, or null)}. Never throws.
 * The notice is a key so that it follows a change of language.
 */
export async function acquireMedia() {
  const mode = params.get('media');
  if (mode === 'none') return { stream: null, notice: 'media.none' };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return { stream: null, notice: 'media.insecure' };
  const wantAudio = mode !== 'video';
  const wantVideo = mode !== 'audio';
  const gum = (audio, video) => navigator.mediaDevices.getUserMedia({ audio, video });
  try {
    return { stream: await gum(wantAudio, wantVideo && videoConstraints()), notice: null };
  } catch (err) {
    console.warn('parlor: getUserMedia failed', err);
    const name = err && err.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') return { stream: null, notice: 'media.not_allowed' };
    if (name === 'OverconstrainedError' && wantVideo) {
      try { return { stream: await gum(wantAudio, true), notice: null }; } catch { /* fall through */ }
    }
    if (wantAudio && wantVideo) {
      try {
        return { stream: await gum(true, false), notice: 'media.no_camera' };
      } catch { /* no microphone either */ }
      try {
        return { stream: await gum(false, videoConstraints()), notice: 'media.no_microphone' };
      } catch { /* nothing */ }
    }
    return { stream: null, notice: name === 'NotReadableError' ? 'media.busy' : 'media.not_found' };
  }
}

let noticeKey = null;

/** The notice about one's own camera and microphone, in the current language. */
export function renderMediaNotice() {
  showNotice(noticeKey ? t(noticeKey) : '');
}

function videoBitrateCap() {
  const kbps = Number(S.limits.max_video_kbps);
  return kbps > 0 ? Math.round(kbps * 1000) : null;
}

/**
 * Simulcast layers for a camera track, lowest first: {rid, scaleResolutionDownBy, maxBitrate}. The server
 * forwards one layer per subscriber (docs/PROTOCOL.md, "Simulcast"). The lowest layer comes first because a
 * browser whose simulcast offer is declined keeps only the first encoding (see capVideoBitrate for how that
 * one is then restored to full size). Browsers allow about one layer per halving of the picture down to
 * ~240 lines: three from 960 lines up (1280×720), two from 480 (640×480), below that none. Under
 * limits.max_video_kbps (`bps`) the layers share the cap: the lower ones take a fixed part, the top the rest;
 * without one the top layer is left to the browser. `?simulcast=0` turns simulcast off.
 */
function simulcastLayers(track, bps) {
  if (params.get('simulcast') === '0') return null;
  const s = track.getSettings ? track.getSettings() : {};
  const side = Math.max(Number(s.width) || 0, Number(s.height) || 0);
  const share = (part, fallback) => (bps ? Math.round(bps * part) : fallback);
  let layers;
  if (side >= 960) {
    layers = [
      { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: share(0.12, 150_000) },
      { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: share(0.28, 500_000) },
      { rid: 'f', scaleResolutionDownBy: 1 },
    ];
  } else if (side >= 480) {
    layers = [
      { rid: 'q', scaleResolutionDownBy: 2, maxBitrate: share(0.2, 200_000) },
      { rid: 'f', scaleResolutionDownBy: 1 },
    ];
  } else {
    return null;
  }
  if (bps) layers[layers.length - 1].maxBitrate = bps - layers.slice(0, -1).reduce((n, l) => n + l.maxBitrate, 0);
  return layers;
}

/** The layers setupMedia asked for (null: one plain encoding). */
let sentLayers = null;

export async function setupMedia() {
  if (link.ended || M.pc) return;
  const { stream, notice } = await M.mediaPromise;
  if (link.ended || M.pc) {
    if (stream) for (const tr of stream.getTracks()) tr.stop();
    return;
  }
  M.localStream = stream;
  noticeKey = notice;
  renderMediaNotice();

  // TURN/STUN servers from the server's configuration (none on an open network).
  const pc = new RTCPeerConnection({ iceServers: S.iceServers });
  M.pc = pc;
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
    if (!M.pc) return;
    const state = M.pc.connectionState;
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
    const track = M.localStream ? M.localStream.getTracks().find((tr) => tr.kind === kind) : null;
    if (!track) {
      pc.addTransceiver(kind, { direction: 'recvonly' });
      continue;
    }
    if (kind === 'video' && 'contentHint' in track) track.contentHint = 'motion';
    const init = { direction: 'sendrecv', streams: [M.localStream] };
    if (kind === 'video') {
      sentLayers = simulcastLayers(track, bps);
      if (sentLayers) init.sendEncodings = sentLayers.map((l) => ({ ...l, maxFramerate: 24 }));
      else if (bps) init.sendEncodings = [{ maxBitrate: bps, maxFramerate: 24 }];
    }
    pc.addTransceiver(track, init);
  }
  await capVideoBitrate();

  ui.mic.disabled = !M.localStream || M.localStream.getAudioTracks().length === 0;
  ui.cam.disabled = !M.localStream || M.localStream.getVideoTracks().length === 0;
  attachStream(S.myId);
  refreshStatus();
  // The first offer goes out from the `negotiationneeded` event the transceivers above trigger.
}

/**
 * Turn the camera and microphone on after joining receive-only (a stage room's audience): the tracks go onto
 * the two transceivers the peer connection already has, which renegotiates (an offer with `sendrecv`).
 * Returns the notice key, or null when both are on.
 */
export async function startCamera() {
  if (!M.pc || link.ended || M.localStream) return null;
  if (!navigator.mediaDevices?.getUserMedia) return 'media.insecure';
  let stream = null;
  let notice = null;
  for (const [audio, video, missing] of [[true, videoConstraints(), null], [false, videoConstraints(), 'media.no_microphone'], [true, false, 'media.no_camera']]) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio, video });
      notice = missing;
      break;
    } catch (err) {
      console.warn('parlor: getUserMedia failed', err);
      if (err?.name === 'NotAllowedError' || err?.name === 'SecurityError') return 'media.not_allowed';
    }
  }
  if (!stream) return 'media.not_found';
  if (!M.pc || link.ended) { for (const tr of stream.getTracks()) tr.stop(); return null; }
  M.localStream = stream;
  const bps = videoBitrateCap();
  for (const track of stream.getTracks()) {
    // The client's own transceivers come first (setupMedia adds them before any server offer). The video one
    // was made receive-only, without sendEncodings, and a sender cannot gain encodings later: no simulcast here.
    const tr = M.pc.getTransceivers().find((o) => o.receiver.track?.kind === track.kind);
    if (!tr || tr.sender.track) continue;
    if (track.kind === 'video' && 'contentHint' in track) track.contentHint = 'motion';
    await tr.sender.replaceTrack(track);
    if (tr.sender.setStreams) tr.sender.setStreams(stream);
    tr.direction = 'sendrecv'; // fires negotiationneeded: the offer goes out from there
  }
  if (bps) await capVideoBitrate();
  noticeKey = notice;
  renderMediaNotice();
  ui.mic.disabled = stream.getAudioTracks().length === 0;
  ui.cam.disabled = stream.getVideoTracks().length === 0;
  attachStream(S.myId);
  return notice;
}

/**
 * Cap the outgoing video to limits.max_video_kbps. Idempotent; repeated after every negotiation. With simulcast
 * each layer keeps its own share; when the answer declined simulcast the browser kept only the first (lowest)
 * encoding, which then goes back to full size under the cap.
 */
async function capVideoBitrate() {
  const bps = videoBitrateCap();
  if (!M.pc || (!bps && !sentLayers)) return;
  for (const sender of M.pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const p = sender.getParameters();
    if (!p.encodings || p.encodings.length === 0) continue; // not negotiated yet
    let changed = false;
    if (p.encodings.length > 1) {
      for (const e of p.encodings) {
        const want = sentLayers?.find((l) => l.rid === e.rid)?.maxBitrate;
        if (want && e.maxBitrate !== want) { e.maxBitrate = want; changed = true; }
      }
    } else {
      const e = p.encodings[0];
      if (sentLayers && e.scaleResolutionDownBy && e.scaleResolutionDownBy !== 1) { e.scaleResolutionDownBy = 1; changed = true; }
      if (bps && e.maxBitrate !== bps) { e.maxBitrate = bps; changed = true; }
      // Declined simulcast without a cap: the lowest layer's limit must not stay on the one encoding left.
      if (sentLayers && !bps && e.maxBitrate) { delete e.maxBitrate; changed = true; }
    }
    if (!changed) continue;
    try {
      await sender.setParameters(p);
    } catch (err) {
      console.warn('parlor: could not cap the video bitrate', err);
    }
  }
}

/** After a resume on the same page: roll back a half-done exchange and offer again. */
export async function resyncMedia() {
  const pc = M.pc;
  if (!pc || link.ended) return;
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
  if (!M.pc || link.ended || M.pc.connectionState === 'connected') return;
  console.info('parlor: restarting ICE from state', M.pc.connectionState);
  M.pc.restartIce(); // fires negotiationneeded → an offer with new credentials once the socket is up
}

/** Close the peer connection and stop the camera (the call is over). */
export function stopMedia() {
  clearTimeout(iceTimer);
  if (M.pc) M.pc.close();
  if (M.localStream) for (const tr of M.localStream.getTracks()) tr.stop();
}

// ---- negotiation

/** Run `fn` after every SDP/ICE operation queued before it. Errors are reported, never fatal. */
export function enqueue(fn) {
  sdpChain = sdpChain.then(fn).catch((err) => {
    console.error('parlor: negotiation step failed', err);
    toast(t('media.negotiation', { error: err && err.message ? err.message : err }));
  });
  return sdpChain;
}

/** Send an offer if the client has unsent changes and no offer/answer exchange is in progress. */
async function maybeOffer() {
  const pc = M.pc;
  if (!pc || link.ended || !needOffer || pc.signalingState !== 'stable') return;
  if (!link.ws || link.ws.readyState !== WebSocket.OPEN) return;
  needOffer = false;
  await pc.setLocalDescription(await pc.createOffer());
  if (timing.offer === null) timing.offer = performance.now();
  send({ type: 'offer', sdp: pc.localDescription.sdp });
}

export async function onRemoteOffer(sdp) {
  const pc = M.pc;
  if (!pc || link.ended) return;
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

export async function onRemoteAnswer(sdp) {
  const pc = M.pc;
  if (!pc || link.ended) return;
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

export async function onGlare() {
  if (expectedGlare > 0) {
    // Already rolled back when the server's offer arrived; the re-offer follows (or went out) after our answer.
    expectedGlare -= 1;
    return;
  }
  if (M.pc && M.pc.signalingState === 'have-local-offer') {
    await M.pc.setLocalDescription({ type: 'rollback' });
    needOffer = true; // offered again once the server's offer has been answered
  }
}

export async function onBadSdp() {
  // The server rejected our offer; leave it so that the server's next offer can be answered.
  if (M.pc && M.pc.signalingState === 'have-local-offer') await M.pc.setLocalDescription({ type: 'rollback' });
}

function candidateInit(msg) {
  return {
    candidate: typeof msg.candidate === 'string' ? msg.candidate : '',
    sdpMid: typeof msg.sdp_mid === 'string' ? msg.sdp_mid : null,
    sdpMLineIndex: Number.isInteger(msg.sdp_mline_index) ? msg.sdp_mline_index : null,
  };
}

export async function onRemoteCandidate(msg) {
  const init = candidateInit(msg);
  if (!M.pc || !M.pc.remoteDescription) {
    pendingCandidates.push(init);
    return;
  }
  await addCandidate(init);
}

async function flushCandidates() {
  while (M.pc && M.pc.remoteDescription && pendingCandidates.length > 0) {
    await addCandidate(pendingCandidates.shift());
  }
}

async function addCandidate(init) {
  try {
    await M.pc.addIceCandidate(init); // candidate "" ends the candidates
  } catch (err) {
    console.warn('parlor: addIceCandidate failed', init, err);
  }
}

// ---- remote tracks and stats

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
  if (M.pc) for (const tr of M.pc.getTransceivers()) if (tr.mid !== null && tr.receiver.track) midToTrack.set(tr.mid, tr.receiver.track.id);
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

export async function inboundByPublisher() {
  if (!M.pc) return {};
  return collectInbound(await M.pc.getStats());
}

/** Periodic stats: one's own speaking indicator, and video that may be shown again. */
async function statsTick() {
  if (!M.pc || link.ended || S.view !== 'room') return;
  let stats;
  try { stats = await M.pc.getStats(); } catch { return; }
  const now = performance.now();
  const by = collectInbound(stats);
  M.lastInbound = by;
  for (const [id, entry] of Object.entries(by)) {
    const frames = entry.video?.framesDecoded || 0;
    frameArrived(id, null, frames);
    if (frames > 0) noteFirstRemoteFrame();
  }
  const micOn = M.localStream?.getAudioTracks().some((tr) => tr.enabled && tr.readyState === 'live');
  for (const r of stats.values()) {
    if (r.type === 'media-source' && r.kind === 'audio' && micOn && (r.audioLevel || 0) > SPEAKING_LEVEL) {
      selfSpeakingUntil = now + SPEAKING_HOLD_MS;
    }
  }
  showSpeaking();
}

/** Mark who speaks: others as the server says (`speaking`: only those this page may hear), oneself from the microphone. */
export function showSpeaking() {
  const now = performance.now();
  setSpeaking((id) => (id === S.myId ? selfSpeakingUntil > now : S.speaking.includes(id)));
}

export function startStats() {
  setInterval(statsTick, STATS_INTERVAL_MS);
}
