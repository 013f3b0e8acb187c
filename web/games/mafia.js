// Mafia (kind `mafia`): roles, night actions, votes and the game-over reveal, drawn in the room page's
// panel and over the grid. Rules and wire: docs/PROTOCOL.md; the core hands this module every message it
// does not know (role, vote_update, investigation, eliminated, game_over).

import { $, formatClock, h } from '../core/dom.js';
import { t } from '../core/i18n.js';
import { send } from '../core/socket.js';
import { hasTable, inGame, isHost, living, me, nameList, nameOf, phaseKey, phaseName, S } from '../core/state.js';
import { announce, toast, ui } from '../core/ui.js';
import { systemLine } from '../core/chat.js';
import { badge, refreshTiles } from '../core/tiles.js';
import { startGameFromUi } from '../core/room.js';
import en from './mafia/en.js';
import ko from './mafia/ko.js';

const MIN_PLAYERS = 4;
const MAX_PLAYERS = 16;
/** Timed phases and their default lengths (seconds), as the server's rules have them. */
const TIMED_PHASES = ['role_reveal', 'night', 'dawn', 'day', 'nomination', 'defense', 'judgment', 'game_over'];
const DEFAULT_SECONDS = {
  role_reveal: 10, night: 45, dawn: 6, day: 120, nomination: 45, defense: 30, judgment: 20, game_over: 30,
};
const ROLES = ['mafia', 'doctor', 'detective', 'citizen', 'moderator'];

/** This game's state (the call's is the core's S). */
const G = {
  role: null,             // the `role` message of this game
  tally: null,            // the last `vote_update` of this phase
  investigations: [],     // {target, is_mafia, round}
  causes: {},             // id -> elimination cause, this game
  nightDeaths: [],        // eliminated during the current night
  sent: {},               // `${phase}:${round}` -> what this client sent (vote, action), until refused
  saves: {},              // round -> whom this doctor saved
  gameOver: null,         // the `game_over` message
  gameOverOpen: true,     // the game-over overlay has not been closed
  revealOpen: true,       // the role-reveal overlay has not been closed
};

/** This game's elements, made by mount(). */
const el = {};

const isModerator = () => G.role?.role === 'moderator';
const myRole = () => G.role?.role || null;
const amLiving = () => Boolean(me()?.playing && me()?.alive);
const amDead = () => hasTable() && Boolean(me()?.playing) && !me()?.alive;
const amSpectator = () => inGame() && !me()?.playing && !isModerator();
const roleName = (role) => (ROLES.includes(role) ? t(`mafia.role.${role}`) : role);
const phaseTitle = (phase) => (TIMED_PHASES.includes(phase) || phase === 'lobby' ? t(`mafia.phase.${phase}`) : phase);

/** The role this client knows for `id`, if any. */
function knownRole(id) {
  if (G.gameOver?.roles?.[id]) return G.gameOver.roles[id];
  if (!G.role || !hasTable()) return null;
  if (id === S.myId) return G.role.role;
  if (G.role.roles?.[id]) return G.role.roles[id];
  if (G.role.role === 'mafia' && (G.role.teammates || []).includes(id)) return 'mafia';
  return null;
}

/** A participant who is not playing while a game runs: the moderator (the host) or a spectator. */
function sideline(id) {
  const p = S.participants.get(id);
  if (!p || !inGame() || p.playing) return null;
  if (id === S.myId) return isModerator() ? 'moderator' : 'spectator';
  return id === S.hostId ? 'moderator' : 'spectator';
}

function reset() {
  G.role = null;
  G.tally = null;
  G.investigations = [];
  G.causes = {};
  G.nightDeaths = [];
  G.sent = {};
  G.saves = {};
  G.gameOver = null;
  G.gameOverOpen = true;
  G.revealOpen = true;
}

// ================================================================ elements

function mount() {
  el.nightTitle = h('h2', { id: 'night-title' });
  el.nightText = h('p', { id: 'night-text' });
  el.nightOverlay = h('div', { id: 'night-overlay', class: 'overlay night-overlay', hidden: true },
    h('div', { class: 'night-card' }, moonSvg(), el.nightTitle, el.nightText));
  el.reveal = h('div', { id: 'reveal', class: 'overlay reveal-overlay', hidden: true });
  el.gameover = h('div', { id: 'gameover', class: 'overlay gameover-overlay', hidden: true });
  ui.grid.after(el.nightOverlay, el.reveal);
  ui.announce.after(el.gameover);
  el.actionBox = h('section', { id: 'action-box', class: 'box action-box', hidden: true });
  el.roleBox = h('section', { id: 'role-box', class: 'box role-box', hidden: true });
  ui.lobbyBox.before(el.actionBox, el.roleBox);
}

