//! Driving the game: inputs in (logged), events out — routes applied first, then the messages,
//! then each changed `media_state` — and the game log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tracing::{debug, info};

use super::{Cause, Room};
use crate::game::{AnyEvent, AnyInput, GameError, Id, Input, MediaKind, Millis, Routes, LOBBY};
use crate::gamelog::{self, GameLog, Record};
use crate::media::MediaNotice;
use crate::protocol::{ErrorCode, LeaveReason, MediaStateInfo, Reception, Refusal, ServerMsg};

impl Room {
    /// A seat's input from its connection: a game message must be one of this room's game's.
    pub(super) fn play_checked(&mut self, now: Millis, who: &str, input: AnyInput) -> Result<(), Refusal> {
        if let Input::Game(value) = &input {
            let ty = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
            if !self.game.accepts(ty) {
                return Err(self.home.registry().refuse_type(ty, self.game.kind()).into());
            }
        }
        self.play(now, who, input).map_err(Refusal::from)
    }

    /// Hand one input to the game, recording it (and, for a game that starts, opening its log
    /// first). Each game gets a fresh seed, so each game replays on its own.
    pub(super) fn play(&mut self, now: Millis, who: &str, input: AnyInput) -> Result<(), GameError> {
        let input = match input {
            Input::Start { settings, .. } => {
                if self.game.next_deadline().is_some_and(|d| d <= now) {
                    // A timer of the old game is due: it belongs to the old game's log.
                    self.game_timeout(now);
                    self.drain_game();
                }
                // What the host leaves out, the room's defaults (set at creation) fill in.
                let settings = merge_defaults(settings, &self.options.settings);
                Input::Start { settings, seed: Some(rand::random()) }
            }
            other => other,
        };
        let header = match &input {
            Input::Start { seed: Some(seed), .. } => {
                Some(gamelog::header(self.game.kind(), &self.code, *seed, now, self.game.roster()))
            }
            _ => None,
        };
        let recorded = input.clone();
        let result = self.game.handle(now, who, input);
        if let (Some(header), true) = (header, result.is_ok()) {
            self.open_log(header);
        }
        self.record(Record::Input { at: now, who: who.to_owned(), input: recorded });
        result
    }

    /// The game's timer is due.
    pub(super) fn game_timeout(&mut self, now: Millis) {
        self.record(Record::Timeout { at: now });
        self.game.handle_timeout(now);
    }

    /// Move the game's events to `pending`, recording them; a game back in the lobby closes
    /// its log.
    fn drain_game(&mut self) {
        while let Some(event) = self.game.poll_event() {
            let back_in_lobby = matches!(&event, AnyEvent::Phase { name, .. } if name == LOBBY);
            if self.log.is_some() {
                self.record(Record::Event { event: gamelog::event_json(&event) });
            }
            self.pending.push(event);
            if back_in_lobby {
                self.close_log();
            }
        }
    }

    /// Drain the game's events; apply the routes that changed (and wait for that); then send
    /// the events, and `media_state` to whoever's view changed.
    pub(super) async fn after_game(&mut self) {
        self.after_game_since(Instant::now(), Cause::Input).await;
    }

    /// [`Self::after_game`], with a phase switch's apply time counted from `started` (when the
    /// input or timer that caused it was taken up).
    pub(super) async fn after_game_since(&mut self, started: Instant, cause: Cause) {
        self.drain_game();
        let events = std::mem::take(&mut self.pending);
        let switching = events.iter().any(|e| matches!(e, AnyEvent::Phase { .. }));
        let routes = self.game.routes();
        let changes = routes.changes_from(&self.routes);
        let mut touched = BTreeSet::new();
        if !changes.is_empty() {
            touched = Routes::touched(&self.routes, &changes);
            self.epoch += 1;
            let count = changes.len();
            self.media.update_routes(self.epoch, changes).await;
            self.routes = routes;
            debug!(room = %self.code, epoch = self.epoch, changes = count,
                apply_us = started.elapsed().as_micros() as u64, "routes applied");
        }
        if switching {
            let took = started.elapsed();
            let stats = self.home.stats();
            stats.phase_switches.fetch_add(1, Ordering::Relaxed);
            let histogram = match cause {
                Cause::Timer => &stats.phase_switch_apply,
                Cause::Input => &stats.phase_switch_apply_input,
            };
            histogram.observe(took);
            debug!(room = %self.code, ?cause, elapsed_us = took.as_micros() as u64, "phase switch applied");
        }
        let mut kicked = Vec::new();
        for event in events {
            match event {
                AnyEvent::Send { to, text } => self.send_to(&to, text),
                AnyEvent::Phase { info, .. } => {
                    let serde_json::Value::Object(info) = info else { continue };
                    self.broadcast(&ServerMsg::Phase(info));
                    // Everyone's view, right after every phase message, changed or not.
                    for id in self.members.ids() {
                        self.send_media_state(&id, true);
                        self.send_speaking(&id, true);
                    }
                }
                AnyEvent::Updated(id) => {
                    if self.members.contains(&id) {
                        self.broadcast(&ServerMsg::ParticipantUpdated { participant: self.participant(&id) });
                    }
                }
                AnyEvent::HostChanged(host) => self.broadcast(&ServerMsg::HostChanged { host }),
                AnyEvent::Kicked(id) => kicked.push(id),
                AnyEvent::Chat { to, line } => self.send_to(&to, ServerMsg::Chat(line).to_text()),
            }
        }
        // Views change within a phase too: a route that changed, someone who came or went.
        let changed: Vec<Id> = if std::mem::take(&mut self.membership_changed) {
            self.members.ids()
        } else {
            touched.into_iter().collect()
        };
        for id in changed {
            self.send_media_state(&id, false);
            self.send_speaking(&id, false);
        }
        for id in kicked {
            self.send(&id, &ServerMsg::error(ErrorCode::Kicked, "the host removed you from this room"));
            Box::pin(self.remove(&id, LeaveReason::Kicked)).await;
        }
    }

