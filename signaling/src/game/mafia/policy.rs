//! The routing policy: one pure function from the game's state to who receives whom.
//!
//! This is the table of docs/PROTOCOL.md, "Routing". Rows are phases, columns are the *publisher*; a cell names
//! who receives that publisher's audio and video:
//!
//! | phase | living mafia | living town | dead | moderator |
//! |---|---|---|---|---|
//! | lobby, game_over | everyone | everyone | everyone | everyone |
//! | role_reveal, dawn, day, nomination, judgment | everyone | everyone | dead + moderator | everyone |
//! | defense | video everyone; audio dead + moderator, the accused's audio everyone | same | dead + moderator | everyone |
//! | night | other living mafia, dead, moderator | dead + moderator | dead + moderator | everyone |
//!
//! "Everyone" includes spectators; spectators publish to nobody during a game. Nobody ever
//! receives themselves.

use std::collections::{BTreeMap, BTreeSet};

use super::{Phase, Role};
use crate::game::{Id, MediaKind, Routes};

/// Everything the policy depends on.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput<'a> {
    /// The current phase.
    pub phase: Option<Phase>,
    /// Everyone in the room (players, moderator, spectators).
    pub participants: &'a [Id],
    /// The players' roles (not the moderator's; spectators have none).
    pub roles: Option<&'a BTreeMap<Id, Role>>,
    /// The living players.
    pub alive: Option<&'a BTreeSet<Id>>,
    /// The accused, during defense and judgment.
    pub accused: Option<&'a str>,
    /// The moderator, if the host moderates.
    pub moderator: Option<&'a str>,
}

/// What a participant is, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    LivingMafia,
    LivingTown,
    Dead,
    Moderator,
    Spectator,
}

fn standing(input: &PolicyInput<'_>, id: &str) -> Standing {
    if input.moderator == Some(id) {
        return Standing::Moderator;
    }
    let role = input.roles.and_then(|r| r.get(id));
    match role {
        None => Standing::Spectator,
        Some(role) => {
            let alive = input.alive.is_some_and(|a| a.contains(id));
            match (alive, role) {
                (false, _) => Standing::Dead,
                (true, Role::Mafia) => Standing::LivingMafia,
                (true, _) => Standing::LivingTown,
            }
        }
    }
}

/// Whether `subscriber` may receive `publisher`'s `kind` under `input`.
pub fn allowed(input: &PolicyInput<'_>, subscriber: &str, publisher: &str, kind: MediaKind) -> bool {
    if subscriber == publisher {
        return false;
    }
    let phase = input.phase.unwrap_or(Phase::Lobby);
    if !phase.in_game() {
        return true;
    }
    let sub = standing(input, subscriber);
    let publ = standing(input, publisher);
    // The dead and the moderator receive every player; receiving them is a privilege only
    // they share.
    let privileged = matches!(sub, Standing::Dead | Standing::Moderator);
    match publ {
        Standing::Moderator => true,
        Standing::Spectator => false,
        Standing::Dead => privileged,
        Standing::LivingMafia | Standing::LivingTown => {
            if privileged {
                return true;
            }
            match phase {
                Phase::Night => publ == Standing::LivingMafia && sub == Standing::LivingMafia,
                Phase::Defense => kind == MediaKind::Video || input.accused == Some(publisher),
                _ => true,
            }
        }
    }
}