function unmount() {
  for (const key of ['nightOverlay', 'reveal', 'gameover', 'actionBox', 'roleBox']) el[key]?.remove();
  ui.stage.classList.remove('covered');
}

function moonSvg() {
  const wrap = document.createElement('span');
  wrap.innerHTML = '<svg class="moon" viewBox="0 0 64 64" aria-hidden="true"><path d="M40 6a26 26 0 1 0 18 44A22 22 0 0 1 40 6z"/></svg>';
  return wrap.firstChild;
}

// ================================================================ messages

function onPhase(phase, previous) {
  phase.alive = Array.isArray(phase.alive) ? phase.alive : [];
  phase.accused = typeof phase.accused === 'string' ? phase.accused : null;
  G.tally = null;
  switch (phase.phase) {
    case 'lobby':
      reset();
      break;
    case 'role_reveal':
      reset();
      systemLine('mafia.log.new_game');
      break;
    case 'night':
      G.nightDeaths = [];
      break;
    case 'dawn':
      if (previous === 'night' && G.nightDeaths.length === 0) {
        announce(t('mafia.dawn.nobody_died'), t('mafia.dawn.town_wakes'));
        systemLine('mafia.dawn.nobody_died');
      }
      break;
    case 'defense':
      if (phase.accused === S.myId) announce(t('mafia.defense.you_on_trial'), t('mafia.defense.make_case'));
      else announce(t('mafia.defense.on_trial', { name: nameOf(phase.accused) }), t('mafia.defense.only_accused'));
      break;
    default:
      break;
  }
}

function onRole(msg) {
  G.role = {
    role: String(msg.role),
    teammates: Array.isArray(msg.teammates) ? msg.teammates : [],
    roles: msg.roles && typeof msg.roles === 'object' ? msg.roles : null,
  };
  G.revealOpen = true;
  refreshTiles();
}

function onInvestigation(msg) {
  const entry = { target: String(msg.target), is_mafia: Boolean(msg.is_mafia), round: S.phase.round };
  G.investigations.push(entry);
  toast(t(entry.is_mafia ? 'mafia.finding.is_mafia_loud' : 'mafia.finding.not_mafia', { name: nameOf(entry.target) }), 'info');
}

function onEliminated(id, cause) {
  if (typeof id !== 'string') return;
  G.causes[id] = cause;
  if (phaseName() === 'night') G.nightDeaths.push(id);
  const causeKey = ['killed', 'executed', 'left'].includes(cause) ? cause : 'out';
  systemLine(`mafia.cause.${causeKey}`, { name: nameOf(id) });
  if (id === S.myId) {
    announce(t(`mafia.you_died.${causeKey}`), t('mafia.you_died.ghost'), 'death');
  } else {
    announce(t(`mafia.cause.${causeKey}`, { name: nameOf(id) }), cause === 'killed' ? t('mafia.dawn.one_fewer') : '', 'death');
  }
}

function onGameOver(msg) {
  G.gameOver = { winner: String(msg.winner), roles: msg.roles && typeof msg.roles === 'object' ? msg.roles : {} };
  G.gameOverOpen = true;
  systemLine(G.gameOver.winner === 'town' ? 'mafia.log.town_wins' : 'mafia.log.mafia_win');
  refreshTiles();
}

function onMessage(msg) {
  switch (msg.type) {
    case 'role': onRole(msg); break;
    case 'vote_update': G.tally = msg; break;
    case 'investigation': onInvestigation(msg); break;
    case 'eliminated': onEliminated(msg.id, msg.cause); break;
    case 'game_over': onGameOver(msg); break;
    default: break;
  }
}

function onWelcome(msg) {
  if (msg.role) onRole(msg.role);
  if (msg.vote_update) G.tally = msg.vote_update;
  if (amSpectator()) toast(t('mafia.spectator.toast'), 'info');
}

