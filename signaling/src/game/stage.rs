//! Host-led stage rooms (docs/PROTOCOL.md, "Stage rooms"): a host, a few participants on
//! stage, an audience. The host and the stage reach everyone; the audience reaches nobody by
//! audio and only the host by video, and only while in the host's current `view` page.
//!
//! [`Stage`] is that seating and its routes, kept apart from the kind so the games played on
//! a stage (drawing, red light green light) can hold one too; [`StageRoom`] is the `stage`
//! kind itself, which has no game to start: the host leads.
//!
//! Decisions the contract leaves open:
//! - What counts is worked out against the roster each time, so a hand-over needs no event:
//!   the new host is never "on stage" or in the audience (their place on stage, a raised hand,
//!   is set aside while they host), and a view belongs to the host who sent it — a new host
//!   starts with an empty page.
//! - `stage {on: true}` for someone already on stage, or `{on: false}` for someone who is not,
//!   changes nothing and is no error; bringing the host on stage is `not_allowed` (the host
//!   is seen by everyone anyway). Bringing someone up lowers their hand.
//! - `raise_hand` is for the audience; lowering is always accepted. `view` names audience
//!   members present now (`bad_field` otherwise, or beyond 16); duplicates count once.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{GameError, Id, Millis, Output, PhaseView, Roster, Routes, Standing, LOBBY};
use crate::game::MediaKind;

/// The most audience cameras one page of the host's grid forwards.
pub const MAX_VIEW: usize = 16;

/// Server-wide limits of stage rooms (configuration `stage.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimits {
    /// The most participants on stage at once, the host not counted.
    pub max_on_stage: usize,
}

impl Default for StageLimits {
    fn default() -> Self {
        StageLimits { max_on_stage: 4 }
    }
}

/// What a seat of a stage room sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Audience: raise or lower a hand.
    RaiseHand {
        /// Raised or not.
        raised: bool,
    },
    /// Host: bring someone on stage or send them back.
    Stage {
        /// Whom.
        id: Id,
        /// On stage or not.
        on: bool,
    },
    /// Host: the audience members the host's grid shows now.
    View {
        /// At most [`MAX_VIEW`].
        ids: Vec<Id>,
    },
}

/// The message types [`Command`] parses.
pub const COMMANDS: &[&str] = &["raise_hand", "stage", "view"];

/// A stage room sends no messages of its own: hands and places travel in the participant
/// objects, and views in `media_state`.
#[derive(Debug, Clone, Serialize)]
pub enum Message {}

/// The stage: who is on it, whose hands are up, the host's page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage {
    limits: StageLimits,
    on_stage: BTreeSet<Id>,
    hands: BTreeSet<Id>,
    /// The host who sent the view, and the view.
    view: Option<(Id, BTreeSet<Id>)>,
}

impl Stage {
    /// An empty stage.
    pub fn new(limits: StageLimits) -> Stage {
        Stage { limits, ..Stage::default() }
    }

    /// The limits this stage keeps.
    pub fn limits(&self) -> StageLimits {
        self.limits
    }