/// Who receives each publisher's audio and video, over the room's participants: the table
/// above, asked per publisher. (Mafia rooms hold at most a few dozen, so the pairwise question
/// is cheap here; the answer is per publisher, as the room and media layer want it.)
pub fn routes(input: &PolicyInput<'_>) -> Routes {
    let mut out = Routes::new();
    for p in input.participants {
        for kind in MediaKind::ALL {
            for s in input.participants {
                if allowed(input, s, p, kind) {
                    out.allow(s, p, kind);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The routing table, checked against an expectation written out cell by cell (not
    //! derived from [`allowed`]).

    use super::*;
    use crate::game::Route;

    /// One participant per standing. `acc` is a living citizen, the accused in defense and
    /// judgment; `dm` a dead mafioso and `dc` a dead citizen.
    const ROOM: [(&str, Option<Role>, bool); 10] = [
        ("m1", Some(Role::Mafia), true),
        ("m2", Some(Role::Mafia), true),
        ("doc", Some(Role::Doctor), true),
        ("det", Some(Role::Detective), true),
        ("cit", Some(Role::Citizen), true),
        ("acc", Some(Role::Citizen), true),
        ("dm", Some(Role::Mafia), false),
        ("dc", Some(Role::Citizen), false),
        ("mod", None, false),
        ("spec", None, false),
    ];

    const ALL: &[&str] = &["m1", "m2", "doc", "det", "cit", "acc", "dm", "dc", "mod", "spec"];
    const NONE: &[&str] = &[];

    /// (publisher, receivers of audio, receivers of video). The publisher itself is removed
    /// from every list when comparing (nobody receives themselves).
    type Row = (&'static str, &'static [&'static str], &'static [&'static str]);

    /// lobby and game_over: everyone receives everyone, spectators included.
    const OPEN: [Row; 10] = [
        ("m1", ALL, ALL),
        ("m2", ALL, ALL),
        ("doc", ALL, ALL),
        ("det", ALL, ALL),
        ("cit", ALL, ALL),
        ("acc", ALL, ALL),
        ("dm", ALL, ALL),
        ("dc", ALL, ALL),
        ("mod", ALL, ALL),
        ("spec", ALL, ALL),
    ];

    /// role_reveal, dawn, day, nomination, judgment.
    const DAYLIGHT: [Row; 10] = [
        ("m1", ALL, ALL),
        ("m2", ALL, ALL),
        ("doc", ALL, ALL),
        ("det", ALL, ALL),
        ("cit", ALL, ALL),
        ("acc", ALL, ALL),
        ("dm", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("dc", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("mod", ALL, ALL),
        ("spec", NONE, NONE),
    ];

    /// defense, with `acc` accused.
    const DEFENSE: [Row; 10] = [
        ("m1", &["dm", "dc", "mod"], ALL),
        ("m2", &["dm", "dc", "mod"], ALL),
        ("doc", &["dm", "dc", "mod"], ALL),
        ("det", &["dm", "dc", "mod"], ALL),
        ("cit", &["dm", "dc", "mod"], ALL),
        ("acc", ALL, ALL),
        ("dm", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("dc", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("mod", ALL, ALL),
        ("spec", NONE, NONE),
    ];

    const NIGHT: [Row; 10] = [
        ("m1", &["m2", "dm", "dc", "mod"], &["m2", "dm", "dc", "mod"]),
        ("m2", &["m1", "dm", "dc", "mod"], &["m1", "dm", "dc", "mod"]),
        ("doc", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("det", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("cit", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("acc", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("dm", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("dc", &["dm", "dc", "mod"], &["dm", "dc", "mod"]),
        ("mod", ALL, ALL),
        ("spec", NONE, NONE),
    ];

    fn expected(phase: Phase) -> &'static [Row; 10] {
        match phase {
            Phase::Lobby | Phase::GameOver => &OPEN,
            Phase::RoleReveal | Phase::Dawn | Phase::Day | Phase::Nomination | Phase::Judgment => &DAYLIGHT,
            Phase::Defense => &DEFENSE,
            Phase::Night => &NIGHT,
        }
    }

    struct Fixture {
        participants: Vec<Id>,
        roles: BTreeMap<Id, Role>,
        alive: BTreeSet<Id>,
    }

    fn fixture() -> Fixture {
        Fixture {
            participants: ROOM.iter().map(|(id, _, _)| id.to_string()).collect(),
            roles: ROOM.iter().filter_map(|(id, r, _)| r.map(|r| (id.to_string(), r))).collect(),
            alive: ROOM.iter().filter(|(_, _, a)| *a).map(|(id, _, _)| id.to_string()).collect(),
        }
    }

    fn input<'a>(f: &'a Fixture, phase: Phase, accused: Option<&'a str>) -> PolicyInput<'a> {
        PolicyInput {
            phase: Some(phase),
            participants: &f.participants,
            roles: Some(&f.roles),
            alive: Some(&f.alive),
            accused,
            moderator: Some("mod"),
        }
    }

    fn accused_in(phase: Phase) -> Option<&'static str> {
        matches!(phase, Phase::Defense | Phase::Judgment).then_some("acc")
    }

    /// The expected routes of a table, as a sorted list.
    fn expected_routes(rows: &[Row]) -> Vec<Route> {
        let mut out = Vec::new();
        for (publisher, audio, video) in rows {
            for (kind, receivers) in [(MediaKind::Audio, audio), (MediaKind::Video, video)] {
                for s in receivers.iter().filter(|s| *s != publisher) {
                    out.push(Route { subscriber: s.to_string(), publisher: publisher.to_string(), kind });
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_phase_publisher_subscriber_and_kind() {
        let f = fixture();
        let mut checked = 0;
        for phase in Phase::ALL {
            let input = input(&f, phase, accused_in(phase));
            for (publisher, audio, video) in expected(phase) {
                for kind in [MediaKind::Audio, MediaKind::Video] {
                    let receivers = if kind == MediaKind::Audio { audio } else { video };
                    for subscriber in ALL {
                        let want = subscriber != publisher && receivers.contains(subscriber);
                        let got = allowed(&input, subscriber, publisher, kind);
                        assert_eq!(got, want, "{phase:?}: {subscriber} ← {publisher} {kind:?}");
                        checked += 1;
                    }
                }
            }
            assert_eq!(routes(&input).pairs(), expected_routes(expected(phase)), "{phase:?}");
        }
        assert_eq!(checked, 9 * 10 * 2 * 10);
    }

    #[test]
    fn accused_mafioso_in_defense_is_heard_by_all_and_judgment_is_daylight() {
        let f = fixture();
        let defense = input(&f, Phase::Defense, Some("m1"));
        for s in ["m2", "doc", "det", "cit", "acc", "dm", "dc", "mod", "spec"] {
            assert!(allowed(&defense, s, "m1", MediaKind::Audio), "{s}");
            assert!(allowed(&defense, s, "m1", MediaKind::Video), "{s}");
        }
        // The ordinary citizen `acc` is not accused now: back to whispering to the dead.
        assert!(!allowed(&defense, "cit", "acc", MediaKind::Audio));
        assert!(allowed(&defense, "dc", "acc", MediaKind::Audio));
        // During judgment the accused is one of the living: everyone hears everyone living.
        let judgment = input(&f, Phase::Judgment, Some("m1"));
        assert_eq!(routes(&judgment).pairs(), expected_routes(&DAYLIGHT));
    }

    #[test]
    fn without_moderator_or_state() {
        let f = fixture();
        // No moderator: `mod` is a spectator now, and receives what a living citizen receives.
        let mut night = input(&f, Phase::Night, None);
        night.moderator = None;
        assert!(!allowed(&night, "mod", "m1", MediaKind::Audio));
        assert!(!allowed(&night, "m1", "mod", MediaKind::Audio));
        assert!(allowed(&night, "dc", "m1", MediaKind::Video));
        let mut day = input(&f, Phase::Day, None);
        day.moderator = None;
        assert!(allowed(&day, "mod", "cit", MediaKind::Audio));
        assert!(!allowed(&day, "mod", "dc", MediaKind::Audio));
        // No phase at all means the lobby.
        let lobby = PolicyInput { participants: &f.participants, ..Default::default() };
        assert_eq!(routes(&lobby).len(), 10 * 9 * 2);
        // In a game with no roles known, everyone is a spectator: nobody publishes.
        let blind = PolicyInput { phase: Some(Phase::Day), participants: &f.participants, ..Default::default() };
        assert!(routes(&blind).is_empty());
    }
}