function onError(code) {
  if (['not_allowed', 'wrong_phase', 'bad_field'].includes(code) && G.sent[phaseKey()] !== undefined) {
    // The vote or action just sent was refused: let the player choose again.
    delete G.sent[phaseKey()];
    if (phaseName() === 'night') delete G.saves[S.phase.round];
    return true;
  }
  return false;
}

// ================================================================ banner and overlays

function bannerText() {
  const { phase, round, accused } = S.phase;
  const role = myRole();
  switch (phase) {
    case 'lobby':
      return null; // the core's
    case 'role_reveal':
      return [t('mafia.banner.role_reveal'), t('mafia.banner.role_reveal_sub')];
    case 'night': {
      let sub = t('mafia.banner.night_sub');
      if (amLiving() && role === 'mafia') sub = t('mafia.banner.night_mafia');
      else if (amLiving() && role === 'doctor') sub = t('mafia.banner.night_doctor');
      else if (amLiving() && role === 'detective') sub = t('mafia.banner.night_detective');
      else if (isModerator()) sub = t('mafia.banner.night_moderator');
      else if (amDead()) sub = t('mafia.banner.night_ghost');
      return [t('mafia.banner.night', { round }), sub];
    }
    case 'dawn':
      return [t('mafia.banner.dawn', { round }), G.nightDeaths.length
        ? t('mafia.dawn.did_not_survive', { names: nameList(G.nightDeaths), count: G.nightDeaths.length })
        : t('mafia.dawn.nobody_died')];
    case 'day':
      return [t('mafia.banner.day', { round }), t('mafia.banner.day_sub')];
    case 'nomination':
      return [t('mafia.phase.nomination'), t('mafia.banner.nomination_sub')];
    case 'defense':
      return [t('mafia.phase.defense'), accused === S.myId ? t('mafia.banner.defense_you') : t('mafia.banner.defense_sub', { name: nameOf(accused) })];
    case 'judgment':
      return [t('mafia.phase.judgment'), t('mafia.judgment.question', { name: nameOf(accused) })];
    case 'game_over':
      return [t('mafia.phase.game_over'), G.gameOver ? t(G.gameOver.winner === 'town' ? 'mafia.over.town_wins' : 'mafia.over.mafia_win') : ''];
    default:
      return [phaseTitle(phase), ''];
  }
}

function banner() {
  const text = bannerText();
  if (text && amSpectator()) return [text[0], t('mafia.spectator.banner', { sub: text[1] })];
  return text;
}

/** Night overlay: for whoever receives nobody at night. */
function renderNight() {
  const others = [...S.participants.keys()].filter((id) => id !== S.myId);
  const receivesNobody = others.every((id) => {
    const r = S.receive[id];
    return r && !r.audio && !r.video;
  });
  const show = phaseName() === 'night' && receivesNobody && !isModerator();
  el.nightOverlay.hidden = !show;
  ui.stage.classList.toggle('covered', show);
  if (!show) return;
  el.nightTitle.textContent = t('mafia.banner.night', { round: S.phase.round });
  const role = myRole();
  let text = t('mafia.night.overlay');
  if (amSpectator()) text = t('mafia.night.overlay_spectator');
  else if (amLiving() && (role === 'doctor' || role === 'detective')) {
    text = G.sent[phaseKey()] !== undefined
      ? t('mafia.night.overlay_done')
      : t(role === 'doctor' ? 'mafia.night.overlay_doctor' : 'mafia.night.overlay_detective');
  }
  el.nightText.textContent = text;
}

