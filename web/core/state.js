// The room as this client knows it, shared by the core modules and the current game module.
// The call's state lives here; a game keeps its own state in its module.

import { t } from './i18n.js';

export const CODE_RE = /^[A-Za-z0-9-]{1,32}$/;

export const S = {
  view: 'loading',
  room: null,
  name: null,
  kind: null,             // welcome.kind / kind_changed: which game module draws the room
  locked: false,          // the host locked the room against newcomers
  iceServers: [],         // welcome.ice_servers: STUN/TURN for the peer connection
  pin: null,              // the room PIN typed on the join form, sent with every join of this page
  needPin: false,         // the server asked for a PIN (bad_pin)
  tv: false,              // the TV view (/r/CODE/tv): receive-only, read-only
  myId: null,
  hostId: null,
  limits: {},
  /** id -> participant object as last sent by the server (insertion order = order of arrival). */
  participants: new Map(),
  /** id -> name, kept after people leave (chat history, game-over reveal). */
  names: new Map(),
  /** The last `phase` message without its type: {phase, round, ends_at, …the game's fields}. */
  phase: { phase: 'lobby', round: 0, ends_at: null },
  phaseArrival: { perf: 0, server: 0 },
  phaseLog: [],
  receive: {},            // the last `media_state.receive`
  speaking: [],           // the last `speaking.ids`: who speaks among those this page hears, loudest first
  inviteOpen: null,       // null: automatic; true/false: the Invite button was used
  chat: [],
  errors: [],
};

/** The current kind's game module (see games/index.js); set by the session. */
export const current = { game: null };
export const game = () => current.game;

export const me = () => S.participants.get(S.myId) || null;
export const isHost = () => Boolean(S.myId) && S.hostId === S.myId;
export const phaseName = () => S.phase.phase;
/** A game is running (every kind starts in `lobby` and ends in `game_over`). */
export const inGame = () => !['lobby', 'game_over'].includes(phaseName());
/** A game's table exists (running or just ended). */
export const hasTable = () => phaseName() !== 'lobby';
export const phaseKey = () => `${S.phase.phase}:${S.phase.round}`;

export function nameOf(id) {
  if (id === null || id === undefined) return t('nobody');
  return S.participants.get(id)?.name ?? S.names.get(id) ?? t('someone');
}

/** Ids of those holding a seat in the game and alive. */
export function living() {
  return [...S.participants.values()].filter((p) => p.playing && p.alive).map((p) => p.id);
}

/** A list of names in the current language ("A, B and C" / "A, B, C"). */
export function nameList(ids) {
  return ids.map(nameOf).join(t('list.sep'));
}
