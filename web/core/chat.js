// The chat: its log, and a form offering only the channels this client may write now. The core knows
// the channel `all`; a game adds its own (chatChannels, channelName, chatClosed).

import { h } from './dom.js';
import { t } from './i18n.js';
import { serverNow, timeOfDay } from './clock.js';
import { send } from './socket.js';
import { game, inGame, nameOf, S } from './state.js';
import { toast, ui } from './ui.js';

const CHAT_MAX = 500;
const CHAT_KEEP = 300;

export function channelName(channel) {
  if (channel === 'all') return t('chat.channel.all');
  return game()?.channelName?.(channel) ?? channel;
}

/** The channels this client may write now: the game's rule, else `all` (nothing during a game). */
export function writableChannels() {
  const g = game();
  if (g?.chatChannels) return g.chatChannels();
  return inGame() ? [] : ['all'];
}

export function renderChatForm() {
  const channels = writableChannels();
  const current = ui.chatChannel.value;
  const have = [...ui.chatChannel.options].map((o) => `${o.value}=${o.textContent}`).join(',');
  const want = channels.map((c) => `${c}=${channelName(c)}`).join(',');
  if (have !== want) {
    ui.chatChannel.replaceChildren(...channels.map((c) => h('option', { value: c, text: channelName(c) })));
    // Keep what was chosen while it is still offered.
    if (channels.includes(current)) ui.chatChannel.value = current;
    else if (channels.length) ui.chatChannel.value = channels[0];
  }
  ui.chatChannel.hidden = channels.length <= 1 && channels[0] === 'all';
  ui.chatForm.hidden = channels.length === 0;
  ui.chatForm.dataset.channels = channels.join(' ');
  ui.chatInput.placeholder = channels.length === 1 ? t('chat.placeholder_to', { channel: channelName(channels[0]) }) : t('chat.placeholder');
  let closed = '';
  if (channels.length === 0) closed = game()?.chatClosed?.() || t('chat.closed');
  ui.chatClosed.textContent = closed;
  ui.chatClosed.hidden = !closed;
}

function chatLine(item) {
  if (item.system) return h('li', { class: 'sys', text: t(item.key, item.params) });
  return h('li', { class: `msg ch-${item.channel}${item.from === S.myId ? ' mine' : ''}`, dataset: { channel: item.channel, from: item.from } },
    h('span', { class: `ch ch-${item.channel}`, text: channelName(item.channel) }),
    h('span', { class: 'from', text: nameOf(item.from) }),
    h('span', { class: 'time hint', text: item.at ? timeOfDay(item.at) : '' }),
    h('span', { class: 'text', text: item.text }));
}

function appendChatItem(item) {
  S.chat.push(item);
  if (S.chat.length > CHAT_KEEP) S.chat.shift();
  const atBottom = ui.chatLog.scrollHeight - ui.chatLog.scrollTop - ui.chatLog.clientHeight < 40;
  ui.chatLog.append(chatLine(item));
  while (ui.chatLog.children.length > CHAT_KEEP) ui.chatLog.firstElementChild.remove();
  if (atBottom) ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

/** A line from the room itself (someone joined, a game began): a string key, so it follows the language. */
export function systemLine(key, params = {}) {
  appendChatItem({ system: true, key, params, text: t(key, params), at: serverNow() });
}

/** Draw the log again (after a change of language). */
export function redrawChat() {
  for (const item of S.chat) if (item.system) item.text = t(item.key, item.params);
  ui.chatLog.replaceChildren(...S.chat.map(chatLine));
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

export function onChat(msg) {
  appendChatItem({ from: String(msg.from), channel: String(msg.channel), text: String(msg.text ?? ''), at: Number(msg.at) || null });
}

ui.chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text) return;
  if ([...text].length > CHAT_MAX) { toast(t('chat.too_long', { max: CHAT_MAX })); return; }
  const channel = ui.chatChannel.value || writableChannels()[0];
  if (!channel) return;
  if (send({ type: 'chat', channel, text })) ui.chatInput.value = '';
});