function roleCard(info, big = false) {
  const role = info.role;
  const card = h('div', { class: `role-card role-${role}${big ? ' big' : ''}`, dataset: { role, testid: 'role-card' } },
    h('div', { class: 'role-kicker', text: t('mafia.card.your_role') }),
    h('div', { class: 'role-name', text: roleName(role) }),
    h('p', { class: 'role-text', text: ROLES.includes(role) ? t(`mafia.role_text.${role}`) : '' }));
  if (role === 'mafia') {
    const mates = info.teammates || [];
    card.append(h('p', { class: 'teammates', dataset: { teammates: mates.join(' ') } },
      mates.length ? t('mafia.card.teammates', { names: nameList(mates), count: mates.length }) : t('mafia.card.alone')));
  }
  if (role === 'moderator' && info.roles) {
    card.append(h('ul', { class: 'all-roles' },
      Object.entries(info.roles).map(([id, r]) => h('li', { dataset: { id, role: r } },
        h('span', { class: 'who', text: nameOf(id) }),
        h('span', { class: `role-tag role-${r}`, text: roleName(r) })))));
  }
  if (role === 'detective' && G.investigations.length > 0) {
    card.append(h('ul', { class: 'findings' },
      G.investigations.map((f) => h('li', { class: f.is_mafia ? 'found-mafia' : 'found-clean', dataset: { target: f.target, mafia: f.is_mafia } },
        t(f.is_mafia ? 'mafia.finding.night_is' : 'mafia.finding.night_not', { round: f.round, name: nameOf(f.target) })))));
  }
  return card;
}

function renderReveal() {
  const show = phaseName() === 'role_reveal' && G.role && G.revealOpen;
  el.reveal.hidden = !show;
  if (!show) return;
  el.reveal.replaceChildren(h('div', { class: 'reveal-wrap' },
    roleCard(G.role, true),
    h('button', { type: 'button', class: 'small', text: t('mafia.hide'), onclick: () => { G.revealOpen = false; renderReveal(); } })));
}

function renderRoleBox() {
  const show = hasTable() && Boolean(G.role);
  el.roleBox.hidden = !show;
  if (!show) return;
  const parts = [roleCard(G.role)];
  if (amDead() && inGame()) parts.push(h('p', { class: 'status-line dead-line', text: t('mafia.dead_line') }));
  el.roleBox.replaceChildren(...parts);
}

// ================================================================ actions: votes and night actions, only when and for whom they are valid

function targetButtons(ids, onPick, chosen) {
  return h('div', { class: 'targets' }, ids.map((id) => h('button', {
    type: 'button',
    class: `target${chosen === id ? ' chosen' : ''}`,
    'data-target': id,
    disabled: chosen !== undefined,
    text: nameOf(id),
    onclick: () => onPick(id),
  })));
}

function sendOnce(msg, remember) {
  if (G.sent[phaseKey()] !== undefined) return;
  if (!send(msg)) { toast(t('mafia.not_connected')); return; }
  G.sent[phaseKey()] = remember;
  render();
}

function tallyRow(cls, data, who, n, voters) {
  return h('li', { class: cls, dataset: data },
    h('span', { class: 'who', text: who }),
    h('span', { class: 'bar', style: `--n:${n}` }),
    h('span', { class: 'count', text: String(n) }),
    h('span', { class: 'voters hint', text: voters }));
}

function tallyView() {
  const tl = G.tally;
  if (!tl) return null;
  const votes = tl.votes && typeof tl.votes === 'object' ? tl.votes : {};
  if (tl.kind === 'call_vote') {
    const callers = Object.keys(votes);
    return h('div', { class: 'tally', dataset: { kind: tl.kind } },
      h('p', { class: 'tally-head', text: t('mafia.tally.called', { count: callers.length, needed: tl.needed ?? '?' }) }),
      callers.length ? h('p', { class: 'hint', text: nameList(callers) }) : null);
  }
  if (tl.kind === 'nomination') {
    const counts = new Map();
    let abstain = 0;
    for (const target of Object.values(votes)) {
      if (target === null) abstain += 1;
      else counts.set(target, (counts.get(target) || 0) + 1);
    }
    const missing = Math.max(0, living().length - Object.keys(votes).length);
    const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    return h('div', { class: 'tally', dataset: { kind: tl.kind } },
      h('p', { class: 'tally-head', text: t('mafia.tally.voted', { count: Object.keys(votes).length, total: living().length }) }),
      h('ul', { class: 'tally-rows' },
        rows.map(([target, n]) => tallyRow('', { target, count: n }, nameOf(target), n,
          nameList(Object.entries(votes).filter(([, v]) => v === target).map(([voter]) => voter)))),
        tallyRow('no-trial', { target: '', count: abstain + missing }, t('mafia.tally.no_trial'), abstain + missing,
          t('mafia.tally.abstained', { abstain, missing }))));
  }
  if (tl.kind === 'judgment') {
    const guilty = Object.entries(votes).filter(([, v]) => v === 'guilty').map(([id]) => id);
    const innocent = Object.entries(votes).filter(([, v]) => v === 'innocent').map(([id]) => id);
    return h('div', { class: 'tally', dataset: { kind: tl.kind } },
      h('ul', { class: 'tally-rows' },
        tallyRow('guilty', { count: guilty.length }, t('mafia.verdict.guilty'), guilty.length, nameList(guilty)),
        tallyRow('innocent', { count: innocent.length }, t('mafia.verdict.innocent'), innocent.length, nameList(innocent))));
  }
  return null;
}

