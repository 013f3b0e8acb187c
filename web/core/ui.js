// The page's fixed elements, views, toasts, notices and announcements.

import { $, h } from './dom.js';
import { S } from './state.js';

const TOAST_MS = 5000;
const ANNOUNCE_MS = 4500;

export const ui = {
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
  announce: $('announce'),
  soundBanner: $('sound-banner'),
  panel: $('panel'),
  invite: $('invite'),
  inviteLink: $('invite-link'),
  inviteQr: $('invite-qr'),
  copyLink: $('copy-link'),
  lobbyBox: $('lobby-box'),
  lobbyTitle: $('lobby-title'),
  readyToggle: $('ready-toggle'),
  lockLine: $('lock-line'),
  lockText: $('lock-text'),
  lockToggle: $('lock-toggle'),
  roster: $('roster'),
  lobbyWait: $('lobby-wait'),
  kindLine: $('kind-line'),
  kindSelect: $('kind-select'),
  settingsForm: $('settings-form'),
  settingsSummary: $('settings-summary'),
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
  langSelect: $('lang-select'),
};

export function showView(view) {
  S.view = view;
  document.body.dataset.view = view;
  for (const id of ['home', 'prejoin', 'room']) $(id).hidden = id !== view;
  ui.banner.hidden = view !== 'room';
  ui.controls.hidden = view !== 'room';
}

export function toast(text, kind = 'error') {
  const el = h('div', { class: `toast ${kind}`, text });
  ui.toasts.append(el);
  while (ui.toasts.children.length > 4) ui.toasts.firstElementChild.remove();
  setTimeout(() => el.remove(), TOAST_MS);
}

export function showNotice(text) {
  ui.notice.textContent = text || '';
  ui.notice.hidden = !text;
}

export function setStatus(text) {
  ui.status.textContent = text;
}

export function formError(id, text) {
  $(id).textContent = text || '';
  $(id).hidden = !text;
}

let announceTimer = null;

/** A message over the grid for a few seconds (`kind`: a class, e.g. `death`). */
export function announce(title, text, kind = '') {
  // replaceChildren would print a null child as the text "null".
  ui.announce.replaceChildren(...[h('strong', { text: title }), text ? h('span', { text }) : null].filter(Boolean));
  ui.announce.className = `announce ${kind}`;
  ui.announce.hidden = false;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { ui.announce.hidden = true; }, ANNOUNCE_MS);
}

ui.announce.addEventListener('click', () => { ui.announce.hidden = true; });