    /// What a client of a room with this stage is told in `welcome.limits`.
    pub fn welcome_limits(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("max_on_stage", serde_json::json!(self.limits.max_on_stage))]
    }

    /// Whether `id` is on stage now (the host never is).
    pub fn on_stage(&self, roster: &Roster, id: &str) -> bool {
        self.on_stage.contains(id) && !roster.is_host(id)
    }

    /// Whether `id` is in the audience now: neither the host nor on stage.
    pub fn in_audience(&self, roster: &Roster, id: &str) -> bool {
        roster.contains(id) && !roster.is_host(id) && !self.on_stage.contains(id)
    }

    /// Whether `id` has a hand up now.
    pub fn hand(&self, roster: &Roster, id: &str) -> bool {
        self.hands.contains(id) && self.in_audience(roster, id)
    }

    /// Who is on stage now, in id order.
    pub fn stage_members<'a>(&'a self, roster: &'a Roster) -> impl Iterator<Item = &'a Id> + 'a {
        self.on_stage.iter().filter(move |id| !roster.is_host(id))
    }

    /// The current host's page of audience cameras.
    pub fn view<'a>(&'a self, roster: &'a Roster) -> impl Iterator<Item = &'a Id> + 'a {
        let current = self.view.as_ref().filter(|(owner, _)| roster.is_host(owner));
        current.into_iter().flat_map(|(_, ids)| ids.iter()).filter(move |id| self.in_audience(roster, id))
    }

    /// What the place of everyone in the room looks like.
    pub fn standing(&self, roster: &Roster, id: &str) -> Standing {
        Standing { on_stage: self.on_stage(roster, id), hand: self.hand(roster, id), ..Standing::LOBBY }
    }

    /// One of the stage's commands from `who`. Returns whose standing changed.
    pub fn handle(&mut self, roster: &Roster, who: &str, command: Command) -> Result<Vec<Id>, GameError> {
        match command {
            Command::RaiseHand { raised } => {
                if raised && !self.in_audience(roster, who) {
                    return Err(GameError::NotAllowed("only the audience raises hands".into()));
                }
                let changed = if raised { self.hands.insert(who.to_owned()) } else { self.hands.remove(who) };
                Ok(if changed { vec![who.to_owned()] } else { Vec::new() })
            }
            Command::Stage { id, on } => {
                if !roster.is_host(who) {
                    return Err(GameError::NotHost("only the host brings people on stage".into()));
                }
                if !roster.contains(&id) {
                    return Err(GameError::BadField(format!("id: {:?} is not in the room", shown(&id))));
                }
                if roster.is_host(&id) {
                    return Err(GameError::NotAllowed("the host is seen by everyone already".into()));
                }
                if !on {
                    return Ok(if self.on_stage.remove(&id) { vec![id] } else { Vec::new() });
                }
                if self.on_stage.contains(&id) {
                    return Ok(Vec::new());
                }
                let max = self.limits.max_on_stage;
                if self.stage_members(roster).count() >= max {
                    return Err(GameError::StageFull(format!("the stage holds {max}; send someone back first")));
                }
                self.hands.remove(&id);
                self.on_stage.insert(id.clone());
                Ok(vec![id])
            }
            Command::View { ids } => {
                if !roster.is_host(who) {
                    return Err(GameError::NotHost("only the host's grid has a view".into()));
                }
                let ids: BTreeSet<Id> = ids.into_iter().collect();
                if ids.len() > MAX_VIEW {
                    return Err(GameError::BadField(format!("ids: at most {MAX_VIEW} on one page, not {}", ids.len())));
                }
                if let Some(bad) = ids.iter().find(|id| !self.in_audience(roster, id)) {
                    return Err(GameError::BadField(format!("ids: {:?} is not in the audience", shown(bad))));
                }
                self.view = Some((who.to_owned(), ids));
                Ok(Vec::new())
            }
        }
    }

    /// `who` left the room: their place on stage, hand and place in the view are free.
    pub fn left(&mut self, who: &str) {
        self.on_stage.remove(who);
        self.hands.remove(who);
        if let Some((owner, ids)) = &mut self.view {
            if owner == who {
                self.view = None;
            } else {
                ids.remove(who);
            }
        }
    }

    /// The stage's routes over `roster`: the host and the stage reach everyone; an audience
    /// member's video reaches the host while in the host's view, and nothing else of theirs
    /// reaches anyone.
    pub fn routes(&self, roster: &Roster) -> Routes {
        let mut routes = Routes::new();
        let everyone = roster.id_list();
        let speakers = roster.host().into_iter().map(str::to_owned).chain(self.stage_members(roster).cloned());
        for speaker in speakers {
            routes.allow_all(&everyone, &speaker, MediaKind::Audio);
            routes.allow_all(&everyone, &speaker, MediaKind::Video);
        }
        if let Some(host) = roster.host() {
            for id in self.view(roster) {
                routes.allow(host, id, MediaKind::Video);
            }
        }
        routes
    }

    /// The current host's view, for a resuming host's `welcome`.
    pub fn view_list(&self, roster: &Roster) -> Vec<Id> {
        self.view(roster).cloned().collect()
    }
}