const statusLine = (text, cls = '') => h('p', { class: `status-line${cls ? ` ${cls}` : ''}`, text });

function nightActionView() {
  const role = myRole();
  const round = S.phase.round;
  const chosen = G.sent[phaseKey()];
  const pick = (id) => {
    if (role === 'doctor') G.saves[round] = id;
    sendOnce({ type: 'night_action', target: id }, id);
  };
  const alive = living();
  let ids;
  if (role === 'mafia') {
    const mates = new Set([S.myId, ...(G.role.teammates || [])]);
    ids = alive.filter((id) => !mates.has(id));
  } else if (role === 'doctor') {
    const last = G.saves[round - 1];
    ids = alive.filter((id) => id !== last);
  } else if (role === 'detective') {
    ids = alive.filter((id) => id !== S.myId);
  } else {
    return [statusLine(t('mafia.night.asleep'))];
  }
  const parts = [h('h2', { text: t(`mafia.night.ask_${role}`) }), targetButtons(ids, pick, chosen)];
  if (role === 'doctor' && G.saves[round - 1] && alive.includes(G.saves[round - 1])) {
    parts.push(h('p', { class: 'hint', text: t('mafia.night.saved_last', { name: nameOf(G.saves[round - 1]) }) }));
  }
  if (chosen !== undefined) {
    parts.push(statusLine(t(`mafia.night.chose_${role}`, { name: nameOf(chosen) }), 'done'));
    if (role === 'detective') {
      const found = G.investigations.find((f) => f.round === round && f.target === chosen);
      if (found) parts.push(h('p', { class: `finding ${found.is_mafia ? 'found-mafia' : 'found-clean'}`, text: t(found.is_mafia ? 'mafia.finding.is_mafia_loud' : 'mafia.finding.not_mafia', { name: nameOf(found.target) }) }));
    }
  }
  return parts;
}