    fn open_log(&mut self, header: Record) {
        self.close_log();
        let Some(dir) = self.settings.game_log_dir.clone() else { return };
        match GameLog::create(&dir, &header) {
            Ok(log) => {
                info!(room = %self.code, path = %log.path().display(), "game log");
                self.log = Some(log);
            }
            Err(e) => tracing::warn!(room = %self.code, "cannot write a game log in {}: {e}", dir.display()),
        }
    }

    fn record(&mut self, record: Record) {
        let Some(log) = &mut self.log else { return };
        if let Err(e) = log.write(&record) {
            tracing::warn!(room = %self.code, "game log write failed, logging stops for this game: {e}");
            self.log = None;
        }
    }

    pub(super) fn close_log(&mut self) {
        if let Some(mut log) = self.log.take() {
            if let Err(e) = log.flush() {
                tracing::warn!(room = %self.code, "game log flush failed: {e}");
            }
        }
    }

    /// What `id` may receive from each other participant under the applied routes.
    pub(super) fn media_state(&self, id: &str) -> BTreeMap<Id, Reception> {
        self.game
            .roster()
            .ids()
            .filter(|p| p.as_str() != id)
            .map(|p| {
                let audio = self.routes.allows(id, p, MediaKind::Audio);
                let video = self.routes.allows(id, p, MediaKind::Video);
                (p.clone(), Reception { audio, video })
            })
            .collect()
    }

    fn send_media_state(&mut self, id: &str, always: bool) {
        if !self.members.contains(id) {
            return;
        }
        let view = self.media_state(id);
        let Some(m) = self.members.get_mut(id) else { return };
        if !always && m.media_state.as_ref() == Some(&view) {
            return;
        }
        m.media_state = Some(view.clone());
        self.send(id, &ServerMsg::MediaState(MediaStateInfo { receive: view }));
    }

    /// Tell `id` who speaks among those it may hear now, if that changed (or `always`).
    /// Media reports everyone's levels; here, where the routes are, the unheard are left out:
    /// a citizen at night learns nothing of who talks among the mafia.
    fn send_speaking(&mut self, id: &str, always: bool) {
        let heard: Vec<Id> =
            self.speakers.iter().filter(|p| self.routes.allows(id, p, MediaKind::Audio)).cloned().collect();
        let Some(m) = self.members.get_mut(id) else { return };
        if !always && m.speaking == heard {
            return;
        }
        m.speaking = heard.clone();
        self.send(id, &ServerMsg::Speaking { ids: heard });
    }

    pub(super) fn media_notice(&mut self, notice: MediaNotice) {
        match notice {
            MediaNotice::Offer { peer, sdp } => self.send(&peer, &ServerMsg::Offer { sdp }),
            MediaNotice::Connected { peer } => debug!(room = %self.code, %peer, "media connected"),
            MediaNotice::Speaking { peers } => {
                self.speakers = peers;
                for id in self.members.ids() {
                    self.send_speaking(&id, false);
                }
            }
            MediaNotice::Lost { peer, reason } => info!(room = %self.code, %peer, %reason, "media lost"),
        }
    }
}

/// The host's settings, with what they leave out taken from the room's `defaults`: objects
/// merge key by key (so one phase length overrides one default length), anything else is the
/// host's if given.
fn merge_defaults(given: serde_json::Value, defaults: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (given, defaults) {
        (Value::Null, d) => d.clone(),
        (Value::Object(mut g), Value::Object(d)) => {
            for (key, dv) in d {
                let merged = merge_defaults(g.remove(key).unwrap_or(Value::Null), dv);
                if !merged.is_null() {
                    g.insert(key.clone(), merged);
                }
            }
            Value::Object(g)
        }
        (g, _) => g,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_defaults;

    #[test]
    fn defaults_fill_what_the_host_leaves_out() {
        let defaults = json!({"mafia": 2, "phase_seconds": {"night": 30, "day": 60}});
        assert_eq!(merge_defaults(json!(null), &defaults), defaults);
        assert_eq!(
            merge_defaults(json!({"mafia": 1, "phase_seconds": {"day": 90}}), &defaults),
            json!({"mafia": 1, "phase_seconds": {"night": 30, "day": 90}})
        );
        assert_eq!(merge_defaults(json!({"doctor": 0}), &json!(null)), json!({"doctor": 0}));
        assert_eq!(merge_defaults(json!("odd"), &defaults), json!("odd"), "the game refuses what is not an object");
    }
}
