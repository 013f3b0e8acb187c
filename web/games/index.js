// The games this client draws, by room kind (`welcome.kind`, `kind_changed`). A new game is its module
// under games/ plus one line here. The first is the default kind (a room's kind before its welcome).
//
// A game module's default export (every member optional except `kind`):
//   kind, nameKey                     the kind on the wire; the string key of its name (home page, lobby)
//   strings: {en: {...}, ko: {...}}   its strings, keys prefixed with its kind (core/i18n.js)
//   icons: {name: svg path}           icons for its veils and screens
//   mount(), unmount()                add / take away its own elements (panel boxes, overlays)
//   reset()                           forget the last game (a new room, a new game)
//   onPhase(phase, previous)          every `phase` (phase.phase is the game's own string)
//   onMessage(msg)                    every server message type the core does not know
//   quietTypes: [type, ...]           its message types that onMessage draws itself: no full render() after them
//   onWelcome(welcome)                what a welcome during a game adds (a resumed seat's catch-up)
//   onError(code) → bool              an `error`; true when it changed what the game shows
//   render()                          draw its panel and overlays (after every message that changes the room)
//   banner() → [title, sub] | null    the phase banner (null: the core's, for the lobby)
//   tick(msLeft)                      every 250 ms with the countdown
//   tileState(id), veils, tileBadges(id), tileClasses(id)   what a participant's tile says
//   chatChannels(), channelName(c), chatClosed()            who writes where (`all` is the core's)
//   lobbyLine({settings, people, ready}), minPlayers         the host's lobby line; when to show the invite
//   settings: {defaults, normalize, build, read, problem, summary, toWire}   its start_game settings form
//   onLanguage()                      the language changed (redraw what render() does not)
//   errorText(code) → string | null   its own words for an `error` it knows (stage_full)
//   cameraLater, cameraLaterNotice    members join without a camera and turn it on in the room (app.js)
//   lobbyBox: 'host' | false          no game to start: only the host's powers (lock, remove, kind) | no box at all
//   surface                           getters copied onto window.parlor for tests and debugging

import mafia from './mafia.js';
import stage from './stage.js';
import draw from './draw.js';
import rlgl from './rlgl.js';

export const GAMES = {
  mafia,
  stage,
  draw,
  rlgl,
};

export const DEFAULT_KIND = Object.keys(GAMES)[0];