function renderActions() {
  const phase = phaseName();
  if (!inGame()) { el.actionBox.hidden = true; return; }
  const alive = amLiving();
  const chosen = G.sent[phaseKey()];
  const votes = G.tally?.votes || {};
  let parts = [];
  switch (phase) {
    case 'role_reveal':
      parts = [statusLine(t('mafia.reveal.get_ready'))];
      break;
    case 'night':
      if (alive) parts = nightActionView();
      else if (isModerator()) parts = [statusLine(t('mafia.night.moderator'))];
      else if (amDead()) parts = [statusLine(t('mafia.banner.night_ghost'))];
      else parts = [statusLine(t('mafia.night.sleeps'))];
      break;
    case 'dawn':
      parts = [statusLine(bannerText()[1])];
      break;
    case 'day': {
      if (alive) {
        const called = Boolean(votes[S.myId]) || chosen !== undefined;
        parts.push(h('button', {
          type: 'button', id: 'call-vote', class: 'primary', disabled: called,
          text: called ? t('mafia.day.called') : t('mafia.day.call'),
          onclick: () => sendOnce({ type: 'call_vote' }, true),
        }));
      }
      parts.push(tallyView() || h('p', { class: 'hint', text: t('mafia.day.hint') }));
      break;
    }
    case 'nomination': {
      if (alive) {
        const mine = S.myId in votes ? votes[S.myId] : chosen;
        const voted = mine !== undefined;
        parts.push(h('h2', { text: t('mafia.nomination.ask') }));
        parts.push(h('div', { class: 'targets' },
          living().filter((id) => id !== S.myId).map((id) => h('button', {
            type: 'button', class: `target${mine === id ? ' chosen' : ''}`, dataset: { voteTarget: id }, disabled: voted,
            text: nameOf(id), onclick: () => sendOnce({ type: 'vote', target: id }, id),
          })),
          h('button', {
            type: 'button', class: `target abstain${voted && mine === null ? ' chosen' : ''}`, dataset: { voteTarget: '' }, disabled: voted,
            text: t('mafia.nomination.abstain'), onclick: () => sendOnce({ type: 'vote', target: null }, null),
          })));
        if (voted) parts.push(statusLine(mine === null ? t('mafia.nomination.you_abstained') : t('mafia.nomination.you_voted', { name: nameOf(mine) }), 'done'));
      }
      parts.push(tallyView());
      break;
    }
    case 'defense':
      parts = [statusLine(S.phase.accused === S.myId ? t('mafia.defense.you_line') : t('mafia.defense.line', { name: nameOf(S.phase.accused) }))];
      break;
    case 'judgment': {
      const juror = alive && S.phase.accused !== S.myId;
      parts.push(h('h2', { text: t('mafia.judgment.question', { name: nameOf(S.phase.accused) }) }));
      if (juror) {
        const mine = votes[S.myId] ?? chosen;
        const voted = mine !== undefined;
        parts.push(h('div', { class: 'verdicts' },
          h('button', { type: 'button', id: 'verdict-guilty', class: `verdict guilty${mine === 'guilty' ? ' chosen' : ''}`, disabled: voted, text: t('mafia.verdict.guilty'), onclick: () => sendOnce({ type: 'vote', verdict: 'guilty' }, 'guilty') }),
          h('button', { type: 'button', id: 'verdict-innocent', class: `verdict innocent${mine === 'innocent' ? ' chosen' : ''}`, disabled: voted, text: t('mafia.verdict.innocent'), onclick: () => sendOnce({ type: 'vote', verdict: 'innocent' }, 'innocent') })));
        if (voted) parts.push(statusLine(t('mafia.judgment.you_voted', { verdict: t(`mafia.verdict.${mine}`) }), 'done'));
      } else if (S.phase.accused === S.myId) {
        parts.push(statusLine(t('mafia.judgment.your_fate')));
      }
      parts.push(tallyView());
      break;
    }
    default:
      break;
  }
  if (amSpectator()) parts.unshift(statusLine(t('mafia.spectator.line'), 'spectator-line'));
  el.actionBox.dataset.phase = phase;
  el.actionBox.replaceChildren(...parts.filter(Boolean));
  el.actionBox.hidden = el.actionBox.childElementCount === 0;
}

// ================================================================ game over

function renderGameOver() {
  const show = phaseName() === 'game_over' && Boolean(G.gameOver) && G.gameOverOpen;
  el.gameover.hidden = !show;
  if (!show) return;
  const { winner, roles } = G.gameOver;
  const order = [...new Set([...S.participants.keys(), ...Object.keys(roles)])].filter((id) => roles[id]);
  const mine = roles[S.myId];
  let verdict = '';
  if (mine && mine !== 'moderator') verdict = (mine === 'mafia') === (winner === 'mafia') ? t('mafia.over.you_won') : t('mafia.over.you_lost');
  const fate = (id) => {
    if (!S.participants.has(id)) return 'left';
    const p = S.participants.get(id);
    if (p.alive) return 'survived';
    return ['executed', 'killed', 'left'].includes(G.causes[id]) ? G.causes[id] : 'dead';
  };
  const actions = [h('button', { type: 'button', class: 'small', text: t('mafia.over.close'), onclick: () => { G.gameOverOpen = false; renderGameOver(); } })];
  if (isHost()) actions.unshift(h('button', { type: 'button', id: 'play-again', class: 'primary', text: t('mafia.over.play_again'), onclick: startGameFromUi }));
  el.gameover.replaceChildren(h('div', { class: `gameover-card winner-${winner}`, dataset: { winner } },
    h('div', { class: 'role-kicker', text: t('mafia.phase.game_over') }),
    h('h2', { text: t(winner === 'town' ? 'mafia.over.town_wins_title' : 'mafia.over.mafia_win_title') }),
    h('p', { class: 'gameover-why', text: t(winner === 'town' ? 'mafia.over.town_why' : 'mafia.over.mafia_why') }),
    verdict ? h('p', { class: 'gameover-you', text: verdict }) : null,
    h('ul', { class: 'reveal-list' }, order.map((id) => h('li', { dataset: { id, role: roles[id], fate: fate(id) } },
      h('span', { class: 'who', text: id === S.myId ? t('mafia.over.you', { name: nameOf(id) }) : nameOf(id) }),
      h('span', { class: `role-tag role-${roles[id]}`, text: roleName(roles[id]) }),
      h('span', { class: 'fate', text: t(`mafia.fate.${fate(id)}`) })))),
    h('p', { class: 'back-in hint' }),
    h('div', { class: 'row end' }, actions)));
}