fn shown(id: &str) -> String {
    id.chars().take(32).collect()
}

/// A stage room's `phase`: always the lobby (there is no game to start).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseInfo {
    /// `lobby`.
    pub phase: &'static str,
}

impl PhaseView for PhaseInfo {
    fn name(&self) -> &str {
        self.phase
    }
}

/// A stage room has no settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {}

/// The `stage` kind: a [`Stage`] and nothing else.
pub struct StageRoom {
    stage: Stage,
    out: Vec<Output<Message, PhaseInfo>>,
}

impl StageRoom {
    /// A stage room with these limits.
    pub fn new(limits: StageLimits) -> StageRoom {
        StageRoom { stage: Stage::new(limits), out: Vec::new() }
    }
}

impl super::Game for StageRoom {
    type Command = Command;
    type Message = Message;
    type Phase = PhaseInfo;
    type Settings = Settings;

    const COMMANDS: &'static [&'static str] = COMMANDS;

    fn check_settings(_: &Settings) -> Result<(), GameError> {
        Ok(())
    }

    fn start(&mut self, _: Millis, _: &Roster, _: &str, _: Settings, _: Option<u64>) -> Result<(), GameError> {
        Err(GameError::NotAllowed("a stage room has no game to start; the host leads it".into()))
    }

    fn handle(&mut self, _: Millis, roster: &Roster, who: &str, command: Command) -> Result<(), GameError> {
        let changed = self.stage.handle(roster, who, command)?;
        self.out.extend(changed.into_iter().map(Output::Standing));
        Ok(())
    }

    fn left(&mut self, _: Millis, _: &Roster, who: &str) {
        self.stage.left(who);
    }

    fn handle_timeout(&mut self, _: Millis, _: &Roster) {}

    fn poll_output(&mut self) -> Option<Output<Message, PhaseInfo>> {
        (!self.out.is_empty()).then(|| self.out.remove(0))
    }

    fn next_deadline(&self) -> Option<Millis> {
        None
    }

    fn phase(&self, _: &Roster) -> PhaseInfo {
        PhaseInfo { phase: LOBBY }
    }

    fn running(&self) -> bool {
        false
    }

    fn routes(&self, roster: &Roster) -> Routes {
        self.stage.routes(roster)
    }

    fn standing(&self, roster: &Roster, id: &str) -> Standing {
        self.stage.standing(roster, id)
    }

    fn limits(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.stage.welcome_limits()
    }

    fn catch_up(&self, roster: &Roster, id: &str, _: bool) -> Vec<(&'static str, serde_json::Value)> {
        if roster.is_host(id) {
            vec![("view", serde_json::json!(self.stage.view_list(roster)))]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::Game;

    /// host `h`; `s1`, `s2` on stage; audience `a1`..`a4`, with `a1`, `a3` in the host's view
    /// and `a2`'s hand up.
    fn room() -> (Roster, Stage) {
        let mut roster = Roster::new();
        for id in ["h", "s1", "s2", "a1", "a2", "a3", "a4"] {
            roster.join(id, id, true);
        }
        let mut stage = Stage::new(StageLimits { max_on_stage: 2 });
        for id in ["s1", "s2"] {
            stage.handle(&roster, "h", Command::Stage { id: id.into(), on: true }).unwrap();
        }
        stage.handle(&roster, "a2", Command::RaiseHand { raised: true }).unwrap();
        stage.handle(&roster, "h", Command::View { ids: vec!["a1".into(), "a3".into()] }).unwrap();
        (roster, stage)
    }

    const ALL: [&str; 7] = ["h", "s1", "s2", "a1", "a2", "a3", "a4"];

    /// The contract's table, written out: who receives `publisher`'s `kind`.
    fn expected(publisher: &str, kind: MediaKind, host: Option<&str>, stage: &[&str], view: &[&str]) -> Vec<String> {
        let others = || ALL.iter().filter(|s| **s != publisher).map(|s| s.to_string()).collect();
        if Some(publisher) == host || stage.contains(&publisher) {
            return others();
        }
        match (kind, host) {
            (MediaKind::Video, Some(host)) if view.contains(&publisher) => vec![host.to_string()],
            _ => Vec::new(),
        }
    }

    fn check(roster: &Roster, stage: &Stage, host: Option<&str>, on: &[&str], view: &[&str]) -> usize {
        let routes = stage.routes(roster);
        let mut checked = 0;
        for publisher in ALL {
            for kind in [MediaKind::Audio, MediaKind::Video] {
                let want = expected(publisher, kind, host, on, view);
                for subscriber in ALL {
                    let allowed = routes.allows(subscriber, publisher, kind);
                    assert_eq!(allowed, want.iter().any(|w| w == subscriber), "{subscriber} <- {publisher} {kind:?}");
                    checked += 1;
                }
            }
        }
        checked
    }

    #[test]
    fn the_routing_table_for_every_pair() {
        let (roster, stage) = room();
        assert_eq!(check(&roster, &stage, Some("h"), &["s1", "s2"], &["a1", "a3"]), 7 * 7 * 2);
        // Standing: places and hands, as everyone sees them.
        assert!(stage.standing(&roster, "s1").on_stage && !stage.standing(&roster, "h").on_stage);
        assert!(stage.standing(&roster, "a2").hand && !stage.standing(&roster, "a1").hand);
    }

    #[test]
    fn views_follow_the_host_and_the_stage() {
        let (mut roster, mut stage) = room();
        // Sent back: in the audience again, heard by nobody, seen by the host only if in view.
        assert_eq!(stage.handle(&roster, "h", Command::Stage { id: "s2".into(), on: false }).unwrap(), vec!["s2"]);
        check(&roster, &stage, Some("h"), &["s1"], &["a1", "a3"]);
        // A new page.
        stage.handle(&roster, "h", Command::View { ids: vec!["s2".into(), "a4".into(), "a4".into()] }).unwrap();
        check(&roster, &stage, Some("h"), &["s1"], &["s2", "a4"]);
        // Someone in view brought up: on stage reaches everyone; back in the audience they
        // are in the view again (the host's page did not change).
        stage.handle(&roster, "h", Command::Stage { id: "a4".into(), on: true }).unwrap();
        check(&roster, &stage, Some("h"), &["s1", "a4"], &["s2"]);
        stage.handle(&roster, "h", Command::Stage { id: "a4".into(), on: false }).unwrap();
        check(&roster, &stage, Some("h"), &["s1"], &["s2", "a4"]);

        // The host leaves: the powers pass to the longest present (s1, on stage). The new host
        // is not "on stage" and starts with an empty view; the old view counts for nobody.
        assert_eq!(roster.leave("h").as_deref(), Some("s1"));
        stage.left("h");
        let routes = stage.routes(&roster);
        assert!(!routes.allows("s1", "s2", MediaKind::Video), "the old host's page is gone");
        assert!(routes.allows("a1", "s1", MediaKind::Audio), "the new host reaches everyone");
        assert!(!stage.on_stage(&roster, "s1"));
        assert_eq!(stage.stage_members(&roster).count(), 0);
    }

    #[test]
    fn without_a_host_only_the_stage_is_heard() {
        // A room made through the API before its host arrived: guests do not get the powers.
        let mut roster = Roster::new();
        for id in ["h", "s1", "s2", "a1", "a2", "a3", "a4"] {
            roster.join(id, id, true);
        }
        let mut stage = Stage::new(StageLimits::default());
        stage.handle(&roster, "h", Command::Stage { id: "s1".into(), on: true }).unwrap();
        stage.handle(&roster, "h", Command::View { ids: vec!["a1".into()] }).unwrap();
        // Without any powers in the room (nobody hosts) the stage still reaches everyone, and
        // no audience camera is forwarded at all.
        let mut hostless = Roster::new();
        for id in ALL {
            hostless.join(id, id, false);
        }
        assert_eq!(hostless.host(), None);
        let routes = stage.routes(&hostless);
        for s in ALL {
            assert_eq!(routes.allows(s, "s1", MediaKind::Audio), s != "s1", "{s}");
            assert!(!routes.allows(s, "a1", MediaKind::Video), "{s}");
            assert!(!routes.allows(s, "h", MediaKind::Audio), "{s}: h does not host here");
        }
    }

    #[test]
    fn refusals() {
        let (roster, mut stage) = room();
        let err = |r: Result<Vec<Id>, GameError>| r.unwrap_err();
        assert!(matches!(
            err(stage.handle(&roster, "a1", Command::Stage { id: "a1".into(), on: true })),
            GameError::NotHost(_)
        ));
        assert!(matches!(err(stage.handle(&roster, "a1", Command::View { ids: vec![] })), GameError::NotHost(_)));
        let full = stage.handle(&roster, "h", Command::Stage { id: "a2".into(), on: true });
        assert!(matches!(err(full), GameError::StageFull(_)));
        assert!(stage.hand(&roster, "a2"), "a refused stage keeps the hand up");
        let host = stage.handle(&roster, "h", Command::Stage { id: "h".into(), on: true });
        assert!(matches!(err(host), GameError::NotAllowed(_)));
        let ghost = stage.handle(&roster, "h", Command::Stage { id: "zz".into(), on: true });
        assert!(matches!(err(ghost), GameError::BadField(_)));
        let many: Vec<Id> = (0..17).map(|i| format!("x{i}")).collect();
        assert!(matches!(err(stage.handle(&roster, "h", Command::View { ids: many })), GameError::BadField(_)));
        let not_audience = stage.handle(&roster, "h", Command::View { ids: vec!["s1".into()] });
        assert!(matches!(err(not_audience), GameError::BadField(_)));
        let raise = stage.handle(&roster, "s1", Command::RaiseHand { raised: true });
        assert!(matches!(err(raise), GameError::NotAllowed(_)));
        // Lowering is always fine, and so is repeating what is already so.
        assert_eq!(stage.handle(&roster, "s1", Command::RaiseHand { raised: false }).unwrap(), Vec::<Id>::new());
        assert_eq!(stage.handle(&roster, "h", Command::Stage { id: "s1".into(), on: true }).unwrap(), Vec::<Id>::new());
        // Brought up: the hand comes down.
        stage.handle(&roster, "h", Command::Stage { id: "s1".into(), on: false }).unwrap();
        assert_eq!(stage.handle(&roster, "h", Command::Stage { id: "a2".into(), on: true }).unwrap(), vec!["a2"]);
        assert!(!stage.hand(&roster, "a2") && !stage.hands.contains("a2"));
    }

    #[test]
    fn leaving_frees_the_place() {
        let (roster, mut stage) = room();
        stage.left("s1");
        let mut roster = roster;
        roster.leave("s1");
        assert_eq!(stage.handle(&roster, "h", Command::Stage { id: "a2".into(), on: true }).unwrap(), vec!["a2"]);
        stage.left("a1");
        roster.leave("a1");
        assert_eq!(stage.view_list(&roster), vec!["a3".to_string()]);
    }

    #[test]
    fn the_kind_has_no_game_to_start() {
        let mut room = StageRoom::new(StageLimits::default());
        let mut roster = Roster::new();
        roster.join("h", "h", true);
        let err = room.start(0, &roster, "h", Settings::default(), None).unwrap_err();
        assert!(matches!(err, GameError::NotAllowed(_)));
        assert!(!room.running());
        assert_eq!(room.phase(&roster).name(), LOBBY);
    }
}