function tick(left) {
  const clockLine = el.gameover?.querySelector('.back-in');
  if (clockLine) clockLine.textContent = t('mafia.over.back_in', { time: formatClock(left) });
}

function render() {
  renderNight();
  renderReveal();
  renderGameOver();
  renderRoleBox();
  renderActions();
}

// ================================================================ tiles

const VEILS = {
  asleep: ['moon', 'mafia.veil.asleep'],
  dead: ['grave', 'mafia.veil.dead'],
  watching: ['eye', 'mafia.veil.watching'],
};

function tileState(id) {
  const p = S.participants.get(id);
  if (sideline(id) === 'spectator') return 'watching';
  if (hasTable() && p?.playing && !p.alive) return 'dead';
  if (phaseName() === 'night') return 'asleep';
  return null;
}

function tileBadges(id) {
  const p = S.participants.get(id);
  const side = sideline(id);
  const role = knownRole(id);
  const extra = [];
  if (role && role !== 'moderator' && hasTable()) extra.push(badge(roleName(role), `role role-${role}`));
  if (hasTable() && p?.playing && !p.alive) extra.push(badge(t('mafia.badge.dead'), 'dead'));
  if (side === 'spectator') extra.push(badge(t('mafia.badge.watching'), 'watching'));
  const out = { extra };
  if (side === 'moderator') out.host = badge(t('mafia.badge.moderator'), 'host');
  return out;
}

function tileClasses(id) {
  const p = S.participants.get(id);
  const role = knownRole(id);
  return {
    dead: hasTable() && p?.playing && !p.alive,
    accused: Boolean(S.phase.accused) && id === S.phase.accused && inGame(),
    teammate: id !== S.myId && role === 'mafia' && myRole() === 'mafia' && inGame(),
  };
}

// ================================================================ chat: who writes where (docs/PROTOCOL.md, chat)

function chatChannels() {
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

function chatClosed() {
  if (amSpectator()) return t('mafia.chat.spectator');
  if (phaseName() === 'night') return t('mafia.chat.night');
  return null;
}

// ================================================================ settings (home page and lobby)

function defaults() {
  return { mafia: null, doctor: null, detective: null, host_plays: true, phase_seconds: {} };
}

function normalize(s) {
  return { ...defaults(), ...s, phase_seconds: { ...(s.phase_seconds || {}) } };
}

/** The settings inputs, with ids `${prefix}-mafia`, `${prefix}-len-night`, … */
function build(container, prefix, settings, { foldLengths = true } = {}) {
  const count = (key, min, label) => h('label', { class: 'num' },
    h('span', { text: label }),
    h('input', {
      id: `${prefix}-${key}`, type: 'number', min, max: 15, step: 1, inputmode: 'numeric',
      placeholder: t('mafia.settings.auto'), value: settings[key] ?? '',
    }));
  const length = (phase) => h('label', { class: 'num' },
    h('span', { text: phaseTitle(phase) }),
    h('input', {
      id: `${prefix}-len-${phase}`, type: 'number', min: 1, max: 3600, step: 'any', inputmode: 'decimal',
      placeholder: String(DEFAULT_SECONDS[phase]), value: settings.phase_seconds?.[phase] ?? '',
    }));
  const plays = settings.host_plays !== false;
  container.replaceChildren(
    h('fieldset', { class: 'counts' },
      h('legend', { text: t('mafia.settings.roles') }),
      h('div', { class: 'num-row' },
        count('mafia', 1, t('mafia.settings.mafia')), count('doctor', 0, t('mafia.settings.doctors')), count('detective', 0, t('mafia.settings.detectives'))),
      h('p', { class: 'hint', text: t('mafia.settings.auto_hint') })),
    h('fieldset', { class: 'host-mode' },
      h('legend', { text: t('mafia.settings.host') }),
      h('label', { class: 'radio' },
        h('input', { type: 'radio', name: `${prefix}-host`, id: `${prefix}-plays`, value: 'play', checked: plays }),
        h('span', { text: t('mafia.settings.host_plays') })),
      h('label', { class: 'radio' },
        h('input', { type: 'radio', name: `${prefix}-host`, id: `${prefix}-moderates`, value: 'moderate', checked: !plays }),
        h('span', { text: t('mafia.settings.host_moderates') }))),
    foldLengths
      ? h('details', { class: 'lengths' },
        h('summary', { text: t('mafia.settings.lengths') }),
        h('div', { class: 'num-grid' }, TIMED_PHASES.map(length)))
      : h('fieldset', { class: 'lengths' },
        h('legend', { text: t('mafia.settings.lengths') }),
        h('div', { class: 'num-grid' }, TIMED_PHASES.map(length))),
  );
}

/** One line: "2 mafia · 1 doctor · auto detectives · host plays · custom phase lengths". */
function summary(s) {
  const custom = Object.keys(s.phase_seconds || {}).length;
  return [
    t('mafia.summary.mafia', { n: s.mafia ?? null }),
    t('mafia.summary.doctor', { n: s.doctor ?? null }),
    t('mafia.summary.detective', { n: s.detective ?? null }),
    s.host_plays === false ? t('mafia.summary.host_moderates') : t('mafia.summary.host_plays'),
    t('mafia.summary.lengths', { n: custom }),
  ].join(' · ');
}

function read(prefix) {
  const number = (id) => {
    const input = $(id);
    const raw = input ? input.value.trim() : '';
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

function problem(s) {
  const int = (v, min) => v === null || (Number.isInteger(v) && v >= min && v <= 15);
  if (!int(s.mafia, 1)) return t('mafia.settings.bad_mafia');
  if (!int(s.doctor, 0)) return t('mafia.settings.bad_doctors');
  if (!int(s.detective, 0)) return t('mafia.settings.bad_detectives');
  for (const [phase, v] of Object.entries(s.phase_seconds || {})) {
    if (!(Number.isFinite(v) && v > 0 && v <= 3600)) return t('mafia.settings.bad_length', { phase: phaseTitle(phase) });
  }
  return null;
}

/** `start_game.settings` on the wire: only what was chosen. */
function toWire(s) {
  const wire = { host_plays: s.host_plays !== false };
  for (const key of ['mafia', 'doctor', 'detective']) if (s[key] !== null && s[key] !== undefined) wire[key] = s[key];
  if (Object.keys(s.phase_seconds || {}).length > 0) wire.phase_seconds = { ...s.phase_seconds };
  return wire;
}

function lobbyLine({ settings, people, ready }) {
  const players = people.length - (settings.host_plays === false ? 1 : 0);
  let line = t(settings.host_plays === false ? 'mafia.lobby.players_moderated' : 'mafia.lobby.players', { n: players, ready, min: MIN_PLAYERS, max: MAX_PLAYERS });
  if (players < MIN_PLAYERS) line += ` ${t('mafia.lobby.invite_more', { n: MIN_PLAYERS - players })}`;
  return line;
}

// ================================================================ the module

export default {
  kind: 'mafia',
  nameKey: 'mafia.name',
  strings: { en, ko },
  icons: {
    moon: '<path d="M15.5 3.5a8.5 8.5 0 1 0 5 14.6A7 7 0 0 1 15.5 3.5z" fill="currentColor" stroke="none"/>',
    grave: '<path d="M6 21V10a6 6 0 0 1 12 0v11zM4 21h16M12 8v7m-2.5-4.5h5"/>',
  },
  minPlayers: MIN_PLAYERS,
  mount,
  unmount,
  reset,
  onPhase,
  onMessage,
  onWelcome,
  onError,
  render,
  banner,
  tick,
  veils: VEILS,
  tileState,
  tileBadges,
  tileClasses,
  chatChannels,
  channelName: (channel) => (['mafia', 'dead'].includes(channel) ? t(`mafia.channel.${channel}`) : channel),
  chatClosed,
  lobbyLine,
  settings: { defaults, normalize, build, read, problem, summary, toWire },
  surface: {
    get role() { return G.role; },
    get tally() { return G.tally; },
    get gameOver() { return G.gameOver; },
    get investigations() { return G.investigations; },
  },
};
